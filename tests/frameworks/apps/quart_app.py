"""Quart (ASGI), with its before_serving/after_serving hooks and static folder."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from quart import Quart, Response, jsonify, redirect, request, url_for

from .common import SECRET, STATIC_DIR, STREAM_PARTS, announce_shutdown, cors_headers

app = Quart(__name__, static_folder=str(STATIC_DIR), static_url_path="/static")
hooks: dict[str, bool] = {"started": False}


@app.before_serving
async def startup() -> None:
    hooks["started"] = True


@app.after_serving
async def shutdown() -> None:
    announce_shutdown("quart")


@app.get("/items/<int:item_id>")
async def item(item_id: int) -> Response:
    return jsonify(id=item_id)


@app.get("/query")
async def query() -> Response:
    return jsonify(q=request.args.getlist("q"))


@app.post("/json")
async def echo_json() -> Response:
    return jsonify(received=await request.get_json())


@app.post("/form")
async def form() -> Response:
    fields = await request.form
    return jsonify(name=fields["name"], note=fields["note"])


@app.post("/upload")
async def upload() -> Response:
    upload = (await request.files)["file"]
    response = Response(upload.read(), mimetype="application/octet-stream")
    response.headers["X-Upload-Name"] = upload.filename or ""
    return response


@app.get("/cookies")
async def cookies() -> Response:
    response = jsonify(session=request.cookies.get("session"))
    response.set_cookie("a", "1")
    response.set_cookie("b", "2", httponly=True)
    return response


@app.get("/redirect")
async def go() -> Any:
    return redirect(url_for("item", item_id=7, _external=True), 302)


@app.get("/stream")
async def stream() -> Any:
    async def parts() -> AsyncIterator[bytes]:
        for part in STREAM_PARTS:
            yield part

    return parts(), 200, {"Content-Type": "text/plain"}


@app.get("/boom")
async def boom() -> Response:
    raise RuntimeError(SECRET)


@app.get("/lifespan")
async def lifespan_state() -> Response:
    return jsonify(started=hooks["started"])


@app.after_request
async def add_cors_headers(response: Response) -> Response:
    response.headers.update(cors_headers(request.headers.get("Origin")))
    return response
