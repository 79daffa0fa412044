"""A small FastAPI app for SCF: JSON, a form with a file upload, a cookie, a redirect, and a
lifespan that opens a shared resource once per instance.

Locally:  uvicorn app:app              (plain development server)
          scf-asgi local app:app       (the platform's behaviour: events, limits, base64)
On SCF:   scf-asgi package app:app (or deploy): the zip's bootstrap runs `scf-asgi run app:app`.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import FastAPI, File, Form, Request, Response, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    # Runs once per instance, before the first event: open pools and clients here.
    yield {"greeting": "Hello from FastAPI on SCF"}


app = FastAPI(title="scf-asgi FastAPI example", lifespan=lifespan)


class Item(BaseModel):
    name: str
    price: float


@app.get("/", response_class=HTMLResponse)
async def index(request: Request) -> str:
    return f"""<!doctype html>
<title>scf-asgi FastAPI example</title>
<h1>{request.state.greeting}</h1>
<p id="status">loading...</p>
<form method="post" action="{request.url_for("upload")}" enctype="multipart/form-data">
  <input name="name" placeholder="your name"> <input type="file" name="file">
  <button>Upload</button>
</form>
<p><a href="{request.url_for("visit")}">count my visits</a> ·
   <a href="{request.scope["root_path"]}/docs">API docs</a></p>
<script>
fetch("{request.url_for("create_item")}", {{method: "POST",
  headers: {{"content-type": "application/json"}},
  body: JSON.stringify({{name: "widget", price: 2.5}})}})
  .then(r => r.json())
  .then(d => {{
    const text = "API says: " + d.name + " costs " + d.price_with_tax;
    document.getElementById("status").textContent = text;
  }});
</script>
"""


@app.post("/api/items")
async def create_item(item: Item) -> dict[str, Any]:
    return {"name": item.name, "price_with_tax": round(item.price * 1.06, 2)}


@app.post("/upload")
async def upload(
    name: Annotated[str, Form()], file: Annotated[UploadFile, File()]
) -> dict[str, Any]:
    data = await file.read()
    return {
        "name": name,
        "filename": file.filename,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


@app.get("/visit")
async def visit(request: Request, response: Response) -> dict[str, int]:
    count = int(request.cookies.get("visits", "0")) + 1
    response.set_cookie("visits", str(count), httponly=True, samesite="lax")
    response.set_cookie("seen_example", "fastapi", samesite="lax")
    return {"visits": count}


@app.get("/old-home")
async def old_home(request: Request) -> RedirectResponse:
    return RedirectResponse(request.url_for("index"), status_code=302)


if __name__ == "__main__":
    from scf_asgi import serve

    serve(app)
