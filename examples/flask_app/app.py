"""A small Flask app for SCF: JSON, a form with a file upload, a cookie and a redirect.

Locally:  flask --app app run          (plain development server)
          scf-asgi local app:app       (the platform's behaviour: events, limits, base64)
On SCF:   scf-asgi package app:app (or deploy): the zip's bootstrap runs `scf-asgi run app:app`.
"""

from __future__ import annotations

import hashlib

from flask import Flask, jsonify, make_response, redirect, request, url_for

app = Flask(__name__)

FORM = """<!doctype html>
<title>scf-asgi Flask example</title>
<h1>Hello from Flask on SCF</h1>
<form method="post" action="{action}" enctype="multipart/form-data">
  <input name="name" placeholder="your name">
  <input type="file" name="file">
  <button>Upload</button>
</form>
<p><a href="{visit}">count my visits</a></p>
"""


@app.get("/")
def index():  # type: ignore[no-untyped-def]
    return FORM.format(action=url_for("upload"), visit=url_for("visit"))


@app.get("/api/items/<int:item_id>")
def item(item_id: int):  # type: ignore[no-untyped-def]
    return jsonify(
        id=item_id,
        tags=request.args.getlist("tag"),
        url=url_for("item", item_id=item_id, _external=True),
    )


@app.post("/upload")
def upload():  # type: ignore[no-untyped-def]
    uploaded = request.files.get("file")
    data = uploaded.read() if uploaded else b""
    return jsonify(
        name=request.form.get("name", ""),
        filename=uploaded.filename if uploaded else None,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )


@app.get("/visit")
def visit():  # type: ignore[no-untyped-def]
    count = int(request.cookies.get("visits", "0")) + 1
    response = make_response(jsonify(visits=count))
    response.set_cookie("visits", str(count), httponly=True, samesite="Lax")
    response.set_cookie("seen_example", "flask", samesite="Lax")
    return response


@app.get("/old-home")
def old_home():  # type: ignore[no-untyped-def]
    return redirect(url_for("index"))


if __name__ == "__main__":
    from scf_asgi import serve

    serve(app)
