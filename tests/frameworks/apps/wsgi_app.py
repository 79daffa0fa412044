"""A plain WSGI callable (PEP 3333), no framework: only the standard library."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from http.cookies import SimpleCookie
from typing import Any, Callable
from urllib.parse import parse_qs
from wsgiref.util import application_uri

from .common import SECRET, STATIC_DIR, STREAM_PARTS, cors_headers
from .plain import parse_multipart

StartResponse = Callable[..., Any]
JSON = "application/json"


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    method = environ["REQUEST_METHOD"]
    # PATH_INFO is PEP 3333 "bytes as latin-1"; these routes are all ASCII.
    path = environ["PATH_INFO"]
    headers = [(name, value) for name, value in cors_headers(environ.get("HTTP_ORIGIN")).items()]

    def answer(status: str, content_type: str, body: bytes, *extra: tuple[str, str]) -> list[bytes]:
        start_response(status, [("Content-Type", content_type), *headers, *extra])
        return [body]

    def answer_json(value: Any, *extra: tuple[str, str]) -> list[bytes]:
        return answer("200 OK", JSON, json.dumps(value).encode(), *extra)

    def body() -> bytes:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        return environ["wsgi.input"].read(length) if length else b""

    item = re.fullmatch(r"/items/(\d+)", path)
    if method == "OPTIONS" and item:
        start_response("204 No Content", headers)
        return []
    if method in ("GET", "HEAD") and item:
        return answer_json({"id": int(item.group(1))})
    if method == "GET" and path == "/query":
        fields = parse_qs(environ["QUERY_STRING"], keep_blank_values=True)
        return answer_json({"q": fields.get("q", [])})
    if method == "POST" and path == "/json":
        return answer_json({"received": json.loads(body())})
    if method == "POST" and path == "/form":
        fields = parse_qs(body().decode("utf-8"), keep_blank_values=True)
        return answer_json({"name": fields["name"][0], "note": fields["note"][0]})
    if method == "POST" and path == "/upload":
        filename, data = parse_multipart(environ["CONTENT_TYPE"], body())["file"]
        return answer("200 OK", "application/octet-stream", data, ("X-Upload-Name", filename))
    if method == "GET" and path == "/cookies":
        cookie = SimpleCookie(environ.get("HTTP_COOKIE", ""))
        session = cookie["session"].value if "session" in cookie else None
        return answer_json(
            {"session": session}, ("Set-Cookie", "a=1; Path=/"), ("Set-Cookie", "b=2; HttpOnly")
        )
    if method == "GET" and path == "/redirect":
        location = application_uri(environ).rstrip("/") + "/items/7"
        start_response("302 Found", [("Location", location), *headers])
        return []
    if method == "GET" and path == "/static/blob.bin":
        data = (STATIC_DIR / "blob.bin").read_bytes()
        return answer("200 OK", "application/octet-stream", data)
    if method == "GET" and path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain"), *headers])
        return _stream()
    if method == "GET" and path == "/boom":
        raise RuntimeError(SECRET)
    return answer("404 Not Found", "text/plain", b"Not Found")


def _stream() -> Iterator[bytes]:
    yield from STREAM_PARTS
