"""FastAPI (ASGI), with its lifespan, CORS middleware and static files."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Body, FastAPI, Form, Query, Request, UploadFile
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles

from .common import CORS_ORIGIN, SECRET, STATIC_DIR, STREAM_PARTS, announce_shutdown


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    yield {"started": True}
    announce_shutdown("fastapi")


app = FastAPI(lifespan=lifespan)
app.add_middleware(
    CORSMiddleware,
    allow_origins=[CORS_ORIGIN],
    allow_methods=["*"],
    allow_headers=["*"],
    allow_credentials=True,
)
app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")


@app.api_route("/items/{item_id}", methods=["GET", "HEAD"], name="item")
async def item(item_id: int) -> dict[str, int]:
    return {"id": item_id}


@app.get("/query")
async def query(q: list[str] = Query(default=[])) -> dict[str, list[str]]:  # noqa: B008
    return {"q": q}


@app.post("/json")
async def echo_json(payload: Any = Body()) -> dict[str, Any]:  # noqa: B008
    return {"received": payload}


@app.post("/form")
async def form(name: str = Form(), note: str = Form()) -> dict[str, str]:
    return {"name": name, "note": note}


@app.post("/upload")
async def upload(file: UploadFile) -> Response:
    headers = {"X-Upload-Name": file.filename or ""}
    return Response(await file.read(), media_type="application/octet-stream", headers=headers)


@app.get("/cookies")
async def cookies(request: Request) -> JSONResponse:
    response = JSONResponse({"session": request.cookies.get("session")})
    response.set_cookie("a", "1")
    response.set_cookie("b", "2", httponly=True)
    return response


@app.get("/redirect")
async def go(request: Request) -> RedirectResponse:
    return RedirectResponse(str(request.url_for("item", item_id=7)), status_code=302)


@app.get("/stream")
async def stream() -> StreamingResponse:
    async def parts() -> AsyncIterator[bytes]:
        for part in STREAM_PARTS:
            yield part

    return StreamingResponse(parts(), media_type="text/plain")


@app.get("/boom")
async def boom() -> None:
    raise RuntimeError(SECRET)


@app.get("/lifespan")
async def lifespan_state(request: Request) -> dict[str, Any]:
    return {"started": request.state.started}
