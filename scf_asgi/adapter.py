"""`Adapter`: one app, its options, its event loop and lifespan; `serve()` runs it on SCF.

An event's path: raw bytes -> JSON -> (HTTP) the ASGI scope or WSGI environ, read from the event
in one pass (`asgi.scope_from_event`, `wsgi.environ_from_event`) -> the app -> `Response` ->
`gateway.encode_integration_response` -> the runtime API; or (any other trigger) ->
`event_handler` -> its JSON result.
"""

from __future__ import annotations

import json
import time

from . import options
from .context import Context
from .errors import AppError, ConfigurationError, InvalidEventError, UnhandledEventError
from .gateway import (
    Request,
    Response,
    TextPolicy,
    encode_integration_response,
    integration_response,
    is_http_event,
    normalize_base_path,
    parse_json,
)
from .logs import access, access_enabled, configure_logging, get_logger
from .triggers import detect_trigger
from .wsgi import environ_from_event, run_wsgi

TYPE_CHECKING = False
if TYPE_CHECKING:
    import asyncio
    from collections.abc import Awaitable, Iterable
    from typing import Any, Callable

    from .asgi import ASGIApp, Lifespan, NullLifespan, TaskRunner
    from .runtime import Invocation, RuntimeClient

    EventHandler = Callable[[Any, Context], Any]

__all__ = ["Adapter", "detect_interface", "serve"]

_TEXT_PLAIN = "text/plain; charset=utf-8"
_NO_EXTRA: dict[str, Any] = {}  # the raw event and Context are put in scope/environ directly


class Adapter:
    """Runs a WSGI or ASGI app for SCF events, in process.

    ``adapter(event, context)`` handles one event and returns the integration response (so an
    Adapter can be the ``main_handler`` of SCF's built-in Python runtime); ``adapter.serve()``
    runs the Custom Runtime loop until SIGTERM/SIGINT.

    Options:
        interface: "auto" (detect from the callable), "asgi" or "wsgi".
        lifespan: ASGI lifespan, once per process: "auto" (used if the app supports it),
            "on" (the app must support it) or "off".
        base_path: a public path prefix to strip, e.g. "/api" for a custom-domain mapping; the
            app sees it as ASGI ``root_path`` / WSGI ``SCRIPT_NAME``.
        stage_prefix: put "/<stage>" in front of root_path: "auto" (only for requests through
            the gateway's default domain, whose URLs carry the stage), "on" or "off".
        text_mime_types: more response types to send as text (``"application/x-foo"``, or a
            family ``"application/*"``); every other non-text type goes as base64.
        event_handler: ``(event, context)``, sync or async, for non-HTTP triggers (timer, COS,
            CMQ, CKafka, CLS); its JSON-serialisable return value is the invocation's result.
        app_errors: what an exception in the app becomes: "response" (a 500 with no details;
            the traceback goes to the log) or "invocation" (an invocation error).
        access_log: log one line per invocation on the "scf_asgi" logger.
        root_path_in_path: whether the ASGI scope's `path` starts with `root_path`: "auto"
            (yes, as uvicorn does, except for Falcon apps, which route on the path without it),
            "on" or "off".
    """

    app: Any  # the app as given (an Adapter passed in is unwrapped)

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
        root_path_in_path: str = "auto",
    ) -> None:
        for name, value in (
            ("interface", interface),
            ("lifespan", lifespan),
            ("base_path", base_path),
            ("stage_prefix", stage_prefix),
            ("text_mime_types", text_mime_types),
            ("event_handler", event_handler),
            ("app_errors", app_errors),
            ("access_log", access_log),
            ("root_path_in_path", root_path_in_path),
        ):
            options.check(name, value)
        if isinstance(app, Adapter):
            # Unwrapping it would silently drop its options (base_path, event_handler, ...).
            raise ConfigurationError(
                "the app is already an Adapter: serve it as it is (adapter.serve(), "
                "serve(adapter) or `scf-asgi run` naming it), or pass its app"
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
        self.app_errors = app_errors
        self.access_log = access_log
        self.text_policy = TextPolicy(text_mime_types)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task_runner: TaskRunner | None = None  # in-process ASGI events, on self._loop
        self._started = False
        self._startup_error: Exception | None = None
        self._asgi_app: ASGIApp | None = None
        self._lifespan: Lifespan | NullLifespan | None = None
        self._full_path = root_path_in_path == "on"
        if interface == "asgi":
            from .asgi import (
                HTTPCycle,
                Lifespan,
                NullLifespan,
                as_asgi3,
                routes_on_relative_path,
                scope_from_event,
            )

            self._asgi_runner = (HTTPCycle, scope_from_event)

            if root_path_in_path == "auto":
                self._full_path = not routes_on_relative_path(app)
            self._asgi_app = as_asgi3(app)
            self._lifespan = (
                NullLifespan() if lifespan == "off" else Lifespan(self._asgi_app, lifespan)
            )

    def __repr__(self) -> str:
        return f"Adapter({self.app!r}, interface={self.interface!r})"

    # -- one event, in process (SCF's built-in runtime, tests) ---------------------------------

    def __call__(self, event: Any, context: Context | dict[str, Any] | None = None) -> Any:
        """Handle one event; return the integration response dict, or the event handler's result.

        Raises InvalidEventError for a non-object event and UnhandledEventError for a non-HTTP
        event with no handler; the built-in runtime reports either as an invocation error.
        """
        if context is None:
            ctx = Context()
        else:
            ctx = context if context.__class__ is Context else _as_context(context)  # type: ignore[assignment]
        if not isinstance(event, dict):
            raise InvalidEventError(f"the event must be a JSON object, got {type(event).__name__}")
        if not is_http_event(event):
            result = self._call_event_handler(event, ctx)
            if hasattr(result, "__await__"):
                result = self._event_loop().run_until_complete(result)
            return result
        # In the built-in runtime nobody may be listening at INFO: then no clock, no line.
        logged = self.access_log and access_enabled()
        started = time.perf_counter() if logged else 0.0
        if self.interface == "wsgi":
            response, request = self._wsgi_http(event, ctx)
        else:
            delivered: list[Response] = []
            runner = self._task_runner
            if runner is None:
                from .asgi import TaskRunner

                runner = self._task_runner = TaskRunner(self._event_loop())
            if not self._started or self._startup_error is not None:
                runner.run(self._startup())
            request = runner.run(self._asgi_http(event, ctx, delivered.append))
            response = delivered[0]
        if logged:
            self._log(ctx, request, response.status, started)
        head = request is not None and request.method == "HEAD"
        return integration_response(response, head=head, text_policy=self.text_policy)

    def close(self) -> None:
        """Run ASGI lifespan shutdown and close the event loop (for in-process use; `serve()`
        does this itself when it stops)."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.run_until_complete(self._shutdown())
            self._loop.close()
        self._loop = None
        self._task_runner = None

    # -- the Custom Runtime loop ---------------------------------------------------------------

    def serve(self) -> None:
        """Run the Custom Runtime loop until SIGTERM/SIGINT (then return)."""
        from .runtime import RuntimeClient, run_loop

        client = RuntimeClient.from_environ()
        configure_logging()
        try:
            if self.interface == "wsgi":
                run_loop(client, self._handle_sync)
            else:
                self._event_loop().run_until_complete(self._serve_async(client))
        finally:
            client.close()
            self.close()

    async def _serve_async(self, client: RuntimeClient) -> None:
        from .runtime import run_loop_async

        await self._startup()
        try:
            await run_loop_async(client, self._handle_async)
        finally:
            await self._shutdown()

    def _handle_sync(self, raw: bytes, context: Context, invocation: Invocation) -> None:
        started = time.perf_counter()
        event = _parse_event(raw, invocation)
        if event is None:
            return
        if not is_http_event(event):
            result = self._call_event_handler(event, context, invocation)
            if hasattr(result, "__await__"):
                result = self._event_loop().run_until_complete(_settle(result))
            self._post_result(result, context, invocation, started)
            return
        try:
            response, request = self._wsgi_http(event, context)
        except Exception as exc:  # app_errors="invocation"
            self._post_app_error(exc, context, invocation)
            return
        self._post_response(response, request, context, invocation, started)

    async def _handle_async(self, raw: bytes, context: Context, invocation: Invocation) -> None:
        started = time.perf_counter()
        event = _parse_event(raw, invocation)
        if event is None:
            return
        if not is_http_event(event):
            from asyncio import events

            # Called as if no loop were running, as with a WSGI app or in the built-in runtime:
            # a sync handler may use asyncio.run(). An async one is only created here.
            loop = events._get_running_loop()
            events._set_running_loop(None)
            try:
                result = self._call_event_handler(event, context, invocation)
            finally:
                events._set_running_loop(loop)
                events.set_event_loop(loop)  # asyncio.run() unsets it when done
            if hasattr(result, "__await__"):
                result = await _settle(result)
            self._post_result(result, context, invocation, started)
            return
        # The response is posted from inside the app's final send(), before the app returns, so
        # work it does afterwards (background tasks) does not delay the client; it still ends
        # before the next event is pulled.
        request_box: list[Request | None] = [None]
        fatal: list[BaseException] = []

        def deliver(response: Response) -> None:
            try:
                self._post_response(response, request_box[0], context, invocation, started)
            except Exception as exc:  # never raise into the app's send()
                fatal.append(exc)

        try:
            await self._asgi_http(event, context, deliver, request_box)
        except Exception as exc:  # app_errors="invocation"
            self._post_app_error(exc, context, invocation)
        if fatal:
            raise fatal[0]

    # -- HTTP: WSGI and ASGI -------------------------------------------------------------------

    def _wsgi_http(
        self, event: dict[str, Any], context: Context
    ) -> tuple[Response, Request | None]:
        try:
            environ, request = environ_from_event(
                event, _NO_EXTRA, base_path=self.base_path, stage_prefix=self.stage_prefix
            )
        except (InvalidEventError, AttributeError, TypeError, ValueError) as exc:
            return _bad_request(exc), None
        environ["scf.event"] = event
        environ["scf.context"] = context
        try:
            return run_wsgi(self.app, environ), request
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # SystemExit too: one request must not end the instance
            return self._app_failed(exc, context, request), request

    async def _asgi_http(
        self,
        event: dict[str, Any],
        context: Context,
        deliver: Callable[[Response], None],
        request_box: list[Request | None] | None = None,
    ) -> Request | None:
        """Run the ASGI app on one event; `deliver` gets exactly one Response (unless this
        raises, which it does only for app errors under app_errors="invocation")."""
        http_cycle, scope_from_event = self._asgi_runner
        assert self._asgi_app is not None and self._lifespan is not None
        try:
            scope, request = scope_from_event(
                event,
                self._lifespan.state,
                _NO_EXTRA,
                base_path=self.base_path,
                stage_prefix=self.stage_prefix,
                full_path=self._full_path,
            )
        except (InvalidEventError, AttributeError, TypeError, ValueError) as exc:
            deliver(_bad_request(exc))
            return None
        scope["scf.event"] = event
        scope["scf.context"] = context
        if request_box is not None:
            request_box[0] = request
        # With app_errors="response" the answer goes out from inside the app's last send();
        # with "invocation" it waits for the app to return, because Starlette's error middleware
        # sends its own 500 first and only then re-raises.
        eager = self.app_errors == "response"
        held: list[Response] = []
        cycle = http_cycle(request.body, deliver if eager else held.append)
        try:
            await self._asgi_app(scope, cycle.receive, cycle.send)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # SystemExit and CancelledError from the app too
            if cycle.complete and eager:
                get_logger().error(
                    "request %s: the app raised after its response was sent",
                    context.request_id,
                    exc_info=exc,
                )
            else:
                deliver(self._app_failed(exc, context, request))
        else:
            if not cycle.complete:
                what = "completing" if cycle.started else "sending"
                failure = AppError(f"the ASGI app returned without {what} a response")
                deliver(self._app_failed(failure, context, request))
            elif held:
                deliver(held[0])
        return request

    def _app_failed(self, exc: BaseException, context: Context, request: Request) -> Response:
        get_logger().error(
            "request %s: %s %s failed",
            context.request_id,
            request.method,
            request.root_path + request.path,
            exc_info=exc,
        )
        if self.app_errors == "invocation":
            if isinstance(exc, Exception):
                raise exc
            raise AppError(f"the app raised {type(exc).__name__}") from exc
        return _plain(500, "Internal Server Error")

    # -- answers -------------------------------------------------------------------------------

    def _post_response(
        self,
        response: Response,
        request: Request | None,
        context: Context,
        invocation: Invocation,
        started: float,
    ) -> None:
        head = request is not None and request.method == "HEAD"
        payload = encode_integration_response(response, head=head, text_policy=self.text_policy)
        # The access line goes out before the answer: written after it, while the runtime API
        # has the answer to deal with, the write is where the kernel switches to the platform
        # and back (measured at 8-16 us per event on a shared core).
        self._log(context, request, response.status, started)
        invocation.respond(payload)

    def _post_app_error(self, exc: Exception, context: Context, invocation: Invocation) -> None:
        from .runtime import error_payload

        message = (
            f"the app raised {type(exc).__name__}; see the log of request {context.request_id}"
        )
        invocation.fail(error_payload("AppError", message))

    def _call_event_handler(
        self, event: dict[str, Any], context: Context, invocation: Invocation | None = None
    ) -> Any:
        """Call event_handler; without one, the invocation fails with a message that names the
        trigger. Returns the handler's (possibly awaitable) result, or None when already failed."""
        handler = self.event_handler
        if handler is None:
            error = UnhandledEventError(_unhandled_message(event))
            if invocation is None:
                raise error
            get_logger().error("request %s: %s", context.request_id, error)
            from .runtime import error_payload

            invocation.fail(error_payload("UnhandledEventError", str(error)))
            return None
        if invocation is None:
            return handler(event, context)
        try:
            return handler(event, context)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # SystemExit too: one event must not end the instance
            self._event_handler_failed(exc, context, invocation)
            return None

    def _event_handler_failed(
        self, exc: BaseException, context: Context, invocation: Invocation
    ) -> None:
        from .runtime import error_payload

        get_logger().error("request %s: event_handler failed", context.request_id, exc_info=exc)
        invocation.fail(error_payload(type(exc).__name__, str(exc)))

    def _post_result(
        self, result: Any, context: Context, invocation: Invocation, started: float
    ) -> None:
        if invocation.answered:
            return
        if isinstance(result, _HandlerFailed):
            self._event_handler_failed(result.error, context, invocation)
            return
        try:
            payload = json.dumps(result, ensure_ascii=False).encode("utf-8")
        except (TypeError, ValueError) as exc:
            from .runtime import error_payload

            message = f"event_handler returned a value that is not JSON-serialisable: {exc}"
            get_logger().error("request %s: %s", context.request_id, message)
            invocation.fail(error_payload("InvalidResultError", message))
            return
        invocation.respond(payload)
        if self.access_log:
            elapsed = (time.perf_counter() - started) * 1000
            access(f"{context.request_id} event ok {elapsed:.1f}ms")

    def _log(self, context: Context, request: Request | None, status: int, started: float) -> None:
        if self.access_log:  # access() itself checks that INFO is on
            elapsed = (time.perf_counter() - started) * 1000
            if request is None:
                access(f"{context.request_id} - - {status} {elapsed:.1f}ms")
            else:
                path = request.root_path + request.path
                access(f"{context.request_id} {request.method} {path} {status} {elapsed:.1f}ms")

    # -- event loop and lifespan ---------------------------------------------------------------

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        """The process's one event loop: clients, pools and locks made in one invocation keep
        working in the next."""
        if self._loop is None:
            import asyncio

            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
        return self._loop

    async def _startup(self) -> None:
        if self._startup_error is not None:
            raise self._startup_error  # in process, every later event fails the same way
        if not self._started and self._lifespan is not None:
            self._started = True
            try:
                await self._lifespan.startup()
            except Exception as exc:
                self._startup_error = exc
                raise

    async def _shutdown(self) -> None:
        if self._started and self._lifespan is not None:
            self._started = False
            await self._lifespan.shutdown()


def serve(app: Any, **options: Any) -> None:
    """Run `app` on the SCF Custom Runtime until SIGTERM/SIGINT. Options: see `Adapter`.

    An `Adapter` (say, the `main_handler` kept from the built-in runtime) is served with the
    options it was made with; giving options as well is a ConfigurationError.
    """
    if isinstance(app, Adapter):
        if options:
            names = ", ".join(sorted(options))
            raise ConfigurationError(
                f"the app is already an Adapter, made with its own options: give {names} to "
                "the Adapter, or pass its app instead"
            )
        app.serve()
        return
    Adapter(app, **options).serve()


_CO_COROUTINE = 0x80  # inspect.CO_COROUTINE, without importing inspect at start-up


def detect_interface(app: object) -> str:
    """'asgi' or 'wsgi', from the shape of the callable; raises ConfigurationError if unclear."""
    if not callable(app):
        raise ConfigurationError(f"the app must be callable, got {type(app).__name__}")
    if isinstance(app, type):
        return "asgi"  # an ASGI 2 application class, instantiated once per scope
    function = app if hasattr(app, "__code__") else type(app).__call__
    bound = hasattr(app, "__self__") and function is app  # a bound method: skip `self`
    code = getattr(function, "__code__", None)
    if code is not None:
        if code.co_flags & _CO_COROUTINE:
            return "asgi"
        positional = code.co_argcount - (0 if function is app and not bound else 1)
        defaults = getattr(function, "__defaults__", None) or ()
        if positional - len(defaults) == 2:
            return "wsgi"
        if positional in (1, 3):
            return "asgi"
    import inspect

    if inspect.iscoroutinefunction(app) or inspect.iscoroutinefunction(type(app).__call__):
        return "asgi"
    try:
        parameters = [
            p
            for p in inspect.signature(app).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
        ]
    except (TypeError, ValueError):
        parameters = []
    if len(parameters) == 2:
        return "wsgi"
    if len(parameters) in (1, 3):
        return "asgi"
    raise ConfigurationError(
        f"cannot tell whether {app!r} is an ASGI or a WSGI app; pass interface='asgi' or 'wsgi'"
    )


def _as_context(context: Context | dict[str, Any] | None) -> Context:
    if isinstance(context, Context):
        return context
    if context is None:
        return Context()
    if isinstance(context, dict):
        return Context.from_platform(context)
    raise ConfigurationError(f"context must be a Context or a dict, got {type(context).__name__}")


def _parse_event(raw: bytes, invocation: Invocation) -> dict[str, Any] | None:
    """The event as a dict, or None after failing the invocation with a clear message."""
    from .runtime import error_payload

    try:
        event = parse_json(raw)
    except ValueError as exc:
        message = f"the event is not valid JSON: {exc}"
    else:
        if event.__class__ is dict:
            return event  # type: ignore[no-any-return]
        message = f"the event must be a JSON object, got {type(event).__name__}"
    get_logger().error("request %s: %s", invocation.request_id, message)
    invocation.fail(error_payload("InvalidEventError", message))
    return None


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


class _HandlerFailed:
    """What an async event handler's awaitable settled to when it raised."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


async def _settle(awaitable: Awaitable[Any]) -> Any:
    try:
        return await awaitable
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # CancelledError and SystemExit too, as for the app
        return _HandlerFailed(exc)


def _bad_request(exc: Exception) -> Response:
    if isinstance(exc, InvalidEventError):
        return _plain(400, f"Bad Request: {exc}")
    # A field of the wrong type (headers as a list, a number where text belongs ...).
    return _plain(400, f"Bad Request: malformed API gateway event: {exc}")


def _plain(status: int, text: str) -> Response:
    return Response(status, [("Content-Type", _TEXT_PLAIN)], text.encode("utf-8"))
