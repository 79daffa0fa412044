"""Calling an ASGI app: the scope, the HTTP request/response cycle, lifespan, and the runner
that owns the process's one event loop.

`HTTPCycle` and `Lifespan` are small state machines with named states; they check the order
of the app's messages and hold what it answered, and neither knows where the answer goes.
`AsgiRunner` runs one event: the scope from the `Request`, the app, and the answer handed to
the event's `HttpExchange` as soon as the app has sent its whole response, so that background
work the app does afterwards does not delay the client.
"""

from __future__ import annotations

import asyncio
import threading
import weakref

from .detect import is_coroutine_callable, routes_on_relative_path
from .errors import AppError, ConfigurationError
from .gateway import Response, quote_path, response_header_problem
from .logs import log_debug, log_error

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Awaitable, MutableMapping
    from typing import Any, Callable, TypeVar

    from .context import Context
    from .exchange import HttpExchange
    from .gateway import Request

    T = TypeVar("T")

    Scope = MutableMapping[str, Any]
    Message = dict[str, Any]
    Receive = Callable[[], Awaitable[Message]]
    Send = Callable[[Message], Awaitable[None]]
    ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

__all__ = ["AsgiRunner", "HTTPCycle", "Lifespan", "as_asgi3", "scope_from_request"]


def as_asgi3(app: Any) -> ASGIApp:
    """The app as a single-callable ASGI 3 app (ASGI 2 double callables are wrapped)."""
    if is_coroutine_callable(app):
        return app  # type: ignore[no-any-return]
    from asgiref.compatibility import guarantee_single_callable

    return guarantee_single_callable(app)  # type: ignore[no-untyped-call,no-any-return]


def scope_from_request(
    request: Request, context: Context, state: dict[str, Any], *, full_path: bool = True
) -> Scope:
    """The ASGI HTTP connection scope (spec 2.3) of a request.

    With `full_path`, `path` and `raw_path` include `root_path`, as uvicorn sends them and as
    Starlette, FastAPI, Quart, Litestar and Django expect; without it they are relative to
    `root_path`, the older reading of the spec that Falcon still routes on. `state` (the
    lifespan's) is copied shallowly, as the spec asks; the raw event and the `Context` are
    ``scf.event`` and ``scf.context``.
    """
    root_path = request.root_path
    path = root_path + request.path if full_path else request.path
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": request.method,
        "scheme": request.scheme,
        "path": path,
        "raw_path": quote_path(path),
        "root_path": root_path,
        "query_string": request.query_string,
        "headers": list(zip(request.header_names.raw, map(str.encode, request.header_values))),
        "client": request.client,
        "server": request.server,
        "state": state.copy(),
        "scf.event": request.event,
        "scf.context": context,
    }


# The states of an HTTPCycle.
AWAITING_START = "awaiting http.response.start"
SENDING_BODY = "sending http.response.body"
COMPLETE = "complete"


class HTTPCycle:
    """One request/response exchange with an ASGI app.

    receive(): the whole request body in one message, then (once the response is complete)
    `http.disconnect`, since no more will ever come from a gateway event.
    send(): `http.response.start`, then `http.response.body` until `more_body` is false; anything
    else, in any other order, raises AppError into the app. Once COMPLETE, `response` holds
    what the app answered.
    """

    __slots__ = ("body", "state", "status", "headers", "parts", "response", "_sent", "_done")

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.state = AWAITING_START
        self.status = 0
        self.headers: list[tuple[str, str]] = []
        self.parts: list[bytes | bytearray | memoryview] = []
        self.response: Response | None = None
        self._sent = False  # the request message has been received by the app
        self._done: asyncio.Event | None = None  # made only if the app waits for disconnect

    async def receive(self) -> Message:
        if not self._sent:
            self._sent = True
            return {"type": "http.request", "body": self.body, "more_body": False}
        if self.state is not COMPLETE:
            if self._done is None:
                self._done = asyncio.Event()
            await self._done.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        kind = message.get("type")
        state = self.state
        if kind == "http.response.body" and state is SENDING_BODY:
            chunk = message.get("body", b"")
            if chunk:
                if not isinstance(chunk, (bytes, bytearray, memoryview)):
                    raise AppError(
                        f"'http.response.body' needs a byte string body, got {type(chunk).__name__}"
                    )
                self.parts.append(chunk)
            if not message.get("more_body", False):
                parts = self.parts
                body = bytes(parts[0] if len(parts) == 1 else b"".join(parts))
                self.response = Response(self.status, self.headers, body)
                self.state = COMPLETE
                if self._done is not None:
                    self._done.set()
        elif kind == "http.response.start" and state is AWAITING_START:
            status: Any = message.get("status")
            if status.__class__ is not int or not 100 <= status <= 599:
                raise AppError(
                    f"'http.response.start' needs a status from 100 to 599, got {status!r}"
                )
            self.status = status
            headers = [
                (name.decode("latin-1"), value.decode("latin-1"))
                for name, value in message.get("headers", ())
            ]
            problem = response_header_problem(headers)
            if problem:
                raise AppError(problem)
            self.headers = headers
            self.state = SENDING_BODY
        elif kind == "http.response.trailers" and state is not AWAITING_START:
            return  # after the body or not, the gateway has no way to carry trailers
        else:
            raise self._out_of_order(kind)

    def _out_of_order(self, kind: object) -> AppError:
        if self.state is AWAITING_START:
            if isinstance(kind, str) and kind.startswith("websocket."):
                return AppError(
                    f"the app answered with {kind!r}: WebSockets cannot be served through "
                    "API gateway events, which carry one HTTP request and one response"
                )
            return AppError(f"expected 'http.response.start' first, got {kind!r}")
        if self.state is COMPLETE:
            return AppError(f"the response is already complete; cannot send {kind!r}")
        return AppError(f"expected 'http.response.body', got {kind!r}")


# The phases of a Lifespan.
NOT_STARTED = "not started"
STARTING = "starting"
STARTED = "started"
UNSUPPORTED = "unsupported"  # the app does not speak lifespan; serving goes on without
STARTUP_FAILED = "startup failed"
SHUTTING_DOWN = "shutting down"
STOPPED = "stopped"
SHUTDOWN_FAILED = "shutdown failed"


class Lifespan:
    """The ASGI lifespan protocol (spec 2.0), run once per process around all invocations.

    mode "auto": an app that raises before reading the startup message, or returns without
    answering it, is taken not to support lifespan (Django does this) and serving goes on; mode
    "on": that is a startup failure too. An app that raises (anything, SystemExit included)
    after reading it, or sends `lifespan.startup.failed`, has failed to start, in either mode.
    Shutdown is sent only to an app that started; a startup failure and a shutdown failure are
    told apart in `phase`.
    """

    def __init__(self, app: ASGIApp, mode: str = "auto") -> None:
        self.app = app
        self.mode = mode
        self.state: dict[str, Any] = {}  # the lifespan scope's state, copied into every scope
        self.phase = NOT_STARTED
        self.failure = ""  # what the app said or raised, for a failed startup or shutdown
        self._received_startup = False
        self._inbox: asyncio.Queue[Message] | None = None
        self._answered: asyncio.Event | None = None  # the app answered the current message
        self._task: asyncio.Task[None] | None = None

    async def startup(self) -> None:
        """Run startup; AppError if the app failed to start."""
        self.phase = STARTING
        self._inbox = asyncio.Queue()
        self._answered = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run())
        self._inbox.put_nowait({"type": "lifespan.startup"})
        await self._answered.wait()
        if self.phase is STARTUP_FAILED:
            # Starlette puts a whole traceback in the message (and it is logged already): the
            # error names just its last line.
            lines = [line for line in self.failure.splitlines() if line.strip()]
            raise AppError(f"ASGI lifespan startup failed: {lines[-1] if lines else '?'}")

    async def shutdown(self) -> None:
        """Run shutdown if the app started; a failure is logged."""
        task = self._task
        if task is None:
            return
        if self.phase is STARTED and not task.done():
            assert self._inbox is not None and self._answered is not None
            self.phase = SHUTTING_DOWN
            self._answered.clear()
            self._inbox.put_nowait({"type": "lifespan.shutdown"})
            await self._answered.wait()
            if self.phase is SHUTDOWN_FAILED:
                log_error("ASGI lifespan shutdown failed: %s", self.failure)
        if not task.done():
            task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass

    async def _run(self) -> None:
        assert self._answered is not None
        scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
            "state": self.state,
        }
        try:
            await self.app(scope, self._receive, self._send)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # sys.exit() in a startup hook, a cancellation: failures too
            if isinstance(exc, asyncio.CancelledError) and self.phase is not STARTING:
                raise  # shutdown() ending a task that outlived its lifespan
            phase = self.phase
            if phase is STARTING:
                if self.mode == "on" or self._received_startup:
                    # It took the startup message, so it speaks lifespan: its startup failed.
                    self._end(STARTUP_FAILED, f"{type(exc).__name__}: {exc}")
                    log_error("the app raised during ASGI lifespan startup", exc_info=exc)
                else:
                    # Raised before even reading a message (Django does): no lifespan support.
                    self._end(UNSUPPORTED, "")
                    log_debug("ASGI lifespan unsupported by the app (%s)", exc)
            elif phase is SHUTTING_DOWN:
                self._end(SHUTDOWN_FAILED, f"{type(exc).__name__}: {exc}")
            else:
                log_error("exception in the ASGI lifespan task", exc_info=exc)
        else:
            if self.phase is STARTING:
                # Returned without ever answering startup: it does not speak lifespan.
                if self.mode == "on":
                    self._end(
                        STARTUP_FAILED, "the app returned without completing lifespan startup"
                    )
                else:
                    self._end(UNSUPPORTED, "")
            elif self.phase is SHUTTING_DOWN:
                self._end(STOPPED, "")
        finally:
            self._answered.set()

    def _end(self, phase: str, failure: str) -> None:
        assert self._answered is not None
        self.phase = phase
        self.failure = failure
        self._answered.set()

    async def _receive(self) -> Message:
        assert self._inbox is not None
        message = await self._inbox.get()
        self._received_startup = True
        return message

    async def _send(self, message: Message) -> None:
        kind = message.get("type")
        phase = self.phase
        if phase is STARTING and kind == "lifespan.startup.complete":
            self._end(STARTED, "")
        elif phase is STARTING and kind == "lifespan.startup.failed":
            self._end(STARTUP_FAILED, str(message.get("message") or kind))
        elif phase is SHUTTING_DOWN and kind == "lifespan.shutdown.complete":
            self._end(STOPPED, "")
        elif phase is SHUTTING_DOWN and kind == "lifespan.shutdown.failed":
            self._end(SHUTDOWN_FAILED, str(message.get("message") or kind))
        else:
            raise AppError(f"unexpected ASGI lifespan message {kind!r} while {phase}")


def event_loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop]:
    """What makes the process's event loop: uvloop's for "uvloop", and for "auto" when it is
    installed; asyncio's own otherwise. ConfigurationError for "uvloop" without uvloop."""
    if choice != "asyncio":
        try:
            import uvloop
        except ImportError:
            if choice == "uvloop":
                raise ConfigurationError(
                    "loop='uvloop' needs uvloop: pip install 'scf-asgi[speed]'"
                ) from None
        else:
            return uvloop.new_event_loop
    return asyncio.new_event_loop


def _close_loop(loop: asyncio.AbstractEventLoop, lifespan: Lifespan | None) -> None:
    """Shut the app's lifespan down, end what is left on the loop (detached tasks, async
    generators, the default executor) and close it."""
    if loop.is_closed() or loop.is_running():
        return
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        _finish(loop, lifespan)
    else:
        # Collected while another loop runs in this thread, which cannot run this one.
        helper = threading.Thread(target=_finish, args=(loop, lifespan), daemon=True)
        helper.start()
        helper.join(10)


def _finish(loop: asyncio.AbstractEventLoop, lifespan: Lifespan | None) -> None:
    async def end() -> None:
        if lifespan is not None:
            await lifespan.shutdown()
        left = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in left:
            task.cancel()
        await asyncio.gather(*left, return_exceptions=True)
        await loop.shutdown_asyncgens()
        shutdown_executor = getattr(loop, "shutdown_default_executor", None)  # not on uvloop
        if shutdown_executor is not None:
            await shutdown_executor()

    try:
        loop.run_until_complete(end())
    finally:
        loop.close()


class AsgiRunner:
    """Runs an ASGI app on the process's one event loop, which it owns with the lifespan.

    One loop for the whole process: clients, pools and locks made at startup or in one
    invocation keep working in the next. Through the runtime loop, `startup` runs before the
    platform is told the instance is ready; in process (SCF's built-in runtime) it runs on the
    first HTTP event, and a failed startup fails that event and every later one.
    """

    is_async = True

    def __init__(
        self, app: Any, *, lifespan: str, root_path_in_path: str, loop: str = "auto"
    ) -> None:
        self.app = as_asgi3(app)
        self.new_loop = event_loop_factory(loop)
        self.lifespan = None if lifespan == "off" else Lifespan(self.app, lifespan)
        if root_path_in_path == "auto":
            self.full_path = not routes_on_relative_path(app)
        else:
            self.full_path = root_path_in_path == "on"
        self.started = False
        self._state: dict[str, Any] = {} if self.lifespan is None else self.lifespan.state
        self._startup_failure: AppError | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._finalizer: weakref.finalize[Any, Any]
        self._current: asyncio.Task[Any] | None = None  # the task of the run under way

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None or self._loop.is_closed():
            self._loop = self.new_loop()
            asyncio.set_event_loop(self._loop)
            # An Adapter used in process is seldom closed: when it goes, or the interpreter
            # exits, the app's lifespan is shut down and the loop closed, rather than left for
            # asyncio to report as a task destroyed while pending.
            self._finalizer = weakref.finalize(self, _close_loop, self._loop, self.lifespan)
        return self._loop

    def run(self, awaitable: Awaitable[T]) -> T:
        """Run `awaitable` to completion in a Task on the process's loop (which is not running).

        As run_until_complete does, but the loop stops in the same turn as the work ends, where
        run_until_complete takes one more turn (a selector poll, its callback): for an event
        that never waits, that turn cost as much as a third of the whole in-process event.
        """
        loop = self.loop
        task = loop.create_task(self._stop_when_done(awaitable))
        self._current = task
        try:
            loop.run_forever()
        except BaseException:
            # Stopped before the work ended (a KeyboardInterrupt out of the loop): the task is
            # abandoned, and its end must not stop a later run.
            self._current = None
            if task.done():
                if not task.cancelled():
                    task.exception()  # seen: no "exception was never retrieved" later
            else:
                task.cancel()
            raise
        self._current = None
        return task.result()

    async def _stop_when_done(self, awaitable: Awaitable[T]) -> T:
        try:
            return await awaitable
        finally:
            if self._current is asyncio.current_task():
                self.loop.stop()

    async def startup(self) -> None:
        """Lifespan startup, once; AppError (a new one each time, caused by the first) if it
        failed."""
        if self._startup_failure is None and not self.started:
            if self.lifespan is not None:
                try:
                    await self.lifespan.startup()
                except AppError as exc:
                    self._startup_failure = exc
            self.started = self._startup_failure is None
        if self._startup_failure is not None:
            raise AppError(str(self._startup_failure)) from self._startup_failure

    async def shutdown(self) -> None:
        if self.lifespan is not None:
            await self.lifespan.shutdown()
        self.started = False

    def close(self) -> None:
        """Lifespan shutdown, then the loop closed."""
        if self._loop is not None:
            self._finalizer()
        self.started = False
        self._loop = None

    async def serve_http(self, request: Request, context: Context, exchange: HttpExchange) -> None:
        """Run the app on one request; `exchange` gets exactly one answer."""
        if not self.started:
            try:
                await self.startup()
            except AppError as exc:
                exchange.fail("AppError", str(exc), exc)
                return
        scope = scope_from_request(request, context, self._state, full_path=self.full_path)
        cycle = HTTPCycle(request.body)
        early = not exchange.errors_as_invocation
        post_error: Exception | None = None

        async def send(message: Message) -> None:
            nonlocal post_error
            await cycle.send(message)
            if early and cycle.response is not None and not exchange.answered:
                try:
                    exchange.respond(cycle.response)
                except Exception as exc:  # a failed post is not the app's to handle
                    post_error = exc

        try:
            await self.app(scope, cycle.receive, send)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # SystemExit and CancelledError from the app too
            if exchange.answered:
                exchange.raised_after_response(exc)
            else:
                exchange.app_failed(exc)
        else:
            if cycle.response is None:
                what = "sending" if cycle.state is AWAITING_START else "completing"
                exchange.app_failed(AppError(f"the ASGI app returned without {what} a response"))
            elif not exchange.answered:
                exchange.respond(cycle.response)
        if post_error is not None:
            raise post_error
