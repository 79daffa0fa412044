"""The emulator's capabilities beyond one gateway request, end to end with real processes and
loopback sockets: `scf-asgi invoke` and `scf-asgi event`, --reload, function URLs, web-function
mode, --instances, the platform's limits (read-only code, environment, init timeout), the
inspector's API, the command line itself."""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from scf_asgi import cli
from scf_asgi.local.command import config_from_args
from scf_asgi.local.config import LocalConfig
from scf_asgi.local.templates import TEMPLATES, template
from scf_asgi.triggers import detect_trigger
from tests.events import SPEC_EVENTS
from tests.local_emulator import APPS, ROOT, Emulator, raw_exchange


def run_cli(
    *args: str, stdin: bytes | None = None, cwd: Path = APPS
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "scf_asgi", *args],
        input=stdin,
        capture_output=True,
        timeout=60,
        cwd=str(cwd),
    )
    return subprocess.CompletedProcess(
        result.args, result.returncode, result.stdout.decode(), result.stderr.decode()
    )


def client(emulator: Emulator) -> httpx.Client:
    return httpx.Client(base_url=emulator.url, timeout=30, trust_env=False)


def latest(emulator: Emulator) -> dict[str, Any]:
    """The inspector's detail of the newest invocation."""
    with client(emulator) as http:
        newest = http.get("/_scf/api/invocations").json()[0]
        detail: dict[str, Any] = http.get(f"/_scf/api/invocations/{newest['seq']}").json()
    return detail


def wait_until(condition: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition never held")
        time.sleep(0.02)


# -- scf-asgi invoke, scf-asgi event ------------------------------------------------------------


@pytest.fixture(scope="module")
def handler_emulator() -> Iterator[Emulator]:
    emu = Emulator("app:app", "--event-handler", "handlers:on_event", "--timeout-ms", "3000")
    yield emu
    emu.stop()


@pytest.mark.parametrize("name", ["timer", "cos", "cmq-topic", "ckafka", "cls"])
def test_invoke_sends_a_sample_event_as_it_is_and_prints_only_the_result(
    handler_emulator: Emulator, name: str
) -> None:
    path = SPEC_EVENTS / f"{name}.json"
    result = run_cli("invoke", "--event", str(path), "--port", str(handler_emulator.port))
    detail = latest(handler_emulator)
    event = json.loads(path.read_bytes())
    assert (result.returncode, result.stderr) == (0, "")
    # One line: the handler's result, as the instance posted it.
    assert result.stdout.count("\n") == 1 and result.stdout.endswith("\n")
    assert json.loads(result.stdout) == {"keys": sorted(event), "request_id": detail["request_id"]}
    assert json.loads(detail["result"]) == json.loads(result.stdout)
    assert json.loads(detail["event"]) == event
    assert (detail["source"], detail["result_kind"], detail["status"]) == (
        "invoke",
        "response",
        200,
    )
    assert ["stdout", f"HANDLER SAW {sorted(event)}\n"] in detail["output"]


def test_invoke_reads_standard_input_and_a_gateway_event_gets_the_app(
    handler_emulator: Emulator,
) -> None:
    event = (SPEC_EVENTS / "apigw-captured-get.json").read_bytes()
    result = run_cli("invoke", "--event", "-", "--port", str(handler_emulator.port), stdin=event)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    request = json.loads(event)
    assert answer["statusCode"] == 404  # app.py knows no such path, and says which
    # (under the stage root path: the sample came through the default gateway domain)
    assert json.loads(answer["body"]) == {
        "error": "not found",
        "path": "/release" + request["path"],
    }


def test_invoke_exits_non_zero_with_the_error_on_stderr(handler_emulator: Emulator) -> None:
    event = json.dumps({"Type": "Timer", "TriggerName": "t", "Message": "fail"}).encode()
    result = run_cli("invoke", "--event", "-", "--port", str(handler_emulator.port), stdin=event)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.startswith("scf-asgi: the invocation failed: {")
    assert "the handler was asked to fail" in result.stderr or "ValueError" in result.stderr


def test_invoke_says_when_nothing_listens() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connections are refused
        result = run_cli("invoke", "--event", "-", "--port", str(port), stdin=b"{}")
    assert result.returncode == 1
    assert result.stderr.startswith(
        f"scf-asgi: error: no `scf-asgi local` answers on 127.0.0.1:{port}"
    )


@pytest.mark.parametrize("kind", list(TEMPLATES))
def test_event_prints_a_template_of_each_trigger_that_invoke_runs(
    handler_emulator: Emulator, kind: str
) -> None:
    printed = run_cli("event", kind)
    assert printed.returncode == 0, printed.stderr
    event = json.loads(printed.stdout)
    expected = {"function-url": "apigateway", "apigw": "apigateway", "cmq": "cmq"}.get(kind, kind)
    assert detect_trigger(event) == expected  # the core recognises it
    result = run_cli(
        "invoke",
        "--event",
        "-",
        "--port",
        str(handler_emulator.port),
        stdin=printed.stdout.encode(),
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    if expected == "apigateway":
        assert (answer["statusCode"], json.loads(answer["body"])["error"]) == (404, "not found")
    else:
        assert answer["keys"] == sorted(event)


def test_function_url_template_has_the_documented_shape() -> None:
    event = json.loads(run_cli("event", "function-url").stdout)
    assert sorted(event) == ["body", "headers", "httpMethod", "path", "queryString"]


# -- the inspector's API ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    emu = Emulator("app:app", "--timeout-ms", "3000")
    yield emu
    emu.stop()


def test_inspector_keeps_the_exact_event_result_and_output(emulator: Emulator) -> None:
    with client(emulator) as http:
        reply = http.post(
            "/release/print", content=b'{"a": 1}', headers={"Content-Type": "application/json"}
        )
        assert reply.status_code == 200
        detail = latest(emulator)
        summaries = http.get("/_scf/api/invocations").json()
    event = json.loads(detail["event"])
    result = json.loads(detail["result"])
    assert detail["event"] == json.dumps(event, indent=2, ensure_ascii=False)
    assert {key: detail[key] for key in ("method", "path", "status", "source", "state")} == {
        "method": "POST",
        "path": "/print",
        "status": 200,
        "source": "http",
        "state": "done",
    }
    assert detail["event_body"] == {"kind": "text", "size": 8, "text": '{"a": 1}'}
    assert result == {
        "isBase64Encoded": False,
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "body": '{"printed": true}',
    }
    assert detail["result_body"] == {"kind": "text", "size": 17, "text": '{"printed": true}'}
    # The instance's output of this invocation, stdout and stderr apart, its access line too.
    lines = [
        line
        for line in detail["output"]
        if "request" not in line[1] or detail["request_id"] in line[1]
    ]
    assert ["stdout", "PRINTED BY THE APP\n"] in lines
    assert ["stderr", "AN ERROR LINE FROM THE APP\n"] in lines
    assert any(
        line[1].startswith(f"[INFO] {detail['request_id']} POST /print 200 ") for line in lines
    )
    assert detail["instance"] == 1 and detail["cold"] in (True, False)
    assert summaries[0]["seq"] == detail["seq"]


def test_inspector_shows_a_binary_body_as_size_and_hex(emulator: Emulator) -> None:
    payload = bytes(range(256)) * 4
    with client(emulator) as http:
        reply = http.post("/echo", content=payload, headers={"Content-Type": "image/png"})
    assert reply.content == payload
    detail = latest(emulator)
    preview = {"kind": "binary", "size": 1024, "hex": bytes(range(64)).hex(" "), "truncated": True}
    assert (detail["event_body"], detail["result_body"]) == (preview, preview)


def test_inspector_path_is_never_forwarded_and_replay_runs_the_exact_event(
    emulator: Emulator,
) -> None:
    with client(emulator) as http:
        http.get("/api/hello?who=replay")
        original = latest(emulator)
        replayed = http.post(
            f"/_scf/api/invocations/{original['seq']}/replay", headers={"Origin": emulator.url}
        )
        assert replayed.status_code == 200
        again = latest(emulator)
        assert http.get("/_scf").status_code == 307  # to /_scf/: the inspector's, not the app's
        assert http.get("/_scf/nothing-here").status_code == 404
    assert again["source"] == "replay" and again["seq"] == original["seq"] + 1
    assert (again["event"], again["event_size"]) == (original["event"], original["event_size"])
    assert json.loads(replayed.content)["body"] == '{"message": "hello replay from scf-asgi local"}'


def test_the_whole_event_is_served_however_large(emulator: Emulator) -> None:
    text = "".join(f"line {n:06d} of a large text body\n" for n in range(10_000))  # 330 KB
    with client(emulator) as http:
        assert http.post("/echo", content=text, headers={"Content-Type": "text/plain"}).text == text
        detail = latest(emulator)
        raw = http.get(f"/_scf/api/invocations/{detail['seq']}/event")
        pretty = http.get(f"/_scf/api/invocations/{detail['seq']}/event?pretty")
        missing = http.get("/_scf/api/invocations/999999/event")
    assert detail["event"].endswith(" more characters not shown)")  # the detail is cut
    document = json.loads(raw.content)
    assert (raw.headers["content-type"], len(raw.content)) == (
        "application/json",
        detail["event_size"],
    )
    assert (document["path"], document["body"]) == ("/echo", text)
    assert pretty.text == json.dumps(document, indent=2, ensure_ascii=False)
    assert (missing.status_code, missing.json()) == (
        404,
        {"error": "no such invocation, or not an event"},
    )


def test_the_inspector_answers_this_machine_and_runs_posts_of_its_own_origin_only(
    emulator: Emulator,
) -> None:
    port = emulator.port
    with client(emulator) as http:
        # The app itself answers any Host, as behind the gateway.
        app = http.get("/json", headers={"Host": f"evil.example:{port}"})
        http.get("/json", headers={"Authorization": "Bearer dev-token-123"})
        seq = latest(emulator)["seq"]
        # What a page of a domain that now resolves to 127.0.0.1 (DNS rebinding) would send.
        rebound = http.get(f"/_scf/api/invocations/{seq}", headers={"Host": f"evil.example:{port}"})
        allowed = [
            http.get("/_scf/api/invocations", headers={"Host": host}).status_code
            for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "10.0.0.7")
        ]
        event = json.dumps(template("apigw")).encode()
        posts = {
            origin: http.post(
                "/_scf/api/invoke",
                content=event,
                headers={"Content-Type": "text/plain", **({"Origin": origin} if origin else {})},
            )
            for origin in ("http://evil.example", None, "null", f"http://localhost:{port}")
        }
        replay = http.post(
            f"/_scf/api/invocations/{seq}/replay", headers={"Origin": "http://evil.example"}
        )
        after = latest(emulator)["seq"]
        own = http.post("/_scf/api/invoke", content=event, headers={"Origin": emulator.url})
    assert (rebound.status_code, rebound.json()) == (
        403,
        {
            "error": "the inspector answers requests for this machine only (an IP address, "
            f"localhost or 127.0.0.1), not for Host 'evil.example:{port}'"
        },
    )
    assert "dev-token-123" not in rebound.text
    assert allowed == [200, 200, 200, 200]
    assert app.status_code == 200
    assert {origin: reply.status_code for origin, reply in posts.items()} == {
        "http://evil.example": 403,
        None: 403,
        "null": 403,
        f"http://localhost:{port}": 403,  # the page was not loaded from localhost
    }
    assert posts[None].json() == {
        "error": f"the inspector runs events posted from its own page only: the Origin must be "
        f"http://127.0.0.1:{port}, got none (scf-asgi invoke sends it)"
    }
    assert replay.status_code == 403
    assert after == seq  # nothing refused was run (or even recorded)
    assert (own.status_code, own.headers["x-scf-result"]) == (200, "response")


def test_one_log_line_per_request(emulator: Emulator) -> None:
    with client(emulator) as http:
        request_id = http.get("/json").json()["request_id"]
        then = http.get("/json").json()["request_id"]

        def read_past_the_first() -> bool:
            # The instance wrote the first request's line before it took the second, and its
            # output is read in order: once the second's line is in, the first's has been too.
            output = http.get(f"/_scf/api/invocations/{latest(emulator)['seq']}").json()["output"]
            return any(line[1].startswith(f"[INFO] {then} ") for line in output)

        wait_until(read_past_the_first)
    assert emulator.wait_output(f"(request {then})")
    lines = [line for line in emulator.lines if request_id in line]
    assert len(lines) == 1, lines
    assert lines[0].startswith('[local] 127.0.0.1 "GET /json" 200 ')


# -- the body limit, streamed ---------------------------------------------------------------------


def test_an_announced_oversized_body_is_refused_before_it_is_sent(emulator: Emulator) -> None:
    head = (
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Length: 7000000\r\nExpect: 100-continue\r\n\r\n"
    )
    answer = raw_exchange(emulator.port, head)  # the body is never sent
    status, _, rest = answer.partition(b"\r\n")
    assert status.startswith(
        b"HTTP/1.1 413 "
    )  # the phrase is Python's: "Content Too Large" in 3.13
    assert b"100 Continue" not in answer
    assert b"\r\nconnection: close\r\n" in rest.lower()


def test_a_chunked_oversized_body_is_drained_then_answered_413(emulator: Emulator) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(7):
            yield b"\x00" * (1024 * 1024)

    with client(emulator) as http:
        reply = http.post(
            "/echo", content=chunks(), headers={"Content-Type": "application/octet-stream"}
        )
        assert reply.status_code == 413
        assert reply.json()["error"].startswith(
            "request entity too large: the body is 7340032 bytes"
        )
        assert http.get("/api/hello").status_code == 200  # the same connection goes on


# -- function URLs --------------------------------------------------------------------------------


def test_function_url_events_have_no_request_context_and_the_client_in_x_forwarded_for() -> None:
    emu = Emulator("app:app", "--trigger", "function-url")
    try:
        with client(emu) as http:
            body = b'{"name": "widget"}'
            reply = http.post(
                "/json?tag=a&tag=b",
                content=body,
                headers={"Content-Type": "application/json", "X-Forwarded-For": "198.51.100.23"},
            )
            sent = reply.request.headers
            http.get("/release/json")
            staged = latest(emu)
    finally:
        emu.stop()
    assert reply.status_code == 200, reply.text
    data = reply.json()
    expected_headers = {
        name.lower(): value
        for name, value in sent.items()
        if name.lower() not in ("connection", "x-forwarded-for")
    }
    expected_headers.update(
        {"x-forwarded-for": "198.51.100.23, 127.0.0.1", "x-forwarded-proto": "http"}
    )
    assert data["event"] == {
        "headers": dict(sorted(expected_headers.items())),
        "httpMethod": "POST",
        "path": "/json",
        "queryString": {"tag": ["a", "b"]},
        "body": body.decode(),
    }
    assert json.loads(staged["event"])["path"] == "/release/json"  # no stage: the path is whole
    assert (data["path"], data["root_path"]) == ("/json", "")  # what the app saw: no stage


def test_the_app_behind_a_function_url_sees_the_first_x_forwarded_for_hop_as_its_client() -> None:
    # The core's reading of an event without requestContext (spec, section 1b).
    emu = Emulator("app:app", "--trigger", "function-url")
    try:
        with client(emu) as http:
            forwarded = http.get("/json", headers={"X-Forwarded-For": "198.51.100.23"}).json()
            direct = http.get("/json").json()
    finally:
        emu.stop()
    assert (forwarded["client"], direct["client"]) == (["198.51.100.23", 0], ["127.0.0.1", 0])


# -- --reload -------------------------------------------------------------------------------------

RELOAD_APP = """
import os

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = ("{version} " + str(os.getpid())).encode()
    await send({{"type": "http.response.start", "status": 200, "headers": []}})
    await send({{"type": "http.response.body", "body": body}})
"""


def test_reload_restarts_on_a_change_and_a_broken_app_waits_for_the_fix(tmp_path: Path) -> None:
    module = tmp_path / "reload_app.py"
    module.write_text(RELOAD_APP.format(version="one"))
    emu = Emulator("reload_app:app", "--reload", cwd=tmp_path)
    try:
        with client(emu) as http:
            first = http.get("/").text.split()
            assert first[0] == "one"
            module.write_text(RELOAD_APP.format(version="two"))
            assert emu.wait_output("change detected in reload_app.py; restarting")
            second = http.get("/").text.split()
            assert second[0] == "two" and second[1] != first[1]

            module.write_text("raise RuntimeError('broken on purpose')\n")
            assert emu.wait_output("RuntimeError: broken on purpose")  # its traceback
            assert emu.wait_output("waiting for a change to the code to start it again")
            waiting = "waiting for a change to the code to start it again"
            assert emu.output.count(waiting) == 1  # the restart's own attempt
            held: list[httpx.Response] = []
            waiter = threading.Thread(target=lambda: held.append(http.get("/")), daemon=True)
            waiter.start()
            # The request tries once, fails, and waits for the fix rather than getting a 502.
            wait_until(lambda: emu.output.count(waiting) == 2)
            assert held == []  # (a 502 would also show in the last assert)
            summaries = http.get("/_scf/api/invocations").json()
            assert (summaries[0]["path"], summaries[0]["state"]) == ("/", "queued")
            module.write_text(RELOAD_APP.format(version="three"))
            waiter.join(30)
    finally:
        emu.stop()
    assert [(reply.status_code, reply.text.split()[0]) for reply in held] == [(200, "three")]


def test_reload_takes_a_fix_saved_while_a_cold_start_still_fails(tmp_path: Path) -> None:
    module = tmp_path / "slow_broken.py"
    module.write_text(
        "import time\nprint('IMPORTING', flush=True)\ntime.sleep(3)\nraise RuntimeError('broken')\n"
    )
    emu = Emulator("slow_broken:app", "--reload", cwd=tmp_path)
    held: list[httpx.Response] = []
    try:
        assert emu.wait_output("waiting for a change to the code to start it again", 20)
        with client(emu) as http:
            waiter = threading.Thread(target=lambda: held.append(http.get("/")), daemon=True)
            waiter.start()
            # The request's own cold start imports the broken code for 3 s: the fix lands
            # (and is seen) before that attempt fails.
            wait_until(lambda: emu.output.count("IMPORTING") == 2)
            module.write_text(RELOAD_APP.format(version="fixed"))
            assert emu.wait_output("change detected in slow_broken.py")
            waiter.join(25)
    finally:
        emu.stop()
    # The fix was seen while the request's attempt ran (its failure, the last, came after).
    assert emu.output.index("change detected") < emu.output.rindex("exited with code 1 during")
    assert [(reply.status_code, reply.text.split()[0]) for reply in held] == [(200, "fixed")]


def test_a_request_waiting_for_a_fix_gets_503_at_shutdown(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("raise RuntimeError('broken on purpose')\n")
    emu = Emulator("broken:app", "--reload", cwd=tmp_path)
    held: list[httpx.Response] = []
    waiting = "waiting for a change to the code to start it again"
    try:
        assert emu.wait_output(waiting)
        with client(emu) as http:
            waiter = threading.Thread(target=lambda: held.append(http.get("/")), daemon=True)
            waiter.start()
            wait_until(lambda: emu.output.count(waiting) == 2)  # the request's own attempt
            emu.process.send_signal(signal.SIGTERM)
            code = emu.process.wait(30)
            waiter.join(10)
    finally:
        emu.stop()
    assert code == 0
    assert [(reply.status_code, reply.json()) for reply in held] == [
        (503, {"errno": 503, "error": "the emulator is shutting down"})
    ]
    assert "Traceback (most recent call last):\n  File" not in emu.output.split("shutting down")[1]


SLOW_SHUTDOWN_APP = """
import asyncio, os

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({{"type": "lifespan.startup.complete"}})
            else:
                await asyncio.sleep(2)  # a slow shutdown (a pool closed, say)
                print("SHUT DOWN", os.getpid(), flush=True)
                await send({{"type": "lifespan.shutdown.complete"}})
                return
    await asyncio.sleep(0.5)  # two requests at once are on two instances
    body = ("{version} " + str(os.getpid())).encode()
    await send({{"type": "http.response.start", "status": 200, "headers": []}})
    await send({{"type": "http.response.body", "body": body}})
"""


def test_reload_with_instances_stops_only_the_processes_of_the_old_code(tmp_path: Path) -> None:
    module = tmp_path / "slow_stop.py"
    module.write_text(SLOW_SHUTDOWN_APP.format(version="one"))
    emu = Emulator("slow_stop:app", "--reload", "--instances", "2", cwd=tmp_path)
    replies: list[list[str]] = []

    def call_both() -> list[list[str]]:
        with client(emu) as http:
            got: list[httpx.Response] = []
            calls = [threading.Thread(target=lambda: got.append(http.get("/"))) for _ in "AB"]
            for call in calls:
                call.start()
            for call in calls:
                call.join(30)
        return sorted([str(reply.status_code), *reply.text.split()] for reply in got)

    try:
        assert emu.wait_output("[instance 1] the function instance is ready", 20)  # prewarmed
        started = "[instance 1] cold start: started the function instance, pid "
        old_pid = emu.output.split(started)[1].split()[0]
        module.write_text(SLOW_SHUTDOWN_APP.format(version="two"))
        # The watcher stops instance 1 (2 s); meanwhile one request takes instance 1, the
        # other instance 2 (never started), which it starts on the new code.
        assert emu.wait_output("[instance 1] [INFO] received SIGTERM", 10)
        replies = call_both()
        time.sleep(1)  # the watcher has gone on from instance 1 to instance 2
        again = call_both()
        after = emu.output.split("change detected")[1]
    finally:
        emu.stop()
    assert [reply[:2] for reply in replies] == [["200", "two"], ["200", "two"]]
    assert again == replies  # the same two processes, both still serving
    starts = [line.split(": started")[0] for line in after.splitlines() if "cold start" in line]
    assert sorted(starts) == [
        "[local] [instance 1] cold start #2",
        "[local] [instance 2] cold start",
    ]
    # One SIGTERM, to the old process, whose shutdown ran to its end.
    assert after.count("received SIGTERM") == 1
    assert f"[instance 1] SHUT DOWN {old_pid}\n" in after
    assert "exited with code" not in after


# -- --instances ------------------------------------------------------------------------------


def test_concurrent_requests_go_to_up_to_n_instances_each_one_at_a_time() -> None:
    emu = Emulator("app:app", "--instances", "2")
    try:
        results: list[dict[str, Any]] = []

        def call() -> None:
            with client(emu) as http:
                results.append(http.get("/sleep?s=0.8").json())

        threads = [threading.Thread(target=call) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        with client(emu) as http:
            summaries = http.get("/_scf/api/invocations").json()
    finally:
        emu.stop()
    assert len(results) == 3
    assert len({r["pid"] for r in results}) == 2  # two instances, the third request waited
    spans = sorted(r["span"] for r in results)
    assert spans[1][0] < spans[0][1]  # the first two side by side
    by_pid: dict[int, list[list[float]]] = {}
    for r in results:
        by_pid.setdefault(r["pid"], []).append(r["span"])
    for pid_spans in by_pid.values():  # each instance one event at a time
        pid_spans.sort()
        assert all(a[1] <= b[0] for a, b in zip(pid_spans, pid_spans[1:]))
    sleeps = [s for s in summaries if s["path"] == "/sleep"]
    assert sorted(s["instance"] for s in sleeps) in ([1, 1, 2], [1, 2, 2])
    assert sorted((s["instance"], s["cold"]) for s in sleeps if s["cold"]) in (
        [(2, True)],
        [(1, True), (2, True)],
    )
    assert "[instance 2] " in emu.output  # the instances' output is labelled


# -- platform limits ------------------------------------------------------------------------------


def test_the_code_directory_is_read_only_and_tmp_is_writable(
    emulator: Emulator, tmp_path: Path
) -> None:
    inside = APPS / "written-by-the-app.txt"
    outside = tmp_path / "scratch.txt"
    with client(emulator) as http:
        refused = http.get("/write", params={"path": str(inside)}).json()
        allowed = http.get("/write", params={"path": str(outside)}).json()
    assert refused == {
        "written": False,
        "errno": 30,
        "error": f"[Errno 30] Read-only file system: '{inside}'",
    }
    assert allowed == {"written": True}
    assert not inside.exists()


def test_writable_code_lets_the_instance_write(tmp_path: Path) -> None:
    emu = Emulator("app:app", "--writable-code")
    target = APPS / "written-by-the-app.txt"
    try:
        with client(emu) as http:
            assert http.get("/write", params={"path": str(target)}).json() == {"written": True}
    finally:
        emu.stop()
        target.unlink(missing_ok=True)


def test_the_instance_environment_is_the_platforms_with_placeholder_credentials() -> None:
    emu = Emulator(
        "app:app",
        "--env",
        "GREETING=hello",
        "--function-name",
        "orders",
        TENCENTCLOUD_SECRETID="AKIDTHEDEVELOPERSOWN",
        TENCENTCLOUD_SECRETKEY="the-developers-own-key",
        SCF_NAMESPACE="from-the-shell",
    )
    try:
        with client(emu) as http:
            environ = http.get("/environ").json()
    finally:
        emu.stop()
    port = environ.pop("SCF_RUNTIME_API_PORT")
    assert port.isdigit()
    assert environ == {
        "GREETING": "hello",
        "SCF_FUNCTIONNAME": "orders",
        "SCF_FUNCTIONVERSION": "$LATEST",
        "SCF_NAMESPACE": "default",
        "SCF_RUNTIME": "CustomRuntime",
        "SCF_RUNTIME_API": "127.0.0.1",
        "TENCENTCLOUD_APPID": "1250000000",
        "TENCENTCLOUD_REGION": "ap-guangzhou",
        "TENCENTCLOUD_RUNENV": "SCF",
        "TENCENTCLOUD_SECRETID": "AKIDLOCALPLACEHOLDER",
        "TENCENTCLOUD_SECRETKEY": "local-placeholder-secret-key",
        "TENCENTCLOUD_SESSIONTOKEN": "local-placeholder-session-token",
        "TENCENTCLOUD_UIN": "100000000001",
    }


# -- web-function mode ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def web() -> Iterator[Emulator]:
    emu = Emulator(
        "--web",
        "--bootstrap",
        str(APPS / "scf_bootstrap"),
        "--timeout-ms",
        "1500",
        cwd=ROOT,
        PYTHON=sys.executable,
    )
    yield emu
    emu.stop()


def test_web_mode_proxies_http_to_the_scf_bootstrap_on_port_from_the_environment(
    web: Emulator,
) -> None:
    with client(web) as http:
        reply = http.get("/info?x=1", headers={"X-Custom": "v"})
        payload = os.urandom(100_000)
        echo = http.post("/echo", content=payload)
    assert reply.status_code == 200, reply.text
    info = reply.json()
    headers = dict(info["headers"])
    assert info["port"].isdigit() and int(info["port"]) != web.port
    assert (info["method"], info["path"], info["query"]) == ("GET", "/info", {"x": ["1"]})
    assert headers["x-custom"] == "v"
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["host"] == f"127.0.0.1:{web.port}"
    assert echo.content == payload
    # The address the function's server is to bind: the loopback one, so that only the front
    # door (and its limits) can reach it (`scf-asgi web` reads the variable).
    assert info["web_host"] == "127.0.0.1"


@pytest.mark.parametrize(
    ("request_args", "status", "error_type"),
    [
        ({"url": "/info", "headers": {"X-Big": "v" * 4100}}, 431, "HeaderTooLarge"),
        ({"url": "/" + "p" * 4100}, 414, "PathTooLong"),
        ({"url": "/echo", "content": b"\x00" * (6 * 1024 * 1024 + 1)}, 413, "BodyTooLarge"),
        ({"url": "/big-headers"}, 502, "ResponseHeaderTooLarge"),
        ({"url": "/big-body"}, 502, "ResponseTooLarge"),
    ],
)
def test_web_mode_enforces_the_platforms_limits(
    web: Emulator, request_args: dict[str, Any], status: int, error_type: str
) -> None:
    method = "POST" if "content" in request_args else "GET"
    with client(web) as http:
        reply = http.request(method, **request_args)
        after = http.get("/info")
    assert (reply.status_code, reply.headers["X-Scf-Error-Type"]) == (status, error_type)
    assert len(reply.headers["X-Scf-Request-Id"]) == 36
    assert after.status_code == 200


@pytest.fixture(scope="module")
def scf_web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """A web function served by `scf-asgi web`, as the scf_bootstrap of `scf-asgi package
    --web` starts it."""
    bootstrap = tmp_path_factory.mktemp("web") / "scf_bootstrap"
    bootstrap.write_text(
        f"#!/bin/sh\ncd {shlex.quote(str(APPS))}\n"
        f"exec {shlex.quote(sys.executable)} -m scf_asgi web web_app:app\n"
    )
    bootstrap.chmod(0o755)
    emu = Emulator("--web", "--bootstrap", str(bootstrap), cwd=ROOT)
    yield emu
    emu.stop()


def test_web_mode_sends_its_own_request_id_logs_one_line_and_one_date(scf_web: Emulator) -> None:
    with client(scf_web) as http:
        reply = http.get("/info", headers={"X-Scf-Request-Id": "chosen-by-the-client"})
    request_id = latest(scf_web)["request_id"]
    seen = [value for name, value in reply.json()["headers"] if name == "x-scf-request-id"]
    assert seen == [request_id]  # the platform's, the client's dropped
    assert len(reply.headers.get_list("date")) == 1
    # The function's server logs the request with its id; the emulator keeps that line in the
    # inspector and writes its own, one per request, to the terminal.

    def access_lines() -> list[str]:
        return [text for _, text in latest(scf_web)["output"] if request_id in text]

    wait_until(lambda: access_lines() != [])
    assert [line.partition(f" {request_id} ")[2] for line in access_lines()] == [
        '127.0.0.1:0 "GET /info HTTP/1.1" 200 OK\n'
    ]
    assert scf_web.wait_output(f"(request {request_id})")
    lines = [line for line in scf_web.lines if request_id in line]
    assert len(lines) == 1, lines
    assert lines[0].startswith('[local] 127.0.0.1 "GET /info" 200 ')


def test_web_mode_times_out_kills_and_restarts(web: Emulator) -> None:
    with client(web) as http:
        pid = http.get("/info").json()["pid"]
        reply = http.get("/sleep?s=10")
        after = http.get("/info").json()["pid"]
    assert (reply.status_code, reply.headers["X-Scf-Error-Type"]) == (502, "FunctionTimeout")
    assert after != pid


def test_web_mode_takes_no_events(web: Emulator) -> None:
    result = run_cli("invoke", "--event", str(SPEC_EVENTS / "timer.json"), "--port", str(web.port))
    assert result.returncode == 1
    assert "a web function takes HTTP requests only" in result.stderr


# -- the command line ---------------------------------------------------------------------------


def test_every_flag_of_local_has_help() -> None:
    parser = cli.build_parser()
    commands = next(a for a in parser._actions if a.dest == "command")
    for name in ("local", "invoke", "event"):
        sub = commands.choices[name]  # type: ignore[index]
        missing = [a.option_strings or a.dest for a in sub._actions if not a.help]
        assert missing == [], name
    local = commands.choices["local"]  # type: ignore[index]
    flags = {flag for action in local._actions for flag in action.option_strings}
    assert {"--event-handler", "--no-access-log", "--reload", "--instances", "--web"} <= flags


def local_config(*words: str) -> dict[str, Any]:
    """The settings `scf-asgi local WORDS` runs with."""
    return vars(config_from_args(cli.build_parser().parse_args(["local", *words])))


def test_the_flags_map_onto_local_config_and_its_defaults() -> None:
    assert local_config("app:app") == vars(LocalConfig(app="app:app"))
    given = local_config(
        "app:app",
        "--host=0.0.0.0",
        "--port=9001",
        "--trigger=function-url",
        "--stage=prod",
        "--bootstrap=./bootstrap",
        "--web",
        "--handler=app.app",
        "--instances=3",
        "--timeout-ms=900",
        "--memory-mb=512",
        "--init-timeout-ms=1000",
        "--host-header=example.com",
        "--function-name=orders",
        "--region=ap-shanghai",
        "--env=A=1",
        "--env=B=x=y",
        "--reload",
        "--writable-code",
        "--no-inspector",
        "--history=7",
        "--no-access-log",
        "--base-path=/api",
    )
    assert given == vars(
        LocalConfig(
            app="app:app",
            handler="app.app",
            host="0.0.0.0",
            port=9001,
            stage="prod",
            trigger="function-url",
            bootstrap="./bootstrap",
            web=True,
            instances=3,
            timeout_ms=900,
            memory_mb=512,
            init_timeout_ms=1000,
            host_header="example.com",
            function_name="orders",
            region="ap-shanghai",
            environment={"A": "1", "B": "x=y"},
            reload=True,
            read_only=False,
            inspector_path=None,
            history=7,
            access_log=False,
            run_args=["--base-path", "/api", "--no-access-log"],
        )
    )
    assert local_config("app:app", "--inspector-path=/debug")["inspector_path"] == "/debug"


def test_inspector_path_and_history_are_honoured() -> None:
    emu = Emulator("app:app", "--inspector-path", "/debug/inspect/", "--history", "2")
    try:
        with client(emu) as http:
            for who in ("one", "two", "three"):
                http.get("/api/hello", params={"who": who})
            kept = http.get("/debug/inspect/api/invocations").json()
            dropped = http.get("/debug/inspect/api/invocations/1")
            page = http.get("/debug/inspect/")
            to_the_app = http.get("/_scf/api/invocations")  # the default path is the app's now
        invoked = run_cli(
            "invoke",
            "--event",
            "-",
            "--port",
            str(emu.port),
            "--inspector-path",
            "/debug/inspect",
            stdin=json.dumps(template("apigw")).encode(),
        )
    finally:
        emu.stop()
    assert [summary["seq"] for summary in kept] == [3, 2]
    assert dropped.status_code == 404
    assert 'data-root="/debug/inspect"' in page.text
    assert (to_the_app.status_code, to_the_app.json()) == (
        404,
        {"error": "not found", "path": "/_scf/api/invocations"},
    )
    assert (invoked.returncode, json.loads(invoked.stdout)["statusCode"]) == (0, 404)
    assert "invocation inspector: http://127.0.0.1:" in emu.output
    assert "/debug/inspect/\n" in emu.output


def test_no_inspector_forwards_every_path_to_the_app() -> None:
    emu = Emulator("app:app", "--no-inspector")
    try:
        with client(emu) as http:
            reply = http.get("/_scf/api/invocations")
        invoked = run_cli(
            "invoke", "--event", "-", "--port", str(emu.port), stdin=b'{"Type": "Timer"}'
        )
    finally:
        emu.stop()
    assert (reply.status_code, reply.json()) == (
        404,
        {"error": "not found", "path": "/_scf/api/invocations"},
    )
    assert emu.wait_output('"GET /_scf/api/invocations" 404')
    assert "invocation inspector" not in emu.output
    assert invoked.returncode == 1
    assert invoked.stderr == (
        f"scf-asgi: 127.0.0.1:{emu.port} has no inspector at /_scf (started with "
        "--no-inspector or another --inspector-path?)\n"
    )


def test_version() -> None:
    from scf_asgi import __version__

    result = run_cli("--version")
    assert (result.returncode, result.stdout) == (0, f"scf-asgi {__version__}\n")


def test_the_cli_works_without_the_local_extra() -> None:
    # As on a deployed function, where only scf-asgi itself is installed.
    code = textwrap.dedent(
        """
        import sys
        for name in ("uvicorn", "starlette", "watchfiles", "httpx"):
            sys.modules[name] = None  # importing it now fails, as when it is not installed
        from scf_asgi import cli
        import scf_asgi.local, scf_asgi.local.command
        try:
            cli.main(["--help"])
        except SystemExit as exc:
            assert exc.code == 0
        print("STATUS", cli.main(["local", "app:app"]))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=str(APPS)
    )
    assert result.returncode == 0, result.stderr
    assert "local" in result.stdout and "invoke" in result.stdout and "event" in result.stdout
    assert result.stdout.endswith("STATUS 1\n")
    assert result.stderr == (
        "scf-asgi: error: `scf-asgi local` needs uvicorn, starlette, httpx, which is not "
        "installed: pip install 'scf-asgi[local]'\n"
    )


def test_no_handler_warning_for_a_bootstrap_that_names_its_app() -> None:
    emu = Emulator(
        "--bootstrap",
        str(ROOT / "examples" / "fastapi_app" / "bootstrap"),
        cwd=ROOT,
        PYTHON=sys.executable,
    )
    try:
        with client(emu) as http:
            reply = http.get("/")
    finally:
        emu.stop()
    assert reply.status_code == 200
    assert "warning" not in emu.output.lower()


def test_a_bootstrap_without_an_app_gets_the_handler_hint(tmp_path: Path) -> None:
    bootstrap = tmp_path / "bootstrap"
    bootstrap.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -m scf_asgi run\n")
    bootstrap.chmod(0o755)
    emu = Emulator("--bootstrap", str(bootstrap), cwd=tmp_path)
    try:
        with client(emu) as http:
            reply = http.get("/")
    finally:
        emu.stop()
    assert reply.status_code == 502
    assert reply.json()["error"].endswith(
        "the instance got no _HANDLER: if the bootstrap runs `scf-asgi run` without an app, "
        "give the handler setting with --handler MODULE.ATTR"
    )
    assert "no app given: pass MODULE:ATTR or set _HANDLER" in emu.output


def test_make_demo_installs_only_what_the_demo_needs_and_takes_a_port() -> None:
    result = subprocess.run(
        ["make", "-n", "-B", "demo", "PORT=9123", "DEMO_VENV=/nonexistent/venv"],
        capture_output=True,
        text=True,
        cwd=str(ROOT),
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert "--port 9123" in result.stdout
    assert 'pip install -q -e ".[local]" -r examples/fastapi_app/requirements.txt' in result.stdout
    assert "[dev" not in result.stdout and "frameworks" not in result.stdout


def test_web_mode_head_keeps_the_servers_length(web: Emulator) -> None:
    with client(web) as http:
        got = http.get("/fixed")
        head = http.head("/fixed")
    assert (got.status_code, got.headers["content-length"], len(got.content)) == (200, "1000", 1000)
    assert (head.status_code, head.headers["content-length"], head.content) == (200, "1000", b"")
