"""The benchmark request as a Tencent API gateway event and as the equivalent AWS one.

One request: ``POST /release/greet?q=fast+apps&page=2`` through the gateway's default domain,
a JSON body, a cookie header with two cookies, and the dozen headers a real gateway adds. The
Tencent event has the shape of a captured SCF event; the AWS event is an API Gateway REST
(payload 1.0) proxy event with the same request, which Mangum, apig-wsgi and serverless-wsgi all
read. `normalise` reduces any adapter's integration response to what the client would see, so
the benchmark can check that every contender answered the same thing.
"""

from __future__ import annotations

import base64
import json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

BODY = '{"name":"scf","tags":["a","b"],"count":3}'
QUERY = {"q": "fast apps", "page": "2"}
COOKIE = "user=alice; lang=en"
# What the real apps (app_fastapi.py, app_flask.py, app_django.py) answer to this request.
REAL_ANSWER = {
    "hello": "scf",
    "tags": ["a", "b"],
    "count": 3,
    "q": "fast apps",
    "page": 2,
    "user": "alice",
}

_HEADERS = {
    "accept": "application/json",
    "accept-encoding": "gzip, deflate, br",
    "content-type": "application/json",
    "cookie": COOKIE,
    "user-agent": "Mozilla/5.0 (X11; Linux x86_64) bench/1.0",
    "x-forwarded-for": "203.0.113.7",
    "x-forwarded-proto": "https",
}


def tencent_event(body: str = BODY, *, binary: bool = False) -> dict[str, Any]:
    headers = {
        **_HEADERS,
        "host": "service-k0fbs6ox-1259160091.gz.apigw.tencentcs.com",
        "x-anonymous-consumer": "true",
        "x-api-requestid": "5f5b0e0c7b2e4c1f9a1c2d3e4f506172",
        "x-b3-traceid": "5f5b0e0c7b2e4c1f9a1c2d3e4f506172",
        "x-qualifier": "$DEFAULT",
    }
    if binary:
        headers["content-type"] = "application/octet-stream"
    return {
        "headerParameters": {},
        "headers": headers,
        "httpMethod": "POST",
        "path": "/greet",
        "pathParameters": {},
        "queryString": dict(QUERY),
        "queryStringParameters": {},
        "requestContext": {
            "httpMethod": "ANY",
            "identity": {},
            "path": "/greet",
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "serviceId": "service-k0fbs6ox",
            "sourceIp": "203.0.113.7",
            "stage": "release",
        },
        "stageVariables": {},
        "body": body,
        "isBase64Encoded": binary,
    }


def aws_event() -> dict[str, Any]:
    headers = {
        **_HEADERS,
        "host": "abc123defg.execute-api.eu-west-1.amazonaws.com",
        "x-amzn-trace-id": "Root=1-5f5b0e0c-7b2e4c1f9a1c2d3e4f506172",
        "x-forwarded-port": "443",
        "cloudfront-viewer-country": "DE",
    }
    return {
        "resource": "/greet",
        "path": "/greet",
        "httpMethod": "POST",
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": dict(QUERY),
        "multiValueQueryStringParameters": {name: [value] for name, value in QUERY.items()},
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": "abc123",
            "resourcePath": "/greet",
            "httpMethod": "POST",
            "extendedRequestId": "c6af9ac6-7b61-11e6",
            "requestTime": "09/Apr/2015:12:34:56 +0000",
            "path": "/release/greet",
            "accountId": "123456789012",
            "protocol": "HTTP/1.1",
            "stage": "release",
            "domainPrefix": "abc123defg",
            "requestTimeEpoch": 1428582896000,
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "identity": {"sourceIp": "203.0.113.7", "userAgent": headers["user-agent"]},
            "domainName": headers["host"],
            "apiId": "abc123defg",
        },
        "body": BODY,
        "isBase64Encoded": False,
    }


def binary_event_bytes(size: int, seed: int = 7) -> tuple[bytes, bytes]:
    """(raw body, the event JSON carrying it base64-encoded), for the large-body row."""
    import random

    raw = random.Random(seed).randbytes(size)
    encoded = base64.b64encode(raw).decode("ascii")
    event = tencent_event("", binary=True)
    event["body"] = encoded
    return raw, json.dumps(event, separators=(",", ":")).encode("ascii")


def normalise(result: dict[str, Any]) -> tuple[int, bytes, str, list[str]]:
    """(status, body bytes, content type, Set-Cookie values) of an integration response.

    Reads single-value ``headers`` (whose values may be lists, Tencent style) and AWS
    ``multiValueHeaders`` alike, with case-insensitive names, each value as an HTTP client
    reads it (Django's WSGI response writes its cookies with a leading space).
    """
    values: dict[str, list[str]] = {}
    for section in ("headers", "multiValueHeaders"):
        for name, value in (result.get(section) or {}).items():
            items = value if isinstance(value, list) else [value]
            bucket = values.setdefault(name.lower(), [])
            for item in items:
                item = item.strip()  # whitespace around a field value is not part of it (HTTP)
                if item not in bucket:
                    bucket.append(item)
    body = result.get("body") or ""
    raw = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode("utf-8")
    content_type = (values.get("content-type") or [""])[0]
    return int(result["statusCode"]), raw, content_type, sorted(values.get("set-cookie", []))
