"""The Adapter in process (`adapter(event, context)`), with real Flask, FastAPI and Starlette
apps: what SCF's built-in Python runtime would get from it as `main_handler`. (Django runs in
process in tests/frameworks and through the runtime loop in test_runtime.py: one process can
hold only one Django settings module.)"""

from __future__ import annotations

import base64
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest

from scf_asgi import (
    Adapter,
    AppError,
    ConfigurationError,
    Context,
    InvalidEventError,
    UnhandledEventError,
    serve,
)
from tests.events import CUSTOM_HOST, DEFAULT_HOST, gateway_event, sample_event

sys.path.insert(0, str(Path(__file__).parent / "apps"))

import echo_app
import fastapi_app
import flask_app
import handlers
import starlette_app


@pytest.fixture
def make_adapter() -> Iterator[Callable[..., Adapter]]:
    """Adapters closed after the test (lifespan shutdown, event loop closed)."""
    made: list[Adapter] = []

    def make(app: Any, **options: Any) -> Adapter:
        made.append(Adapter(app, **options))
        return made[-1]

    yield make
    for adapter in made:
        adapter.close()


def body_json(response: dict[str, Any]) -> Any:
    assert response["isBase64Encoded"] is False
    return json.loads(response["body"])


CONTEXT = {
    "request_id": "req-1",
    "memory_limit_in_mb": 128,
    "time_limit_in_ms": 3000,
    "function_name": "fn",
    "function_version": "$LATEST",
    "namespace": "default",
    "tencentcloud_region": "ap-guangzhou",
}

# -- Flask (WSGI) --------------------------------------------------------------------------------


def test_flask_json_query_client_and_public_url() -> None:
    adapter = Adapter(flask_app.app)
    event = gateway_event(
        path="/items/42", query={"q": ["a+b", "100%", "hello world", "日本"]}, host=DEFAULT_HOST
    )
    response = adapter(event, CONTEXT)
    assert response["statusCode"] == 200
    assert body_json(response) == {
        "id": 42,
        "q": ["a+b", "100%", "hello world", "日本"],
        "root": "/release",
        "url": f"https://{DEFAULT_HOST}/release/items/42"
        "?q=a%2Bb&q=100%25&q=hello+world&q=日本",  # werkzeug shows the IRI form
        "client": "203.0.113.7",
    }


def test_flask_redirect_uses_base_path_and_https() -> None:
    adapter = Adapter(flask_app.app, base_path="/api")
    page = (
        "<!doctype html>\n<html lang=en>\n<title>Redirecting...</title>\n"
        "<h1>Redirecting...</h1>\n<p>You should be redirected automatically to the target URL: "
        '<a href="https://api.example.com/api/items/7">https://api.example.com/api/items/7</a>. '
        "If not, click the link.\n"
    )
    assert adapter(gateway_event(path="/api/go")) == {
        "isBase64Encoded": False,
        "statusCode": 302,
        "headers": {
            "Content-Type": "text/html; charset=utf-8",
            "Content-Length": str(len(page)),
            "Location": "https://api.example.com/api/items/7",
        },
        "body": page,
    }


def test_flask_two_cookies_stay_two() -> None:
    response = Adapter(flask_app.app)(gateway_event(path="/cookies", headers={"cookie": "x=9"}))
    assert response["headers"]["Set-Cookie"] == ["a=1; Path=/", "b=2; HttpOnly; Path=/"]
    assert body_json(response) == {"seen": {"x": "9"}}


def test_flask_binary_round_trip() -> None:
    data = bytes(range(256))
    event = gateway_event(
        method="POST",
        path="/echo",
        body=data,
        headers={"content-type": "application/octet-stream"},
    )
    response = Adapter(flask_app.app)(event)
    assert response["isBase64Encoded"] is True
    assert base64.b64decode(response["body"]) == data


def test_flask_head_has_no_body() -> None:
    response = Adapter(flask_app.app)(gateway_event(method="HEAD", path="/items/1"))
    assert (response["statusCode"], response["body"]) == (200, "")
    assert response["headers"]["Content-Type"] == "application/json"


def test_flask_exception_is_500_without_traceback(caplog: pytest.LogCaptureFixture) -> None:
    response = Adapter(flask_app.app)(gateway_event(path="/boom"), CONTEXT)
    assert response["statusCode"] == 500
    assert "secret detail" not in response["body"]
    assert "Traceback" not in response["body"]


def test_invalid_base64_body_is_400() -> None:
    event = gateway_event(method="POST", path="/echo")
    event.update(body="%%%", isBase64Encoded=True)
    assert Adapter(flask_app.app)(event) == {
        "isBase64Encoded": False,
        "statusCode": 400,
        "headers": {"Content-Type": "text/plain; charset=utf-8"},
        "body": "Bad Request: the request body is marked isBase64Encoded but is not valid base64",
    }


# -- FastAPI / Starlette (ASGI) ------------------------------------------------------------------


@pytest.fixture
def fastapi_adapter() -> Iterator[Adapter]:
    """An Adapter of the FastAPI app of its own. The app records its lifespan and background
    work in the module's `events` list, whatever Adapter runs it: cleared here, it holds only
    what this adapter did."""
    fastapi_app.events.clear()
    adapter = Adapter(fastapi_app.app)
    yield adapter
    adapter.close()
    assert fastapi_app.events[-1] == "shutdown"


def test_fastapi_lifespan_state_context_and_persistent_loop(fastapi_adapter: Adapter) -> None:
    for request_id in ("first", "second"):  # the lock made at startup works in both events
        response = fastapi_adapter(
            gateway_event(path="/items/5", query={"q": ["x", "y"]}, host=DEFAULT_HOST),
            {"request_id": request_id, "time_limit_in_ms": 3000},
        )
        assert body_json(response) == {
            "id": 5,
            "q": ["x", "y"],
            "root_path": "/release",
            "url": f"https://{DEFAULT_HOST}/release/items/5?q=x&q=y",
            "state": "yes",
            "request_id": request_id,
            "events": ["startup"],
        }
    fastapi_adapter.close()
    assert fastapi_app.events == ["startup", "shutdown"]


def test_fastapi_background_task_finishes_before_return(fastapi_adapter: Adapter) -> None:
    response = fastapi_adapter(gateway_event(path="/background"))
    assert (body_json(response), fastapi_app.events) == (
        {"ok": "yes"},
        ["startup", "background-done"],
    )


def test_fastapi_streaming_and_echo(fastapi_adapter: Adapter) -> None:
    streamed = fastapi_adapter(gateway_event(path="/stream"))
    assert (streamed["statusCode"], streamed["body"]) == (200, "one,two,three")
    echoed = fastapi_adapter(
        gateway_event(
            method="POST",
            path="/echo",
            body='{"k": "ü"}',
            headers={"content-type": "application/json"},
        )
    )
    assert echoed == {
        "isBase64Encoded": False,
        "statusCode": 200,
        "headers": {"content-length": "11", "content-type": "application/json"},
        "body": '{"k": "ü"}',
    }


def test_fastapi_exception_is_plain_500(fastapi_adapter: Adapter) -> None:
    response = fastapi_adapter(gateway_event(path="/boom"))
    assert (response["statusCode"], response["body"]) == (500, "Internal Server Error")


def test_fastapi_docs_under_base_path(make_adapter: Callable[..., Adapter]) -> None:
    adapter = make_adapter(fastapi_app.app, base_path="/api")
    openapi = adapter(gateway_event(path="/api/openapi.json"))
    assert body_json(openapi)["servers"] == [{"url": "/api"}]
    docs = adapter(gateway_event(path="/api/docs"))
    assert docs["statusCode"] == 200
    assert "url: '/api/openapi.json'" in docs["body"]


def test_starlette_binary_and_state(make_adapter: Callable[..., Adapter]) -> None:
    adapter = make_adapter(starlette_app.app)
    data = bytes(range(255, -1, -1))
    response = adapter(gateway_event(method="POST", path="/binary", body=data))
    assert response["isBase64Encoded"] is True
    assert base64.b64decode(response["body"]) == data[::-1]
    first = body_json(adapter(gateway_event(path="/count")))
    second = body_json(adapter(gateway_event(path="/count")))
    assert (first["greeting"], second["calls"] - first["calls"]) == ("hello", 1)


# -- raw ASGI apps: contract violations --------------------------------------------------------


async def no_response_app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        await receive()


async def half_response_app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise RuntimeError("secret detail")


async def raises_after_response_app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        headers = [(b"content-type", b"text/plain")]
        await send({"type": "http.response.start", "status": 201, "headers": headers})
        await send({"type": "http.response.body", "body": b"done"})
        raise RuntimeError("cleanup failed")


async def str_body_app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": "text, not bytes"})


async def str_body_error_swallowed_app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            await send({"type": "http.response.body", "body": "text, not bytes"})
        except AppError:
            pass


async def websocket_only_app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        raise TypeError("this app only speaks websocket")


INTERNAL_ERROR = {
    "isBase64Encoded": False,
    "statusCode": 500,
    "headers": {"Content-Type": "text/plain; charset=utf-8"},
    "body": "Internal Server Error",
}


@pytest.mark.parametrize(
    "app",
    [
        no_response_app,
        half_response_app,
        websocket_only_app,
        str_body_app,
        str_body_error_swallowed_app,
    ],
)
def test_asgi_failures_become_500_and_are_logged(
    make_adapter: Callable[..., Adapter], app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="scf_asgi"):
        assert make_adapter(app, lifespan="off")(gateway_event(), CONTEXT) == INTERNAL_ERROR
    assert "request req-1: GET / failed" in caplog.text


def test_exception_after_complete_response_keeps_the_response(
    make_adapter: Callable[..., Adapter],
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="scf_asgi"):
        response = make_adapter(raises_after_response_app, lifespan="off")(gateway_event(), CONTEXT)
    assert (response["statusCode"], response["body"]) == (201, "done")
    assert "raised after its response was sent" in caplog.text
    assert "cleanup failed" in caplog.text


async def exiting_app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        raise SystemExit(3)  # e.g. argparse or click parsing something inside a view


def exiting_wsgi_app(environ: Any, start_response: Any) -> list[bytes]:
    raise SystemExit(3)


@pytest.mark.parametrize("app", [exiting_app, exiting_wsgi_app])
def test_system_exit_in_the_app_is_a_500_not_the_end_of_the_instance(
    make_adapter: Callable[..., Adapter], app: Any
) -> None:
    adapter = make_adapter(app, lifespan="off")
    assert adapter(gateway_event(), CONTEXT) == INTERNAL_ERROR
    assert adapter(gateway_event(), CONTEXT) == INTERNAL_ERROR  # still serving


async def failing_startup_app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "db down"})
        return
    headers = [(b"content-type", b"text/plain")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"served without startup"})


def test_failed_lifespan_startup_fails_every_in_process_event(
    make_adapter: Callable[..., Adapter],
) -> None:
    adapter = make_adapter(failing_startup_app, lifespan="on")
    for _ in range(2):
        with pytest.raises(AppError, match="ASGI lifespan startup failed: db down"):
            adapter(gateway_event())


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("headers", ["a", "b"], "headers must be an object, got list"),
        ("queryString", "a=1", "queryString must be an object, got str"),
    ],
)
def test_malformed_event_fields_are_a_400(field: str, value: Any, message: str) -> None:
    event = gateway_event()
    event[field] = value
    assert Adapter(flask_app.app)(event) == {
        "isBase64Encoded": False,
        "statusCode": 400,
        "headers": {"Content-Type": "text/plain; charset=utf-8"},
        "body": f"Bad Request: {message}",
    }


@pytest.mark.parametrize(
    ("field", "value", "method", "path"),
    [
        ("httpMethod", "post", "POST", "/"),
        ("httpMethod", "", "GET", "/"),
        ("path", 42, "GET", "/42"),
        ("path", "items", "GET", "/items"),
        ("path", None, "GET", "/"),
    ],
)
def test_odd_method_and_path_values_are_read_as_the_gateway_means_them(
    make_adapter: Callable[..., Adapter], field: str, value: Any, method: str, path: str
) -> None:
    event = gateway_event()
    event[field] = value
    response = make_adapter(echo_app.app, interface="wsgi")(event)
    assert {**response, "body": json.loads(response["body"])} == {
        "isBase64Encoded": False,
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": {
            "interface": "wsgi",
            "method": method,
            "root_path": "",
            "path": path,
            "query_string": "",
            "scheme": "https",
        },
    }


def test_app_errors_invocation_raises_for_the_platform(
    make_adapter: Callable[..., Adapter],
) -> None:
    adapter = make_adapter(half_response_app, lifespan="off", app_errors="invocation")
    with pytest.raises(RuntimeError, match="secret detail"):
        adapter(gateway_event())


# -- non-HTTP events and bad input -------------------------------------------------------------


def test_event_handler_sync_and_async(make_adapter: Callable[..., Adapter]) -> None:
    adapter = make_adapter(flask_app.app, event_handler=handlers.sync_handler)
    assert adapter(sample_event("timer"), CONTEXT) == {
        "trigger_keys": ["Message", "Time", "TriggerName", "Type"],
        "request_id": "req-1",
        "memory_limit_in_mb": 128,
        "time_limit_in_ms": 3000,
        "function": ["fn", "$LATEST", "default"],
        "region": "ap-guangzhou",
        "deadline_ahead": True,
    }
    async_adapter = make_adapter(fastapi_app.app, event_handler=handlers.async_handler)
    assert async_adapter(sample_event("cos"), CONTEXT) == {
        "async": True,
        "remaining_positive": True,
    }


@pytest.mark.parametrize(
    ("name", "trigger"),
    [
        ("timer", "timer"),
        ("cos", "cos"),
        ("cmq-topic", "cmq"),
        ("ckafka", "ckafka"),
        ("cls", "cls"),
    ],
)
def test_no_event_handler_names_the_trigger(name: str, trigger: str) -> None:
    with pytest.raises(UnhandledEventError) as caught:
        Adapter(flask_app.app)(sample_event(name))
    assert str(caught.value) == (
        f"a {trigger} trigger event arrived and no event_handler is set; pass "
        "event_handler=your_function (called as your_function(event, context)) to serve()"
    )


def test_unknown_and_malformed_events() -> None:
    adapter = Adapter(flask_app.app)
    with pytest.raises(UnhandledEventError, match=r"unrecognised event \(top-level keys: a, b\)"):
        adapter({"b": 1, "a": 2})
    with pytest.raises(InvalidEventError, match="must be a JSON object, got list"):
        adapter([1, 2])


# -- options and context -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"interface": "rsgi"}, "interface must be one of 'auto', 'asgi', 'wsgi', got 'rsgi'"),
        ({"lifespan": "maybe"}, "lifespan must be one of 'auto', 'on', 'off', got 'maybe'"),
        ({"stage_prefix": True}, "stage_prefix must be one of 'auto', 'on', 'off', got True"),
        ({"app_errors": "ignore"}, "app_errors must be one of 'response', 'invocation'"),
        ({"text_mime_types": "application/x"}, "text_mime_types must be a list"),
        ({"event_handler": "handler"}, "event_handler must be callable"),
    ],
)
def test_bad_options_are_configuration_errors(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Adapter(flask_app.app, **options)


def echoed(response: dict[str, Any]) -> dict[str, Any]:
    """An echo_app response, its JSON body parsed."""
    return {**response, "body": json.loads(response["body"])}


@pytest.mark.parametrize(
    ("interface", "content_type"), [("asgi", "content-type"), ("wsgi", "Content-Type")]
)
def test_interface_option_decides_how_the_app_is_called(
    make_adapter: Callable[..., Adapter], interface: str, content_type: str
) -> None:
    # echo_app.app takes *args: only the option can say which interface it speaks.
    adapter = make_adapter(echo_app.app, interface=interface)
    assert echoed(adapter(gateway_event(path="/x", query={"a": "1"}))) == {
        "isBase64Encoded": False,
        "statusCode": 200,
        "headers": {content_type: "application/json"},
        "body": {
            "interface": interface,
            "method": "GET",
            "root_path": "",
            "path": "/x",
            "query_string": "a=1",
            "scheme": "https",
        },
    }


def test_interface_auto_refuses_an_app_it_cannot_classify() -> None:
    with pytest.raises(ConfigurationError) as caught:
        Adapter(echo_app.app)
    assert str(caught.value) == (
        f"cannot tell whether {echo_app.app!r} is an ASGI or a WSGI app; "
        "pass interface='asgi' or 'wsgi'"
    )


@pytest.mark.parametrize(
    ("stage_prefix", "host", "root"),
    [
        ("auto", DEFAULT_HOST, "/release"),
        ("auto", CUSTOM_HOST, ""),
        ("on", CUSTOM_HOST, "/release"),
        ("off", DEFAULT_HOST, ""),
    ],
)
def test_stage_prefix_option(
    make_adapter: Callable[..., Adapter], stage_prefix: str, host: str, root: str
) -> None:
    adapter = make_adapter(flask_app.app, stage_prefix=stage_prefix)
    response = adapter(gateway_event(path="/items/3", host=host))
    assert (response["statusCode"], body_json(response)) == (
        200,
        {
            "id": 3,
            "q": [],
            "root": root,
            "url": f"https://{host}{root}/items/3",
            "client": "203.0.113.7",
        },
    )


@pytest.mark.parametrize(
    ("root_path_in_path", "path"), [("auto", "/api/x"), ("on", "/api/x"), ("off", "/x")]
)
def test_root_path_in_path_option(
    make_adapter: Callable[..., Adapter], root_path_in_path: str, path: str
) -> None:
    adapter = make_adapter(
        echo_app.app, interface="asgi", base_path="/api", root_path_in_path=root_path_in_path
    )
    assert echoed(adapter(gateway_event(path="/api/x"))) == {
        "isBase64Encoded": False,
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "body": {
            "interface": "asgi",
            "method": "GET",
            "root_path": "/api",
            "path": path,
            "query_string": "",
            "scheme": "https",
        },
    }


def test_an_adapter_is_not_wrapped_again() -> None:
    # Unwrapping would silently drop the inner Adapter's options.
    inner = Adapter(flask_app.app, base_path="/api")
    with pytest.raises(ConfigurationError) as adapter_error:
        Adapter(inner)
    with pytest.raises(ConfigurationError) as serve_error:
        serve(inner, base_path="/v2", access_log=False)
    assert (str(adapter_error.value), str(serve_error.value)) == (
        "the app is already an Adapter: serve it as it is (serve(adapter) or "
        "`scf-asgi run` naming it), or pass its app",
        "the app is already an Adapter, made with its own options: give access_log, base_path "
        "to the Adapter, or pass its app instead",
    )


def test_text_mime_types_option(make_adapter: Callable[..., Adapter]) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"application/vnd.custom")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"plain words"})

    default = make_adapter(app, lifespan="off")(gateway_event())
    custom = make_adapter(app, lifespan="off", text_mime_types=["application/vnd.custom"])(
        gateway_event()
    )
    assert (default["isBase64Encoded"], default["body"]) == (True, "cGxhaW4gd29yZHM=")
    assert (custom["isBase64Encoded"], custom["body"]) == (False, "plain words")


def test_context_from_platform_dict() -> None:
    before = time.monotonic()
    context = Context.from_platform(CONTEXT)
    after = time.monotonic()
    assert (
        context.request_id,
        context.memory_limit_in_mb,
        context.time_limit_in_ms,
        context.function_name,
        context.function_version,
        context.namespace,
        context.region,
    ) == ("req-1", 128, 3000, "fn", "$LATEST", "default", "ap-guangzhou")
    # The 3000 ms count from when the context was made (the event's arrival).
    assert before + 3.0 <= context.deadline <= after + 3.0
    assert Context().remaining_time_ms() == 0


def test_context_from_a_sparse_platform_dict_falls_back_to_the_environment() -> None:
    code = (
        "from scf_asgi import Context; c = Context.from_platform({'request_id': 'r'}); "
        "print(c.function_name, c.function_version, c.namespace, c.region, c.memory_limit_in_mb)"
    )
    environ = {
        **os.environ,
        "SCF_FUNCTIONNAME": "fn-env",
        "SCF_FUNCTIONVERSION": "3",
        "SCF_NAMESPACE": "ns",
        "TENCENTCLOUD_REGION": "ap-shanghai",
    }
    result = subprocess.run(
        [sys.executable, "-c", code], env=environ, capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["fn-env", "3", "ns", "ap-shanghai", "0"]


def test_context_deadline_counts_from_receipt() -> None:
    context = Context("r", 128, 1000, received_at=0.0)  # received long ago: no time left
    assert context.remaining_time_ms() == 0


# -- lifecycle ---------------------------------------------------------------------------------


def test_an_adapter_never_closed_shuts_its_app_down_quietly_at_exit() -> None:
    code = """
from scf_asgi import Adapter
from tests.events import gateway_event

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                print("shutdown ran", flush=True)
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})

adapter = Adapter(app)
print(adapter(gateway_event())["statusCode"], flush=True)
"""
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=60
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "204\nshutdown ran\n", "")


WARMUP = {"Type": "Timer", "TriggerName": "warmup", "Time": "2026-12-01T00:00:00Z", "Message": ""}


@pytest.mark.parametrize(
    "event",
    [
        WARMUP,
        {**WARMUP, "TriggerName": "every-5-minutes", "Message": "WARM-UP"},
        {**WARMUP, "TriggerName": "scf-asgi-warmup"},
    ],
)
def test_a_warm_up_ping_is_answered_without_the_app_or_a_handler(event: dict[str, Any]) -> None:
    called: list[Any] = []
    assert Adapter(flask_app.app)(event) == {"warmup": True}
    assert Adapter(flask_app.app, event_handler=lambda *args: called.append(args))(event) == {
        "warmup": True
    }
    assert called == []


def test_other_timers_still_go_to_the_event_handler() -> None:
    event = {**WARMUP, "TriggerName": "nightly-report", "Message": "warm up the caches"}
    assert Adapter(flask_app.app, event_handler=lambda event, context: "handled")(event) == (
        "handled"
    )


def test_a_warm_up_ping_starts_an_asgi_app_in_process(make_adapter: Callable[..., Adapter]) -> None:
    fastapi_app.events.clear()
    adapter = make_adapter(fastapi_app.app)
    assert adapter(WARMUP) == {"warmup": True}
    assert fastapi_app.events == ["startup"]  # before any request: the next one is warm
    assert body_json(adapter(gateway_event(path="/items/1")))["events"] == ["startup"]


def test_an_async_event_handler_that_cannot_be_called_fails_its_event_alike(
    make_adapter: Callable[..., Adapter],
) -> None:
    async def on_event(event: Any) -> None:  # the context parameter forgotten
        return None

    for app in (flask_app.app, fastapi_app.app):
        with pytest.raises(TypeError, match="positional argument"):
            make_adapter(app, event_handler=on_event)(sample_event("timer"))


def test_text_mime_types_may_be_any_iterable(make_adapter: Callable[..., Adapter]) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"application/x-ndjson")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b'{"a":1}\n'})

    types = (name for name in ["application/x-ndjson"])  # read once
    response = make_adapter(app, lifespan="off", text_mime_types=types)(gateway_event())
    assert (response["isBase64Encoded"], response["body"]) == (False, '{"a":1}\n')


def test_closing_an_adapter_ends_the_work_its_app_left_on_the_loop_quietly() -> None:
    code = """
import asyncio
from scf_asgi import Adapter
from tests.events import gateway_event

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    async def forever():
        try:
            await asyncio.sleep(3600)
        finally:
            print("detached task ended", flush=True)
    asyncio.get_running_loop().create_task(forever())
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})

adapter = Adapter(app, lifespan="off")
adapter(gateway_event())
adapter.close()
print("closed", flush=True)
"""
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=60
    )
    assert (result.returncode, result.stdout, result.stderr) == (
        0,
        "detached task ended\nclosed\n",
        "",
    )
