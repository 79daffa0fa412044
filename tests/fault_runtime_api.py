"""A fault-injecting fake of the SCF Custom Runtime API, on raw sockets.

`tests/runtime_api.py` is the platform's side as a well-behaved HTTP server (uvicorn). This one
is the platform's side misbehaving, byte by byte: any request can be met with one of the
`FAULTS` (a reset before or in the middle of the answer, a truncated answer, a garbage status
line, a 5xx or 413 to a post, a non-200 to /next, an answer sent a byte at a time, the
listener closed for a while and opened again on the same port, an idle long poll cut, an
absurd Content-Length or chunk size), or with one of the `VARIANTS`, answers that are odd but
valid HTTP/1.1 (chunked, an interim 100 first, HTTP/1.0 with close).

It keeps the platform's semantics (shared/spec/scf-custom-runtime.md, section 1):

- GET /runtime/invocation/next long-polls; it hands out the queued events in order and hands
  out the same one again until it is answered;
- POST /runtime/invocation/response and /error carry no request id: they answer the invocation
  handed out last. The first post taken wins; every later one is recorded too, so that a
  test can tell an identical re-post after a lost reply (harmless) from a conflicting answer.

A fault either comes after the request was processed (the event handed out, the post taken:
the answer to it is what is lost) or instead of processing it; `Fault.processed` says which.

Faults are chosen per request by a script (`script(endpoint, *faults)`, taken in order) or
by a `RandomPlan`, which decides from (seed, endpoint, invocation, attempt) alone, so that a
seeded run injects the same faults whatever the timing.

`publish()` puts a suite's figures in a "reliability figures" section at the end of the
pytest run, which is where the README's "Reliability" section takes them from.
"""

from __future__ import annotations

import json
import random
import socket
import struct
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Sequence
from typing import Any, Callable, Optional

READY = "/runtime/init/ready"
NEXT = "/runtime/invocation/next"
RESPONSE = "/runtime/invocation/response"
ERROR = "/runtime/invocation/error"
# The endpoints faults are chosen for; "idle" is a long poll with no event to hand out.
ENDPOINTS = {READY: "ready", NEXT: "next", RESPONSE: "response", ERROR: "error"}
POSTS = ("ready", "response", "error")
IDLE = "idle"


class Fault:
    """One way of answering a request badly. `endpoints`: where it can happen; `processed`:
    whether the request was processed first (the event handed out, the post taken)."""

    def __init__(self, name: str, endpoints: tuple[str, ...], *, processed: bool) -> None:
        self.name = name
        self.endpoints = endpoints
        self.processed = processed

    def __repr__(self) -> str:
        return f"Fault({self.name!r})"


ALL = ("ready", "next", "response", "error")
RESET_BEFORE_REPLY = Fault("reset before the answer", ALL, processed=True)
RESET_MID_REPLY = Fault("reset mid-answer", ALL, processed=True)
TRUNCATED_REPLY = Fault("answer truncated (closed early)", ALL, processed=True)
GARBAGE_STATUS = Fault("garbage status line", ALL, processed=True)
RESET_UNREAD = Fault("reset before the request is read", ALL, processed=False)
SLOW_REPLY = Fault("answer sent a byte at a time", ALL, processed=True)
REFUSED = Fault("connections refused for a while", ALL, processed=False)
STATUS_5XX = Fault("5xx answer to a post", POSTS, processed=False)
STATUS_413 = Fault("413 answer to a response", ("response",), processed=False)
NEXT_NON_200 = Fault("non-200 answer to /next", ("next",), processed=False)
ABSURD_LENGTH = Fault("absurd Content-Length", ALL, processed=True)
ABSURD_CHUNK = Fault("absurd chunk size", ALL, processed=True)
IDLE_CUT = Fault("idle long poll cut by the peer", (IDLE,), processed=False)
# Scripted for "idle", REFUSED closes the port under an idle long poll.
FAULTS = (
    RESET_BEFORE_REPLY,
    RESET_MID_REPLY,
    TRUNCATED_REPLY,
    GARBAGE_STATUS,
    RESET_UNREAD,
    SLOW_REPLY,
    REFUSED,
    STATUS_5XX,
    STATUS_413,
    NEXT_NON_200,
    ABSURD_LENGTH,
    ABSURD_CHUNK,
    IDLE_CUT,
)
# Valid HTTP/1.1 that a runtime client must read all the same.
CHUNKED = Fault("chunked answer, small chunks and a trailer", ALL, processed=True)
INTERIM_100 = Fault("interim 100 Continue first", ALL, processed=True)
HTTP10_CLOSE = Fault("HTTP/1.0 answer, connection closed", ALL, processed=True)
VARIANTS = (CHUNKED, INTERIM_100, HTTP10_CLOSE)

# Status lines no HTTP/1.x server sends; each must make the client drop the connection.
GARBAGE_LINES = (
    b"HTTP/1.1 OK\r\n",
    b"HTPT/1.1 200 OK\r\n",
    b"\x00\xff\x13\x10garbage\r\n",
    b"HTTP/1.1 2000 OK\r\n",
    b"HTTP/2 200\r\n",
    b"ICY 200 OK\r\n",
    b"HTTP/1.1 2x0 OK\r\n",
    b"HTTP/1.1\t200 OK\r\n",
)
FIVE_XX = (500, 502, 503, 504)
# SLOW_REPLY pauses `slow_delay` after each of the first this many bytes (the head, where a
# parser meets lines cut anywhere), then sends the rest a byte per write without pausing.
SLOW_BYTES = 300
NON_200 = (503, 500, 429, 404)
ABSURD_LENGTHS = (b"999999999999999", b"18446744073709551616")
ABSURD_CHUNKS = (b"FFFFFFFFFFFFFFFF", b"7fffffffffffffffffff")

Plan = Callable[[str, Optional["Invocation"], int], Optional[Fault]]


class Invocation:
    """One event, and everything that happened to it."""

    def __init__(self, index: int, body: bytes, request_id: str) -> None:
        self.index = index
        self.body = body
        self.request_id = request_id
        self.answers: list[tuple[str, bytes]] = []  # every post taken for it, in order
        self.deliveries = 0  # /next answers that carried it (whole or not)
        self.post_attempts = 0  # posts that reached the fake while it was unanswered
        # Handed out again after the runtime had tried to answer it: the runtime gave up on
        # its answer and ran the event a second time.
        self.redelivered_after_post = 0
        self.faults: list[tuple[str, str]] = []  # (endpoint, fault name) met on its way
        self.attempts: Counter[str] = Counter()  # requests per endpoint, faulted or not
        self.done = threading.Event()

    @property
    def answer(self) -> tuple[str, bytes] | None:
        return self.answers[0] if self.answers else None

    @property
    def reposts(self) -> int:
        return sum(1 for answer in self.answers[1:] if answer == self.answers[0])

    @property
    def conflicts(self) -> int:
        return sum(1 for answer in self.answers[1:] if answer != self.answers[0])

    def json(self) -> Any:
        assert self.answer is not None, f"invocation {self.index} has no answer"
        return json.loads(self.answer[1])

    def __repr__(self) -> str:
        return f"Invocation({self.index}, {self.request_id!r}, answers={self.answers!r:.200})"


class Tally:
    """What happened to a set of invocations, as the figures count it."""

    def __init__(self, invocations: list[Invocation], stray: int, unknown: int) -> None:
        self.events = len(invocations)
        self.lost = [i.index for i in invocations if not i.answers]
        self.conflicts = sum(i.conflicts for i in invocations)
        self.reposts = sum(i.reposts for i in invocations)
        self.redelivered = sum(i.redelivered_after_post for i in invocations)
        self.stray = stray
        self.unknown = unknown

    def problems(self) -> dict[str, Any]:
        """What breaks "every event answered exactly once": all empty or zero when it holds."""
        return {
            "lost": self.lost,
            "conflicting answers": self.conflicts,
            "run again after an answer was tried": self.redelivered,
            "posts with no invocation": self.stray,
            "requests of no endpoint": self.unknown,
        }


CLEAN = {
    "lost": [],
    "conflicting answers": 0,
    "run again after an answer was tried": 0,
    "posts with no invocation": 0,
    "requests of no endpoint": 0,
}


class RandomPlan:
    """Faults at random, decided by (seed, endpoint, invocation, attempt) alone.

    `rate` is the chance of a fault on any one request; `weights` how the faults are shared
    out among the kinds that fit the endpoint. At most `per_exchange` faults hit the requests
    of one endpoint for one invocation, so the client's own bounds (three re-posts of a
    response answered 5xx) are never what runs out.
    """

    def __init__(
        self,
        seed: int,
        rate: float,
        weights: dict[Fault, float],
        *,
        per_exchange: int = 2,
        endpoints: tuple[str, ...] = ("next", "response", "error"),
    ) -> None:
        self.seed = seed
        self.rate = rate
        self.weights = weights
        self.per_exchange = per_exchange
        self.endpoints = endpoints

    def __call__(self, endpoint: str, invocation: Invocation | None, attempt: int) -> Fault | None:
        if invocation is None or endpoint not in self.endpoints:
            return None
        faulted = sum(1 for where, _ in invocation.faults if where == endpoint)
        if faulted >= self.per_exchange:
            return None
        chooser = random.Random(f"{self.seed}:{endpoint}:{invocation.index}:{attempt}")
        if chooser.random() >= self.rate:
            return None
        kinds = [(f, w) for f, w in self.weights.items() if endpoint in f.endpoints]
        if not kinds:
            return None
        return chooser.choices([f for f, _ in kinds], [w for _, w in kinds])[0]


class _Connection:
    def __init__(self, sock: socket.socket, number: int) -> None:
        self.sock = sock
        self.number = number
        self.killed = False


class _Closed(Exception):
    """The connection is gone (closed by a fault, by the client, or by the fake's end)."""


def reset(sock: socket.socket) -> None:
    """Close with a TCP RST rather than a FIN (SO_LINGER with a zero timeout)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


def _response(status: int, body: bytes, headers: Sequence[tuple[str, str]] = ()) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}"]
    lines += [f"{name}: {value}" for name, value in headers]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


_REASONS = {
    200: "OK",
    404: "Not Found",
    413: "Payload Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class FaultRuntimeAPI:
    """The platform's side of the Custom Runtime API on 127.0.0.1 (a port of its own),
    misbehaving as it is told."""

    def __init__(
        self,
        *,
        plan: Plan | None = None,
        refuse_seconds: float = 0.3,
        slow_delay: float = 0.0,
        idle_cut_after: float = 0.2,
    ) -> None:
        self.plan = plan
        self.refuse_seconds = refuse_seconds  # how long REFUSED keeps the port closed
        self.slow_delay = slow_delay  # pause between the bytes of SLOW_REPLY
        self.idle_cut_after = idle_cut_after  # how long an idle poll waits before IDLE_CUT
        # An idle GARBAGE_STATUS sends part of a line that is no HTTP, then resets (else the
        # whole line, then closes)
        self.idle_garbage_reset = False
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.ready = threading.Event()
        self.ready_count = 0
        self.invocations: list[Invocation] = []
        self.queue: deque[Invocation] = deque()
        self.last: Invocation | None = None  # handed out last, answered or not
        self.stray: list[tuple[str, bytes]] = []  # posts before any event was handed out
        self.requests: list[tuple[str, str]] = []  # (endpoint, fault name or "") of each
        self.unknown_requests: list[str] = []  # request lines of no endpoint of the API
        self.fault_counts: Counter[str] = Counter()
        self.variant_counts: Counter[str] = Counter()
        self.polls_waiting = 0  # long polls waiting for an event right now
        self.connections = 0
        self._scripts: dict[str, deque[Fault | None]] = {}
        self._live: set[_Connection] = set()
        self._closing = False
        self._refusing = False
        self.listener = self._listen(0)
        self.port: int = self.listener.getsockname()[1]
        self._start_accepting(self.listener)

    # -- what a test does ----------------------------------------------------------------

    def script(self, endpoint: str, *faults: Fault | None) -> None:
        """Meet the next requests to `endpoint` ("ready", "next", "response", "error", or
        "idle" for long polls with nothing to hand out) with these faults, in order; None is a
        request answered properly."""
        with self.changed:
            self._scripts.setdefault(endpoint, deque()).extend(faults)
            self.changed.notify_all()

    def scripted(self) -> int:
        """Faults scripted and not met yet."""
        with self.lock:
            return sum(len(queue) for queue in self._scripts.values())

    def queue_event(self, event: Any, *, request_id: str | None = None) -> Invocation:
        body = event if isinstance(event, bytes) else json.dumps(event).encode("utf-8")
        with self.changed:
            invocation = Invocation(len(self.invocations), body, request_id or str(uuid.uuid4()))
            self.invocations.append(invocation)
            self.queue.append(invocation)
            self.changed.notify_all()
        return invocation

    def invoke(self, event: Any, timeout: float = 20.0) -> Invocation:
        invocation = self.queue_event(event)
        self.wait(invocation, timeout)
        return invocation

    def wait(self, invocation: Invocation, timeout: float = 20.0) -> None:
        if not invocation.done.wait(timeout):
            raise TimeoutError(f"no answer to {invocation!r} within {timeout}s")

    def wait_for(self, condition: Callable[[], bool], timeout: float = 20.0) -> None:
        """Wait until `condition()` (called with the state locked) holds."""
        with self.changed:
            if not self.changed.wait_for(condition, timeout):
                raise TimeoutError(f"condition never held; requests so far: {self.requests[-20:]}")

    def wait_idle(self, timeout: float = 20.0) -> None:
        """Wait until every queued event is answered and the runtime waits in a long poll for
        the next: then it has posted all it will for them."""
        self.wait_for(
            lambda: (
                not self.queue
                and (self.last is None or bool(self.last.answers))
                and self.polls_waiting > 0
            ),
            timeout,
        )

    def tally(self, invocations: list[Invocation] | None = None) -> Tally:
        with self.lock:
            chosen = list(self.invocations if invocations is None else invocations)
            return Tally(chosen, len(self.stray), len(self.unknown_requests))

    def close(self) -> None:
        with self.changed:
            self._closing = True
            listener, self.listener = self.listener, None  # type: ignore[assignment]
            live = list(self._live)
            self.changed.notify_all()
        if listener is not None:
            self._close_listener(listener)
        for connection in live:
            self._kill(connection)

    # -- the listener ----------------------------------------------------------------------

    def _listen(self, port: int) -> socket.socket:
        deadline = time.monotonic() + 5
        while True:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
                continue
            sock.listen(64)
            return sock

    def _start_accepting(self, listener: socket.socket) -> None:
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                sock, _ = listener.accept()
            except OSError:
                return  # closed: REFUSED or the end
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.lock:
                if self._closing:
                    sock.close()
                    return
                self.connections += 1
                connection = _Connection(sock, self.connections)
                self._live.add(connection)
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    @staticmethod
    def _close_listener(listener: socket.socket) -> None:
        try:
            listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
        except OSError:
            pass
        listener.close()

    def _kill(self, connection: _Connection) -> None:
        connection.killed = True
        try:
            connection.sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in recv()
        except OSError:
            pass
        reset(connection.sock)

    def _refuse(self) -> None:
        """Close the listener and every connection; listen on the same port again later."""
        with self.changed:
            if self._refusing or self._closing:
                return
            self._refusing = True
            listener = self.listener
            live = list(self._live)
            self.changed.notify_all()
        self._close_listener(listener)
        for connection in live:
            self._kill(connection)
        threading.Timer(self.refuse_seconds, self._reopen).start()

    def _reopen(self) -> None:
        with self.lock:
            if self._closing:
                return
        listener = self._listen(self.port)
        with self.lock:
            self.listener = listener
            self._refusing = False
        self._start_accepting(listener)

    # -- one connection ------------------------------------------------------------------------

    def _serve(self, connection: _Connection) -> None:
        sock = connection.sock
        buffer = b""
        try:
            while True:
                head, buffer = self._read_head(sock, buffer)
                request_line, _, header_text = head.partition(b"\r\n")
                method, path = request_line.split(b" ")[:2]
                endpoint = ENDPOINTS.get(path.decode("latin-1"), "")
                if (method == b"GET") != (endpoint == "next"):
                    endpoint = ""
                length = 0
                for line in header_text.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                if endpoint == "next":
                    self._next(connection)
                    buffer = b""  # a GET has no body
                    continue
                if not endpoint:  # no request of the runtime API
                    with self.changed:
                        self.unknown_requests.append(request_line.decode("latin-1"))
                    connection.sock.sendall(_response(404, b""))
                    buffer = buffer[length:]
                    continue
                fault = self._choose_post_fault(endpoint)
                if fault is RESET_UNREAD:
                    self._post(connection, endpoint, b"", fault)  # raises _Closed
                while len(buffer) < length:
                    chunk = sock.recv(65536)
                    if not chunk:
                        raise _Closed
                    buffer += chunk
                body, buffer = buffer[:length], buffer[length:]
                self._post(connection, endpoint, body, fault)
        except (_Closed, OSError, ValueError):
            pass
        finally:
            with self.changed:
                self._live.discard(connection)
                self.changed.notify_all()
            if not connection.killed:
                sock.close()

    @staticmethod
    def _read_head(sock: socket.socket, buffer: bytes) -> tuple[bytes, bytes]:
        while b"\r\n\r\n" not in buffer:
            chunk = sock.recv(65536)
            if not chunk:
                raise _Closed
            buffer += chunk
            if len(buffer) > 65536:
                raise _Closed
        head, _, rest = buffer.partition(b"\r\n\r\n")
        return head, rest

    def _pop_script(self, endpoint: str) -> tuple[bool, Fault | None]:
        queue = self._scripts.get(endpoint)
        if queue:
            return True, queue.popleft()
        return False, None

    def _choose(self, endpoint: str, invocation: Invocation | None) -> Fault | None:
        """The fault for this request (the state locked): the script's, else the plan's."""
        attempt = 0
        if invocation is not None:
            attempt = invocation.attempts[endpoint]
            invocation.attempts[endpoint] += 1
        found, fault = self._pop_script(endpoint)
        if not found and self.plan is not None:
            fault = self.plan(endpoint, invocation, attempt)
        if fault is STATUS_413 and invocation is not None and invocation.answers:
            fault = None  # the same bytes were taken before: a re-post is never too large
        return fault

    def _choose_post_fault(self, endpoint: str) -> Fault | None:
        with self.lock:
            target = self.last if endpoint in ("response", "error") else None
            return self._choose(endpoint, target)

    def _note(self, endpoint: str, fault: Fault | None, invocation: Invocation | None) -> None:
        with self.changed:
            name = fault.name if fault is not None else ""
            self.requests.append((endpoint, name))
            if fault is not None:
                if fault in VARIANTS:
                    self.variant_counts[fault.name] += 1
                else:
                    self.fault_counts[fault.name] += 1
                if invocation is not None:
                    invocation.faults.append((endpoint, fault.name))
            self.changed.notify_all()

    # -- GET /next -------------------------------------------------------------------------

    def _next(self, connection: _Connection) -> None:
        began = time.monotonic()
        idle_fault: Fault | None = None
        fault: Fault | None = None
        invocation: Invocation | None = None
        with self.changed:
            self.polls_waiting += 1
            self.changed.notify_all()
            try:
                while True:
                    if connection.killed or self._closing:
                        raise _Closed
                    last = self.last
                    if last is not None and not last.answers:
                        invocation = last
                        break
                    if self.queue:
                        invocation = self.queue[0]
                        break
                    queue = self._scripts.get(IDLE)
                    if queue and time.monotonic() - began >= self.idle_cut_after:
                        idle_fault = queue.popleft()
                        if idle_fault is not None:
                            self.requests.append((IDLE, idle_fault.name))
                            self.fault_counts[idle_fault.name] += 1
                            self.changed.notify_all()
                            break
                        began = time.monotonic()
                    self.changed.wait(0.05 if queue else 1.0)
                if idle_fault is not None:
                    invocation = None
                else:
                    fault = self._choose("next", invocation)
                if invocation is not None and (fault is None or fault.processed):
                    if self.queue and invocation is self.queue[0]:
                        self.queue.popleft()
                    if invocation.post_attempts and not invocation.answers:
                        invocation.redelivered_after_post += 1
                    invocation.deliveries += 1
                    self.last = invocation
            finally:
                self.polls_waiting -= 1
        if idle_fault is REFUSED:
            self._refuse()
        elif idle_fault is GARBAGE_STATUS and self.idle_garbage_reset:
            self._send(connection, GARBAGE_LINES[2][:9])  # no line end: nothing to refuse yet
            time.sleep(0.002)  # delivered before the RST
            reset(connection.sock)
            connection.killed = True
        elif idle_fault is GARBAGE_STATUS:  # no HTTP, once the poll has waited a while
            self._send(connection, GARBAGE_LINES[0] + b"Content-Length: 0\r\n\r\n")
        if invocation is None:
            raise _Closed  # the peer closes the poll, no answer (or the port with it)
        self._note("next", fault, invocation)
        headers = [
            ("Request_Id" if invocation.index % 2 else "request_id", invocation.request_id),
            ("memory_limit_in_mb", "128"),
            ("time_limit_in_ms", "3000"),
            ("Content-Type", "application/json"),
        ]
        if fault is NEXT_NON_200:
            status = NON_200[invocation.attempts["next"] % len(NON_200)]
            self._send(connection, _response(status, b'{"error":"temporarily unavailable"}'))
            return
        self._answer(connection, fault, headers, invocation.body, invocation.attempts["next"], 10.0)

    # -- POST /ready, /response, /error ----------------------------------------------------

    def _post(
        self,
        connection: _Connection,
        endpoint: str,
        body: bytes,
        fault: Fault | None,
    ) -> None:
        with self.changed:
            target = self.last if endpoint in ("response", "error") else None
            if target is not None and not target.answers:
                target.post_attempts += 1
            if fault is None or fault.processed:
                if endpoint == "ready":
                    self.ready_count += 1
                    self.ready.set()
                elif target is None:
                    self.stray.append((endpoint, body))
                else:
                    target.answers.append((endpoint, body))
                    target.done.set()
            self.changed.notify_all()
        self._note(endpoint, fault, target)
        attempt = target.attempts[endpoint] if target is not None else self.ready_count
        if fault is STATUS_5XX:
            status = FIVE_XX[attempt % len(FIVE_XX)]
            self._send(connection, _response(status, b'{"error":"try again"}'))
        elif fault is STATUS_413:
            self._send(connection, _response(413, b'{"error":"too large"}'))
        elif fault is REFUSED:
            self._refuse()
            raise _Closed
        else:
            self._answer(
                connection, fault, [("Content-Type", "application/json")], b"{}", attempt, 0.05
            )

    # -- answering, faults and all -----------------------------------------------------------

    def _send(self, connection: _Connection, data: bytes) -> None:
        connection.sock.sendall(data)

    def _answer(
        self,
        connection: _Connection,
        fault: Fault | None,
        headers: list[tuple[str, str]],
        body: bytes,
        attempt: int,
        hang_up_after: float,
    ) -> None:
        """Send the answer (status 200, `headers`, `body`) as `fault` says. After an absurd
        length the client must hang up; if it has not after `hang_up_after` seconds, the fake
        does (a post's answer, which the client reads without a bound)."""
        sock = connection.sock
        whole = _response(200, body, headers)
        if fault is None:
            sock.sendall(whole)
        elif fault is REFUSED:
            self._refuse()
            raise _Closed
        elif fault is RESET_BEFORE_REPLY or fault is RESET_UNREAD:
            reset(sock)
            connection.killed = True
            raise _Closed
        elif fault is RESET_MID_REPLY:
            sock.sendall(whole[: max(1, len(whole) * (attempt % 3 + 1) // 4)])
            time.sleep(0.002)  # delivered before the RST
            reset(sock)
            connection.killed = True
            raise _Closed
        elif fault is TRUNCATED_REPLY:
            if attempt % 2:  # chunked framing, cut inside a chunk
                data = self._chunked(headers, body)
                sock.sendall(data[: max(1, len(data) - 3)])
            else:  # Content-Length framing, the body short
                sock.sendall(whole[: max(1, len(whole) - max(1, len(body) // 2))])
            sock.shutdown(socket.SHUT_WR)
            raise _Closed
        elif fault is GARBAGE_STATUS:
            line = GARBAGE_LINES[attempt % len(GARBAGE_LINES)]
            sock.sendall(line + whole.partition(b"\r\n")[2])
            sock.shutdown(socket.SHUT_WR)
            raise _Closed
        elif fault is SLOW_REPLY:
            for position, byte in enumerate(whole):
                sock.sendall(bytes((byte,)))
                if position < SLOW_BYTES and self.slow_delay:
                    time.sleep(self.slow_delay)
        elif fault is ABSURD_LENGTH:
            value = ABSURD_LENGTHS[attempt % len(ABSURD_LENGTHS)]
            head = _response(200, b"", headers).replace(
                b"Content-Length: 0", b"Content-Length: " + value
            )
            sock.sendall(head + body[:10])
            self._wait_for_close(sock, hang_up_after)
        elif fault is ABSURD_CHUNK:
            size = ABSURD_CHUNKS[attempt % len(ABSURD_CHUNKS)]
            head = self._chunked(headers, b"").partition(b"\r\n\r\n")[0]
            sock.sendall(head + b"\r\n\r\n" + size + b"\r\n" + body[:10])
            self._wait_for_close(sock, hang_up_after)
        elif fault is CHUNKED:
            sock.sendall(self._chunked(headers, body))
        elif fault is INTERIM_100:
            sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n" + whole)
        elif fault is HTTP10_CLOSE:
            sock.sendall(b"HTTP/1.0" + whole[len(b"HTTP/1.1") :])
            sock.shutdown(socket.SHUT_WR)
            raise _Closed
        else:
            raise AssertionError(f"{fault!r} cannot answer this request")

    @staticmethod
    def _chunked(headers: list[tuple[str, str]], body: bytes) -> bytes:
        head = [b"HTTP/1.1 200 OK"]
        head += [f"{name}: {value}".encode("latin-1") for name, value in headers]
        head.append(b"Transfer-Encoding: chunked")
        parts = [b"\r\n".join(head) + b"\r\n\r\n"]
        step = max(1, len(body) // 5)
        for start in range(0, len(body), step):
            piece = body[start : start + step]
            parts.append(b"%x;ext=1\r\n%s\r\n" % (len(piece), piece))
        parts.append(b"0\r\nX-Trailer: yes\r\n\r\n")
        return b"".join(parts)

    @staticmethod
    def _wait_for_close(sock: socket.socket, timeout: float) -> None:
        sock.settimeout(timeout)
        try:
            while sock.recv(65536):
                pass
        except OSError:
            pass
        raise _Closed


# -- the figures -------------------------------------------------------------------------------


class _FiguresPlugin:
    """Prints every suite's figures at the end of the run, in the order they came."""

    name = "scf-asgi-reliability-figures"

    def __init__(self) -> None:
        self.sections: dict[str, list[str]] = {}
        self.faults: dict[str, Counter[str]] = {}

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.sections:
            return
        terminalreporter.section("reliability figures")
        for title, lines in self.sections.items():
            terminalreporter.write_line(f"{title}:")
            for line in lines:
                terminalreporter.write_line(f"  {line}")
        if len(self.faults) > 1:
            together = sum(self.faults.values(), Counter())
            terminalreporter.write_line(
                f"faults, all suites together: {sum(together.values())} ({counts(together)})"
            )


def publish(config: Any, title: str, lines: list[str], faults: Counter[str] | None = None) -> None:
    """Add `lines` under `title` to the "reliability figures" section of this pytest run;
    `faults` (by kind) are also added up over the suites."""
    plugin = config.pluginmanager.get_plugin(_FiguresPlugin.name)
    if plugin is None:
        plugin = _FiguresPlugin()
        config.pluginmanager.register(plugin, _FiguresPlugin.name)
    plugin.sections[title] = lines
    if faults is not None:
        plugin.faults[title] = Counter(faults)


def counts(counter: Counter[str]) -> str:
    """'a 3, b 1' for a Counter, largest first; 'none' when empty."""
    return ", ".join(f"{name} {n}" for name, n in counter.most_common()) or "none"
