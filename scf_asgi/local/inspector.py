"""The invocation inspector: the last invocations, kept in memory, and the page that shows them.

Served under ``--inspector-path`` (``/_scf`` by default), never forwarded to the app:

    GET  /_scf/                     the page (static/index.html, app.js, style.css)
    GET  /_scf/api/invocations      summaries, newest first
    GET  /_scf/api/invocations/N    one invocation: the exact event, the exact result, the
                                    instance's output, each body decoded for reading (and
                                    cut at 256 KB)
    GET  /_scf/api/invocations/N/event    its event, whole: as received, or with ?pretty
                                    pretty-printed (what the page's editor starts from)
    GET  /_scf/api/stream           server-sent events: a summary whenever one changes
    POST /_scf/api/invocations/N/replay   run invocation N's event again, byte for byte
    POST /_scf/api/invoke           run the raw event in the body (``scf-asgi invoke``; the
                                    page's edited replays, with ?replay)

The inspector runs events and shows what the function got, Authorization headers and cookies
included, so other web pages may neither read it nor drive it: it answers only requests whose
Host names this machine by an IP address, as ``localhost`` or as the ``--host`` the emulator
listens on (a page on a domain of its own that re-resolves to 127.0.0.1, DNS rebinding, gets
403), and runs posted events only when the post's Origin is the inspector's own, which the
browser sets and no other page can claim (its own page's fetches and `scf-asgi invoke` send
it).
"""

from __future__ import annotations

import asyncio
import collections
import ipaddress
import itertools
import json
import os
import time

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..gateway import parse_json
from .translate import body_view

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable
    from typing import Any, Callable

    from starlette.types import ASGIApp, Receive, Scope, Send

    Answer = tuple[int, list[tuple[str, str]], bytes]
    # Runs a raw event from a source ("invoke" or "replay"): the answer, and the number of
    # the invocation's record.
    Invoker = Callable[[bytes, str], Awaitable[tuple[Answer, int]]]

__all__ = ["History", "Record", "inspector_app"]

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
# Bodies beyond this size are kept for replay but not shown whole on the page.
SHOWN_BYTES = 256 * 1024
# The number of the invocation a raw event became, on the answer (static/app.js selects it).
INVOCATION_HEADER = "X-Scf-Invocation"


class Record:
    """One invocation as the inspector shows it; filled in as it goes (by `History`)."""

    def __init__(
        self,
        seq: int,
        *,
        request_id: str,
        source: str,
        method: str | None,
        path: str | None,
        event: bytes,
        web_request: dict[str, Any] | None = None,
    ) -> None:
        self.seq = seq
        self.time = time.time()
        self.request_id = request_id
        self.source = source  # "http", "invoke" or "replay"
        self.method = method
        self.path = path
        self.event = event  # the exact event the instance received (event mode)
        self.web_request = web_request  # what the server got (web mode)
        self.web_response: dict[str, Any] | None = None
        self.state = "queued"  # "running", then "done"
        self.instance: int | None = None
        self.pid: int | None = None
        self.cold: bool | None = None
        self.status: int | None = None
        self.duration_ms: float | None = None
        self.result_kind: str | None = None  # "response" or "error", as posted
        self.result: bytes | None = None  # the exact result the instance posted
        self.error: str | None = None  # what went wrong on the platform's side
        self.output: list[tuple[str, str]] = []
        self.started = time.monotonic()

    @property
    def size(self) -> int:
        return len(self.event) + len(self.result or b"")

    def summary(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "time": self.time,
            "request_id": self.request_id,
            "source": self.source,
            "method": self.method,
            "path": self.path,
            "state": self.state,
            "status": self.status,
            "duration_ms": self.duration_ms,
            "cold": self.cold,
            "instance": self.instance,
            "pid": self.pid,
            "result_kind": self.result_kind,
            "event_size": len(self.event),
            "result_size": None if self.result is None else len(self.result),
            "replayable": self.web_request is None,
        }

    def detail(self) -> dict[str, Any]:
        detail = self.summary()
        detail["error"] = self.error
        detail["output"] = [[stream, text] for stream, text in self.output]
        if self.web_request is not None:
            detail["event"] = _shown(self.web_request)
            detail["event_body"] = self.web_request.get("body")
            detail["result"] = _shown(self.web_response) if self.web_response else None
            detail["result_body"] = (self.web_response or {}).get("body")
            return detail
        event, event_doc = _pretty(self.event)
        detail["event"] = event
        detail["event_body"] = _document_body(event_doc, request=True)
        if self.result is None:
            detail["result"] = detail["result_body"] = None
        else:
            result, result_doc = _pretty(self.result)
            detail["result"] = result
            detail["result_body"] = _document_body(result_doc, request=False)
        return detail


def _pretty(raw: bytes) -> tuple[str, Any]:
    """The document pretty-printed (as sent when it is not JSON), and the parsed document."""
    try:
        document = parse_json(raw)
    except ValueError:
        return _cut(raw.decode("utf-8", "replace")), None
    return _cut(json.dumps(document, indent=2, ensure_ascii=False)), document


def _shown(document: dict[str, Any] | None) -> str | None:
    if document is None:
        return None
    shown = {key: value for key, value in document.items() if key != "body"}
    return json.dumps(shown, indent=2, ensure_ascii=False)


def _cut(text: str) -> str:
    if len(text) <= SHOWN_BYTES:
        return text
    return text[:SHOWN_BYTES] + f"\n... ({len(text) - SHOWN_BYTES} more characters not shown)"


def _content_type(headers: object) -> str:
    if isinstance(headers, dict):
        for name, value in headers.items():
            if str(name).lower() == "content-type":
                return value if isinstance(value, str) else ""
    return ""


def _document_body(document: Any, *, request: bool) -> dict[str, Any] | None:
    """The body of an event or an integration response, decoded for reading."""
    if not isinstance(document, dict) or "body" not in document:
        return None
    view = body_view(
        document.get("body"),
        base64_encoded=document.get("isBase64Encoded"),
        content_type=_content_type(document.get("headers")),
    )
    if view is not None and view.get("kind") == "text":
        view["text"] = _cut(view["text"])
    return view


class History:
    """The last invocations, and the page's subscriptions to their changes."""

    def __init__(self, size: int, *, budget_bytes: int = 256 * 1024 * 1024) -> None:
        self.records: collections.OrderedDict[int, Record] = collections.OrderedDict()
        self.size = size
        self.budget_bytes = budget_bytes
        self._seq = itertools.count(1)
        self._subscribers: set[asyncio.Queue[int | None]] = set()
        self.closed = False

    def new(self, **fields: Any) -> Record:
        record = Record(next(self._seq), **fields)
        self.records[record.seq] = record
        total = sum(item.size for item in self.records.values())
        while len(self.records) > self.size or (
            total > self.budget_bytes and len(self.records) > 1
        ):
            _, dropped = self.records.popitem(last=False)
            total -= dropped.size
        self._changed(record)
        return record

    # As an invocation goes on.
    def add_output(self, record: Record, stream: str, text: str) -> None:
        record.output.append((stream, text))
        self._changed(record)

    def running(self, record: Record, instance: int, pid: int | None, cold: bool) -> None:
        record.state = "running"
        record.instance, record.pid, record.cold = instance, pid, cold
        self._changed(record)

    def finish(
        self,
        record: Record,
        status: int,
        *,
        result: tuple[str, bytes] | None = None,
        error: str | None = None,
    ) -> None:
        record.state = "done"
        record.status = status
        record.duration_ms = round((time.monotonic() - record.started) * 1000, 1)
        if result is not None:
            record.result_kind, record.result = result
        record.error = error
        self._changed(record)

    def _changed(self, record: Record) -> None:
        for queue in self._subscribers:
            queue.put_nowait(record.seq)

    def close(self) -> None:
        """Shutting down: end every stream, and any opened later at once."""
        self.closed = True
        for queue in self._subscribers:
            queue.put_nowait(None)

    async def stream(self) -> AsyncIterator[bytes]:
        """Server-sent events: a summary each time one changes (at most 10 a second each)."""
        queue: asyncio.Queue[int | None] = asyncio.Queue()
        if self.closed:
            queue.put_nowait(None)
        self._subscribers.add(queue)
        try:
            yield b"retry: 1000\n\n"
            while True:
                seqs = {await queue.get()}
                await asyncio.sleep(0.1)  # gather the changes of a burst of output lines
                while not queue.empty():
                    seqs.add(queue.get_nowait())
                if None in seqs:
                    return
                for seq in sorted(s for s in seqs if s is not None):
                    record = self.records.get(seq)
                    if record is not None:
                        data = json.dumps(record.summary())
                        yield f"event: invocation\ndata: {data}\n\n".encode()
        finally:
            self._subscribers.discard(queue)


def inspector_app(history: History, invoke: Invoker, *, root: str, host: str) -> ASGIApp:
    """The inspector's routes, for requests whose path starts with `root` (e.g. "/_scf"), on
    an emulator listening on `host`."""

    async def index(request: Request) -> Response:
        with open(os.path.join(STATIC, "index.html"), "rb") as page:
            html = page.read().replace(b"{{ROOT}}", root.encode("utf-8"))
        return Response(html, media_type="text/html; charset=utf-8")

    async def to_index(request: Request) -> Response:
        return RedirectResponse(root + "/")

    async def invocations(request: Request) -> Response:
        return JSONResponse([record.summary() for record in reversed(history.records.values())])

    def event_record(request: Request) -> Record | None:
        record = history.records.get(request.path_params["seq"])
        return None if record is None or record.web_request is not None else record

    async def invocation(request: Request) -> Response:
        record = history.records.get(request.path_params["seq"])
        if record is None:
            return JSONResponse({"error": "no such invocation (it may have been dropped)"}, 404)
        return JSONResponse(record.detail())

    async def event(request: Request) -> Response:
        record = event_record(request)
        if record is None:
            return JSONResponse({"error": "no such invocation, or not an event"}, 404)
        raw = record.event
        if "pretty" in request.query_params:
            try:
                document = parse_json(raw)
            except ValueError:
                pass  # shown as received
            else:
                raw = json.dumps(document, indent=2, ensure_ascii=False).encode("utf-8")
        return Response(raw, media_type="application/json")

    async def stream(request: Request) -> Response:
        return StreamingResponse(
            history.stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    async def run(event: bytes, source: str) -> Response:
        (status, headers, body), seq = await invoke(event, source)
        headers = [*headers, (INVOCATION_HEADER, str(seq))]
        return Response(body, status, headers=dict(headers))

    async def run_posted(request: Request) -> Response:
        source = "replay" if "replay" in request.query_params else "invoke"
        return await run(await request.body(), source)

    async def replay(request: Request) -> Response:
        record = event_record(request)
        if record is None:
            return JSONResponse({"error": "no such invocation, or not an event to replay"}, 404)
        return await run(record.event, "replay")  # the exact bytes it received

    routes = Starlette(
        routes=[
            Route(root, to_index),
            Route(root + "/", index),
            Route(root + "/api/invocations", invocations),
            Route(root + "/api/invocations/{seq:int}", invocation),
            Route(root + "/api/invocations/{seq:int}/event", event),
            Route(root + "/api/stream", stream),
            Route(root + "/api/invocations/{seq:int}/replay", replay, methods=["POST"]),
            Route(root + "/api/invoke", run_posted, methods=["POST"]),
            Mount(root + "/static", StaticFiles(directory=STATIC)),
        ]
    )
    return _SameOrigin(routes, host)


class _SameOrigin:
    """The inspector for this machine's browser and `scf-asgi invoke` only (see the module's
    docstring): a Host that does not name this machine, or a post from another origin, is
    answered 403 and goes no further."""

    def __init__(self, app: ASGIApp, host: str) -> None:
        self.app = app
        self.host = host.lower()  # the --host the emulator listens on

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {name.lower(): value for name, value in scope.get("headers", [])}
        authority = headers.get(b"host", b"").decode("latin-1")
        refusal = None
        if not self._names_this_machine(authority):
            refusal = (
                f"the inspector answers requests for this machine only (an IP address, "
                f"localhost or {self.host}), not for Host {authority!r}"
            )
        elif scope.get("method") not in ("GET", "HEAD"):
            origin = headers.get(b"origin", b"").decode("latin-1")
            if origin.lower() != f"http://{authority}".lower():
                refusal = (
                    f"the inspector runs events posted from its own page only: the Origin "
                    f"must be http://{authority}, got {origin or 'none'} (scf-asgi invoke "
                    "sends it)"
                )
        if refusal is None:
            await self.app(scope, receive, send)
            return
        await JSONResponse({"error": refusal}, 403)(scope, receive, send)

    def _names_this_machine(self, authority: str) -> bool:
        name = authority
        if name.startswith("["):  # [IPv6]:port
            name, bracket, _ = name[1:].partition("]")
            if not bracket:
                return False
        else:
            head, colon, port = name.rpartition(":")
            if colon and port.isdigit():
                name = head
        name = name.lower()
        if not name:
            return False
        if name == self.host or name == "localhost" or name.endswith(".localhost"):
            return True  # *.localhost is the loopback address, in browsers and RFC 6761
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return False  # a domain name: maybe a page's own, re-resolved to this machine
        return True
