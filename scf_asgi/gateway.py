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

from .errors import InvalidEventError, RequestTooLarge
from .platform import MAX_PAYLOAD_BYTES

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any

    from .types import HeaderValue, IntegrationResponse

__all__ = [
    "DEFAULT_GATEWAY_DOMAINS",
    "METHODS_WITH_BODY",
    "TOKEN_CHARACTERS",
    "HeaderName",
    "HeaderNames",
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
    "response_header_problem",
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


def _scalar_text(value: object, where: str) -> str:
    """A header or query value that is not text, as the client wrote it: a boolean as JSON's
    true/false, a number as JSON writes it. An object or a nested list is no value a client
    can send: InvalidEventError."""
    if value.__class__ is str:
        return value  # type: ignore[return-value]
    if value is True or value is False:
        return "true" if value else "false"
    if value.__class__ is int or value.__class__ is float:
        try:
            return _JSON.encode(value)
        except ValueError:  # NaN or an infinity, from an in-process caller: no JSON number
            pass
    raise InvalidEventError(f"{where} has a value of type {type(value).__name__}")


def encode_query(query: Mapping[str, Any] | None) -> bytes:
    """Percent-encode the gateway's `queryString` back into a query string.

    The gateway hands over decoded values; re-encoding every reserved character means `+`, `&`,
    `=`, `%`, spaces and non-ASCII reach the app's parser exactly as the client meant them (a
    space as "+", the form encoding). A value may be a list (a repeated key): every value is
    kept, in order. ``None`` is a bare key; true, false and numbers are written as JSON writes
    them; anything else is an InvalidEventError.
    """
    if not query:
        return b""
    if query.__class__ is not dict and not isinstance(query, dict):
        raise InvalidEventError(f"queryString must be an object, got {type(query).__name__}")
    parts: list[str] = []
    for key, value in query.items():
        if key.__class__ is not str:
            key = str(key)
        name = key if key.isascii() and key.isalnum() else _quote_query(key)
        if value.__class__ is str:
            safe = value.isascii() and value.isalnum()
            parts.append(name + "=" + (value if safe else _quote_query(value)))
        elif value is None:
            parts.append(name)
        elif isinstance(value, list):
            for item in value:
                if item is None:
                    parts.append(name)
                else:
                    text = _scalar_text(item, f"queryString {key!r}")
                    parts.append(name + "=" + _quote_query(text))
        else:
            parts.append(name + "=" + _quote_query(_scalar_text(value, f"queryString {key!r}")))
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


class HeaderNames:
    """The names of one request's headers, in order, in the forms each interface needs at once:
    `raw` (ASGI), `environ` (WSGI keys, "" for a name WSGI must not carry), and whether those
    keys are all distinct and carried (then the environ takes them as they are, no folding).

    Made once for each sequence of names a function's events carry (the gateway sends the same
    few again and again), so an event pays no work per header name.
    """

    __slots__ = ("names", "raw", "environ", "environ_distinct", "_with_length")

    def __init__(self, names: tuple[HeaderName, ...]) -> None:
        self.names = names
        self.raw = tuple([name.raw for name in names])
        self.environ = tuple([name.environ for name in names])
        self.environ_distinct = "" not in self.environ and len(set(self.environ)) == len(names)
        self._with_length: HeaderNames | None = None

    def with_content_length(self) -> HeaderNames:
        """These names and a Content-Length after them."""
        if self._with_length is None:
            self._with_length = HeaderNames((*self.names, CONTENT_LENGTH))
        return self._with_length

    def __repr__(self) -> str:
        return f"HeaderNames({[name.lower for name in self.names]})"


# Content-Length and Transfer-Encoding describe the client's body on the wire, not the decoded
# body the app gets: they are dropped, and Content-Length is derived again from the body.
_DROPPED_HEADERS = frozenset({"content-length", "transfer-encoding"})
CONTENT_LENGTH = HeaderName("content-length")
NO_HEADERS = HeaderNames(())

# Names as sent -> their HeaderName, or None for a name that is not passed on; and sequences of
# names as sent -> their HeaderNames, for events whose names are all passed on and lower-case
# (as the gateway sends them). Bounded, since names come from clients: past the bounds they are
# worked out each time.
_NAMES: dict[str, HeaderName | None] = {}
_NAMES_LIMIT = 512
_SEQUENCES: dict[tuple[str, ...], HeaderNames] = {}
# The bound of each of the other caches of what the events of a function have in common (the
# sequences of header names, the origins of requests, response content types).
CACHE_LIMIT = 256


def _header_name(name: str) -> HeaderName | None:
    """The HeaderName of a name as sent, or None for one that is not passed on;
    InvalidEventError for a name no client can send."""
    known = _NAMES.get(name, False)
    if known is not False:
        return known  # type: ignore[return-value]
    if name.__class__ is not str or not name or not TOKEN_CHARACTERS.issuperset(name):
        # Field names are tokens (RFC 9110, 5.1). Others cannot come from a client: CR or LF
        # in a name would forge headers after it, and non-ASCII ones could pass for real ones
        # ("ho\u017ft".upper() is "HOST", "\u212a".lower() is "k").
        raise InvalidEventError(f"header name {str(name)[:100]!r} is not an HTTP token")
    lower = name.lower()
    form = None if lower in _DROPPED_HEADERS else HeaderName(lower)
    if len(_NAMES) < _NAMES_LIMIT:
        _NAMES[name] = form
    return form


def _header_texts(name: str, value: object) -> list[str]:
    """The values of a header whose event value is not a plain string: a list (a repeated
    header) gives its items, null gives none, a number or boolean its JSON text."""
    if value is None:
        return []
    where = f"header {name[:100]!r}"
    if isinstance(value, list):
        return [_scalar_text(item, where) for item in value if item is not None]
    return [_scalar_text(value, where)]


# RFC 9110, 5.6.2: the characters of a token (a field name, a method).
TOKEN_CHARACTERS = frozenset(
    "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)
# RFC 9110, 5.6.3: the optional white space around a field value (and a list's items); no
# other space, such as a form feed or a no-break space (UTF-8 C2 A0, whose A0 byte a
# str.strip() would take off), is part of it.
OWS = " \t"
# The characters RFC 9110 (5.5) says a field value MUST NOT carry on (reject or replace):
# CR and LF would end the field early, NUL the message. Other control characters are invalid
# too, but "MAY be retained" where no downstream HTTP parser reads them, as here; they cannot
# split a header, and the log escapes them.
_FRAMING = ("\r", "\n", "\x00")


def _framing_character(text: str) -> str | None:
    """The first of CR, LF and NUL that `text` holds, if any."""
    for character in _FRAMING:
        if character in text:
            return character
    return None


# The headers the translation itself reads: where the request came from.
_HOST, _FORWARDED_PROTO, _FORWARDED_PORT, _FORWARDED_FOR = (
    "host",
    "x-forwarded-proto",
    "x-forwarded-port",
    "x-forwarded-for",
)
_ORIGIN_HEADERS = (_HOST, _FORWARDED_PROTO, _FORWARDED_PORT, _FORWARDED_FOR)


# Response header names already found to be tokens (an app sends the same few). Bounded.
_RESPONSE_NAMES: set[str] = set()


def response_header_problem(headers: list[tuple[str, str]]) -> str | None:
    """What makes an app's response headers unfit to pass on, or None: a name that is not a
    token (RFC 9110, 5.1), or a value with CR, LF or NUL, which would split the header in two
    on its way to the client."""
    for name, value in headers:
        if name not in _RESPONSE_NAMES:
            if not name or not TOKEN_CHARACTERS.issuperset(name):
                return f"the response header name {name[:100]!r} is not an HTTP token"
            if len(_RESPONSE_NAMES) < CACHE_LIMIT:
                _RESPONSE_NAMES.add(name)
        if "\r" in value or "\n" in value or "\x00" in value:
            return (
                f"the response header {name[:100]!r} has a control character "
                f"({_framing_character(value)!r}) in its value"
            )
    return None


def _refuse_control_characters(pairs: Iterable[tuple[str, str]]) -> None:
    for name, value in pairs:
        character = _framing_character(value)
        if character:
            raise InvalidEventError(
                f"header {name[:100]!r} has a control character ({character!r}) in its value"
            )


def _read_headers(event: Mapping[str, Any]) -> tuple[HeaderNames, list[str], Mapping[str, str]]:
    """The event's header names and values, in event order and with every rule applied (a
    list value is one header per item), and the origin headers' values (host and forwarding:
    of a name given twice in different case the last, of a list value its first item)."""
    headers = event.get("headers")
    if not headers:
        return NO_HEADERS, [], {}
    if headers.__class__ is not dict and not isinstance(headers, dict):
        raise InvalidEventError(f"headers must be an object, got {type(headers).__name__}")
    sequence = tuple(headers)
    names = _SEQUENCES.get(sequence)
    if names is not None:
        values = list(headers.values())
        try:
            joined = "".join(values)
        except TypeError:  # a list, null or number among the values
            pass
        else:
            if not joined.isascii():
                joined.encode("utf-8")  # a lone surrogate raises here, not in a runner
            if "\r" in joined or "\n" in joined or "\x00" in joined:
                _refuse_control_characters(zip(headers, values))
            # Every name is lower-case and every value text: the event's own object answers
            # for the origin headers.
            return names, values, headers
    forms: list[HeaderName] = []
    values = []
    origin: dict[str, str] = {}
    plain = True  # every name passed on as sent, every value one text
    for name, value in headers.items():
        form = _header_name(name)
        if form is None:
            plain = False
            continue
        if value.__class__ is str:
            texts = [value]
        else:
            texts = _header_texts(name, value)
            plain = False
        for text in texts:
            if not text.isascii():
                text.encode("utf-8")  # a lone surrogate raises here, not in a runner
            if "\r" in text or "\n" in text or "\x00" in text:
                _refuse_control_characters([(name, text)])
            forms.append(form)
            values.append(text)
        if texts and form.lower in _ORIGIN_HEADERS:
            if form.lower == _HOST and (_HOST in origin or len(texts) > 1):
                # RFC 9112, 3.2: a request with more than one Host is answered 400; which one
                # the app and the URLs it builds would see is anybody's guess.
                raise InvalidEventError("the request has more than one Host header")
            origin[form.lower] = texts[0]
        if name != form.lower:
            plain = False
    names = HeaderNames(tuple(forms))
    if plain and len(_SEQUENCES) < CACHE_LIMIT:
        _SEQUENCES[sequence] = names
    return names, values, origin


# -- requests ----------------------------------------------------------------------------------


class Request:
    """What one gateway event asks for, read once, with every rule applied.

    `path` is the decoded path the app routes on (after `base_path` is stripped); `root_path` is
    the public prefix the app is mounted under (stage and/or base path), "" when none. The
    headers are in event order: `header_names` (`HeaderNames`) and `header_values` (text), of
    one length, which each interface puts together in its own form; Content-Length is derived
    from `body`.
    `event` is the raw event, which apps see as ``scf.event``.
    """

    __slots__ = (
        "method",
        "path",
        "root_path",
        "query_string",
        "header_names",
        "header_values",
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
        header_names: HeaderNames,
        header_values: list[str],
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
        self.header_names = header_names
        self.header_values = header_values
        self.body = body
        self.scheme = scheme
        self.server = server
        self.client = client
        self.event = event

    def __repr__(self) -> str:
        return f"Request({self.method} {self.root_path}{self.path})"


def request_from_event(
    event: Mapping[str, Any],
    *,
    base_path: str = "",
    stage_prefix: str = "auto",
    max_body: int = MAX_PAYLOAD_BYTES,
) -> Request:
    """Read an API gateway (or function URL) event into a `Request`.

    ``base_path`` (normalised, see `normalize_base_path`) is stripped from the path on a segment
    boundary and becomes part of `root_path`. ``stage_prefix`` says when ``/<stage>`` is put in
    front of `root_path`: "auto" only when the request came through the gateway's default domain
    (whose public URLs carry the stage), "on" always, "off" never. A body of more than
    ``max_body`` bytes (once decoded) raises `RequestTooLarge`, checked before it is decoded.

    A function URL's event has no ``requestContext``: no stage, and the client address is the
    first hop of X-Forwarded-For. Raises `InvalidEventError` for a field of an unusable type, a
    body that claims base64 but is not, or text that is not valid Unicode.
    """
    try:
        method: str = event.get("httpMethod") or "GET"
        if not (method.isascii() and method.isalpha()) and not TOKEN_CHARACTERS.issuperset(method):
            # Checked before its case is folded: "po\u017ft".upper() is "POST".
            raise InvalidEventError(f"httpMethod {method[:100]!r} is not an HTTP token")
        if not method.isupper():
            method = method.upper()
        names, values, origin = _read_headers(event)

        request_context: Any = event.get("requestContext")
        if request_context.__class__ is dict or isinstance(request_context, dict):
            source_ip = request_context.get("sourceIp")
            stage = request_context.get("stage")
            service_id = request_context.get("serviceId")
        else:
            source_ip = stage = service_id = None
            forwarded_for = origin.get(_FORWARDED_FOR)
            if forwarded_for:
                source_ip = forwarded_for.partition(",")[0].strip(OWS)
        client = (source_ip, 0) if source_ip and source_ip.__class__ is str else None

        key = (
            origin.get(_HOST, ""),
            origin.get(_FORWARDED_PROTO, ""),
            origin.get(_FORWARDED_PORT, ""),
            stage if stage.__class__ is str else "",
            service_id if service_id.__class__ is str else "",
            stage_prefix,
        )
        found = _ORIGINS.get(key)
        if found is None:
            found = _origin(*key)
            if len(_ORIGINS) < CACHE_LIMIT:
                _ORIGINS[key] = found
        scheme, server, stage_root = found

        path: Any = event.get("path")
        if path.__class__ is not str:
            path = "" if path is None else _scalar_text(path, "path")
        if not path.startswith("/"):
            path = "/" + path
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

        text: Any = event.get("body")
        if text.__class__ is str and event.get("isBase64Encoded") is False:
            if len(text) > max_body:  # each character is one byte at least
                raise RequestTooLarge(_too_large(max_body))
            body = text.encode("utf-8")
        else:
            body = _decode_body(event, max_body)
        if len(body) > max_body:
            raise RequestTooLarge(_too_large(max_body))
        if body or method in METHODS_WITH_BODY:
            names = names.with_content_length()
            values.append(str(len(body)))
        return Request(
            method,
            path,
            root_path,
            encode_query(event.get("queryString")),
            names,
            values,
            body,
            scheme,
            server,
            client,
            event,
        )
    except UnicodeEncodeError as exc:
        # JSON can carry a lone surrogate (\ud800), which no UTF-8 byte string can.
        bad = exc.object[exc.start : exc.end]
        raise InvalidEventError(
            f"the event holds text that is not valid Unicode ({exc.reason}: {bad!r})"
        ) from None


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
    scheme = forwarded_proto.partition(",")[0].strip(OWS).lower() or "https"
    server_name = host
    port_text = ""
    colon = host.rfind(":")
    if colon != -1 and host.rfind("]") < colon:  # "[::1]:8080" has a port, "[::1]" has not
        server_name, port_text = host[:colon], host[colon + 1 :]
    if forwarded_port:
        port_text = forwarded_port.partition(",")[0].strip(OWS) or port_text
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


def _too_large(max_body: int) -> str:
    return f"the request body is larger than {max_body} bytes"


def _decode_body(event: Mapping[str, Any], max_body: int) -> bytes:
    body = event.get("body")
    if body is None or body == "":
        return b""
    if not isinstance(body, str):
        # Console test events sometimes carry the body as a JSON value rather than a string.
        try:
            return json.dumps(body, ensure_ascii=False, allow_nan=False).encode("utf-8")
        except RecursionError:
            raise InvalidEventError("the request body is nested too deeply") from None
        except ValueError:
            raise InvalidEventError("the request body holds NaN or an infinity") from None
    encoded = event.get("isBase64Encoded")
    if encoded is True or (isinstance(encoded, str) and encoded.lower() == "true"):
        if len(body) // 4 * 3 - 2 > max_body:  # what it decodes to, without decoding it
            raise RequestTooLarge(_too_large(max_body))
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
        if len(self._known) < CACHE_LIMIT:
            self._known[content_type] = text
        return text


_PLAIN_TEXT = TextPolicy()  # the text types with no extra ones


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
        value = raw_value.strip(OWS)
        if not value.isascii():
            # Both interfaces hand over the app's bytes one latin-1 character each; bytes that
            # are UTF-8 (what an app means by a non-ASCII value, and what a request's values
            # are given to it as) go into the JSON as the text they encode.
            try:
                value = value.encode("latin-1").decode("utf-8")
            except UnicodeError:
                pass
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
    response: Response, head: bool = False, text_policy: TextPolicy | None = None
) -> IntegrationResponse:
    """The integration response as a dict (what a built-in runtime handler returns)."""
    headers, body = _response_parts(response, head, text_policy or _PLAIN_TEXT)
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


_orjson: Any
try:
    import orjson as _orjson
except ImportError:  # the scf-asgi[speed] extra is not installed
    _orjson = None

# Digits as "0", all else as a space: a run of 19 of them is an integer orjson may not keep.
_DIGIT_MARKS = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_LONG_DIGITS = b"0" * 19


def encode_document(document: Any) -> bytes:
    """An integration response's JSON (or its headers'): compact, non-ASCII as UTF-8. orjson's
    bytes are json's for such documents (text, whole numbers, booleans), where installed."""
    if _orjson is not None:
        return _orjson.dumps(document)  # type: ignore[no-any-return,unused-ignore]
    return _JSON.encode(document).encode("utf-8")


def encode_document_std(document: Any) -> bytes:
    """`encode_document` with the json module only."""
    return _JSON.encode(document).encode("utf-8")


def _not_json(constant: str) -> Any:
    raise InvalidEventError(f"the event is not valid JSON: {constant} is no JSON value")


# NaN and Infinity, which json reads by default, are no JSON (RFC 8259): such an event is
# refused here rather than breaking a translation step later.
_DECODER = json.JSONDecoder(parse_constant=_not_json)


def encode_integration_response(
    response: Response, head: bool = False, text_policy: TextPolicy | None = None
) -> bytes:
    """The integration response as JSON bytes, ready to post to the runtime API.

    Same document as `integration_response`; a base64 body is spliced in without passing through
    the JSON encoder, since base64 never needs escaping and bodies can be megabytes.
    """
    headers, body = _response_parts(response, head, text_policy or _PLAIN_TEXT)
    if isinstance(body, str):
        document: dict[str, Any] = {
            "isBase64Encoded": False,
            "statusCode": response.status,
            "headers": headers,
            "body": body,
        }
        return encode_document(document)
    return b"".join(
        (
            b'{"isBase64Encoded":true,"statusCode":',
            str(response.status).encode("ascii"),
            b',"headers":',
            encode_document(headers),
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
        return integration_response(self.response, self.head, self.text_policy)

    def encode(self) -> bytes:
        return encode_integration_response(self.response, self.head, self.text_policy)


class ResultPayload:
    """An event handler's result. Encoded at once: a value that JSON cannot carry (an object,
    NaN) raises TypeError or ValueError here, where the adapter turns it into a failure."""

    __slots__ = ("value", "data")

    def __init__(self, value: Any) -> None:
        self.value = value
        try:
            self.data = _JSON.encode(value).encode("utf-8")
        except RecursionError:
            raise ValueError("the value is nested too deeply") from None

    def document(self) -> Any:
        return self.value

    def encode(self) -> bytes:
        return self.data


def parse_json(raw: bytes) -> Any:
    """Decode the JSON document in `raw` (an event); InvalidEventError if it is not one.

    With orjson installed (the scf-asgi[speed] extra), it reads what it reads the same, in a
    fraction of the time: an event it refuses (NaN, a lone surrogate, another encoding than
    UTF-8) or might read otherwise (an integer past 64 bits, which it makes a float: any run
    of 19 digits) is read by json instead.
    """
    if _orjson is not None and _LONG_DIGITS not in raw.translate(_DIGIT_MARKS):
        try:
            return _orjson.loads(raw)
        except ValueError:  # orjson.JSONDecodeError: json gives the answer or the error
            pass
    return parse_json_std(raw)


def parse_json_std(raw: bytes) -> Any:
    """`parse_json` with the json module only."""
    try:
        try:
            text = raw.decode("utf-8")
            value, end = _DECODER.raw_decode(text)
            if end == len(text):
                return value
        except InvalidEventError:
            raise
        except ValueError:  # JSONDecodeError and UnicodeDecodeError: json.loads says why
            pass
        # White space around it, another Unicode encoding (UTF-16, UTF-32), or not JSON.
        return json.loads(raw, parse_constant=_not_json)
    except InvalidEventError:
        raise
    except ValueError as exc:
        raise InvalidEventError(f"the event is not valid JSON: {exc}") from None
    except RecursionError:
        raise InvalidEventError("the event is not valid JSON: nested too deeply") from None
