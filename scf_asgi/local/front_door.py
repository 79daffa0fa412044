"""The front door: the API gateway (or function URL, or a web function's proxy) as an ASGI app.

Event mode: each HTTP request's body is streamed in and capped at the platform's 6 MB (a
larger one is read and dropped, then answered 413, so the client sees the answer rather than a
reset), the request becomes an event (`translate`), a free instance handles it (`instance`),
and its answer is checked and turned back into HTTP, or into the error the gateway gives:
502 for a timeout, an invocation error, a dead instance or a malformed answer.

Web-function mode (``--web``): the request is passed on over HTTP to the instance's own server
with the platform's limits (headers and path 4 KB, bodies 6 MB) and the invocation's request id
in ``X-Scf-Request-Id`` (one the client sent is dropped); errors carry ``X-Scf-Request-Id`` and
``X-Scf-Error-Type``, as there.

Every invocation is recorded in the inspector's `History`. Once the emulator is shutting down
(the `Pool` closed), a request that has no instance yet is answered 503.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid

from ..errors import IntegrationFormatError
from ..logs import excerpt
from ..platform import (
    MAX_PAYLOAD_BYTES,
    MAX_WEB_HEADER_BYTES,
    WEB_ERROR_TYPE_HEADER,
    WEB_REQUEST_ID_HEADER,
)
from ..triggers import detect_trigger
from .config import LOOPBACK, RESULT_HEADER
from .instance import InstanceError, PoolClosed
from .runtime_api import DISCARD_LIMIT, Invocation, dumps
from .translate import (
    HOP_BY_HOP,
    MALFORMED_BODY,
    body_view,
    event_from_http,
    function_url_event_from_http,
    http_from_integration,
    response_headers,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Awaitable
    from typing import Any, Callable

    import httpx

    from .config import LocalConfig
    from .inspector import History, Record
    from .instance import Instance, Pool

    Scope = dict[str, Any]
    Receive = Callable[[], Awaitable[dict[str, Any]]]
    Send = Callable[[dict[str, Any]], Awaitable[None]]

__all__ = ["FrontDoor", "Reloader"]

logger = logging.getLogger("scf_asgi.local")
_JSON = "application/json; charset=utf-8"
Answer = tuple[int, list[tuple[str, str]], bytes]
# Statuses whose response has no body, whatever the function sent (RFC 9110, 15.3.5, 15.4.5).
_NO_BODY = (204, 304)


class _ClientGone(Exception):
    """The client disconnected before its request was read."""


class _TooLarge(Exception):
    def __init__(self, size: int, *, close: bool) -> None:
        super().__init__(size)
        self.size = size
        self.close = close


class _Failure(Exception):
    """Why a request got no answer from the function: the status the platform answers with,
    the message, and (web mode) the X-Scf-Error-Type."""

    def __init__(self, status: int, message: str, kind: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind


_SHUTTING_DOWN = "the emulator is shutting down"


class Reloader:
    """Counts code changes (``--reload``); `changed` is set and replaced on each, so a waiter
    takes it before it tries the code, and a change made meanwhile wakes it at once."""

    def __init__(self) -> None:
        self.changes = 0
        self.changed = asyncio.Event()

    def change(self) -> None:
        self.changes += 1
        event, self.changed = self.changed, asyncio.Event()
        event.set()

    def close(self) -> None:
        """Shutting down: wake whoever waits for a change (they find the pool closed)."""
        self.changed.set()


def error_answer(status: int, message: str, headers: list[tuple[str, str]] | None = None) -> Answer:
    body = json.dumps({"errno": status, "error": message}).encode("utf-8")
    return status, [("Content-Type", _JSON), *(headers or [])], body


def _header_text(value: bytes) -> str:
    text: str = value.decode("latin-1")
    if not text.isascii():
        try:  # the gateway reads header bytes as UTF-8 (see the core's asgi._header_bytes)
            return value.decode("utf-8")
        except UnicodeDecodeError:
            pass
    return text


def _target(scope: Scope) -> str:
    raw: bytes = scope.get("raw_path") or scope["path"].encode("utf-8")
    target = raw.decode("latin-1")
    if not target.isascii():
        try:
            target = raw.decode("utf-8")
        except UnicodeDecodeError:
            pass
    query = scope.get("query_string", b"")
    return target + ("?" + query.decode("latin-1") if query else "")


async def read_body(receive: Receive, headers: list[tuple[str, str]], limit: int) -> bytes:
    """The request body, streamed in; `_TooLarge` once it is over `limit` (after reading and
    dropping the rest, unless the client waits for 100-continue or it is far over)."""
    length_text = ",".join(value for name, value in headers if name.lower() == "content-length")
    expects = any(
        name.lower() == "expect" and value.strip().lower() == "100-continue"
        for name, value in headers
    )
    length = int(length_text) if length_text.isascii() and length_text.isdigit() else None
    if length is not None and length > limit and (expects or length > DISCARD_LIMIT):
        # Not read at all: uvicorn sends "100 Continue" only once the body is asked for.
        raise _TooLarge(length, close=True)
    parts: list[bytes] = []
    received = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        chunk = message.get("body", b"")
        more = message.get("more_body", False)
        received += len(chunk)
        if received > DISCARD_LIMIT:
            raise _TooLarge(received, close=True)
        if received <= limit:
            parts.append(chunk)
        else:
            parts.clear()
    if received > limit:
        raise _TooLarge(received, close=False)
    return b"".join(parts)


async def send_answer(send: Send, answer: Answer, *, head: bool, length: int | None = None) -> None:
    """Send `answer`; a HEAD's or a 204's or 304's body is dropped, as the gateway drops it
    (the function may well have sent one: ``JSONResponse({}, 204)``)."""
    status, headers, body = answer
    # uvicorn adds the front door's own Date, as a gateway does: the function's would be a second.
    raw = [
        (name.lower().encode("latin-1"), value.encode("utf-8"))
        for name, value in headers
        if name.lower() != "date"
    ]
    if status not in _NO_BODY and not any(name == b"content-length" for name, _ in raw):
        shown = length if head and length is not None else len(body)
        raw.append((b"content-length", str(shown).encode("ascii")))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    empty = head or status in _NO_BODY
    await send({"type": "http.response.body", "body": b"" if empty else body})


def describe_event(event: bytes) -> tuple[str | None, str | None]:
    """(method, path) of an HTTP event, or (None, what the event is) of another one."""
    try:
        document = json.loads(event)
    except ValueError:
        return None, "not JSON"
    if not isinstance(document, dict):
        return None, f"a JSON {type(document).__name__}"
    trigger = detect_trigger(document)
    if trigger == "apigateway":
        return document["httpMethod"], str(document.get("path") or "/")
    return None, f"{trigger} event" if trigger else "event of an unknown trigger"


class FrontDoor:
    """The ASGI app on ``--host``/``--port`` (for the paths that are not the inspector's)."""

    def __init__(
        self,
        config: LocalConfig,
        pool: Pool,
        history: History,
        *,
        reloader: Reloader | None,
        http_client: httpx.AsyncClient | None = None,
        address: str = "",
    ) -> None:
        self.config = config
        self.pool = pool
        self.history = history
        self.reloader = reloader
        self.http_client = http_client
        self.address = address  # host:port, for requests without a Host header

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
            return
        started = time.monotonic()
        request_id = str(uuid.uuid4())
        method = scope["method"]
        headers = [(_header_text(name), _header_text(value)) for name, value in scope["headers"]]
        target = _target(scope)
        client = scope.get("client")
        source_ip = str(client[0]) if client else LOOPBACK
        head = method == "HEAD"
        length: int | None = None
        close = False
        try:
            body = await read_body(receive, headers, MAX_PAYLOAD_BYTES)
        except _ClientGone:
            return
        except _TooLarge as exc:
            answer = _too_large(exc.size, "body", web=self.config.web, request_id=request_id)
            close = exc.close
        else:
            if self.config.web:
                answer, length = await self._proxy(
                    method, target, headers, body, source_ip, request_id
                )
            else:
                answer, length = await self._gateway(
                    method, target, headers, body, source_ip, request_id, head=head
                )
        close = close or self.pool.closed
        if close:
            answer = (answer[0], [*answer[1], ("Connection", "close")], answer[2])
        await send_answer(send, answer, head=head, length=length)
        if self.config.access_log:
            logger.info(
                '%s "%s %s" %d %dB %.1fms (request %s)',
                source_ip,
                method,
                target[:300],
                answer[0],
                len(answer[2]),
                (time.monotonic() - started) * 1000,
                request_id,
            )

    # -- event mode ---------------------------------------------------------------------------

    def _event(
        self,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes,
        source_ip: str,
    ) -> dict[str, Any]:
        config = self.config
        host = config.host_header
        if host is None and not any(name.lower() == "host" for name, _ in headers):
            host = self.address
        forwarded_proto = None if config.host_header else "http"
        if config.trigger == "function-url":
            return function_url_event_from_http(
                method,
                target,
                headers,
                body,
                source_ip=source_ip,
                host=host,
                forwarded_proto=forwarded_proto,
            )
        return event_from_http(
            method,
            target,
            headers,
            body,
            source_ip=source_ip,
            request_id=uuid.uuid4().hex,
            stage=config.stage,
            host=host,
            forwarded_proto=forwarded_proto,
        )

    async def _gateway(
        self,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes,
        source_ip: str,
        request_id: str,
        *,
        head: bool,
    ) -> tuple[Answer, int | None]:
        event = self._event(method, target, headers, body, source_ip)
        payload = dumps(event)
        if len(payload) > MAX_PAYLOAD_BYTES:
            what = "event (the body, base64-encoded if binary)"
            return _too_large(len(payload), what, web=False, request_id=request_id), None
        history = self.history
        record = history.new(
            request_id=request_id,
            source="http",
            method=event["httpMethod"],
            path=event["path"],
            event=payload,
        )
        try:
            outcome = await self._invoke(payload, record)
        except _Failure as failure:
            history.finish(record, failure.status, error=failure.message)
            return error_answer(failure.status, failure.message), None
        kind, result = outcome
        if kind == "error":
            logger.error("request %s: invocation error: %s", request_id, excerpt(result))
            content_type = "text/plain; charset=utf-8"
            try:
                json.loads(result)
                content_type = _JSON
            except ValueError:
                pass
            history.finish(record, 502, result=outcome, error="the invocation failed")
            return (502, [("Content-Type", content_type)], result), None
        try:
            status, result_headers, content = http_from_integration(result)
        except IntegrationFormatError as exc:
            logger.error(
                "request %s: the gateway rejects the function's result: %s; it was: %s",
                request_id,
                exc,
                excerpt(result),
            )
            error = f"the gateway rejects the result: {exc}"
            history.finish(record, 502, result=outcome, error=error)
            return (502, [("Content-Type", _JSON)], MALFORMED_BODY), None
        history.finish(record, status, result=outcome)
        kept, length = response_headers(result_headers, head=head)
        return (status, kept, content), length

    async def invoke_raw(self, event: bytes, source: str) -> tuple[Answer, int]:
        """Run a raw event (``scf-asgi invoke``, a replay): 200 and the result as posted, or
        an error status and what went wrong; and the number of its record."""
        request_id = str(uuid.uuid4())
        method, path = describe_event(event)
        history = self.history
        record = history.new(
            request_id=request_id, source=source, method=method, path=path, event=event
        )
        ids = [(WEB_REQUEST_ID_HEADER, request_id)]
        if self.config.web:
            message = "a web function takes HTTP requests only, not events (drop --web)"
            history.finish(record, 400, error=message)
            return error_answer(400, message, ids), record.seq
        if len(event) > MAX_PAYLOAD_BYTES:
            message = f"the event is {len(event)} bytes, over the {MAX_PAYLOAD_BYTES}-byte limit"
            history.finish(record, 413, error=message)
            return error_answer(413, message, ids), record.seq
        try:
            outcome = await self._invoke(event, record)
        except _Failure as failure:
            history.finish(record, failure.status, error=failure.message)
            return error_answer(failure.status, failure.message, ids), record.seq
        kind, result = outcome
        status = 200 if kind == "response" else 502
        history.finish(record, status, result=outcome)
        headers = [("Content-Type", "application/json"), (RESULT_HEADER, kind), *ids]
        return (status, headers, result), record.seq

    async def _ready_instance(self, record: Record) -> Instance:
        """A free instance, ready; `_Failure` says why none could be made ready."""
        try:
            instance = await self.pool.acquire()
        except PoolClosed:
            raise _Failure(503, _SHUTTING_DOWN) from None
        while True:
            if self.pool.closed:  # since the instance was handed over, or during the wait
                self.pool.release(instance)
                raise _Failure(503, _SHUTTING_DOWN)
            # Taken before the attempt: a fix saved while it runs must wake the wait below.
            changed = None if self.reloader is None else self.reloader.changed
            try:
                await instance.ensure_ready()
                return instance
            except InstanceError as exc:
                instance.hand_over_output(self._output_of(record))
                if self.pool.closed:  # its cold start was cut short
                    self.pool.release(instance)
                    raise _Failure(503, _SHUTTING_DOWN) from None
                if changed is None:
                    self.pool.release(instance)
                    logger.error("%s; a new instance will be started on the next request", exc)
                    raise _Failure(502, str(exc), "InitFailed") from None
                logger.error(
                    "%s; waiting for a change to the code to start it again (--reload)", exc
                )
                await changed.wait()

    def _output_of(self, record: Record) -> Callable[[str, str], None]:
        history = self.history

        def add_output(stream: str, text: str) -> None:
            history.add_output(record, stream, text)

        return add_output

    def _begin(self, instance: Instance, record: Record, method: str) -> None:
        cold = instance.begin_invocation(self._output_of(record), record.request_id, method)
        self.history.running(record, instance.number, instance.pid, cold)

    async def _invoke(self, event: bytes, record: Record) -> tuple[str, bytes]:
        """The instance's answer ("response" or "error", body); `_Failure` if none came."""
        instance = await self._ready_instance(record)
        try:
            channel = instance.channel
            assert channel is not None and instance.exited is not None
            invocation = Invocation(
                record.request_id,
                event,
                time_limit_ms=self.config.timeout_ms,
                memory_limit_mb=self.config.memory_mb,
            )
            self._begin(instance, record, record.method or "")
            channel.put(invocation)
            answered = asyncio.ensure_future(invocation.answered.wait())
            waits: set[asyncio.Future[Any]] = {answered, instance.exited}
            try:
                await asyncio.wait(
                    waits, timeout=self.config.timeout_ms / 1000, return_when="FIRST_COMPLETED"
                )
            finally:
                answered.cancel()
                channel.withdraw(invocation)
            answer = invocation.answer
            if answer is not None:
                return answer
            if instance.exited.done():
                message = (
                    f"the function instance exited with code {instance.exited.result()} while "
                    "handling the request; a new one will be started on the next request"
                )
                logger.error("request %s: %s", record.request_id, message)
                raise _Failure(502, message)
            logger.error(
                "request %s: function timed out after %d ms; killing the instance",
                record.request_id,
                self.config.timeout_ms,
            )
            await instance.kill()
            raise _Failure(
                502,
                f"function timed out: no answer within {self.config.timeout_ms} ms (the "
                "function timeout, --timeout-ms); the instance was killed and a new one will be "
                "started on the next request",
            )
        finally:
            self.pool.release(instance)

    # -- web-function mode --------------------------------------------------------------------

    async def _proxy(
        self,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes,
        source_ip: str,
        request_id: str,
    ) -> tuple[Answer, int | None]:
        """The web function's answer, and for HEAD the length its server gave (a GET's)."""
        answer = await self._web_answer(method, target, headers, body, source_ip, request_id)
        length = None
        if method == "HEAD":
            for name, value in answer[1]:
                if name.lower() == "content-length" and value.isascii() and value.isdigit():
                    length = int(value)
        status, answer_headers, content = answer
        kept = [(n, v) for n, v in answer_headers if n.lower() not in HOP_BY_HOP]
        return (status, kept, content), length

    async def _web_answer(
        self,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes,
        source_ip: str,
        request_id: str,
    ) -> Answer:
        header_bytes = sum(len(name) + len(value) + 4 for name, value in headers)
        path_part = target.partition("?")[0]
        sent = {
            "method": method,
            "target": target,
            "headers": headers,
            "body": _raw_view(body, headers),
        }
        history = self.history
        record = history.new(
            request_id=request_id,
            source="http",
            method=method,
            path=target,
            event=b"",
            web_request=sent,
        )
        try:
            if len(path_part.encode("utf-8")) > MAX_WEB_HEADER_BYTES:
                message = f"the path is over the platform's {MAX_WEB_HEADER_BYTES}-byte limit"
                raise _Failure(414, message, "PathTooLong")
            if header_bytes > MAX_WEB_HEADER_BYTES:
                raise _Failure(
                    431,
                    f"the request headers are {header_bytes} bytes, over the platform's "
                    f"{MAX_WEB_HEADER_BYTES}-byte limit",
                    "HeaderTooLarge",
                )
            instance = await self._ready_instance(record)
            try:
                self._begin(instance, record, method)
                answer = await self._forward(
                    instance, method, target, headers, body, source_ip, request_id
                )
            finally:
                self.pool.release(instance)
        except _Failure as failure:
            history.finish(record, failure.status, error=failure.message)
            ids = [(WEB_REQUEST_ID_HEADER, request_id)]
            if failure.kind is not None:
                ids.append((WEB_ERROR_TYPE_HEADER, failure.kind))
            return error_answer(failure.status, failure.message, ids)
        status, answer_headers, content = answer
        record.web_response = {
            "status": status,
            "headers": answer_headers,
            "body": _raw_view(content, answer_headers),
        }
        history.finish(record, status)
        return status, answer_headers, content

    async def _forward(
        self,
        instance: Instance,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes,
        source_ip: str,
        request_id: str,
    ) -> Answer:
        """The function's server's answer; `_Failure` if it gave none within the limits."""
        import httpx

        client = self.http_client
        assert client is not None and instance.exited is not None
        # The platform's own headers are the platform's to set: the client's are dropped.
        own = {"x-forwarded-for", WEB_REQUEST_ID_HEADER}
        forwarded = [value for name, value in headers if name.lower() == "x-forwarded-for"]
        sent = [
            (name, value)
            for name, value in headers
            if name.lower() not in HOP_BY_HOP and name.lower() not in own
        ]
        sent.append(("X-Forwarded-For", ", ".join([*forwarded, source_ip])))
        sent.append((WEB_REQUEST_ID_HEADER, request_id))
        if not any(name.lower() == "x-forwarded-proto" for name, _ in sent):
            sent.append(("X-Forwarded-Proto", "http"))
        if self.config.host_header:
            sent = [(n, v) for n, v in sent if n.lower() != "host"]
            sent.append(("Host", self.config.host_header))
        url = f"http://{LOOPBACK}:{instance.port}{target}"

        async def exchange() -> Answer:
            request = client.build_request(
                method, url, headers=[(n.encode(), v.encode()) for n, v in sent], content=body
            )
            response = await client.send(request, stream=True)
            try:
                answer_headers = [
                    (name.decode("latin-1"), value.decode("latin-1"))
                    for name, value in response.headers.raw
                ]
                size = sum(len(name) + len(value) + 4 for name, value in answer_headers)
                if size > MAX_WEB_HEADER_BYTES:
                    raise _Failure(
                        502,
                        f"the response headers are {size} bytes, over the platform's "
                        f"{MAX_WEB_HEADER_BYTES}-byte limit",
                        "ResponseHeaderTooLarge",
                    )
                parts: list[bytes] = []
                received = 0
                async for chunk in response.aiter_raw():
                    received += len(chunk)
                    if received > MAX_PAYLOAD_BYTES:
                        raise _Failure(
                            502,
                            f"the response body is over the platform's {MAX_PAYLOAD_BYTES}-byte "
                            "limit",
                            "ResponseTooLarge",
                        )
                    parts.append(chunk)
            finally:
                await response.aclose()
            # Headers as sent (per-hop ones dropped later); the body as sent, still encoded.
            return response.status_code, answer_headers, b"".join(parts)

        task = asyncio.ensure_future(exchange())
        waits: set[asyncio.Future[Any]] = {task, instance.exited}
        try:
            await asyncio.wait(
                waits,
                timeout=self.config.timeout_ms / 1000,
                return_when="FIRST_COMPLETED",
            )
        finally:
            if not task.done():
                task.cancel()
        if task.done() and not task.cancelled():
            try:
                return task.result()
            except httpx.HTTPError as exc:
                if not instance.exited.done():
                    message = f"the function's server failed: {exc!r}"
                    raise _Failure(502, message, "ProxyError") from None
        if instance.exited.done():
            raise _Failure(
                502,
                f"the function instance exited with code {instance.exited.result()} while "
                "handling the request; a new one will be started on the next request",
                "InstanceExited",
            )
        await instance.kill()
        raise _Failure(
            502,
            f"function timed out: no answer within {self.config.timeout_ms} ms (--timeout-ms); "
            "the instance was killed and a new one will be started on the next request",
            "FunctionTimeout",
        )


def _raw_view(body: bytes, headers: list[tuple[str, str]]) -> dict[str, Any] | None:
    import base64

    content_type = next((v for n, v in headers if n.lower() == "content-type"), "")
    return body_view(
        base64.b64encode(body).decode("ascii") if body else None,
        base64_encoded=True,
        content_type=content_type,
    )


def _too_large(size: int, what: str, *, web: bool, request_id: str) -> Answer:
    message = f"request entity too large: the {what} is {size} bytes; " + (
        f"a web function's request body is limited to {MAX_PAYLOAD_BYTES} bytes (6 MB)"
        if web
        else f"a synchronous SCF invocation carries at most {MAX_PAYLOAD_BYTES} bytes (6 MB)"
    )
    if web:
        headers = [(WEB_REQUEST_ID_HEADER, request_id), (WEB_ERROR_TYPE_HEADER, "BodyTooLarge")]
        return error_answer(413, message, headers)
    return error_answer(413, message)
