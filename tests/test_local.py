"""`scf-asgi local`: the inverse translation as pure functions, then the emulator end to end
(real processes, real loopback sockets) and one real browser going through it."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import http.client
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from scf_asgi import cli
from scf_asgi.gateway import request_from_event
from scf_asgi.local import (
    MALFORMED_BODY,
    IntegrationFormatError,
    event_from_http,
    function_url_event_from_http,
    http_from_integration,
)
from scf_asgi.local.runtime_api import (
    Channel,
    Invocation,
    RuntimeAPI,
    runtime_api_app,
    tagging_protocol,
)
from scf_asgi.local.translate import body_view
from tests.events import sample_event
from tests.local_emulator import APPS, CHROMIUM, ROOT, Emulator, Reply, raw_exchange
from tests.runtime_api import FakeRuntimeAPI

# -- event_from_http / http_from_integration: pure ---------------------------------------------


def test_event_from_http_get_strips_stage_and_keeps_repeated_query_keys() -> None:
    event = event_from_http(
        "get",
        "/release/items/42?q=hello%20world&page=2&tag=a&tag=b&flag",
        [
            ("Host", "127.0.0.1:8000"),
            ("User-Agent", "curl/8"),
            ("Accept", "*/*"),
            ("Connection", "keep-alive"),
        ],
        b"",
        source_ip="127.0.0.1",
        request_id="5f5b0e0c7b2e4c1f9a1c2d3e4f506172",
    )
    assert event == {
        "headerParameters": {},
        "headers": {
            "accept": "*/*",
            "host": "127.0.0.1:8000",
            "user-agent": "curl/8",
            "x-anonymous-consumer": "true",
            "x-api-requestid": "5f5b0e0c7b2e4c1f9a1c2d3e4f506172",
            "x-b3-traceid": "5f5b0e0c7b2e4c1f9a1c2d3e4f506172",
            "x-forwarded-proto": "http",
            "x-qualifier": "$DEFAULT",
        },
        "httpMethod": "GET",
        "path": "/items/42",
        "pathParameters": {},
        "queryString": {"q": "hello world", "page": "2", "tag": ["a", "b"], "flag": ""},
        "queryStringParameters": {},
        "requestContext": {
            "httpMethod": "ANY",
            "identity": {},
            "path": "/",
            "serviceId": "service-local",
            "sourceIp": "127.0.0.1",
            "stage": "release",
        },
    }


def test_event_from_http_binary_body_goes_as_base64() -> None:
    body = bytes([0, 1, 2, 3, 254, 255, 128, 129])
    event = event_from_http(
        "PUT",
        "/upload",
        [
            ("Host", "service-k0fbs6ox-1259160091.gz.apigw.tencentcs.com"),
            ("Content-Type", "application/octet-stream"),
            ("Content-Length", "8"),
        ],
        body,
        source_ip="203.0.113.7",
        request_id="r1",
        service_id="service-k0fbs6ox",
        forwarded_proto=None,
    )
    assert event == {
        "headerParameters": {},
        "headers": {
            "content-length": "8",
            "content-type": "application/octet-stream",
            "host": "service-k0fbs6ox-1259160091.gz.apigw.tencentcs.com",
            "x-anonymous-consumer": "true",
            "x-api-requestid": "r1",
            "x-b3-traceid": "r1",
            "x-qualifier": "$DEFAULT",
        },
        "httpMethod": "PUT",
        "path": "/upload",
        "pathParameters": {},
        "queryString": {},
        "queryStringParameters": {},
        "requestContext": {
            "httpMethod": "ANY",
            "identity": {},
            "path": "/",
            "serviceId": "service-k0fbs6ox",
            "sourceIp": "203.0.113.7",
            "stage": "release",
        },
        "body": "AAECA/7/gIE=",
        "isBase64Encoded": True,
    }


def test_event_from_http_text_body_host_override_and_header_folding() -> None:
    event = event_from_http(
        "POST",
        "/test/release/x?a=%2B1",  # only a *leading* /<stage> is the stage
        [
            ("Host", "127.0.0.1:8000"),
            ("Content-Type", "application/json"),
            ("Transfer-Encoding", "chunked"),
            ("Cookie", "a=1"),
            ("Cookie", "b=2"),
            ("Accept", "text/html"),
            ("ACCEPT", "application/json"),
            ("X-Forwarded-Proto", "https"),
            ("Expect", "100-continue"),
        ],
        '{"name": "é"}'.encode(),
        source_ip="::1",
        request_id="r2",
        stage="test",
        host="service-abc-123.gz.apigw.tencentcs.com",
    )
    assert event == {
        "headerParameters": {},
        "headers": {
            "accept": "text/html, application/json",
            "content-length": str(len('{"name": "é"}'.encode())),
            "content-type": "application/json",
            "cookie": "a=1; b=2",
            "host": "service-abc-123.gz.apigw.tencentcs.com",
            "x-anonymous-consumer": "true",
            "x-api-requestid": "r2",
            "x-b3-traceid": "r2",
            "x-forwarded-proto": "https",
            "x-qualifier": "$DEFAULT",
        },
        "httpMethod": "POST",
        "path": "/release/x",
        "pathParameters": {},
        "queryString": {"a": "+1"},
        "queryStringParameters": {},
        "requestContext": {
            "httpMethod": "ANY",
            "identity": {},
            "path": "/",
            "serviceId": "service-local",
            "sourceIp": "::1",
            "stage": "test",
        },
        "body": '{"name": "é"}',
        "isBase64Encoded": False,
    }


def test_event_from_http_is_the_inverse_of_the_core_translation() -> None:
    body = b"\x00binary\xff"
    event = event_from_http(
        "POST",
        "/release/a%20b/c?x=1&x=2&y=%26%3D",
        [("Host", "127.0.0.1:8000"), ("Content-Type", "image/png")],
        body,
        source_ip="127.0.0.1",
        request_id="r3",
    )
    request = request_from_event(json.loads(json.dumps(event)))
    assert request.method == "POST"
    assert request.path == "/a b/c"
    assert request.root_path == ""  # the Host is not a gateway domain: no /release
    assert request.query_string == b"x=1&x=2&y=%26%3D"
    assert request.body == body
    assert request.scheme == "http"
    assert request.server == ("127.0.0.1", 8000)
    assert request.client == ("127.0.0.1", 0)
    assert event["headers"]["content-type"] == "image/png"
    assert event["path"] == "/a b/c"
    assert event["requestContext"]["stage"] == "release"
    stage_root = event_from_http("GET", "/release", [], b"", source_ip="::1", request_id="r")
    assert stage_root["path"] == "/"


def test_http_from_integration_repeats_list_headers_and_decodes_base64() -> None:
    payload = json.dumps(
        {
            "isBase64Encoded": True,
            "statusCode": 201,
            "headers": {"Content-Type": "image/png", "Set-Cookie": ["a=1", "b=2"]},
            "body": base64.b64encode(b"\x89PNG\x00").decode(),
        }
    ).encode()
    assert http_from_integration(payload) == (
        201,
        [("Content-Type", "image/png"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")],
        b"\x89PNG\x00",
    )
    assert http_from_integration(b'{"statusCode": 204}') == (204, [], b"")


@pytest.mark.parametrize(
    "payload",
    [
        b"hello",
        b"[1, 2]",
        b'"text"',
        b"{}",
        b'{"statusCode": "200"}',
        b'{"statusCode": 200.0}',
        b'{"statusCode": true}',
        b'{"statusCode": 99}',
        b'{"statusCode": 200, "headers": ["a"]}',
        b'{"statusCode": 200, "headers": {"X": 1}}',
        b'{"statusCode": 200, "headers": {"X": ["a", 2]}}',
        b'{"statusCode": 200, "headers": {"X": null}}',
        b'{"statusCode": 200, "headers": {"Bad Name": "a"}}',
        b'{"statusCode": 200, "headers": {"X": "a\\r\\nInjected: 1"}}',
        b'{"statusCode": 200, "body": {"a": 1}}',
        b'{"statusCode": 200, "isBase64Encoded": "yes", "body": ""}',
        b'{"statusCode": 200, "isBase64Encoded": true, "body": "not base64!"}',
    ],
)
def test_http_from_integration_rejects_malformed_results(payload: bytes) -> None:
    with pytest.raises(IntegrationFormatError):
        http_from_integration(payload)


def test_function_url_event_has_no_request_context_and_appends_the_client() -> None:
    event = function_url_event_from_http(
        "post",
        "/release/items?tag=a&tag=b&q=x%20y",
        [
            ("Host", "1250000000-k2b8qv3nrl.ap-guangzhou.tencentscf.com"),
            ("Content-Type", "application/json"),
            ("X-Forwarded-For", "198.51.100.23"),
            ("Connection", "keep-alive"),
            ("Transfer-Encoding", "chunked"),
        ],
        b'{"name": "widget"}',
        source_ip="10.0.0.9",
        forwarded_proto="https",
    )
    assert event == {
        "headers": {
            "content-length": "18",
            "content-type": "application/json",
            "host": "1250000000-k2b8qv3nrl.ap-guangzhou.tencentscf.com",
            "x-forwarded-for": "198.51.100.23, 10.0.0.9",
            "x-forwarded-proto": "https",
        },
        "httpMethod": "POST",
        "path": "/release/items",
        "queryString": {"tag": ["a", "b"], "q": "x y"},
        "body": '{"name": "widget"}',
    }
    # The shape the spec's sample has: the same keys, and the core reads it.
    assert sorted(event) == sorted(sample_event("function-url-post"))
    request = request_from_event(json.loads(json.dumps(event)))
    assert (request.path, request.root_path, request.body) == (
        "/release/items",
        "",
        b'{"name": "widget"}',
    )


def test_function_url_event_binary_body_goes_as_base64_with_the_flag() -> None:
    event = function_url_event_from_http(
        "PUT", "/up", [("Content-Type", "image/png")], b"\x89PNG\x00", source_ip="::1"
    )
    assert (event["body"], event["isBase64Encoded"]) == ("iVBORwA=", True)
    assert event["headers"]["x-forwarded-for"] == "::1"
    assert "isBase64Encoded" not in function_url_event_from_http(
        "POST", "/t", [("Content-Type", "text/plain")], b"hi", source_ip="::1"
    )


@pytest.mark.parametrize(
    ("body", "encoded", "content_type", "view"),
    [
        (None, False, "", None),
        ("", True, "", None),
        ("héllo", False, "", {"kind": "text", "size": 6, "text": "héllo"}),
        ("aMOpbGxv", True, "text/plain", {"kind": "text", "size": 6, "text": "h\u00e9llo"}),
        ("aMOpbGxv", True, "", {"kind": "text", "size": 6, "text": "h\u00e9llo"}),
        (
            "AAECAw==",
            True,
            "",  # no type, and NUL bytes: not shown as text although they are valid UTF-8
            {"kind": "binary", "size": 4, "hex": "00 01 02 03", "truncated": False},
        ),
        (
            "aGk=",
            True,
            "image/png",
            {"kind": "binary", "size": 2, "hex": "68 69", "truncated": False},
        ),
        (
            "not base64!",
            True,
            "",
            {"kind": "invalid", "error": "isBase64Encoded is true but body is not base64"},
        ),
        ({"a": 1}, False, "", {"kind": "text", "size": 8, "text": '{"a": 1}'}),
    ],
)
def test_body_view(body: Any, encoded: bool, content_type: str, view: Any) -> None:
    assert body_view(body, base64_encoded=encoded, content_type=content_type) == view


def test_body_view_previews_only_the_first_bytes() -> None:
    raw = bytes(range(256))
    view = body_view(base64.b64encode(raw).decode(), base64_encoded=True, content_type="image/png")
    assert view == {"kind": "binary", "size": 256, "hex": raw[:64].hex(" "), "truncated": True}


def test_a_connection_of_a_replaced_instance_gets_410_and_never_an_event() -> None:
    # The runtime API tags each connection with the instance generation live when it was
    # accepted; after a restart, the old process's connections are refused.
    api = FakeRuntimeAPI()
    try:
        old = http.client.HTTPConnection("127.0.0.1", api.port, timeout=10)
        old.request("POST", "/runtime/init/ready", b" ")
        assert old.getresponse().read() == b""
        asyncio.run_coroutine_threadsafe(renew(api), api.loop).result(10)
        api.queue_event({"n": 1}, request_id="r1")
        old.request("GET", "/runtime/invocation/next")
        refused = old.getresponse()
        assert (refused.status, json.loads(refused.read())) == (
            410,
            {"error": "this function instance has been replaced"},
        )
        new = http.client.HTTPConnection("127.0.0.1", api.port, timeout=10)
        new.request("GET", "/runtime/invocation/next")
        taken = new.getresponse()
        assert (taken.status, taken.getheader("request_id"), taken.read()) == (
            200,
            "r1",
            b'{"n": 1}',
        )
        old.close()
        new.close()
    finally:
        api.close()


async def renew(api: FakeRuntimeAPI) -> None:
    api.channel.renew()


def test_a_runtime_api_connection_belongs_to_the_socket_it_came_in_on() -> None:
    # Two listening sockets with one port number on two addresses: the port alone cannot
    # tell them apart, the address and port can.
    sockets = []
    for host in ("127.0.0.1", "127.0.0.2"):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, sockets[0].getsockname()[1] if sockets else 0))
        sock.listen(8)
        sockets.append(sock)
    port = sockets[0].getsockname()[1]

    async def scenario() -> tuple[list[int], bytes]:
        first, second = Channel("first"), Channel("second")
        api = RuntimeAPI([first, second])
        api.by_address = {("127.0.0.1", port): first, ("127.0.0.2", port): second}
        server = uvicorn.Server(
            uvicorn.Config(
                runtime_api_app(api),
                http=tagging_protocol(api),
                lifespan="off",
                log_config=None,
                access_log=False,
            )
        )
        serving = asyncio.ensure_future(server.serve(sockets=sockets))
        try:
            first.put(Invocation("r1", b'{"n": 1}', time_limit_ms=3000, memory_limit_mb=128))
            async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
                ready = await http.post(f"http://127.0.0.2:{port}/runtime/init/ready")
                taken = await http.get(f"http://127.0.0.1:{port}/runtime/invocation/next")
            assert (ready.status_code, taken.status_code) == (200, 200)
            return [first.ready_count, second.ready_count], taken.content
        finally:
            server.should_exit = True
            await serving

    try:
        assert asyncio.run(scenario()) == ([0, 1], b'{"n": 1}')
    finally:
        for sock in sockets:
            sock.close()


def test_cli_local_needs_an_app(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["local"]) == 1
    assert "no app given" in capsys.readouterr().err


# -- the emulator as a real process --------------------------------------------------------


@pytest.fixture(scope="module")
def emulator() -> Any:
    emu = Emulator("app:app", "--timeout-ms", "1500", "--memory-mb", "256")
    yield emu
    emu.stop()


def test_json_get_with_query_through_the_stage_url(emulator: Emulator) -> None:
    reply = emulator.request("GET", "/release/json?a=1&a=2&b=x%20y", headers={"X-Custom": "v"})
    assert reply.status == 200, reply.body
    assert reply.headers["Content-Type"] == "application/json"
    data = reply.json()
    event = data["event"]
    assert event["path"] == "/json"
    assert event["httpMethod"] == "GET"
    assert event["queryString"] == {"a": ["1", "2"], "b": "x y"}
    assert event["requestContext"] == {
        "httpMethod": "ANY",
        "identity": {},
        "path": "/",
        "serviceId": "service-local",
        "sourceIp": "127.0.0.1",
        "stage": "release",
    }
    for key in ("headerParameters", "pathParameters", "queryStringParameters"):
        assert event[key] == {}
    assert event["headers"]["host"] == f"127.0.0.1:{emulator.port}"
    assert event["headers"]["x-custom"] == "v"
    assert all(name == name.lower() for name in event["headers"])
    assert "body" not in event
    # What the app saw: the core's reading of that event.
    assert data["path"] == "/json"
    assert data["root_path"] == ""
    assert data["scheme"] == "http"
    assert data["server"] == ["127.0.0.1", emulator.port]
    assert data["query"] == {"a": ["1", "2"], "b": ["x y"]}
    assert data["time_limit_in_ms"] == 1500
    assert data["memory_limit_in_mb"] == 256
    assert re.fullmatch(r"[0-9a-f-]{36}", data["request_id"])
    assert emulator.wait_output(data["request_id"])  # the access log names the invocation
    assert data["env"] == {
        "SCF_FUNCTIONNAME": "scf-asgi-local",
        "SCF_FUNCTIONVERSION": "$LATEST",
        "SCF_NAMESPACE": "default",
        "TENCENTCLOUD_REGION": "ap-guangzhou",
        "TENCENTCLOUD_RUNENV": "SCF",
        "USER_CODE_ROOT": str(APPS) + os.sep,
        "_HANDLER": "app:app",
        "SCF_RUNTIME_API": "127.0.0.1",
    }
    # Without the stage prefix the same app answers too (what a custom domain does).
    assert emulator.request("GET", "/json").json()["path"] == "/json"


def test_binary_post_round_trips_exact_bytes(emulator: Emulator) -> None:
    payload = bytes(range(256)) * 64 + os.urandom(4096)
    reply = emulator.request(
        "POST", "/release/echo", payload, {"Content-Type": "application/octet-stream"}
    )
    assert reply.status == 200
    assert reply.body == payload
    assert reply.headers["X-Event-Base64"] == "True"
    assert reply.headers["Content-Length"] == str(len(payload))


def test_chunked_text_post_travels_as_text(emulator: Emulator) -> None:
    parts = [b'{"greeting": ', '"héllo"}'.encode()]
    reply = emulator.request(
        "POST",
        "/echo",
        iter(parts),
        {"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        encode_chunked=True,
    )
    assert reply.status == 200
    assert reply.body == b"".join(parts)
    assert reply.headers["X-Event-Base64"] == "False"


def test_two_set_cookie_headers_arrive_as_two_headers(emulator: Emulator) -> None:
    reply = emulator.request("GET", "/release/cookies")
    assert reply.status == 200
    assert reply.headers.get_all("Set-Cookie") == [
        "a=1; Path=/; HttpOnly",
        "b=2, with a comma; Path=/",
    ]


def test_redirect_passes_through(emulator: Emulator) -> None:
    reply = emulator.request("GET", "/release/redirect")
    assert reply.status == 302
    assert reply.headers["Location"] == "/release/json?from=redirect"
    assert reply.body == b""


def test_keep_alive_head_and_not_found(emulator: Emulator) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", emulator.port, timeout=20)
    try:
        first = emulator.request("GET", "/nowhere", connection=connection)
        head = emulator.request("HEAD", "/api/hello", connection=connection)
        second = emulator.request("GET", "/api/hello?who=you", connection=connection)
    finally:
        connection.close()
    assert first.status == 404
    assert first.json() == {"error": "not found", "path": "/nowhere"}
    assert head.status == 200
    assert head.body == b""
    assert second.json() == {"message": "hello you from scf-asgi local"}


@pytest.mark.parametrize(("method", "status"), [("GET", 204), ("GET", 304), ("HEAD", 200)])
def test_a_body_the_status_forbids_is_dropped_not_a_crash(
    emulator: Emulator, method: str, status: int
) -> None:
    # A function may well send one (FastAPI's JSONResponse({}, status_code=204)); the gateway
    # drops it, and so must the front door, on a connection that goes on.
    connection = http.client.HTTPConnection("127.0.0.1", emulator.port, timeout=20)
    try:
        reply = emulator.request(method, f"/status?code={status}", connection=connection)
        after = emulator.request("GET", "/api/hello", connection=connection)
    finally:
        connection.close()
    assert (reply.status, reply.body, reply.headers.get_all("X-Sent")) == (status, b"", ["{}"])
    assert after.json() == {"message": "hello world from scf-asgi local"}
    assert "Exception in ASGI application" not in emulator.output


def invocation_count(emulator: Emulator) -> int:
    reply = emulator.request("GET", "/_scf/api/invocations")
    assert reply.status == 200
    return len(reply.json())


# uvicorn's (h11's) answer to a request it cannot parse: the reason is not given to the client
# (the old hand-written server said "malformed chunk size" or "invalid content-length").
H11_REFUSAL = (
    b"HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    b"1e\r\nInvalid HTTP request received.\r\n0\r\n\r\n"
)
H11_HEAD_REFUSAL = (
    b"HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"Connection: close\r\n\r\nInvalid HTTP request received."
)


@pytest.mark.parametrize(
    ("framing", "answer"),
    [
        (b"Transfer-Encoding: chunked\r\n\r\n-1\r\n", H11_REFUSAL),
        (b"Transfer-Encoding: chunked\r\n\r\n1_0\r\n", H11_REFUSAL),
        (b"Content-Length: \xb2\r\n\r\n", H11_HEAD_REFUSAL),  # "\xb2": "²"
    ],
)
def test_malformed_body_framing_is_a_400(emulator: Emulator, framing: bytes, answer: bytes) -> None:
    before = invocation_count(emulator)
    head = b"POST /release/echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    assert raw_exchange(emulator.port, head + framing) == answer
    assert invocation_count(emulator) == before  # the function never saw it


def test_a_raw_non_ascii_path_is_refused_but_an_encoded_one_is_read_as_utf8(
    emulator: Emulator,
) -> None:
    # h11 accepts only visible ASCII in a request target (browsers %-encode the rest); the old
    # hand-written server read raw bytes as UTF-8. The README says so.
    request = b"GET /release/caf\xc3\xa9 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    assert raw_exchange(emulator.port, request) == H11_HEAD_REFUSAL
    request = b"GET /release/caf%C3%A9 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    head, _, body = raw_exchange(emulator.port, request).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 404 Not Found\r\n")
    assert json.loads(body) == {"error": "not found", "path": "/caf\u00e9"}


def test_a_non_ascii_header_value_is_read_as_utf8(emulator: Emulator) -> None:
    request = (
        b"GET /release/json HTTP/1.1\r\nHost: x\r\nX-Name: Zo\xc3\xab\r\nConnection: close\r\n\r\n"
    )
    head, _, body = raw_exchange(emulator.port, request).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert json.loads(body)["event"]["headers"]["x-name"] == "Zo\u00eb"


def test_app_exception_is_a_500_without_details(emulator: Emulator) -> None:
    reply = emulator.request("GET", "/release/boom")
    assert reply.status == 500
    assert b"Traceback" not in reply.body
    assert b"secret" not in reply.body
    # The instance's own output (the traceback) is passed through to the terminal.
    assert emulator.wait_output("RuntimeError: secret detail that must not leak")


def test_instance_output_is_passed_through(emulator: Emulator) -> None:
    assert emulator.request("GET", "/print").status == 200
    assert emulator.wait_output("PRINTED BY THE APP")


def test_timeout_answers_502_kills_and_restarts(emulator: Emulator) -> None:
    pid = emulator.request("GET", "/json").json()["pid"]
    started = time.monotonic()
    reply = emulator.request("GET", "/sleep?s=10")
    elapsed = time.monotonic() - started
    assert reply.status == 502
    assert "timed out" in reply.json()["error"]
    # Not before the 1.5 s function timeout (a slow machine can only make this longer). That
    # it came before the app's own 10 s sleep ended is the 502 itself: the sleep answers 200.
    assert elapsed > 1.4
    assert emulator.wait_output("function timed out after 1500 ms")
    after = emulator.request("GET", "/json")
    assert after.status == 200
    assert after.json()["pid"] != pid
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert emulator.wait_output("cold start #")


def test_host_header_is_the_host_the_app_sees() -> None:
    # A default gateway domain: the app sees the stage as its root path and https, as there.
    domain = "service-abc-123.gz.apigw.tencentcs.com"
    emulator = Emulator("flask_app:app", "--host-header", domain, cwd=ROOT / "tests" / "apps")
    try:
        replies = [emulator.request("GET", path) for path in ("/release/items/3?q=x", "/items/3")]
    finally:
        assert emulator.stop() == 0
    assert [(reply.status, reply.json()) for reply in replies] == [
        (
            200,
            {
                "id": 3,
                "q": ["x"],
                "root": "/release",
                "url": f"https://{domain}/release/items/3?q=x",
                "client": "127.0.0.1",
            },
        ),
        (
            200,
            {
                "id": 3,
                "q": [],
                "root": "/release",
                "url": f"https://{domain}/release/items/3",
                "client": "127.0.0.1",
            },
        ),
    ]


def test_instance_that_dies_is_restarted_on_the_next_request(emulator: Emulator) -> None:
    reply = emulator.request("GET", "/exit")
    assert reply.status == 502
    assert "exited with code 3" in reply.json()["error"]
    assert emulator.request("GET", "/json").status == 200


def test_one_event_at_a_time_requests_queue(emulator: Emulator) -> None:
    emulator.request("GET", "/json")  # a warm instance
    results: list[Reply] = []

    def call() -> None:
        results.append(emulator.request("GET", "/sleep?s=0.4"))

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert [r.status for r in results] == [200, 200]
    assert results[0].json()["pid"] == results[1].json()["pid"]
    # One after the other, not side by side: the second began after the first ended.
    first, second = sorted(r.json()["span"] for r in results)
    assert first[1] <= second[0]


def test_payload_limits(emulator: Emulator) -> None:
    too_big = b"\x00" * (6 * 1024 * 1024 + 1)
    reply = emulator.request("POST", "/echo", too_big, {"Content-Type": "application/octet-stream"})
    assert reply.status == 413
    # Binary grows by a third as base64: the *event* must fit too.
    grows = b"\x00" * (5 * 1024 * 1024)
    reply = emulator.request("POST", "/echo", grows, {"Content-Type": "application/octet-stream"})
    assert reply.status == 413
    big = emulator.request("GET", "/big")  # a 7 MB answer: the runtime API refuses it
    assert big.status == 502
    assert big.json()["errorType"] == "ResponseRejected"
    assert "status 413" in big.json()["errorMessage"]
    assert emulator.request("GET", "/json").status == 200


# -- the runtime API, seen by a hand-written bootstrap ------------------------------------------


@pytest.fixture(scope="module")
def bootstrap_emulator(tmp_path_factory: pytest.TempPathFactory) -> Any:
    directory = tmp_path_factory.mktemp("code")
    bootstrap = directory / "bootstrap"
    script = APPS / "bootstrap_runtime.py"
    bootstrap.write_text(
        f"#!/bin/sh\nexec {shlex.quote(sys.executable)} {shlex.quote(str(script))}\n"
    )
    bootstrap.chmod(0o755)
    # A handler setting in the developer's shell is not the function's: it must not leak.
    emu = Emulator(
        "--bootstrap", str(bootstrap), "--timeout-ms", "2000", cwd=ROOT, _HANDLER="shell.app"
    )
    emu.code_dir = directory  # type: ignore[attr-defined]
    yield emu
    emu.stop()


def test_runtime_api_behaves_as_the_platform(bootstrap_emulator: Emulator) -> None:
    reply = bootstrap_emulator.request("GET", "/probe")
    assert reply.status == 200, reply.body
    report = reply.json()
    headers = report["headers"]
    assert re.fullmatch(r"[0-9a-f-]{36}", headers["request_id"])
    assert headers["memory_limit_in_mb"] == "128"
    assert headers["time_limit_in_ms"] == "2000"
    # Asking again before answering gives the same event.
    assert report["again_status"] == 200
    assert report["again_same_event"] is True
    assert report["again_request_id"] == headers["request_id"]
    assert report["unknown_status"] == 404
    assert report["wrong_method_status"] == 405
    code_dir = str(bootstrap_emulator.code_dir)  # type: ignore[attr-defined]
    assert os.path.realpath(report["cwd"]) == os.path.realpath(code_dir)
    env = report["env"]
    assert env["SCF_RUNTIME_API"] == "127.0.0.1"
    assert env["SCF_RUNTIME_API_PORT"].isdigit()
    assert env["SCF_FUNCTIONVERSION"] == "$LATEST"
    assert env["SCF_NAMESPACE"] == "default"
    assert env["TENCENTCLOUD_RUNENV"] == "SCF"
    assert env["USER_CODE_ROOT"] == os.path.join(code_dir, "")
    assert "_HANDLER" not in env


@pytest.mark.parametrize("path", ["/not-json", "/array", "/string-status", "/bad-header"])
def test_malformed_result_is_the_gateway_error(bootstrap_emulator: Emulator, path: str) -> None:
    reply = bootstrap_emulator.request("GET", path)
    assert reply.status == 502
    assert reply.body == MALFORMED_BODY
    assert reply.json()["errno"] == 403


def test_invocation_error_is_a_502_with_the_error_body(bootstrap_emulator: Emulator) -> None:
    reply = bootstrap_emulator.request("GET", "/error")
    assert reply.status == 502
    assert reply.json() == {"errorMessage": "it broke"}


def test_first_post_wins(bootstrap_emulator: Emulator) -> None:
    reply = bootstrap_emulator.request("GET", "/first-wins")
    assert reply.status == 201
    assert reply.body == b"one"
    assert reply.headers.get_all("Set-Cookie") == ["a=1", "b=2"]
    # The second post did not leak into the next request either.
    assert bootstrap_emulator.request("GET", "/error").json() == {"errorMessage": "it broke"}


# -- initialisation failures -----------------------------------------------------------------


def test_init_failure_is_a_502_and_the_next_request_tries_again() -> None:
    emu = Emulator("no_such_module:app")
    try:
        first = emu.request("GET", "/release/")
        second = emu.request("GET", "/release/")
    finally:
        assert emu.stop() == 0
    for reply in (first, second):
        assert reply.status == 502
        assert "during initialisation" in reply.json()["error"]
    assert "cannot import module 'no_such_module'" in emu.output
    assert "cold start #3" in emu.output  # the start-up one, then one per request


def test_init_timeout_kills_an_instance_that_never_posts_ready(tmp_path: Path) -> None:
    bootstrap = tmp_path / "bootstrap"
    bootstrap.write_text("#!/bin/sh\nexec sleep 30\n")
    bootstrap.chmod(0o755)
    emu = Emulator("--bootstrap", str(bootstrap), "--init-timeout-ms", "300", cwd=ROOT)
    try:
        reply = emu.request("GET", "/")
    finally:
        assert emu.stop() == 0
    assert reply.status == 502
    assert "did not post /runtime/init/ready" in reply.json()["error"]


def test_the_handler_setting_reaches_a_bootstrap_that_names_no_app(tmp_path: Path) -> None:
    bootstrap = tmp_path / "bootstrap"
    bootstrap.write_text(
        f"#!/bin/sh\ncd {shlex.quote(str(APPS))}\n"
        f"exec {shlex.quote(sys.executable)} -m scf_asgi run\n"
    )
    bootstrap.chmod(0o755)
    emu = Emulator("--bootstrap", str(bootstrap), "--handler", "app.app", cwd=tmp_path)
    try:
        reply = emu.request("GET", "/release/json")
    finally:
        emu.stop()
    assert reply.status == 200, reply.body
    assert reply.json()["env"]["_HANDLER"] == "app.app"


def test_cli_local_refuses_a_bootstrap_that_is_not_executable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bootstrap = tmp_path / "bootstrap"
    bootstrap.write_text("#!/bin/sh\n")
    bootstrap.chmod(0o644)
    assert cli.main(["local", "--bootstrap", str(bootstrap)]) == 1
    assert "not executable" in capsys.readouterr().err


# -- shutdown --------------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_everything_cleanly(signum: int) -> None:
    emu = Emulator("app:app")
    try:
        pid = emu.request("GET", "/json").json()["pid"]
        emu.process.send_signal(signum)
        code = emu.process.wait(15)
    finally:
        emu.stop()
    assert code == 0, emu.output
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert "shutting down" in emu.output
    assert "Traceback" not in emu.output


def started_pids(emulator: Emulator) -> list[int]:
    return [
        int(pid) for pid in re.findall(r"started the function instance, pid (\d+)", emulator.output)
    ]


def running(pid: int) -> bool:
    """Whether the process runs (a zombie no longer does: its parent may be slow to reap it)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False
    except OSError:  # no /proc
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


def summaries(emulator: Emulator) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = emulator.request("GET", "/_scf/api/invocations").json()
    return found


def wait_for(condition: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.05)


def test_a_signal_lets_the_invocation_in_flight_answer_and_refuses_the_waiting_one() -> None:
    emu = Emulator("app:app", "--timeout-ms", "20000")
    replies: dict[str, Reply] = {}

    def call(name: str, path: str) -> None:
        replies[name] = emu.request("GET", path)

    try:
        emu.request("GET", "/json")
        threads = [threading.Thread(target=call, args=("in flight", "/sleep?s=2"))]
        threads[0].start()
        wait_for(lambda: [s["state"] for s in summaries(emu)] == ["running", "done"])
        threads.append(threading.Thread(target=call, args=("waiting", "/json")))
        threads[1].start()
        wait_for(lambda: [s["state"] for s in summaries(emu)] == ["queued", "running", "done"])
        emu.process.send_signal(signal.SIGTERM)
        code = emu.process.wait(30)
        for thread in threads:
            thread.join(30)
    finally:
        emu.stop()
    assert code == 0, emu.output
    assert (replies["in flight"].status, replies["in flight"].json()["slept"]) == (200, "2")
    assert (replies["waiting"].status, replies["waiting"].json()) == (
        503,
        {"errno": 503, "error": "the emulator is shutting down"},
    )
    pids = started_pids(emu)
    assert len(pids) == 1, emu.output  # no instance was started for the waiting request
    assert not running(pids[0])
    assert "Traceback" not in emu.output


def test_a_signal_during_a_cold_start_stops_it_and_answers_503(tmp_path: Path) -> None:
    (tmp_path / "slow_app.py").write_text("import time\ntime.sleep(60)\n")
    # Instance 1 is started at once, with no request; the request cold-starts instance 2.
    emu = Emulator("slow_app:app", "--instances", "2", cwd=tmp_path)
    replies: list[Reply] = []
    try:
        waiter = threading.Thread(target=lambda: replies.append(emu.request("GET", "/")))
        waiter.start()
        assert emu.wait_output("[instance 2] cold start: started the function instance")
        assert [s["state"] for s in summaries(emu)] == ["queued"]
        began = time.monotonic()
        emu.process.send_signal(signal.SIGTERM)
        code = emu.process.wait(30)
        took = time.monotonic() - began
        waiter.join(30)
    finally:
        emu.stop()
    assert code == 0, emu.output
    assert [(r.status, r.json()) for r in replies] == [
        (503, {"errno": 503, "error": "the emulator is shutting down"})
    ]
    assert took < 8  # not the function timeout's grace (3 s + 5 s), nor the init timeout
    assert [pid for pid in started_pids(emu) if running(pid)] == []
    assert "Traceback" not in emu.output


@pytest.mark.parametrize("web", [False, True], ids=["event", "web"])
def test_the_instances_die_with_the_emulator_even_when_it_is_killed(
    tmp_path: Path, web: bool
) -> None:
    # A bootstrap that does not exec: the function's process is the shell's child, in the
    # instance's process group. Without help it would outlive a SIGKILLed emulator: a web
    # function's server forever, an event function's runtime until it gives up on the API.
    bootstrap = tmp_path / "bootstrap"
    python = shlex.quote(sys.executable)
    if web:
        serve = f'{python} -m uvicorn web_app:app --host 127.0.0.1 --port "$PORT"'
        args, path = ["--web", "--bootstrap", str(bootstrap)], "/info"
    else:
        serve = f"{python} -m scf_asgi run app:app"
        args, path = ["--bootstrap", str(bootstrap)], "/release/json"
    bootstrap.write_text(f"#!/bin/sh\ncd {shlex.quote(str(APPS))}\n{serve}\n")
    bootstrap.chmod(0o755)
    emu = Emulator(*args, cwd=tmp_path)
    pids: list[int] = []
    try:
        pids = [emu.request("GET", path).json()["pid"], *started_pids(emu)]
        assert len(pids) == 2 and pids[0] != pids[1]  # the function's process, the shell
        emu.process.kill()
        emu.process.wait(10)
        wait_for(lambda: not any(running(pid) for pid in pids), timeout=5)
    finally:
        emu.stop()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


# -- one real browser ------------------------------------------------------------------------


@pytest.mark.skipif(
    not os.path.exists(CHROMIUM) and not os.environ.get("SCF_ASGI_REQUIRE_BROWSER"),
    reason=f"{CHROMIUM} is absent (apt-get install chromium)",
)
def test_a_real_browser_works_through_the_emulator(emulator: Emulator, tmp_path: Path) -> None:
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=10000",
        "--dump-dom",
        f"{emulator.url}/release/page",
    ]
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    result = subprocess.run(command, capture_output=True, timeout=45, env=env)
    dom = result.stdout.decode("utf-8", "replace")
    assert "hello chromium from scf-asgi local" in dom, (dom, result.stderr[-2000:])
    assert emulator.wait_output("GET /release/api/hello?who=chromium")
