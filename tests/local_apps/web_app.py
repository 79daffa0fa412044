"""A plain ASGI app served by uvicorn from `scf_bootstrap`: a web function for
`scf-asgi local --web` (the platform passes it raw HTTP, no events)."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable
from typing import Any, Callable
from urllib.parse import parse_qs

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


async def respond(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers or []})
    await send({"type": "http.response.body", "body": body})


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    path = scope["path"]
    query = parse_qs(scope["query_string"].decode("ascii"))
    if path == "/info":
        document = {
            "method": scope["method"],
            "path": path,
            "query": query,
            "headers": [[k.decode(), v.decode()] for k, v in scope["headers"]],
            "body": body.decode("utf-8", "replace"),
            "pid": os.getpid(),
            "port": os.environ.get("PORT"),
            "web_host": os.environ.get("SCF_ASGI_WEB_HOST"),
        }
        await respond(
            send, 200, json.dumps(document).encode(), [(b"content-type", b"application/json")]
        )
    elif path == "/fixed":
        await respond(send, 200, b"f" * 1000, [(b"content-length", b"1000")])
    elif path == "/echo":
        await respond(send, 200, body, [(b"content-type", b"application/octet-stream")])
    elif path == "/big-headers":
        await respond(send, 200, b"x", [(b"x-big", b"v" * 5000)])
    elif path == "/big-body":
        await respond(send, 200, b"x" * (7 * 1024 * 1024), [(b"content-type", b"text/plain")])
    elif path == "/sleep":
        await asyncio.sleep(float(query.get("s", ["5"])[0]))
        await respond(send, 200, b"slept")
    else:
        await respond(send, 404, b"not found", [(b"content-type", b"text/plain")])
