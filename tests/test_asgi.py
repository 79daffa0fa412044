"""The ASGI runner: scope, the HTTP-cycle state machine, lifespan, app detection."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from scf_asgi.adapter import detect_interface
from scf_asgi.asgi import HTTPCycle, Lifespan, as_asgi3, build_scope
from scf_asgi.errors import AppError, ConfigurationError
from scf_asgi.gateway import Response, request_from_event
from scf_asgi.wsgi import build_environ
from tests.events import DEFAULT_HOST, gateway_event

Message = dict[str, Any]


def test_scope_is_asgi_http_2_3_with_full_path() -> None:
    event = gateway_event(
        method="PUT",
        path="/api/x y",
        query={"a": ["1", "2"]},
        headers={"x-name": "é"},
        body="hi",
        host=DEFAULT_HOST,
    )
    request = request_from_event(event, base_path="/api")
    state = {"db": "pool"}
    scope = build_scope(request, state, {"scf.event": "EVENT"})
    assert scope == {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "PUT",
        "scheme": "https",
        "path": "/release/api/x y",
        "raw_path": b"/release/api/x%20y",
        "root_path": "/release/api",
        "query_string": b"a=1&a=2",
        "headers": [
            (b"accept", b"*/*"),
            (b"user-agent", b"curl/8.5.0"),
            (b"host", DEFAULT_HOST.encode()),
            (b"x-name", "é".encode()),  # non-ASCII: the UTF-8 bytes, as WSGI gets them
            (b"content-length", b"2"),
        ],
        "client": ("203.0.113.7", 0),
        "server": (DEFAULT_HOST, 443),
        "state": {"db": "pool"},
        "scf.event": "EVENT",
    }
    assert scope["state"] is not state  # a shallow copy per request, as the spec asks


def test_scope_relative_to_root_path_for_frameworks_that_route_so() -> None:
    request = request_from_event(gateway_event(path="/api/x y"), base_path="/api")
    scope = build_scope(request, {}, {}, full_path=False)
    assert (scope["path"], scope["raw_path"], scope["root_path"]) == ("/x y", b"/x%20y", "/api")


@pytest.mark.parametrize("value", ["José", "日本", "José 北京"])
def test_non_ascii_header_values_reach_asgi_and_wsgi_as_the_same_bytes(value: str) -> None:
    request = request_from_event(gateway_event(headers={"x-name": value}))
    asgi_value = dict(build_scope(request, {}, {})["headers"])[b"x-name"]
    wsgi_value = build_environ(request, {})["HTTP_X_NAME"].encode("latin-1")
    assert asgi_value == wsgi_value == value.encode("utf-8")


def run_cycle(messages: list[Message], body: bytes = b"req") -> tuple[list[Response], list[Any]]:
    """Play `messages` through a cycle's send; return what was delivered and what send raised."""
    delivered: list[Response] = []
    errors: list[Any] = []
    cycle = HTTPCycle(body, delivered.append)

    async def play() -> None:
        assert await cycle.receive() == {"type": "http.request", "body": body, "more_body": False}
        for message in messages:
            try:
                await cycle.send(message)
            except AppError as exc:
                errors.append(str(exc))

    asyncio.run(play())
    return delivered, errors


def test_cycle_collects_chunks_and_delivers_once_at_the_end() -> None:
    delivered, errors = run_cycle(
        [
            {"type": "http.response.start", "status": 200, "headers": [(b"x-a", b"1")]},
            {"type": "http.response.body", "body": b"one,", "more_body": True},
            {"type": "http.response.body", "body": b"", "more_body": True},
            {"type": "http.response.body", "body": b"two"},
        ]
    )
    assert errors == []
    assert [(r.status, r.headers, r.body) for r in delivered] == [(200, [("x-a", "1")], b"one,two")]


def test_trailers_are_dropped_wherever_they_come() -> None:
    delivered, errors = run_cycle(
        [
            {"type": "http.response.start", "status": 200, "headers": [], "trailers": True},
            {"type": "http.response.body", "body": b"x"},
            {"type": "http.response.trailers", "headers": [(b"x-checksum", b"1")]},
        ]
    )
    assert (errors, [r.body for r in delivered]) == ([], [b"x"])


@pytest.mark.parametrize(
    ("messages", "error"),
    [
        ([{"type": "http.response.body", "body": b"x"}], "expected 'http.response.start' first"),
        (
            [
                {"type": "http.response.start", "status": 200},
                {"type": "http.response.start", "status": 200},
            ],
            "expected 'http.response.body', got 'http.response.start'",
        ),
        (
            [
                {"type": "http.response.start", "status": 200},
                {"type": "http.response.body", "body": b""},
                {"type": "http.response.body", "body": b"late"},
            ],
            "already complete",
        ),
    ],
)
def test_bad_message_order_is_an_app_error(messages: list[Message], error: str) -> None:
    _, errors = run_cycle(messages)
    assert len(errors) == 1
    assert error in errors[0]


def test_receive_after_request_waits_for_completion_then_disconnects() -> None:
    delivered: list[Response] = []
    cycle = HTTPCycle(b"", delivered.append)
    seen: list[Message] = []

    async def listener() -> None:
        await cycle.receive()
        seen.append(await cycle.receive())

    async def main() -> None:
        task = asyncio.get_running_loop().create_task(listener())
        await asyncio.sleep(0.01)
        assert seen == []  # still waiting: the response is not complete
        await cycle.send({"type": "http.response.start", "status": 204, "headers": []})
        await cycle.send({"type": "http.response.body", "body": b""})
        await task

    asyncio.run(main())
    assert seen == [{"type": "http.disconnect"}]
    assert len(delivered) == 1


# -- app detection -----------------------------------------------------------------------------


async def asgi3_function(scope: Any, receive: Any, send: Any) -> None:
    pass


def wsgi_function(environ: Any, start_response: Any) -> list[bytes]:
    return []


class ASGI3Object:
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        pass


class WSGIObject:
    def __call__(self, environ: Any, start_response: Any) -> list[bytes]:
        return []


class ASGI2App:
    def __init__(self, scope: Any) -> None:
        self.scope = scope

    async def __call__(self, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"asgi2"})


class Methods:
    def wsgi(self, environ: Any, start_response: Any) -> list[bytes]:
        return []

    async def asgi(self, scope: Any, receive: Any, send: Any) -> None:
        pass


@pytest.mark.parametrize(
    ("app", "expected"),
    [
        (asgi3_function, "asgi"),
        (ASGI3Object(), "asgi"),
        (ASGI2App, "asgi"),
        (wsgi_function, "wsgi"),
        (WSGIObject(), "wsgi"),
        (Methods().wsgi, "wsgi"),  # e.g. serve(flask_app.wsgi_app)
        (Methods().asgi, "asgi"),
    ],
)
def test_detect_interface(app: Any, expected: str) -> None:
    assert detect_interface(app) == expected


def test_detect_interface_rejects_unclear_and_non_callables() -> None:
    with pytest.raises(ConfigurationError, match="pass interface="):
        detect_interface(lambda a, b, c, d: None)
    with pytest.raises(ConfigurationError, match="must be callable"):
        detect_interface("app")


def test_asgi2_app_is_wrapped_into_asgi3() -> None:
    delivered: list[Response] = []
    cycle = HTTPCycle(b"", delivered.append)
    asyncio.run(as_asgi3(ASGI2App)({"type": "http"}, cycle.receive, cycle.send))
    assert [r.body for r in delivered] == [b"asgi2"]


# -- lifespan ----------------------------------------------------------------------------------


def lifespan_app(log: list[str], *, fail_startup: bool = False) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "lifespan"
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if fail_startup:
                    await send({"type": "lifespan.startup.failed", "message": "no database"})
                    return
                scope["state"]["ready"] = True
                log.append("startup")
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                log.append("shutdown")
                await send({"type": "lifespan.shutdown.complete"})
                return

    return app


def test_lifespan_runs_startup_and_shutdown_and_shares_state() -> None:
    log: list[str] = []
    lifespan = Lifespan(lifespan_app(log))

    async def main() -> None:
        await lifespan.startup()
        log.append("serving")
        await lifespan.shutdown()

    asyncio.run(main())
    assert log == ["startup", "serving", "shutdown"]
    assert lifespan.state == {"ready": True}
    assert lifespan.supported


def test_lifespan_startup_failed_is_fatal() -> None:
    lifespan = Lifespan(lifespan_app([], fail_startup=True))
    with pytest.raises(AppError, match="no database"):
        asyncio.run(lifespan.startup())


async def http_only_app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        raise ValueError("only http")


def test_lifespan_auto_tolerates_apps_without_lifespan() -> None:
    lifespan = Lifespan(http_only_app, "auto")

    async def main() -> None:
        await lifespan.startup()
        await lifespan.shutdown()

    asyncio.run(main())
    assert not lifespan.supported


async def startup_raises_app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await receive()
        raise ConnectionRefusedError("database unreachable")


def test_lifespan_auto_reports_a_startup_that_raises_after_reading_the_message() -> None:
    lifespan = Lifespan(startup_raises_app, "auto")
    with pytest.raises(AppError, match="ConnectionRefusedError: database unreachable"):
        asyncio.run(lifespan.startup())


def test_lifespan_on_requires_support() -> None:
    lifespan = Lifespan(http_only_app, "on")
    with pytest.raises(AppError, match="ValueError: only http"):
        asyncio.run(lifespan.startup())
