"""A raw app that answers with what it was given, as ASGI or WSGI.

`app` takes any arguments (`*args`), so `interface="auto"` cannot tell which it is: the
`interface` option (`--interface`) decides. The answer is JSON of the request as the app saw
it, with the media type given by the `type` query parameter (application/json by default).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Iterable
from typing import Any, Callable
from urllib.parse import parse_qs


def _answer(seen: dict[str, Any], query_string: str) -> tuple[str, bytes]:
    media_type = parse_qs(query_string).get("type", ["application/json"])[0]
    return media_type, json.dumps(seen, sort_keys=True).encode("utf-8")


async def _asgi(
    scope: dict[str, Any],
    receive: Callable[[], Awaitable[dict[str, Any]]],
    send: Callable[[dict[str, Any]], Awaitable[None]],
) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    query_string = scope["query_string"].decode("latin-1")
    media_type, body = _answer(
        {
            "interface": "asgi",
            "method": scope["method"],
            "root_path": scope["root_path"],
            "path": scope["path"],
            "query_string": query_string,
            "scheme": scope["scheme"],
        },
        query_string,
    )
    headers = [(b"content-type", media_type.encode("latin-1"))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    query_string = environ.get("QUERY_STRING", "")
    media_type, body = _answer(
        {
            "interface": "wsgi",
            "method": environ["REQUEST_METHOD"],
            "root_path": environ["SCRIPT_NAME"],
            "path": environ["PATH_INFO"],
            "query_string": query_string,
            "scheme": environ["wsgi.url_scheme"],
        },
        query_string,
    )
    start_response("200 OK", [("Content-Type", media_type)])
    return [body]


def app(*args: Any) -> Any:
    if len(args) == 3:
        return _asgi(*args)  # a coroutine, awaited by the server
    return _wsgi(*args)


app._asgi_single_callable = True  # type: ignore[attr-defined]  # asgiref: not ASGI 2
