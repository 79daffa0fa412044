"""End to end: the real `python -m scf_asgi run` in a child process, against a fake of the
platform's runtime API on a loopback socket, with real Flask, FastAPI, Starlette, Django apps."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scf_asgi.runtime.client import Interrupted, RuntimeClient
from scf_asgi.runtime.loop import ShutdownGuard
from tests.events import DEFAULT_HOST, gateway_event, sample_event
from tests.runtime_api import ROOT, FakeRuntimeAPI, RuntimeProcess, runtime_env


@pytest.fixture
def api() -> Iterator[FakeRuntimeAPI]:
    server = FakeRuntimeAPI()
    yield server
    server.close()


@pytest.fixture
def gates(tmp_path: Path) -> Path:
    return tmp_path


def start(api: FakeRuntimeAPI, *args: str, gates: Path | None = None, **env: str) -> RuntimeProcess:
    extra = dict(env)
    if gates is not None:
        extra["GATE_DIR"] = str(gates)
    return RuntimeProcess(api, list(args), env=runtime_env(api, **extra))


def wait_for_file(path: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} never appeared")
        time.sleep(0.005)


def assert_one_answer_each(api: FakeRuntimeAPI) -> None:
    """Every event got exactly one answer, and nothing else was posted. Call it once no more
    posts can come: after the runtime has stopped, or has asked /next for the event after the
    last one (its posts for an event all come before that request)."""
    answer_paths = ("/runtime/invocation/response", "/runtime/invocation/error")
    posts = [path for method, path in api.log if method == "POST" and path in answer_paths]
    count = len(api.invocations)
    assert ([len(invocation.answers) for invocation in api.invocations], len(posts)) == (
        [1] * count,
        count,
    )
    assert api.stray_answers == []


ITEM_EVENT = gateway_event(path="/info/abc", query={"q": ["1", "two words"]}, host=DEFAULT_HOST)


@pytest.mark.parametrize(
    ("app", "headers"),
    [
        ("django_site.wsgi:application", {"Content-Type": "application/json"}),
        ("django_site.asgi:application", {"Content-Type": "application/json"}),
    ],
)
def test_django_wsgi_and_asgi(api: FakeRuntimeAPI, app: str, headers: dict[str, str]) -> None:
    runtime = start(api, app, DJANGO_SETTINGS_MODULE="django_site.settings")
    try:
        answer = api.invoke(
            {**ITEM_EVENT, "headers": {**ITEM_EVENT["headers"], "x-forwarded-proto": "https"}}
        )
    finally:
        assert runtime.stop() == 0
    document = answer.json()
    assert (answer.kind, document["statusCode"], document["isBase64Encoded"]) == (
        "response",
        200,
        False,
    )
    assert {k: v for k, v in document["headers"].items() if k in headers} == headers
    assert json.loads(document["body"]) == {
        "name": "abc",
        "q": ["1", "two words"],
        "absolute": f"https://{DEFAULT_HOST}/release/info/abc?q=1&q=two+words",
        "secure": True,
        "script_name": "/release",
    }


def test_flask_through_the_loop(api: FakeRuntimeAPI) -> None:
    runtime = start(api, "flask_app:app")
    try:
        item = api.invoke(gateway_event(path="/items/3", query={"q": "a+b"}))
        cookies = api.invoke(gateway_event(path="/cookies"))
        upload = api.invoke(
            gateway_event(
                method="POST",
                path="/echo",
                body=bytes(range(256)),
                headers={"content-type": "application/octet-stream"},
            )
        )
    finally:
        assert runtime.stop() == 0
    assert json.loads(item.json()["body"]) == {
        "id": 3,
        "q": ["a+b"],
        "root": "",
        "url": "https://api.example.com/items/3?q=a%2Bb",
        "client": "203.0.113.7",
    }
    assert cookies.json()["headers"]["Set-Cookie"] == ["a=1; Path=/", "b=2; HttpOnly; Path=/"]
    import base64

    assert upload.json()["isBase64Encoded"] is True
    assert base64.b64decode(upload.json()["body"]) == bytes(range(256))
    assert f"{item.request_id} GET /items/3 200 " in runtime.output


LOOPS = ["asyncio", "uvloop"]  # the auto default takes uvloop when installed


@pytest.mark.parametrize("loop", LOOPS)
def test_lifespan_runs_before_ready_and_shutdown_on_sigterm(api: FakeRuntimeAPI, loop: str) -> None:
    if loop == "uvloop":
        pytest.importorskip("uvloop")
    runtime = start(api, "loop_app:app", "--loop", loop)
    answer = api.invoke(gateway_event(path="/startup-time"))
    started = json.loads(answer.json()["body"])["startup_finished_at"]
    assert started < api.ready_at
    assert api.log[:2] == [("POST", "/runtime/init/ready"), ("GET", "/runtime/invocation/next")]
    assert runtime.stop() == 0
    assert "LOOP_APP SHUTDOWN" in runtime.output
    assert "received SIGTERM; shutting down" in runtime.output


def test_one_event_loop_for_the_whole_process(api: FakeRuntimeAPI) -> None:
    runtime = start(api, "loop_app:app")
    try:
        answers = [api.invoke(gateway_event(path="/same-loop")) for _ in range(3)]
    finally:
        runtime.stop()
    assert [json.loads(a.json()["body"]) for a in answers] == [
        {"same_loop": True, "future": "made in an earlier invocation"}
    ] * 3


@pytest.mark.parametrize("loop", LOOPS)
def test_work_the_app_hands_the_loop_runs_while_the_next_event_is_awaited(
    api: FakeRuntimeAPI, gates: Path, loop: str
) -> None:
    if loop == "uvloop":
        pytest.importorskip("uvloop")
    runtime = start(api, "loop_app:app", "--loop", loop, gates=gates)
    try:
        assert json.loads(api.invoke(gateway_event(path="/detach")).json()["body"]) == {
            "detached": True
        }
        (gates / "detached.go").touch()
        # No event is in flight: the instance is in its long poll, and the task and the timer
        # run all the same, as they would under uvicorn.
        deadline = time.monotonic() + 20
        while not ((gates / "detached.done").exists() and (gates / "timer.done").exists()):
            assert time.monotonic() < deadline, "the loop did not run while idle"
            time.sleep(0.01)
        assert api.log.count(("GET", "/runtime/invocation/next")) == 2  # still the one poll
    finally:
        assert runtime.stop() == 0


def test_response_posted_before_background_work_which_ends_before_next_event(
    api: FakeRuntimeAPI, gates: Path
) -> None:
    runtime = start(api, "loop_app:app", gates=gates)
    try:
        # The background task cannot finish until the test opens its gate, so receiving the
        # answer proves it was posted while the task was still running.
        posted = api.invoke(gateway_event(path="/gated-background"))
        assert json.loads(posted.json()["body"]) == {"posted": True}
        follow_up = api.queue_event(gateway_event(path="/background-log"))
        time.sleep(0.2)
        assert not follow_up.done.is_set()  # not pulled while the background task runs
        (gates / "background.go").touch()
        log = api.wait(follow_up)
    finally:
        runtime.stop()
    assert json.loads(log.json()["body"]) == {"background": ["done"]}


def test_sigterm_during_an_event_finishes_and_posts_it(api: FakeRuntimeAPI, gates: Path) -> None:
    runtime = start(api, "loop_app:app", gates=gates)
    invocation = api.queue_event(gateway_event(path="/gated-handler"))
    wait_for_file(gates / "handler.waiting")
    runtime.process.send_signal(signal.SIGTERM)
    runtime.wait_output("received SIGTERM; shutting down")  # handled while the handler waits
    (gates / "handler.go").touch()
    answer = api.wait(invocation)
    assert runtime.wait_exit() == 0
    assert json.loads(answer.json()["body"]) == {"finished": True}
    assert "LOOP_APP SHUTDOWN" in runtime.output
    assert api.log.count(("GET", "/runtime/invocation/next")) == 1  # nothing pulled after


def test_sigint_while_idle_exits_zero(api: FakeRuntimeAPI) -> None:
    runtime = start(api, "fastapi_app:app")
    runtime.process.send_signal(signal.SIGINT)
    assert runtime.wait_exit() == 0
    assert "LIFESPAN SHUTDOWN" in runtime.output


@pytest.mark.parametrize("app", ["flask_app:app", "fastapi_app:app"])
def test_sigterm_in_the_long_poll_after_an_error_answer_exits_at_once(
    api: FakeRuntimeAPI, app: str
) -> None:
    # An error answer from /next is not an event: the poll that follows is as idle as any.
    api.fail_next_gets = [503]
    runtime = start(api, app)
    # The runtime marks itself idle before it sends a poll: once the second one has arrived,
    # it is waiting for an event.
    api.wait_for(lambda: api.log.count(("GET", "/runtime/invocation/next")) == 2)
    runtime.process.send_signal(signal.SIGTERM)
    assert runtime.wait_exit(5) == 0
    assert "received SIGTERM; shutting down" in runtime.output
    assert ("LIFESPAN SHUTDOWN" in runtime.output) == (app == "fastapi_app:app")


def test_every_event_gets_exactly_one_answer(api: FakeRuntimeAPI) -> None:
    runtime = start(api, "fastapi_app:app")
    try:
        answers = [
            api.invoke(b"{not json"),
            api.invoke(b"[1, 2]"),
            api.invoke(sample_event("timer")),
            api.invoke({"unknown": True}),
            api.invoke(gateway_event(path="/boom")),
            api.invoke(gateway_event(method="HEAD", path="/items/1")),
            api.invoke(
                {
                    **gateway_event(method="POST", path="/echo"),
                    "body": "%%",
                    "isBase64Encoded": True,
                }
            ),
            api.invoke(gateway_event(path="/items/1")),
        ]
    finally:
        assert runtime.stop() == 0
    assert [(a.kind, a.json().get("errorType") or a.json().get("statusCode")) for a in answers] == [
        ("error", "InvalidEventError"),
        ("error", "InvalidEventError"),
        ("error", "UnhandledEventError"),
        ("error", "UnhandledEventError"),
        ("response", 500),
        ("response", 200),
        ("response", 400),
        ("response", 200),
    ]
    assert answers[0].json()["errorMessage"].startswith("the event is not valid JSON")
    assert answers[5].json()["body"] == ""
    assert "secret detail" not in answers[4].body.decode()
    assert_one_answer_each(api)


def test_app_errors_as_invocation_errors(api: FakeRuntimeAPI) -> None:
    runtime = start(api, "loop_app:app", "--app-errors", "invocation")
    try:
        answer = api.invoke(gateway_event(path="/boom"))
    finally:
        runtime.stop()
    assert answer.kind == "error"
    assert answer.json() == {
        "errorType": "AppError",
        "errorMessage": f"the app raised RuntimeError; see the log of request {answer.request_id}",
    }
    assert "secret detail that must not leak" in runtime.output  # logged, not posted


@pytest.mark.parametrize("app", ["flask_app:app", "fastapi_app:app"])
@pytest.mark.parametrize(
    ("handler", "expected"),
    [
        ("handlers:asyncio_run_handler", {"result": "fetched"}),
        ("handlers:cancelled_handler", {"errorType": "CancelledError", "errorMessage": ""}),
        ("handlers:exiting_handler", {"errorType": "SystemExit", "errorMessage": "3"}),
    ],
)
def test_event_handlers_behave_alike_whatever_the_app(
    api: FakeRuntimeAPI, app: str, handler: str, expected: dict[str, str]
) -> None:
    # A handler that uses asyncio.run(), or ends in CancelledError or SystemExit, fails (or
    # not) its own invocation only, the same next to an ASGI app as next to a WSGI one.
    runtime = start(api, app, "--event-handler", handler)
    try:
        answer = api.invoke(sample_event("timer"))
        after = api.invoke(gateway_event(path="/items/8"))
    finally:
        assert runtime.stop() == 0
    assert answer.json() == expected
    assert after.json()["statusCode"] == 200


@pytest.mark.parametrize(
    ("app", "handler", "expected"),
    [
        ("flask_app:app", "handlers:sync_handler", ("response", None)),
        ("fastapi_app:app", "handlers:async_handler", ("response", None)),
        ("flask_app:app", "handlers:failing_handler", ("error", "ValueError")),
        ("fastapi_app:app", "handlers:unserialisable_handler", ("error", "InvalidResultError")),
    ],
)
def test_event_handlers(
    api: FakeRuntimeAPI, app: str, handler: str, expected: tuple[str, str | None]
) -> None:
    runtime = start(api, app, "--event-handler", handler)
    try:
        answer = api.invoke(sample_event("cmq-topic"))
    finally:
        runtime.stop()
    document = answer.json()
    assert (answer.kind, document.get("errorType")) == expected
    if handler.endswith(":sync_handler"):
        assert document == {
            "trigger_keys": ["Records"],
            "request_id": answer.request_id,
            "memory_limit_in_mb": 128,
            "time_limit_in_ms": 3000,
            "function": ["test-function", "$LATEST", "default"],
            "region": "ap-guangzhou",
            "deadline_ahead": True,
        }
    elif handler.endswith(":async_handler"):
        assert document == {"async": True, "remaining_positive": True}
    elif handler.endswith(":failing_handler"):
        assert document["errorMessage"] == "handler could not process the record"


def test_handler_variable_names_the_app_and_proxies_are_ignored(api: FakeRuntimeAPI) -> None:
    dead_proxy = "http://127.0.0.1:9"
    runtime = RuntimeProcess(
        api,
        [],
        env=runtime_env(
            api, _HANDLER="flask_app.app", http_proxy=dead_proxy, HTTP_PROXY=dead_proxy
        ),
    )
    try:
        answer = api.invoke(gateway_event(path="/items/9"))
    finally:
        runtime.stop()
    assert json.loads(answer.json()["body"])["id"] == 9


def test_an_adapter_named_as_the_handler_keeps_its_options(api: FakeRuntimeAPI) -> None:
    runtime = RuntimeProcess(api, [], env=runtime_env(api, _HANDLER="index.main_handler"))
    try:
        page = api.invoke(gateway_event(path="/api/items/7", host="example.com"))
        timer = api.invoke(sample_event("timer"))
    finally:
        runtime.stop()
    item = json.loads(page.json()["body"])
    assert (item["id"], item["root"]) == (7, "/api")  # its base_path
    assert (timer.kind, timer.json()["trigger_keys"]) == (
        "response",
        ["Message", "Time", "TriggerName", "Type"],
    )


@pytest.mark.parametrize(
    ("interface", "content_type"), [("asgi", "content-type"), ("wsgi", "Content-Type")]
)
def test_run_flags_reach_the_adapter(
    api: FakeRuntimeAPI, interface: str, content_type: str
) -> None:
    # echo_app.app takes *args, so it starts only with --interface; --stage-prefix on puts the
    # stage in front of root_path on a custom domain; --root-path-in-path off leaves it out of
    # the ASGI path (WSGI has PATH_INFO apart anyway); --text-mime-type sends its media type as
    # text rather than base64.
    runtime = start(
        api,
        "echo_app:app",
        "--interface",
        interface,
        "--stage-prefix",
        "on",
        "--root-path-in-path",
        "off",
        "--text-mime-type",
        "application/vnd.echo",
    )
    try:
        answer = api.invoke(gateway_event(path="/x", query={"type": "application/vnd.echo"}))
    finally:
        assert runtime.stop() == 0
    document = answer.json()
    assert (answer.kind, {**document, "body": json.loads(document["body"])}) == (
        "response",
        {
            "isBase64Encoded": False,
            "statusCode": 200,
            "headers": {content_type: "application/vnd.echo"},
            "body": {
                "interface": interface,
                "method": "GET",
                "root_path": "/release",
                "path": "/x",
                "query_string": "type=application%2Fvnd.echo",
                "scheme": "https",
            },
        },
    )


def test_options_for_an_adapter_named_as_the_app_are_refused(api: FakeRuntimeAPI) -> None:
    result = run_cli(
        ["run", "index:main_handler", "--base-path", "/v2", "--no-access-log"], runtime_env(api)
    )
    assert (result.returncode, result.stderr) == (
        1,
        "scf-asgi: error: index:main_handler is an Adapter, made with its own options: set "
        "--base-path, --no-access-log there, or name its app instead\n",
    )
    assert api.ready_count == 0


def test_reconnects_when_the_runtime_api_drops_the_connection(api: FakeRuntimeAPI) -> None:
    api.close_after_reply = True
    runtime = start(api, "flask_app:app")
    try:
        answers = [api.invoke(gateway_event(path=f"/items/{n}")) for n in range(3)]
        api.wait_for(lambda: api.log.count(("GET", "/runtime/invocation/next")) == 4)
    finally:
        runtime.stop()
    assert [json.loads(a.json()["body"])["id"] for a in answers] == [0, 1, 2]
    # A new connection for every exchange (ready, 3 x next and response, the pending next),
    # opened because the answer said `Connection: close`, not after a failed send on the old
    # one (which would be logged as "unreachable ...; retrying").
    assert len(api.connections) == 8
    assert [line for line in runtime.output.splitlines() if not line.startswith("[INFO] ")] == []


def test_keeps_one_connection_when_the_runtime_api_allows(api: FakeRuntimeAPI) -> None:
    runtime = start(api, "flask_app:app")
    try:
        for n in range(3):
            api.invoke(gateway_event(path=f"/items/{n}"))
    finally:
        runtime.stop()
    assert len(api.connections) == 1


def test_rejected_response_becomes_an_invocation_error(api: FakeRuntimeAPI) -> None:
    runtime = start(api, "flask_app:app")
    try:
        api.fail_next_posts = [413]
        answer = api.invoke(gateway_event(path="/items/1"))
    finally:
        runtime.stop()
    assert answer.kind == "error"
    assert answer.json()["errorType"] == "ResponseRejected"
    assert answer.json()["errorMessage"].startswith(
        "the runtime API rejected the response with status 413"
    )
    assert "POST /runtime/invocation/response answered 413" in runtime.output


def test_response_refused_before_its_body_is_read_becomes_an_invocation_error(
    api: FakeRuntimeAPI,
) -> None:
    # The runtime API answers 413 and closes without reading the body, so sending the rest of
    # it fails: the answer is read all the same, and the instance stays up.
    api.refuse_posts_over = 1_000_000
    runtime = start(api, "flask_app:app", SCF_ASGI_RUNTIME_RETRY_SECONDS="3")
    try:
        refused = api.invoke(gateway_event(path="/large", query={"bytes": "12000000"}))
        after = api.invoke(gateway_event(path="/items/3"))
    finally:
        assert runtime.stop() == 0
    assert (refused.kind, refused.json()["errorType"], after.json()["statusCode"]) == (
        "error",
        "ResponseRejected",
        200,
    )
    assert api.log.count(("POST", "/runtime/invocation/response")) == 2  # no re-sending


def test_non_200_from_next_is_logged_and_retried(api: FakeRuntimeAPI) -> None:
    api.fail_next_gets = [503, 500]
    runtime = start(api, "flask_app:app")
    try:
        answer = api.invoke(gateway_event(path="/items/4"))
    finally:
        runtime.stop()
    assert json.loads(answer.json()["body"])["id"] == 4
    assert "GET /runtime/invocation/next answered 503: temporarily unavailable" in runtime.output
    assert "GET /runtime/invocation/next answered 500: temporarily unavailable" in runtime.output


def test_result_over_the_documented_limit_is_posted_with_a_warning(api: FakeRuntimeAPI) -> None:
    runtime = start(api, "flask_app:app")
    try:
        fits = api.invoke(gateway_event(path="/large", query={"bytes": "4500000"}))
        over = api.invoke(gateway_event(path="/large", query={"bytes": "5000000"}))
    finally:
        runtime.stop()
    assert [(a.kind, a.json()["isBase64Encoded"]) for a in (fits, over)] == [
        ("response", True),
        ("response", True),
    ]
    assert f"request {fits.request_id}: a " not in runtime.output
    assert (
        f"request {over.request_id}: a 6666800-byte result is over the platform's limit of "
        "about 6 MB (binary bodies grow by a third as base64); it may be refused"
    ) in runtime.output


def test_system_exit_in_a_view_does_not_end_the_instance(api: FakeRuntimeAPI) -> None:
    runtime = start(api, "flask_app:app")
    try:
        exited = api.invoke(gateway_event(path="/exit"))
        after = api.invoke(gateway_event(path="/items/2"))
    finally:
        assert runtime.stop() == 0
    assert (exited.json()["statusCode"], after.json()["statusCode"]) == (500, 200)


def test_a_signal_before_the_long_poll_ends_it_at_once(api: FakeRuntimeAPI) -> None:
    # SIGTERM handled after the loop last looked at `requested` and before the long poll
    # begins must end that poll (nothing else ever would): the signal leaves a byte in the
    # wake-up pipe, which the poll waits on beside its socket.
    client = RuntimeClient("127.0.0.1", api.port, retry_for=1)
    with ShutdownGuard() as guard:
        signal.raise_signal(signal.SIGTERM)
        started = time.monotonic()
        with pytest.raises(Interrupted):
            client.next_invocation(guard.wakeup_fd)
        assert guard.requested
    assert time.monotonic() - started < 5
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    client.close()


def test_a_signal_during_the_long_poll_ends_it_and_no_event_is_lost(api: FakeRuntimeAPI) -> None:
    import threading

    client = RuntimeClient("127.0.0.1", api.port, retry_for=1)
    with ShutdownGuard() as guard:
        threading.Timer(0.3, signal.raise_signal, (signal.SIGTERM,)).start()
        with pytest.raises(Interrupted):
            client.next_invocation(guard.wakeup_fd)
    client.close()
    # The event queued afterwards was never handed out: it waits for the next instance.
    queued = api.queue_event({"after": "shutdown"})
    assert not queued.done.wait(0.2)


@pytest.mark.parametrize("app", ["signal_app:wsgi_app", "signal_app:asgi_app"])
def test_a_signal_the_app_handles_itself_does_not_stop_the_instance(
    api: FakeRuntimeAPI, app: str
) -> None:
    """Every signal with a Python handler writes to the wake-up pipe the long poll waits on:
    only SIGTERM's and SIGINT's may end the wait."""
    runtime = RuntimeProcess(api, [app])
    try:
        # SIGUSR1 while an event is handled (the app sends it itself) ...
        during = api.invoke(gateway_event(path="/raise"))
        api.wait_for(lambda: api.log.count(("GET", "/runtime/invocation/next")) == 2)
        # ... and while the instance waits in its long poll
        runtime.process.send_signal(signal.SIGUSR1)
        time.sleep(0.3)
        after = api.invoke(gateway_event(path="/"))
    finally:
        code = runtime.stop()
    assert (during.json()["body"], after.json()["body"], code) == ("usr1 1", "usr1 2", 0)
    assert "received SIGTERM; shutting down" in runtime.output


def test_sigterm_while_ready_is_refused_ends_the_instance_at_once() -> None:
    """A 5xx answer to ready is posted again within the retry budget; a shutdown signal in
    the meantime ends the instance then, not once the budget is spent."""
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    refused = threading.Event()

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                buffer = b""
                while True:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    buffer += chunk
                    while b"\r\n\r\n" in buffer and b'{"msg":"ready"}' in buffer:
                        buffer = buffer.split(b'{"msg":"ready"}', 1)[1]
                        conn.sendall(b"HTTP/1.1 503 Busy\r\nContent-Length: 4\r\n\r\nbusy")
                        refused.set()

    threading.Thread(target=serve, daemon=True).start()
    fake = FakeRuntimeAPI()  # only for the environment helper
    env = runtime_env(fake, SCF_RUNTIME_API_PORT=str(port), SCF_ASGI_RUNTIME_RETRY_SECONDS="60")
    for app in ("plain_apps:wsgi_app", "plain_apps:asgi_app"):
        refused.clear()
        runtime = RuntimeProcess(fake, [app], env=env, wait_ready=False)
        try:
            assert refused.wait(30), runtime.output
            started = time.monotonic()
            runtime.process.send_signal(signal.SIGTERM)
            code = runtime.wait_exit(20)
        finally:
            runtime.stop()
        assert (app, code) == (app, 0)
        assert time.monotonic() - started < 5, runtime.output
    listener.close()
    fake.close()


def socket_queues(local_port: int, remote_port: int) -> tuple[int, int]:
    """(bytes sent but not acknowledged, bytes received but not read) of the loopback TCP
    connection from `local_port` to `remote_port`, whichever process owns it (Linux)."""
    with open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            local, remote, _, queues = line.split()[1:5]
            if (int(local.rpartition(":")[2], 16), int(remote.rpartition(":")[2], 16)) == (
                local_port,
                remote_port,
            ):
                sent, _, received = queues.partition(":")
                return int(sent, 16), int(received, 16)
    raise LookupError(f"no TCP connection from port {local_port} to {remote_port}")


@pytest.mark.parametrize(
    "case",
    [
        "between-head-and-body",
        "post-reset-once",  # the same, and the first post of the answer is cut
        "mid-head",  # the signal when part of the head is read
        "cut-mid-event",  # the signal mid-event, then the connection reset: fetched again
    ],
)
@pytest.mark.parametrize("app", ["flask_app:app", "fastapi_app:app"])  # blocking, event loop
def test_sigterm_while_the_event_arrives_still_answers_it(app: str, case: str) -> None:
    """A signal between the first bytes of the event and its end must not drop the event, nor
    its answer when the first post of it is cut and has to be made again, nor the event when
    its connection is cut before it is whole."""
    import socket as socket_module
    import struct
    import threading

    post_fails_once = case == "post-reset-once"

    if not os.path.exists("/proc/net/tcp"):
        pytest.skip("reads how far the runtime has read its socket from /proc/net/tcp (Linux)")
    event = json.dumps(gateway_event(path="/items/5")).encode()
    answers: list[bytes] = []
    cut: list[bytes] = []  # the post closed unanswered
    polls: list[int] = []  # the /next requests answered
    body_begun = threading.Event()
    go_on = threading.Event()
    listener = socket_module.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def send_and_wait_until_read(conn: socket_module.socket, data: bytes) -> None:
        # Sent, delivered (acknowledged) and read by the runtime: a poll of the kernel's
        # queues, since nothing else shows how far a blocking recv() in another process got.
        conn.sendall(data)
        client_port = conn.getpeername()[1]
        deadline = time.monotonic() + 20
        while (socket_queues(port, client_port)[0], socket_queues(client_port, port)[1]) != (0, 0):
            assert time.monotonic() < deadline, "the runtime never read what was sent"
            time.sleep(0.001)

    def serve() -> None:
        for _ in range(2):  # a second connection, once the first post or /next was cut
            conn, _ = listener.accept()
            with conn:
                if not serve_connection(conn):
                    return

    def serve_connection(conn: socket_module.socket) -> bool:
        """Whether the runtime is to connect again (its post was cut)."""
        buffer = b""
        while True:
            while b"\r\n\r\n" not in buffer:
                chunk = conn.recv(65536)
                if not chunk:
                    return False
                buffer += chunk
            head, _, buffer = buffer.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
            while len(buffer) < length:
                buffer += conn.recv(65536)
            body, buffer = buffer[:length], buffer[length:]
            if head.startswith(b"GET /runtime/invocation/next"):
                answer_head = (
                    b"HTTP/1.1 200 OK\r\nrequest_id: r-1\r\nContent-Length: %d\r\n\r\n" % len(event)
                )
                polls.append(1)
                if answers or len(polls) > (2 if case == "cut-mid-event" else 1):
                    return False  # no second event: the instance should be on its way out
                if len(polls) == 2:
                    conn.sendall(answer_head + event)  # the cut event, asked for again
                    continue
                if case == "mid-head":
                    send_and_wait_until_read(conn, answer_head[:17])
                    body_begun.set()
                    go_on.wait(10)
                    conn.sendall(answer_head[17:] + event)
                    continue
                # The head alone, read; then part of the body, read too: the runtime reads
                # the body only after the head, so it is now between the two.
                send_and_wait_until_read(conn, answer_head)
                send_and_wait_until_read(conn, event[:10])
                body_begun.set()
                go_on.wait(10)
                if case == "cut-mid-event":
                    # reset, not closed: the event can only be had by asking again
                    conn.setsockopt(
                        socket_module.SOL_SOCKET, socket_module.SO_LINGER, struct.pack("ii", 1, 0)
                    )
                    return True
                conn.sendall(event[10:])
            else:
                if b"/runtime/invocation/" in head:
                    if post_fails_once and not cut:
                        cut.append(head)
                        return True  # closed unanswered: posted again
                    answers.append(head.split(b" ")[1] + b" " + body)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    fake = FakeRuntimeAPI()  # only for the environment helper; its own server stays unused
    env = runtime_env(fake, SCF_RUNTIME_API_PORT=str(port))
    runtime = RuntimeProcess(fake, [app], env=env, wait_ready=False)
    try:
        assert body_begun.wait(30), runtime.output
        runtime.process.send_signal(signal.SIGTERM)
        runtime.wait_output("received SIGTERM; shutting down")  # handled, mid-event
        go_on.set()
        assert runtime.wait_exit(20) == 0
    finally:
        go_on.set()
        runtime.stop()
        listener.close()
        fake.close()
    assert (len(answers), len(cut), len(polls)) == (
        1,
        int(post_fails_once),
        2 if case == "cut-mid-event" else 1,
    )
    path, _, document = answers[0].partition(b" ")
    assert path == b"/runtime/invocation/response"
    assert json.loads(json.loads(document)["body"])["id"] == 5


def test_bad_retry_setting_is_a_clear_error(api: FakeRuntimeAPI) -> None:
    result = run_cli(
        ["run", "flask_app:app"], runtime_env(api, SCF_ASGI_RUNTIME_RETRY_SECONDS="10s")
    )
    assert (result.returncode, result.stderr) == (
        1,
        "scf-asgi: error: SCF_ASGI_RUNTIME_RETRY_SECONDS must be a number of seconds, got '10s'\n",
    )


def test_secrets_are_never_logged(api: FakeRuntimeAPI) -> None:
    secret = "SECRETKEY-7f3a9c-do-not-log"
    token = "SESSIONTOKEN-41b2-do-not-log"
    runtime = start(
        api,
        "fastapi_app:app",
        TENCENTCLOUD_SECRETID="AKID-visible-id",
        TENCENTCLOUD_SECRETKEY=secret,
        TENCENTCLOUD_SESSIONTOKEN=token,
    )
    try:
        api.invoke(gateway_event(path="/boom"))
        api.invoke(b"not json")
        api.invoke(sample_event("timer"))
    finally:
        runtime.stop()
    assert secret not in runtime.output
    assert token not in runtime.output


def test_access_log_can_be_turned_off(api: FakeRuntimeAPI) -> None:
    runtime = start(api, "flask_app:app", "--no-access-log")
    try:
        answer = api.invoke(gateway_event(path="/items/1"))
    finally:
        runtime.stop()
    assert answer.request_id not in runtime.output


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        # logging.getLogger("scf_asgi").setLevel(logging.WARNING): no line per invocation (nor
        # the INFO line on SIGTERM), errors still logged.
        ("quiet", ["[ERROR] {rejected}"]),
        # The app configured logging itself: each line once, in its format, not in scf-asgi's.
        (
            "basic",
            [
                "APP INFO scf_asgi: {first} GET /items/1 200 <ms>",
                "APP INFO scf_asgi: {second} GET /items/2 200 <ms>",
                "APP ERROR scf_asgi: {rejected}",
                "APP INFO scf_asgi: received SIGTERM; shutting down",
            ],
        ),
        # basicConfig() with no level: the root at WARNING, scf-asgi's own lines still at INFO.
        (
            "default",
            [
                "APP INFO scf_asgi: {first} GET /items/1 200 <ms>",
                "APP INFO scf_asgi: {second} GET /items/2 200 <ms>",
                "APP ERROR scf_asgi: {rejected}",
                "APP INFO scf_asgi: received SIGTERM; shutting down",
            ],
        ),
        # Nothing configured: scf-asgi's own format on stdout.
        (
            "",
            [
                "[INFO] {first} GET /items/1 200 <ms>",
                "[INFO] {second} GET /items/2 200 <ms>",
                "[ERROR] {rejected}",
                "[INFO] received SIGTERM; shutting down",
            ],
        ),
    ],
)
def test_logging_configured_by_the_app_is_respected(
    api: FakeRuntimeAPI, setup: str, expected: list[str]
) -> None:
    runtime = start(api, "logging_app:app", LOGGING_SETUP=setup)
    try:
        first = api.invoke(gateway_event(path="/items/1"))
        api.fail_next_posts = [413]  # an ERROR line from scf-asgi
        second = api.invoke(gateway_event(path="/items/2"))
    finally:
        assert runtime.stop() == 0
    rejected = (
        f"request {second.request_id}: POST /runtime/invocation/response answered 413 "
        "(226 bytes posted)"
    )
    lines = [re.sub(r" \d+\.\dms$", " <ms>", line) for line in runtime.output.splitlines()]
    assert lines == [
        line.format(first=first.request_id, second=second.request_id, rejected=rejected)
        for line in expected
    ]


def test_a_broken_stdout_does_not_cost_an_answer(api: FakeRuntimeAPI) -> None:
    # stdout is a pipe nobody reads any more: every access line fails with BrokenPipeError.
    process = subprocess.Popen(
        [sys.executable, "-m", "scf_asgi", "run", "flask_app:app"],
        env=runtime_env(api),
        cwd=str(ROOT / "tests" / "apps"),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdout is not None
    process.stdout.close()
    try:
        assert api.ready.wait(30)
        answers = [api.invoke(gateway_event(path=f"/items/{n}")) for n in (1, 2)]
    finally:
        process.terminate()
        process.wait(20)
    assert [(a.kind, a.json()["statusCode"]) for a in answers] == [("response", 200)] * 2


# -- start-up failures ---------------------------------------------------------------------------


def run_cli(
    args: list[str], env: dict[str, str], timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scf_asgi", *args],
        env=env,
        cwd=ROOT / "tests" / "apps",
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_missing_runtime_variables_fail_at_once_before_importing_the_app() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCF_")}
    env["PYTHONPATH"] = str(ROOT)
    result = run_cli(["run", "import_marker_app:app"], env)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        "scf-asgi: error: SCF_RUNTIME_API and SCF_RUNTIME_API_PORT not set: this is not an SCF "
        "Custom Runtime. To run locally, use `scf-asgi local MODULE:APP` (the platform's "
        "behaviour) or your framework's own server (e.g. `uvicorn module:app`).\n"
    )


def test_unreachable_runtime_api_retries_then_exits_non_zero(api: FakeRuntimeAPI) -> None:
    env = runtime_env(api, SCF_ASGI_RUNTIME_RETRY_SECONDS="0.5")
    env["SCF_RUNTIME_API_PORT"] = "9"  # nothing listens there
    result = run_cli(["run", "flask_app:app"], env)
    assert result.returncode == 1
    assert (
        "runtime API at 127.0.0.1:9 unreachable ([Errno 111] Connection refused); "
        "retrying for up to 0.5s"
    ) in result.stdout
    assert result.stderr.splitlines()[-1].startswith(
        "scf-asgi: error: runtime API at 127.0.0.1:9 unreachable for 0.5s "
        "(POST /runtime/init/ready)"
    )


def test_lifespan_startup_failure_exits_without_ready(api: FakeRuntimeAPI) -> None:
    result = run_cli(
        ["run", "loop_app:app", "--lifespan", "on"], runtime_env(api, FAIL_STARTUP="1")
    )
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        "scf-asgi: error: ASGI lifespan startup failed: RuntimeError: database unreachable"
    )
    assert api.ready_count == 0


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("no_such_module:app", "cannot import module 'no_such_module' (from 'no_such_module:app')"),
        ("flask_app:nope", "module 'flask_app' has no attribute 'nope' (from 'flask_app:nope')"),
        (
            "flask_app",
            "cannot read app reference 'flask_app': expected MODULE:ATTR (or MODULE.ATTR)",
        ),
        ("no_such_package.app:app", "cannot import module 'no_such_package.app'"),
        # The app's own missing dependency, with its traceback, not "cannot import the app".
        ("missing_dependency_app:app", "ModuleNotFoundError: No module named 'missing'\n"),
    ],
)
def test_bad_app_references(api: FakeRuntimeAPI, reference: str, message: str) -> None:
    result = run_cli(["run", reference], runtime_env(api))
    assert result.returncode == 1
    assert message in result.stderr
    assert api.ready_count == 0


# -- the loop's own contract, with plain handler functions ---------------------------------------


def test_loop_answers_every_event_whatever_the_handler_does(api: FakeRuntimeAPI) -> None:
    """`run` takes any handler of the Responder seam: one that raises or gives no answer still
    leaves the event with exactly one answer, an event that is not JSON never reaches it, and
    the loop goes on to the next."""
    import threading

    from scf_asgi.context import Context
    from scf_asgi.errors import RuntimeAPIError
    from scf_asgi.gateway import ResultPayload
    from scf_asgi.runtime import RuntimeClient, run
    from scf_asgi.types import Responder

    seen: list[Any] = []

    def handle(event: Any, context: Context, responder: Responder) -> None:
        seen.append(event)
        if event == "raise":
            raise ValueError("a bug in a handler")
        if event == "answer twice":
            responder.respond(ResultPayload("first"))
            responder.respond(ResultPayload("second"))
        if event == "answer then fail":
            responder.respond(ResultPayload({"answered": "日本"}))
            responder.fail("Oops", "failed too")
        if event == "fail":
            responder.fail("HandlerError", "it went wrong", ValueError("not posted"))
        # anything else: returns without answering

    def complete(pending: Any) -> None:
        raise AssertionError("this handler leaves nothing pending")

    client = RuntimeClient("127.0.0.1", api.port, retry_for=0.2)

    def serve() -> None:
        try:
            run(client, handle, complete)
        except RuntimeAPIError:
            pass  # the fake runtime API closed at the test's end: the loop's way out

    loop = threading.Thread(target=serve, daemon=True)
    loop.start()
    events: tuple[Any, ...] = ("raise", "silent", "answer twice", "answer then fail", "fail")
    answers = [api.invoke(event) for event in events]
    answers.append(api.invoke(b"{not json"))
    # The loop has finished with the last event (and posted all it would) once it asks for the
    # next one.
    api.wait_for(lambda: api.log.count(("GET", "/runtime/invocation/next")) == len(answers) + 1)
    no_answer = (
        "error",
        b'{"errorType": "InternalError", "errorMessage": "scf-asgi: the event got no answer"}',
    )
    assert [(a.kind, a.body) for a in answers] == [
        no_answer,
        no_answer,
        ("response", b'"first"'),
        ("response", '{"answered":"日本"}'.encode()),
        ("error", b'{"errorType": "HandlerError", "errorMessage": "it went wrong"}'),
        (
            "error",
            b'{"errorType": "InvalidEventError", "errorMessage": "the event is not valid JSON: '
            b'Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"}',
        ),
    ]
    assert seen == list(events)
    assert_one_answer_each(api)
    # The loop thread is left in its long poll on /next (a daemon thread; no timeout by design).


# -- what a cold start imports ---------------------------------------------------------------


@pytest.mark.parametrize("app", ["plain_apps:wsgi_app", "plain_apps:asgi_app"])
def test_a_plain_start_imports_only_what_serving_needs(api: FakeRuntimeAPI, app: str) -> None:
    # Each was measured as milliseconds of every cold start: argparse (and shutil and gettext,
    # which an ArgumentParser loads), logging, the idna codec (a host given as text to the
    # socket module), the other commands' modules.
    env = runtime_env(api, PYTHONPROFILEIMPORTTIME="1")
    runtime = RuntimeProcess(api, [app, "--base-path", "/api"], env=env)
    try:
        answer = api.invoke(gateway_event(path="/api/x"))
    finally:
        assert runtime.stop() == 0
    assert answer.kind == "response"
    imported = {
        line.rpartition("|")[2].strip()
        for line in runtime.output.splitlines()
        if line.startswith("import time:")
    }
    assert "scf_asgi.runtime" in imported  # the profile was taken
    unwanted = {
        "argparse",
        "shutil",
        "gettext",
        "encodings.idna",
        "scf_asgi.local",
        "scf_asgi.packaging",
        "scf_asgi.deploy",
        "scf_asgi.web",
    }
    if app.endswith("wsgi_app"):
        unwanted |= {"asyncio", "logging"}  # asyncio imports logging (concurrent.futures)
    assert sorted(imported & unwanted) == []


def test_an_answer_that_cannot_be_encoded_still_answers_the_event(api: FakeRuntimeAPI) -> None:
    from scf_asgi.context import Context
    from scf_asgi.runtime import Invocation, RuntimeClient

    class TooLarge:
        def document(self) -> Any:
            raise AssertionError("not in process")

        def encode(self) -> bytes:
            raise MemoryError  # a body too large for its base64 to fit in memory

    client = RuntimeClient("127.0.0.1", api.port, retry_for=1)
    api.queue_event({"any": "event"})
    _, context = client.next_invocation()
    assert isinstance(context, Context)
    Invocation(client, context.request_id).respond(TooLarge())
    client.close()
    answer = api.wait(api.invocations[-1])
    assert (answer.kind, answer.json()["errorType"]) == ("error", "InternalError")
    assert answer.json()["errorMessage"] == "scf-asgi could not encode the answer: MemoryError()"
