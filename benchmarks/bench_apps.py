"""The apps every contender serves: the same objects, whichever adapter calls them.

`asgi_app` and `wsgi_app` do the same small amount of work: parse a JSON body, read two query
parameters and one request cookie, answer JSON with two `Set-Cookie` headers. `binary_app` echoes
a binary body back as `application/octet-stream`. `expected_json` is what a correct adapter must
make them answer for the benchmark request (checked once, before any timing).

Only json and urllib.parse are imported, so importing this module adds almost nothing to a cold
start.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Awaitable, Iterable
    from typing import Any, Callable

    Receive = Callable[[], Awaitable[dict[str, Any]]]
    Send = Callable[[dict[str, Any]], Awaitable[None]]

SET_COOKIES = ("session=s3cr3t; Path=/; HttpOnly", "theme=dark; Path=/; Max-Age=3600")
_JSON = b"application/json"
_OCTETS = b"application/octet-stream"


def _answer(body: bytes, query_string: str, cookie_header: str) -> bytes:
    data = json.loads(body)
    query = dict(parse_qsl(query_string))
    user = ""
    for part in cookie_header.split(";"):
        name, _, value = part.strip().partition("=")
        if name == "user":
            user = value
    return json.dumps(
        {"hello": data["name"], "q": query.get("q"), "page": query.get("page"), "user": user},
        separators=(",", ":"),
    ).encode("utf-8")


def expected_json() -> dict[str, Any]:
    """The JSON document the JSON apps answer to the benchmark request (see events.py)."""
    return {"hello": "scf", "q": "fast apps", "page": "2", "user": "alice"}


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _read_body(receive: Receive) -> bytes:
    message = await receive()
    body = message.get("body", b"")
    while message.get("more_body", False):
        message = await receive()
        body += message.get("body", b"")
    return body


async def asgi_app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    body = await _read_body(receive)
    cookie = ""
    for name, value in scope["headers"]:
        if name == b"cookie":
            cookie = value.decode("latin-1")
    payload = _answer(body, scope["query_string"].decode("latin-1"), cookie)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", _JSON),
                (b"content-length", str(len(payload)).encode("ascii")),
                (b"set-cookie", SET_COOKIES[0].encode("latin-1")),
                (b"set-cookie", SET_COOKIES[1].encode("latin-1")),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length)
    payload = _answer(body, environ.get("QUERY_STRING", ""), environ.get("HTTP_COOKIE", ""))
    start_response(
        "200 OK",
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(payload))),
            ("Set-Cookie", SET_COOKIES[0]),
            ("Set-Cookie", SET_COOKIES[1]),
        ],
    )
    return [payload]


async def binary_app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    """Echo the request body back, as bytes the gateway must carry in base64."""
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    body = await _read_body(receive)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", _OCTETS),
                (b"content-length", str(len(body)).encode("ascii")),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
