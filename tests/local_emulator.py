"""`scf-asgi local` in a child process, as the emulator's tests drive it."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
APPS = Path(__file__).resolve().parent / "local_apps"
CHROMIUM = "/usr/bin/chromium"


class Reply:
    def __init__(self, status: int, headers: http.client.HTTPMessage, body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)


class Emulator:
    """`python -m scf_asgi local ... --port 0` in a child process; its output is collected."""

    def __init__(self, *args: str, cwd: Path = APPS, **env_vars: str) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1", **env_vars)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "scf_asgi", "local", *args, "--port", "0"],
            cwd=str(cwd),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.lines: list[str] = []
        self.port = 0
        self._listening = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._listening.wait(20):
            self.stop()
            raise RuntimeError(f"the emulator never listened; output:\n{self.output}")

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            line = raw.decode("utf-8", "replace")
            self.lines.append(line)
            match = re.search(r"serving http://127\.0\.0\.1:(\d+)/", line)
            if match:
                self.port = int(match.group(1))
                self._listening.set()

    @property
    def output(self) -> str:
        return "".join(self.lines)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        *,
        connection: http.client.HTTPConnection | None = None,
        **kwargs: Any,
    ) -> Reply:
        conn = connection or http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        try:
            conn.request(method, path, body, headers or {}, **kwargs)
            response = conn.getresponse()
            return Reply(response.status, response.msg, response.read())
        finally:
            if connection is None:
                conn.close()

    def wait_output(self, text: str, timeout: float = 10) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output:
                return True
            time.sleep(0.05)
        return False

    def stop(self) -> int:
        """SIGTERM (if still running), wait, and collect the rest of the output."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
        code = self.process.wait()
        self._reader.join(5)
        return code


def raw_exchange(port: int, request: bytes) -> bytes:
    """Send `request` as is on a new connection; all the emulator answers, until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer
