"""A fake of the platform's side of the SCF Custom Runtime API, on a real loopback socket.

It behaves as the spec says the platform does: `/runtime/invocation/next` long-polls until an
event is queued and keeps returning the same event until it is answered; the first
`/response` or `/error` post for an event wins; anything else answered non-200 only when a
test asks for it. Tests drive it with `invoke()`, which queues an event and waits for the answer.

Every accepted `/response` or `/error` post is recorded against the event last handed out by
`/next` (the posts carry no request id: they answer "the current invocation"), second posts
included, so a test can check that each event got exactly one answer.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

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


class _Invocation:
    def __init__(self, body: bytes, headers: dict[str, str]) -> None:
        self.body = body
        self.headers = headers
        self.request_id = headers["request_id"]
        self.answers: list[tuple[str, bytes]] = []
        self.done = threading.Event()


class FakeRuntimeAPI:
    def __init__(self) -> None:
        self.pending: queue.Queue[_Invocation] = queue.Queue()
        self.current: _Invocation | None = None  # handed out by /next and not answered yet
        self.last: _Invocation | None = None  # handed out last by /next, answered or not
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)  # notified on every request logged
        self.ready = threading.Event()
        self.ready_count = 0
        self.log: list[tuple[str, str]] = []  # (method, path) of every request, in order
        self.stray_answers: list[tuple[str, bytes]] = []  # posted before any event was pulled
        self.connections: list[tuple[str, int]] = []  # the client address of every connection
        self.invocations: list[_Invocation] = []
        self.fail_next_posts: list[int] = []  # statuses to answer the next posts with
        self.fail_next_gets: list[int] = []  # statuses to answer the next long polls with
        self.close_after_reply = False  # drop the keep-alive connection after every reply
        # Posts over this many bytes get 413 and the connection closed, their body unread (as
        # a server with a body limit answers); 0 for no limit.
        self.refuse_posts_over = 0
        self.ready_at = 0.0
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                with api.lock:
                    api.connections.append(self.client_address)

            def _log(self) -> None:
                with api.changed:
                    api.log.append((self.command, self.path))
                    api.changed.notify_all()

            def _reply(
                self, status: int, body: bytes = b"", headers: dict[str, str] | None = None
            ) -> None:
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                if api.close_after_reply:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                self._log()
                if self.path != "/runtime/invocation/next":
                    self._reply(404)
                    return
                if api.fail_next_gets:
                    self._reply(api.fail_next_gets.pop(0), b"temporarily unavailable")
                    return
                with api.lock:
                    current = api.current
                if current is None:
                    current = api.pending.get()
                    with api.lock:
                        api.current = api.last = current
                self._reply(200, current.body, current.headers)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                if api.refuse_posts_over and length > api.refuse_posts_over:
                    self._log()
                    self.send_response(413)
                    self.send_header("Connection", "close")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    self.close_connection = True
                    return
                body = self.rfile.read(length)
                self._log()
                if self.path == "/runtime/init/ready":
                    api.ready_count += 1
                    api.ready_at = time.time()
                    api.ready.set()
                    self._reply(200)
                    return
                kind = self.path.rpartition("/")[2]
                if kind not in ("response", "error"):
                    self._reply(404)
                    return
                if api.fail_next_posts:
                    self._reply(api.fail_next_posts.pop(0), b'{"error":"rejected"}')
                    return
                with api.lock:
                    answered = api.last
                    if answered is None:
                        api.stray_answers.append((kind, body))
                    else:
                        # Recorded even when it is not the first: the first one wins (it is
                        # what `wait` returns), the others show up in `answers`.
                        answered.answers.append((kind, body))
                        if answered is api.current:
                            api.current = None
                            answered.done.set()
                self._reply(200)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        # A short poll interval: `close()` (shutdown) waits up to one interval.
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

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
        invocation = _Invocation(body, headers)
        self.invocations.append(invocation)
        self.pending.put(invocation)
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
        self.server.shutdown()
        self.server.server_close()


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
