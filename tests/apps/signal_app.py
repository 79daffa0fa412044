"""Apps with a signal handler of their own (as a SIGALRM request timeout or a SIGUSR1 log hook
installs one): GET /raise sends the process SIGUSR1 while the event is handled; every answer
says how many the handler has seen."""

from __future__ import annotations

import os
import signal
from typing import Any, Callable

seen: list[int] = []


def _on_usr1(signum: int, frame: object) -> None:
    seen.append(signum)


signal.signal(signal.SIGUSR1, _on_usr1)


def _answer(path: str) -> bytes:
    if path.endswith("/raise"):
        os.kill(os.getpid(), signal.SIGUSR1)
    return f"usr1 {len(seen)}".encode()


def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    body = _answer(environ["PATH_INFO"])
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = _answer(scope["path"])
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain")],
        }
    )
    await send({"type": "http.response.body", "body": body})
