"""Litestar (ASGI), with on_startup/on_shutdown, its CORS config and static files router."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from litestar import Litestar, Request, Response, get, head, post
from litestar.config.cors import CORSConfig
from litestar.datastructures import Cookie, UploadFile
from litestar.response import Redirect, Stream
from litestar.static_files import create_static_files_router

from .common import CORS_ORIGIN, SECRET, STATIC_DIR, STREAM_PARTS, announce_shutdown


def startup(app: Litestar) -> None:
    app.state.started = True


def shutdown(app: Litestar) -> None:
    announce_shutdown("litestar")


@get("/items/{item_id:int}", name="item")
async def item(item_id: int) -> dict[str, int]:
    return {"id": item_id}


@head("/items/{item_id:int}")
async def item_head(item_id: int) -> Response[None]:
    return Response(None, media_type="application/json")


@get("/query")
async def query(request: Request[Any, Any, Any]) -> dict[str, list[str]]:
    return {"q": request.query_params.getall("q", [])}


@post("/json", status_code=200)
async def echo_json(data: Any) -> dict[str, Any]:
    return {"received": data}


@post("/form", status_code=200)
async def form(request: Request[Any, Any, Any]) -> dict[str, Any]:
    fields = await request.form()
    return {"name": fields["name"], "note": fields["note"]}


@post("/upload", status_code=200)
async def upload(request: Request[Any, Any, Any]) -> Response[bytes]:
    upload = (await request.form())["file"]
    assert isinstance(upload, UploadFile)
    return Response(
        await upload.read(),
        media_type="application/octet-stream",
        headers={"X-Upload-Name": upload.filename},
    )


@get("/cookies")
async def cookies(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    return Response(
        {"session": request.cookies.get("session")},
        cookies=[Cookie(key="a", value="1"), Cookie(key="b", value="2", httponly=True)],
    )


@get("/redirect")
async def go(request: Request[Any, Any, Any]) -> Redirect:
    return Redirect(request.url_for("item", item_id=7), status_code=302)


@get("/stream")
async def stream() -> Stream:
    async def parts() -> AsyncIterator[bytes]:
        for part in STREAM_PARTS:
            yield part

    return Stream(parts(), media_type="text/plain")


@get("/boom")
async def boom() -> None:
    raise RuntimeError(SECRET)


@get("/lifespan")
async def lifespan_state(request: Request[Any, Any, Any]) -> dict[str, Any]:
    return {"started": request.app.state.get("started", False)}


app = Litestar(
    route_handlers=[
        item,
        item_head,
        query,
        echo_json,
        form,
        upload,
        cookies,
        go,
        stream,
        boom,
        lifespan_state,
        create_static_files_router(path="/static", directories=[STATIC_DIR]),
    ],
    cors_config=CORSConfig(allow_origins=[CORS_ORIGIN], allow_credentials=True),
    on_startup=[startup],
    on_shutdown=[shutdown],
)
