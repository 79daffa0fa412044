"""The cases every framework answers alike, parametrised over the matrix (see apps/common.py)."""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from typing import Any
from urllib.parse import urlencode

import pytest

from scf_asgi import Adapter

from .apps.common import CORS_ORIGIN, SECRET
from .harness import (
    APPS_PACKAGE,
    BASE_PATH,
    CUSTOM_HOST,
    DEFAULT_HOST,
    call,
    covers,
    header,
    http_event,
    outline,
)
from .matrix import Framework

BLOB = bytes(range(256))  # not valid UTF-8: must travel as base64 both ways
STATIC_BLOB = BLOB  # apps/static/blob.bin holds the same bytes


@covers("routing")
def test_path_parameter_and_404(framework: Framework) -> None:
    found = call(framework, path="/items/42")
    missing = call(framework, path="/no/such/page")
    assert (outline(found), missing["statusCode"]) == (
        {"status": 200, "type": "application/json", "base64": False, "body": {"id": 42}},
        404,
    )


@covers("query")
def test_query_with_repeated_key_and_reserved_characters(framework: Framework) -> None:
    values = ["a+b", "100%", "hello world", "日本", "x&y=z"]
    response = call(framework, path="/query", query={"q": values, "page": "2"})
    assert outline(response) == {
        "status": 200,
        "type": "application/json",
        "base64": False,
        "body": {"q": values},
    }


@covers("json")
def test_json_request_and_response(framework: Framework) -> None:
    document = {"text": "日本語 ✓", "numbers": [1, 2.5], "nested": {"ok": True, "none": None}}
    response = call(
        framework,
        method="POST",
        path="/json",
        headers={"content-type": "application/json"},
        body=json.dumps(document, ensure_ascii=False),
    )
    assert outline(response) == {
        "status": 200,
        "type": "application/json",
        "base64": False,
        "body": {"received": document},
    }


@covers("form")
def test_urlencoded_form(framework: Framework) -> None:
    fields = {"name": "Zoë & co", "note": "a+b=100% 日本"}
    response = call(
        framework,
        method="POST",
        path="/form",
        headers={"content-type": "application/x-www-form-urlencoded"},
        body=urlencode(fields),
    )
    assert outline(response) == {
        "status": 200,
        "type": "application/json",
        "base64": False,
        "body": fields,
    }


def multipart(boundary: str, fields: dict[str, str], filename: str, content: bytes) -> bytes:
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    parts.append(
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n".encode()
        + content
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts)


@covers("upload")
def test_multipart_upload_of_a_binary_file(framework: Framework) -> None:
    boundary = "matrix-boundary-7d1e"
    response = call(
        framework,
        method="POST",
        path="/upload",
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
        body=multipart(boundary, {"title": "bytes"}, "blob.bin", BLOB),
        base64=True,
    )
    assert (outline(response), header(response, "x-upload-name")) == (
        {"status": 200, "type": "application/octet-stream", "base64": True, "body": BLOB},
        "blob.bin",
    )


@covers("cookies")
def test_request_cookie_and_two_set_cookie_headers(framework: Framework) -> None:
    response = call(framework, path="/cookies", headers={"cookie": "session=abc123; theme=dark"})
    set_cookie = header(response, "set-cookie")
    assert isinstance(set_cookie, list), f"expected two Set-Cookie values, got {set_cookie!r}"
    assert (outline(response), [value.partition(";")[0] for value in set_cookie]) == (
        {"status": 200, "type": "application/json", "base64": False, "body": {"session": "abc123"}},
        ["a=1", "b=2"],
    )


@covers("redirect")
@pytest.mark.parametrize(
    ("host", "path", "location"),
    [
        (DEFAULT_HOST, "/redirect", f"https://{DEFAULT_HOST}/release/items/7"),
        (CUSTOM_HOST, f"{BASE_PATH}/redirect", f"https://{CUSTOM_HOST}{BASE_PATH}/items/7"),
        (
            DEFAULT_HOST,
            f"{BASE_PATH}/redirect",
            f"https://{DEFAULT_HOST}/release{BASE_PATH}/items/7",
        ),
    ],
    ids=["stage", "base-path", "stage-and-base-path"],
)
def test_redirect_to_url_built_by_the_framework(
    framework: Framework, host: str, path: str, location: str
) -> None:
    response = call(framework, path=path, host=host)
    assert (response["statusCode"], header(response, "location")) == (302, location)


@covers("static")
def test_binary_static_file(framework: Framework) -> None:
    response = call(framework, path="/static/blob.bin")
    assert outline(response) == {
        "status": 200,
        "type": "application/octet-stream",
        "base64": True,
        "body": STATIC_BLOB,
    }


@covers("stream")
def test_streamed_response_arrives_whole(framework: Framework) -> None:
    response = call(framework, path="/stream")
    assert outline(response) == {
        "status": 200,
        "type": "text/plain",
        "base64": False,
        "body": "one,two,three",
    }


@covers("head")
def test_head_has_headers_and_no_body(framework: Framework) -> None:
    response = call(framework, method="HEAD", path="/items/7")
    assert outline(response) == {
        "status": 200,
        "type": "application/json",
        "base64": False,
        "body": "",
    }


@covers("cors")
def test_cors_preflight(framework: Framework) -> None:
    response = call(
        framework,
        method="OPTIONS",
        path="/items/7",
        headers={
            "origin": CORS_ORIGIN,
            "access-control-request-method": "GET",
            "access-control-request-headers": "x-requested-with",
        },
    )
    allowed_methods = [
        m.strip() for m in header(response, "access-control-allow-methods").split(",")
    ]
    assert response["statusCode"] in (200, 204)
    assert header(response, "access-control-allow-origin") == CORS_ORIGIN
    assert "GET" in allowed_methods


@covers("errors")
def test_unhandled_exception_is_a_500_without_details(framework: Framework) -> None:
    response = call(framework, path="/boom")
    text = response["body"]
    assert response["statusCode"] == 500
    assert SECRET not in text
    assert "Traceback" not in text
    assert "RuntimeError" not in text


def fresh_app(framework: Framework) -> Any:
    """The framework's app from a new copy of its module: hooks no other adapter has run."""
    module_name, _, attribute = framework.app.partition(":")
    original = importlib.import_module(f"{APPS_PACKAGE}.{module_name}")
    name = f"{APPS_PACKAGE}.{module_name}_fresh_copy"
    spec = importlib.util.spec_from_file_location(name, original.__file__)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # some frameworks look their module up by __name__
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
    return getattr(module, attribute)


@covers("lifespan")
def test_startup_hook_ran_before_the_first_request(framework: Framework) -> None:
    # Not the adapter the other tests share (which has served many requests by now): one of its
    # own, for an app whose hooks have never run, so /lifespan is its very first event.
    adapter = Adapter(fresh_app(framework), base_path=BASE_PATH, access_log=False)
    try:
        response = adapter(http_event(path="/lifespan"), {"request_id": "req-lifespan"})
    finally:
        adapter.close()
    assert outline(response) == {
        "status": 200,
        "type": "application/json",
        "base64": False,
        "body": {"started": True},
    }
