"""Calling a WSGI app directly and synchronously (PEP 3333): environ, start_response, close().

No thread, no event loop: the app runs on the runtime loop's own thread, and this module does
not import asyncio.
"""

from __future__ import annotations

import io
import sys

from .errors import AppError
from .gateway import Request, Response

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from types import TracebackType
    from typing import Any, Callable, Optional

    ExcInfo = tuple[type[BaseException], BaseException, Optional[TracebackType]]
    StartResponse = Callable[..., Callable[[bytes], object]]
    WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

__all__ = ["build_environ", "run_wsgi"]

# Header name -> environ key (None: dropped). Filled as names are met, up to a bound, since
# header names come from clients.
_ENVIRON_KEYS: dict[str, str | None] = {
    "content-type": "CONTENT_TYPE",  # PEP 3333 keeps these two out of HTTP_*
    "content-length": "CONTENT_LENGTH",
}
_MAX_CACHED_KEYS = 512


def _environ_key(name: str) -> str | None:
    # `X_Forwarded_For` would land on the same HTTP_X_FORWARDED_FOR key as the real header and
    # could spoof it; WSGI servers drop such names, and so do we.
    key = None if "_" in name else "HTTP_" + name.upper().replace("-", "_")
    if len(_ENVIRON_KEYS) < _MAX_CACHED_KEYS:
        _ENVIRON_KEYS[name] = key
    return key


def _wsgi_str(text: str) -> str:
    """PEP 3333 "bytes as unicode": the UTF-8 bytes of `text`, each as one latin-1 character."""
    return text if text.isascii() else text.encode("utf-8").decode("latin-1")


_STATIC_ENVIRON: dict[str, Any] = {
    "SERVER_PROTOCOL": "HTTP/1.1",
    "wsgi.version": (1, 0),
    "wsgi.input_terminated": True,
    "wsgi.multithread": False,
    "wsgi.multiprocess": False,
    "wsgi.run_once": False,
}


def build_environ(request: Request, extra: dict[str, Any]) -> dict[str, Any]:
    environ = _STATIC_ENVIRON.copy()
    environ["REQUEST_METHOD"] = request.method
    environ["SCRIPT_NAME"] = _wsgi_str(request.root_path)
    environ["PATH_INFO"] = _wsgi_str(request.path)
    environ["QUERY_STRING"] = request.query_string.decode("ascii")
    environ["SERVER_NAME"], port = request.server
    environ["SERVER_PORT"] = str(port)
    environ["REMOTE_ADDR"] = request.client[0] if request.client else ""
    environ["wsgi.url_scheme"] = request.scheme
    environ["wsgi.input"] = io.BytesIO(request.body)
    environ["wsgi.errors"] = sys.stderr
    keys = _ENVIRON_KEYS
    for name, value in request.headers:
        key = keys[name] if name in keys else _environ_key(name)
        if key is None:
            continue
        if not value.isascii():
            value = value.encode("utf-8").decode("latin-1")
        if key in environ:
            # Repeated header: fold into one value, as HTTP allows; cookies use their own separator.
            environ[key] += ("; " if key == "HTTP_COOKIE" else ", ") + value
        else:
            environ[key] = value
    environ.update(extra)
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
        code = status[:3] if isinstance(status, str) else ""
        if not code.isdigit():
            raise AppError(f"start_response got an invalid status {status!r}")
        try:
            for name, value in headers:
                if name.__class__ is not str or value.__class__ is not str:
                    raise TypeError
        except (TypeError, ValueError):
            raise AppError(
                f"start_response got headers that are not (str, str) pairs: {headers!r}"
            ) from None
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
    try:
        parts = start_response.parts
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
    parts = start_response.parts
    body = parts[0] if len(parts) == 1 else b"".join(parts)
    return Response(start_response.status, start_response.headers, bytes(body))
