"""API gateway event <-> neutral request/response, with no I/O.

`request_from_event` reads a gateway event into a `Request`; the ASGI and WSGI runners build
their scope/environ from it. The runners hand back a `Response`, which `integration_response`
(a dict, for SCF's built-in runtime) or `encode_integration_response` (JSON bytes, for the
runtime loop) serialise. Whether a body travels as text or base64 is decided by `TextPolicy`,
which is plain data.
"""

from __future__ import annotations

import base64
import binascii
import json

from .errors import InvalidEventError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any

    from .types import HeaderValue, IntegrationResponse

__all__ = [
    "DEFAULT_GATEWAY_DOMAINS",
    "Request",
    "Response",
    "TextPolicy",
    "encode_integration_response",
    "encode_query",
    "integration_response",
    "is_http_event",
    "normalize_base_path",
    "request_from_event",
]

# Labels of the gateway's own default domains (`service-xxx-123.gz.apigw.tencentcs.com`, older
# `service-xxx-123.ap-guangzhou.apigateway.myqcloud.com`), whose public URLs carry the stage
# (`/release/...`) while the event's `path` does not.
DEFAULT_GATEWAY_DOMAINS = (".apigw.", ".apigateway.")

# Percent-encoding, table-driven (urllib.parse costs 2 ms of import at every cold start).
# Query names and values keep only RFC 3986's unreserved characters; a path also keeps the
# other pchar characters and "/".
_UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
_QUERY_SAFE = frozenset(_UNRESERVED)
_PATH_SAFE = frozenset(_UNRESERVED + "/:@!$&'()*+,;=")
_QUERY_ESCAPES = tuple(chr(b) if chr(b) in _QUERY_SAFE else f"%{b:02X}" for b in range(256))
_PATH_ESCAPES = tuple(chr(b) if chr(b) in _PATH_SAFE else f"%{b:02X}" for b in range(256))


def _quote_query(text: str) -> str:
    if _QUERY_SAFE.issuperset(text):
        return text
    return "".join([_QUERY_ESCAPES[b] for b in text.encode("utf-8")])


def _quote_path(text: str) -> str:
    if _PATH_SAFE.issuperset(text):
        return text
    return "".join([_PATH_ESCAPES[b] for b in text.encode("utf-8")])


class Request:
    """One HTTP request, as read from a gateway event.

    `path` is the decoded path the app routes on (after `base_path` is stripped); `root_path` is
    the public prefix the app is mounted under (stage and/or base path), "" when none.
    """

    __slots__ = (
        "method",
        "path",
        "root_path",
        "query_string",
        "headers",
        "body",
        "scheme",
        "server",
        "client",
    )

    def __init__(
        self,
        method: str,
        path: str,
        root_path: str,
        query_string: bytes,
        headers: list[tuple[str, str]],
        body: bytes,
        scheme: str,
        server: tuple[str, int],
        client: tuple[str, int] | None,
    ) -> None:
        self.method = method
        self.path = path
        self.root_path = root_path
        self.query_string = query_string
        self.headers = headers  # (lower-case name, value) in event order
        self.body = body
        self.scheme = scheme
        self.server = server
        self.client = client

    def raw_path(self, full: bool = True) -> bytes:
        """The path percent-encoded as on the wire: the public one (root_path + path), or
        without root_path."""
        path = self.root_path + self.path if full else self.path
        return _quote_path(path).encode("ascii")

    def __repr__(self) -> str:
        return f"Request({self.method} {self.root_path}{self.path})"


class Response:
    """What an app answered: status, headers in the app's order and spelling, whole body."""

    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def __repr__(self) -> str:
        return f"Response({self.status}, {len(self.body)} bytes)"


class TextPolicy:
    """Which response bodies travel as text; everything else goes as base64.

    A body is text when its media type is textual, it has no ``Content-Encoding`` (gzip output
    is bytes whatever its type) and it decodes as UTF-8. ``extra`` entries are exact types
    (``application/vnd.api``) or whole families (``application/*``).
    """

    __slots__ = ("exact", "prefixes", "suffixes")

    TYPES = frozenset(
        {
            "application/json",
            "application/javascript",
            "application/ecmascript",
            "application/x-javascript",
            "application/xml",
            "application/xhtml+xml",
            "application/x-www-form-urlencoded",
            "application/graphql",
            "application/yaml",
            "application/x-yaml",
            "image/svg+xml",
        }
    )
    PREFIXES = ("text/",)
    SUFFIXES = ("+json", "+xml")

    def __init__(self, extra: Iterable[str] = ()) -> None:
        exact = set(self.TYPES)
        prefixes = list(self.PREFIXES)
        for item in extra:
            media_type = item.strip().lower()
            if media_type.endswith("/*"):
                prefixes.append(media_type[:-1])
            elif media_type:
                exact.add(media_type)
        self.exact = frozenset(exact)
        self.prefixes = tuple(prefixes)
        self.suffixes = self.SUFFIXES

    def is_text_type(self, content_type: str) -> bool:
        media_type = content_type.partition(";")[0].strip().lower()
        return (
            media_type in self.exact
            or media_type.startswith(self.prefixes)
            or media_type.endswith(self.suffixes)
        )


# One compact encoder, made once (json.dumps(..., separators=...) builds a new one per call).
# Not ASCII-escaped: a CJK character is 3 bytes of UTF-8 but 6 as a \uXXXX escape, and the
# platform's 6 MB limit counts bytes.
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def normalize_base_path(base_path: str | None) -> str:
    """'/api/' -> '/api', 'api' -> '/api', '' or '/' -> ''."""
    if not base_path:
        return ""
    stripped = base_path.strip().strip("/")
    return "/" + stripped if stripped else ""


def is_http_event(event: Mapping[str, Any]) -> bool:
    """An API gateway event (hand-written console test events may lack `requestContext`)."""
    return isinstance(event.get("httpMethod"), str)


def _query_text(value: object) -> str:
    if value.__class__ is str:
        return value  # type: ignore[return-value]
    if isinstance(value, bool):
        return "true" if value else "false"  # as the client wrote it, not Python's True
    return str(value)


def encode_query(query: Mapping[str, Any] | None) -> bytes:
    """Percent-encode the gateway's `queryString` back into a query string.

    The gateway hands over decoded values; re-encoding every reserved character means `+`, `&`,
    `=`, `%`, spaces and non-ASCII reach the app's parser exactly as the client meant them. A
    value may be a list (a repeated key): every value is kept, in order. ``None`` is a bare key.
    """
    if not query:
        return b""
    if not isinstance(query, dict):
        raise InvalidEventError(f"queryString must be an object, got {type(query).__name__}")
    parts: list[str] = []
    append = parts.append
    for key, value in query.items():
        name = _quote_query(str(key))
        if isinstance(value, list):
            for item in value:
                append(name if item is None else name + "=" + _quote_query(_query_text(item)))
        elif value is None:
            append(name)
        else:
            append(name + "=" + _quote_query(_query_text(value)))
    return "&".join(parts).encode("ascii")


# Headers with a role while copying; "" marks those dropped.
_SPECIAL_HEADERS = {
    "host": "host",
    "x-forwarded-proto": "proto",
    "x-forwarded-port": "port",
    "content-length": "",
    "transfer-encoding": "",
}


def request_from_event(
    event: Mapping[str, Any],
    *,
    base_path: str = "",
    stage_prefix: str = "auto",
) -> Request:
    """Read an API gateway event into a `Request`.

    ``base_path`` (normalised, see `normalize_base_path`) is stripped from the path on a segment
    boundary and becomes part of `root_path`. ``stage_prefix`` says when ``/<stage>`` is put in
    front of `root_path`: "auto" only when the request came through the gateway's default domain
    (whose public URLs carry the stage), "on" always, "off" never.

    Raises `InvalidEventError` when the body claims base64 but is not.
    """
    method = str(event.get("httpMethod") or "GET").upper()
    request_context = event.get("requestContext") or {}

    host = forwarded_proto = forwarded_port = ""
    headers: list[tuple[str, str]] = []
    raw_headers = event.get("headers")
    if raw_headers:
        if not isinstance(raw_headers, dict):
            raise InvalidEventError(f"headers must be an object, got {type(raw_headers).__name__}")
        append = headers.append
        for raw_name, value in raw_headers.items():
            name = raw_name.lower()
            role = _SPECIAL_HEADERS.get(name)
            if role is None and value.__class__ is str:
                append((name, value))  # the common case: one lookup, one append
                continue
            if value is None or role == "":
                continue  # "": content-length, transfer-encoding, re-derived from the body
            if isinstance(value, list):
                items = [str(item) for item in value if item is not None]
                if not items:
                    continue
                headers.extend([(name, item) for item in items])
                value = items[0]
            else:
                value = value if value.__class__ is str else str(value)
                append((name, value))
            if role == "host":
                host = value
            elif role == "proto":
                forwarded_proto = value
            elif role == "port":
                forwarded_port = value

    body = _decode_body(event)
    if body or method in ("POST", "PUT", "PATCH"):
        headers.append(("content-length", str(len(body))))

    scheme = forwarded_proto.partition(",")[0].strip().lower() or "https"
    server_name, _, host_port = host.rpartition(":") if _has_port(host) else (host, "", "")
    port_text = forwarded_port.partition(",")[0].strip() or host_port
    port = int(port_text) if port_text.isdigit() else (443 if scheme == "https" else 80)
    server = (server_name or "localhost", port)

    source_ip = request_context.get("sourceIp") if isinstance(request_context, dict) else None
    client = (source_ip, 0) if isinstance(source_ip, str) and source_ip else None

    path = event.get("path")
    path = path if isinstance(path, str) and path.startswith("/") else "/" + str(path or "")
    root_path = ""
    if base_path:
        if path == base_path:
            path = "/"
            root_path = base_path
        elif path.startswith(base_path) and path[len(base_path)] == "/":
            path = path[len(base_path) :]
            root_path = base_path
    if stage_prefix != "off" and isinstance(request_context, dict):
        stage = request_context.get("stage")
        if (
            stage
            and isinstance(stage, str)
            and (
                stage_prefix == "on"
                or _is_default_domain(server_name, request_context.get("serviceId"))
            )
        ):
            root_path = "/" + stage + root_path

    query_string = encode_query(event.get("queryString"))
    return Request(method, path, root_path, query_string, headers, body, scheme, server, client)


def _has_port(host: str) -> bool:
    # "[::1]:8080" has a port, "[::1]" does not; "example.com:443" has one.
    colon = host.rfind(":")
    return colon != -1 and host.rfind("]") < colon


def _is_default_domain(host: str, service_id: object) -> bool:
    host = host.lower()
    if isinstance(service_id, str) and service_id and host.startswith(service_id.lower() + "-"):
        return True
    return host.startswith("service-") and any(label in host for label in DEFAULT_GATEWAY_DOMAINS)


def _decode_body(event: Mapping[str, Any]) -> bytes:
    body = event.get("body")
    if body is None or body == "":
        return b""
    if not isinstance(body, str):
        # Console test events sometimes carry the body as a JSON value rather than a string.
        return json.dumps(body, ensure_ascii=False).encode("utf-8")
    encoded = event.get("isBase64Encoded")
    if encoded is True or (isinstance(encoded, str) and encoded.lower() == "true"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidEventError(
                "the request body is marked isBase64Encoded but is not valid base64"
            ) from exc
    return body.encode("utf-8")


def _response_parts(
    response: Response, head: bool, text_policy: TextPolicy
) -> tuple[dict[str, HeaderValue], bytes | str]:
    """Headers as the gateway wants them, and the body: `str` for text, `bytes` for base64."""
    headers: dict[str, HeaderValue] = {}
    # The first spelling the app used for a header name, keyed by its lower-case form, so that
    # `Set-Cookie` and `set-cookie` end up in one list rather than as two keys.
    spelling: dict[str, str] = {}
    content_type = ""
    encoded = False
    for name, raw_value in response.headers:
        # Surrounding white space is not part of a field value (RFC 9110, 5.5); Django's WSGI
        # handler, for one, puts a space in front of every Set-Cookie value.
        value = raw_value.strip()
        lower = name.lower()
        if lower == "content-type":
            content_type = value
        elif lower == "content-encoding":
            encoded = value.strip().lower() not in ("", "identity")
        key = spelling.get(lower)
        if key is None:
            spelling[lower] = name
            headers[name] = value
        else:
            existing = headers[key]
            if isinstance(existing, list):
                existing.append(value)
            else:
                headers[key] = [existing, value]
    body = response.body
    if head or not body:
        return headers, ""
    if not encoded and content_type and text_policy.is_text_type(content_type):
        try:
            return headers, body.decode("utf-8")
        except UnicodeDecodeError:
            pass
    return headers, body


def integration_response(
    response: Response, *, head: bool = False, text_policy: TextPolicy
) -> IntegrationResponse:
    """The integration response as a dict (what a built-in runtime handler returns)."""
    headers, body = _response_parts(response, head, text_policy)
    if isinstance(body, str):
        return {
            "isBase64Encoded": False,
            "statusCode": response.status,
            "headers": headers,
            "body": body,
        }
    return {
        "isBase64Encoded": True,
        "statusCode": response.status,
        "headers": headers,
        "body": base64.b64encode(body).decode("ascii"),
    }


def encode_integration_response(
    response: Response, *, head: bool = False, text_policy: TextPolicy
) -> bytes:
    """The integration response as JSON bytes, ready to post to the runtime API.

    Same document as `integration_response`; a base64 body is spliced in without passing through
    the JSON encoder, since base64 never needs escaping and bodies can be megabytes.
    """
    headers, body = _response_parts(response, head, text_policy)
    if isinstance(body, str):
        document: dict[str, Any] = {
            "isBase64Encoded": False,
            "statusCode": response.status,
            "headers": headers,
            "body": body,
        }
        return _COMPACT_JSON.encode(document).encode("utf-8")
    return b"".join(
        (
            b'{"isBase64Encoded":true,"statusCode":',
            str(response.status).encode("ascii"),
            b',"headers":',
            _COMPACT_JSON.encode(headers).encode("utf-8"),
            b',"body":"',
            base64.b64encode(body),
            b'"}',
        )
    )
