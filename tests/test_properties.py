"""Properties, tried with generated input (hypothesis) through the real `scf-asgi run` process
and a fake of the runtime API (tests/runtime_api.py), with raw ASGI and WSGI apps that show
exactly what they got (tests/apps/reflect_app.py):

- any JSON value, and any bytes, as an event gets exactly one answer and never ends the
  instance (nor makes scf-asgi fail inside: no "internal error");
- generated queries, headers, bodies, methods and paths round-trip: what the app receives is
  what the client sent, worked out here from the event by the test's own code (the query
  parsed with urllib, the headers as ASGI and PEP 3333 say an app sees them);
- no response header the app sets can split: the integration response never carries CR, LF
  or NUL in a header, and each header the app set is passed on exactly (surrounding spaces
  and tabs aside, RFC 9110 5.5; UTF-8 bytes as the text they encode) or the answer is a
  plain 500.

The hypothesis settings are fixed (`PROFILE`: derandomized, a bounded number of examples, no
deadline, no example database), so a run is deterministic and takes the same time in CI;
SCF_ASGI_PROPERTY_EXAMPLES raises the number of examples for a deeper run.
"""

from __future__ import annotations

import base64
import json
import os
import string
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, unquote_to_bytes

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.events import gateway_event
from tests.fault_runtime_api import counts, publish
from tests.runtime_api import FakeRuntimeAPI, RuntimeProcess, _Invocation, runtime_env

EXAMPLES = int(os.environ.get("SCF_ASGI_PROPERTY_EXAMPLES", "120"))
PROFILE = settings(
    derandomize=True,
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
APPS = {"asgi": "reflect_app:asgi_app", "wsgi": "reflect_app:wsgi_app"}
RESPOND = "/_respond"  # reflect_app's path that answers with the headers it is given
FIGURES: Counter[str] = Counter()


@pytest.fixture(scope="module", autouse=True)
def figures(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    tried = Counter({k: v for k, v in FIGURES.items() if not k.startswith("~")})
    publish(
        request.config,
        "properties (tests/test_properties.py)",
        [
            f"hypothesis examples per property and interface: {EXAMPLES} (derandomized)",
            f"inputs tried: {sum(tried.values())} ({counts(tried)})",
            f"of the response header sets, with CR, LF, NUL or a name no token: "
            f"{FIGURES['~splitting header sets']}, answered 500: {FIGURES['~500s']}",
            f"events with more than one answer: {FIGURES['~doubled']}, instance ended: "
            f"{FIGURES['~ended']}",
        ],
    )


class Instance:
    def __init__(self, interface: str) -> None:
        self.interface = interface
        self.api = FakeRuntimeAPI()
        self.runtime = RuntimeProcess(
            self.api,
            [APPS[interface], "--interface", interface, "--lifespan", "off"],
            env=runtime_env(self.api),
        )

    def invoke(self, event: Any) -> _Invocation:
        """One event through the instance; once the instance polls for the next, it has posted
        all it will for this one: exactly one answer, none stray, the instance alive."""
        api = self.api
        polls = api.log.count(("GET", "/runtime/invocation/next"))
        invocation = api.queue_event(event)
        api.wait(invocation)
        api.wait_for(lambda: api.log.count(("GET", "/runtime/invocation/next")) > polls)
        if len(invocation.answers) != 1:
            FIGURES["~doubled"] += 1
        if self.runtime.process.poll() is not None:
            FIGURES["~ended"] += 1
        assert len(invocation.answers) == 1, invocation.answers
        assert api.stray_answers == []
        assert self.runtime.process.poll() is None, self.runtime.output
        return invocation


@pytest.fixture(scope="module", params=sorted(APPS))
def instance(request: pytest.FixtureRequest) -> Iterator[Instance]:
    made = Instance(request.param)
    yield made
    code = made.runtime.stop()
    made.api.close()
    assert "internal error in scf-asgi" not in made.runtime.output
    assert code == 0


# -- any JSON value, any bytes -----------------------------------------------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=12,
)
# Objects with the gateway event's fields, holding anything: where the adapter's type checks
# are. httpMethod is often a string, or the event is not an HTTP event at all.
FIELDS = (
    "headers",
    "queryString",
    "path",
    "body",
    "isBase64Encoded",
    "requestContext",
    "multiValueHeaders",
    "pathParameters",
)
event_like = st.fixed_dictionaries(
    {"httpMethod": st.one_of(st.sampled_from(["GET", "POST", "HEAD", "get"]), json_values)},
    optional=dict.fromkeys(FIELDS, json_values),
)
KNOWN_ERRORS = {"InvalidEventError", "UnhandledEventError"}


def check_answer(invocation: _Invocation) -> None:
    """An answer of the right form: a well-formed integration response, or an error of a known
    kind (never scf-asgi's own InternalError)."""
    kind, body = invocation.answers[0]
    document = json.loads(body)
    if kind == "error":
        assert set(document) == {"errorType", "errorMessage"}
        assert document["errorType"] in KNOWN_ERRORS, document
        return
    assert set(document) == {"isBase64Encoded", "statusCode", "headers", "body"}
    assert isinstance(document["statusCode"], int) and 100 <= document["statusCode"] <= 599
    assert isinstance(document["body"], str) and isinstance(document["isBase64Encoded"], bool)
    for name, value in document["headers"].items():
        values = value if isinstance(value, list) else [value]
        assert all(isinstance(v, str) and not set(v) & set(FORBIDDEN) for v in values)
        assert not set(name) & set(FORBIDDEN)


@PROFILE
@given(value=st.one_of(json_values, event_like))
@example(value={"httpMethod": "GET", "headers": {"x": [[[[1]]]]}})
@example(value={"httpMethod": "GET", "path": {"a": 1}, "body": [1]})
@example(value={"httpMethod": "POST", "body": "%%", "isBase64Encoded": "true"})
def test_any_json_value_as_an_event_gets_exactly_one_answer(instance: Instance, value: Any) -> None:
    FIGURES["JSON values as events"] += 1
    check_answer(instance.invoke(value))


@PROFILE
@given(
    data=st.one_of(
        st.binary(max_size=300),
        st.builds(lambda v, b: json.dumps(v).encode()[:b], json_values, st.integers(0, 60)),
    )
)
@example(data=b"")
@example(data=b"\xff\xfe{\x00")
@example(data=b'{"httpMethod": "GET"' + b"]" * 5)
@example(data=b"[" * 100_000)
def test_any_bytes_as_an_event_get_exactly_one_answer(instance: Instance, data: bytes) -> None:
    FIGURES["byte strings as events"] += 1
    check_answer(instance.invoke(data))


# -- round trips ---------------------------------------------------------------------------------

TCHAR = "!#$%&'*+-.^_`|~" + string.digits + string.ascii_letters
# Text a JSON event can carry that UTF-8 can too (no lone surrogates, which are a 400).
unicode_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=20)
# What a field value MUST NOT carry on (RFC 9110 5.5): CR, LF and NUL, which would end the
# field or the message early. Other control characters MAY be passed on, and are (the README's
# "What is refused").
FORBIDDEN = "\r\n\x00"
# Header values: any such text without those (which are a 400), or what JSON writes that is
# not a string (true, 3, 1.5), which reaches the app as JSON writes it.
header_text = st.text(
    st.characters(exclude_categories=("Cs",), exclude_characters=FORBIDDEN), max_size=20
)
header_scalar = st.one_of(
    header_text,
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
)
header_names = st.text(TCHAR, min_size=1, max_size=12).filter(
    lambda name: name.lower() not in ("host", "content-length", "transfer-encoding")
)
header_values = st.one_of(header_scalar, st.lists(st.one_of(header_scalar, st.none()), max_size=3))
query_values = st.one_of(
    unicode_text, st.none(), st.lists(st.one_of(unicode_text, st.none()), max_size=3)
)
bodies = st.one_of(st.none(), unicode_text, st.binary(max_size=200))
methods = st.one_of(
    st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]),
    st.text(TCHAR, min_size=1, max_size=8),
)


def json_text(value: Any) -> str:
    """A header value as the client wrote it: text as it is, anything else as JSON writes it."""
    return value if isinstance(value, str) else json.dumps(value)


def sent_headers(headers: dict[str, Any]) -> list[tuple[str, str]]:
    """The headers the client sent, in order: one per value of a list, none for null."""
    pairs = []
    for name, value in headers.items():
        for item in value if isinstance(value, list) else [value]:
            if item is not None:
                pairs.append((name, json_text(item)))
    return pairs


def sent_query(query: dict[str, Any]) -> list[tuple[str, str]]:
    """The query's name/value pairs, in order, as a query parser reads them (a bare name is an
    empty value)."""
    pairs = []
    for name, value in query.items():
        for item in value if isinstance(value, list) else [value]:
            pairs.append((name, "" if item is None else item))
    return pairs


def sent_body(body: str | bytes | None) -> bytes:
    if body is None:
        return b""
    return body if isinstance(body, bytes) else body.encode("utf-8")


def b64(text: str) -> bytes:
    return base64.b64decode(text)


@PROFILE
@given(
    method=methods,
    path=unicode_text,
    query=st.dictionaries(unicode_text.filter(bool), query_values, max_size=4),
    headers=st.dictionaries(header_names, header_values, max_size=5),
    body=bodies,
)
@example(
    method="POST",
    path="/a b/%41",
    query={"a+b": "c&d=e", "é": ["1", None, "%"]},
    headers={"X-A": " sp ", "x-a": True, "Cookie": ["a=1", "b=2"], "x_u": "1"},
    body="日本",
)
def test_what_the_client_sent_is_what_the_app_gets(
    instance: Instance,
    method: str,
    path: str,
    query: dict[str, Any],
    headers: dict[str, Any],
    body: str | bytes | None,
) -> None:
    FIGURES["requests round-tripped"] += 1
    if path == RESPOND:
        path += "/"
    event = gateway_event(method=method, path=path, query=query, headers=headers, body=body)
    invocation = instance.invoke(event)
    kind, answer = invocation.answers[0]
    document = json.loads(answer)
    assert (kind, document["statusCode"]) == ("response", 200), document
    seen = json.loads(document["body"]) if method.upper() != "HEAD" else None
    if seen is None:
        return  # a HEAD answer has no body to show what the app got
    content = sent_body(body)
    expected_path = path if path.startswith("/") else "/" + path
    client_headers = sent_headers(event["headers"])  # the generated ones and the defaults
    if content or method.upper() in ("POST", "PUT", "PATCH"):
        client_headers.append(("content-length", str(len(content))))
    assert seen["method"] == method.upper()
    assert parse_qsl(
        b64(seen["query_string"]).decode("ascii"), keep_blank_values=True
    ) == sent_query(query)
    assert b64(seen["body"]) == content
    if instance.interface == "asgi":
        assert (seen["path"], unquote_to_bytes(b64(seen["raw_path"]))) == (
            expected_path,
            expected_path.encode("utf-8"),
        )
        assert [(b64(n), b64(v)) for n, v in seen["headers"]] == [
            (name.lower().encode("ascii"), value.encode("utf-8")) for name, value in client_headers
        ]
    else:
        assert b64(seen["path"]) == expected_path.encode("utf-8")
        assert {key: b64(value) for key, value in seen["headers"].items()} == wsgi_headers(
            client_headers
        )


def wsgi_headers(pairs: list[tuple[str, str]]) -> dict[str, bytes]:
    """The environ entries PEP 3333 (and CGI) make of request headers: HTTP_ + the name upper
    case with - as _ (Content-Type and Content-Length without the prefix), repeated names
    joined with ", " ("; " for cookies), names with "_" left out (they would pass for the
    same name with "-"), values as their UTF-8 bytes."""
    environ: dict[str, bytes] = {}
    for name, value in pairs:
        if "_" in name:
            continue
        key = name.upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = "HTTP_" + key
        data = value.encode("utf-8")
        if key in environ:
            environ[key] += (b"; " if key == "HTTP_COOKIE" else b", ") + data
        else:
            environ[key] = data
    return environ


# -- response headers ------------------------------------------------------------------------

# Names and values from every corner: tokens, text with spaces, CR, LF, NUL and other control
# characters, non-ASCII, and white space of every kind at either end (only spaces and tabs are
# no part of a field value); for ASGI as bytes (latin-1 or UTF-8), for WSGI as text.
clean_text = st.text(
    st.characters(exclude_categories=("Cs",), exclude_characters=FORBIDDEN), max_size=10
)
edgy_text = st.text(st.sampled_from("ab \t\x85\xa0\u2000\u3000éà\x0b\x1f"), max_size=6)
splitting_text = st.text(st.sampled_from(TCHAR + " \t\r\n\x00\x01\x7f"), max_size=10)
token = st.text(TCHAR, min_size=1, max_size=10)
nasty_names = st.one_of(token, token, token, splitting_text, clean_text)
nasty_values = st.one_of(clean_text, edgy_text, edgy_text, splitting_text)
response_headers = st.lists(st.tuples(nasty_names, nasty_values), max_size=3)


def splits(name: str, value: str) -> bool:
    """A header that cannot be passed on: a name that is no token (RFC 9110 5.1), a value with
    CR, LF or NUL (5.5), which would end the field early."""
    return not name or not set(name) <= set(TCHAR) or bool(set(value) & set(FORBIDDEN))


def as_text(value: str) -> str:
    """A value read one latin-1 character a byte, as the text its bytes encode when they are
    UTF-8 (what an app means by a non-ASCII value), else as it is."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value


def passed_on(headers: list[tuple[str, str]]) -> dict[str, Any]:
    """The integration response's headers for these app headers: one key per name (the first
    spelling), a list for a name given more than once, values without surrounding spaces and
    tabs (which are no part of a field value), as text."""
    result: dict[str, Any] = {}
    spelling: dict[str, str] = {}
    for name, value in headers:
        value = as_text(value.strip(" \t"))
        key = spelling.setdefault(name.lower(), name)
        if key not in result:
            result[key] = value
        elif isinstance(result[key], list):
            result[key].append(value)
        else:
            result[key] = [result[key], value]
    return result


def respond_with(
    instance: Instance, headers: list[tuple[str, str]], encoding: str
) -> dict[str, Any]:
    if instance.interface == "asgi":
        listed = [
            [
                base64.b64encode(n.encode(encoding)).decode(),
                base64.b64encode(v.encode(encoding)).decode(),
            ]
            for n, v in headers
        ]
    else:
        listed = [[n, v] for n, v in headers]
    event = gateway_event(method="POST", path=RESPOND, body=json.dumps(listed))
    invocation = instance.invoke(event)
    kind, answer = invocation.answers[0]
    assert kind == "response"
    document: dict[str, Any] = json.loads(answer)
    for name, value in document["headers"].items():
        for item in value if isinstance(value, list) else [value]:
            assert not set(name + item) & set(FORBIDDEN), document["headers"]
    return document


def app_headers(
    instance: Instance, headers: list[tuple[str, str]], encoding: str
) -> list[tuple[str, str]]:
    """The headers as scf-asgi gets them from the app: ASGI bytes one latin-1 character each
    (the reading that gives every byte back), WSGI text as it is (PEP 3333's native strings
    are the same reading)."""
    if instance.interface == "asgi":
        return [
            (n.encode(encoding).decode("latin-1"), v.encode(encoding).decode("latin-1"))
            for n, v in headers
        ]
    return headers


@PROFILE
@given(headers=response_headers, encoding=st.sampled_from(["utf-8", "latin-1"]))
def test_no_response_header_can_split(
    instance: Instance, headers: list[tuple[str, str]], encoding: str
) -> None:
    if encoding == "latin-1" and not all(
        (n + v).encode("latin-1", "ignore").decode("latin-1") == n + v for n, v in headers
    ):
        encoding = "utf-8"  # latin-1 cannot carry it
    FIGURES["response header sets"] += 1
    got = app_headers(instance, headers, encoding)
    refused = any(splits(name, value) for name, value in got)
    FIGURES["~splitting header sets"] += refused
    document = respond_with(instance, headers, encoding)
    if refused:
        FIGURES["~500s"] += 1
        assert (document["statusCode"], document["body"]) == (500, "Internal Server Error")
    else:
        assert document["statusCode"] == 200


@PROFILE
@given(headers=response_headers, encoding=st.sampled_from(["utf-8", "latin-1"]))
@example(headers=[("Content-Disposition", 'attachment; filename="voilà"')], encoding="utf-8")
@example(headers=[("X-Tail", "a\x85")], encoding="latin-1")
def test_a_response_header_is_passed_on_exactly_or_refused(
    instance: Instance, headers: list[tuple[str, str]], encoding: str
) -> None:
    if encoding == "latin-1" and not all(
        (n + v).encode("latin-1", "ignore").decode("latin-1") == n + v for n, v in headers
    ):
        encoding = "utf-8"
    got = app_headers(instance, headers, encoding)
    document = respond_with(instance, headers, encoding)
    if any(splits(name, value) for name, value in got):
        assert (document["statusCode"], document["body"]) == (500, "Internal Server Error")
    else:
        assert (document["statusCode"], document["headers"]) == (200, passed_on(got))
