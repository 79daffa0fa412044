"""The runtime API client on the event loop, for ASGI apps: the loop keeps running while the
next event is awaited, so work an app hands to it (a detached task, a timer, a pool's
keep-alive) runs between invocations, and no blocking call holds the loop's thread.

The same sans-IO parser (`http11`) as the blocking client, fed by an `asyncio.BufferedProtocol`; the
same settings and retry bookkeeping (`client.ClientBase`). A request is written at once (the
transport sends what the socket takes right away), and its answer is awaited apart: an app's
response leaves from inside its last send(), and the loop awaits the runtime API's reply
before it asks for the next event.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time

from ..logs import log_error, log_info
from ..platform import DEFAULT_RETRY_SECONDS, MAX_EVENT_BYTES, NEXT_REQUEST_ID
from .client import (
    ERROR,
    NEXT,
    READY,
    READY_BODY,
    RESPONSE,
    SHUTDOWN_SIGNALS,
    AnswerCut,
    Backoff,
    ClientBase,
    EventTooLarge,
    Interrupted,
    answer_begun,
)
from .http11 import DONE, BodyTooLarge, ProtocolError, ResponseParser, encode_request, request_head
from .loop import AnswerCheck, Invocation, dispatch

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Awaitable, Coroutine, Generator
    from typing import Any

    from ..adapter import Adapter
    from ..asgi import AsgiRunner
    from ..context import Context
    from .loop import Handle, Step

    Answer = tuple[int, dict[str, str], bytes]

__all__ = [
    "AsyncInvocation",
    "AsyncRuntimeClient",
    "Interrupted",
    "LoopShutdown",
    "run_async",
    "serve_asgi",
]


# What one read of the socket takes, as the blocking client's recv does. The transport reads
# into this buffer, kept for the connection's life: a plain Protocol is given a new bytes
# object per read, which asyncio allocates at 256 KiB, and allocations that large are a mmap,
# a mremap and a munmap each (measured: twice the process's CPU time per invocation).
_READ_BYTES = 65536


class _Connection(asyncio.BufferedProtocol):
    """One HTTP/1.1 connection to the runtime API, one exchange at a time."""

    def __init__(self, authority: str) -> None:
        self.authority = authority
        self._read_buffer = memoryview(bytearray(_READ_BYTES))
        self.transport: asyncio.Transport | None = None
        self.open = False
        self._heads: dict[tuple[str, str], bytes] = {}  # request line and Host, made once
        self._parser: ResponseParser | None = None
        self._answer: asyncio.Future[Answer] | None = None

    @property
    def idle(self) -> bool:
        return self.open and self._parser is None

    def send(
        self,
        method: str,
        path: str,
        body: bytes | None,
        max_body: int | None = None,
    ) -> asyncio.Future[Answer]:
        """Write one request now; the future gets its answer (or the connection's failure)."""
        assert self.transport is not None and self._parser is None
        head = self._heads.get((method, path))
        if head is None:
            head = self._heads[(method, path)] = request_head(method, path, self.authority)
        answer: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._parser = ResponseParser(method == "HEAD", max_body)
        self._answer = answer
        self.transport.writelines(encode_request(head, body))
        return answer

    def interrupt(self) -> bool:
        """End the wait for the current answer with Interrupted, unless it has begun to
        arrive; whether it was ended. The connection is closed (a request is outstanding)."""
        parser, answer = self._parser, self._answer
        if parser is None or answer is None or parser.begun or answer.done():
            return False
        self._parser = self._answer = None
        answer.set_exception(Interrupted())
        self.close()
        return True

    def close(self) -> None:
        self.open = False
        if self.transport is not None:
            self.transport.close()

    # -- asyncio.BufferedProtocol --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.open = True

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._read_buffer

    def buffer_updated(self, nbytes: int) -> None:
        data = bytes(self._read_buffer[:nbytes])
        parser = self._parser
        if parser is None:
            self._fail(ProtocolError("the runtime API sent bytes no request asked for"))
            return
        try:
            parser.feed(data)
        except ProtocolError as exc:
            self._fail(exc)
            return
        if parser.state is DONE:
            self._done(parser)

    def eof_received(self) -> bool:
        parser = self._parser
        if parser is not None:
            try:
                parser.feed_eof()
            except ProtocolError as exc:
                self._fail(exc)
            else:
                self._done(parser)
        self.open = False
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        parser = self._parser
        if parser is not None:
            cut = AnswerCut if parser.begun else ConnectionError
            self._fail(cut(f"the runtime API closed the connection ({exc})"))

    def _done(self, parser: ResponseParser) -> None:
        answer = self._answer
        self._parser = self._answer = None
        if not parser.keep_alive:
            self.close()
        if answer is not None and not answer.done():
            answer.set_result((parser.status, parser.headers, parser.body))

    def _fail(self, exc: Exception) -> None:
        answer = self._answer
        self._parser = self._answer = None
        self.close()
        if answer is not None and not answer.done():
            answer.set_exception(exc)


class AsyncRuntimeClient(ClientBase):
    """Talks to the Custom Runtime API over one keep-alive connection, on the running loop."""

    def __init__(self, host: str, port: int, *, retry_for: float = DEFAULT_RETRY_SECONDS) -> None:
        super().__init__(host, port, retry_for=retry_for)
        self._connection: _Connection | None = None
        # ready, or next_invocation waiting for an event that has not begun to arrive: what
        # a shutdown signal ends (`interrupt`)
        self._interruptible = False
        self._interrupted = False  # ... and is to stop before it asks, or asks again
        self._pausing: asyncio.Future[None] | None = None  # the poll's pause before a retry
        bracketed = f"[{host}]" if ":" in host and not host.startswith("[") else host
        self._authority = f"{bracketed}:{port}"

    async def ready(self) -> None:
        """Post ready (again after a 5xx, within the retry budget); Interrupted if `interrupt`
        ends it."""
        backoff = Backoff(self.retry_for)
        self._interruptible = True
        self._interrupted = False
        try:
            while True:
                status, _, body = await self.exchange("POST", READY, READY_BODY)
                if status == 200:
                    return
                await self._pause(self._ready_refused(status, body, backoff))
        finally:
            self._interruptible = self._interrupted = False

    async def next_invocation(self) -> tuple[bytes, Context]:
        """Wait (with no timeout) for the next event, as the blocking client does; raises
        Interrupted if `interrupt` ends the wait before the event begins to arrive."""
        backoff = Backoff(self.retry_for)
        self._interruptible = True
        self._interrupted = False
        try:
            while True:
                try:
                    status, headers, body = await self.exchange("GET", NEXT, None, MAX_EVENT_BYTES)
                except BodyTooLarge as exc:
                    raise EventTooLarge(str(exc), exc.headers.get(NEXT_REQUEST_ID, "")) from None
                received_at = time.monotonic()
                if status == 200:
                    return body, self._context(headers, received_at)
                await self._pause(self._next_refused(status, body, backoff))
        finally:
            self._interruptible = self._interrupted = False

    def interrupt(self) -> None:
        """End ready, or a long poll that has not begun to bring an event (pausing before it
        asks again, or waiting for its connection, it stops before it asks); an event that has
        begun to arrive is read whole, fetched again if its connection is cut."""
        if not self._interruptible:
            return
        self._interrupted = True
        if self._pausing is not None:
            _settle(self._pausing)
        connection = self._connection
        if connection is not None and connection.interrupt():
            self._connection = None

    def post_now(self, path: str, payload: bytes) -> Awaitable[int]:
        """Post `payload` to `path` (RESPONSE or ERROR): written at once if the connection is
        free, else as soon as one is; the awaitable gives the status (after retries)."""
        connection = self._connection
        first = connection.send("POST", path, payload) if connection and connection.idle else None
        return self._posted(first, path, payload)

    async def post_response(self, payload: bytes) -> int:
        return (await self.exchange("POST", RESPONSE, payload))[0]

    async def post_error(self, payload: bytes) -> int:
        return (await self.exchange("POST", ERROR, payload))[0]

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def _posted(self, first: asyncio.Future[Answer] | None, path: str, payload: bytes) -> int:
        if first is not None:
            sent = time.monotonic()
            try:
                status = (await first)[0]
            except (OSError, ProtocolError) as exc:
                self.close()
                await asyncio.sleep(self._failed(exc, "POST", path, time.monotonic() - sent))
            else:
                self._answered()
                return status
        return (await self.exchange("POST", path, payload))[0]

    async def exchange(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        max_body: int | None = None,
    ) -> Answer:
        """One request and its answer, over the kept connection (made again when it dropped);
        as `RuntimeClient.exchange`."""
        loop = asyncio.get_running_loop()
        while True:
            sent = 0.0
            try:
                connection = self._connection
                if connection is None or not connection.open:
                    _, connection = await loop.create_connection(
                        lambda: _Connection(self._authority), self.host, self.port
                    )
                    self._connection = connection
                if self._interrupted:
                    raise Interrupted
                sent = time.monotonic()
                answer = await connection.send(method, path, body, max_body)
                self._answered()
                return answer
            except BodyTooLarge:
                self._connection = None  # closed: the body is still on its way
                raise
            except (OSError, ProtocolError) as exc:  # drops, refused connects, malformed answers
                self.close()
                waited = time.monotonic() - sent if sent else 0.0
                if answer_begun(exc):
                    # It may have been an event: fetched again whole, whatever signal comes.
                    self._interruptible = self._interrupted = False
                await self._pause(self._failed(exc, method, path, waited))

    async def _pause(self, seconds: float) -> None:
        """Wait `seconds` before a retry; while interruptible, the wait is ended by `interrupt`,
        with Interrupted: a poll that has brought nothing yet is not to be retried."""
        if not self._interruptible:
            await asyncio.sleep(seconds)
            return
        if self._interrupted:
            raise Interrupted
        loop = asyncio.get_running_loop()
        pause = self._pausing = loop.create_future()
        timer = loop.call_later(seconds, _settle, pause)
        try:
            await pause
        finally:
            timer.cancel()
            self._pausing = None
        if self._interrupted:
            raise Interrupted


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class AsyncInvocation(Invocation):
    """`Invocation` on the event loop: the first post is written at once (an answer leaves
    from inside the app's last send()); its reply, and any retry, are awaited in `settled()`,
    before the loop asks for the next event."""

    __slots__ = ("_pending",)

    def __init__(self, client: AsyncRuntimeClient, request_id: str) -> None:
        super().__init__(client, request_id)
        self._pending: Coroutine[Any, Any, None] | None = None

    def _post(self, steps: Generator[Step, Any, None]) -> None:
        _, path, body = next(steps)  # the first step is always a post
        self._pending = self._drive(steps, self.client.post_now(path, body))

    async def settled(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            await pending

    async def _drive(self, steps: Generator[Step, Any, None], first: Awaitable[int]) -> None:
        client: AsyncRuntimeClient = self.client
        result: Any = await first
        try:
            while True:
                kind, value, body = steps.send(result)
                if kind == "post":
                    result = await client.post_now(value, body)
                else:
                    await asyncio.sleep(value)
                    result = None
        except StopIteration:
            pass


# Python 3.12 can start a task in its constructor (Task's eager_start), which spares the event
# a turn of the loop before it begins; before 3.12.5, get_coro() on a task that ended in that
# first step crashes the interpreter (CPython issue 122332).
_EAGER_TASKS = sys.version_info >= (3, 12, 5)


def _task(loop: asyncio.AbstractEventLoop, coroutine: Coroutine[Any, Any, None]) -> Awaitable[None]:
    if _EAGER_TASKS and loop.get_task_factory() is None:
        return asyncio.Task(coroutine, loop=loop, eager_start=True)  # type: ignore[call-arg,unused-ignore]
    return loop.create_task(coroutine)


class LoopShutdown:
    """SIGTERM/SIGINT on the event loop: a long poll that has not begun to bring an event is
    ended at once; an event in flight is answered first."""

    def __init__(self, client: AsyncRuntimeClient) -> None:
        self.client = client
        self.requested = False
        self._installed: list[int] = []

    def __enter__(self) -> LoopShutdown:
        loop = asyncio.get_running_loop()
        for signum in SHUTDOWN_SIGNALS:
            try:
                loop.add_signal_handler(signum, self._on_signal, signum)
            except (NotImplementedError, RuntimeError, ValueError):
                break  # not the main thread, or no signals here: they stay with their owner
            self._installed.append(signum)
        return self

    def __exit__(self, *exc_info: object) -> None:
        loop = asyncio.get_running_loop()
        for signum in self._installed:
            loop.remove_signal_handler(signum)
        self._installed.clear()

    def _on_signal(self, signum: int) -> None:
        self.requested = True
        log_info("received %s; shutting down", signal.Signals(signum).name)
        self.client.interrupt()


async def run_async(client: AsyncRuntimeClient, handle: Handle) -> None:
    """Post ready, then answer events with `handle` until a shutdown signal, each awaited in
    turn; between them, while the next event is awaited, the loop runs whatever else it has."""
    loop = asyncio.get_running_loop()
    with LoopShutdown(client) as shutdown:
        try:
            await client.ready()
        except Interrupted:
            return
        while not shutdown.requested:
            try:
                raw, context = await client.next_invocation()
            except Interrupted:
                return
            except EventTooLarge as exc:
                # Not read, so no handler can have it; asking again would bring it again.
                log_error("request %s: %s; the event is refused", exc.request_id, exc)
                refused = AsyncInvocation(client, exc.request_id)
                refused.fail("InvalidEventError", str(exc))
                await refused.settled()
                continue
            invocation = AsyncInvocation(client, context.request_id)
            with AnswerCheck(invocation):
                pending = dispatch(handle, raw, context, invocation)
                if pending is not None:
                    # A task of its own, as a server gives each request: context variables an
                    # app sets for one request are not there for the next.
                    await _task(loop, pending)
            await invocation.settled()


def serve_asgi(adapter: Adapter) -> None:
    """The Custom Runtime loop of an ASGI app, on the process's one event loop."""
    from ..asgi import AsgiRunner

    runner = adapter.runner
    assert isinstance(runner, AsgiRunner)
    client = AsyncRuntimeClient.from_environ()
    try:
        runner.run(_serve(runner, client, adapter))
    finally:
        client.close()
        adapter.close()


async def _serve(runner: AsgiRunner, client: AsyncRuntimeClient, adapter: Adapter) -> None:
    # Ready only once the app has started: the platform sends no event before, and an app
    # that cannot start fails here, with no instance left half up.
    await runner.startup()
    try:
        await run_async(client, adapter.handle)
    finally:
        await runner.shutdown()
