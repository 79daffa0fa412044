"""Bottle (WSGI)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from bottle import Bottle, HTTPResponse, redirect, request, response, static_file

from .common import SECRET, STATIC_DIR, STREAM_PARTS, cors_headers

app = Bottle()


@app.get("/items/<item_id:int>", name="item")
def item(item_id: int) -> dict[str, Any]:
    return {"id": item_id}


@app.get("/query")
def query() -> dict[str, Any]:
    # Bottle keeps raw values as latin-1 "native strings"; decode() gives the real text.
    return {"q": request.query.decode().getall("q")}


@app.post("/json")
def echo_json() -> dict[str, Any]:
    return {"received": request.json}


@app.post("/form")
def form() -> dict[str, Any]:
    fields = request.forms.decode()
    return {"name": fields.get("name"), "note": fields.get("note")}


@app.post("/upload")
def upload() -> bytes:
    upload = request.files.get("file")
    response.content_type = "application/octet-stream"
    response.set_header("X-Upload-Name", upload.raw_filename)
    return upload.file.read()


@app.get("/cookies")
def cookies() -> dict[str, Any]:
    response.set_cookie("a", "1")
    response.set_cookie("b", "2", httponly=True)
    return {"session": request.get_cookie("session")}


@app.get("/redirect")
def go() -> None:
    # get_url gives the path under SCRIPT_NAME; redirect() makes it absolute from the request.
    redirect(app.get_url("item", item_id=7), 302)


@app.get("/static/<filename:path>")
def static(filename: str) -> HTTPResponse:
    return static_file(filename, root=str(STATIC_DIR))


@app.get("/stream")
def stream() -> Iterator[bytes]:
    response.content_type = "text/plain"
    return iter(STREAM_PARTS)


@app.get("/boom")
def boom() -> None:
    raise RuntimeError(SECRET)


@app.route("/items/<item_id:int>", method="OPTIONS")
def preflight(item_id: int) -> HTTPResponse:
    return HTTPResponse(status=204)


@app.hook("after_request")
def add_cors_headers() -> None:
    for name, value in cors_headers(request.headers.get("Origin")).items():
        response.set_header(name, value)
