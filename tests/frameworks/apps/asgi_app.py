"""A plain ASGI 3 callable, no framework: it speaks the lifespan protocol itself."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any, Callable
from urllib.parse import parse_qs

from .common import SECRET, STATIC_DIR, STREAM_PARTS, announce_shutdown, cors_headers
from .plain import parse_multipart

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

hooks: dict[str, bool] = {"started": False}


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
    elif scope["type"] == "http":
        await http(scope, receive, send)
    else:
        raise RuntimeError(f"unsupported scope type {scope['type']!r}")


async def lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            hooks["started"] = True
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            announce_shutdown("asgi")
            await send({"type": "lifespan.shutdown.complete"})
            return


async def http(scope: Scope, receive: Receive, send: Send) -> None:
    method = scope["method"]
    root_path = scope.get("root_path", "")
    path = scope["path"][len(root_path) :] if scope["path"].startswith(root_path) else scope["path"]
    request_headers = {
        name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]
    }
    cors = [
        (name.encode(), value.encode())
        for name, value in cors_headers(request_headers.get("origin")).items()
    ]

    async def body() -> bytes:
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                return b"".join(chunks)

    async def answer(
        status: int, content_type: str, content: bytes, *extra: tuple[bytes, bytes]
    ) -> None:
        headers = [(b"content-type", content_type.encode()), *cors, *extra]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})

    async def answer_json(value: Any, *extra: tuple[bytes, bytes]) -> None:
        await answer(200, "application/json", json.dumps(value).encode(), *extra)

    item = re.fullmatch(r"/items/(\d+)", path)
    if method == "OPTIONS" and item:
        await send({"type": "http.response.start", "status": 204, "headers": cors})
        await send({"type": "http.response.body", "body": b""})
    elif method in ("GET", "HEAD") and item:
        await answer_json({"id": int(item.group(1))})
    elif method == "GET" and path == "/query":
        fields = parse_qs(scope["query_string"].decode("ascii"), keep_blank_values=True)
        await answer_json({"q": fields.get("q", [])})
    elif method == "POST" and path == "/json":
        await answer_json({"received": json.loads(await body())})
    elif method == "POST" and path == "/form":
        fields = parse_qs((await body()).decode("utf-8"), keep_blank_values=True)
        await answer_json({"name": fields["name"][0], "note": fields["note"][0]})
    elif method == "POST" and path == "/upload":
        content_type = request_headers["content-type"]
        filename, data = parse_multipart(content_type, await body())["file"]
        await answer(200, "application/octet-stream", data, (b"x-upload-name", filename.encode()))
    elif method == "GET" and path == "/cookies":
        cookie = SimpleCookie(request_headers.get("cookie", ""))
        session = cookie["session"].value if "session" in cookie else None
        await answer_json(
            {"session": session},
            (b"set-cookie", b"a=1; Path=/"),
            (b"set-cookie", b"b=2; HttpOnly"),
        )
    elif method == "GET" and path == "/redirect":
        host = request_headers["host"]
        location = f"{scope['scheme']}://{host}{root_path}/items/7"
        headers = [(b"location", location.encode()), *cors]
        await send({"type": "http.response.start", "status": 302, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
    elif method == "GET" and path == "/static/blob.bin":
        await answer(200, "application/octet-stream", (STATIC_DIR / "blob.bin").read_bytes())
    elif method == "GET" and path == "/stream":
        headers = [(b"content-type", b"text/plain"), *cors]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for part in STREAM_PARTS:
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif method == "GET" and path == "/boom":
        raise RuntimeError(SECRET)
    elif method == "GET" and path == "/lifespan":
        await answer_json({"started": hooks["started"]})
    else:
        await answer(404, "text/plain", b"Not Found")
