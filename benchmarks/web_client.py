"""The HTTP client of the web-function rows: the benchmark request sent to a web function's
server the way the platform's proxy forwards it, one request at a time.

One blocking socket (TCP_NODELAY) kept alive across requests; a server that answers
``Connection: close`` (gunicorn's sync worker does, for every request) is reconnected to before
the next request, and the connections made are counted. The request is the gateway event of
events.py as raw HTTP/1.1: the same method, path, query, headers (cookies included) and body, so
the app does the same work as when scf-asgi translates the event.
"""

from __future__ import annotations

import socket
from urllib.parse import urlencode

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class Response:
    """What the client saw: status, headers (names lower-cased, in order) and body."""

    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def normalise(self) -> tuple[int, bytes, str, list[str]]:
        """The same reduction as events.normalise: status, body, content type, cookies."""
        content_type = next((value for name, value in self.headers if name == "content-type"), "")
        cookies = sorted(value for name, value in self.headers if name == "set-cookie")
        return self.status, self.body, content_type, cookies


def request_bytes(event: dict[str, Any]) -> bytes:
    """The HTTP/1.1 request a gateway event stands for (its path without the stage, as the
    event's `path` has it)."""
    body = (event.get("body") or "").encode("utf-8")
    target = event["path"]
    query = urlencode(event.get("queryString") or {})
    if query:
        target += "?" + query
    lines = [f"{event['httpMethod']} {target} HTTP/1.1"]
    lines += [f"{name}: {value}" for name, value in event["headers"].items()]
    lines.append(f"content-length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class HTTPClient:
    def __init__(self, port: int, request: bytes, timeout: float = 60.0) -> None:
        self.port = port
        self.request = request
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self.buffer = b""
        self.connections = 0  # connections opened so far
        self.exchanges = 0  # requests answered so far

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = sock
        self.buffer = b""
        self.connections += 1
        return sock

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def exchange(self) -> Response:
        """Send the request and read the whole response."""
        sock = self.sock or self.connect()
        sock.sendall(self.request)
        buffer = self.buffer
        end = buffer.find(b"\r\n\r\n")
        while end < 0:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"the server on port {self.port} closed the connection")
            buffer += chunk
            end = buffer.find(b"\r\n\r\n")
        head = buffer[:end].decode("latin-1").split("\r\n")
        buffer = buffer[end + 4 :]
        version, status = head[0].split(" ", 2)[:2]
        headers = []
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers.append((name.strip().lower(), value.strip()))
        fields = dict(headers)
        keep_alive = version == "HTTP/1.1" and fields.get("connection", "").lower() != "close"
        if "content-length" in fields:
            length = int(fields["content-length"])
            while len(buffer) < length:
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("the server closed the connection mid-body")
                buffer += chunk
            body, buffer = buffer[:length], buffer[length:]
        elif fields.get("transfer-encoding", "").lower() == "chunked":
            body, buffer = self._chunked(sock, buffer)
        else:  # delimited by the end of the connection
            keep_alive = False
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                buffer += chunk
            body, buffer = buffer, b""
        self.buffer = buffer
        if not keep_alive:
            self.close()
        self.exchanges += 1
        return Response(int(status), headers, body)

    @staticmethod
    def _chunked(sock: socket.socket, buffer: bytes) -> tuple[bytes, bytes]:
        parts = []
        while True:
            while b"\r\n" not in buffer:
                buffer += sock.recv(65536)
            size_line, _, buffer = buffer.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            while len(buffer) < size + 2:
                buffer += sock.recv(65536)
            parts.append(buffer[:size])
            buffer = buffer[size + 2 :]
            if size == 0:
                while not buffer.startswith(b"\r\n"):  # trailers, if any, then the blank line
                    line_end = buffer.find(b"\r\n")
                    if line_end > 0:
                        buffer = buffer[line_end + 2 :]
                    else:
                        buffer += sock.recv(65536)
                return b"".join(parts), buffer[2:]
