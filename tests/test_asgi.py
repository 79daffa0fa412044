"""The ASGI runner: scope, the HTTP-cycle state machine, lifespan, app detection."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from scf_asgi.adapter import detect_interface
from scf_asgi.asgi import HTTPCycle, Lifespan, TaskRunner, as_asgi3, scope_from_event
from scf_asgi.errors import AppError, ConfigurationError, InvalidEventError
from scf_asgi.gateway import Response
from scf_asgi.wsgi import environ_from_event
from tests.events import CUSTOM_HOST, DEFAULT_HOST, gateway_event, sample_event

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
    state = {"db": "pool"}
    scope, request = scope_from_event(event, state, {"scf.event": "EVENT"}, base_path="/api")
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
        "scf.event": "EVENT",
    }
    assert scope["state"] is not state  # a shallow copy per request, as the spec asks


def test_scope_relative_to_root_path_for_frameworks_that_route_so() -> None:
    event = gateway_event(path="/api/x y")
    scope, _ = scope_from_event(event, {}, {}, base_path="/api", full_path=False)
    assert (scope["path"], scope["raw_path"], scope["root_path"]) == ("/x y", b"/x%20y", "/api")


@pytest.mark.parametrize("value", ["José", "日本", "José 北京"])
def test_non_ascii_header_values_reach_asgi_and_wsgi_as_the_same_bytes(value: str) -> None:
    event = gateway_event(headers={"x-name": value})
    asgi_value = dict(scope_from_event(event, {}, {})[0]["headers"])[b"x-name"]
    wsgi_value = environ_from_event(event, {})[0]["HTTP_X_NAME"].encode("latin-1")
    assert asgi_value == wsgi_value == value.encode("utf-8")


def test_captured_event_headers_in_event_order() -> None:
    scope, _ = scope_from_event(sample_event("apigw-captured-get"), {}, {})
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
    scope, _ = scope_from_event(sample_event("apigw-base64-upload"), {}, {})
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
        scope, _ = scope_from_event(event, {}, {})
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
    first, _ = scope_from_event(event, {}, {})
    second, _ = scope_from_event(event, {}, {})
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
        scope_from_event(event, {}, {})


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


# -- TaskRunner: in-process events without entering the loop when nothing waits ----------------


class PollCounter:
    """Counts the loop's selector polls (asyncio's own object, observed, not replaced)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.polls = 0
        selector = loop._selector  # type: ignore[attr-defined]
        select = selector.select

        def counted(timeout: float | None = None) -> Any:
            self.polls += 1
            return select(timeout)

        selector.select = counted


@pytest.fixture
def loop() -> Any:
    loop = asyncio.new_event_loop()
    yield loop
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()


def test_task_runner_runs_a_coroutine_that_never_waits_in_a_real_task_without_polling(
    loop: asyncio.AbstractEventLoop,
) -> None:
    import contextvars

    marker: contextvars.ContextVar[str] = contextvars.ContextVar("marker", default="outside")
    counter = PollCounter(loop)

    async def handler() -> tuple[bool, bool, str]:
        marker.set("inside")
        task = asyncio.current_task()
        return task is not None, asyncio.get_running_loop() is loop, marker.get()

    runner = TaskRunner(loop)
    assert [runner.run(handler()) for _ in range(3)] == [(True, True, "inside")] * 3
    assert counter.polls == 0
    assert marker.get() == "outside"  # the task ran in its own context
    with pytest.raises(RuntimeError, match="no running event loop"):
        asyncio.get_running_loop()


def test_task_runner_hands_a_waiting_coroutine_to_the_loop(
    loop: asyncio.AbstractEventLoop,
) -> None:
    counter = PollCounter(loop)

    async def handler() -> str:
        await asyncio.sleep(0.01)
        return await loop.run_in_executor(None, lambda: "from a thread")

    assert TaskRunner(loop).run(handler()) == "from a thread"
    assert counter.polls > 0


def test_task_runner_raises_what_the_coroutine_raised(loop: asyncio.AbstractEventLoop) -> None:
    async def fails_at_once() -> None:
        raise ValueError("at once")

    async def fails_later() -> None:
        await asyncio.sleep(0)
        raise KeyError("later")

    runner = TaskRunner(loop)
    with pytest.raises(ValueError, match="at once"):
        runner.run(fails_at_once())
    with pytest.raises(KeyError, match="later"):
        runner.run(fails_later())


def test_task_runner_gives_pending_background_work_the_usual_turn(
    loop: asyncio.AbstractEventLoop,
) -> None:
    done: list[str] = []

    async def background() -> None:
        done.append("background")

    async def handler() -> str:
        asyncio.get_running_loop().create_task(background())
        return "answered"

    runner = TaskRunner(loop)
    assert runner.run(handler()) == "answered"
    # The background task was ready, so the loop had work: it ran as run_until_complete would.
    assert done == ["background"]


def test_task_runner_leaves_unfinished_async_generators_to_the_loop(
    loop: asyncio.AbstractEventLoop,
) -> None:
    closed: list[str] = []

    async def numbers() -> Any:
        try:
            yield 1
            yield 2
        finally:
            closed.append("closed")

    kept: list[Any] = []

    async def handler() -> int:
        generator = numbers()
        kept.append(generator)
        return await generator.__anext__()

    assert TaskRunner(loop).run(handler()) == 1
    assert closed == []
    loop.run_until_complete(loop.shutdown_asyncgens())  # what closing the loop runs
    assert closed == ["closed"]


def test_task_runner_works_for_anyio(loop: asyncio.AbstractEventLoop) -> None:
    # anyio finds the running async library (with sniffio, in the versions that use it) and
    # needs a current task: FastAPI's sync endpoints run through anyio.to_thread.
    anyio = pytest.importorskip("anyio")

    async def handler() -> tuple[str, str]:
        in_thread = await anyio.to_thread.run_sync(lambda: "thread")
        task_name = anyio.get_current_task().name
        return in_thread, task_name

    in_thread, task_name = TaskRunner(loop).run(handler())
    assert (in_thread, task_name.startswith("Task-")) == ("thread", True)


def test_task_runner_gives_a_polling_app_its_timers(loop: asyncio.AbstractEventLoop) -> None:
    async def poll_forever() -> None:
        while True:
            await asyncio.sleep(0)

    async def handler() -> str:
        try:
            await asyncio.wait_for(poll_forever(), 0.05)
        except asyncio.TimeoutError:
            return "timed out"
        return "never"

    assert TaskRunner(loop).run(handler()) == "timed out"


def test_task_runner_marks_the_loop_running_only_while_it_steps(
    loop: asyncio.AbstractEventLoop,
) -> None:
    async def handler() -> bool:
        return asyncio.get_running_loop().is_running()

    assert TaskRunner(loop).run(handler()) is True
    assert loop.is_running() is False


def test_task_runner_inside_a_running_loop_refuses_as_asyncio_does(
    loop: asyncio.AbstractEventLoop,
) -> None:
    runner = TaskRunner(loop)

    async def handler() -> str:
        return "ran"

    async def caller() -> str:
        inner = handler()
        with pytest.raises(RuntimeError, match="another loop is running"):
            runner.run(inner)
        inner.close()
        await asyncio.sleep(0)  # the caller's own loop still works
        return "caller done"

    assert asyncio.run(caller()) == "caller done"


@pytest.mark.parametrize("exit_exception", [KeyboardInterrupt, SystemExit])
def test_task_runner_lets_process_exits_through_and_leaves_nothing_unretrieved(
    loop: asyncio.AbstractEventLoop, exit_exception: type[BaseException]
) -> None:
    import gc

    reported: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: reported.append(context))

    async def handler() -> None:
        raise exit_exception

    runner = TaskRunner(loop)
    with pytest.raises(exit_exception):
        runner.run(handler())
    gc.collect()
    assert reported == []

    async def after() -> str:
        return "still serving"

    assert runner.run(after()) == "still serving"


def test_task_runner_makes_tasks_through_the_loops_task_factory(
    loop: asyncio.AbstractEventLoop,
) -> None:
    made: list[tuple[str, bool]] = []
    order: list[str] = []

    def factory(loop: asyncio.AbstractEventLoop, coroutine: Any, **options: Any) -> Any:
        # As run_until_complete calls it: before the loop counts as running (with a running
        # loop, asyncio.eager_task_factory would run the first step ahead of waiting callbacks).
        made.append((coroutine.__name__, loop.is_running()))
        return asyncio.Task(coroutine, loop=loop, **options)

    async def handler() -> str:
        order.append("handler")
        return "ran"

    loop.set_task_factory(factory)
    loop.call_soon(order.append, "scheduled before")
    assert TaskRunner(loop).run(handler()) == "ran"
    assert (made, order) == ([("handler", False)], ["scheduled before", "handler"])


def test_task_runner_makes_tasks_through_an_overridden_create_task() -> None:
    made: list[str] = []

    class TracingLoop(asyncio.SelectorEventLoop):
        def create_task(self, coro: Any, **options: Any) -> Any:  # type: ignore[override]
            made.append(coro.__name__)
            return super().create_task(coro, **options)

    async def handler() -> str:
        return "ran"

    loop = TracingLoop()
    try:
        runner = TaskRunner(loop)
        assert [runner.run(handler()), runner.run(handler())] == ["ran", "ran"]
        assert made == ["handler", "handler"]
    finally:
        loop.close()


def test_task_runner_in_debug_mode_takes_the_usual_way(loop: asyncio.AbstractEventLoop) -> None:
    loop.set_debug(True)
    counter = PollCounter(loop)

    async def handler() -> str:
        return "ran"

    assert TaskRunner(loop).run(handler()) == "ran"
    assert counter.polls > 0  # run_until_complete, with all of debug mode's checks


def test_task_runner_on_a_closed_loop_fails_as_asyncio_does() -> None:
    loop = asyncio.new_event_loop()
    loop.close()

    async def handler() -> None:
        return None

    coroutine = handler()
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        TaskRunner(loop).run(coroutine)
    coroutine.close()
