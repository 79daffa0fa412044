"""Gateway events, the adapter per framework, response helpers, and `covers`.

`covers(feature)` parametrises a test over every framework that claims `feature` in
`matrix.FRAMEWORKS` and records that the feature has a test; a claim the adapter cannot meet
yet (`Framework.pending`) runs as a strict xfail.
"""

from __future__ import annotations

import base64
import contextlib
import importlib
import io
import json
from typing import Any, Callable, TypeVar

import pytest

from scf_asgi import Adapter

from ..events import gateway_event
from .matrix import FRAMEWORKS, Framework, frameworks_with

DEFAULT_HOST = "service-abc-123.gz.apigw.tencentcs.com"  # the gateway's own domain: /release
SERVICE_ID = "service-abc"
CUSTOM_HOST = "api.example.com"  # a custom domain mapped with the base path below
BASE_PATH = "/api"
APPS_PACKAGE = f"{__package__}.apps"

TestFunction = TypeVar("TestFunction", bound=Callable[..., Any])

# Feature -> names of the tests that check it (filled as the test modules are imported).
TESTS_BY_FEATURE: dict[str, list[str]] = {}


def http_event(
    method: str = "GET",
    path: str = "/",
    query: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    body: str | bytes | None = None,
    base64: bool = False,
    stage: str = "release",
    host: str = DEFAULT_HOST,
    service_id: str = SERVICE_ID,
    source_ip: str = "203.0.113.7",
) -> dict[str, Any]:
    """An API gateway event shaped like the captured ones in shared/spec/events; a bytes body is
    sent as text unless `base64` is set."""
    if isinstance(body, bytes) and not base64:
        body = body.decode("utf-8")
    return gateway_event(
        method=method,
        path=path,
        query=query,
        headers=headers,
        body=body,
        base64_body=base64,
        host=host,
        stage=stage,
        source_ip=source_ip,
        service_id=service_id,
    )


def load_app(framework: Framework) -> Any:
    module_name, _, attribute = framework.app.partition(":")
    return getattr(importlib.import_module(f"{APPS_PACKAGE}.{module_name}"), attribute)


_adapters: dict[str, Adapter] = {}


def adapter_for(framework: Framework) -> Adapter:
    """One adapter per framework for the whole run, as one SCF instance keeps one (its event
    loop and lifespan live as long as the process)."""
    adapter = _adapters.get(framework.key)
    if adapter is None:
        adapter = Adapter(load_app(framework), base_path=BASE_PATH, access_log=False)
        _adapters[framework.key] = adapter
    return adapter


def call(framework: Framework, **event: Any) -> dict[str, Any]:
    """Send one `http_event(**event)` through the framework's adapter; the integration response."""
    response = adapter_for(framework)(http_event(**event), {"request_id": "req-framework-matrix"})
    assert isinstance(response, dict)
    return response


def body_bytes(response: dict[str, Any]) -> bytes:
    if response["isBase64Encoded"]:
        return base64.b64decode(response["body"])
    return str(response["body"]).encode("utf-8")


def header(response: dict[str, Any], name: str) -> Any:
    """A response header by case-insensitive name: a str, a list of str (repeated), or None."""
    found = [value for key, value in response["headers"].items() if key.lower() == name.lower()]
    assert len(found) <= 1, f"header {name} under two spellings: {response['headers']}"
    return found[0] if found else None


def media_type(response: dict[str, Any]) -> str | None:
    content_type = header(response, "content-type")
    return content_type.partition(";")[0].strip().lower() if content_type else None


def outline(response: dict[str, Any]) -> dict[str, Any]:
    """Status, media type, base64 flag and the body (parsed JSON, text, or bytes): the parts of
    a response that do not differ between frameworks."""
    kind = media_type(response)
    raw = body_bytes(response)
    body: Any = raw
    if kind == "application/json" and raw:
        body = json.loads(raw)
    elif not response["isBase64Encoded"]:
        body = response["body"]
    return {
        "status": response["statusCode"],
        "type": kind,
        "base64": response["isBase64Encoded"],
        "body": body,
    }


def framework_params(feature: str) -> list[Any]:
    params = []
    for framework in frameworks_with(feature):
        marks = []
        reason = framework.pending.get(feature)
        if reason is not None:
            marks.append(pytest.mark.xfail(strict=True, reason=reason))
        params.append(pytest.param(framework, id=framework.key, marks=marks))
    return params


def covers(feature: str) -> Callable[[TestFunction], TestFunction]:
    """Run the test once per framework that claims `feature` (argument `framework`)."""

    def decorate(test: TestFunction) -> TestFunction:
        TESTS_BY_FEATURE.setdefault(feature, []).append(f"{test.__module__}.{test.__name__}")
        return pytest.mark.parametrize("framework", framework_params(feature))(test)

    return decorate


def framework(key: str) -> Framework:
    for candidate in FRAMEWORKS:
        if candidate.key == key:
            return candidate
    raise KeyError(key)


def close_adapters() -> None:
    """Run the lifespan shutdown of every adapter made here and close its event loop."""
    while _adapters:
        _, adapter = _adapters.popitem()
        with contextlib.redirect_stdout(io.StringIO()):  # the apps announce their shutdown
            adapter.close()
