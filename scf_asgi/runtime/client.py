"""The Custom Runtime API client: one keep-alive connection, a blocking socket pumping bytes
through the sans-IO parser (`http11`), reconnects with backoff.

    POST /runtime/init/ready            once, after the app (and its lifespan) has started
    GET  /runtime/invocation/next       long poll; the body is the raw event
    POST /runtime/invocation/response   the answer ...
    POST /runtime/invocation/error      ... or the failure: exactly one of the two per event

A plain socket also never consults proxy variables (``http_proxy`` may be set in the function's
environment), and the runtime API must be reached directly.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import time

from ..context import Context
from ..errors import ConfigurationError, RuntimeAPIError
from ..logs import excerpt, log_error, log_warning
from ..platform import (
    DEFAULT_RETRY_SECONDS,
    ENV_RETRY_SECONDS,
    ENV_RUNTIME_API,
    ENV_RUNTIME_API_PORT,
    MAX_EVENT_BYTES,
    NEXT_MEMORY_LIMIT,
    NEXT_REQUEST_ID,
    NEXT_TIME_LIMIT,
    RUNTIME_ERROR,
    RUNTIME_NEXT,
    RUNTIME_READY,
    RUNTIME_RESPONSE,
    function_facts,
)
from .http11 import (
    DONE,
    BodyTooLarge,
    ClosedUnanswered,
    ProtocolError,
    ResponseParser,
    encode_request,
    request_head,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any, TypeVar

    C = TypeVar("C", bound="ClientBase")

__all__ = [
    "SHUTDOWN_SIGNALS",
    "AnswerCut",
    "ClientBase",
    "Connection",
    "EventTooLarge",
    "Interrupted",
    "RuntimeClient",
    "answer_begun",
]

NEXT, READY, RESPONSE, ERROR = RUNTIME_NEXT, RUNTIME_READY, RUNTIME_RESPONSE, RUNTIME_ERROR
READY_BODY = b'{"msg":"ready"}'
# A request that stayed in the air this long before its connection failed was carried by a
# working runtime API (an idle long poll the peer cut): the failure starts a new retry count.
WORKING_REQUEST_SECONDS = 0.5
# The signals that stop an instance: the platform's SIGTERM, and SIGINT (Ctrl-C, run locally).
SHUTDOWN_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Interrupted(Exception):
    """A long poll ended from outside (a shutdown signal) before any of its answer came."""


class AnswerCut(ConnectionError):
    """The connection failed after part of the answer had come: whatever it was, it was not
    an idle long poll's cut, and a /next answer that had begun may have been an event."""


class EventTooLarge(Exception):
    """/next announced an event over MAX_EVENT_BYTES; it was not read. The connection is
    closed; the invocation (`request_id`) still needs an answer."""

    def __init__(self, message: str, request_id: str) -> None:
        super().__init__(message)
        self.request_id = request_id


class Connection:
    """One HTTP/1.1 connection to the runtime API. No timeout: the long poll on /next may wait
    for hours."""

    __slots__ = ("_sock", "_authority", "_heads", "_poller", "open")

    def __init__(self, host: str, port: int) -> None:
        # The host as bytes: as text, the socket module would load the idna codec (a
        # millisecond of every cold start) to encode an address that is ASCII anyway.
        address: Any = host.encode("ascii") if host.isascii() else host
        sock = socket.create_connection((address, port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock
        bracketed = f"[{host}]" if ":" in host and not host.startswith("[") else host
        self._authority = f"{bracketed}:{port}"
        self._heads: dict[tuple[str, str], bytes] = {}  # request line and Host, made once
        self._poller: Any = None  # the socket and a wake-up descriptor, once one is given
        self.open = True

    def close(self) -> None:
        self.open = False
        self._sock.close()

    def _wait(self, wakeup_fd: int) -> None:
        """Wait until the socket has something to read; Interrupted if a shutdown signal comes
        first. poll, not select: select cannot wait on a descriptor numbered 1024 or more."""
        poller = self._poller
        if poller is None:
            poller = self._poller = select.poll()
            poller.register(self._sock, select.POLLIN)
            poller.register(wakeup_fd, select.POLLIN)
        while True:
            ready = poller.poll()
            if ready[0][0] != wakeup_fd or len(ready) > 1:
                return  # the socket has something (both: the answer first, the signal later)
            if shutdown_signalled(wakeup_fd):
                self.close()  # a request is outstanding on it
                raise Interrupted

    def exchange(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        max_body: int | None = None,
        wakeup_fd: int | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """One request and its answer. A body over `max_body` raises BodyTooLarge, unread, and
        closes the connection. With `wakeup_fd`, the wait for the answer also ends, with
        Interrupted, when a shutdown signal writes to that descriptor (`signal.set_wakeup_fd`)
        before any of the answer has come (a long poll). A failure after part of the answer
        came is AnswerCut."""
        if not self.open:
            raise ConnectionError("the connection was closed")
        head = self._heads.get((method, path))
        if head is None:
            head = self._heads[(method, path)] = request_head(method, path, self._authority)
        parser = ResponseParser(method == "HEAD", max_body)
        sock = self._sock
        try:
            for buffer in encode_request(head, body):
                sock.sendall(buffer)
        except OSError as send_error:
            # A server may answer a body it will not take (413, too large) before reading it,
            # then close: the send fails, but its answer is still there to read.
            try:
                sock.settimeout(1.0)  # it is there at once, or not at all
                self._read(parser)
            except (OSError, ProtocolError):
                self.close()
                raise send_error from None
            self.close()
        else:
            if wakeup_fd is not None:
                self._wait(wakeup_fd)
            try:
                self._read(parser)
            except BodyTooLarge:
                self.close()  # the rest of the body is still on the way: the connection is lost
                raise
            except OSError as exc:
                if parser.begun:
                    raise AnswerCut(f"the connection failed mid-answer: {exc}") from exc
                raise
        if not parser.keep_alive:
            self.close()
        return parser.status, parser.headers, parser.body

    def _read(self, parser: ResponseParser) -> None:
        recv = self._sock.recv
        feed = parser.feed
        while parser.state is not DONE:
            data = recv(65536)
            if data:
                feed(data)
            else:
                parser.feed_eof()


class Backoff:
    """The pauses between retries: 50 ms, doubling up to 1 s, until `budget` seconds have
    passed since the first of the failures in a row."""

    __slots__ = ("budget", "deadline", "delay")

    def __init__(self, budget: float) -> None:
        self.budget = budget
        self.deadline = 0.0
        self.delay = 0.05

    def next_delay(self) -> float | None:
        """How long to wait before the next try; None once the budget is spent."""
        now = time.monotonic()
        if not self.deadline:
            self.deadline = now + self.budget
        elif now >= self.deadline:
            return None
        delay = self.delay
        self.delay = min(delay * 2, 1.0)
        return delay


def _count(text: str) -> int:
    """A whole number from a /next header, 0 for anything else (a platform that sends a
    limit of more than 12 digits sends none worth reading)."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 12 else 0


class ClientBase:
    """What both clients (this blocking one, and `aio.AsyncRuntimeClient` on the event loop)
    share: the settings, reading the platform's variables, the retry bookkeeping and the
    invocation's `Context`.

    A dropped connection or a refused connect is retried with exponential backoff for up to
    `retry_for` seconds; after that `RuntimeAPIError` is raised and the process should exit.
    """

    def __init__(self, host: str, port: int, *, retry_for: float = DEFAULT_RETRY_SECONDS) -> None:
        self.host = host
        self.port = port
        self.retry_for = retry_for
        self._facts = function_facts()
        # Failures of the connection in a row: the budget counts from the first, and only an
        # answer, or a request that was in the air a while before the peer cut it (an idle
        # long poll it closed, which is no failure), shows the runtime API working and starts
        # a new count. A peer that accepts and hangs up at once uses the budget up.
        self._failures: Backoff | None = None

    @classmethod
    def from_environ(cls: type[C], environ: Mapping[str, str] | None = None) -> C:
        """Build from the platform's variables (ENV_RUNTIME_API, ENV_RUNTIME_API_PORT);
        ConfigurationError if they are unset."""
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

    def _answered(self) -> None:
        self._failures = None

    def _failed(self, exc: Exception, method: str, path: str, waited: float) -> float:
        """A failed try, `waited` seconds after its request went out: the pause before the
        next, or RuntimeAPIError once the budget is spent."""
        if waited >= WORKING_REQUEST_SECONDS and not answer_begun(exc):
            # Carried by a working runtime API (an idle long poll it cut, as a proxy may): not
            # a failure to report or to wait after; asked again at once, a new count begun.
            # A cut after any byte of an answer (bytes that are no HTTP, however late, or a
            # part of one) is a failure like any other.
            self._failures = None
            return 0.0
        if self._failures is None:
            self._failures = Backoff(self.retry_for)
            log_warning(
                "runtime API at %s:%d unreachable (%s); retrying for up to %gs",
                self.host,
                self.port,
                exc,
                self.retry_for,
            )
        delay = self._failures.next_delay()
        if delay is None:
            raise RuntimeAPIError(
                f"runtime API at {self.host}:{self.port} unreachable for "
                f"{self.retry_for:g}s ({method} {path}): {exc}"
            ) from exc
        return delay

    def _next_refused(self, status: int, body: bytes, backoff: Backoff) -> float:
        """/next answered `status`: the pause before asking again, or RuntimeAPIError."""
        log_error("GET %s answered %d: %s", NEXT, status, excerpt(body))
        delay = backoff.next_delay()
        if delay is None:
            raise RuntimeAPIError(f"GET {NEXT} kept answering {status} for {self.retry_for}s")
        return delay

    def _ready_refused(self, status: int, body: bytes, backoff: Backoff) -> float:
        """ready answered `status`: after a 5xx (the platform's own trouble, as for a posted
        answer) the pause before posting it again; RuntimeAPIError for anything else, or once
        5xx answers have gone on for the retry budget."""
        log_error("POST %s answered %d: %s", READY, status, excerpt(body))
        delay = backoff.next_delay() if status >= 500 else None
        if delay is None:
            raise RuntimeAPIError(f"POST {READY} answered {status}: {excerpt(body)}")
        return delay

    def _context(self, headers: dict[str, str], received_at: float) -> Context:
        facts = self._facts
        return Context(
            headers.get(NEXT_REQUEST_ID) or "",
            _count(headers.get(NEXT_MEMORY_LIMIT, "")),
            _count(headers.get(NEXT_TIME_LIMIT, "")),
            facts.name,
            facts.version,
            facts.namespace,
            facts.region,
            received_at=received_at,
        )


class RuntimeClient(ClientBase):
    """Talks to the Custom Runtime API over one keep-alive connection, blocking (the WSGI
    loop, which needs no event loop)."""

    def __init__(self, host: str, port: int, *, retry_for: float = DEFAULT_RETRY_SECONDS) -> None:
        super().__init__(host, port, retry_for=retry_for)
        self._connection: Connection | None = None

    # -- the four endpoints ------------------------------------------------------------------

    def ready(self, wakeup_fd: int | None = None) -> None:
        """Post ready (again after a 5xx, within the retry budget); Interrupted if a shutdown
        signal comes through `wakeup_fd` while it waits."""
        backoff = Backoff(self.retry_for)
        while True:
            status, _, body = self.exchange("POST", READY, READY_BODY, None, wakeup_fd)
            if status == 200:
                return
            _pause(self._ready_refused(status, body, backoff), wakeup_fd)

    def next_invocation(self, wakeup_fd: int | None = None) -> tuple[bytes, Context]:
        """Wait (with no timeout) for the next event: its raw body and context. Raises
        Interrupted if a shutdown signal comes through `wakeup_fd` (see `Connection.exchange`)
        before the event begins to arrive."""
        backoff = Backoff(self.retry_for)
        while True:
            try:
                status, headers, body = self.exchange("GET", NEXT, None, MAX_EVENT_BYTES, wakeup_fd)
            except BodyTooLarge as exc:
                raise EventTooLarge(str(exc), exc.headers.get(NEXT_REQUEST_ID, "")) from None
            received_at = time.monotonic()
            if status == 200:
                return body, self._context(headers, received_at)
            _pause(self._next_refused(status, body, backoff), wakeup_fd)

    def post_response(self, payload: bytes) -> int:
        return self.exchange("POST", RESPONSE, payload)[0]

    def post_error(self, payload: bytes) -> int:
        return self.exchange("POST", ERROR, payload)[0]

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def exchange(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        max_body: int | None = None,
        wakeup_fd: int | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """One request and its answer, over the kept connection (made again when it dropped).
        A body over `max_body` raises BodyTooLarge, which is not retried: asking again would
        bring the same one. Once an answer was cut after it had begun, the retries no longer
        watch `wakeup_fd`: it may have been an event, which is fetched again whole."""
        while True:
            try:
                sent = 0.0
                connection = self._connection
                if connection is None:
                    connection = self._connection = Connection(self.host, self.port)
                sent = time.monotonic()
                result = connection.exchange(method, path, body, max_body, wakeup_fd)
                if not connection.open:
                    self._connection = None  # the server ended it; the next call reconnects
                self._answered()
                return result
            except BodyTooLarge:
                self._connection = None  # closed: the body is still on its way
                raise
            except (OSError, ProtocolError) as exc:  # drops, refused connects, malformed answers
                self.close()
                waited = time.monotonic() - sent if sent else 0.0
                if answer_begun(exc):
                    wakeup_fd = None
                _pause(self._failed(exc, method, path, waited), wakeup_fd)


def answer_begun(exc: Exception) -> bool:
    """Whether an exchange that failed with `exc` had begun to bring its answer: cut after
    some of it came (AnswerCut), or bytes that are no HTTP, or closed mid-answer."""
    if isinstance(exc, ProtocolError):
        return not isinstance(exc, ClosedUnanswered)
    return isinstance(exc, AnswerCut)


def shutdown_signalled(wakeup_fd: int) -> bool:
    """Whether the signals a readable wake-up descriptor reports (`signal.set_wakeup_fd` writes
    each one's number as a byte) include a shutdown signal; what it held is read. Any other
    signal the app handles (a SIGALRM timer, a SIGUSR1 hook) wakes a wait but does not end it."""
    return any(number in SHUTDOWN_SIGNALS for number in os.read(wakeup_fd, 512))


def _pause(seconds: float, wakeup_fd: int | None) -> None:
    """Wait `seconds` before a retry; with `wakeup_fd`, a shutdown signal ends the wait with
    Interrupted: a poll that has brought nothing yet (or a ready) is not to be retried."""
    if wakeup_fd is None:
        time.sleep(seconds)
        return
    poller = select.poll()
    poller.register(wakeup_fd, select.POLLIN)
    deadline = time.monotonic() + seconds
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        if poller.poll(remaining * 1000) and shutdown_signalled(wakeup_fd):
            raise Interrupted
