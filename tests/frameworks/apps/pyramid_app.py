"""Pyramid (WSGI), with a CORS response subscriber and a static view."""

from __future__ import annotations

from typing import Any

from pyramid.config import Configurator
from pyramid.events import NewResponse
from pyramid.httpexceptions import HTTPFound
from pyramid.request import Request
from pyramid.response import Response

from .common import SECRET, STATIC_DIR, STREAM_PARTS, cors_headers


def item(request: Request) -> dict[str, Any]:
    return {"id": int(request.matchdict["item_id"])}


def query(request: Request) -> dict[str, Any]:
    return {"q": request.GET.getall("q")}


def echo_json(request: Request) -> dict[str, Any]:
    return {"received": request.json_body}


def form(request: Request) -> dict[str, Any]:
    return {"name": request.POST["name"], "note": request.POST["note"]}


def upload(request: Request) -> Response:
    upload = request.POST["file"]
    response = Response(body=upload.file.read(), content_type="application/octet-stream")
    response.headers["X-Upload-Name"] = upload.filename
    return response


def cookies(request: Request) -> dict[str, Any]:
    request.response.set_cookie("a", "1")
    request.response.set_cookie("b", "2", httponly=True)
    return {"session": request.cookies.get("session")}


def go(request: Request) -> HTTPFound:
    return HTTPFound(location=request.route_url("item", item_id=7))


def stream(request: Request) -> Response:
    return Response(app_iter=iter(STREAM_PARTS), content_type="text/plain")


def boom(request: Request) -> Response:
    raise RuntimeError(SECRET)


def preflight(request: Request) -> Response:
    return Response(status=204)


def add_cors_headers(event: NewResponse) -> None:
    event.response.headers.update(cors_headers(event.request.headers.get("Origin")))


def make_app() -> Any:
    with Configurator() as config:
        config.add_subscriber(add_cors_headers, NewResponse)
        config.add_route("item", r"/items/{item_id:\d+}")
        config.add_view(item, route_name="item", renderer="json", request_method="GET")
        config.add_view(preflight, route_name="item", request_method="OPTIONS")
        for name, view, method in (
            ("query", query, "GET"),
            ("json", echo_json, "POST"),
            ("form", form, "POST"),
            ("upload", upload, "POST"),
            ("cookies", cookies, "GET"),
            ("redirect", go, "GET"),
            ("stream", stream, "GET"),
            ("boom", boom, "GET"),
        ):
            config.add_route(name, "/" + name)
            config.add_view(view, route_name=name, renderer="json", request_method=method)
        config.add_static_view(name="static", path=str(STATIC_DIR))
        return config.make_wsgi_app()


app = make_app()
