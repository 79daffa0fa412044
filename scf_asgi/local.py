"""`scf-asgi local`: run a function on this machine the way SCF and its API gateway run it.

One asyncio process (standard library only) plays the two platform parts around the function::

    browser, curl  --HTTP-->  front door  --event-->  runtime API  <--HTTP--  function instance
                   <--HTTP--  (gateway)   <--answer--  (platform)             (child process)

- The front door is an HTTP/1.1 server (keep-alive) on ``--host``/``--port``. Each request
  becomes an API gateway event in Tencent's shape (`event_from_http`); the instance's answer
  is checked and turned back into an HTTP response (`http_from_integration`), or into the error
  the gateway would give: 502 for a timeout, an invocation error, a dead instance or a malformed
  answer, 413 for a request that does not fit in the 6 MB invocation payload.
- The runtime API is the Custom Runtime HTTP API on a free loopback port: ``/runtime/init/ready``,
  the long poll ``/runtime/invocation/next`` (the same event again until it is answered), and
  ``/runtime/invocation/response`` / ``/error``, where the first post wins.
- The instance is ``python -m scf_asgi run APP ...`` (or a ``bootstrap`` executable) with the
  platform's environment variables. It handles one event at a time (requests queue); it is
  killed when an invocation outlives the function timeout, and a new one is cold-started on
  the next request after it died or was killed, so edited code is picked up.

Choices where the platform gives no answer or a browser needs help:

- Host: the browser's own Host (``127.0.0.1:8000``) goes into the event, so absolute URLs the
  app builds point back at the emulator, and the core's ``stage_prefix="auto"`` adds no
  ``/release`` root path. ``--stage-prefix on`` makes the app generate ``/release/...`` links
  (which the emulator strips again); ``--host-header`` sends any Host, e.g. a default gateway
  domain. Unless ``--host-header`` is given, ``x-forwarded-proto: http`` is added when the
  client sent none, since the core assumes https (the gateway's scheme) without it.
- Paths that do not start with ``/<stage>`` are passed on unchanged rather than refused, as
  through a custom domain.
- Errors made here are JSON ``{"errno": <status>, "error": "<what happened>"}``; a malformed
  result gets the gateway's own ``{"errno":403,"error":"Invalid scf response format..."}``
  (with status 502) and the reason is logged.
- The first instance starts at once (import errors show up before any request); later ones
  start on the request after a crash or kill. The init timeout is 30 s (``--init-timeout-ms``);
  the memory limit is only reported to the instance, not enforced.

This module is an outer layer: it imports the core (`gateway`), the core never imports it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import http
import json
import logging
import os
import signal
import sys
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit

from . import options
from .errors import ConfigurationError, IntegrationFormatError
from .gateway import TextPolicy
from .logs import excerpt
from .platform import (
    ENV_FUNCTION_NAME,
    ENV_FUNCTION_VERSION,
    ENV_HANDLER,
    ENV_NAMESPACE,
    ENV_REGION,
    ENV_RUNENV,
    ENV_RUNTIME_API,
    ENV_RUNTIME_API_PORT,
    ENV_USER_CODE_ROOT,
    MAX_PAYLOAD_BYTES,
)
from .runtime.http11 import HEX_DIGITS

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Awaitable, Iterable, Sequence
    from typing import Any, Callable

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "IntegrationFormatError",
    "LocalConfig",
    "event_from_http",
    "http_from_integration",
    "run_local",
]

logger = logging.getLogger("scf_asgi.local")

# The synchronous invocation payload limit (event and result), "about 6 MB" in the docs.
# What the gateway answers when the function's result is not a valid integration response.
MALFORMED_BODY = (
    b'{"errno":403,"error":"Invalid scf response format. please check your scf response format."}'
)
DEFAULT_SERVICE_ID = "service-local"

_HEAD_LIMIT = 64 * 1024  # request line + headers
_DISCARD_LIMIT = 64 * 1024 * 1024  # an over-limit body up to this size is read and dropped
_IDLE_TIMEOUT = 75.0  # seconds a front-door keep-alive connection may sit idle
_STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL for the instance at shutdown
# Per-hop headers: they describe the client's connection to the gateway, not the request.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "expect",
    }
)
_JSON = "application/json; charset=utf-8"
_DEFAULT_TEXT_POLICY = TextPolicy()


# -- the inverse translation: HTTP request -> event, integration response -> HTTP -------------


def event_from_http(
    method: str,
    target: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    *,
    source_ip: str,
    request_id: str,
    stage: str = "release",
    service_id: str = DEFAULT_SERVICE_ID,
    host: str | None = None,
    forwarded_proto: str | None = "http",
    text_policy: TextPolicy | None = None,
) -> dict[str, Any]:
    """The API gateway event for one HTTP request, in the shape of captured Tencent events.

    ``target`` is the request target as sent (``/release/items/1?q=a``); a leading
    ``/<stage>`` is removed from ``path`` as the gateway's default domain does, other paths are
    kept as they are. Header names are lower-cased, repeated headers joined (``"; "`` for
    Cookie, ``", "`` otherwise) and per-hop headers dropped; the gateway's own headers
    (``x-api-requestid``, ``x-b3-traceid``, ``x-qualifier``, ``x-anonymous-consumer``) are
    added. ``host`` replaces the Host header when given. ``forwarded_proto``, when given, is
    added as ``x-forwarded-proto`` unless the client sent one (the core assumes https without
    it). A body whose type is textual (per ``text_policy``) and valid UTF-8 travels as text,
    any other body as base64 with ``isBase64Encoded: true``; an empty body is left out.
    """
    if target.startswith("/"):
        raw_path, _, query = target.partition("?")
    elif target == "*":
        raw_path, query = "/", ""
    else:  # absolute-form, as sent to proxies
        parts = urlsplit(target)
        raw_path, query = parts.path or "/", parts.query
        if host is None and parts.netloc:
            host = parts.netloc
    path = unquote(raw_path.partition("#")[0], errors="replace")
    prefix = "/" + stage
    if stage and path == prefix:
        path = "/"
    elif stage and path.startswith(prefix + "/"):
        path = path[len(prefix) :]

    query_string: dict[str, str | list[str]] = {}
    for key, value in parse_qsl(query.partition("#")[0], keep_blank_values=True):
        existing = query_string.get(key)
        if existing is None:
            query_string[key] = value
        elif isinstance(existing, list):
            existing.append(value)
        else:
            query_string[key] = [existing, value]

    collected: dict[str, list[str]] = {}
    for raw_name, value in headers:
        name = raw_name.lower()
        if name not in _HOP_BY_HOP:
            collected.setdefault(name, []).append(value)
    event_headers = {
        name: ("; " if name == "cookie" else ", ").join(values)
        for name, values in collected.items()
    }
    if host is not None:
        event_headers["host"] = host
    if forwarded_proto and "x-forwarded-proto" not in event_headers:
        event_headers["x-forwarded-proto"] = forwarded_proto
    if body and "content-length" not in event_headers:
        event_headers["content-length"] = str(len(body))  # the client sent it chunked
    event_headers["x-anonymous-consumer"] = "true"
    event_headers["x-api-requestid"] = request_id
    event_headers["x-b3-traceid"] = request_id
    event_headers["x-qualifier"] = "$DEFAULT"

    event: dict[str, Any] = {
        "headerParameters": {},
        "headers": dict(sorted(event_headers.items())),
        "httpMethod": method.upper(),
        "path": path,
        "pathParameters": {},
        "queryString": query_string,
        "queryStringParameters": {},
        "requestContext": {
            "httpMethod": "ANY",
            "identity": {},
            "path": "/",
            "serviceId": service_id,
            "sourceIp": source_ip,
            "stage": stage,
        },
    }
    if body:
        policy = text_policy or _DEFAULT_TEXT_POLICY
        content_type = event_headers.get("content-type", "")
        text = None
        if content_type and policy.is_text_type(content_type):
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                pass
        if text is None:
            event["body"] = base64.b64encode(body).decode("ascii")
            event["isBase64Encoded"] = True
        else:
            event["body"] = text
            event["isBase64Encoded"] = False
    return event


def http_from_integration(payload: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers (a list value becomes repeated headers) and decoded body of an
    integration response; `IntegrationFormatError` says what is wrong with a malformed one."""
    try:
        document = json.loads(payload)
    except ValueError as exc:  # includes UnicodeDecodeError
        raise IntegrationFormatError(f"the result is not valid JSON ({exc})") from None
    if not isinstance(document, dict):
        raise IntegrationFormatError(
            f"the result is a JSON {type(document).__name__}, not an object"
        )
    status = document.get("statusCode")
    if type(status) is not int:
        raise IntegrationFormatError(f"statusCode must be an integer, got {status!r}")
    if not 200 <= status <= 599:
        raise IntegrationFormatError(f"statusCode {status} is not a final HTTP status")

    headers: list[tuple[str, str]] = []
    raw_headers = document.get("headers")
    if raw_headers is None:
        raw_headers = {}
    if not isinstance(raw_headers, dict):
        raise IntegrationFormatError(f"headers must be an object, got {raw_headers!r}")
    for name, value in raw_headers.items():
        if not _is_token(name):
            raise IntegrationFormatError(f"invalid header name {name!r}")
        values = value if isinstance(value, list) else [value]
        for item in values:
            if not isinstance(item, str):
                raise IntegrationFormatError(
                    f"header {name!r}: a value must be a string or a list of strings, got {value!r}"
                )
            if "\r" in item or "\n" in item:
                raise IntegrationFormatError(f"header {name!r}: line break in {item!r}")
            headers.append((name, item))

    encoded = document.get("isBase64Encoded", False)
    if encoded is None:
        encoded = False
    if not isinstance(encoded, bool):
        raise IntegrationFormatError(f"isBase64Encoded must be true or false, got {encoded!r}")
    body = document.get("body")
    if body is None:
        body = ""
    if not isinstance(body, str):
        raise IntegrationFormatError(f"body must be a string, got {type(body).__name__}")
    if encoded:
        try:
            return status, headers, base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise IntegrationFormatError("isBase64Encoded is true but body is not base64") from None
    return status, headers, body.encode("utf-8", "replace")


_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


def _is_token(name: object) -> bool:
    return isinstance(name, str) and bool(name) and all(c in _TOKEN_CHARS for c in name)


# -- a small HTTP/1.1 server (keep-alive, Content-Length or chunked bodies) --------------------


class _HTTPError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _Request:
    __slots__ = ("method", "target", "version", "headers", "body", "keep_alive", "oversize")

    def __init__(
        self, method: str, target: str, version: str, headers: list[tuple[str, str]]
    ) -> None:
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.body = b""
        self.oversize: int | None = None  # the body's size when over the limit (body not kept)
        connection = self.header("connection").lower()
        if version == "HTTP/1.0":
            self.keep_alive = "keep-alive" in connection
        else:
            self.keep_alive = "close" not in connection

    def header(self, name: str) -> str:
        values = [value for key, value in self.headers if key.lower() == name]
        return ", ".join(values)


class _Response:
    __slots__ = ("status", "headers", "body", "close", "content_length")

    def __init__(
        self,
        status: int,
        headers: list[tuple[str, str]],
        body: bytes,
        *,
        close: bool = False,
        content_length: int | None = None,
    ) -> None:
        self.status = status
        self.headers = headers  # without Content-Length, Connection, Transfer-Encoding
        self.body = body
        self.close = close
        self.content_length = content_length  # for HEAD: the length a GET would have had


def _error_response(status: int, message: str, *, errno: int | None = None) -> _Response:
    body = json.dumps({"errno": status if errno is None else errno, "error": message})
    return _Response(status, [("Content-Type", _JSON)], body.encode("utf-8"))


async def _read_request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, max_body: int
) -> _Request | None:
    """The next request on the connection, or None at a clean end of stream."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial.strip():
            raise _HTTPError(400, "incomplete request head") from None
        return None
    except asyncio.LimitOverrunError:
        raise _HTTPError(431, "request header fields too large") from None
    lines = head.decode("latin-1").lstrip("\r\n").split("\r\n")
    request_line = lines[0].split(" ")
    if len(request_line) != 3 or not request_line[0] or not request_line[1]:
        raise _HTTPError(400, f"malformed request line {lines[0][:100]!r}")
    method, target, version = request_line
    if not target.isascii():  # a raw non-ASCII path (browsers %-encode): read as UTF-8
        try:
            target = target.encode("latin-1").decode("utf-8")
        except UnicodeDecodeError:
            pass
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise _HTTPError(505, f"unsupported protocol version {version[:20]!r}")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not _is_token(name):
            raise _HTTPError(400, f"malformed header line {line[:100]!r}")
        value = value.strip(" \t")
        if not value.isascii():
            try:  # the gateway reads header bytes as UTF-8 (see the core's asgi._header_bytes)
                value = value.encode("latin-1").decode("utf-8")
            except UnicodeDecodeError:
                pass
        headers.append((name, value))
    request = _Request(method, target, version, headers)

    transfer_encoding = request.header("transfer-encoding").lower()
    length_text = request.header("content-length")
    if transfer_encoding:
        if transfer_encoding.replace(" ", "").split(",")[-1] != "chunked":
            raise _HTTPError(501, f"unsupported transfer-encoding {transfer_encoding!r}")
        _continue(request, writer)
        request.body, size = await _read_chunked(reader, max_body)
        if size > max_body:
            request.oversize = size
    elif length_text:
        values = {part.strip() for part in length_text.split(",")}
        length_value = values.pop()
        if values or not (length_value.isascii() and length_value.isdigit()):
            raise _HTTPError(400, f"invalid content-length {length_text!r}")
        length = int(length_value)
        if length > max_body:
            request.oversize = length
            if _expects_continue(request):
                request.keep_alive = False  # answered before the client sent the body
            elif length > _DISCARD_LIMIT:
                raise _HTTPError(413, f"request body of {length} bytes is far over the limit")
            else:
                # Read and drop it: closing with unread data would reset the connection, and
                # the client would see that instead of the 413.
                while length:
                    length -= len(await reader.readexactly(min(length, 1 << 16)))
        elif length:
            _continue(request, writer)
            request.body = await reader.readexactly(length)
    return request


def _expects_continue(request: _Request) -> bool:
    return request.version == "HTTP/1.1" and request.header("expect").lower() == "100-continue"


def _continue(request: _Request, writer: asyncio.StreamWriter) -> None:
    if _expects_continue(request):
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")


async def _read_chunked(reader: asyncio.StreamReader, max_body: int) -> tuple[bytes, int]:
    """The body (empty once over `max_body`; the rest is read and dropped) and its size."""
    parts: list[bytes] = []
    total = 0
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size_text = size_line.split(b";", 1)[0].strip()
        if not size_text or size_text.strip(HEX_DIGITS):
            raise _HTTPError(400, "malformed chunk size")
        size = int(size_text, 16)
        if size == 0:
            break
        total += size
        if total > _DISCARD_LIMIT:
            raise _HTTPError(413, "request body is far over the limit")
        chunk = await reader.readexactly(size)
        if total <= max_body:
            parts.append(chunk)
        else:
            parts.clear()
        if await reader.readexactly(2) != b"\r\n":
            raise _HTTPError(400, "malformed chunk")
    while (await reader.readuntil(b"\r\n")) != b"\r\n":
        pass  # trailer fields: dropped
    return b"".join(parts), total


def _encode_response(response: _Response, *, head: bool, close: bool) -> bytes:
    status = response.status
    try:
        reason = http.HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines.extend(f"{name}: {value}" for name, value in response.headers)
    if head and response.content_length is not None:
        lines.append(f"Content-Length: {response.content_length}")
    elif status != 204 and status != 304 and not (head and not response.body):
        lines.append(f"Content-Length: {len(response.body)}")
    if close:
        lines.append("Connection: close")
    head_bytes = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
    if head or status == 204 or status == 304:
        return head_bytes
    return head_bytes + response.body


class _Peer:
    """Who is on the other end of a connection: the client's IP and a tag set at accept time."""

    __slots__ = ("ip", "tag")

    def __init__(self, ip: str, tag: int) -> None:
        self.ip = ip
        self.tag = tag


class _HTTPServer:
    """Serves one handler over HTTP/1.1 with keep-alive; tracks its connections to stop them."""

    def __init__(
        self,
        handler: Callable[[_Request, _Peer], Awaitable[_Response]],
        *,
        max_body: int,
        idle_timeout: float | None,
        tag: Callable[[], int] | None = None,
    ) -> None:
        self.handler = handler
        self.max_body = max_body
        self.idle_timeout = idle_timeout
        self.tag = tag
        self.server: asyncio.AbstractServer | None = None
        self.tasks: set[asyncio.Task[Any]] = set()

    async def listen(self, host: str, port: int) -> tuple[str, int]:
        self.server = await asyncio.start_server(self._connection, host, port, limit=_HEAD_LIMIT)
        sockname = self.server.sockets[0].getsockname()
        return str(sockname[0]), int(sockname[1])

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.server is not None:
            await self.server.wait_closed()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.tasks.add(task)
        address = writer.get_extra_info("peername")
        ip = str(address[0]) if isinstance(address, tuple) and address else "127.0.0.1"
        peer = _Peer(ip, self.tag() if self.tag is not None else 0)
        try:
            await self._serve(reader, writer, peer)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # the peer went away
        except asyncio.CancelledError:
            pass  # closing down; ends the task quietly (asyncio logs a cancelled stream task)
        finally:
            writer.close()
            if task is not None:
                self.tasks.discard(task)

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: _Peer
    ) -> None:
        while True:
            try:
                if self.idle_timeout is None:
                    request = await _read_request(reader, writer, self.max_body)
                else:
                    request = await asyncio.wait_for(
                        _read_request(reader, writer, self.max_body), self.idle_timeout
                    )
            except _HTTPError as exc:
                response = _error_response(exc.status, exc.message)
                writer.write(_encode_response(response, head=False, close=True))
                await writer.drain()
                return
            except asyncio.TimeoutError:
                return
            if request is None:
                return
            response = await self.handler(request, peer)
            keep_alive = request.keep_alive and not response.close
            writer.write(
                _encode_response(response, head=request.method == "HEAD", close=not keep_alive)
            )
            await writer.drain()
            if not keep_alive:
                return


# -- the platform side of the Custom Runtime API ---------------------------------------------


class _Invocation:
    __slots__ = ("request_id", "payload", "answer", "delivered")

    def __init__(self, request_id: str, payload: bytes) -> None:
        self.request_id = request_id
        self.payload = payload
        self.delivered = False  # handed out by /next: only then can a post answer it
        # ("response" or "error", body): set by the first post
        self.answer: asyncio.Future[tuple[str, bytes]] = asyncio.get_running_loop().create_future()


class RuntimeAPI:
    """The Custom Runtime API as the spec says the platform serves it, for one instance.

    Connections are tagged with the instance generation live when they were accepted; one from
    a replaced (killed) instance gets 410, so a late post can never answer a newer event.
    """

    def __init__(self, *, memory_mb: int, timeout_ms: int) -> None:
        self.memory_mb = memory_mb
        self.timeout_ms = timeout_ms
        self.generation = 0
        self.current: _Invocation | None = None  # dispatched and not answered yet
        self.last: _Invocation | None = None
        self.on_ready: Callable[[int], None] = lambda generation: None
        self._work = asyncio.Event()  # set exactly while `current` is not None
        self.http = _HTTPServer(
            self._handle, max_body=MAX_PAYLOAD_BYTES, idle_timeout=None, tag=self._tag
        )

    def _tag(self) -> int:
        return self.generation

    def dispatch(self, invocation: _Invocation) -> None:
        self.current = invocation
        self._work.set()

    def withdraw(self, invocation: _Invocation) -> None:
        if self.current is invocation:
            self.current = None
            self._work.clear()

    async def _handle(self, request: _Request, peer: _Peer) -> _Response:
        path = request.target.partition("?")[0]
        if peer.tag != self.generation:
            return _api_error(410, "this function instance has been replaced", close=True)
        routes = {
            "/runtime/init/ready": "POST",
            "/runtime/invocation/next": "GET",
            "/runtime/invocation/response": "POST",
            "/runtime/invocation/error": "POST",
        }
        method = routes.get(path)
        if method is None:
            return _api_error(404, f"no such runtime API endpoint: {path[:200]}")
        if request.method != method:
            response = _api_error(405, f"{path} accepts {method} only")
            response.headers.append(("Allow", method))
            return response
        if path == "/runtime/invocation/next":
            return await self._next(peer)
        if path == "/runtime/init/ready":
            self.on_ready(peer.tag)
            return _Response(200, [], b"")
        return self._answer(path.rpartition("/")[2], request)

    async def _next(self, peer: _Peer) -> _Response:
        while self.current is None:
            await self._work.wait()
            if peer.tag != self.generation:
                return _api_error(410, "this function instance has been replaced", close=True)
        invocation = self.current
        invocation.delivered = True
        headers = [
            ("Content-Type", "application/json"),
            ("request_id", invocation.request_id),
            ("memory_limit_in_mb", str(self.memory_mb)),
            ("time_limit_in_ms", str(self.timeout_ms)),
        ]
        return _Response(200, headers, invocation.payload)

    def _answer(self, kind: str, request: _Request) -> _Response:
        if request.oversize is not None:
            message = (
                f"the {kind} is {request.oversize} bytes; a synchronous invocation's result "
                f"is limited to {MAX_PAYLOAD_BYTES} bytes (6 MB)"
            )
            logger.error("POST /runtime/invocation/%s rejected: %s", kind, message)
            return _api_error(413, message)
        invocation = self.current
        if invocation is None or not invocation.delivered:
            # Posts carry no request id: one that comes before the instance has fetched the
            # current event belongs to the previous one.
            if self.last is None:
                return _api_error(400, "no invocation is in progress")
            logger.warning(
                "request %s: a later %s post was ignored (the first post wins)",
                self.last.request_id,
                kind,
            )
            return _Response(200, [], b"")
        self.current = None
        self._work.clear()
        self.last = invocation
        if not invocation.answer.done():
            invocation.answer.set_result((kind, request.body))
        return _Response(200, [], b"")


def _api_error(status: int, message: str, *, close: bool = False) -> _Response:
    body = json.dumps({"error": message}).encode("utf-8")
    return _Response(status, [("Content-Type", _JSON)], body, close=close)


# -- the function instance (a child process) -------------------------------------------------


class FunctionInstance:
    """Starts, watches, kills and stops the instance process (in its own process group, so a
    terminal's Ctrl-C reaches only the emulator, which then stops the instance in order)."""

    def __init__(
        self,
        command: Sequence[str],
        cwd: str,
        env: dict[str, str],
        api: RuntimeAPI,
        init_timeout_ms: int,
    ) -> None:
        self.command = list(command)
        self.cwd = cwd
        self.env = env
        self.api = api
        self.init_timeout_ms = init_timeout_ms
        self.process: asyncio.subprocess.Process | None = None
        self.exited: asyncio.Task[int] | None = None
        self.ready = asyncio.Event()
        self.started_at = 0.0
        self.starts = 0
        self._stopped: set[int] = set()  # pids this emulator killed or stopped on purpose
        api.on_ready = self._on_ready

    @property
    def alive(self) -> bool:
        return self.exited is not None and not self.exited.done()

    async def start(self) -> None:
        self.api.generation += 1
        self.ready = asyncio.Event()
        self.started_at = time.monotonic()
        self.starts += 1
        process = await asyncio.create_subprocess_exec(
            *self.command,
            cwd=self.cwd,
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )
        self.process = process
        what = "cold start" if self.starts == 1 else f"cold start #{self.starts}"
        logger.info("%s: started the function instance, pid %d", what, process.pid)
        self.exited = asyncio.ensure_future(process.wait())
        self.exited.add_done_callback(lambda task: self._on_exit(process.pid, task))

    def _on_ready(self, generation: int) -> None:
        if generation == self.api.generation and not self.ready.is_set():
            self.ready.set()
            elapsed = (time.monotonic() - self.started_at) * 1000
            logger.info("the function instance is ready (init took %.0f ms)", elapsed)

    def _on_exit(self, pid: int, task: asyncio.Task[int]) -> None:
        if task.cancelled() or pid in self._stopped:
            return
        logger.warning("the function instance (pid %d) exited with code %s", pid, task.result())

    async def ensure_ready(self) -> str | None:
        """Start an instance if none is running and wait for its ready; an error message if it
        failed to initialise."""
        if not self.alive:
            try:
                await self.start()
            except OSError as exc:
                return f"cannot start the function instance: {exc}"
        assert self.exited is not None
        if self.ready.is_set():
            return None
        remaining = self.init_timeout_ms / 1000 - (time.monotonic() - self.started_at)
        ready = asyncio.ensure_future(self.ready.wait())
        try:
            await asyncio.wait(
                {ready, self.exited}, timeout=max(remaining, 0), return_when="FIRST_COMPLETED"
            )
        finally:
            ready.cancel()
        if self.exited.done():
            return (
                f"the function instance exited with code {self.exited.result()} during "
                "initialisation, before POST /runtime/init/ready (see its output)"
            )
        if self.ready.is_set():
            return None
        logger.error(
            "the function instance did not post /runtime/init/ready within %d ms; killing it",
            self.init_timeout_ms,
        )
        await self.kill()
        return (
            f"the function instance did not post /runtime/init/ready within the init timeout "
            f"({self.init_timeout_ms} ms) and was killed"
        )

    async def kill(self) -> None:
        """SIGKILL the instance (and anything it started), as the platform does."""
        process, exited = self.process, self.exited
        if process is None or exited is None or exited.done():
            return
        self._stopped.add(process.pid)
        _signal_group(process.pid, signal.SIGKILL)
        await exited

    async def stop(self, grace: float = _STOP_GRACE) -> None:
        """SIGTERM, wait up to `grace` seconds, then SIGKILL."""
        process, exited = self.process, self.exited
        if process is None or exited is None:
            return
        if not exited.done():
            self._stopped.add(process.pid)
            _signal_group(process.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.shield(exited), grace)
            except asyncio.TimeoutError:
                logger.warning(
                    "the function instance did not exit %.0f s after SIGTERM; killing it", grace
                )
                _signal_group(process.pid, signal.SIGKILL)
                await exited
        _signal_group(process.pid, signal.SIGKILL)  # whatever it started and left behind


def _signal_group(pid: int, signum: int) -> None:
    try:
        os.killpg(pid, signum)
    except ProcessLookupError:
        pass
    except PermissionError:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass


# -- the front door (the API gateway) --------------------------------------------------------


class FrontDoor:
    """Turns HTTP requests into events for the instance, one at a time, and answers into HTTP."""

    def __init__(self, config: LocalConfig, api: RuntimeAPI, instance: FunctionInstance) -> None:
        self.config = config
        self.api = api
        self.instance = instance
        self.lock = asyncio.Lock()  # one event at a time per instance; FIFO, so requests queue
        self.address = ""  # host:port, for requests without a Host header
        self.http = _HTTPServer(
            self._handle, max_body=MAX_PAYLOAD_BYTES, idle_timeout=_IDLE_TIMEOUT
        )

    async def prewarm(self) -> None:
        async with self.lock:
            error = await self.instance.ensure_ready()
        if error:
            logger.error("%s; a new instance will be started on the next request", error)

    async def _handle(self, request: _Request, peer: _Peer) -> _Response:
        started = time.monotonic()
        request_id = str(uuid.uuid4())
        response = await self._respond(request, peer, request_id)
        logger.info(
            '%s "%s %s" %d %dB %.1fms (request %s)',
            peer.ip,
            request.method,
            request.target[:300],
            response.status,
            len(response.body),
            (time.monotonic() - started) * 1000,
            request_id,
        )
        return response

    async def _respond(self, request: _Request, peer: _Peer, request_id: str) -> _Response:
        if request.oversize is not None:
            return _too_large(request.oversize, "body")
        host = self.config.host_header
        if host is None and not request.header("host"):
            host = self.address
        event = event_from_http(
            request.method,
            request.target,
            request.headers,
            request.body,
            source_ip=peer.ip,
            request_id=uuid.uuid4().hex,
            stage=self.config.stage,
            host=host,
            forwarded_proto=None if self.config.host_header else "http",
        )
        payload = json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        if len(payload) > MAX_PAYLOAD_BYTES:
            return _too_large(len(payload), "event (the body, base64-encoded if binary)")
        async with self.lock:
            answer = await self._invoke(_Invocation(request_id, payload))
        if isinstance(answer, _Response):
            return answer
        kind, body = answer
        if kind == "error":
            logger.error("request %s: invocation error: %s", request_id, excerpt(body))
            content_type = "text/plain; charset=utf-8"
            try:
                json.loads(body)
                content_type = _JSON
            except ValueError:
                pass
            return _Response(502, [("Content-Type", content_type)], body)
        try:
            status, headers, content = http_from_integration(body)
        except IntegrationFormatError as exc:
            logger.error(
                "request %s: the gateway rejects the function's result: %s; it was: %s",
                request_id,
                exc,
                excerpt(body),
            )
            return _Response(502, [("Content-Type", _JSON)], MALFORMED_BODY)
        kept: list[tuple[str, str]] = []
        length: int | None = None
        for name, value in headers:
            lower = name.lower()
            if lower == "content-length":
                text = value.strip()
                if text.isascii() and text.isdigit():
                    length = int(text)
            elif lower not in _HOP_BY_HOP:
                kept.append((name, value))
        if request.method != "HEAD":
            length = None
        return _Response(status, kept, content, content_length=length)

    async def _invoke(self, invocation: _Invocation) -> tuple[str, bytes] | _Response:
        instance = self.instance
        error = await instance.ensure_ready()
        if error:
            return _error_response(502, error)
        exited = instance.exited
        assert exited is not None
        self.api.dispatch(invocation)
        try:
            waits: set[asyncio.Future[Any]] = {invocation.answer, exited}
            await asyncio.wait(
                waits,
                timeout=self.config.timeout_ms / 1000,
                return_when="FIRST_COMPLETED",
            )
        finally:
            self.api.withdraw(invocation)
        if invocation.answer.done():
            return invocation.answer.result()
        if exited.done():
            message = (
                f"the function instance exited with code {exited.result()} while handling the "
                "request; a new one will be started on the next request"
            )
            logger.error("request %s: %s", invocation.request_id, message)
            return _error_response(502, message)
        logger.error(
            "request %s: function timed out after %d ms; killing the instance",
            invocation.request_id,
            self.config.timeout_ms,
        )
        await instance.kill()
        return _error_response(
            502,
            f"function timed out: no answer within {self.config.timeout_ms} ms (the function "
            "timeout, --timeout-ms); the instance was killed and a new one will be started on "
            "the next request",
        )


def _too_large(size: int, what: str) -> _Response:
    return _error_response(
        413,
        f"request entity too large: the {what} is {size} bytes; a synchronous SCF invocation "
        f"carries at most {MAX_PAYLOAD_BYTES} bytes (6 MB)",
    )


# -- the command ---------------------------------------------------------------------------


def add_parsers(commands: Any) -> None:
    """`scf-asgi local` (see `scf_asgi.cli`)."""
    local = commands.add_parser(
        "local",
        help="run an app locally, behind an emulated API gateway and Custom Runtime",
        description=(
            "Serve MODULE:ATTR on http://HOST:PORT/ the way SCF runs it: each request becomes an "
            "API gateway event for a function instance (`scf-asgi run` in a child process) that "
            "talks to an emulated Custom Runtime API; one event at a time, the function timeout "
            "kills the instance, the 6 MB payload limit applies. Paths starting with /STAGE/ "
            "have the stage removed, as on the gateway's default domain."
        ),
    )
    local.add_argument("app", nargs="?", help="MODULE:ATTR of the app (optional with --bootstrap)")
    local.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    local.add_argument("--port", type=int, default=8000, help="port to listen on (8000; 0: any)")
    local.add_argument("--stage", default="release", help="the gateway stage (release)")
    local.add_argument(
        "--bootstrap",
        default=None,
        metavar="PATH",
        help="run this executable as the instance (cwd: its directory) instead of `scf-asgi run`",
    )
    local.add_argument(
        "--handler",
        default=None,
        metavar="MODULE.ATTR",
        help=f"the function's handler setting, given to the instance as {ENV_HANDLER} (default: "
        "MODULE:ATTR); what `scf-asgi run` with no app in a bootstrap serves",
    )
    local.add_argument("--timeout-ms", type=int, default=3000, help="the function timeout (3000)")
    local.add_argument(
        "--memory-mb", type=int, default=128, help="memory_limit_in_mb given to the instance"
    )
    local.add_argument(
        "--init-timeout-ms",
        type=int,
        default=30000,
        help="time the instance has to post /runtime/init/ready (30000)",
    )
    local.add_argument(
        "--host-header",
        default=None,
        metavar="HOST",
        help="send this Host in events instead of the browser's (e.g. a gateway default domain)",
    )
    local.add_argument("--function-name", default="scf-asgi-local", help=ENV_FUNCTION_NAME)
    local.add_argument("--region", default="ap-guangzhou", help=ENV_REGION)
    options.add_arguments(local.add_argument_group("options of `scf-asgi run`, passed on"))
    local.set_defaults(command_main=local_command)


def local_command(args: Any) -> int:
    run_args = options.to_argv(options.given(args))
    if args.bootstrap and run_args:
        print(
            "scf-asgi: warning: options for `scf-asgi run` are ignored with --bootstrap "
            "(put them in the bootstrap script)",
            file=sys.stderr,
        )
    if args.bootstrap and not (args.handler or args.app):
        print(
            f"scf-asgi: warning: no handler setting (--handler MODULE.ATTR): the instance gets "
            f"no {ENV_HANDLER}, so a bootstrap running `scf-asgi run` without an app cannot start",
            file=sys.stderr,
        )
    config = LocalConfig(
        app=args.app,
        handler=args.handler,
        host=args.host,
        port=args.port,
        stage=args.stage,
        bootstrap=args.bootstrap,
        timeout_ms=args.timeout_ms,
        memory_mb=args.memory_mb,
        init_timeout_ms=args.init_timeout_ms,
        host_header=args.host_header,
        function_name=args.function_name,
        region=args.region,
        run_args=run_args,
    )
    return run_local(config)


# -- putting it together ---------------------------------------------------------------------


@dataclass
class LocalConfig:
    """The options of `scf-asgi local` (see the CLI's help for each)."""

    app: str | None = None
    handler: str | None = None  # the _HANDLER setting; app when None
    host: str = "127.0.0.1"
    port: int = 8000
    stage: str = "release"
    bootstrap: str | None = None
    timeout_ms: int = 3000
    memory_mb: int = 128
    init_timeout_ms: int = 30000
    host_header: str | None = None
    function_name: str = "scf-asgi-local"
    region: str = "ap-guangzhou"
    run_args: list[str] = field(default_factory=list)  # passed on to `scf-asgi run`


def instance_command(config: LocalConfig) -> tuple[list[str], str]:
    """The instance's command line and working directory."""
    if config.bootstrap:
        path = os.path.abspath(config.bootstrap)
        if not os.path.isfile(path):
            raise ConfigurationError(f"bootstrap {config.bootstrap!r} is not a file")
        if not os.access(path, os.X_OK):
            raise ConfigurationError(
                f"bootstrap {config.bootstrap!r} is not executable (the platform runs it "
                f"directly: chmod +x {config.bootstrap})"
            )
        return [path], os.path.dirname(path)
    if not config.app:
        raise ConfigurationError("no app given: pass MODULE:ATTR (or --bootstrap PATH)")
    command = [sys.executable, "-m", "scf_asgi", "run", config.app, *config.run_args]
    return command, os.getcwd()


def instance_environ(config: LocalConfig, cwd: str, api_port: int) -> dict[str, str]:
    """The environment the platform gives an instance, over this process's own."""
    env = dict(os.environ)
    env.update(
        {
            ENV_RUNTIME_API: "127.0.0.1",
            ENV_RUNTIME_API_PORT: str(api_port),
            ENV_FUNCTION_NAME: config.function_name,
            ENV_FUNCTION_VERSION: "$LATEST",
            ENV_NAMESPACE: "default",
            ENV_REGION: config.region,
            ENV_RUNENV: "SCF",
            ENV_USER_CODE_ROOT: os.path.join(cwd, ""),
        }
    )
    handler = config.handler or config.app
    if handler:
        env[ENV_HANDLER] = handler
    env.setdefault("PYTHONUNBUFFERED", "1")  # so the instance's prints show up at once
    return env


def run_local(config: LocalConfig) -> int:
    """Run the emulator until SIGINT/SIGTERM; the exit status."""
    stage = config.stage.strip("/")
    if not stage or "/" in stage:
        raise ConfigurationError(f"--stage must be one path segment, got {config.stage!r}")
    config.stage = stage
    if config.timeout_ms < 1 or config.init_timeout_ms < 1 or config.memory_mb < 1:
        raise ConfigurationError("--timeout-ms, --init-timeout-ms and --memory-mb must be > 0")
    command, cwd = instance_command(config)
    _configure_logging()
    return asyncio.run(_serve(config, command, cwd))


async def _serve(config: LocalConfig, command: list[str], cwd: str) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    api = RuntimeAPI(memory_mb=config.memory_mb, timeout_ms=config.timeout_ms)
    _, api_port = await api.http.listen("127.0.0.1", 0)
    instance = FunctionInstance(
        command, cwd, instance_environ(config, cwd, api_port), api, config.init_timeout_ms
    )
    front = FrontDoor(config, api, instance)
    try:
        _, port = await front.http.listen(config.host, config.port)
    except OSError as exc:
        await api.http.close()
        raise ConfigurationError(
            f"cannot listen on {config.host}:{config.port}: {exc.strerror or exc}"
        ) from None
    shown_host = f"[{config.host}]" if ":" in config.host else config.host
    front.address = f"{shown_host}:{port}"
    url = f"http://{shown_host}:{port}"
    logger.info(
        "runtime API on 127.0.0.1:%d; function timeout %d ms, memory %d MB",
        api_port,
        config.timeout_ms,
        config.memory_mb,
    )
    logger.info("serving %s/ (also as the gateway's stage URL %s/%s/)", url, url, config.stage)
    prewarm = asyncio.ensure_future(front.prewarm())
    try:
        await stop.wait()
    finally:
        logger.info("shutting down")
        prewarm.cancel()
        await front.http.close()
        await instance.stop()
        await api.http.close()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    return 0


def _configure_logging() -> None:
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("[local] %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
