"""Starlette (ASGI), with its lifespan, CORS middleware and static files."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .common import CORS_ORIGIN, SECRET, STATIC_DIR, STREAM_PARTS, announce_shutdown


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
    yield {"started": True}
    announce_shutdown("starlette")


async def item(request: Request) -> JSONResponse:
    return JSONResponse({"id": request.path_params["item_id"]})


async def query(request: Request) -> JSONResponse:
    return JSONResponse({"q": request.query_params.getlist("q")})


async def echo_json(request: Request) -> JSONResponse:
    return JSONResponse({"received": await request.json()})


async def form(request: Request) -> JSONResponse:
    async with request.form() as fields:
        return JSONResponse({"name": fields["name"], "note": fields["note"]})


async def upload(request: Request) -> Response:
    async with request.form() as fields:
        upload = fields["file"]
        assert not isinstance(upload, str)
        headers = {"X-Upload-Name": upload.filename or ""}
        return Response(await upload.read(), media_type="application/octet-stream", headers=headers)


async def cookies(request: Request) -> JSONResponse:
    response = JSONResponse({"session": request.cookies.get("session")})
    response.set_cookie("a", "1")
    response.set_cookie("b", "2", httponly=True)
    return response


async def go(request: Request) -> RedirectResponse:
    return RedirectResponse(str(request.url_for("item", item_id=7)), status_code=302)


async def stream(request: Request) -> StreamingResponse:
    async def parts() -> AsyncIterator[bytes]:
        for part in STREAM_PARTS:
            yield part

    return StreamingResponse(parts(), media_type="text/plain")


async def boom(request: Request) -> Response:
    raise RuntimeError(SECRET)


async def lifespan_state(request: Request) -> JSONResponse:
    return JSONResponse({"started": request.state.started})


app = Starlette(
    routes=[
        Route("/items/{item_id:int}", item, methods=["GET", "HEAD"], name="item"),
        Route("/query", query),
        Route("/json", echo_json, methods=["POST"]),
        Route("/form", form, methods=["POST"]),
        Route("/upload", upload, methods=["POST"]),
        Route("/cookies", cookies),
        Route("/redirect", go),
        Route("/stream", stream),
        Route("/boom", boom),
        Route("/lifespan", lifespan_state),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ],
    middleware=[
        Middleware(
            CORSMiddleware,
            allow_origins=[CORS_ORIGIN],
            allow_methods=["*"],
            allow_headers=["*"],
            allow_credentials=True,
        )
    ],
    lifespan=lifespan,
)
