"""Calling a WSGI app directly and synchronously (PEP 3333): environ, start_response, close().

No thread, no event loop: the app runs on the caller's thread, and this module does not import
asyncio (an async `event_handler` next to a WSGI app gets a loop of its own, made on first use).
"""

from __future__ import annotations

import io
import sys

from .errors import AppError
from .gateway import Response, response_header_problem

TYPE_CHECKING = False
if TYPE_CHECKING:
    import asyncio
    from collections.abc import Awaitable, Iterable
    from types import TracebackType
    from typing import Any, Callable, Optional, TypeVar

    from .context import Context
    from .exchange import HttpExchange
    from .gateway import Request

    T = TypeVar("T")
    ExcInfo = tuple[type[BaseException], BaseException, Optional[TracebackType]]
    StartResponse = Callable[..., Callable[[bytes], object]]
    WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

__all__ = ["WsgiRunner", "environ_from_request", "run_wsgi"]


def _wsgi_str(text: str) -> str:
    """PEP 3333 "bytes as unicode": the UTF-8 bytes of `text`, each as one latin-1 character."""
    return text if text.isascii() else text.encode("utf-8").decode("latin-1")


def environ_from_request(request: Request, context: Context) -> dict[str, Any]:
    """The PEP 3333 environ of a request.

    A header given more than once is folded into one value, as HTTP allows (cookies with "; ",
    others with ", "); names WSGI cannot carry safely are left out (see `HeaderName`). The raw
    event and the `Context` are ``scf.event`` and ``scf.context``.
    """
    server_name, port = request.server
    client = request.client
    environ: dict[str, Any] = {
        "REQUEST_METHOD": request.method,
        "SCRIPT_NAME": _wsgi_str(request.root_path),
        "PATH_INFO": _wsgi_str(request.path),
        "QUERY_STRING": request.query_string.decode("ascii"),
        "SERVER_NAME": server_name,
        "SERVER_PORT": str(port),
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": client[0] if client else "",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": request.scheme,
        "wsgi.input": io.BytesIO(request.body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "wsgi.input_terminated": True,
        "scf.event": request.event,
        "scf.context": context,
    }
    names = request.header_names
    values = request.header_values
    if not "".join(values).isascii():
        values = [_wsgi_str(value) for value in values]
    if names.environ_distinct:
        environ.update(zip(names.environ, values))
        return environ
    # A name WSGI cannot carry, or one given twice (a list value, two spellings): fold, as
    # HTTP allows.
    for key, value in zip(names.environ, values):
        if not key:
            continue
        if key in environ:
            environ[key] += ("; " if key == "HTTP_COOKIE" else ", ") + value
        else:
            environ[key] = value
    return environ


class _StartResponse:
    """The `start_response` callable of one request, with PEP 3333's exc_info rules."""

    __slots__ = ("status", "headers", "parts", "body_started")

    def __init__(self) -> None:
        self.status = 0
        self.headers: list[tuple[str, str]] = []
        self.parts: list[bytes] = []
        self.body_started = False

    def __call__(
        self, status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None
    ) -> Callable[[bytes], object]:
        if exc_info is not None:
            if self.body_started:
                # Too late to change the status: PEP 3333 says re-raise the app's error.
                raise exc_info[1].with_traceback(exc_info[2])
        elif self.status:
            raise AppError("start_response called a second time without exc_info")
        code = status[:3] if status.__class__ is str else ""
        if not (code.isascii() and code.isdigit() and "100" <= code <= "599"):
            raise AppError(f"start_response got an invalid status {status!r}")
        try:
            for name, value in headers:
                if name.__class__ is not str or value.__class__ is not str:
                    raise TypeError
        except (TypeError, ValueError):
            raise AppError(
                f"start_response got headers that are not (str, str) pairs: {headers!r}"
            ) from None
        problem = response_header_problem(headers)
        if problem:
            raise AppError(problem)
        self.status = int(code)
        self.headers = list(headers)
        return self.write

    def write(self, data: bytes) -> None:
        if not self.status:
            raise AppError("write() called before start_response")
        if data:
            self.body_started = True
            self.parts.append(data)


def run_wsgi(app: WSGIApp, environ: dict[str, Any]) -> Response:
    """Call the app and collect its whole response. The iterable's close() is always called."""
    start_response = _StartResponse()
    result = app(environ, start_response)
    parts: list[bytes]
    if type(result) is list:
        # The usual answer (Flask, Django, ...): the whole body, after start_response.
        if not start_response.status:
            raise AppError("the app returned without calling start_response")
        parts = result
        if start_response.parts:  # written with write() first
            parts = start_response.parts + parts
    else:
        parts = start_response.parts
        try:
            for chunk in result:
                if chunk:
                    if not start_response.status:
                        raise AppError("the app yielded body data before calling start_response")
                    start_response.body_started = True
                    parts.append(chunk)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        if not start_response.status:
            raise AppError("the app returned without calling start_response")
    body = parts[0] if len(parts) == 1 else b"".join(parts)
    return Response(start_response.status, start_response.headers, bytes(body))


class WsgiRunner:
    """Runs a WSGI app, one request at a time, on the caller's thread."""

    is_async = False

    def __init__(self, app: WSGIApp) -> None:
        self.app = app
        self._loop: asyncio.AbstractEventLoop | None = None

    def serve_http(self, request: Request, context: Context, exchange: HttpExchange) -> None:
        """Run the app on one request; `exchange` gets exactly one answer."""
        environ = environ_from_request(request, context)
        try:
            response = run_wsgi(self.app, environ)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # SystemExit too: one request must not end the instance
            exchange.app_failed(exc)
        else:
            exchange.respond(response)

    def run(self, awaitable: Awaitable[T]) -> T:
        """Run an async event handler's awaitable, on a loop kept for the process (its clients
        and pools keep working from one event to the next)."""
        if self._loop is None:
            import asyncio

            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(awaitable)

    def close(self) -> None:
        if self._loop is not None:
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()
            self._loop = None
