"""Pure translation tests: gateway events in, Request fields out; Response in, integration out.

How each interface carries the normalised headers (ASGI byte pairs, WSGI environ keys) is
tested in test_asgi and test_wsgi."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import parse_qs

import pytest

from scf_asgi import gateway
from scf_asgi.errors import InvalidEventError
from scf_asgi.gateway import (
    IntegrationPayload,
    Request,
    Response,
    ResultPayload,
    TextPolicy,
    encode_integration_response,
    encode_query,
    integration_response,
    normalize_base_path,
    parse_json,
    quote_path,
    request_from_event,
)
from scf_asgi.triggers import is_http_event
from tests.events import CUSTOM_HOST, DEFAULT_HOST, gateway_event, sample_event

TEXT = TextPolicy()


def fields(request: Request) -> dict[str, Any]:
    """Every field of the request but the raw event (its input), headers as (name, value)."""
    found = {
        name: getattr(request, name)
        for name in Request.__slots__
        if name not in ("event", "header_names", "header_values")
    }
    found["headers"] = header_pairs(request)
    return found


def header_pairs(request: Request) -> list[tuple[str, bytes]]:
    """The request's headers as (name, UTF-8 value) pairs."""
    assert len(request.header_names.names) == len(request.header_values)
    return [
        (name.lower, value.encode("utf-8"))
        for name, value in zip(request.header_names.names, request.header_values)
    ]


# -- requests ----------------------------------------------------------------------------------


def test_captured_get_event() -> None:
    request = request_from_event(sample_event("apigw-captured-get"))
    assert fields(request) == {
        "method": "GET",
        "path": "/items/42",
        "root_path": "/release",  # default domain: the public URL carries the stage
        "query_string": b"q=hello+world&page=2",
        "headers": [
            ("accept", b"*/*"),
            ("host", b"service-k0fbs6ox-1259160091.gz.apigw.tencentcs.com"),
            ("user-agent", b"curl/7.68.0"),
            ("x-anonymous-consumer", b"true"),
            ("x-api-requestid", b"5f5b0e0c7b2e4c1f9a1c2d3e4f506172"),
            ("x-b3-traceid", b"5f5b0e0c7b2e4c1f9a1c2d3e4f506172"),
            ("x-qualifier", b"$DEFAULT"),
        ],
        "body": b"",
        "scheme": "https",
        "server": ("service-k0fbs6ox-1259160091.gz.apigw.tencentcs.com", 443),
        "client": ("203.0.113.7", 0),
    }
    assert quote_path(request.root_path + request.path) == b"/release/items/42"


def test_documented_example_uses_query_string_not_query_string_parameters() -> None:
    request = request_from_event(sample_event("apigw-doc-example"))
    assert request.query_string == b"foo=bar&bob=alice"
    assert request.method == "POST"
    assert request.body == b'{"test":"body"}'
    assert request.client == ("10.0.2.14", 0)
    assert request.root_path == "/release"  # host starts with "<serviceId>-"


def test_base64_body_is_decoded() -> None:
    request = request_from_event(sample_event("apigw-base64-upload"))
    assert request.body == bytes([0, 1, 2, 3, 254, 255, 128, 129])


def test_invalid_base64_body_is_an_invalid_event() -> None:
    event = gateway_event(method="POST", body="not base64!!")
    event["isBase64Encoded"] = True
    with pytest.raises(InvalidEventError, match="not valid base64"):
        request_from_event(event)


def test_minimal_console_event_with_nulls() -> None:
    event = {"httpMethod": "get", "path": None, "headers": None, "queryString": None, "body": None}
    assert fields(request_from_event(event)) == {
        "method": "GET",
        "path": "/",
        "root_path": "",
        "query_string": b"",
        "headers": [],
        "body": b"",
        "scheme": "https",
        "server": ("localhost", 443),
        "client": None,
    }


def test_body_given_as_json_value_is_serialised() -> None:
    event = gateway_event(method="POST")
    event["body"] = {"a": "é"}
    assert request_from_event(event).body == '{"a": "é"}'.encode()


def test_utf8_text_body() -> None:
    event = gateway_event(method="POST", body="héllo")
    assert request_from_event(event).body == "héllo".encode()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, b""),
        (None, b""),
        ({"a": "1"}, b"a=1"),
        ({"a": ["1", "2"], "b": "x"}, b"a=1&a=2&b=x"),
        ({"q": "a+b"}, b"q=a%2Bb"),
        ({"q": "a&b=c"}, b"q=a%26b%3Dc"),
        ({"q": "100%"}, b"q=100%25"),
        ({"q": "hello world"}, b"q=hello+world"),
        ({"q": "日本"}, b"q=%E6%97%A5%E6%9C%AC"),
        ({"key with space": "v"}, b"key+with+space=v"),
        ({"flag": None, "n": 3}, b"flag&n=3"),
        ({"on": True, "off": [False, None, 1.5]}, b"on=true&off=false&off&off=1.5"),
        ({"empty": ""}, b"empty="),
        ({"a-b_c.d~": "1 +2"}, b"a-b_c.d~=1+%2B2"),
        ({"x²": "½"}, b"x%C2%B2=%C2%BD"),  # letters and digits outside ASCII are escaped
    ],
)
def test_encode_query(query: dict[str, Any] | None, expected: bytes) -> None:
    assert encode_query(query) == expected


def test_query_values_reach_a_parser_exactly() -> None:
    values = ["a+b", "100%", "hello world", "日本", "x&y=z", "=", "+"]
    encoded = encode_query({"q": values, "k+": "v"}).decode("ascii")
    assert parse_qs(encoded, keep_blank_values=True) == {"q": values, "k+": ["v"]}


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Host": "a.example", "X-Forwarded-Proto": "http"}, ("http", ("a.example", 80))),
        (
            {"HOST": ["b.example"], "x-forwarded-port": 8443},
            ("https", ("b.example", 8443)),
        ),
        ({"host": None, "x-forwarded-proto": [None, "https"]}, ("https", ("localhost", 443))),
        ({}, ("https", ("localhost", 443))),
    ],
)
def test_origin_headers_whatever_their_case_and_shape(
    headers: dict[str, Any], expected: tuple[str, tuple[str, int]]
) -> None:
    request = request_from_event(gateway_event(host=None, headers=headers))
    assert (request.scheme, request.server) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, []),
        (["a", None, 5, True, False, 1.5], [b"a", b"5", b"true", b"false", b"1.5"]),
        ([], []),
        (5, [b"5"]),
        (1e100, [b"1e+100"]),
        (True, [b"true"]),
    ],
)
def test_header_values_of_non_text_event_values(value: Any, expected: list[bytes]) -> None:
    request = request_from_event(gateway_event(headers={"x-value": value}))
    assert [value for name, value in header_pairs(request) if name == "x-value"] == expected


@pytest.mark.parametrize(
    "event_headers", [{"Content-Length": "999"}, {"transfer-encoding": "chunked"}]
)
def test_the_wire_framing_headers_are_replaced_by_the_decoded_bodys_length(
    event_headers: dict[str, str],
) -> None:
    event = gateway_event(method="POST", body="four", headers=event_headers, host=None)
    assert header_pairs(request_from_event(event)) == [
        ("accept", b"*/*"),
        ("user-agent", b"curl/8.5.0"),
        ("content-length", b"4"),
    ]


def test_a_lone_surrogate_anywhere_is_an_invalid_event() -> None:
    # What json.loads makes of a "\\ud800" escape: text that has no UTF-8 bytes.
    assert json.loads('"\\ud800"') == "\ud800"
    for event in (
        gateway_event(path="/\ud800"),
        gateway_event(headers={"x-a": "\ud800"}),
        gateway_event(headers={"x-a": ["ok", "\udfff"]}),
        gateway_event(query={"q": "\ud800"}),
        gateway_event(method="POST", body="\ud800"),
        gateway_event(host="service-k0fbs6ox-1.gz.apigw.tencentcs.com", stage="\ud800"),
    ):
        with pytest.raises(InvalidEventError, match="not valid Unicode"):
            request_from_event(event)


def test_function_url_events_take_the_client_from_x_forwarded_for() -> None:
    request = request_from_event(sample_event("function-url-post"))
    assert fields(request) == {
        "method": "POST",
        "path": "/items",
        "root_path": "",
        "query_string": b"tag=a&tag=b&q=x+y",
        "headers": [
            ("accept", b"application/json"),
            ("content-type", b"application/json"),
            ("host", b"1250000000-k2b8qv3nrl.ap-guangzhou.tencentscf.com"),
            ("user-agent", b"curl/8.5.0"),
            ("x-forwarded-for", b"198.51.100.23"),
            ("content-length", b"18"),
        ],
        "body": b'{"name": "widget"}',
        "scheme": "https",
        "server": ("1250000000-k2b8qv3nrl.ap-guangzhou.tencentscf.com", 443),
        "client": ("198.51.100.23", 0),
    }
    event = sample_event("function-url-post")
    event["headers"]["x-forwarded-for"] = " 198.51.100.9 , 10.0.0.1"
    assert request_from_event(event).client == ("198.51.100.9", 0)
    # Through the gateway the client is the gateway's sourceIp, whatever the header says.
    event = gateway_event(headers={"x-forwarded-for": "198.51.100.9"})
    assert request_from_event(event).client == ("203.0.113.7", 0)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("headers", ["host", "x"], "headers must be an object, got list"),
        ("queryString", "a=1&b=2", "queryString must be an object, got str"),
    ],
)
def test_fields_of_the_wrong_type_are_invalid_events(field: str, value: Any, message: str) -> None:
    event = gateway_event()
    event[field] = value
    with pytest.raises(InvalidEventError, match=message):
        request_from_event(event)


def test_forwarded_proto_and_port_override_defaults() -> None:
    event = gateway_event(headers={"x-forwarded-proto": "http", "x-forwarded-port": "8080"})
    request = request_from_event(event)
    assert (request.scheme, request.server) == ("http", (CUSTOM_HOST, 8080))


def test_port_from_host_header() -> None:
    request = request_from_event(gateway_event(host="example.com:8443"))
    assert request.server == ("example.com", 8443)
    request = request_from_event(gateway_event(host="[::1]"))
    assert request.server == ("[::1]", 443)


@pytest.mark.parametrize(
    ("path", "base_path", "expected_path", "expected_root"),
    [
        ("/api/items", "/api", "/items", "/api"),
        ("/api", "/api", "/", "/api"),
        ("/api/", "/api", "/", "/api"),
        ("/apiary", "/api", "/apiary", ""),
        ("/other/api/x", "/api", "/other/api/x", ""),
        ("/v1/api/x", "/v1/api", "/x", "/v1/api"),
    ],
)
def test_base_path_strips_on_segment_boundary(
    path: str, base_path: str, expected_path: str, expected_root: str
) -> None:
    request = request_from_event(gateway_event(path=path), base_path=base_path)
    assert (request.path, request.root_path) == (expected_path, expected_root)


@pytest.mark.parametrize(
    ("host", "stage_prefix", "expected_root"),
    [
        (DEFAULT_HOST, "auto", "/release/api"),
        (
            "service-k0fbs6ox-1259160091.ap-guangzhou.apigateway.myqcloud.com",
            "auto",
            "/release/api",
        ),
        (CUSTOM_HOST, "auto", "/api"),
        (CUSTOM_HOST, "on", "/release/api"),
        (DEFAULT_HOST, "off", "/api"),
    ],
)
def test_stage_prefix(host: str, stage_prefix: str, expected_root: str) -> None:
    event = gateway_event(path="/api/x", host=host)
    request = request_from_event(event, base_path="/api", stage_prefix=stage_prefix)
    assert (request.path, request.root_path) == ("/x", expected_root)


def test_stage_prefix_auto_without_service_id_uses_known_domains() -> None:
    event = gateway_event(host=DEFAULT_HOST, service_id="")
    assert request_from_event(event).root_path == "/release"


def test_raw_path_percent_encodes_the_decoded_path() -> None:
    request = request_from_event(gateway_event(path="/café/a b"), stage_prefix="off")
    assert quote_path(request.root_path + request.path) == b"/caf%C3%A9/a%20b"


@pytest.mark.parametrize(
    ("value", "expected"), [("/api/", "/api"), ("api", "/api"), ("/", ""), ("", ""), (None, "")]
)
def test_normalize_base_path(value: str | None, expected: str) -> None:
    assert normalize_base_path(value) == expected


def test_is_http_event() -> None:
    assert is_http_event(sample_event("apigw-doc-example"))
    assert not is_http_event(sample_event("timer"))
    assert not is_http_event({"httpMethod": None})


# -- responses ---------------------------------------------------------------------------------


def test_text_response_with_repeated_cookies() -> None:
    response = Response(
        200,
        [
            ("Content-Type", "application/json"),
            ("Set-Cookie", "a=1; Path=/"),
            ("set-cookie", "b=2; HttpOnly"),
            ("Set-Cookie", "c=3"),
            ("X-Single", "yes"),
        ],
        b'{"ok": true}',
    )
    assert integration_response(response, text_policy=TEXT) == {
        "isBase64Encoded": False,
        "statusCode": 200,
        "headers": {
            "Content-Type": "application/json",
            "Set-Cookie": ["a=1; Path=/", "b=2; HttpOnly", "c=3"],
            "X-Single": "yes",
        },
        "body": '{"ok": true}',
    }


def test_binary_response_is_base64() -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\xff"
    response = Response(200, [("Content-Type", "image/png")], png)
    assert integration_response(response, text_policy=TEXT) == {
        "isBase64Encoded": True,
        "statusCode": 200,
        "headers": {"Content-Type": "image/png"},
        "body": base64.b64encode(png).decode(),
    }


@pytest.mark.parametrize(
    ("content_type", "headers", "body", "as_text"),
    [
        ("text/html; charset=utf-8", [], "<p>é</p>".encode(), True),
        ("application/json", [], b"{}", True),
        ("application/problem+json", [], b"{}", True),
        ("application/atom+xml", [], b"<a/>", True),
        ("image/svg+xml", [], b"<svg/>", True),
        ("application/javascript", [], b"1", True),
        ("application/x-www-form-urlencoded", [], b"a=1", True),
        ("text/plain", [("Content-Encoding", "gzip")], b"\x1f\x8b", False),
        ("text/plain", [("Content-Encoding", "identity")], b"ok", True),
        ("text/plain; charset=latin-1", [], b"caf\xe9", False),  # not UTF-8: bytes kept exact
        ("application/octet-stream", [], b"abc", False),
        ("application/pdf", [], b"%PDF", False),
        ("", [], b"no type", False),
    ],
)
def test_text_or_base64_policy(
    content_type: str, headers: list[tuple[str, str]], body: bytes, as_text: bool
) -> None:
    all_headers = [("Content-Type", content_type), *headers] if content_type else headers
    result = integration_response(Response(200, all_headers, body), text_policy=TEXT)
    assert result["isBase64Encoded"] is not as_text
    decoded = result["body"].encode() if as_text else base64.b64decode(result["body"])
    assert decoded == body


def test_extra_text_types_exact_and_family() -> None:
    policy = TextPolicy(["application/vnd.custom", "application/*"])
    assert policy.is_text_type("application/vnd.custom; v=1")
    assert policy.is_text_type("application/octet-stream")
    assert not policy.is_text_type("image/png")
    assert not TEXT.is_text_type("application/vnd.custom")


def test_empty_body_and_head() -> None:
    empty = Response(204, [], b"")
    assert integration_response(empty, text_policy=TEXT) == {
        "isBase64Encoded": False,
        "statusCode": 204,
        "headers": {},
        "body": "",
    }
    head = Response(200, [("Content-Type", "text/plain"), ("Content-Length", "5")], b"hello")
    assert integration_response(head, head=True, text_policy=TEXT) == {
        "isBase64Encoded": False,
        "statusCode": 200,
        "headers": {"Content-Type": "text/plain", "Content-Length": "5"},
        "body": "",
    }


def test_text_body_is_sent_as_utf8_not_escaped() -> None:
    page = "<p>你好 世界</p>" * 1000
    response = Response(200, [("Content-Type", "text/html; charset=utf-8")], page.encode())
    encoded = encode_integration_response(response, text_policy=TEXT)
    assert page.encode() in encoded  # 3 bytes a character, not a 6-byte \uXXXX escape
    assert len(encoded) < len(page.encode()) + 200
    assert json.loads(encoded)["body"] == page


@pytest.mark.parametrize(
    "response",
    [
        Response(200, [("Content-Type", "text/plain"), ("Set-Cookie", "a=1")], "ünï".encode()),
        Response(
            201,
            [("Content-Type", "image/png"), ("Set-Cookie", "a"), ("Set-Cookie", "b")],
            b"\x00\xff" * 999,
        ),
        Response(302, [("Location", "/x")], b""),
        Response(500, [("Content-Type", "application/json")], b'{"q": "\\"quoted\\""}'),
    ],
)
def test_encoded_bytes_are_the_same_document_as_the_dict(response: Response) -> None:
    for head in (False, True):
        encoded = encode_integration_response(response, head=head, text_policy=TEXT)
        assert json.loads(encoded) == integration_response(response, head=head, text_policy=TEXT)


# -- JSON in and out ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b'{"httpMethod":"GET","path":"/caf\xc3\xa9","n":[1,2.5,null,true],"x":"\\u65e5"}',
        b'  {"a": 1}\n',  # white space around: json.loads's way
        '{"a": "\u00e9"}'.encode("utf-16"),  # another Unicode encoding json accepts
        b"[1, 2]",
        b'"text"',
    ],
)
def test_parse_json_reads_what_json_loads_reads(raw: bytes) -> None:
    assert parse_json(raw) == json.loads(raw)


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b'{"a": 1} trailing', "Extra data"),
        (b'{"a": ', "Expecting value"),
        (b"", "Expecting value"),
        (b'{"a": "\xff"}', "invalid start byte"),
    ],
)
def test_parse_json_rejects_what_json_loads_rejects(raw: bytes, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse_json(raw)


def test_encoded_response_is_compact_unescaped_json() -> None:
    headers = [
        ("Content-Type", "text/plain"),
        ("X-Values", "日本"),
        ("Set-Cookie", "a=1"),
        ("set-cookie", 'b="q"\\'),
    ]
    response = Response(201, headers, "日本 \u2028 \x00".encode())
    document = {
        "isBase64Encoded": False,
        "statusCode": 201,
        "headers": {
            "Content-Type": "text/plain",
            "X-Values": "日本",
            "Set-Cookie": ["a=1", 'b="q"\\'],
        },
        "body": "日本 \u2028 \x00",
    }
    encoded = encode_integration_response(response, text_policy=TEXT)
    assert encoded == json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def test_stage_and_service_id_of_other_types_are_ignored() -> None:
    event = gateway_event(host=DEFAULT_HOST)
    event["requestContext"]["stage"] = ["release"]
    assert request_from_event(event).root_path == ""
    event = gateway_event(host="service-k0fbs6ox-1259160091.example.com")
    event["requestContext"]["serviceId"] = {"id": "service-k0fbs6ox"}
    assert request_from_event(event).root_path == ""  # neither the service id nor a known domain
    event["requestContext"]["serviceId"] = "service-k0fbs6ox"
    assert request_from_event(event).root_path == "/release"


def test_header_names_are_remembered_up_to_a_bound() -> None:
    # Names come from clients: past the bound they are worked out each time, still right.
    names = [f"X-Name-{index}" for index in range(2 * gateway._NAMES_LIMIT)]
    for _ in range(2):
        request = request_from_event(gateway_event(headers=dict.fromkeys(names, "v"), host=None))
        assert header_pairs(request)[2:] == [(name.lower(), b"v") for name in names]
    assert len(gateway._NAMES) <= gateway._NAMES_LIMIT


def test_payloads_carry_one_answer_in_both_forms() -> None:
    response = Response(200, [("Content-Type", "text/plain")], "日本".encode())
    payload = IntegrationPayload(response, False, TEXT)
    assert payload.document() == integration_response(response, text_policy=TEXT)
    assert payload.encode() == encode_integration_response(response, text_policy=TEXT)
    head = IntegrationPayload(response, True, TEXT)
    assert head.document()["body"] == ""
    result = ResultPayload({"ok": ["日本", 1.5, None]})
    assert (result.document(), result.encode()) == (
        {"ok": ["日本", 1.5, None]},
        '{"ok":["日本",1.5,null]}'.encode(),
    )
    for unencodable in ({"at": object()}, float("nan")):
        with pytest.raises((TypeError, ValueError)):
            ResultPayload(unencodable)


# -- the fast JSON path (orjson, where installed) reads and writes what json does ---------------


def random_value(rng: Any, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 4 else 5)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind == 1:
        return rng.choice([0, -1, 7, 2**31, 2**63 - 1, -(2**63), 2**64, 10**30, -(10**25)])
    if kind == 2:
        return rng.choice([0.0, -0.0, 0.1, 1.5e300, 2.5e-300, 123456.789, -3.0])
    if kind in (3, 4):
        alphabet = 'aZ0 \t\n\r"\\/é日本\u2028\x00\x1f\x7f😀'
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(12)))
    if kind in (5, 6):
        return [random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {
        random_value(rng, 9) if rng.random() < 0.3 else f"k{index}": random_value(rng, depth + 1)
        for index in range(rng.randrange(4))
    }


def test_the_fast_json_reader_reads_what_json_reads() -> None:
    import random

    rng = random.Random(20261201)
    samples = [
        json.dumps(sample_event(name)).encode()
        for name in ("apigw-captured-get", "apigw-doc-example", "timer", "cos", "ckafka")
    ]
    for _ in range(3000):
        value = {"k": random_value(rng)} if rng.random() < 0.5 else random_value(rng)
        text = json.dumps(value, ensure_ascii=rng.random() < 0.5)
        samples.append(text.encode())
        samples.append(b" \n" + text.encode() + b" ")
    samples += [b'{"a":"\\ud800"}', b'{"n":12345678901234567890}', b'{"a":NaN}', b"[1,]", b""]
    for raw in samples:
        try:
            expected: Any = ("value", gateway.parse_json_std(raw))
        except InvalidEventError as exc:
            expected = ("error", str(exc))
        try:
            found: Any = ("value", parse_json(raw))
        except InvalidEventError as exc:
            found = ("error", str(exc))
        assert repr(found) == repr(expected), raw  # repr: -0.0 and 0.0, 1 and 1.0 differ


def test_the_fast_json_writer_writes_what_json_writes() -> None:
    import random

    rng = random.Random(7)
    alphabet = 'aZ0 \t\n\r"\\/é日本\u2028\x00\x1f\x7f😀\u0085\ufeff'
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(20)))
        document = {
            "isBase64Encoded": rng.random() < 0.5,
            "statusCode": rng.randrange(100, 600),
            "headers": {text or "x": [text, "b"], "Content-Type": text},
            "body": text,
        }
        assert gateway.encode_document(document) == gateway.encode_document_std(document)
