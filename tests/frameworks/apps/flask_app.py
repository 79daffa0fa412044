"""Flask (WSGI)."""

from __future__ import annotations

from flask import Flask, Response, jsonify, redirect, request, url_for

from .common import SECRET, STATIC_DIR, STREAM_PARTS, cors_headers

app = Flask(__name__, static_folder=str(STATIC_DIR), static_url_path="/static")


@app.get("/items/<int:item_id>")
def item(item_id: int) -> Response:
    return jsonify(id=item_id)


@app.get("/query")
def query() -> Response:
    return jsonify(q=request.args.getlist("q"))


@app.post("/json")
def echo_json() -> Response:
    return jsonify(received=request.get_json())


@app.post("/form")
def form() -> Response:
    return jsonify(name=request.form["name"], note=request.form["note"])


@app.post("/upload")
def upload() -> Response:
    upload = request.files["file"]
    response = Response(upload.read(), mimetype="application/octet-stream")
    response.headers["X-Upload-Name"] = upload.filename or ""
    return response


@app.get("/cookies")
def cookies() -> Response:
    response = jsonify(session=request.cookies.get("session"))
    response.set_cookie("a", "1")
    response.set_cookie("b", "2", httponly=True)
    return response


@app.get("/redirect")
def go() -> Response:
    return redirect(url_for("item", item_id=7, _external=True), 302)


@app.get("/stream")
def stream() -> Response:
    return Response(iter(STREAM_PARTS), mimetype="text/plain")


@app.get("/boom")
def boom() -> Response:
    raise RuntimeError(SECRET)


@app.after_request
def add_cors_headers(response: Response) -> Response:
    response.headers.update(cors_headers(request.headers.get("Origin")))
    return response
