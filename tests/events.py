"""Builders for the events the platform sends, with keyword defaults for every field."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

# Copies of the sample events in the spec (shared/spec/events), kept here so a clone is whole.
SPEC_EVENTS = Path(__file__).resolve().parent / "sample_events"
DEFAULT_HOST = "service-k0fbs6ox-1259160091.gz.apigw.tencentcs.com"
CUSTOM_HOST = "api.example.com"


def sample_event(name: str) -> dict[str, Any]:
    """One of the sample events of the spec (e.g. "apigw-captured-get")."""
    data: dict[str, Any] = json.loads((SPEC_EVENTS / f"{name}.json").read_text())
    return data


def gateway_event(
    *,
    method: str = "GET",
    path: str = "/",
    query: dict[str, Any] | None = None,
    headers: dict[str, Any] | None = None,
    body: str | bytes | None = None,
    base64_body: bool = False,
    host: str | None = CUSTOM_HOST,
    stage: str = "release",
    source_ip: str = "203.0.113.7",
    service_id: str = "service-k0fbs6ox",
) -> dict[str, Any]:
    """An API gateway event shaped like the captured ones (lower-case headers, `ANY` method)."""
    all_headers: dict[str, Any] = {"accept": "*/*", "user-agent": "curl/8.5.0"}
    if host is not None:
        all_headers["host"] = host
    all_headers.update(headers or {})
    event: dict[str, Any] = {
        "headerParameters": {},
        "headers": all_headers,
        "httpMethod": method,
        "path": path,
        "pathParameters": {},
        "queryString": query or {},
        "queryStringParameters": {},
        "requestContext": {
            "httpMethod": "ANY",
            "identity": {},
            "path": "/",
            "serviceId": service_id,
            "sourceIp": source_ip,
            "stage": stage,
        },
    }
    if body is not None:
        if isinstance(body, bytes) or base64_body:
            raw = body if isinstance(body, bytes) else body.encode("utf-8")
            event["body"] = base64.b64encode(raw).decode("ascii")
            event["isBase64Encoded"] = True
        else:
            event["body"] = body
            event["isBase64Encoded"] = False
    return event
