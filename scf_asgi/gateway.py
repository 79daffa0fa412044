"""API gateway events <-> neutral requests and responses, with no I/O.

    event (a dict) --request_from_event--> Request --(a runner builds the scope or environ
    and calls the app)--> Response --IntegrationPayload--> the integration response, as a
    dict (SCF's built-in runtime) or as JSON bytes (the Custom Runtime API)

Every rule about what a request carries lives here: the path and its public prefix (base path,
stage), the re-encoded query, the header policy (applied once, for both interfaces), the body's
decoding. For the answer: header folding and the text-or-base64 policy (`TextPolicy`). An event
that cannot be read raises `InvalidEventError`, and only this module decides that.
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
    "METHODS_WITH_BODY",
    "HeaderName",
    "IntegrationPayload",
    "Request",
    "Response",
    "ResultPayload",
    "TextPolicy",
    "encode_integration_response",
    "encode_query",
    "integration_response",
    "normalize_base_path",
    "parse_json",
    "quote_path",
    "request_from_event",
]

# Labels of the gateway's own default domains (`service-xxx-123.gz.apigw.tencentcs.com`, older
# `service-xxx-123.ap-guangzhou.apigateway.myqcloud.com`), whose public URLs carry the stage
# (`/release/...`) while the event's `path` does not.
DEFAULT_GATEWAY_DOMAINS = (".apigw.", ".apigateway.")

# Methods whose requests carry a body by definition: they get a Content-Length even when empty.
METHODS_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})

# -- percent-encoding (urllib.parse is not imported: 2 ms at every cold start) -----------------

# Query names and values keep only RFC 3986's unreserved characters; a path also keeps the
# other pchar characters and "/".
_UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
_QUERY_SAFE = frozenset(_UNRESERVED)
_PATH_SAFE = frozenset(_UNRESERVED + "/:@!$&'()*+,;=")
# A space in a query becomes "+", as form encoding writes it (browsers, urlencode), which every
# query parser reads back as a space.
_QUERY_ESCAPES = {
    b: "+" if b == 0x20 else chr(b) if chr(b) in _QUERY_SAFE else f"%{b:02X}" for b in range(256)
}
_QUERY_SAFE_BUT_SPACE = _QUERY_SAFE | {" "}
_PATH_ESCAPES = tuple(chr(b) if chr(b) in _PATH_SAFE else f"%{b:02X}" for b in range(256))


def _quote_query(text: str) -> str:
    if (text.isascii() and text.replace(" ", "").isalnum()) or _QUERY_SAFE_BUT_SPACE.issuperset(
        text
    ):
        return text.replace(" ", "+")
    # Each UTF-8 byte as one latin-1 character, replaced by its escape.
    return text.encode("utf-8").decode("latin-1").translate(_QUERY_ESCAPES)


def quote_path(path: str) -> bytes:
    """A decoded path percent-encoded as on the wire (the ASGI `raw_path`)."""
    if _PATH_SAFE.issuperset(path):
        return path.encode("ascii")
    return "".join([_PATH_ESCAPES[b] for b in path.encode("utf-8")]).encode("ascii")


def _query_text(value: object) -> str:
    if isinstance(value, str):
        return value
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
    if not isinstance(query, dict):
        raise InvalidEventError(f"queryString must be an object, got {type(query).__name__}")
    parts: list[str] = []
    for key, value in query.items():
        name = key if key.isascii() and key.isalnum() else _quote_query(str(key))
        if isinstance(value, str):
            safe = value.isascii() and value.isalnum()
            parts.append(name + "=" + (value if safe else _quote_query(value)))
        elif value is None:
            parts.append(name)
        elif isinstance(value, list):
            for item in value:
                parts.append(name if item is None else name + "=" + _quote_query(_query_text(item)))
        else:
            parts.append(name + "=" + _quote_query(_query_text(value)))
    return "&".join(parts).encode("ascii")


def normalize_base_path(base_path: str | None) -> str:
    """'/api/' -> '/api', 'api' -> '/api', '' or '/' -> ''."""
    if not base_path:
        return ""
    stripped = base_path.strip().strip("/")
    return "/" + stripped if stripped else ""


# -- request headers ---------------------------------------------------------------------------


class HeaderName:
    """A request header name in the forms both interfaces carry it.

    `lower` is the name as HTTP compares it; `raw` its bytes (ASGI); `environ` its PEP 3333 key
    (``HTTP_X_TAG``, ``CONTENT_TYPE``), or "" where WSGI must not carry it: a name with "_"
    would land on the same key as the one with "-" (``X_Forwarded_For`` passing for
    ``X-Forwarded-For``), so WSGI servers drop such names, and so does scf-asgi.
    """

    __slots__ = ("lower", "raw", "environ")

    def __init__(self, lower: str) -> None:
        self.lower = lower
        self.raw = lower.encode("ascii")
        if "_" in lower:
            self.environ = ""
        elif lower in ("content-type", "content-length"):
            self.environ = lower.upper().replace("-", "_")  # PEP 3333: not under HTTP_
        else:
            self.environ = "HTTP_" + lower.upper().replace("-", "_")

    def __repr__(self) -> str:
        return f"HeaderName({self.lower!r})"


# Content-Length and Transfer-Encoding describe the client's body on the wire, not the decoded
# body the app gets: they are dropped, and Content-Length is derived again from the body.
_DROPPED_HEADERS = frozenset({"content-length", "transfer-encoding"})
CONTENT_LENGTH = HeaderName("content-length")

# Names as sent -> their HeaderName, or None for a name that is not passed on. Bounded, since
# names come from clients; past the bound they are worked out each time.
_NAMES: dict[str, HeaderName | None] = {}
# The names in _NAMES that are passed on and already lower-case, as the gateway sends them:
# an event whose names are all among them, with text values, needs no per-header work.
_PLAIN_NAMES: set[str] = set()
_NAMES_LIMIT = 512


def _header_name(name: str) -> HeaderName | None:
    known = _NAMES.get(name, False)
    if known is not False:
        return known  # type: ignore[return-value]
    text = str(name)
    lower = text.lower()
    form: HeaderName | None
    if lower in _DROPPED_HEADERS or not text.isascii():
        # Field names are ASCII tokens (RFC 9110, 5.1): others cannot come from a client, and
        # could pass for real ones ("ho\u017ft".upper() is "HOST", "\u212a".lower() is "k"), so
        # the name as sent is checked, not its case-folded form.
        form = None
    else:
        form = HeaderName(lower)
    if len(_NAMES) < _NAMES_LIMIT:
        _NAMES[name] = form
        if form is not None and name == lower:
            _PLAIN_NAMES.add(name)
    return form


def _header_texts(value: object) -> list[str]:
    """The values of a header whose event value is not a plain string: a list (a repeated
    header) gives its items, null gives none, a number or boolean its text."""
    if value is None:
        return []
    if isinstance(value, list):
        return [item if isinstance(item, str) else str(item) for item in value if item is not None]
    return [str(value)]


# The headers the translation itself reads: where the request came from.
_HOST, _FORWARDED_PROTO, _FORWARDED_PORT, _FORWARDED_FOR = (
    "host",
    "x-forwarded-proto",
    "x-forwarded-port",
    "x-forwarded-for",
)
_ORIGIN_HEADERS = (_HOST, _FORWARDED_PROTO, _FORWARDED_PORT, _FORWARDED_FOR)


def _read_headers(
    event: Mapping[str, Any],
) -> tuple[list[tuple[HeaderName, bytes]], dict[str, str]]:
    """The event's headers as (name, UTF-8 value) pairs in event order, every rule applied, and
    the values of the origin headers (host and forwarding: of a name given twice in different
    case the last, of a list value its first item)."""
    headers = event.get("headers")
    if not headers:
        return [], {}
    if not isinstance(headers, dict):
        raise InvalidEventError(f"headers must be an object, got {type(headers).__name__}")
    if _PLAIN_NAMES.issuperset(headers):
        values = headers.values()
        try:
            joined = "".join(values)
        except TypeError:  # a list, null or number among the values
            pass
        else:
            if not joined.isascii():
                joined.encode("utf-8")  # a lone surrogate raises here, not in a runner
            origin: dict[str, str] = {
                name: headers[name] for name in _ORIGIN_HEADERS if name in headers
            }
            names: Iterable[HeaderName] = map(_NAMES.__getitem__, headers)  # type: ignore[arg-type]
            return list(zip(names, map(str.encode, values))), origin
    pairs: list[tuple[HeaderName, bytes]] = []
    origin = {}
    for name, value in headers.items():
        form = _header_name(name)
        if form is None:
            continue
        texts = [value] if isinstance(value, str) else _header_texts(value)
        pairs.extend([(form, text.encode("utf-8")) for text in texts])
        if texts and form.lower in _ORIGIN_HEADERS:
            origin[form.lower] = texts[0]
    return pairs, origin


# -- requests ----------------------------------------------------------------------------------


class Request:
    """What one gateway event asks for, read once, with every rule applied.

    `path` is the decoded path the app routes on (after `base_path` is stripped); `root_path` is
    the public prefix the app is mounted under (stage and/or base path), "" when none. `headers`
    are (name, value) pairs in event order, values as UTF-8 bytes, Content-Length derived from
    `body`. `event` is the raw event, which apps see as ``scf.event``.
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
        "event",
    )

    def __init__(
        self,
        method: str,
        path: str,
        root_path: str,
        query_string: bytes,
        headers: list[tuple[HeaderName, bytes]],
        body: bytes,
        scheme: str,
        server: tuple[str, int],
        client: tuple[str, int] | None,
        event: Mapping[str, Any],
    ) -> None:
        self.method = method
        self.path = path
        self.root_path = root_path
        self.query_string = query_string
        self.headers = headers
        self.body = body
        self.scheme = scheme
        self.server = server
        self.client = client
        self.event = event

    def __repr__(self) -> str:
        return f"Request({self.method} {self.root_path}{self.path})"


def request_from_event(
    event: Mapping[str, Any], *, base_path: str = "", stage_prefix: str = "auto"
) -> Request:
    """Read an API gateway (or function URL) event into a `Request`.

    ``base_path`` (normalised, see `normalize_base_path`) is stripped from the path on a segment
    boundary and becomes part of `root_path`. ``stage_prefix`` says when ``/<stage>`` is put in
    front of `root_path`: "auto" only when the request came through the gateway's default domain
    (whose public URLs carry the stage), "on" always, "off" never.

    A function URL's event has no ``requestContext``: no stage, and the client address is the
    first hop of X-Forwarded-For. Raises `InvalidEventError` for a field of an unusable type, a
    body that claims base64 but is not, or text that is not valid Unicode.
    """
    try:
        return _request(event, base_path, stage_prefix)
    except UnicodeEncodeError as exc:
        # JSON can carry a lone surrogate (\ud800), which no UTF-8 byte string can.
        bad = exc.object[exc.start : exc.end]
        raise InvalidEventError(
            f"the event holds text that is not valid Unicode ({exc.reason}: {bad!r})"
        ) from None


def _request(event: Mapping[str, Any], base_path: str, stage_prefix: str) -> Request:
    method: str = event.get("httpMethod") or "GET"
    if not method.isupper():
        method = method.upper()
    headers, origin = _read_headers(event)

    request_context = event.get("requestContext")
    if isinstance(request_context, dict):
        source_ip = request_context.get("sourceIp")
        stage = request_context.get("stage")
        service_id = request_context.get("serviceId")
    else:
        source_ip = stage = service_id = None
        forwarded_for = origin.get(_FORWARDED_FOR)
        if forwarded_for:
            source_ip = forwarded_for.partition(",")[0].strip()
    client = (source_ip, 0) if source_ip and isinstance(source_ip, str) else None

    key = (
        origin.get(_HOST, ""),
        origin.get(_FORWARDED_PROTO, ""),
        origin.get(_FORWARDED_PORT, ""),
        stage if isinstance(stage, str) else "",
        service_id if isinstance(service_id, str) else "",
        stage_prefix,
    )
    found = _ORIGINS.get(key)
    if found is None:
        found = _origin(*key)
        if len(_ORIGINS) < 256:
            _ORIGINS[key] = found
    scheme, server, stage_root = found

    path = event.get("path")
    if not isinstance(path, str) or not path.startswith("/"):
        path = "/" + str(path or "")
    if not path.isascii():
        path.encode("utf-8")  # a lone surrogate raises here, not in a runner
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
        body = text.encode("utf-8")
    else:
        body = _decode_body(event)
    if body or method in METHODS_WITH_BODY:
        headers.append((CONTENT_LENGTH, str(len(body)).encode("ascii")))
    return Request(
        method,
        path,
        root_path,
        encode_query(event.get("queryString")),
        headers,
        body,
        scheme,
        server,
        client,
        event,
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
        stage_root.encode("utf-8")  # a lone surrogate raises here, not in a runner
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


# -- responses ---------------------------------------------------------------------------------


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


def _response_parts(
    response: Response, head: bool, text_policy: TextPolicy
) -> tuple[dict[str, HeaderValue], bytes | str]:
    """Headers as the gateway wants them, and the body: `str` for text, `bytes` for base64."""
    headers: dict[str, HeaderValue] = {}
    # The first spelling the app used for a header name, keyed by its lower-case form, so that
    # `Set-Cookie` and `set-cookie` end up in one list rather than as two keys: the gateway
    # takes a repeated header as a list, and joining cookies with commas corrupts them.
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
            encoded = value.lower() not in ("", "identity")
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


# Compact and not ASCII-escaped: a CJK character is 3 bytes of UTF-8 but 6 as a \uXXXX escape,
# and the platform's 6 MB limit counts bytes.
_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_DECODER = json.JSONDecoder()


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
        return _JSON.encode(document).encode("utf-8")
    return b"".join(
        (
            b'{"isBase64Encoded":true,"statusCode":',
            str(response.status).encode("ascii"),
            b',"headers":',
            _JSON.encode(headers).encode("utf-8"),
            b',"body":"',
            base64.b64encode(body),
            b'"}',
        )
    )


class IntegrationPayload:
    """An HTTP answer, ready to leave either way: `document()` for SCF's built-in runtime (the
    handler's return value), `encode()` for the Custom Runtime API (the posted bytes)."""

    __slots__ = ("response", "head", "text_policy")

    def __init__(self, response: Response, head: bool, text_policy: TextPolicy) -> None:
        self.response = response
        self.head = head
        self.text_policy = text_policy

    def document(self) -> IntegrationResponse:
        return integration_response(self.response, head=self.head, text_policy=self.text_policy)

    def encode(self) -> bytes:
        return encode_integration_response(
            self.response, head=self.head, text_policy=self.text_policy
        )


class ResultPayload:
    """An event handler's result. Encoded at once: a value that JSON cannot carry (an object,
    NaN) raises TypeError or ValueError here, where the adapter turns it into a failure."""

    __slots__ = ("value", "data")

    def __init__(self, value: Any) -> None:
        self.value = value
        self.data = _JSON.encode(value).encode("utf-8")

    def document(self) -> Any:
        return self.value

    def encode(self) -> bytes:
        return self.data


def parse_json(raw: bytes) -> Any:
    """Decode the JSON document in `raw` (an event); InvalidEventError if it is not one."""
    try:
        return _DECODER.decode(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        pass
    try:
        return json.loads(raw)  # UTF-16 and UTF-32 too, as json.loads reads them
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise InvalidEventError(f"the event is not valid JSON: {exc}") from None
