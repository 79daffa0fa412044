"""Calling an ASGI app: the HTTP request/response cycle, the scope, lifespan.

`HTTPCycle` is a small state machine that checks the order of the app's messages and collects
its response; when the last body chunk arrives it hands the finished `Response` to a callback
at once, so the answer can be posted while the app goes on with background work.
"""

from __future__ import annotations

import asyncio
import logging

from .errors import AppError
from .gateway import Request, Response

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Awaitable, MutableMapping
    from typing import Any, Callable

    Scope = MutableMapping[str, Any]
    Message = dict[str, Any]
    Receive = Callable[[], Awaitable[Message]]
    Send = Callable[[Message], Awaitable[None]]
    ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

__all__ = [
    "HTTPCycle",
    "Lifespan",
    "NullLifespan",
    "as_asgi3",
    "build_scope",
    "routes_on_relative_path",
]

logger = logging.getLogger("scf_asgi")


def routes_on_relative_path(app: object) -> bool:
    """Whether the app routes on a `path` without `root_path` (Falcon's ASGI App does)."""
    return type(app).__module__.split(".", 1)[0] == "falcon"


def as_asgi3(app: Any) -> ASGIApp:
    """The app as a single-callable ASGI 3 app (ASGI 2 double callables are wrapped)."""
    call = app if hasattr(app, "__code__") else type(app).__call__
    code = getattr(call, "__code__", None)
    if not isinstance(app, type) and code is not None and code.co_flags & 0x80:
        # A coroutine function (inspect.CO_COROUTINE): ASGI 3 already, no asgiref to import.
        return app  # type: ignore[no-any-return]
    from asgiref.compatibility import guarantee_single_callable

    return guarantee_single_callable(app)  # type: ignore[no-untyped-call,no-any-return]


def _headers_bytes(headers: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    try:
        return [(name.encode("ascii"), value.encode("ascii")) for name, value in headers]
    except UnicodeEncodeError:
        # Non-ASCII text: the gateway decoded the client's bytes as UTF-8, so the app gets
        # those bytes back (the same bytes a WSGI app sees in its environ).
        return [(name.encode(), value.encode()) for name, value in headers]


def build_scope(
    request: Request, state: dict[str, Any], extra: dict[str, Any], *, full_path: bool = True
) -> Scope:
    """The ASGI HTTP connection scope (spec 2.3).

    With `full_path`, `path` and `raw_path` include `root_path`, as uvicorn sends them and as
    Starlette, FastAPI, Quart, Litestar and Django expect; without it they are relative to
    `root_path`, the older reading of the spec that Falcon still routes on.
    """
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": request.method,
        "scheme": request.scheme,
        "path": request.root_path + request.path if full_path else request.path,
        "raw_path": request.raw_path(full_path),
        "root_path": request.root_path,
        "query_string": request.query_string,
        "headers": _headers_bytes(request.headers),
        "client": request.client,
        "server": request.server,
        "state": state.copy(),
    }
    scope.update(extra)
    return scope


# HTTPCycle states
_AWAITING_START = 0
_SENDING_BODY = 1
_COMPLETE = 2


class HTTPCycle:
    """One request/response exchange with an ASGI app.

    receive(): the whole request body in one message, then (once the response is complete)
    `http.disconnect`, since no more will ever come from a gateway event.
    send(): `http.response.start`, then `http.response.body` until `more_body` is false; anything
    else, in any other order, raises AppError into the app.
    """

    __slots__ = (
        "body",
        "state",
        "status",
        "headers",
        "parts",
        "on_complete",
        "_request_delivered",
        "_completed",
    )

    def __init__(self, body: bytes, on_complete: Callable[[Response], None]) -> None:
        self.body = body
        self.on_complete = on_complete
        self.state = _AWAITING_START
        self.status = 0
        self.headers: list[tuple[str, str]] = []
        self.parts: list[bytes] = []
        self._request_delivered = False
        self._completed: asyncio.Event | None = None  # made only if the app waits for disconnect

    @property
    def complete(self) -> bool:
        return self.state == _COMPLETE

    @property
    def started(self) -> bool:
        return self.state != _AWAITING_START

    async def receive(self) -> Message:
        if not self._request_delivered:
            self._request_delivered = True
            return {"type": "http.request", "body": self.body, "more_body": False}
        if self.state != _COMPLETE:
            if self._completed is None:
                self._completed = asyncio.Event()
            await self._completed.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        kind = message.get("type")
        if self.state == _SENDING_BODY:
            if kind == "http.response.body":
                chunk = message.get("body", b"")
                if chunk:
                    self.parts.append(chunk)
                if not message.get("more_body", False):
                    self._finish()
                return
            if kind == "http.response.trailers":
                return  # the gateway has no way to carry trailers
        elif self.state == _COMPLETE and kind == "http.response.trailers":
            return  # trailers come after the body; the gateway cannot carry them either
        elif self.state == _AWAITING_START:
            if kind == "http.response.start":
                self.status = int(message["status"])
                self.headers = [
                    (name.decode("latin-1"), value.decode("latin-1"))
                    for name, value in message.get("headers", ())
                ]
                self.state = _SENDING_BODY
                return
            if isinstance(kind, str) and kind.startswith("websocket."):
                raise AppError(
                    f"the app answered with {kind!r}: WebSockets cannot be served through "
                    "API gateway events, which carry one HTTP request and one response"
                )
            raise AppError(f"expected 'http.response.start' first, got {kind!r}")
        else:
            raise AppError(f"the response is already complete; cannot send {kind!r}")
        raise AppError(f"expected 'http.response.body', got {kind!r}")

    def _finish(self) -> None:
        self.state = _COMPLETE
        if self._completed is not None:
            self._completed.set()
        parts = self.parts
        body = parts[0] if len(parts) == 1 else b"".join(parts)
        self.on_complete(Response(self.status, self.headers, bytes(body)))


class NullLifespan:
    """Lifespan switched off: nothing to start, no shared state."""

    def __init__(self) -> None:
        self.state: dict[str, Any] = {}

    async def startup(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None


class Lifespan:
    """The ASGI lifespan protocol, run once per process around all invocations.

    mode "auto": an app that raises before reading the startup message is taken not to support
    lifespan (Django does this) and serving goes on; mode "on": that is a start-up failure too.
    An app that raises after reading it, or sends `lifespan.startup.failed`, has failed to
    start, in either mode.
    """

    def __init__(self, app: ASGIApp, mode: str = "auto") -> None:
        self.app = app
        self.mode = mode
        self.state: dict[str, Any] = {}
        self.supported = True
        self._startup_received = False
        self._failure: str | None = None
        self._queue: asyncio.Queue[Message] | None = None
        self._startup_done: asyncio.Event | None = None
        self._shutdown_done: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    async def startup(self) -> None:
        self._queue = asyncio.Queue()
        self._startup_done = asyncio.Event()
        self._shutdown_done = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run())
        self._queue.put_nowait({"type": "lifespan.startup"})
        await self._startup_done.wait()
        if self._failure is not None:
            # Starlette puts a whole traceback in the message (and it is logged already): the
            # error names just its last line.
            lines = [line for line in self._failure.splitlines() if line.strip()]
            raise AppError(f"ASGI lifespan startup failed: {lines[-1] if lines else '?'}")

    async def shutdown(self) -> None:
        if self._task is None or self._queue is None or self._shutdown_done is None:
            return
        if self.supported and not self._task.done():
            self._queue.put_nowait({"type": "lifespan.shutdown"})
            await self._shutdown_done.wait()
            if self._failure is not None:
                logger.error("ASGI lifespan shutdown failed: %s", self._failure)
        if not self._task.done():
            self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass

    async def _run(self) -> None:
        assert self._startup_done is not None and self._shutdown_done is not None
        scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
            "state": self.state,
        }
        try:
            await self.app(scope, self._receive, self._send)
        except Exception as exc:
            if self._startup_done.is_set():
                logger.exception("exception in the ASGI lifespan task")
            elif self.mode == "on" or self._startup_received:
                # It took the startup message, so it speaks lifespan: its startup failed.
                self._failure = f"{type(exc).__name__}: {exc}"
                logger.exception("the app raised during ASGI lifespan startup")
            else:
                # Raised before even reading a message (Django does): no lifespan support.
                self.supported = False
                logger.debug("ASGI lifespan unsupported by the app (%s); going on without", exc)
        else:
            if not self._startup_done.is_set():
                # Returned without ever answering startup: it does not speak lifespan.
                self.supported = False
                if self.mode == "on":
                    self._failure = "the app returned without completing lifespan startup"
        finally:
            self._startup_done.set()
            self._shutdown_done.set()

    async def _receive(self) -> Message:
        assert self._queue is not None
        message = await self._queue.get()
        self._startup_received = True
        return message

    async def _send(self, message: Message) -> None:
        assert self._startup_done is not None and self._shutdown_done is not None
        kind = message.get("type")
        if kind == "lifespan.startup.complete":
            self._startup_done.set()
        elif kind == "lifespan.startup.failed":
            self._failure = str(message.get("message") or "lifespan.startup.failed")
            self._startup_done.set()
        elif kind == "lifespan.shutdown.complete":
            self._shutdown_done.set()
        elif kind == "lifespan.shutdown.failed":
            self._failure = str(message.get("message") or "lifespan.shutdown.failed")
            self._shutdown_done.set()
        else:
            raise AppError(f"unexpected ASGI lifespan message {kind!r}")
