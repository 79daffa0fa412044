"""A fast loopback SCF Custom Runtime API for the loop benchmarks (asyncio, no http.server).

Each `FakeRuntimeAPI` listens on its own port and serves one child process. It speaks just
enough HTTP/1.1 for the four endpoints over keep-alive connections, answering from pre-encoded
bytes, so that its own cost per invocation stays small next to the client's:

    POST /runtime/init/ready           resolves `ready` (with the perf_counter time of arrival)
    GET  /runtime/invocation/next      answered with the event while the budget lasts, else
                                       held (a long poll) until `grant()` adds budget
    POST /runtime/invocation/response  counted; resolves the batch when its last answer arrives
    POST /runtime/invocation/error     counted as an error (the benchmark then refuses to report)

The parent drives it: `grant(n)` releases n events and returns a future of the time the n-th
answer arrived. The child is idle (blocked in the long poll) between batches, which is also
when `/proc/<pid>/status` is read for the memory row.
"""

from __future__ import annotations

import asyncio
import time

_OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
_NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
_BIG = 1 << 16  # event bodies above this are written separately rather than copied into one


class FakeRuntimeAPI:
    def __init__(self, event: bytes) -> None:
        self.event = event
        self.port = 0
        self.budget = 0
        self.served = 0  # events handed out
        self.answered = 0  # responses + errors received
        self.errors: list[bytes] = []
        self.capture = False  # keep the body of the next responses in `responses`
        self.responses: list[bytes] = []
        self.ready: asyncio.Future[float] | None = None
        self._target = 0
        self._done: asyncio.Future[float] | None = None
        self._waiting: _Connection | None = None
        self._server: asyncio.AbstractServer | None = None
        self._tail = b"\r\nmemory_limit_in_mb: 128\r\ntime_limit_in_ms: 3000\r\nContent-Length: "
        self._tail += (
            str(len(event)).encode("ascii") + b"\r\nContent-Type: application/json\r\n\r\n"
        )

    async def start(self) -> FakeRuntimeAPI:
        loop = asyncio.get_running_loop()
        self.ready = loop.create_future()
        self._server = await loop.create_server(
            lambda: _Connection(self), "127.0.0.1", 0, backlog=16
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def grant(self, count: int) -> asyncio.Future[float]:
        """Release `count` events; the future gets the perf_counter time of the last answer."""
        self._done = asyncio.get_running_loop().create_future()
        self._target = self.answered + count
        self.budget += count
        waiting = self._waiting
        if waiting is not None:
            self._waiting = None
            self._send_event(waiting)
        return self._done

    # -- called by connections ---------------------------------------------------------------

    def _send_event(self, connection: _Connection) -> None:
        self.budget -= 1
        self.served += 1
        head = b"HTTP/1.1 200 OK\r\nrequest_id: bench-%d" % self.served + self._tail
        transport = connection.transport
        if len(self.event) > _BIG:
            transport.write(head)
            transport.write(self.event)
        else:
            transport.write(head + self.event)

    def _on_request(self, connection: _Connection, method: bytes, path: bytes, body: bytes) -> None:
        if path == b"/runtime/invocation/next":
            if self.budget > 0:
                self._send_event(connection)
            else:
                self._waiting = connection
            return
        connection.transport.write(_OK if method == b"POST" else _NOT_FOUND)
        if path == b"/runtime/invocation/response":
            self._answered(body)
        elif path == b"/runtime/invocation/error":
            self.errors.append(body)
            self._answered(body)
        elif path == b"/runtime/init/ready" and self.ready is not None and not self.ready.done():
            self.ready.set_result(time.perf_counter())

    def _answered(self, body: bytes) -> None:
        self.answered += 1
        if self.capture:
            self.responses.append(body)
        if self.answered == self._target and self._done is not None and not self._done.done():
            self._done.set_result(time.perf_counter())


class _Connection(asyncio.Protocol):
    """Parses pipelined HTTP/1.1 requests; bodies are kept only while the API captures them."""

    def __init__(self, api: FakeRuntimeAPI) -> None:
        self.api = api
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.buffer = b""
        self.need = 0  # body bytes still to come for the current request
        self.parts: list[bytes] = []
        self.method = b""
        self.path = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if self.api._waiting is self:
            self.api._waiting = None

    def data_received(self, data: bytes) -> None:
        if self.need:
            data = self._body(data)
            if not data:
                return
        buffer = self.buffer + data if self.buffer else data
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                self.buffer = buffer
                return
            head = buffer[:end]
            buffer = buffer[end + 4 :]
            first, _, fields = head.partition(b"\r\n")
            method, _, rest = first.partition(b" ")
            self.method = method
            self.path = rest.partition(b" ")[0]
            length = 0
            if method == b"POST":
                at = fields.lower().find(b"content-length:")
                if at >= 0:
                    stop = fields.find(b"\r\n", at)
                    length = int(fields[at + 15 : stop if stop >= 0 else len(fields)])
            if length:
                self.need = length
                self.parts = []
                buffer = self._body(buffer)
                if self.need:
                    self.buffer = b""
                    return
            else:
                self.api._on_request(self, method, self.path, b"")
            if not buffer:
                self.buffer = b""
                return

    def _body(self, data: bytes) -> bytes:
        """Take body bytes from `data`; dispatch when complete; return what follows the body."""
        need = self.need
        if len(data) < need:
            if self.api.capture:
                self.parts.append(data)
            self.need = need - len(data)
            return b""
        if self.api.capture:
            self.parts.append(data[:need])
        self.need = 0
        body = b"".join(self.parts) if self.api.capture else b""
        self.parts = []
        self.api._on_request(self, self.method, self.path, body)
        return data[need:]
