"""Falcon, WSGI flavour (`falcon.App`), with its CORS middleware and static route."""

from __future__ import annotations

import falcon

from .common import CORS_ORIGIN, SECRET, STATIC_DIR, STREAM_PARTS


class Item:
    def on_get(self, req: falcon.Request, resp: falcon.Response, item_id: int) -> None:
        resp.media = {"id": item_id}

    on_head = on_get


class Query:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"q": req.get_param_as_list("q", default=[])}


class EchoJSON:
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"received": req.get_media()}


class Form:
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        fields = req.get_media()
        resp.media = {"name": fields["name"], "note": fields["note"]}


class Upload:
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        for part in req.get_media():
            if part.name == "file":
                resp.data = part.stream.read()
                resp.content_type = "application/octet-stream"
                resp.set_header("X-Upload-Name", part.filename)
                return
        raise falcon.HTTPBadRequest(title="no file")


class Cookies:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"session": req.cookies.get("session")}
        resp.set_cookie("a", "1", http_only=False)
        resp.set_cookie("b", "2")


class Redirect:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        # Falcon has no reverse routing; req.prefix is its public scheme://host/root.
        raise falcon.HTTPFound(req.prefix + "/items/7")


class Stream:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = "text/plain"
        resp.stream = iter(STREAM_PARTS)


class Boom:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        raise RuntimeError(SECRET)


app = falcon.App(middleware=[falcon.CORSMiddleware(allow_origins=CORS_ORIGIN)])
app.add_route("/items/{item_id:int}", Item())
app.add_route("/query", Query())
app.add_route("/json", EchoJSON())
app.add_route("/form", Form())
app.add_route("/upload", Upload())
app.add_route("/cookies", Cookies())
app.add_route("/redirect", Redirect())
app.add_route("/stream", Stream())
app.add_route("/boom", Boom())
app.add_static_route("/static", str(STATIC_DIR))
