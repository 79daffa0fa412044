"""Raw ASGI and WSGI apps that show exactly what they were given, or answer with exactly the
headers they are told to, for the property-based tests (tests/test_properties.py).

Any path but RESPOND answers JSON of the request as the app got it: method, path, query string,
headers (ASGI: the scope's byte pairs; WSGI: the environ's HTTP_* and CONTENT_* entries), the
body, each byte string as base64. RESPOND answers 200 "ok" with the response headers listed in
the request body: JSON ``[[name, value], ...]``, base64 of bytes for ASGI, text for WSGI.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Iterable
from typing import Any, Callable

RESPOND = "/_respond"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


async def asgi_app(
    scope: dict[str, Any],
    receive: Callable[[], Awaitable[dict[str, Any]]],
    send: Callable[[dict[str, Any]], Awaitable[None]],
) -> None:
    if scope["type"] != "http":
        return  # no lifespan
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    if scope["path"] == RESPOND:
        headers = [(base64.b64decode(n), base64.b64decode(v)) for n, v in json.loads(body)]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    seen = {
        "method": scope["method"],
        "path": scope["path"],
        "raw_path": _b64(scope["raw_path"]),
        "root_path": scope["root_path"],
        "query_string": _b64(scope["query_string"]),
        "headers": [[_b64(name), _b64(value)] for name, value in scope["headers"]],
        "body": _b64(body),
    }
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": json.dumps(seen).encode()})


def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    body = environ["wsgi.input"].read()
    if environ["PATH_INFO"] == RESPOND:
        start_response("200 OK", [(name, value) for name, value in json.loads(body)])
        return [b"ok"]
    seen = {
        "method": environ["REQUEST_METHOD"],
        "path": _b64(environ["PATH_INFO"].encode("latin-1")),
        "script_name": environ["SCRIPT_NAME"],
        "query_string": _b64(environ["QUERY_STRING"].encode("latin-1")),
        "headers": {
            key: _b64(value.encode("latin-1"))
            for key, value in environ.items()
            if key.startswith("HTTP_") or key in ("CONTENT_TYPE", "CONTENT_LENGTH")
        },
        "body": _b64(body),
    }
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(seen).encode()]
