"""A fake of the platform's side of the SCF Custom Runtime API, on a real loopback socket.

It is the emulator's own runtime-API app (`scf_asgi.local.runtime_api`, Starlette) served by
uvicorn in a thread, so the runtime client is tested against an HTTP implementation (h11) this
project did not write. Around that app sit the platform failures a test can ask for
(`fail_next_posts`, `fail_next_gets`, `close_after_reply`, `refuse_posts_over`) and the record
of every request (`log`, `changed`), connection (`connections`) and answer posted when no
event had been taken (`stray_answers`).

It behaves as the spec says the platform does: `/runtime/invocation/next` long-polls until an
event is queued and keeps returning the same event until it is answered; the first
`/response` or `/error` post for an event wins. Tests drive it with `invoke()`, which queues an
event and waits for the answer.

Every accepted `/response` or `/error` post is recorded against the event last handed out by
`/next` (the posts carry no request id: they answer "the current invocation"), second posts
included, so a test can check that each event got exactly one answer.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from pathlib import Path
from typing import Any, Callable

import uvicorn

from scf_asgi.local.runtime_api import (
    ERROR,
    NEXT,
    READY,
    RESPONSE,
    Channel,
    Invocation,
    RuntimeAPI,
    runtime_api_app,
    tagging_protocol,
)

ROOT = Path(__file__).resolve().parent.parent


class Answer:
    def __init__(self, kind: str, body: bytes, request_id: str) -> None:
        self.kind = kind  # "response" or "error"
        self.body = body
        self.request_id = request_id

    def json(self) -> Any:
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"Answer({self.kind!r}, {self.body[:200]!r})"


class _Invocation(Invocation):
    """An event as the tests see it: `body`, `headers`, and `done` to wait on from a thread."""

    def __init__(self, body: bytes, headers: dict[str, str]) -> None:
        super().__init__(
            headers["request_id"],
            body,
            time_limit_ms=int(headers["time_limit_in_ms"]),
            memory_limit_mb=int(headers["memory_limit_in_mb"]),
        )
        self.body = body
        self.headers = headers
        self.done = threading.Event()

    def record_answer(self, kind: str, body: bytes) -> bool:
        first = super().record_answer(kind, body)
        if first:
            self.done.set()
        return first


Scope = dict[str, Any]
Message = dict[str, Any]


class _Failures:
    """ASGI middleware: the platform failures a test asks for, and the request log."""

    def __init__(self, app: Any, fake: FakeRuntimeAPI) -> None:
        self.app = app
        self.fake = fake

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        fake = self.fake
        method = scope["method"]
        path = scope["raw_path"].decode("latin-1")
        if scope.get("query_string"):
            path += "?" + scope["query_string"].decode("latin-1")

        async def reply(status: int, body: bytes = b"", *, close: bool = False) -> None:
            headers = [(b"content-length", str(len(body)).encode())]
            if close or fake.close_after_reply:
                headers.append((b"connection", b"close"))
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        async def send_closing(message: Message) -> None:
            if message["type"] == "http.response.start" and fake.close_after_reply:
                message = dict(message, headers=[*message["headers"], (b"connection", b"close")])
            await send(message)

        if method != "POST":
            fake._log(method, path)
            if path == NEXT and fake.fail_next_gets:
                await reply(fake.fail_next_gets.pop(0), b"temporarily unavailable")
                return
            await self.app(scope, receive, send_closing)
            return
        length_text = dict(scope["headers"]).get(b"content-length", b"0").decode("latin-1")
        length = int(length_text) if length_text.isdigit() else 0
        if fake.refuse_posts_over and length > fake.refuse_posts_over:
            # As a server with a body limit answers: 413, and the connection closed unread.
            fake._log(method, path)
            await reply(413, close=True)
            return
        body = b""
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
        fake._log(method, path)
        if path in (RESPONSE, ERROR) and fake.fail_next_posts:
            await reply(fake.fail_next_posts.pop(0), b'{"error":"rejected"}')
            return
        if path in (RESPONSE, ERROR):
            status = 0

            async def send_watched(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send_closing(message)

        replayed = False

        async def receive_again() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        if path in (RESPONSE, ERROR):
            await self.app(scope, receive_again, send_watched)
            if status == 400:  # no event taken yet: nothing for it to answer
                fake.stray_answers.append((path.rpartition("/")[2], body))
            return
        await self.app(scope, receive_again, send_closing)
        if path == READY:
            fake.ready.set()


class FakeRuntimeAPI:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)  # notified on every request logged
        self.ready = threading.Event()
        self.log: list[tuple[str, str]] = []  # (method, path) of every request, in order
        self.invocations: list[_Invocation] = []
        self.connections: list[tuple[str, int]] = []  # the client address of every connection
        self.stray_answers: list[tuple[str, bytes]] = []  # posted before any event was taken
        self.fail_next_posts: list[int] = []  # statuses to answer the next posts with
        self.fail_next_gets: list[int] = []  # statuses to answer the next long polls with
        self.close_after_reply = False  # drop the keep-alive connection after every reply
        # Posts over this many bytes get 413 and the connection closed, their body unread (as
        # a server with a body limit answers); 0 for no limit.
        self.refuse_posts_over = 0
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(128)
        self.port: int = self._socket.getsockname()[1]
        self._started = threading.Event()
        self._stopped = threading.Event()
        self.thread = threading.Thread(target=asyncio.run, args=(self._serve(),), daemon=True)
        self.thread.start()
        if not self._started.wait(20):
            raise RuntimeError("the fake runtime API did not start")

    async def _serve(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.channel = Channel()
        # No size limit of its own: the documented one is "about 6 MB" (tests ask for a limit
        # with refuse_posts_over).
        self.api = RuntimeAPI([self.channel], result_limit=None)
        self.api.by_address[("127.0.0.1", self.port)] = self.channel
        fake = self

        class CountingProtocol(tagging_protocol(self.api)):  # type: ignore[misc]
            def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
                super().connection_made(transport)
                if self.client is not None:
                    fake.connections.append((self.client[0], self.client[1]))

        self.server = uvicorn.Server(
            uvicorn.Config(
                _Failures(runtime_api_app(self.api), self),
                http=CountingProtocol,
                ws="none",
                lifespan="off",
                proxy_headers=False,
                log_config=None,
                log_level="warning",
                access_log=False,
                timeout_keep_alive=75,
                timeout_graceful_shutdown=1,
            )
        )
        serving = asyncio.ensure_future(self.server.serve(sockets=[self._socket]))
        while not self.server.started and not serving.done():
            await asyncio.sleep(0.005)
        self._started.set()
        await serving
        self._stopped.set()
        if self.api.tags:
            # A client still connected (a runtime a test left in its long poll) stays so, as
            # it would on a platform that never answers: the loop goes on for it.
            await asyncio.Event().wait()

    def _log(self, method: str, path: str) -> None:
        with self.changed:
            self.log.append((method, path))
            self.changed.notify_all()

    # The channel's state, under the names the tests use.
    @property
    def pending(self) -> deque[Invocation]:
        return self.channel.queue

    @property
    def current(self) -> Invocation | None:  # handed out by /next and not answered yet
        return self.channel.current

    @property
    def last(self) -> Invocation | None:  # handed out last by /next, answered or not
        return self.channel.last

    @property
    def ready_count(self) -> int:
        return self.channel.ready_count

    @property
    def ready_at(self) -> float:
        return self.channel.ready_at

    def queue_event(
        self, event: Any, *, time_limit_ms: int = 3000, request_id: str | None = None
    ) -> _Invocation:
        body = event if isinstance(event, bytes) else json.dumps(event).encode("utf-8")
        headers = {
            "request_id": request_id or str(uuid.uuid4()),
            "memory_limit_in_mb": "128",
            "time_limit_in_ms": str(time_limit_ms),
            "Content-Type": "application/json",
        }

        async def put() -> _Invocation:  # made in the server's loop, which its events belong to
            invocation = _Invocation(body, headers)
            self.channel.put(invocation)
            return invocation

        invocation = asyncio.run_coroutine_threadsafe(put(), self.loop).result(10)
        self.invocations.append(invocation)
        return invocation

    def invoke(self, event: Any, *, timeout: float = 20.0, **kwargs: Any) -> Answer:
        invocation = self.queue_event(event, **kwargs)
        return self.wait(invocation, timeout)

    def wait(self, invocation: _Invocation, timeout: float = 20.0) -> Answer:
        if not invocation.done.wait(timeout):
            raise TimeoutError(f"no answer to {invocation.request_id} within {timeout}s")
        kind, body = invocation.answers[0]
        return Answer(kind, body, invocation.request_id)

    def wait_for(self, condition: Callable[[], bool], timeout: float = 20.0) -> None:
        """Wait until `condition()` (called with the log locked) holds, re-checked on every
        request the fake receives."""
        with self.changed:
            if not self.changed.wait_for(condition, timeout):
                raise TimeoutError(f"condition never held; requests so far: {self.log}")

    def close(self) -> None:
        """Stop accepting connections; a long poll still open is not answered (or waited for)."""
        self.server.should_exit = self.server.force_exit = True
        self._stopped.wait(10)


def runtime_env(api: FakeRuntimeAPI, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCF_")}
    env.update(
        SCF_RUNTIME_API="127.0.0.1",
        SCF_RUNTIME_API_PORT=str(api.port),
        SCF_FUNCTIONNAME="test-function",
        SCF_FUNCTIONVERSION="$LATEST",
        SCF_NAMESPACE="default",
        TENCENTCLOUD_REGION="ap-guangzhou",
        PYTHONUNBUFFERED="1",
        PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "tests" / "apps")]),
    )
    env.update(extra)
    return env


class RuntimeProcess:
    """`python -m scf_asgi run APP` (or another `command`, such as a `bootstrap` file) in a
    child process, talking to a FakeRuntimeAPI."""

    def __init__(
        self,
        api: FakeRuntimeAPI,
        args: list[str],
        *,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        wait_ready: bool = True,
        command: list[str] | None = None,
    ) -> None:
        self.api = api
        self.process = subprocess.Popen(
            command or [sys.executable, "-m", "scf_asgi", "run", *args],
            env=env if env is not None else runtime_env(api),
            cwd=str(cwd or ROOT / "tests" / "apps"),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.output_lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if wait_ready and not self.wait_ready(30):
            self.stop()
            raise RuntimeError(f"runtime never posted ready; output:\n{self.output}")

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output_lines.append(line.decode("utf-8", "replace"))

    def wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.api.ready.wait(0.05):
                return True
            if self.process.poll() is not None:
                return False
        return False

    @property
    def output(self) -> str:
        return "".join(self.output_lines)

    def wait_output(self, text: str, timeout: float = 20.0) -> None:
        """Wait until `text` appears in the output (polled; the lines come from a thread)."""
        deadline = time.monotonic() + timeout
        while text not in self.output:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{text!r} never appeared; output:\n{self.output}")
            time.sleep(0.005)

    def wait_exit(self, timeout: float = 20.0) -> int:
        code = self.process.wait(timeout)
        self._reader.join(5)
        return code

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            return self.wait_exit(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.wait_exit(5)
