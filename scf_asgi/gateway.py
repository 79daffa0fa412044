"""API gateway event <-> neutral request/response, with no I/O.

`request_from_event` reads what a gateway event asks for into a `Request`; the ASGI and WSGI
runners read the headers in their own form, in the same pass that builds the scope or environ.
The runners hand back a `Response`, which `integration_response` (a dict, for SCF's built-in
runtime) or `encode_integration_response` (JSON bytes, for the runtime loop) serialise. Whether
a body travels as text or base64 is decided by `TextPolicy`, which is plain data.
"""

from __future__ import annotations

import base64
import binascii
import json

from .errors import InvalidEventError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any, Callable

    from .types import HeaderValue, IntegrationResponse

__all__ = [
    "DEFAULT_GATEWAY_DOMAINS",
    "DROPPED_HEADERS",
    "FORWARDING_HEADERS",
    "METHODS_WITH_BODY",
    "HeaderNames",
    "Request",
    "Response",
    "TextPolicy",
    "encode_integration_response",
    "encode_query",
    "event_headers",
    "forwarding_headers",
    "header_values",
    "integration_response",
    "is_http_event",
    "normalize_base_path",
    "parse_json",
    "quote_path",
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
# A space in a query becomes "+", as form encoding writes it (browsers, urlencode): every query
# parser reads it back as a space, and Python's does so without its slower %-decoding pass.
_QUERY_ESCAPES = {
    b: "+" if b == 0x20 else chr(b) if chr(b) in _QUERY_SAFE else f"%{b:02X}" for b in range(256)
}
_QUERY_SAFE_BUT_SPACE = _QUERY_SAFE | {" "}
_PATH_ESCAPES = tuple(chr(b) if chr(b) in _PATH_SAFE else f"%{b:02X}" for b in range(256))


def _quote_query(text: str) -> str:
    words = text.replace(" ", "")
    # Words and spaces (a search query) are checked by two C calls before the set scan.
    if (words.isalnum() and words.isascii()) or _QUERY_SAFE_BUT_SPACE.issuperset(text):
        return text.replace(" ", "+")
    # One character per UTF-8 byte, each replaced by its escape.
    return text.encode("utf-8").decode("latin-1").translate(_QUERY_ESCAPES)


def quote_path(path: str) -> bytes:
    """A decoded path percent-encoded as on the wire (the ASGI `raw_path`)."""
    if _PATH_SAFE.issuperset(path):
        return path.encode("ascii")
    return "".join([_PATH_ESCAPES[b] for b in path.encode("utf-8")]).encode("ascii")


class Request:
    """What one gateway event asks for, apart from its headers (which each interface reads in
    its own form, in one pass: see `asgi.scope_from_event` and `wsgi.environ_from_event`).

    `path` is the decoded path the app routes on (after `base_path` is stripped); `root_path` is
    the public prefix the app is mounted under (stage and/or base path), "" when none.
    """

    __slots__ = (
        "method",
        "path",
        "root_path",
        "query_string",
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
        body: bytes,
        scheme: str,
        server: tuple[str, int],
        client: tuple[str, int] | None,
    ) -> None:
        self.method = method
        self.path = path
        self.root_path = root_path
        self.query_string = query_string
        self.body = body
        self.scheme = scheme
        self.server = server
        self.client = client

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

    __slots__ = ("exact", "prefixes", "suffixes", "_known")

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
        # Content-Type values already judged: an app answers with a handful of them. Bounded,
        # in case an app puts ever-changing parameters in them.
        self._known: dict[str, bool] = {}

    def is_text_type(self, content_type: str) -> bool:
        known = self._known.get(content_type)
        if known is not None:
            return known
        media_type = content_type.partition(";")[0].strip().lower()
        text = (
            media_type in self.exact
            or media_type.startswith(self.prefixes)
            or media_type.endswith(self.suffixes)
        )
        if len(self._known) < 256:
            self._known[content_type] = text
        return text


# JSON in and out of the runtime API, on the json module's C scanner and encoder made once:
# json.loads and JSONEncoder.encode wrap them in several Python calls (encoding detection, two
# regex matches, a new C encoder per call) that cost more than a small event's whole parse.
# Output is compact and not ASCII-escaped: a CJK character is 3 bytes of UTF-8 but 6 as a
# \uXXXX escape, and the platform's 6 MB limit counts bytes.
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_JSON_DECODER = json.JSONDecoder()


def _made_encoder() -> Callable[[Any], str]:
    def default(value: object) -> object:
        raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")

    make = getattr(json.encoder, "c_make_encoder", None)
    if make is not None:
        try:
            encoder = make(
                None, default, json.encoder.encode_basestring, None, ":", ",", False, False, True
            )
        except TypeError:  # another signature: use the public path
            pass
        else:
            return lambda value: "".join(encoder(value, 0))
    return _COMPACT_JSON.encode


_json_text = _made_encoder()


def parse_json(raw: bytes) -> Any:
    """Decode the JSON document in `raw` (an event); ValueError if it is not one."""
    try:
        text = raw.decode("utf-8")
        value, end = _JSON_DECODER.scan_once(text, 0)  # type: ignore[attr-defined]
    except (UnicodeDecodeError, StopIteration, ValueError):
        pass  # json.loads gives the error its own message (or reads UTF-16/32)
    else:
        if end == len(text):
            return value
    return json.loads(raw)


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
    `=`, `%`, spaces and non-ASCII reach the app's parser exactly as the client meant them (a
    space as "+", the form encoding). A value may be a list (a repeated key): every value is
    kept, in order. ``None`` is a bare key.
    """
    if not query:
        return b""
    if query.__class__ is not dict and not isinstance(query, dict):
        raise InvalidEventError(f"queryString must be an object, got {type(query).__name__}")
    parts: list[str] = []
    append = parts.append
    for key, value in query.items():
        # ASCII letters and digits need no escape: two C calls, against a set scan per character.
        if key.__class__ is str and key.isalnum() and key.isascii():
            name = key
        else:
            name = _quote_query(str(key))
        if value.__class__ is str:  # the common case, inline
            if not (value.isalnum() and value.isascii()):
                value = _quote_query(value)
            append(name + "=" + value)
        elif value is None:
            append(name)
        elif isinstance(value, list):
            for item in value:
                append(name if item is None else name + "=" + _quote_query(_query_text(item)))
        else:
            append(name + "=" + _quote_query(_query_text(value)))
    return "&".join(parts).encode("ascii")


METHODS_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})

# Request headers the translation reads (host and forwarding, for the scheme and server) and
# those it drops: Content-Length and Transfer-Encoding describe the client's body on the wire,
# not the decoded body the app gets, so Content-Length is re-derived.
FORWARDING_HEADERS = ("host", "x-forwarded-proto", "x-forwarded-port")
DROPPED_HEADERS = frozenset({"content-length", "transfer-encoding"})


class HeaderNames:
    """Header names as sent -> an interface's form of them, str or bytes (its ``dropped`` value
    for a header it does not pass on), each worked out once.

    `plain` holds the names that are lower-case, as the gateway sends them, and kept: an event
    whose names are all plain can be read at C speed. Bounded, since names come from clients;
    past the bound, names are worked out each time.
    """

    __slots__ = ("forms", "plain", "_convert", "_dropped")

    LIMIT = 512

    def __init__(self, convert: Callable[[str], Any], dropped: str | bytes) -> None:
        self.forms: dict[str, Any] = {}
        self.plain: set[str] = set()
        self._convert = convert  # lower-case name -> form
        self._dropped = dropped

    def form(self, name: str) -> Any:
        form = self.forms.get(name)
        if form is not None:
            return form
        text = str(name)
        lower = text.lower()
        if lower in DROPPED_HEADERS or not text.isascii():
            # Field names are ASCII tokens (RFC 9110, 5.1): others cannot come from a client,
            # and could pass for real ones ("ho\u017ft".upper() is "HOST", "\u212a".lower()
            # is "k"), so the name as sent is checked, not its case-folded form.
            form = self._dropped
        else:
            form = self._convert(lower)
        if len(self.forms) < self.LIMIT:
            self.forms[name] = form
            if form and name == lower:
                self.plain.add(name)
        return form


def event_headers(event: Mapping[str, Any]) -> dict[str, Any]:
    """The event's header object ({} when absent); InvalidEventError if it is not an object."""
    headers = event.get("headers")
    if not headers:
        return {}
    if headers.__class__ is not dict and not isinstance(headers, dict):
        raise InvalidEventError(f"headers must be an object, got {type(headers).__name__}")
    return headers  # type: ignore[no-any-return]


def header_values(value: object) -> list[str]:
    """The values of a header whose event value is not a plain string: a list (a repeated
    header) gives its items, null gives none, a number or boolean its text."""
    if value is None:
        return []
    if isinstance(value, list):
        return [item if item.__class__ is str else str(item) for item in value if item is not None]
    return [value if value.__class__ is str else str(value)]  # type: ignore[list-item]


def forwarding_headers(headers: Mapping[str, Any]) -> tuple[str, str, str]:
    """The values of Host, X-Forwarded-Proto and X-Forwarded-Port, whatever the case of their
    names: of a name given twice (in different case) the last, of a list value its first item."""
    found = ["", "", ""]
    for name, value in headers.items():
        lower = str(name).lower()
        if lower in FORWARDING_HEADERS:
            values = [value] if value.__class__ is str else header_values(value)
            if values:
                found[FORWARDING_HEADERS.index(lower)] = values[0]
    return found[0], found[1], found[2]


def request_from_event(
    event: Mapping[str, Any],
    *,
    base_path: str = "",
    stage_prefix: str = "auto",
    forwarding: tuple[str, str, str] | None = None,
) -> Request:
    """Read an API gateway event into a `Request`.

    ``base_path`` (normalised, see `normalize_base_path`) is stripped from the path on a segment
    boundary and becomes part of `root_path`. ``stage_prefix`` says when ``/<stage>`` is put in
    front of `root_path`: "auto" only when the request came through the gateway's default domain
    (whose public URLs carry the stage), "on" always, "off" never. ``forwarding`` is the
    (Host, X-Forwarded-Proto, X-Forwarded-Port) values when the caller has read the headers
    already; otherwise they are read from the event.

    Raises `InvalidEventError` when the body claims base64 but is not, or a field is not of a
    usable type.
    """
    method: str = event.get("httpMethod") or "GET"
    if method.__class__ is not str or not method.isupper():
        method = str(method).upper()
    host, forwarded_proto, forwarded_port = (
        forwarding_headers(event_headers(event)) if forwarding is None else forwarding
    )

    request_context: dict[str, Any] = event.get("requestContext")  # type: ignore[assignment]
    if request_context.__class__ is not dict:
        request_context = request_context if isinstance(request_context, dict) else {}
    source_ip = request_context.get("sourceIp")
    client = (source_ip, 0) if source_ip and source_ip.__class__ is str else None

    stage: Any = request_context.get("stage")
    service_id: Any = request_context.get("serviceId")
    key: tuple[str, str, str, str, str, str] = (
        host,
        forwarded_proto,
        forwarded_port,
        stage if stage.__class__ is str else "",
        service_id if service_id.__class__ is str else "",
        stage_prefix,
    )
    origin = _ORIGINS.get(key)
    if origin is None:
        origin = _origin(*key)
        if len(_ORIGINS) < 256:
            _ORIGINS[key] = origin
    scheme, server, stage_root = origin

    path: str = event.get("path")  # type: ignore[assignment]
    if path.__class__ is not str or not path.startswith("/"):
        path = "/" + str(path or "")
    root_path = ""
    if base_path:
        if path == base_path:
            path = "/"
            root_path = base_path
        elif path.startswith(base_path) and path[len(base_path)] == "/":
            path = path[len(base_path) :]
            root_path = base_path
    if stage_root:
        root_path = stage_root + root_path

    text = event.get("body")
    if isinstance(text, str) and event.get("isBase64Encoded") is False:
        body = text.encode("utf-8")  # the usual text body, inline
    else:
        body = _decode_body(event)
    return Request(
        method,
        path,
        root_path,
        encode_query(event.get("queryString")),
        body,
        scheme,
        server,
        client,
    )


# Where requests come from (Host, forwarding headers, stage, service) -> (scheme, server, stage
# prefix of root_path): a function's events come through the same few, so each is worked out
# once. Bounded, since Host comes from the client.
_ORIGINS: dict[tuple[str, str, str, str, str, str], tuple[str, tuple[str, int], str]] = {}


def _origin(
    host: str,
    forwarded_proto: str,
    forwarded_port: str,
    stage: str,
    service_id: str,
    stage_prefix: str,
) -> tuple[str, tuple[str, int], str]:
    scheme = forwarded_proto.partition(",")[0].strip().lower() or "https"
    server_name = host
    port_text = ""
    colon = host.rfind(":")
    if colon != -1 and host.rfind("]") < colon:  # "[::1]:8080" has a port, "[::1]" has not
        server_name, port_text = host[:colon], host[colon + 1 :]
    if forwarded_port:
        port_text = forwarded_port.partition(",")[0].strip() or port_text
    if port_text.isascii() and port_text.isdigit():
        port = int(port_text)
    else:
        port = 443 if scheme == "https" else 80
    stage_root = ""
    if stage and (
        stage_prefix == "on"
        or (stage_prefix == "auto" and _is_default_domain(server_name, service_id))
    ):
        stage_root = "/" + stage
    return scheme, (server_name or "localhost", port), stage_root


def _is_default_domain(host: str, service_id: str) -> bool:
    lower = host.lower()
    if service_id and lower.startswith(service_id.lower() + "-"):
        return True
    return lower.startswith("service-") and any(label in lower for label in DEFAULT_GATEWAY_DOMAINS)


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
        return _json_text(document).encode("utf-8")
    return b"".join(
        (
            b'{"isBase64Encoded":true,"statusCode":',
            str(response.status).encode("ascii"),
            b',"headers":',
            _json_text(headers).encode("utf-8"),
            b',"body":"',
            base64.b64encode(body),
            b'"}',
        )
    )
