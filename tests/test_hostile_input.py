"""Hostile input, through the real Adapter and real apps: a client (or an app) must never get a
control character into a header, and no event may make the adapter raise.

The gateway passes the client's bytes through, so each rule is tried on both interfaces, with
header names met for the first time and again (the adapter remembers the names it has met).
"""

from __future__ import annotations

import base64
import json
import logging
import sys
import tracemalloc
from pathlib import Path
from typing import Any, Callable

import pytest
from flask import Flask, request
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from scf_asgi import Adapter
from tests.events import gateway_event

sys.path.insert(0, str(Path(__file__).parent / "apps"))

import echo_app

# -- apps that show what they were given, and reflect it into their headers -------------------

flask = Flask(__name__)


@flask.route("/", methods=["GET", "POST", "PROPFIND", "M-SEARCH"])
def flask_seen():  # type: ignore[no-untyped-def]
    return {
        "method": request.method,
        "headers": {name.lower(): value for name, value in request.headers.items()},
        "query": request.args.to_dict(flat=False),
    }


@flask.get("/reflect")
def flask_reflect():  # type: ignore[no-untyped-def]
    return "ok", 200, {request.args.get("name", "X-Echo"): request.args.get("value", "")}


async def starlette_seen(request: Request) -> JSONResponse:
    return JSONResponse(
        {
            "method": request.method,
            "headers": {name: ", ".join(request.headers.getlist(name)) for name in request.headers},
            "query": {key: request.query_params.getlist(key) for key in request.query_params},
        }
    )


async def starlette_reflect(request: Request) -> Response:
    name = request.query_params.get("name", "X-Echo")
    return Response("ok", headers={name: request.query_params.get("value", "")})


starlette = Starlette(
    routes=[
        Route("/", starlette_seen, methods=["GET", "POST", "PROPFIND", "M-SEARCH"]),
        Route("/reflect", starlette_reflect),
    ]
)

APPS = {"flask": flask, "starlette": starlette}


@pytest.fixture(params=sorted(APPS))
def adapter(request: pytest.FixtureRequest) -> Any:
    made = Adapter(APPS[request.param])
    yield made
    made.close()


def bad_request(message: str, status: int = 400) -> dict[str, Any]:
    reason = "Bad Request" if status == 400 else "Payload Too Large"
    return {
        "isBase64Encoded": False,
        "statusCode": status,
        "headers": {"Content-Type": "text/plain; charset=utf-8"},
        "body": f"{reason}: {message}",
    }


def seen(response: dict[str, Any]) -> dict[str, Any]:
    assert response["statusCode"] == 200, response
    document: dict[str, Any] = json.loads(response["body"])
    return document


# -- request headers, methods and values -------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "character"),
    [("a\r\nSet-Cookie: pwned=1", "\r"), ("a\nb", "\n"), ("a\x00b", "\x00"), ("\r", "\r")],
)
@pytest.mark.parametrize("name", ["x-evil", "X-Evil-Unseen"])
def test_a_control_character_in_a_header_value_is_a_400(
    adapter: Adapter, name: str, value: str, character: str
) -> None:
    event = gateway_event(headers={name: value})
    for _ in range(2):  # names met before, or not
        assert adapter(gateway_event(headers={name: "clean"}))["statusCode"] == 200
        assert adapter(event) == bad_request(
            f"header {name!r} has a control character ({character!r}) in its value"
        )
    listed = gateway_event(headers={name: ["fine", value]})
    assert adapter(listed)["statusCode"] == 400


def test_other_control_characters_are_passed_on(adapter: Adapter) -> None:
    # RFC 9110, 5.5: CR, LF and NUL MUST be rejected (or replaced); other controls are invalid
    # but MAY be retained where no HTTP parser reads them downstream, as in an app. They split
    # no header, and the log escapes them.
    headers = {"x-tab": "a\tb", "x-bell": "a\x07b", "x-del": "a\x7fb", "x-text": "日本 café"}
    document = seen(adapter(gateway_event(headers=headers)))
    # Non-ASCII text reaches the app as its UTF-8 bytes, which both frameworks read as latin-1.
    latin = "日本 café".encode().decode("latin-1")
    assert [document["headers"][name] for name in headers] == ["a\tb", "a\x07b", "a\x7fb", latin]


@pytest.mark.parametrize("name", ["x-evil\r\nset-cookie", "x evil", "x:y", "x\x00y", "ho\u017ft"])
def test_a_header_name_that_is_no_token_is_a_400(adapter: Adapter, name: str) -> None:
    assert adapter(gateway_event(headers={name: "v"})) == bad_request(
        f"header name {name!r} is not an HTTP token"
    )


@pytest.mark.parametrize(
    "method", ["GET\r\nX-INJECTED: 1", "GE\x00T", "GET /x", "GET\t", "ÉT", "po\u017ft", "\ufb00"]
)
def test_a_method_that_is_no_token_is_a_400(adapter: Adapter, method: str) -> None:
    # "po\u017ft".upper() is "POST" and "\ufb00".upper() is "FF": the method as sent is checked.
    assert adapter(gateway_event(method=method)) == bad_request(
        f"httpMethod {method!r} is not an HTTP token"
    )


@pytest.mark.parametrize("method", ["PROPFIND", "M-SEARCH", "post"])
def test_methods_that_are_tokens_reach_the_app(adapter: Adapter, method: str) -> None:
    assert seen(adapter(gateway_event(method=method)))["method"] == method.upper()


@pytest.mark.parametrize(
    "headers", [{"host": "a.com", "Host": "b.com"}, {"host": ["a.com", "b.com"]}]
)
def test_two_hosts_are_a_400(adapter: Adapter, headers: dict[str, Any]) -> None:
    event = gateway_event(host=None, headers=headers)
    assert adapter(event) == bad_request("the request has more than one Host header")


def test_values_that_are_not_text_reach_the_app_as_json_writes_them(adapter: Adapter) -> None:
    event = gateway_event(
        headers={"x-flag": True, "x-off": False, "x-n": 1.5, "x-big": 10**20, "x-list": [1, 2]},
        query={"on": True, "n": 3, "f": [0.5, None, False]},
    )
    document = seen(adapter(event))
    headers = document["headers"]
    assert [headers[name] for name in ("x-flag", "x-off", "x-n", "x-big")] == [
        "true",
        "false",
        "1.5",
        "100000000000000000000",
    ]
    assert headers["x-list"] == "1, 2"  # one header a value, folded by the framework
    assert document["query"] == {"on": ["true"], "n": ["3"], "f": ["0.5", "", "false"]}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("headers", {"x-obj": {"a": 1}}, "header 'x-obj' has a value of type dict"),
        ("headers", {"x-nested": ["a", ["b"]]}, "header 'x-nested' has a value of type list"),
        ("queryString", {"q": {"a": 1}}, "queryString 'q' has a value of type dict"),
        ("queryString", {"q": ["a", ["b"]]}, "queryString 'q' has a value of type list"),
        ("path", ["/a"], "path has a value of type list"),
        ("path", {"p": 1}, "path has a value of type dict"),
    ],
)
def test_objects_and_nested_lists_are_a_400(
    adapter: Adapter, field: str, value: Any, message: str
) -> None:
    event = gateway_event()
    event[field] = value
    assert adapter(event) == bad_request(message)


def nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("field", "make"),
    [
        ("headers", lambda deep: {"x-deep": deep}),
        ("queryString", lambda deep: {"q": deep}),
        ("path", lambda deep: deep),
        ("body", lambda deep: deep),
    ],
)
def test_a_value_nested_thousands_deep_is_a_400_not_an_exception(
    adapter: Adapter, field: str, make: Callable[[Any], Any]
) -> None:
    event = gateway_event(method="POST")
    # Deeper than any interpreter's recursion limits: Python 3.13's JSON encoder, bound by the
    # C stack's limit rather than sys.getrecursionlimit(), writes 5,000 levels.
    event[field] = make(nested(max(5 * sys.getrecursionlimit(), 100_000)))
    response = adapter(event)
    assert response["statusCode"] == 400
    assert response["body"].startswith("Bad Request: ")


# -- request bodies over the limit ---------------------------------------------------------------


def test_a_body_over_the_limit_is_a_413_however_it_is_sent(adapter: Adapter) -> None:
    limit = 6 * 1024 * 1024
    over = limit + 1
    for event in (
        gateway_event(method="POST", body="x" * over),
        gateway_event(method="POST", body=b"\x00" * over),
        gateway_event(method="POST", body="é" * (over // 2 + 1)),  # 2 bytes each in UTF-8
    ):
        assert adapter(event) == bad_request(
            f"the request body is larger than {limit} bytes", status=413
        )
    assert seen(adapter(gateway_event(method="POST", body="x" * 1000)))["method"] == "POST"


@pytest.mark.parametrize("encoding", ["base64", "text"])
def test_a_body_over_the_limit_is_refused_without_being_decoded(encoding: str) -> None:
    adapter = Adapter(echo_app.app, interface="wsgi")
    size = 7 * 1024 * 1024
    if encoding == "base64":
        event = gateway_event(method="POST", body=base64.b64encode(bytes(size)).decode("ascii"))
        event["isBase64Encoded"] = True
    else:
        event = gateway_event(method="POST", body="x" * size)
    tracemalloc.start()
    try:
        response = adapter(event)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response["statusCode"] == 413
    assert peak < 1024 * 1024  # 7 MB decoded or encoded would show here


@pytest.mark.parametrize("interface", ["asgi", "wsgi"])
def test_max_body_bytes_sets_the_limit(interface: str) -> None:
    adapter = Adapter(echo_app.app, interface=interface, lifespan="off", max_body_bytes=10)
    assert adapter(gateway_event(method="POST", body="x" * 10))["statusCode"] == 200
    assert adapter(gateway_event(method="POST", body="x" * 11)) == bad_request(
        "the request body is larger than 10 bytes", status=413
    )
    adapter.close()


# -- response headers: the app's own -------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("X-Echo", "a\r\nSet-Cookie: pwned=1"),
        ("X-Echo", "a\nb"),
        ("X-Echo", "a\x00b"),
        ("X Echo", "v"),
        ("X-Echo\r\nSet-Cookie", "pwned=1"),
    ],
)
def test_a_response_header_that_would_split_becomes_a_plain_500(
    adapter: Adapter, name: str, value: str, caplog: pytest.LogCaptureFixture
) -> None:
    event = gateway_event(path="/reflect", query={"name": name, "value": value})
    with caplog.at_level(logging.ERROR, logger="scf_asgi"):
        response = adapter(event)
    assert response["statusCode"] == 500
    assert "pwned" not in json.dumps(response)
    assert all("\r" not in key + str(value) for key, value in response["headers"].items())
    # werkzeug refuses CR and LF itself (a ValueError in the view); what it lets through, and
    # every other framework's, scf-asgi refuses.
    assert "request" in caplog.text and (
        "response header" in caplog.text or "ValueError" in caplog.text
    )


@pytest.mark.parametrize("interface", ["asgi", "wsgi"])
@pytest.mark.parametrize(
    "header", [(b"x-echo", b"a\r\nSet-Cookie: pwned=1"), (b"x echo", b"v"), (b"x-echo", b"\x00")]
)
def test_a_raw_app_that_sends_a_splitting_header_gets_a_plain_500(
    interface: str, header: tuple[bytes, bytes], caplog: pytest.LogCaptureFixture
) -> None:
    async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [header]})
        await send({"type": "http.response.body", "body": b"ok"})

    def wsgi_app(environ: Any, start_response: Any) -> list[bytes]:
        start_response("200 OK", [(header[0].decode("latin-1"), header[1].decode("latin-1"))])
        return [b"ok"]

    app = asgi_app if interface == "asgi" else wsgi_app
    adapter = Adapter(app, lifespan="off") if interface == "asgi" else Adapter(app)
    with caplog.at_level(logging.ERROR, logger="scf_asgi"):
        assert adapter(gateway_event(), {"request_id": "r-9"}) == {
            "isBase64Encoded": False,
            "statusCode": 500,
            "headers": {"Content-Type": "text/plain; charset=utf-8"},
            "body": "Internal Server Error",
        }
    assert "request r-9: GET / failed" in caplog.text
    assert "the response header" in caplog.text
    adapter.close()


# -- the log ---------------------------------------------------------------------------------------


def test_client_text_in_a_log_line_cannot_forge_another_line(
    adapter: Adapter, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="scf_asgi"):
        adapter(gateway_event(path="/echo\n[ERROR] forged-by-client\r"), {"request_id": "r-1"})
    lines = [record.getMessage() for record in caplog.records if record.name == "scf_asgi"]
    assert len(lines) == 1
    assert "\n" not in lines[0] and "\r" not in lines[0]
    assert lines[0].startswith("r-1 GET /echo\\n[ERROR] forged-by-client\\r 404 ")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), [1.0, float("-inf")]])
@pytest.mark.parametrize("field", ["headers", "queryString"])
def test_nan_and_infinities_from_an_in_process_caller_are_a_400(
    adapter: Adapter, field: str, value: Any
) -> None:
    event = gateway_event()
    event[field] = {"x-n": value}
    response = adapter(event)
    assert response["statusCode"] == 400
    assert "has a value of type float" in response["body"]


@pytest.mark.parametrize("interface", ["asgi", "wsgi"])
def test_a_non_ascii_response_header_goes_out_as_the_text_its_utf8_bytes_encode(
    interface: str,
) -> None:
    value = "café 日本"

    async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"x-name", value.encode()), (b"x-latin", b"caf\xe9")]
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    def wsgi_app(environ: Any, start_response: Any) -> list[bytes]:
        latin = value.encode().decode("latin-1")  # PEP 3333: bytes as latin-1 characters
        start_response("204 No Content", [("X-Name", latin), ("X-Latin", "caf\xe9")])
        return []

    app = asgi_app if interface == "asgi" else wsgi_app
    adapter = Adapter(app, lifespan="off") if interface == "asgi" else Adapter(app)
    headers = {name.lower(): text for name, text in adapter(gateway_event())["headers"].items()}
    # Bytes that are not UTF-8 (latin-1's é) are passed on one character a byte, as before.
    assert headers == {"x-name": value, "x-latin": "caf\xe9"}
    adapter.close()


@pytest.mark.parametrize("status", [0, 99, 600, 1000, "200", None, True])
def test_a_status_the_gateway_cannot_carry_is_a_plain_500(status: Any) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    adapter = Adapter(app, lifespan="off")
    assert adapter(gateway_event())["statusCode"] == 500
    adapter.close()
