"""A small real Flask app for the end-to-end tests."""

from __future__ import annotations

from flask import Flask, jsonify, redirect, request, url_for

app = Flask(__name__)


@app.get("/items/<int:item_id>")
def item(item_id: int):  # type: ignore[no-untyped-def]
    return jsonify(
        id=item_id,
        q=request.args.getlist("q"),
        root=request.script_root,
        url=request.url,
        client=request.remote_addr,
    )


@app.post("/echo")
def echo():  # type: ignore[no-untyped-def]
    return (
        request.get_data(),
        200,
        {"Content-Type": request.content_type or "application/octet-stream"},
    )


@app.get("/cookies")
def cookies():  # type: ignore[no-untyped-def]
    response = jsonify(seen=request.cookies)
    response.set_cookie("a", "1")
    response.set_cookie("b", "2", httponly=True)
    return response


@app.get("/go")
def go():  # type: ignore[no-untyped-def]
    return redirect(url_for("item", item_id=7, _external=True))


@app.get("/large")
def large():  # type: ignore[no-untyped-def]
    size = int(request.args.get("bytes", "0"))
    return app.response_class(bytes(size), mimetype="application/octet-stream")


@app.get("/exit")
def exit_view():  # type: ignore[no-untyped-def]
    raise SystemExit(3)  # what argparse or click do with bad input, inside a view


@app.get("/boom")
def boom():  # type: ignore[no-untyped-def]
    raise RuntimeError("secret detail that must not leak")


@app.get("/stream")
def stream():  # type: ignore[no-untyped-def]
    def parts():  # type: ignore[no-untyped-def]
        yield b"one,"
        yield b"two"

    return app.response_class(parts(), mimetype="text/plain")
