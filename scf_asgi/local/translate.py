"""The gateway's side of the translation, pure and without I/O: an HTTP request becomes the
event a trigger sends (API gateway or function URL), an integration response becomes the HTTP
response the gateway gives, and a body is described for the inspector.

This is the inverse of `scf_asgi.gateway` and reads the same rules from it: which media types
travel as text (`TextPolicy`), how JSON is read (`parse_json`).
"""

from __future__ import annotations

import base64
import binascii
import json
from urllib.parse import parse_qsl, unquote, urlsplit

from ..errors import IntegrationFormatError
from ..gateway import TOKEN_CHARACTERS, TextPolicy, parse_json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

__all__ = [
    "DEFAULT_SERVICE_ID",
    "HOP_BY_HOP",
    "MALFORMED_BODY",
    "IntegrationFormatError",
    "body_view",
    "event_from_http",
    "function_url_event_from_http",
    "http_from_integration",
    "response_headers",
]

# What the gateway answers when the function's result is not a valid integration response.
MALFORMED_BODY = (
    b'{"errno":403,"error":"Invalid scf response format. please check your scf response format."}'
)
DEFAULT_SERVICE_ID = "service-local"

# Per-hop headers: they describe the client's connection to the gateway, not the request, and
# the gateway does not pass them on (in either direction). Content-Length and Transfer-Encoding
# describe the body on the wire: the event's content-length is the decoded body's.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
        "expect",
        "content-length",
        "transfer-encoding",
    }
)
_DEFAULT_TEXT_POLICY = TextPolicy()


def _split_target(target: str, host: str | None) -> tuple[str, str, str | None]:
    """(decoded path, raw query, host) of a request target in any of its forms."""
    if target.startswith("/"):
        raw_path, _, query = target.partition("?")
    elif target == "*":
        raw_path, query = "/", ""
    else:  # absolute-form, as sent to proxies
        parts = urlsplit(target)
        raw_path, query = parts.path or "/", parts.query
        if host is None and parts.netloc:
            host = parts.netloc
    path = unquote(raw_path.partition("#")[0], errors="replace")
    return path, query.partition("#")[0], host


def _query_object(query: str) -> dict[str, str | list[str]]:
    """The gateway's `queryString`: decoded values, a list for a repeated key."""
    query_string: dict[str, str | list[str]] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        existing = query_string.get(key)
        if existing is None:
            query_string[key] = value
        elif isinstance(existing, list):
            existing.append(value)
        else:
            query_string[key] = [existing, value]
    return query_string


def _header_object(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Lower-case names, repeated headers joined ("; " for Cookie), per-hop headers dropped."""
    collected: dict[str, list[str]] = {}
    for raw_name, value in headers:
        name = raw_name.lower()
        if name not in HOP_BY_HOP:
            collected.setdefault(name, []).append(value)
    return {
        name: ("; " if name == "cookie" else ", ").join(values)
        for name, values in collected.items()
    }


def _has_length(headers: list[tuple[str, str]]) -> bool:
    return any(name.lower() == "content-length" for name, _ in headers)


def _body_fields(
    body: bytes, content_type: str, text_policy: TextPolicy | None
) -> tuple[str, bool]:
    """The event's `body` and `isBase64Encoded`: text when the type is textual and the bytes
    are UTF-8, base64 otherwise (the core's rule for responses, applied to requests)."""
    policy = text_policy or _DEFAULT_TEXT_POLICY
    if content_type and policy.is_text_type(content_type):
        try:
            return body.decode("utf-8"), False
        except UnicodeDecodeError:
            pass
    return base64.b64encode(body).decode("ascii"), True


def event_from_http(
    method: str,
    target: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    *,
    source_ip: str,
    request_id: str,
    stage: str = "release",
    service_id: str = DEFAULT_SERVICE_ID,
    host: str | None = None,
    forwarded_proto: str | None = "http",
    text_policy: TextPolicy | None = None,
) -> dict[str, Any]:
    """The API gateway event for one HTTP request, in the shape of captured Tencent events.

    ``target`` is the request target as sent (``/release/items/1?q=a``); a leading
    ``/<stage>`` is removed from ``path`` as the gateway's default domain does, other paths are
    kept as they are. Header names are lower-cased, repeated headers joined (``"; "`` for
    Cookie, ``", "`` otherwise) and per-hop headers dropped; the gateway's own headers
    (``x-api-requestid``, ``x-b3-traceid``, ``x-qualifier``, ``x-anonymous-consumer``) are
    added. ``host`` replaces the Host header when given. ``forwarded_proto``, when given, is
    added as ``x-forwarded-proto`` unless the client sent one (the core assumes https without
    it). A body whose type is textual (per ``text_policy``) and valid UTF-8 travels as text,
    any other body as base64 with ``isBase64Encoded: true``; an empty body is left out.
    """
    headers = list(headers)
    path, query, host = _split_target(target, host)
    prefix = "/" + stage
    if stage and path == prefix:
        path = "/"
    elif stage and path.startswith(prefix + "/"):
        path = path[len(prefix) :]

    event_headers = _header_object(headers)
    if host is not None:
        event_headers["host"] = host
    if forwarded_proto and "x-forwarded-proto" not in event_headers:
        event_headers["x-forwarded-proto"] = forwarded_proto
    if body or _has_length(headers):
        event_headers["content-length"] = str(len(body))  # the body's, however it was framed
    event_headers["x-anonymous-consumer"] = "true"
    event_headers["x-api-requestid"] = request_id
    event_headers["x-b3-traceid"] = request_id
    event_headers["x-qualifier"] = "$DEFAULT"

    event: dict[str, Any] = {
        "headerParameters": {},
        "headers": dict(sorted(event_headers.items())),
        "httpMethod": method.upper(),
        "path": path,
        "pathParameters": {},
        "queryString": _query_object(query),
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
    if body:
        event["body"], event["isBase64Encoded"] = _body_fields(
            body, event_headers.get("content-type", ""), text_policy
        )
    return event


def function_url_event_from_http(
    method: str,
    target: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    *,
    source_ip: str,
    host: str | None = None,
    forwarded_proto: str | None = "http",
    text_policy: TextPolicy | None = None,
) -> dict[str, Any]:
    """The event a function URL sends for one HTTP request (spec, section 1b).

    The API gateway's shape without ``requestContext``, ``headerParameters``,
    ``pathParameters``, ``queryStringParameters`` and the request-side ``isBase64Encoded``;
    no stage, so the path is kept whole. The client's address is appended to
    ``x-forwarded-for``, as a proxy does, and is where the core reads it from. How a binary
    body arrives is not documented: here it is base64 with ``isBase64Encoded: true`` (which the
    core honours), and a text body travels as text with no flag.
    """
    headers = list(headers)
    path, query, host = _split_target(target, host)
    event_headers = _header_object(headers)
    if host is not None:
        event_headers["host"] = host
    if forwarded_proto and "x-forwarded-proto" not in event_headers:
        event_headers["x-forwarded-proto"] = forwarded_proto
    forwarded_for = event_headers.get("x-forwarded-for")
    event_headers["x-forwarded-for"] = (
        f"{forwarded_for}, {source_ip}" if forwarded_for else source_ip
    )
    if body or _has_length(headers):
        event_headers["content-length"] = str(len(body))
    event: dict[str, Any] = {
        "headers": dict(sorted(event_headers.items())),
        "httpMethod": method.upper(),
        "path": path,
        "queryString": _query_object(query),
    }
    if body:
        text, encoded = _body_fields(body, event_headers.get("content-type", ""), text_policy)
        event["body"] = text
        if encoded:
            event["isBase64Encoded"] = True
    return event


def http_from_integration(payload: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers (a list value becomes repeated headers) and decoded body of an
    integration response; `IntegrationFormatError` says what is wrong with a malformed one."""
    try:
        document = parse_json(payload)
    except ValueError as exc:  # includes UnicodeDecodeError
        raise IntegrationFormatError(f"the result is not valid JSON ({exc})") from None
    if not isinstance(document, dict):
        raise IntegrationFormatError(
            f"the result is a JSON {type(document).__name__}, not an object"
        )
    status = document.get("statusCode")
    if type(status) is not int:
        raise IntegrationFormatError(f"statusCode must be an integer, got {status!r}")
    if not 200 <= status <= 599:
        raise IntegrationFormatError(f"statusCode {status} is not a final HTTP status")

    headers: list[tuple[str, str]] = []
    raw_headers = document.get("headers")
    if raw_headers is None:
        raw_headers = {}
    if not isinstance(raw_headers, dict):
        raise IntegrationFormatError(f"headers must be an object, got {raw_headers!r}")
    for name, value in raw_headers.items():
        if not _is_token(name):
            raise IntegrationFormatError(f"invalid header name {name!r}")
        values = value if isinstance(value, list) else [value]
        for item in values:
            if not isinstance(item, str):
                raise IntegrationFormatError(
                    f"header {name!r}: a value must be a string or a list of strings, got {value!r}"
                )
            if "\r" in item or "\n" in item:
                raise IntegrationFormatError(f"header {name!r}: line break in {item!r}")
            headers.append((name, item))

    encoded = document.get("isBase64Encoded", False)
    if encoded is None:
        encoded = False
    if not isinstance(encoded, bool):
        raise IntegrationFormatError(f"isBase64Encoded must be true or false, got {encoded!r}")
    body = document.get("body")
    if body is None:
        body = ""
    if not isinstance(body, str):
        raise IntegrationFormatError(f"body must be a string, got {type(body).__name__}")
    if encoded:
        try:
            return status, headers, base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise IntegrationFormatError("isBase64Encoded is true but body is not base64") from None
    return status, headers, body.encode("utf-8", "replace")


def response_headers(
    headers: Iterable[tuple[str, str]], *, head: bool
) -> tuple[list[tuple[str, str]], int | None]:
    """The headers the gateway sends on (per-hop ones and Content-Length dropped) and, for a
    HEAD request, the Content-Length the function gave (a GET's length), if any."""
    kept: list[tuple[str, str]] = []
    length: int | None = None
    for name, value in headers:
        lower = name.lower()
        if lower == "content-length":
            text = value.strip()
            if text.isascii() and text.isdigit():
                length = int(text)
        elif lower not in HOP_BY_HOP:
            kept.append((name, value))
    return kept, length if head else None


def _is_token(name: object) -> bool:
    return isinstance(name, str) and bool(name) and TOKEN_CHARACTERS.issuperset(name)


# -- for the inspector -------------------------------------------------------------------------

PREVIEW_BYTES = 64


def body_view(
    body: object,
    *,
    base64_encoded: object,
    content_type: str = "",
    text_policy: TextPolicy | None = None,
) -> dict[str, Any] | None:
    """How the inspector shows an event's or a result's body: decoded text when it is textual,
    else its size and a hex preview of the first bytes; None when there is no body.

    ``{"kind": "text", "size": N, "text": ...}`` or
    ``{"kind": "binary", "size": N, "hex": "89 50 4e 47 ...", "truncated": bool}``; a body
    that claims base64 but is not is ``{"kind": "invalid", "error": ...}``.
    """
    if body is None or body == "":
        return None
    if not isinstance(body, str):
        text = json.dumps(body, ensure_ascii=False)
        return {"kind": "text", "size": len(text.encode("utf-8")), "text": text}
    if base64_encoded is not True:
        return {"kind": "text", "size": len(body.encode("utf-8")), "text": body}
    try:
        raw = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        return {"kind": "invalid", "error": "isBase64Encoded is true but body is not base64"}
    policy = text_policy or _DEFAULT_TEXT_POLICY
    if not content_type or policy.is_text_type(content_type):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            # Without a type, only text that reads as text: NUL bytes are valid UTF-8 too.
            if content_type or not any(c < " " and c not in "\t\n\r" for c in text):
                return {"kind": "text", "size": len(raw), "text": text}
    return {
        "kind": "binary",
        "size": len(raw),
        "hex": raw[:PREVIEW_BYTES].hex(" "),
        "truncated": len(raw) > PREVIEW_BYTES,
    }
