"""The WSGI runner: PEP 3333 environ, start_response rules, close() discipline."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import Any, Callable

import pytest

from scf_asgi.asgi import scope_from_request
from scf_asgi.context import Context
from scf_asgi.errors import AppError, InvalidEventError
from scf_asgi.gateway import Request, request_from_event
from scf_asgi.wsgi import environ_from_request, run_wsgi
from tests.events import gateway_event

StartResponse = Callable[..., Any]
CONTEXT = Context("req-1")


def environ_from_event(event: dict[str, Any], **options: Any) -> tuple[dict[str, Any], Request]:
    """The environ of an event, through the gateway's Request, as the runner builds it."""
    request = request_from_event(event, **options)
    return environ_from_request(request, CONTEXT), request


def scope_from_event(event: dict[str, Any]) -> tuple[dict[str, Any], Request]:
    request = request_from_event(event)
    return dict(scope_from_request(request, CONTEXT, {})), request


def environ_for(**event_options: Any) -> dict[str, Any]:
    environ, request = environ_from_event(gateway_event(**event_options), base_path="/api")
    assert request.method == environ["REQUEST_METHOD"]
    assert environ["scf.event"] is request.event
    environ["scf.event"] = "EVENT"
    return environ


def test_environ_is_pep_3333() -> None:
    environ = environ_for(
        method="POST",
        path="/api/café",
        query={"q": "a b"},
        headers={
            "content-type": "application/json",
            "cookie": ["a=1", "b=2"],
            "x-multi": ["1", "2"],
            "x-forwarded-proto": "https",
            "x_forwarded_proto": "spoofed",
        },
        body='{"k": 1}',
        stage="release",
    )
    body = environ.pop("wsgi.input")
    assert body.read() == b'{"k": 1}'
    assert environ.pop("wsgi.errors") is sys.stderr
    assert environ == {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "/api",
        "PATH_INFO": "/caf\u00c3\u00a9",  # UTF-8 bytes as latin-1 characters
        "QUERY_STRING": "q=a+b",
        "SERVER_NAME": "api.example.com",
        "SERVER_PORT": "443",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "203.0.113.7",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": "8",
        "HTTP_ACCEPT": "*/*",
        "HTTP_USER_AGENT": "curl/8.5.0",
        "HTTP_HOST": "api.example.com",
        "HTTP_COOKIE": "a=1; b=2",
        "HTTP_X_MULTI": "1, 2",
        "HTTP_X_FORWARDED_PROTO": "https",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "https",
        "wsgi.input_terminated": True,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "scf.event": "EVENT",
        "scf.context": CONTEXT,
    }


def test_get_without_body_has_no_content_length() -> None:
    environ = environ_for(path="/api/")
    assert "CONTENT_LENGTH" not in environ
    assert (environ["SCRIPT_NAME"], environ["PATH_INFO"]) == ("/api", "/")


def header_environ(headers: dict[str, Any]) -> dict[str, Any]:
    environ = environ_for(host=None, headers=headers)
    return {key: value for key, value in environ.items() if key.startswith(("HTTP_", "CONTENT_"))}


@pytest.mark.parametrize("suffix", ["", "-unseen-a", "-unseen-b"])
def test_header_shapes_and_case(suffix: str) -> None:
    headers = {
        f"X-Custom{suffix}": "Value With Case",
        "X-Multi": ["a", None, "b"],
        "X-Number": 5,
        "X-Null": None,
        "X-Empty": [],
        "Transfer-Encoding": "chunked",
        "Content-Length": "999",
        "X-Name": "José",
    }
    for _ in range(2):  # the second time, every name is known
        assert header_environ(headers) == {
            "HTTP_ACCEPT": "*/*",
            "HTTP_USER_AGENT": "curl/8.5.0",
            f"HTTP_X_CUSTOM{suffix.upper().replace('-', '_')}": "Value With Case",
            "HTTP_X_MULTI": "a, b",
            "HTTP_X_NUMBER": "5",
            "HTTP_X_NAME": "Jos\u00c3\u00a9",
        }


def test_plain_event_after_its_names_are_known_reads_the_same() -> None:
    headers = {"cookie": "a=1", "x-forwarded-port": "8080", "x-forwarded-proto": "http"}
    first = environ_for(headers=headers)
    second = environ_for(headers=headers)
    first.pop("wsgi.input"), second.pop("wsgi.input")
    assert first == second
    assert (first["HTTP_COOKIE"], first["SERVER_PORT"], first["wsgi.url_scheme"]) == (
        "a=1",
        "8080",
        "http",
    )


def test_a_name_given_twice_in_different_case_is_folded() -> None:
    headers = {"Cookie": "a=1", "cookie": "b=2", "X-Tag": "x", "x-tag": "y"}
    for _ in range(2):
        environ = header_environ(headers)
        assert (environ["HTTP_COOKIE"], environ["HTTP_X_TAG"]) == ("a=1; b=2", "x, y")


def test_headers_that_are_not_an_object_are_an_invalid_event() -> None:
    event = gateway_event()
    event["headers"] = "host: x"
    with pytest.raises(InvalidEventError, match="headers must be an object, got str"):
        environ_from_event(event)


class ClosingBody:
    def __init__(self, parts: Iterable[bytes], fail_at: int | None = None) -> None:
        self.parts = list(parts)
        self.fail_at = fail_at
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        for index, part in enumerate(self.parts):
            if index == self.fail_at:
                raise ValueError("broken iterable")
            yield part

    def close(self) -> None:
        self.closed = True


def test_iterable_is_joined_and_closed() -> None:
    body = ClosingBody([b"a", b"", b"bc"])

    def app(environ: dict[str, Any], start_response: StartResponse) -> ClosingBody:
        start_response("201 Created", [("X-A", "1"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")])
        return body

    response = run_wsgi(app, environ_for())
    assert (response.status, response.headers, response.body) == (
        201,
        [("X-A", "1"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")],
        b"abc",
    )
    assert body.closed


def test_close_is_called_when_iteration_fails() -> None:
    body = ClosingBody([b"a", b"b"], fail_at=1)

    def app(environ: dict[str, Any], start_response: StartResponse) -> ClosingBody:
        start_response("200 OK", [])
        return body

    with pytest.raises(ValueError, match="broken iterable"):
        run_wsgi(app, environ_for())
    assert body.closed


def test_write_callable() -> None:
    def app(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written,")
        return [b"returned"]

    assert run_wsgi(app, environ_for()).body == b"written,returned"


def test_exc_info_before_body_replaces_the_response() -> None:
    def app(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [("X-First", "1")])
        try:
            raise KeyError("oops")
        except KeyError:
            start_response("500 Internal Server Error", [("X-Second", "1")], sys.exc_info())
        return [b"error page"]

    response = run_wsgi(app, environ_for())
    assert (response.status, response.headers, response.body) == (
        500,
        [("X-Second", "1")],
        b"error page",
    )


def test_exc_info_after_body_reraises() -> None:
    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [])
        yield b"partial"
        try:
            raise KeyError("late")
        except KeyError:
            start_response("500 Internal Server Error", [], sys.exc_info())
        yield b"never"

    with pytest.raises(KeyError, match="late"):
        run_wsgi(app, environ_for())


@pytest.mark.parametrize(
    ("app_body", "message"),
    [
        ("no_start", "without calling start_response"),
        ("twice", "second time"),
        ("bad_status", "invalid status"),
        ("superscript_status", "invalid status"),
        ("int_header", "headers that are not \\(str, str\\) pairs"),
    ],
)
def test_contract_violations_are_app_errors(app_body: str, message: str) -> None:
    def app(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        if app_body == "twice":
            start_response("200 OK", [])
            start_response("200 OK", [])
        elif app_body == "bad_status":
            start_response("OK", [])
        elif app_body == "superscript_status":
            start_response("\u00b2\u00b2\u00b2 OK", [])
        elif app_body == "int_header":
            start_response("200 OK", [("Content-Length", 2)])
        return []

    with pytest.raises(AppError, match=message):
        run_wsgi(app, environ_for())


@pytest.mark.parametrize(
    ("headers", "server", "scheme"),
    [
        ({"host": ["a.com:8080"]}, ("a.com", 8080), "https"),  # a list of one
        ({"host": "a.com:8080", "x-forwarded-port": " "}, ("a.com", 8080), "https"),
        ({"HOST": [""]}, ("localhost", 443), "https"),
        ({"host": "bücher.de", "X-Forwarded-Proto": ["http", "https"]}, ("bücher.de", 80), "http"),
        # Digits that int() does not read: ignored like any other unusable port.
        ({"host": "a.com:\u00b2"}, ("a.com", 443), "https"),
        ({"host": "a.com:81", "x-forwarded-port": "\u00b3"}, ("a.com", 443), "https"),
    ],
)
def test_server_and_scheme_are_read_alike_by_asgi_and_wsgi(
    headers: dict[str, Any], server: tuple[str, int], scheme: str
) -> None:
    event = gateway_event(host=None, headers=headers)
    for _ in range(2):  # names met before or not
        environ, wsgi_request = environ_from_event(event)
        scope, asgi_request = scope_from_event(event)
        assert (scope["server"], scope["scheme"]) == (server, scheme)
        assert wsgi_request.server == asgi_request.server == server
        assert (environ["SERVER_PORT"], environ["wsgi.url_scheme"]) == (str(server[1]), scheme)


@pytest.mark.parametrize(
    "name",
    [
        "ho\u017ft",  # long s, upper-cases to "S": would become HTTP_HOST
        "coo\u212aie",  # Kelvin sign, lower-cases to "k": would become a Cookie header
        "x-\u00e9",
        "x-evil\r\nset-cookie",
        "x evil",
        "x:y",
        "",
    ],
)
def test_a_header_name_that_is_no_http_token_is_an_invalid_event(name: str) -> None:
    event = gateway_event(host="a.com", headers={name: "v"})
    for _ in range(2):
        with pytest.raises(InvalidEventError, match="is not an HTTP token"):
            environ_from_event(event)
