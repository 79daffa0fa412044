"""The platform's side of the Custom Runtime API, as a Starlette app (spec, section 1).

    POST /runtime/init/ready            the instance finished initialising
    GET  /runtime/invocation/next       long poll: the next event (the same one again until it
                                        is answered), with request_id, memory_limit_in_mb and
                                        time_limit_in_ms headers
    POST /runtime/invocation/response   the current invocation's result; the first post wins
    POST /runtime/invocation/error      the current invocation failed; the first post wins

Every instance has a `Channel`, and a listening socket of its own: its queue of invocations
and what it posted. A connection belongs to the channel of the socket (address and port) it
came in on, and to the generation of the instance live when it was accepted, as
`TaggingProtocol` records at accept time, so a request from a killed instance gets 410 and can
never take or answer a newer instance's event. Requests on a connection nobody tagged (a server
run without `TaggingProtocol`) go to the first channel.

The emulator (`scf-asgi local`) serves this app; so does the tests' fake runtime API
(``tests/runtime_api.py``), which adds its failure injections around it.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import time

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from uvicorn.protocols.http.h11_impl import H11Protocol

from ..platform import (
    MAX_PAYLOAD_BYTES,
    NEXT_MEMORY_LIMIT,
    NEXT_REQUEST_ID,
    NEXT_TIME_LIMIT,
    RUNTIME_ERROR,
    RUNTIME_NEXT,
    RUNTIME_READY,
    RUNTIME_RESPONSE,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

__all__ = [
    "DISCARD_LIMIT",
    "Channel",
    "Invocation",
    "RuntimeAPI",
    "TaggingProtocol",
    "runtime_api_app",
]

logger = logging.getLogger("scf_asgi.local")

# A post over the payload limit up to this size is read and dropped before the 413, so the
# instance sees the answer rather than a reset connection; a larger one is refused unread.
DISCARD_LIMIT = 64 * 1024 * 1024
NEXT, READY, RESPONSE, ERROR = RUNTIME_NEXT, RUNTIME_READY, RUNTIME_RESPONSE, RUNTIME_ERROR


class Invocation:
    """One event for an instance, and every answer posted for it (the first one counts)."""

    def __init__(
        self,
        request_id: str,
        event: bytes,
        *,
        time_limit_ms: int,
        memory_limit_mb: int,
    ) -> None:
        self.request_id = request_id
        self.event = event
        self.time_limit_ms = time_limit_ms
        self.memory_limit_mb = memory_limit_mb
        self.answers: list[tuple[str, bytes]] = []  # ("response" or "error", body), in order
        self.answered = asyncio.Event()  # set by the first answer

    @property
    def answer(self) -> tuple[str, bytes] | None:
        return self.answers[0] if self.answers else None

    def next_headers(self) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            NEXT_REQUEST_ID: self.request_id,
            NEXT_MEMORY_LIMIT: str(self.memory_limit_mb),
            NEXT_TIME_LIMIT: str(self.time_limit_ms),
        }

    def record_answer(self, kind: str, body: bytes) -> bool:
        """Record a post for this invocation; True if it is the first (the one that counts)."""
        self.answers.append((kind, body))
        if len(self.answers) > 1:
            return False
        self.answered.set()
        return True


class Channel:
    """The runtime API of one function instance: its queue, the event it holds, its ready."""

    def __init__(self, name: str = "instance") -> None:
        self.name = name
        self.generation = 0  # bumped for every new process of the instance
        self.queue: collections.deque[Invocation] = collections.deque()
        self.work = asyncio.Event()  # set while the queue is not empty
        self.current: Invocation | None = None  # handed out by /next and not answered yet
        self.last: Invocation | None = None  # handed out last by /next, answered or not
        self.ready = asyncio.Event()  # the current generation posted ready
        self.ready_count = 0
        self.ready_at = 0.0  # time.time() of the last ready
        self.closed = False

    def put(self, invocation: Invocation) -> None:
        self.queue.append(invocation)
        self.work.set()

    def withdraw(self, invocation: Invocation) -> None:
        """Take back an invocation whose caller gave up on it (taken or not)."""
        try:
            self.queue.remove(invocation)
        except ValueError:
            pass
        if not self.queue:
            self.work.clear()
        if self.current is invocation:
            self.current = None

    def renew(self) -> int:
        """A new process is about to start: forget the old one's state; the new generation."""
        self.generation += 1
        self.current = self.last = None
        self.ready = asyncio.Event()
        return self.generation

    def close(self) -> None:
        """Shutting down: wake every long poll so it can end."""
        self.closed = True
        self.work.set()

    def take(self) -> Invocation | None:
        if self.current is None and self.queue:
            self.current = self.last = self.queue.popleft()
            if not self.queue:
                self.work.clear()
        return self.current


class RuntimeAPI:
    """The channels of all instances, and which connection belongs to which."""

    def __init__(
        self, channels: Sequence[Channel], *, result_limit: int | None = MAX_PAYLOAD_BYTES
    ) -> None:
        self.channels = list(channels)
        # A result over this many bytes is answered 413 (None: any size is taken).
        self.result_limit = result_limit
        # The address (host, port) of each channel's listening socket.
        self.by_address: dict[tuple[str, int], Channel] = {}
        # Client (host, port) of each open connection -> (channel, generation) when accepted.
        self.tags: dict[tuple[str, int], tuple[Channel, int]] = {}

    def tag(self, client: tuple[str, int], server: tuple[str, int]) -> None:
        channel = self.by_address.get(server)
        if channel is not None:
            self.tags[client] = (channel, channel.generation)

    def untag(self, client: tuple[str, int]) -> None:
        self.tags.pop(client, None)

    def channel_of(self, request: Request) -> tuple[Channel, int]:
        client = request.client
        tag = self.tags.get((client.host, client.port)) if client is not None else None
        if tag is None:
            channel = self.channels[0]
            return channel, channel.generation
        return tag


class TaggingProtocol(H11Protocol):
    """uvicorn's h11 protocol, telling the `RuntimeAPI` of each connection when it is accepted
    (set `api` on a subclass: see `tagging_protocol`)."""

    api: RuntimeAPI | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        api = self.api
        if api is not None and self.client is not None and self.server is not None:
            host, port = self.server
            api.tag((self.client[0], self.client[1]), (host, port if port is not None else 0))

    def connection_lost(self, exc: Exception | None) -> None:
        api = self.api
        if api is not None and self.client is not None:
            api.untag((self.client[0], self.client[1]))
        super().connection_lost(exc)


def tagging_protocol(api: RuntimeAPI) -> type[TaggingProtocol]:
    """The protocol class to give uvicorn (``Config(http=...)``) for this API's sockets."""
    return type("TaggingProtocol", (TaggingProtocol,), {"api": api})


def _error(status: int, message: str, *, close: bool = False, **headers: str) -> Response:
    if close:
        headers["Connection"] = "close"
    return JSONResponse({"error": message}, status, headers=headers or None)


def _replaced() -> Response:
    return _error(410, "this function instance has been replaced", close=True)


async def _ready(request: Request) -> Response:
    api: RuntimeAPI = request.app.state.api
    channel, generation = api.channel_of(request)
    if generation != channel.generation:
        return _replaced()
    await request.body()
    channel.ready_count += 1
    channel.ready_at = time.time()
    channel.ready.set()
    return Response(b"")


async def _next(request: Request) -> Response:
    api: RuntimeAPI = request.app.state.api
    channel, generation = api.channel_of(request)
    disconnected = asyncio.ensure_future(_disconnect(request))
    try:
        while True:
            if generation != channel.generation:
                return _replaced()
            if channel.closed:
                return _error(503, "the platform is shutting down", close=True)
            invocation = channel.take()
            if invocation is not None:
                return Response(invocation.event, 200, headers=invocation.next_headers())
            work = asyncio.ensure_future(channel.work.wait())
            try:
                await asyncio.wait({work, disconnected}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                work.cancel()
            if disconnected.done():
                # The instance went away (killed, or its client timed out): an event handed to
                # this request now would be lost.
                return Response(b"", 499)
    finally:
        disconnected.cancel()


async def _disconnect(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _answer(request: Request) -> Response:
    api: RuntimeAPI = request.app.state.api
    channel, generation = api.channel_of(request)
    if generation != channel.generation:
        return _replaced()
    kind = request.url.path.rpartition("/")[2]
    limit = api.result_limit
    if limit is None:
        body = await request.body()
    else:
        size = _content_length(request)
        if size is not None and size > DISCARD_LIMIT:
            return _too_large(kind, size, limit, close=True)
        parts: list[bytes] = []
        received = 0
        async for chunk in request.stream():
            received += len(chunk)
            if received <= limit:
                parts.append(chunk)
            elif received > DISCARD_LIMIT:
                return _too_large(kind, received, limit, close=True)
            else:
                parts.clear()
        if received > limit:
            return _too_large(kind, received, limit)
        body = b"".join(parts)
    invocation = channel.last
    if invocation is None:
        # Posts carry no request id: they answer the event the instance took last.
        return _error(400, "no invocation is in progress: GET /runtime/invocation/next first")
    if invocation.record_answer(kind, body):
        if channel.current is invocation:
            channel.current = None
    else:
        logger.warning(
            "request %s: a later %s post was ignored (the first post wins)",
            invocation.request_id,
            kind,
        )
    return Response(b"")


def _content_length(request: Request) -> int | None:
    text = request.headers.get("content-length", "").strip()
    return int(text) if text.isascii() and text.isdigit() else None


def _too_large(kind: str, size: int, limit: int, *, close: bool = False) -> Response:
    message = (
        f"the {kind} is {size} bytes; a synchronous invocation's result is limited to "
        f"{limit} bytes (6 MB)"
    )
    logger.error("POST /runtime/invocation/%s rejected: %s", kind, message)
    return _error(413, message, close=close)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return _error(404, f"no such runtime API endpoint: {request.url.path[:200]}")
    if exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        return _error(405, f"{request.url.path} accepts {allowed} only", Allow=allowed)
    return _error(exc.status_code, str(exc.detail))


def runtime_api_app(api: RuntimeAPI) -> Starlette:
    """The Starlette app serving `api`."""
    app = Starlette(
        routes=[
            Route(READY, _ready, methods=["POST"]),
            Route(NEXT, _next, methods=["GET"]),
            Route(RESPONSE, _answer, methods=["POST"]),
            Route(ERROR, _answer, methods=["POST"]),
        ],
        exception_handlers={HTTPException: _http_error},
    )
    app.state.api = api
    return app


def dumps(document: Any) -> bytes:
    """Compact JSON, not ASCII-escaped (the platform's limits count bytes)."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
