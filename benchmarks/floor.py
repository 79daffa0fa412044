"""The floor of the loop benchmarks: the least a runtime client can do, with no adapter at all.

    python -m floor asgi|wsgi MODULE:APP     (SCF_RUNTIME_API / SCF_RUNTIME_API_PORT set)

One blocking socket (TCP_NODELAY) on one keep-alive connection: post ready, then forever GET
/runtime/invocation/next, read the event, call the app directly and POST an equivalent
integration response. No retries, no checks, no logging, no Context: a lower bound for what
`scf-asgi run` does, not a usable runtime. An ASGI app is awaited inside one persistent event
loop with the most minimal receive (the body, then ``http.disconnect``) and send; a WSGI app is
called on the spot, and asyncio is not imported. The real apps of the `apps` rows run on it as
they are: it is also the "bare runtime client with the same app" of those rows, and the
raw-socket floor of their cold starts.
"""

from __future__ import annotations

import base64
import importlib
import json
import os
import socket
import sys
from urllib.parse import urlencode

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

_TEXT = ("application/json", "text/")
_DISCONNECT = {"type": "http.disconnect"}


class Exchange:
    """HTTP/1.1 request/response pairs over one socket: the minimum that is still correct."""

    def __init__(self, host: str, port: int) -> None:
        # The host as bytes: a str would be encoded with the idna codec, whose import (with
        # stringprep and unicodedata) is 1 to 2 ms of a cold start that scf-asgi does not pay.
        self.sock = socket.create_connection((host.encode("ascii"), port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.host = host.encode("ascii")
        self.buffer = b""

    def get(self, path: bytes) -> bytes | bytearray:
        self.sock.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: " + self.host + b"\r\n\r\n")
        return self.read()

    def post(self, path: bytes, body: bytes) -> bytes | bytearray:
        head = b"POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n" % (
            path,
            self.host,
        )
        head += b"Content-Length: %d\r\n\r\n" % len(body)
        if len(body) < 65536:
            self.sock.sendall(head + body)
        else:
            self.sock.sendall(head)
            self.sock.sendall(body)
        return self.read()

    def read(self) -> bytes | bytearray:
        buffer = self.buffer
        end = buffer.find(b"\r\n\r\n")
        while end < 0:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the runtime API closed the connection")
            buffer += chunk
            end = buffer.find(b"\r\n\r\n")
        head = buffer[:end].lower()
        at = head.find(b"content-length:")
        length = 0
        if at >= 0:
            stop = head.find(b"\r\n", at)
            length = int(head[at + 15 : stop if stop > 0 else len(head)])
        start = end + 4
        if len(buffer) - start >= length:
            self.buffer = buffer[start + length :]
            return buffer[start : start + length]
        body = bytearray(length)
        view = memoryview(body)
        have = len(buffer) - start
        view[:have] = buffer[start:]
        while have < length:
            got = self.sock.recv_into(view[have:])
            if not got:
                raise ConnectionError("the runtime API closed the connection")
            have += got
        self.buffer = b""
        return body


def _request_parts(event: dict[str, Any]) -> tuple[bytes, str]:
    raw = event.get("body") or ""
    body = base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode("utf-8")
    return body, urlencode(event.get("queryString") or {})


def _integration_response(status: int, headers: list[tuple[str, str]], body: bytes) -> bytes:
    out: dict[str, Any] = {}
    content_type = ""
    for name, value in headers:
        if name.lower() == "content-type":
            content_type = value
        if name in out:
            previous = out[name]
            out[name] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            out[name] = value
    if content_type.startswith(_TEXT):
        document = {"isBase64Encoded": False, "statusCode": status, "headers": out}
        document["body"] = body.decode("utf-8")
        return json.dumps(document, separators=(",", ":")).encode("utf-8")
    return b"".join(
        (
            b'{"isBase64Encoded":true,"statusCode":%d,"headers":' % status,
            json.dumps(out, separators=(",", ":")).encode("utf-8"),
            b',"body":"',
            base64.b64encode(body),
            b'"}',
        )
    )


async def serve_asgi(app: Any, api: Exchange) -> None:
    while True:
        event = json.loads(api.get(b"/runtime/invocation/next"))
        body, query = _request_parts(event)
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": event["httpMethod"],
            "scheme": "https",
            "path": event["path"],
            "raw_path": None,
            "root_path": "",
            "query_string": query.encode("ascii"),
            "headers": [
                (name.encode("latin-1"), value.encode("latin-1"))
                for name, value in event["headers"].items()
            ],
            "client": None,
            "server": None,
        }
        response: list[Any] = []

        request = iter(({"type": "http.request", "body": body, "more_body": False},))

        async def receive(request: Iterator[dict[str, Any]] = request) -> dict[str, Any]:
            return next(request, _DISCONNECT)  # the body, then the end of the request

        async def send(message: dict[str, Any], response: list[Any] = response) -> None:
            response.append(message)

        await app(scope, receive, send)
        start = response[0]
        headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in start["headers"]]
        parts = [m.get("body", b"") for m in response[1:]]
        payload = _integration_response(start["status"], headers, b"".join(parts))
        api.post(b"/runtime/invocation/response", payload)


def serve_wsgi(app: Any, api: Exchange) -> None:
    import io

    while True:
        event = json.loads(api.get(b"/runtime/invocation/next"))
        body, query = _request_parts(event)
        environ: dict[str, Any] = {
            "REQUEST_METHOD": event["httpMethod"],
            "SCRIPT_NAME": "",
            "PATH_INFO": event["path"],
            "QUERY_STRING": query,
            "CONTENT_LENGTH": str(len(body)),
            "SERVER_NAME": "localhost",
            "SERVER_PORT": "443",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "https",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for name, value in event["headers"].items():
            if name == "content-type":
                environ["CONTENT_TYPE"] = value
            else:
                environ["HTTP_" + name.upper().replace("-", "_")] = value
        started: list[Any] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None, started=started
        ) -> None:
            started[:] = [status, headers]

        result = app(environ, start_response)
        chunks = b"".join(result)
        close = getattr(result, "close", None)
        if close is not None:
            close()
        payload = _integration_response(int(started[0][:3]), started[1], chunks)
        api.post(b"/runtime/invocation/response", payload)


def main() -> None:
    mode, reference = sys.argv[1], sys.argv[2]
    module_name, _, attr = reference.partition(":")
    app = getattr(importlib.import_module(module_name), attr)
    if mode == "asgi":
        # Part of an ASGI runtime's start, so imported before ready; a WSGI runtime client
        # needs no event loop and does not import it.
        import asyncio
    api = Exchange(os.environ["SCF_RUNTIME_API"], int(os.environ["SCF_RUNTIME_API_PORT"]))
    api.post(b"/runtime/init/ready", b'{"msg":"ready"}')
    if mode == "asgi":
        asyncio.new_event_loop().run_until_complete(serve_asgi(app, api))
    else:
        serve_wsgi(app, api)


if __name__ == "__main__":
    main()
