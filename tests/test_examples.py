"""The two documented examples, started by their real `bootstrap` files as SCF would."""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterator
from typing import Any, NamedTuple

import pytest

from tests.events import DEFAULT_HOST, gateway_event
from tests.runtime_api import ROOT, FakeRuntimeAPI, RuntimeProcess, runtime_env

UPLOAD = bytes(range(256)) * 4
BOUNDARY = "scfasgiboundary"


def multipart_body() -> bytes:
    head = (
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="name"\r\n\r\n'
        "Zoë\r\n"
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="file"; filename="blob.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    )
    return head.encode() + UPLOAD + f"\r\n--{BOUNDARY}--\r\n".encode()


def start_example(name: str) -> tuple[FakeRuntimeAPI, RuntimeProcess]:
    api = FakeRuntimeAPI()
    directory = ROOT / "examples" / name
    env = runtime_env(api, PYTHON=sys.executable, PYTHONPATH=str(ROOT))
    command = [str(directory / "bootstrap")]
    return api, RuntimeProcess(api, [], env=env, cwd=directory, command=command)


class Example(NamedTuple):
    name: str  # "flask_app" or "fastapi_app"
    api: FakeRuntimeAPI


@pytest.fixture(params=["flask_app", "fastapi_app"])
def example(request: pytest.FixtureRequest) -> Iterator[Example]:
    api, runtime = start_example(request.param)
    yield Example(request.param, api)
    assert runtime.stop() == 0
    api.close()


def invoke(api: FakeRuntimeAPI, **event: Any) -> dict[str, Any]:
    document: dict[str, Any] = api.invoke(gateway_event(**event)).json()
    return document


def header(document: dict[str, Any], name: str) -> Any:
    """A response header whatever the framework's spelling (Flask: Title-Case; Starlette: lower)."""
    return {key.lower(): value for key, value in document["headers"].items()}[name]


def test_multipart_upload_of_binary_file(example: Example) -> None:
    document = invoke(
        example.api,
        method="POST",
        path="/upload",
        headers={"content-type": f"multipart/form-data; boundary={BOUNDARY}"},
        body=multipart_body(),
    )
    assert json.loads(document["body"]) == {
        "name": "Zoë",
        "filename": "blob.bin",
        "size": len(UPLOAD),
        "sha256": hashlib.sha256(UPLOAD).hexdigest(),
    }


def test_two_cookies(example: Example) -> None:
    document = invoke(example.api, path="/visit", headers={"cookie": "visits=2"})
    assert json.loads(document["body"]) == {"visits": 3}
    cookies = header(document, "set-cookie")
    framework = {"flask_app": "flask", "fastapi_app": "fastapi"}[example.name]
    assert [cookie.split(";")[0] for cookie in cookies] == [
        "visits=3",
        f"seen_example={framework}",
    ]


def test_redirect_carries_the_stage_on_the_default_domain(example: Example) -> None:
    document = invoke(example.api, path="/old-home", host=DEFAULT_HOST)
    location = {
        "flask_app": "/release/",  # Flask: a relative Location
        "fastapi_app": f"https://{DEFAULT_HOST}/release/",  # FastAPI: url_for is absolute
    }[example.name]
    assert (document["statusCode"], header(document, "location")) == (302, location)


def test_home_page_is_html_text(example: Example) -> None:
    document = invoke(example.api, path="/")
    assert (document["statusCode"], document["isBase64Encoded"]) == (200, False)
    assert header(document, "content-type") == "text/html; charset=utf-8"
    assert "on SCF</h1>" in document["body"]


def test_flask_json_route_builds_the_public_url() -> None:
    api, runtime = start_example("flask_app")
    try:
        document = invoke(api, path="/api/items/5", query={"tag": ["a", "b c"]}, host=DEFAULT_HOST)
    finally:
        runtime.stop()
        api.close()
    assert json.loads(document["body"]) == {
        "id": 5,
        "tags": ["a", "b c"],
        "url": f"https://{DEFAULT_HOST}/release/api/items/5",
    }


def test_fastapi_json_route_and_docs_under_the_stage() -> None:
    api, runtime = start_example("fastapi_app")
    try:
        created = invoke(
            api,
            method="POST",
            path="/api/items",
            headers={"content-type": "application/json"},
            body='{"name": "widget", "price": 10}',
        )
        openapi = invoke(api, path="/openapi.json", host=DEFAULT_HOST)
    finally:
        runtime.stop()
        api.close()
    assert json.loads(created["body"]) == {"name": "widget", "price_with_tax": 10.6}
    assert json.loads(openapi["body"])["servers"] == [{"url": "/release"}]
