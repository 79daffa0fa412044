"""The Custom Runtime API client and the invocation loop: the only code here that uses sockets.

    POST /runtime/init/ready            once, after the app (and its lifespan) has started
    GET  /runtime/invocation/next       long poll; the body is the raw event
    POST /runtime/invocation/response   the answer ...
    POST /runtime/invocation/error      ... or the failure: exactly one of the two per event

One persistent HTTP/1.1 connection, re-opened when it drops. The exchange is written by hand
over a plain socket rather than with `http.client`: the benchmarks measured http.client at more
than half of the loop's own cost per event (two writes per POST, an email-parser pass over every
response's headers) and 12 ms of imports at every cold start. A plain socket also never
consults proxy variables, and the runtime API must be reached directly. Every event pulled gets
exactly one answer: `Invocation` refuses a second, and the loop posts an error if a handler
gave none.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import time

from .context import Context
from .errors import ConfigurationError, RuntimeAPIError
from .logs import excerpt
from .platform import (
    DEFAULT_RETRY_SECONDS,
    ENV_RETRY_SECONDS,
    ENV_RUNTIME_API,
    ENV_RUNTIME_API_PORT,
    MAX_PAYLOAD_BYTES,
    function_facts,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Awaitable, Iterator, Mapping
    from typing import Any, Callable

    Handler = Callable[[bytes, Context, "Invocation"], None]
    AsyncHandler = Callable[[bytes, Context, "Invocation"], Awaitable[None]]

__all__ = [
    "HEX_DIGITS",
    "HTTPConnection",
    "Invocation",
    "RuntimeClient",
    "ShutdownGuard",
    "parse_response_head",
    "run_loop",
    "run_loop_async",
]

logger = logging.getLogger("scf_asgi")

# Chunk sizes are these only: int(text, 16) would also take "-1", "+a" and "1_0".
HEX_DIGITS = b"0123456789abcdefABCDEF"


class RuntimeClient:
    """Talks to the Custom Runtime API over one keep-alive connection.

    A dropped connection or a refused connect is retried with exponential backoff for up to
    `retry_for` seconds; after that `RuntimeAPIError` is raised and the process should exit.
    """

    def __init__(self, host: str, port: int, *, retry_for: float = 10.0) -> None:
        self.host = host
        self.port = port
        self.retry_for = retry_for
        self._connection: HTTPConnection | None = None
        self._function = function_facts()

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> RuntimeClient:
        """Build from SCF_RUNTIME_API / SCF_RUNTIME_API_PORT; ConfigurationError if unset."""
        env = os.environ if environ is None else environ
        missing = [name for name in (ENV_RUNTIME_API, ENV_RUNTIME_API_PORT) if not env.get(name)]
        if missing:
            raise ConfigurationError(
                f"{' and '.join(missing)} not set: this is not an SCF Custom Runtime. "
                "To run locally, use `scf-asgi local MODULE:APP` (the platform's behaviour) "
                "or your framework's own server (e.g. `uvicorn module:app`)."
            )
        port = env[ENV_RUNTIME_API_PORT]
        if not (port.isascii() and port.isdigit()):
            raise ConfigurationError(f"{ENV_RUNTIME_API_PORT} must be a port number, got {port!r}")
        retry_text = env.get(ENV_RETRY_SECONDS)
        try:
            retry_for = DEFAULT_RETRY_SECONDS if retry_text is None else float(retry_text)
        except ValueError:
            raise ConfigurationError(
                f"{ENV_RETRY_SECONDS} must be a number of seconds, got {retry_text!r}"
            ) from None
        return cls(env[ENV_RUNTIME_API], int(port), retry_for=retry_for)

    # -- the four endpoints ------------------------------------------------------------------

    def ready(self) -> None:
        status, _, body = self._exchange("POST", "/runtime/init/ready", b'{"msg":"ready"}')
        if status != 200:
            raise RuntimeAPIError(f"POST /runtime/init/ready answered {status}: {excerpt(body)}")

    def next_invocation(
        self, on_answer: Callable[[], object] | None = None
    ) -> tuple[bytes, Context, Invocation]:
        """Wait (with no timeout) for the next event: its raw body, context and answer slot.
        `on_answer` is called as soon as the event starts to arrive (not for an error answer,
        after which the process is still waiting for an event)."""
        backoff: _Backoff | None = None
        while True:
            status, headers, body = self._exchange(
                "GET", "/runtime/invocation/next", None, on_answer
            )
            received_at = time.monotonic()
            if status == 200:
                break
            logger.error("GET /runtime/invocation/next answered %d: %s", status, excerpt(body))
            if backoff is None:
                backoff = _Backoff(self.retry_for)
            if not backoff.wait():
                raise RuntimeAPIError(
                    f"GET /runtime/invocation/next kept answering {status} for {self.retry_for}s"
                )
        request_id = headers.get("request_id") or ""
        memory = headers.get("memory_limit_in_mb", "")
        time_limit = headers.get("time_limit_in_ms", "")
        facts = self._function
        context = Context(
            request_id,
            int(memory) if memory.isascii() and memory.isdigit() else 0,
            int(time_limit) if time_limit.isascii() and time_limit.isdigit() else 0,
            facts.name,
            facts.version,
            facts.namespace,
            facts.region,
            received_at=received_at,
        )
        return body, context, Invocation(self, request_id)

    def post_response(self, payload: bytes) -> int:
        return self._exchange("POST", "/runtime/invocation/response", payload)[0]

    def post_error(self, payload: bytes) -> int:
        return self._exchange("POST", "/runtime/invocation/error", payload)[0]

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    # -- transport -----------------------------------------------------------------------------

    def _exchange(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        on_answer: Callable[[], object] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        backoff: _Backoff | None = None
        while True:
            try:
                connection = self._connection
                if connection is None:
                    connection = self._connection = HTTPConnection(self.host, self.port)
                result = connection.exchange(method, path, body, on_answer)
                if not connection.is_open:
                    self._connection = None  # the server ended it; the next call reconnects
                return result
            except (OSError, ValueError) as exc:  # drops, refused connects, malformed answers
                self.close()
                if backoff is None:
                    backoff = _Backoff(self.retry_for)
                    logger.warning(
                        "runtime API at %s:%d unreachable (%s); retrying for up to %gs",
                        self.host,
                        self.port,
                        exc,
                        self.retry_for,
                    )
                if not backoff.wait():
                    raise RuntimeAPIError(
                        f"runtime API at {self.host}:{self.port} unreachable for "
                        f"{self.retry_for:g}s ({method} {path}): {exc}"
                    ) from exc


class _Backoff:
    """Waits between retries: 50 ms, doubling up to 1 s, until `budget` seconds have passed
    since the first failure."""

    __slots__ = ("budget", "deadline", "delay")

    def __init__(self, budget: float) -> None:
        self.budget = budget
        self.deadline = 0.0
        self.delay = 0.05

    def wait(self) -> bool:
        """Sleep before the next try; False (without sleeping) once the budget is spent."""
        now = time.monotonic()
        if not self.deadline:
            self.deadline = now + self.budget
        elif now >= self.deadline:
            return False
        time.sleep(self.delay)
        self.delay = min(self.delay * 2, 1.0)
        return True


class HTTPConnection:
    """A minimal blocking HTTP/1.1 client connection, enough for the runtime API.

    Sends each request in one write (two for large bodies, to avoid copying them); reads
    Content-Length, chunked and read-until-close bodies; honours `Connection: close`.
    No timeout: the long poll on /next may wait for hours.
    """

    __slots__ = ("_buffer", "_host_line", "_open", "_request_heads", "_sock")

    def __init__(self, host: str, port: int) -> None:
        sock = socket.create_connection((host, port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock
        self._buffer = b""
        self._open = True
        authority = f"[{host}]" if ":" in host and not host.startswith("[") else host
        self._host_line = f" HTTP/1.1\r\nHost: {authority}:{port}\r\n".encode("ascii")
        self._request_heads: dict[tuple[str, str], bytes] = {}  # request line and Host

    def close(self) -> None:
        self._open = False
        self._sock.close()

    def exchange(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        on_answer: Callable[[], object] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """One request and its answer; `on_answer` is called once the head of a 200 answer is
        in (for /next: an event has started to arrive)."""
        if not self._open:
            raise ConnectionError("the connection was closed")
        head = self._request_heads.get((method, path))
        if head is None:
            head = method.encode("ascii") + b" " + path.encode("ascii") + self._host_line
            self._request_heads[(method, path)] = head
        try:
            if body is None:
                self._sock.sendall(head + b"\r\n")
            else:
                head += b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
                if len(body) < 65536:
                    self._sock.sendall(head + body)
                else:
                    self._sock.sendall(head)
                    self._sock.sendall(body)
        except OSError:
            # A server may answer a body it will not take (413, too large) before reading it,
            # then close: the send fails, but its answer is still there to read.
            try:
                self._sock.settimeout(1.0)  # it is there at once, or not at all
                answer = self._read_answer(method, on_answer)
            except (OSError, ValueError):
                answer = None
            self.close()
            if answer is None:
                raise
            return answer
        return self._read_answer(method, on_answer)

    def _read_answer(
        self, method: str, on_answer: Callable[[], object] | None
    ) -> tuple[int, dict[str, str], bytes]:
        while True:
            status, headers, keep_alive = parse_response_head(self._read_until(b"\r\n\r\n"))
            if status == 200 and on_answer is not None:
                on_answer()
            data = self._read_body(method, status, headers)
            if status >= 200 or status == 101:
                break  # a 1xx interim answer is followed by the real one
        if not keep_alive and self._open:
            self.close()
        return status, headers, data

    @property
    def is_open(self) -> bool:
        return self._open

    def _read_until(self, delimiter: bytes) -> bytes:
        """The bytes up to `delimiter` (consumed, not returned)."""
        buffer = self._buffer
        while True:
            end = buffer.find(delimiter)
            if end >= 0:
                self._buffer = buffer[end + len(delimiter) :]
                return buffer[:end]
            if len(buffer) > 65536:
                raise ConnectionError("the runtime API sent an over-long response head or line")
            chunk = self._sock.recv(65536)
            if not chunk:
                raise ConnectionError("the runtime API closed the connection")
            buffer += chunk
            self._buffer = buffer

    def _read_exactly(self, length: int) -> bytes:
        buffer = self._buffer
        if len(buffer) >= length:
            self._buffer = buffer[length:]
            return buffer[:length]
        data = bytearray(length)
        view = memoryview(data)
        have = len(buffer)
        view[:have] = buffer
        self._buffer = b""
        while have < length:
            got = self._sock.recv_into(view[have:])
            if not got:
                raise ConnectionError("the runtime API closed the connection mid-body")
            have += got
        return bytes(data)

    def _read_body(self, method: str, status: int, headers: dict[str, str]) -> bytes:
        if method == "HEAD" or status < 200 or status in (204, 304):
            return b""
        if "chunked" in headers.get("transfer-encoding", "").lower():
            parts: list[bytes] = []
            while True:
                size_text = self._read_until(b"\r\n").split(b";", 1)[0].strip()
                if not size_text or size_text.strip(HEX_DIGITS):
                    raise ConnectionError(f"the runtime API sent a chunk size {size_text!r}")
                size = int(size_text, 16)
                if size == 0:
                    while self._read_until(b"\r\n"):  # trailers, up to the empty line
                        pass
                    return b"".join(parts)
                parts.append(self._read_exactly(size))
                self._read_until(b"\r\n")
        length = headers.get("content-length")
        if length is not None:
            if not (length.isascii() and length.isdigit()):
                raise ConnectionError(f"the runtime API sent Content-Length {length!r}")
            return self._read_exactly(int(length))
        # Neither: the body runs until the server closes the connection.
        parts = [self._buffer]
        self._buffer = b""
        while True:
            chunk = self._sock.recv(65536)
            if not chunk:
                self.close()
                return b"".join(parts)
            parts.append(chunk)


def parse_response_head(head: bytes) -> tuple[int, dict[str, str], bool]:
    """Status, headers (lower-case names) and whether the connection stays open, from the
    bytes of an HTTP/1.x response head (without the blank line). Raises ConnectionError if
    it is not one."""
    lines = head.decode("latin-1").split("\r\n")
    status_line = lines[0]
    version, code = status_line[:8], status_line[9:12]
    if (
        not version.startswith("HTTP/1.")
        or status_line[8:9] != " "
        or not (code.isascii() and code.isdigit())
    ):
        raise ConnectionError(f"not an HTTP/1.x response from the runtime API: {status_line!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    connection = headers.get("connection")
    if connection is None:
        keep_alive = version != "HTTP/1.0"
    elif version == "HTTP/1.0":
        keep_alive = "keep-alive" in connection.lower()
    else:
        keep_alive = "close" not in connection.lower()
    return int(code), headers, keep_alive


class Invocation:
    """The answer slot of one event: exactly one of `respond` / `fail` takes effect."""

    __slots__ = ("client", "request_id", "answered")

    def __init__(self, client: RuntimeClient, request_id: str) -> None:
        self.client = client
        self.request_id = request_id
        self.answered = False

    def respond(self, payload: bytes) -> None:
        if self.answered:
            logger.error("request %s: a second answer was dropped", self.request_id)
            return
        self.answered = True
        if len(payload) > MAX_PAYLOAD_BYTES:
            # The documented limit is "about 6 MB" of result, so it is posted all the same: the
            # platform decides, and a refusal below becomes an invocation error.
            logger.warning(
                "request %s: a %d-byte result is over the platform's limit of about 6 MB "
                "(binary bodies grow by a third as base64); it may be refused",
                self.request_id,
                len(payload),
            )
        status = self.client.post_response(payload)
        if status != 200:
            # Without an accepted answer the event would hang until the platform's timeout; a
            # rejected response (too large, malformed) becomes an invocation error instead.
            logger.error(
                "request %s: POST /runtime/invocation/response answered %d (%d bytes posted)",
                self.request_id,
                status,
                len(payload),
            )
            self._post_error(
                error_payload(
                    "ResponseRejected",
                    f"the runtime API rejected the response with status {status} "
                    f"({len(payload)} bytes; the platform's limit is about 6 MB)",
                )
            )

    def fail(self, payload: bytes) -> None:
        if self.answered:
            logger.error("request %s: a second answer was dropped", self.request_id)
            return
        self.answered = True
        self._post_error(payload)

    def _post_error(self, payload: bytes) -> None:
        status = self.client.post_error(payload)
        if status != 200:
            logger.error(
                "request %s: POST /runtime/invocation/error answered %d", self.request_id, status
            )


def error_payload(error_type: str, message: str) -> bytes:
    """The body of an invocation error (the platform accepts any format)."""
    return json.dumps({"errorType": error_type, "errorMessage": message}).encode("utf-8")


class _Stop(BaseException):
    """Raised out of a blocking wait on /next when a shutdown signal arrives while idle."""


class ShutdownGuard:
    """SIGTERM/SIGINT handling: stop at once while idle, or after answering the event in flight.

    Python retries a blocking recv() interrupted by a signal once the handler returns (PEP 475),
    so while idle the handler raises to break out of the long poll on /next.
    """

    def __init__(self) -> None:
        self.requested = False
        self.idle = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> ShutdownGuard:
        try:
            for signum in (signal.SIGTERM, signal.SIGINT):
                self._previous[signum] = signal.signal(signum, self._on_signal)
        except ValueError:
            pass  # not the main thread: signals stay with whoever owns them
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def begin_poll(self) -> bool:
        """Mark the process idle for a long poll; False if a signal came first. From here on a
        signal stops the poll at once; one that came before (even after the caller last looked
        at `requested`) is seen here."""
        self.idle = True
        return not self.requested

    def busy(self) -> None:
        self.idle = False

    def _on_signal(self, signum: int, frame: object) -> None:
        self.requested = True
        logger.info("received %s; shutting down", signal.Signals(signum).name)
        if self.idle:
            self.idle = False
            raise _Stop


def _invocations(client: RuntimeClient) -> Iterator[tuple[bytes, Context, Invocation]]:
    """Post ready, then yield each event pulled until a shutdown signal."""
    with ShutdownGuard() as guard:
        client.ready()
        while True:
            try:
                # Checked after marking idle, not before: Python runs a signal handler at a
                # loop's back edge, so a check at the top of the loop can miss a signal that
                # comes between the last event's answer and this poll (which would then wait
                # forever).
                if not guard.begin_poll():
                    return
                # No longer idle once the event starts to arrive: a signal then waits for the
                # event's answer rather than dropping an event already pulled.
                pulled = client.next_invocation(guard.busy)
            except _Stop:
                return
            finally:
                guard.idle = False
            yield pulled


class _ExactlyOneAnswer:
    """Around a handler: whatever it did, the event ends with exactly one answer. One is made
    per loop and pointed at each invocation in turn."""

    __slots__ = ("invocation",)

    def __init__(self) -> None:
        self.invocation: Invocation | None = None

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: object
    ) -> bool:
        invocation = self.invocation
        assert invocation is not None
        if isinstance(error, RuntimeAPIError):
            return False  # the runtime API is gone: nothing more can be posted
        if error is not None and not isinstance(error, Exception):
            # The process is exiting (SystemExit, KeyboardInterrupt): answer on the way out.
            if not invocation.answered:
                try:
                    invocation.fail(
                        error_payload(
                            "InternalError",
                            f"the instance is exiting ({type(error).__name__}) during this event",
                        )
                    )
                except Exception:
                    pass
            return False
        if error is not None:
            logger.error(
                "request %s: internal error in scf-asgi", invocation.request_id, exc_info=error
            )
        if not invocation.answered:
            logger.error("request %s: the handler gave no answer", invocation.request_id)
            invocation.fail(error_payload("InternalError", "scf-asgi: the event got no answer"))
        return True


def run_loop(client: RuntimeClient, handle: Handler) -> None:
    """Post ready, then answer events with `handle` until a shutdown signal."""
    guard = _ExactlyOneAnswer()
    for raw, context, invocation in _invocations(client):
        guard.invocation = invocation
        with guard:
            handle(raw, context, invocation)


async def run_loop_async(client: RuntimeClient, handle: AsyncHandler) -> None:
    """`run_loop` for ASGI apps: runs inside the process's one event loop, no task per event."""
    guard = _ExactlyOneAnswer()
    for raw, context, invocation in _invocations(client):
        guard.invocation = invocation
        with guard:
            await handle(raw, context, invocation)
