"""Calling a WSGI app directly and synchronously (PEP 3333): environ, start_response, close().

No thread, no event loop: the app runs on the runtime loop's own thread, and this module does
not import asyncio.
"""

from __future__ import annotations

import io
import sys

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
    request_from_event,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from types import TracebackType
    from typing import Any, Callable, Optional

    ExcInfo = tuple[type[BaseException], BaseException, Optional[TracebackType]]
    StartResponse = Callable[..., Callable[[bytes], object]]
    WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

__all__ = ["environ_from_event", "run_wsgi"]


def _environ_key(lower: str) -> str:
    if "_" in lower:
        # `X_Forwarded_For` would land on the same HTTP_X_FORWARDED_FOR key as the real header
        # and could spoof it; WSGI servers drop such names, and so do we. Without "_", no two
        # plain names share a key.
        return ""
    if lower == "content-type":
        return "CONTENT_TYPE"  # PEP 3333 keeps it (and CONTENT_LENGTH) out of HTTP_*
    return "HTTP_" + lower.upper().replace("-", "_")


# Header name as sent -> environ key ("": dropped).
_KEYS = HeaderNames(_environ_key, "")
_HOST, _PROTO, _PORT = FORWARDING_HEADERS


def _copy_headers(environ: dict[str, Any], headers: dict[str, Any]) -> None:
    """Header by header: any name, list and null values, non-ASCII text, repeated names."""
    form = _KEYS.form
    for name, value in headers.items():
        key: str = form(name)
        if not key:
            continue
        if value.__class__ is str:
            if not value.isascii():
                value = value.encode("utf-8").decode("latin-1")
        else:
            values = header_values(value)
            if not values:
                continue
            value = ("; " if key == "HTTP_COOKIE" else ", ").join(_wsgi_str(v) for v in values)
        if key in environ:
            # A name given twice in different case: fold, as HTTP allows (cookies with "; ").
            environ[key] += ("; " if key == "HTTP_COOKIE" else ", ") + value
        else:
            environ[key] = value


def _wsgi_str(text: str) -> str:
    """PEP 3333 "bytes as unicode": the UTF-8 bytes of `text`, each as one latin-1 character."""
    return text if text.isascii() else text.encode("utf-8").decode("latin-1")


def environ_from_event(
    event: Mapping[str, Any],
    extra: dict[str, Any],
    *,
    base_path: str = "",
    stage_prefix: str = "auto",
) -> tuple[dict[str, Any], Request]:
    """The PEP 3333 environ for a gateway event, and the `Request` read from it.

    The headers are copied into the environ in one pass; a repeated header is folded into one
    value, as HTTP allows (cookies with "; "). `extra` entries are added last. Raises
    InvalidEventError for an event that cannot be read (see `request_from_event`).
    """
    headers = event.get("headers") or {}
    if headers.__class__ is not dict:
        headers = event_headers(event)  # a mapping of another type, or an error
    try:
        # The usual event (names met before, ASCII text values) is copied at C speed.
        plain = _KEYS.plain.issuperset(headers) and "".join(headers.values()).isascii()
    except TypeError:  # a list, null or number among the values
        plain = False
    if plain:
        get = headers.get
        forwarding = (get(_HOST, ""), get(_PROTO, ""), get(_PORT, ""))
    else:
        forwarding = forwarding_headers(headers)
    request = request_from_event(
        event, base_path=base_path, stage_prefix=stage_prefix, forwarding=forwarding
    )
    body = request.body
    root_path, path = request.root_path, request.path
    server_name, port = request.server
    client = request.client
    # One dict display: made at its final size at once, not grown key by key.
    environ: dict[str, Any] = {
        "REQUEST_METHOD": request.method,
        "SCRIPT_NAME": root_path if root_path.isascii() else _wsgi_str(root_path),
        "PATH_INFO": path if path.isascii() else _wsgi_str(path),
        "QUERY_STRING": request.query_string.decode("ascii"),
        "SERVER_NAME": server_name,
        "SERVER_PORT": str(port),
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": client[0] if client else "",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": request.scheme,
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "wsgi.input_terminated": True,
    }
    if plain:
        environ.update(zip(map(_KEYS.forms.__getitem__, headers), headers.values()))
    else:
        _copy_headers(environ, headers)
    if body or request.method in METHODS_WITH_BODY:
        environ["CONTENT_LENGTH"] = str(len(body))
    if extra:
        environ.update(extra)
    return environ, request


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
        if not (code.isascii() and code.isdigit()):
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
    parts: list[bytes]
    if result.__class__ is list:
        # The usual answer (Flask, Django, ...): the whole body, after start_response.
        if not start_response.status:
            raise AppError("the app returned without calling start_response")
        parts = result  # type: ignore[assignment]
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
