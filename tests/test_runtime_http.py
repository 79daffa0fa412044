"""The runtime API client's HTTP/1.1: the sans-IO parser with byte tables, then the socket
pump against scripted servers on loopback sockets: every way an HTTP/1.x server may frame an
answer, and the bytes the client sends."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator

import pytest

from scf_asgi.runtime.client import Connection, RuntimeClient
from scf_asgi.runtime.http11 import (
    DONE,
    MAX_HEAD_BYTES,
    ClosedUnanswered,
    ProtocolError,
    ResponseParser,
    encode_request,
    parse_head,
    request_head,
)


class ScriptedServer:
    """Accepts connections; for each request read, sends the next scripted answer verbatim."""

    def __init__(self, answers: list[bytes], close_after: set[int] | None = None) -> None:
        self.answers = list(answers)
        self.close_after = close_after or set()
        self.requests: list[bytes] = []
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _read_request(self, conn: socket.socket, buffer: bytes) -> tuple[bytes, bytes] | None:
        while b"\r\n\r\n" not in buffer:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            buffer += chunk
        head, _, rest = buffer.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(rest) < length:
            rest += conn.recv(65536)
        return head + b"\r\n\r\n" + rest[:length], rest[length:]

    def _serve(self) -> None:
        while self.answers:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            buffer = b""
            with conn:
                while self.answers:
                    read = self._read_request(conn, buffer)
                    if read is None:
                        break
                    request, buffer = read
                    self.requests.append(request)
                    index = len(self.requests) - 1
                    conn.sendall(self.answers.pop(0))
                    if index in self.close_after:
                        break

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def serve() -> Iterator[type[ScriptedServer]]:
    made: list[ScriptedServer] = []

    class Tracked(ScriptedServer):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            made.append(self)

    yield Tracked
    for server in made:
        server.close()


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (
            b"HTTP/1.1 200 OK\r\nrequest_id: abc\r\nContent-Length: 2",
            (200, {"request_id": "abc", "content-length": "2"}, True),
        ),
        (b"HTTP/1.1 204 No Content\r\nConnection: close", (204, {"connection": "close"}, False)),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 0", (200, {"content-length": "0"}, False)),
        (
            b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0",
            (200, {"connection": "Keep-Alive", "content-length": "0"}, True),
        ),
        (b"HTTP/1.1 500", (500, {}, True)),
        (b"HTTP/1.1 200 OK\r\nX-Spaced :  v  ", (200, {"x-spaced": "v"}, True)),
    ],
)
def test_parse_head(head: bytes, expected: tuple[int, dict[str, str], bool]) -> None:
    assert parse_head(head) == expected


@pytest.mark.parametrize(
    "head", [b"SSH-2.0-OpenSSH", b"HTTP/2 200", b"HTTP/1.1 abc", b"HTTP/1.1200 OK"]
)
def test_parse_response_head_rejects_non_http(head: bytes) -> None:
    with pytest.raises(ProtocolError, match=r"not an HTTP/1\.x response"):
        parse_head(head)


# -- the sans-IO parser: bytes in, a response out ------------------------------------------------

# (the bytes of an answer, what the parser makes of it: status, headers, body, keep-alive)
RESPONSES = [
    (
        b"HTTP/1.1 200 OK\r\nrequest_id: r-1\r\nContent-Length: 5\r\n\r\nhello",
        (200, {"request_id": "r-1", "content-length": "5"}, b"hello", True),
    ),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", (200, {"content-length": "0"}, b"", True)),
    (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;ext=1\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n",
        (200, {"transfer-encoding": "chunked"}, b"hello world", True),
    ),
    (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n",
        (200, {"transfer-encoding": "gzip, Chunked"}, b"0123456789", True),
    ),
    (
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\nX: y\r\n\r\n"
        b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
        (201, {"content-length": "2"}, b"ok", True),
    ),
    (
        b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n",
        (204, {"connection": "close"}, b"", False),
    ),
    (
        b"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n",
        (304, {"content-length": "9"}, b"", True),
    ),
    (
        b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n1",
        (200, {"connection": "keep-alive", "content-length": "1"}, b"1", True),
    ),
    (
        b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\noops",
        (500, {"content-length": "4"}, b"oops", True),
    ),
]


@pytest.mark.parametrize(("data", "expected"), RESPONSES)
def test_parser_reads_a_whole_response_in_one_feed(
    data: bytes, expected: tuple[int, dict[str, str], bytes, bool]
) -> None:
    parser = ResponseParser()
    parser.feed(data)
    assert parser.state is DONE
    assert (parser.status, parser.headers, parser.body, parser.keep_alive) == expected


@pytest.mark.parametrize(("data", "expected"), RESPONSES)
def test_parser_reads_the_same_response_fed_a_byte_at_a_time(
    data: bytes, expected: tuple[int, dict[str, str], bytes, bool]
) -> None:
    parser = ResponseParser()
    for index in range(len(data)):
        assert parser.state is not DONE
        parser.feed(data[index : index + 1])
    assert (parser.status, parser.headers, parser.body, parser.keep_alive) == expected


def test_parser_reads_a_body_that_ends_with_the_connection() -> None:
    parser = ResponseParser()
    parser.feed(b"HTTP/1.1 200 OK\r\n\r\nuntil ")
    parser.feed(b"the end")
    assert (parser.state, parser.status) == ("until close", 200)  # the head is in, not the body
    parser.feed_eof()
    assert (parser.state, parser.body, parser.keep_alive) == (DONE, b"until the end", False)


def test_parser_knows_a_head_requests_answer_has_no_body() -> None:
    parser = ResponseParser(head_request=True)
    parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n")
    assert (parser.state, parser.body) == (DONE, b"")


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"SSH-2.0-OpenSSH\r\n\r\n", r"not an HTTP/1\.x response"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "Content-Length '-1'"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: \xb2\r\n\r\n", "Content-Length"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n+a\r\n", "chunk size b'\\+a'"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1_0\r\n", "chunk size"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n", "chunk size b''"),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n",
            "chunk longer than its size",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n12",
            "more than one response to one request",
        ),
        (b"HTTP/1.1 200 OK\r\nX: " + b"y" * MAX_HEAD_BYTES, "over-long response head"),
    ],
)
def test_parser_refuses_what_no_http_server_sends(data: bytes, error: str) -> None:
    with pytest.raises(ProtocolError, match=error):
        ResponseParser().feed(data)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", "closed the connection$"),
        (b"HTTP/1.1 200 OK\r\nContent-Le", "closed the connection mid-response"),
        # an interim answer is part of the answer: the close came after it had begun
        (b"HTTP/1.1 100 Continue\r\n\r\n", "closed the connection mid-response"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc", "closed the connection mid-response"),
    ],
)
def test_parser_says_whether_a_close_cut_a_response_short(data: bytes, error: str) -> None:
    parser = ResponseParser()
    parser.feed(data)
    assert parser.begun is bool(data)
    with pytest.raises(ProtocolError, match=error) as raised:
        parser.feed_eof()
    assert isinstance(raised.value, ClosedUnanswered) is (not data)


def test_request_bytes() -> None:
    head = request_head("POST", "/runtime/invocation/response", "127.0.0.1:9001")
    assert head == b"POST /runtime/invocation/response HTTP/1.1\r\nHost: 127.0.0.1:9001\r\n"
    assert encode_request(head, None) == (head + b"\r\n",)
    assert encode_request(head, b'{"a":1}') == (
        head + b'Content-Type: application/json\r\nContent-Length: 7\r\n\r\n{"a":1}',
    )
    large = b"x" * 100_000
    assert encode_request(head, large) == (
        head + b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n",
        large,  # the same object, not copied into the head
    )
    assert encode_request(head, large)[1] is large


# -- the socket pump ---------------------------------------------------------------------------


def test_requests_are_well_formed_and_one_connection_is_kept(
    serve: type[ScriptedServer],
) -> None:
    server = serve([b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"] * 2)
    connection = Connection("127.0.0.1", server.port)
    assert connection.exchange("GET", "/runtime/invocation/next") == (
        200,
        {"content-length": "3"},
        b"abc",
    )
    connection.exchange("POST", "/runtime/invocation/response", b'{"a":1}')
    assert server.requests == [
        f"GET /runtime/invocation/next HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n".encode(),
        f"POST /runtime/invocation/response HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        'Content-Type: application/json\r\nContent-Length: 7\r\n\r\n{"a":1}'.encode(),
    ]
    assert server.connections == 1
    connection.close()


def test_chunked_body_with_trailers(serve: type[ScriptedServer]) -> None:
    answer = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;ext=1\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n"
    )
    server = serve([answer, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"])
    connection = Connection("127.0.0.1", server.port)
    assert connection.exchange("GET", "/a")[2] == b"hello world"
    assert connection.exchange("GET", "/b")[2] == b"ok"  # framing kept across exchanges


def test_body_delimited_by_close_and_interim_answers(serve: type[ScriptedServer]) -> None:
    server = serve(
        [b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\nuntil the end"], close_after={0}
    )
    connection = Connection("127.0.0.1", server.port)
    assert connection.exchange("GET", "/a") == (200, {}, b"until the end")
    assert not connection.open


def test_large_bodies_both_ways(serve: type[ScriptedServer]) -> None:
    payload = bytes(range(256)) * 20_000  # 5 MB
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(payload) + payload
    server = serve([answer])
    connection = Connection("127.0.0.1", server.port)
    assert connection.exchange("POST", "/big", payload)[2] == payload
    assert server.requests[0].endswith(payload)


def test_client_reconnects_after_the_server_closes(
    serve: type[ScriptedServer], caplog: pytest.LogCaptureFixture
) -> None:
    closing = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n"
    server = serve([closing + b"1", closing + b"2", closing + b"3"], close_after={0, 1, 2})
    client = RuntimeClient("127.0.0.1", server.port, retry_for=2)
    with caplog.at_level(logging.DEBUG, logger="scf_asgi"):
        bodies = [client.exchange("GET", "/runtime/invocation/next")[2] for _ in range(3)]
    assert (bodies, server.connections) == ([b"1", b"2", b"3"], 3)
    # Each connection closed on `Connection: close`, before the next request: none was sent on
    # a closed connection and retried ("runtime API at ... unreachable ...; retrying").
    assert caplog.messages == []
    client.close()


def test_client_survives_an_abrupt_drop(serve: type[ScriptedServer]) -> None:
    # The first answer is cut off mid-body: the client reconnects and asks again.
    server = serve(
        [b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", b"HTTP/1.1 200 OK\r\n\r\n"],
        close_after={0, 1},
    )
    client = RuntimeClient("127.0.0.1", server.port, retry_for=2)
    assert client.exchange("GET", "/runtime/invocation/next") == (200, {}, b"")
    assert server.connections == 2
    client.close()


def test_ipv6_runtime_api_host_is_bracketed_in_the_host_header() -> None:
    try:
        listener = socket.create_server(("::1", 0), family=socket.AF_INET6)
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    port = listener.getsockname()[1]
    received: list[bytes] = []

    def answer() -> None:
        conn, _ = listener.accept()
        with conn:
            received.append(conn.recv(65536))
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    connection = Connection("::1", port)
    assert connection.exchange("GET", "/runtime/invocation/next") == (
        200,
        {"content-length": "0"},
        b"",
    )
    thread.join(5)
    listener.close()
    assert received == [
        f"GET /runtime/invocation/next HTTP/1.1\r\nHost: [::1]:{port}\r\n\r\n".encode()
    ]


@pytest.mark.parametrize("length", [b"-1", b"ten", b"\xb2"])  # "\xb2" is "²" in latin-1
def test_a_bad_content_length_is_a_broken_connection(
    serve: type[ScriptedServer], length: bytes
) -> None:
    server = serve([b"HTTP/1.1 200 OK\r\nContent-Length: " + length + b"\r\n\r\nabc"])
    connection = Connection("127.0.0.1", server.port)
    with pytest.raises(ProtocolError, match="Content-Length"):
        connection.exchange("GET", "/runtime/invocation/next")


@pytest.mark.parametrize("size", [b"-1", b"+a", b"1_0", b""])
def test_a_bad_chunk_size_is_a_broken_connection(serve: type[ScriptedServer], size: bytes) -> None:
    server = serve([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + size + b"\r\nabc"])
    connection = Connection("127.0.0.1", server.port)
    with pytest.raises(ProtocolError, match="chunk size"):
        connection.exchange("GET", "/runtime/invocation/next")
