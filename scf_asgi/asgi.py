"""Calling an ASGI app: the HTTP request/response cycle, the scope, lifespan.

`HTTPCycle` is a small state machine that checks the order of the app's messages and collects
its response; when the last body chunk arrives it hands the finished `Response` to a callback
at once, so the answer can be posted while the app goes on with background work.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from _thread import get_ident
from asyncio.events import _get_running_loop, _set_running_loop
from collections import deque
from types import FunctionType

from .errors import AppError
from .gateway import (
    FORWARDING_HEADERS,
    METHODS_WITH_BODY,
    HeaderNames,
    Request,
    Response,
    event_headers,
    forwarding_headers,
    header_values,
    quote_path,
    request_from_event,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Awaitable, Coroutine, Mapping, MutableMapping
    from typing import Any, Callable, TypeVar

    T = TypeVar("T")

    Scope = MutableMapping[str, Any]
    Message = dict[str, Any]
    Receive = Callable[[], Awaitable[Message]]
    Send = Callable[[Message], Awaitable[None]]
    ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

__all__ = [
    "HTTPCycle",
    "Lifespan",
    "NullLifespan",
    "TaskRunner",
    "as_asgi3",
    "routes_on_relative_path",
    "scope_from_event",
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


# Header name as sent -> lower-case bytes (b"": dropped).
_NAMES = HeaderNames(lambda lower: lower.encode("ascii"), b"")
_HOST, _PROTO, _PORT = FORWARDING_HEADERS
_CONTENT_LENGTH = b"content-length"


def _read_headers(headers: dict[str, Any]) -> list[tuple[bytes, bytes]]:
    """Header by header: any name, list and null values."""
    pairs: list[tuple[bytes, bytes]] = []
    form = _NAMES.form
    for name, value in headers.items():
        encoded: bytes = form(name)
        if encoded:
            values = [value] if value.__class__ is str else header_values(value)
            pairs.extend([(encoded, item.encode("utf-8")) for item in values])
    return pairs


def scope_from_event(
    event: Mapping[str, Any],
    state: dict[str, Any],
    extra: dict[str, Any],
    *,
    base_path: str = "",
    stage_prefix: str = "auto",
    full_path: bool = True,
) -> tuple[Scope, Request]:
    """The ASGI HTTP connection scope (spec 2.3) for a gateway event, and the `Request` read
    from it.

    Headers are read in one pass into (lower-case name, value) byte pairs, in event order; a
    list value gives one pair per item. Non-ASCII text becomes UTF-8: the gateway decoded the
    client's bytes as UTF-8, so the app gets those bytes back (the same bytes a WSGI app sees).
    With `full_path`, `path` and `raw_path` include `root_path`, as uvicorn sends them and as
    Starlette, FastAPI, Quart, Litestar and Django expect; without it they are relative to
    `root_path`, the older reading of the spec that Falcon still routes on. `state` is copied
    (shallowly) into the scope; `extra` entries are added last. Raises InvalidEventError for an
    event that cannot be read (see `request_from_event`).
    """
    raw_headers = event.get("headers") or {}
    if raw_headers.__class__ is not dict:
        raw_headers = event_headers(event)  # a mapping of another type, or an error
    headers: list[tuple[bytes, bytes]] | None = None
    if _NAMES.plain.issuperset(raw_headers):
        try:
            # The usual event (names met before, text values): read at C speed.
            headers = list(
                zip(
                    map(_NAMES.forms.__getitem__, raw_headers),
                    map(str.encode, raw_headers.values()),  # UTF-8
                )
            )
        except TypeError:  # a list, null or number among the values
            pass
    if headers is not None:
        get = raw_headers.get
        forwarding = (get(_HOST, ""), get(_PROTO, ""), get(_PORT, ""))
    else:
        headers = _read_headers(raw_headers)
        forwarding = forwarding_headers(raw_headers)
    request = request_from_event(
        event, base_path=base_path, stage_prefix=stage_prefix, forwarding=forwarding
    )
    if request.body or request.method in METHODS_WITH_BODY:
        headers.append((_CONTENT_LENGTH, str(len(request.body)).encode("ascii")))
    root_path = request.root_path
    path = root_path + request.path if full_path else request.path
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": request.method,
        "scheme": request.scheme,
        "path": path,
        "raw_path": quote_path(path),
        "root_path": root_path,
        "query_string": request.query_string,
        "headers": headers,
        "client": request.client,
        "server": request.server,
        "state": state.copy(),
    }
    if extra:
        scope.update(extra)
    return scope, request


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
        "complete",
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
        self.complete = False  # the whole response has been sent
        self._request_delivered = False
        self._completed: asyncio.Event | None = None  # made only if the app waits for disconnect

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
        state = self.state
        if kind == "http.response.body" and state == _SENDING_BODY:
            chunk = message.get("body", b"")
            if chunk:
                if chunk.__class__ is not bytes and not isinstance(chunk, (bytearray, memoryview)):
                    raise AppError(
                        f"'http.response.body' needs a byte string body, got {type(chunk).__name__}"
                    )
                self.parts.append(chunk)
            if not message.get("more_body", False):
                self._finish()
        elif kind == "http.response.start" and state == _AWAITING_START:
            self.status = int(message["status"])
            self.headers = [
                (name.decode("latin-1"), value.decode("latin-1"))
                for name, value in message.get("headers", ())
            ]
            self.state = _SENDING_BODY
        elif kind == "http.response.trailers" and state != _AWAITING_START:
            return  # after the body or not, the gateway has no way to carry trailers
        else:
            raise self._out_of_order(kind)

    def _out_of_order(self, kind: object) -> AppError:
        if self.state == _AWAITING_START:
            if isinstance(kind, str) and kind.startswith("websocket."):
                return AppError(
                    f"the app answered with {kind!r}: WebSockets cannot be served through "
                    "API gateway events, which carry one HTTP request and one response"
                )
            return AppError(f"expected 'http.response.start' first, got {kind!r}")
        if self.state == _COMPLETE:
            return AppError(f"the response is already complete; cannot send {kind!r}")
        return AppError(f"expected 'http.response.body', got {kind!r}")

    def _finish(self) -> None:
        parts = self.parts
        response = Response(
            self.status, self.headers, bytes(parts[0] if len(parts) == 1 else b"".join(parts))
        )
        self.state = _COMPLETE
        self.complete = True
        if self._completed is not None:
            self._completed.set()
        self.on_complete(response)


class TaskRunner:
    """Runs coroutines as Tasks on a loop that is not running, one at a time; `run` returns the
    result, as ``loop.run_until_complete`` does, and is cheaper when the coroutine never waits.

    For SCF's built-in runtime, which calls the handler once per event, entering the loop costs
    about as much as a small app's whole request: run_forever's setup, then a selector poll per
    iteration, twice. So `run` takes the Task's first steps itself, from the loop's ready queue,
    with the loop marked as running in this thread, as run_forever marks it: the app runs in a
    real Task (`current_task()`, sniffio and anyio, contextvars, `is_running()` all behave); on
    Python 3.12.5+, when the loop's `create_task` is asyncio's own and no task factory is set,
    its first step runs in the Task's constructor (``eager_start``), as
    `asyncio.eager_task_factory` runs it. As soon as anything needs the loop proper (a timer, a
    socket, a wake-up from a thread, or more than a few steps), the loop runs as usual. A loop
    without the expected internals (another implementation) always takes the usual way.
    """

    __slots__ = ("loop", "_steppable", "_eager", "_watched", "_hooks")

    _INTERNALS = (
        "_ready",
        "_scheduled",
        "_selector",
        "_thread_id",
        "_debug",
        "_closed",
        "_task_factory",
        "_asyncgen_firstiter_hook",
        "_asyncgen_finalizer_hook",
    )
    # Steps taken here at most; an app that keeps yielding (a polling loop) gets the real loop.
    _MAX_STEPS = 32
    # Python 3.12 can take a task's first step in its constructor (what eager_task_factory
    # does); before 3.12.5, get_coro() on a task that finished there crashes the interpreter
    # (CPython issue 122332).
    _EAGER_PYTHON = sys.version_info >= (3, 12, 5)

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        selector: Any = getattr(loop, "_selector", None)
        # The selector's own file descriptor -> key dict, a live view of what the loop watches
        # (its wake-up pipe at least); read directly, its len() costs no Python call.
        watched = getattr(selector, "_fd_to_key", None)
        self._steppable = (
            isinstance(loop, asyncio.BaseEventLoop)
            and all(hasattr(loop, name) for name in self._INTERNALS)
            and isinstance(loop._ready, deque)  # type: ignore[attr-defined]
            and isinstance(watched, dict)
        )
        # The eager first step bypasses loop.create_task: only where that is asyncio's own.
        self._eager = self._EAGER_PYTHON and self._steppable and _asyncio_create_task(loop)
        self._watched: dict[Any, Any] = watched if self._steppable else {}  # type: ignore[assignment]
        # The loop's async generator hooks (firstiter, finalizer), bound once.
        self._hooks: tuple[Any, Any] = (
            (loop._asyncgen_firstiter_hook, loop._asyncgen_finalizer_hook)  # type: ignore[attr-defined]
            if self._steppable
            else (None, None)
        )

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        loop: Any = self.loop
        if (
            not self._steppable
            or loop._debug
            or loop._closed
            or loop._thread_id is not None  # running, here or in another thread
            or _get_running_loop() is not None
        ):
            # Including the error cases: run_until_complete says what is wrong.
            return loop.run_until_complete(coroutine)  # type: ignore[no-any-return]
        ready: deque[asyncio.Handle] = loop._ready
        scheduled = loop._scheduled
        watched = self._watched
        eager = self._eager and not ready and loop._task_factory is None
        task: asyncio.Task[T] | None = None
        if not eager:
            # As run_until_complete makes it: before the loop counts as running, through
            # create_task (a task factory, a subclass or instrumentation sees it).
            task = loop.create_task(coroutine)
        hooks = sys.get_asyncgen_hooks()
        # As run_forever does: this thread runs the loop, and async generators the app starts
        # are the loop's to finalise.
        loop._thread_id = get_ident()
        sys.set_asyncgen_hooks(*self._hooks)
        _set_running_loop(loop)
        try:
            if task is None:
                # Made in two steps so that `task` is set even when its first step raises
                # KeyboardInterrupt out of the constructor.
                task = asyncio.Task.__new__(asyncio.Task)
                task.__init__(coroutine, loop=loop, eager_start=True)  # type: ignore[misc,call-arg,unused-ignore]
            steps = self._MAX_STEPS
            while ready and steps and not scheduled and len(watched) <= 1 and not task.done():
                steps -= 1
                handle = ready.popleft()
                if not handle._cancelled:
                    handle._run()
        except BaseException:
            # KeyboardInterrupt and SystemExit come out of the task's step; as run_until_complete
            # does, the task's copy counts as seen (no "exception was never retrieved" later).
            if task is not None and task.done() and not task.cancelled():
                task.exception()
            raise
        finally:
            _set_running_loop(None)
            sys.set_asyncgen_hooks(*hooks)
            loop._thread_id = None
        # Done, and nothing else to do: no callbacks, no timers, no sockets but the wake-up pipe.
        if task.done() and not ready and not scheduled and len(watched) <= 1:
            return task.result()
        # Waiting, or the loop has other work: the usual turn, as run_until_complete always gives.
        return loop.run_until_complete(task)  # type: ignore[no-any-return]


def _asyncio_create_task(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether `loop.create_task` is asyncio's own: not overridden by a subclass or on the
    loop, not wrapped (instrumentation wraps it to carry its context into new tasks)."""
    function = getattr(type(loop), "create_task", None)
    return (
        type(function) is FunctionType
        and getattr(function, "__module__", None) == "asyncio.base_events"
        and getattr(function, "__qualname__", None) == "BaseEventLoop.create_task"
        and not hasattr(function, "__wrapped__")
        and "create_task" not in getattr(loop, "__dict__", {})
    )


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
