"""Falcon, ASGI flavour (`falcon.asgi.App`), with lifespan through middleware hooks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import falcon
import falcon.asgi

from .common import CORS_ORIGIN, SECRET, STATIC_DIR, STREAM_PARTS, announce_shutdown

Request = falcon.asgi.Request
Response = falcon.asgi.Response


class LifespanHooks:
    def __init__(self) -> None:
        self.started = False

    async def process_startup(self, scope: dict[str, Any], event: dict[str, Any]) -> None:
        self.started = True

    async def process_shutdown(self, scope: dict[str, Any], event: dict[str, Any]) -> None:
        announce_shutdown("falcon-asgi")


class Item:
    async def on_get(self, req: Request, resp: Response, item_id: int) -> None:
        resp.media = {"id": item_id}

    on_head = on_get


class Query:
    async def on_get(self, req: Request, resp: Response) -> None:
        resp.media = {"q": req.get_param_as_list("q", default=[])}


class EchoJSON:
    async def on_post(self, req: Request, resp: Response) -> None:
        resp.media = {"received": await req.get_media()}


class Form:
    async def on_post(self, req: Request, resp: Response) -> None:
        fields = await req.get_media()
        resp.media = {"name": fields["name"], "note": fields["note"]}


class Upload:
    async def on_post(self, req: Request, resp: Response) -> None:
        async for part in await req.get_media():
            if part.name == "file":
                resp.data = await part.stream.read()
                resp.content_type = "application/octet-stream"
                resp.set_header("X-Upload-Name", part.filename)
                return
        raise falcon.HTTPBadRequest(title="no file")


class Cookies:
    async def on_get(self, req: Request, resp: Response) -> None:
        resp.media = {"session": req.cookies.get("session")}
        resp.set_cookie("a", "1", http_only=False)
        resp.set_cookie("b", "2")


class Redirect:
    async def on_get(self, req: Request, resp: Response) -> None:
        # Falcon has no reverse routing; req.prefix is its public scheme://host/root.
        raise falcon.HTTPFound(req.prefix + "/items/7")


class Stream:
    async def on_get(self, req: Request, resp: Response) -> None:
        async def parts() -> AsyncIterator[bytes]:
            for part in STREAM_PARTS:
                yield part

        resp.content_type = "text/plain"
        resp.stream = parts()


class Boom:
    async def on_get(self, req: Request, resp: Response) -> None:
        raise RuntimeError(SECRET)


class LifespanState:
    async def on_get(self, req: Request, resp: Response) -> None:
        resp.media = {"started": hooks.started}


hooks = LifespanHooks()
app = falcon.asgi.App(middleware=[hooks, falcon.CORSMiddleware(allow_origins=CORS_ORIGIN)])
app.add_route("/items/{item_id:int}", Item())
app.add_route("/query", Query())
app.add_route("/json", EchoJSON())
app.add_route("/form", Form())
app.add_route("/upload", Upload())
app.add_route("/cookies", Cookies())
app.add_route("/redirect", Redirect())
app.add_route("/stream", Stream())
app.add_route("/boom", Boom())
app.add_route("/lifespan", LifespanState())
app.add_static_route("/static", str(STATIC_DIR))
