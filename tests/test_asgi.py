"""The ASGI runner: scope, the HTTP-cycle state machine, lifespan, the runner's loop, app
detection."""

from __future__ import annotations

import asyncio
import traceback
from typing import Any

import pytest

from scf_asgi import asgi
from scf_asgi.asgi import AsgiRunner, HTTPCycle, Lifespan, as_asgi3, scope_from_request
from scf_asgi.context import Context
from scf_asgi.detect import detect_interface
from scf_asgi.errors import AppError, ConfigurationError, InvalidEventError
from scf_asgi.gateway import Request, Response, request_from_event
from scf_asgi.wsgi import environ_from_request
from tests.events import CUSTOM_HOST, DEFAULT_HOST, gateway_event, sample_event

Message = dict[str, Any]
CONTEXT = Context("req-1")


def scope_from_event(
    event: dict[str, Any],
    state: dict[str, Any] | None = None,
    *,
    base_path: str = "",
    stage_prefix: str = "auto",
    full_path: bool = True,
) -> tuple[dict[str, Any], Request]:
    """The scope of an event, through the gateway's Request, as the runner builds it."""
    request = request_from_event(event, base_path=base_path, stage_prefix=stage_prefix)
    scope = scope_from_request(request, CONTEXT, state or {}, full_path=full_path)
    return dict(scope), request


def environ_from_event(event: dict[str, Any]) -> dict[str, Any]:
    return environ_from_request(request_from_event(event), CONTEXT)


def test_scope_is_asgi_http_2_3_with_full_path() -> None:
    event = gateway_event(
        method="PUT",
        path="/api/x y",
        query={"a": ["1", "2"]},
        headers={"x-name": "é"},
        body="hi",
        host=DEFAULT_HOST,
    )
    state = {"db": "pool"}
    scope, request = scope_from_event(event, state, base_path="/api")
    assert (request.method, request.path, request.root_path) == ("PUT", "/x y", "/release/api")
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
        "scf.event": event,
        "scf.context": CONTEXT,
    }
    assert scope["state"] is not state  # a shallow copy per request, as the spec asks


def test_scope_relative_to_root_path_for_frameworks_that_route_so() -> None:
    event = gateway_event(path="/api/x y")
    scope, _ = scope_from_event(event, base_path="/api", full_path=False)
    assert (scope["path"], scope["raw_path"], scope["root_path"]) == ("/x y", b"/x%20y", "/api")


@pytest.mark.parametrize("value", ["José", "日本", "José 北京"])
def test_non_ascii_header_values_reach_asgi_and_wsgi_as_the_same_bytes(value: str) -> None:
    event = gateway_event(headers={"x-name": value})
    asgi_value = dict(scope_from_event(event)[0]["headers"])[b"x-name"]
    wsgi_value = environ_from_event(event)["HTTP_X_NAME"].encode("latin-1")
    assert asgi_value == wsgi_value == value.encode("utf-8")


def test_captured_event_headers_in_event_order() -> None:
    scope, _ = scope_from_event(sample_event("apigw-captured-get"))
    assert scope["headers"] == [
        (b"accept", b"*/*"),
        (b"host", b"service-k0fbs6ox-1259160091.gz.apigw.tencentcs.com"),
        (b"user-agent", b"curl/7.68.0"),
        (b"x-anonymous-consumer", b"true"),
        (b"x-api-requestid", b"5f5b0e0c7b2e4c1f9a1c2d3e4f506172"),
        (b"x-b3-traceid", b"5f5b0e0c7b2e4c1f9a1c2d3e4f506172"),
        (b"x-qualifier", b"$DEFAULT"),
    ]


def test_content_length_is_rederived_from_the_decoded_body() -> None:
    scope, _ = scope_from_event(sample_event("apigw-base64-upload"))
    assert scope["headers"] == [
        (b"content-type", b"application/octet-stream"),
        (b"host", b"service-k0fbs6ox-1259160091.gz.apigw.tencentcs.com"),
        (b"content-length", b"8"),
    ]


# Every header shape the slow path reads, in an event whose names have been met before (so the
# fast path would be tried) and in one with names it has not met: both read the same.
ODD_HEADERS = {
    "X-Custom": "Value With Case",
    "X-Multi": ["a", None, "b"],
    "X-Number": 5,
    "X-Null": None,
    "X-Empty": [],
    "Transfer-Encoding": "chunked",
    "Content-Length": "999",
    "Host": "api.example.com:8443",
    "X-Forwarded-Proto": "http",
}


@pytest.mark.parametrize("suffix", ["", "-unseen-1", "-unseen-2"])
def test_header_shapes_and_case(suffix: str) -> None:
    headers = {
        f"{name}{suffix}" if name.startswith("X-C") else name: value
        for name, value in ODD_HEADERS.items()
    }
    event = gateway_event(host=None, headers=headers)
    for _ in range(2):  # the second time, every name is known
        scope, _ = scope_from_event(event)
        assert scope["headers"] == [
            (b"accept", b"*/*"),
            (b"user-agent", b"curl/8.5.0"),
            (f"x-custom{suffix}".encode(), b"Value With Case"),
            (b"x-multi", b"a"),
            (b"x-multi", b"b"),
            (b"x-number", b"5"),
            (b"host", b"api.example.com:8443"),
            (b"x-forwarded-proto", b"http"),
        ]
        assert (scope["scheme"], scope["server"]) == ("http", ("api.example.com", 8443))


def test_plain_event_after_its_names_are_known_reads_the_same() -> None:
    event = gateway_event(
        headers={"x-forwarded-port": "8080", "x-forwarded-proto": "http", "cookie": "a=1"}
    )
    first, _ = scope_from_event(event)
    second, _ = scope_from_event(event)
    assert first == second
    assert first["headers"][-3:] == [
        (b"x-forwarded-port", b"8080"),
        (b"x-forwarded-proto", b"http"),
        (b"cookie", b"a=1"),
    ]
    assert (first["scheme"], first["server"]) == ("http", (CUSTOM_HOST, 8080))


def test_headers_that_are_not_an_object_are_an_invalid_event() -> None:
    event = gateway_event()
    event["headers"] = ["host", "x"]
    with pytest.raises(InvalidEventError, match="headers must be an object, got list"):
        scope_from_event(event)


def run_cycle(messages: list[Message], body: bytes = b"req") -> tuple[list[Response], list[Any]]:
    """Play `messages` through a cycle's send; return the response it holds once complete (the
    state after each message, while not) and what send raised."""
    delivered: list[Response] = []
    errors: list[Any] = []
    cycle = HTTPCycle(body)

    async def play() -> None:
        assert await cycle.receive() == {"type": "http.request", "body": body, "more_body": False}
        for message in messages:
            was_complete = cycle.state is asgi.COMPLETE
            try:
                await cycle.send(message)
            except AppError as exc:
                errors.append(str(exc))
            if cycle.state is asgi.COMPLETE and not was_complete:
                assert cycle.response is not None
                delivered.append(cycle.response)
            elif cycle.state is not asgi.COMPLETE:
                assert cycle.response is None

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
        (
            [
                {"type": "http.response.start", "status": 200},
                {"type": "http.response.body", "body": "text"},
            ],
            "'http.response.body' needs a byte string body, got str",
        ),
    ],
)
def test_bad_message_order_is_an_app_error(messages: list[Message], error: str) -> None:
    _, errors = run_cycle(messages)
    assert len(errors) == 1
    assert error in errors[0]


def test_receive_after_request_waits_for_completion_then_disconnects() -> None:
    cycle = HTTPCycle(b"")
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
    assert cycle.response is not None and cycle.response.status == 204


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
    cycle = HTTPCycle(b"")
    asyncio.run(as_asgi3(ASGI2App)({"type": "http"}, cycle.receive, cycle.send))
    assert cycle.response is not None and cycle.response.body == b"asgi2"


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
    assert lifespan.phase is asgi.STOPPED


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
    assert lifespan.phase is asgi.UNSUPPORTED


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


# -- lifespan phases: startup and shutdown failures kept apart ----------------------------------


def test_no_shutdown_is_sent_after_a_failed_startup() -> None:
    received: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            received.append(message["type"])
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.failed", "message": "no database"})

    lifespan = Lifespan(app)

    async def main() -> None:
        with pytest.raises(AppError, match="no database"):
            await lifespan.startup()
        await lifespan.shutdown()

    asyncio.run(main())
    assert (received, lifespan.phase, lifespan.failure) == (
        ["lifespan.startup"],
        asgi.STARTUP_FAILED,
        "no database",
    )


@pytest.mark.parametrize("how", ["message", "raise"])
def test_a_shutdown_failure_is_logged_not_raised(
    how: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif how == "message":
                await send({"type": "lifespan.shutdown.failed", "message": "flush failed"})
                return
            else:
                raise OSError("flush failed")

    lifespan = Lifespan(app)

    async def main() -> None:
        await lifespan.startup()
        assert lifespan.phase is asgi.STARTED
        await lifespan.shutdown()

    asyncio.run(main())
    failure = "flush failed" if how == "message" else "OSError: flush failed"
    assert (lifespan.phase, lifespan.failure) == (asgi.SHUTDOWN_FAILED, failure)
    assert f"ASGI lifespan shutdown failed: {failure}" in caplog.text


def test_a_message_out_of_its_phase_is_an_app_error() -> None:
    errors: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        try:
            await send({"type": "lifespan.shutdown.complete"})
        except AppError as exc:
            errors.append(str(exc))
        await send({"type": "lifespan.startup.complete"})

    asyncio.run(Lifespan(app).startup())
    assert errors == [
        "unexpected ASGI lifespan message 'lifespan.shutdown.complete' while starting"
    ]


# -- AsgiRunner: the process's one loop ------------------------------------------------------


def test_the_runner_runs_every_event_in_a_real_task_on_one_loop() -> None:
    # anyio finds the running async library and needs a current task: FastAPI's sync endpoints
    # run through anyio.to_thread.
    anyio = pytest.importorskip("anyio")
    runner = AsgiRunner(ASGI3Object(), lifespan="off", root_path_in_path="auto")

    async def handler() -> tuple[str, bool, Any]:
        in_thread = await anyio.to_thread.run_sync(lambda: "thread")
        return in_thread, asyncio.current_task() is not None, asyncio.get_running_loop()

    first, second = runner.run(handler()), runner.run(handler())
    assert first[:2] == second[:2] == ("thread", True)
    assert first[2] is second[2] is runner.loop
    runner.close()
    assert runner.loop is not first[2]  # closed: a new one is made on next use
    runner.close()


def test_a_failed_startup_fails_alike_each_time_without_growing() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "db down"})

    runner = AsgiRunner(app, lifespan="auto", root_path_in_path="auto")
    raised: list[AppError] = []
    for _ in range(50):
        with pytest.raises(AppError, match="ASGI lifespan startup failed: db down") as caught:
            runner.run(runner.startup())
        raised.append(caught.value)
    assert len({id(error) for error in raised}) == 50  # a new error each time ...
    assert {id(error.__cause__) for error in raised} == {id(raised[0].__cause__)}  # ... one cause
    depths = {len(traceback.extract_tb(error.__traceback__)) for error in raised}
    assert len(depths) == 1  # the traceback does not grow from one event to the next
    runner.close()


@pytest.mark.parametrize("mode", ["auto", "on"])
@pytest.mark.parametrize("ending", [SystemExit, asyncio.CancelledError])
def test_a_startup_that_ends_in_a_base_exception_has_failed(
    mode: str, ending: type[BaseException]
) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()
            raise ending()  # sys.exit() in a startup hook, say
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    runner = AsgiRunner(app, lifespan=mode, root_path_in_path="auto")
    for _ in range(2):
        with pytest.raises(AppError, match=f"ASGI lifespan startup failed: {ending.__name__}"):
            runner.run(runner.startup())
    assert runner.lifespan is not None and runner.lifespan.phase is asgi.STARTUP_FAILED
    runner.close()


def test_a_run_cut_short_leaves_nothing_that_stops_the_next() -> None:
    runner = AsgiRunner(ASGI3Object(), lifespan="off", root_path_in_path="auto")

    def interrupt() -> None:
        raise KeyboardInterrupt

    async def interrupted() -> None:
        # A callback, not this task, ends the loop's run: the task is left waiting.
        asyncio.get_running_loop().call_soon(interrupt)
        await asyncio.sleep(1)

    async def later() -> str:
        await asyncio.sleep(0.01)  # a few turns of the loop, in which a stale stop would land
        return "done"

    with pytest.raises(KeyboardInterrupt):
        runner.run(interrupted())
    assert [runner.run(later()) for _ in range(3)] == ["done"] * 3
    runner.close()
