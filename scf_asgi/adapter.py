"""`Adapter`: one app, its options and its runner; `handle` answers one event.

One event's path: `handle(event, context, responder)` -> an HTTP event (an API gateway or
function URL request) becomes a `Request` (`gateway.request_from_event`), which the runner
(`asgi.AsgiRunner` or `wsgi.WsgiRunner`) turns into a scope or environ and hands to the app;
its `Response` leaves through the event's `HttpExchange` as one call on the responder. Any
other trigger goes to ``event_handler``, whose result is the answer. The responder is the
runtime loop's invocation (`scf_asgi.runtime`), or, when the Adapter itself is SCF's built-in
runtime's ``main_handler``, a collector whose document `__call__` returns.
"""

from __future__ import annotations

import time

from . import options
from .context import Context
from .detect import detect_interface, is_coroutine_callable
from .errors import (
    AppError,
    ConfigurationError,
    InvalidEventError,
    RequestTooLarge,
    UnhandledEventError,
)
from .exchange import HttpExchange, plain_response
from .gateway import ResultPayload, TextPolicy, normalize_base_path, request_from_event
from .logs import access, access_enabled, log_error
from .platform import MAX_PAYLOAD_BYTES
from .triggers import detect_trigger, is_http_event, is_warmup

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Coroutine, Iterable
    from typing import Any, Callable, Union

    from .asgi import AsgiRunner
    from .gateway import Request
    from .types import Payload, Responder
    from .wsgi import WsgiRunner

    EventHandler = Callable[[Any, Context], Any]
    Pending = Union[Coroutine[Any, Any, None], None]

__all__ = ["WARMED_UP", "Adapter"]

WARMED_UP = {"warmup": True}  # the answer to a warm-up ping


class Adapter:
    """Runs a WSGI or ASGI app for SCF events, in process.

    ``adapter(event, context)`` handles one event and returns the integration response, so an
    Adapter can be the ``main_handler`` of SCF's built-in Python runtime; ``serve(adapter)``
    (`scf_asgi.serve`) runs it on the Custom Runtime until SIGTERM/SIGINT.

    The options and what each does are listed in `scf_asgi.options`.
    """

    app: Any  # the app as given
    runner: AsgiRunner | WsgiRunner

    def __init__(
        self,
        app: Any,
        *,
        interface: str = "auto",
        lifespan: str = "auto",
        base_path: str | None = None,
        stage_prefix: str = "auto",
        text_mime_types: Iterable[str] = (),
        event_handler: EventHandler | None = None,
        app_errors: str = "response",
        access_log: bool = True,
        loop: str = "auto",
        max_body_bytes: int = MAX_PAYLOAD_BYTES,
        root_path_in_path: str = "auto",
    ) -> None:
        if not isinstance(text_mime_types, (str, bytes)):
            try:
                text_mime_types = tuple(text_mime_types)  # a generator is read once, here
            except TypeError:
                pass  # options.check says what is wrong
        for name, value in (
            ("interface", interface),
            ("lifespan", lifespan),
            ("base_path", base_path),
            ("stage_prefix", stage_prefix),
            ("text_mime_types", text_mime_types),
            ("event_handler", event_handler),
            ("app_errors", app_errors),
            ("access_log", access_log),
            ("loop", loop),
            ("max_body_bytes", max_body_bytes),
            ("root_path_in_path", root_path_in_path),
        ):
            options.check(name, value)
        if isinstance(app, Adapter):
            # Unwrapping it would silently drop its options (base_path, event_handler, ...).
            raise ConfigurationError(
                "the app is already an Adapter: serve it as it is (serve(adapter) or "
                "`scf-asgi run` naming it), or pass its app"
            )
        if interface == "auto":
            interface = detect_interface(app)
        elif not callable(app):
            raise ConfigurationError(f"the app must be callable, got {type(app).__name__}")

        self.app = app
        self.interface = interface
        self.base_path = normalize_base_path(base_path)
        self.stage_prefix = stage_prefix
        self.event_handler = event_handler
        self.errors_as_invocation = app_errors == "invocation"
        self.access_log = access_log
        self.max_body_bytes = max_body_bytes
        self.text_policy = TextPolicy(text_mime_types)
        if interface == "asgi":
            from .asgi import AsgiRunner

            self.runner = AsgiRunner(
                app, lifespan=lifespan, root_path_in_path=root_path_in_path, loop=loop
            )
        else:
            from .wsgi import WsgiRunner

            self.runner = WsgiRunner(app)

    def __repr__(self) -> str:
        return f"Adapter({self.app!r}, interface={self.interface!r})"

    def handle(self, event: Any, context: Context, responder: Responder) -> Pending:
        """Answer one event through `responder`, exactly once.

        For an ASGI app (and for an async event handler) this returns a coroutine that does
        the work; whoever runs the loop awaits it. Otherwise the work is done on return.
        """
        # No clock, no line when nobody listens at INFO (SCF's built-in runtime, by default).
        started = time.perf_counter() if self.access_log and access_enabled() else None
        if event.__class__ is not dict and not isinstance(event, dict):
            message = f"the event must be a JSON object, got {type(event).__name__}"
            log_error("request %s: %s", context.request_id, message)
            responder.fail("InvalidEventError", message, InvalidEventError(message))
            return None
        if not is_http_event(event):
            return self._handle_trigger(event, context, responder, started)
        try:
            request = request_from_event(
                event,
                base_path=self.base_path,
                stage_prefix=self.stage_prefix,
                max_body=self.max_body_bytes,
            )
        except InvalidEventError as exc:
            if isinstance(exc, RequestTooLarge):
                refusal = plain_response(413, f"Payload Too Large: {exc}")
            else:
                refusal = plain_response(400, f"Bad Request: {exc}")
            self._exchange(responder, None, context, started).respond(refusal)
            return None
        exchange = self._exchange(responder, request, context, started)
        return self.runner.serve_http(request, context, exchange)

    def _exchange(
        self,
        responder: Responder,
        request: Request | None,
        context: Context,
        started: float | None,
    ) -> HttpExchange:
        return HttpExchange(
            responder, request, context, self.text_policy, self.errors_as_invocation, started
        )

    def __call__(self, event: Any, context: Context | dict[str, Any] | None = None) -> Any:
        """Handle one event in process; return the integration response dict, or the event
        handler's result.

        Raises InvalidEventError for a non-object event, UnhandledEventError for a non-HTTP
        event with no handler, and the handler's or (with app_errors="invocation") the app's
        own exception; the built-in runtime reports any of them as an invocation error.
        """
        if context is None:
            context = Context()
        elif not isinstance(context, Context):
            if not isinstance(context, dict):
                raise ConfigurationError(
                    f"context must be a Context or a dict, got {type(context).__name__}"
                )
            context = Context.from_platform(context)
        collector = Collector()
        pending = self.handle(event, context, collector)
        if pending is not None:
            self.runner.run(pending)
        return collector.result()

    def close(self) -> None:
        """Run ASGI lifespan shutdown and close the event loop (for in-process use; `serve`
        does this itself when it stops)."""
        self.runner.close()

    # -- non-HTTP triggers ---------------------------------------------------------------------

    def _handle_trigger(
        self, event: dict[str, Any], context: Context, responder: Responder, started: float | None
    ) -> Pending:
        if is_warmup(event):
            if self.runner.is_async:
                return self._warm_up(context, responder, started)
            _handler_answered(WARMED_UP, context, responder, started)
            return None
        handler = self.event_handler
        if handler is None:
            error = UnhandledEventError(_unhandled_message(event))
            log_error("request %s: %s", context.request_id, error)
            responder.fail("UnhandledEventError", str(error), error)
            return None
        if self.runner.is_async:
            return self._run_handler_async(handler, event, context, responder, started)
        try:
            result = handler(event, context)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # SystemExit too: one event must not end the instance
            _handler_failed(exc, context, responder)
            return None
        if hasattr(result, "__await__"):
            return self._settle(result, context, responder, started)
        _handler_answered(result, context, responder, started)
        return None

    async def _warm_up(self, context: Context, responder: Responder, started: float | None) -> None:
        """A warm-up ping next to an ASGI app: the app started (in process, where nothing has
        started it yet), then the answer."""
        runner: Any = self.runner
        try:
            await runner.startup()
        except AppError as exc:
            log_error("request %s: %s", context.request_id, exc)
            responder.fail("AppError", str(exc), exc)
            return
        _handler_answered(WARMED_UP, context, responder, started)

    async def _run_handler_async(
        self,
        handler: EventHandler,
        event: dict[str, Any],
        context: Context,
        responder: Responder,
        started: float | None,
    ) -> None:
        """An event handler next to an ASGI app, on the app's loop: an async one in it, a sync
        one in a worker thread (as Starlette runs sync endpoints), where it may block and even
        run an event loop of its own (asyncio.run)."""
        import asyncio

        if is_coroutine_callable(handler):
            try:
                awaitable = handler(event, context)
            except Exception as exc:  # called with the wrong arguments, say
                _handler_failed(exc, context, responder)
                return
            await self._settle(awaitable, context, responder, started)
            return
        try:
            result = await asyncio.to_thread(handler, event, context)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            _handler_failed(exc, context, responder)
            return
        if hasattr(result, "__await__"):
            await self._settle(result, context, responder, started)
        else:
            _handler_answered(result, context, responder, started)

    async def _settle(
        self, result: Any, context: Context, responder: Responder, started: float | None
    ) -> None:
        try:
            value = await result
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # CancelledError and SystemExit too, as for the app
            _handler_failed(exc, context, responder)
        else:
            _handler_answered(value, context, responder, started)


def _handler_failed(error: BaseException, context: Context, responder: Responder) -> None:
    log_error("request %s: event_handler failed", context.request_id, exc_info=error)
    cause = error
    if not isinstance(error, Exception):
        cause = AppError(f"the event_handler raised {type(error).__name__}")
        cause.__cause__ = error
    responder.fail(type(error).__name__, str(error), cause)


def _handler_answered(
    result: Any, context: Context, responder: Responder, started: float | None
) -> None:
    try:
        payload = ResultPayload(result)
    except (TypeError, ValueError) as exc:
        message = f"event_handler returned a value that is not JSON-serialisable: {exc}"
        log_error("request %s: %s", context.request_id, message)
        responder.fail("InvalidResultError", message, exc)
        return
    responder.respond(payload)
    if started is not None:
        elapsed = (time.perf_counter() - started) * 1000
        access(f"{context.request_id} event ok {elapsed:.1f}ms")


def _unhandled_message(event: dict[str, Any]) -> str:
    trigger = detect_trigger(event)
    how = "pass event_handler=your_function (called as your_function(event, context)) to serve()"
    if trigger is None:
        keys = ", ".join(sorted(str(k) for k in event)[:8]) or "none"
        return f"unrecognised event (top-level keys: {keys}), not an API gateway request; {how}"
    if trigger == "websocket":
        return (
            "a websocket trigger event (API gateway WebSocket API) arrived: a web framework "
            f"cannot answer it through scf-asgi; {how}"
        )
    return f"a {trigger} trigger event arrived and no event_handler is set; {how}"


class Collector:
    """The responder of an in-process call: keeps the answer for `__call__` to return (the
    payload's document) or raise (the failure's cause)."""

    __slots__ = ("payload", "error")

    def __init__(self) -> None:
        self.payload: Payload | None = None
        self.error: BaseException | None = None

    def respond(self, payload: Payload) -> None:
        if self.payload is None and self.error is None:
            self.payload = payload

    def fail(self, error_type: str, message: str, cause: BaseException | None = None) -> None:
        if self.payload is None and self.error is None:
            self.error = cause if cause is not None else AppError(f"{error_type}: {message}")

    def result(self) -> Any:
        if self.error is not None:
            raise self.error
        if self.payload is None:
            raise AppError("scf-asgi: the event got no answer")
        return self.payload.document()
