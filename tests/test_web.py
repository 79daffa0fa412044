"""`scf-asgi web`: what an `scf_bootstrap` runs, served from this checkout with the app's
interface detected, on the port that $PORT names (else the platform's 9000)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from scf_asgi.platform import WEB_REQUEST_ID_HEADER
from tests.packages import free_port
from tests.runtime_api import ROOT

APPS = ROOT / "tests" / "apps"


def serve(app: str, port: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PORT=port, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "-m", "scf_asgi", "web", app],
        cwd=str(APPS),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def get(port: int, path: str, timeout: float = 30) -> tuple[int, bytes]:
    deadline = time.monotonic() + timeout
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", headers={WEB_REQUEST_ID_HEADER: "web-req-1"}
    )
    while True:
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@pytest.mark.parametrize(
    ("app", "path", "server_line", "expected"),
    [
        (
            "starlette_app:app",
            "/count",
            "Uvicorn running on http://0.0.0.0:",
            {"calls": 1, "greeting": "hello", "url": "http://127.0.0.1:{port}/count"},
        ),
        (
            "flask_app:app",
            "/items/4?q=a",
            "Starting gunicorn",
            {
                "id": 4,
                "q": ["a"],
                "root": "",
                "url": "http://127.0.0.1:{port}/items/4?q=a",
                "client": "127.0.0.1",
            },
        ),
    ],
)
def test_web_detects_the_interface_and_listens_on_port(
    app: str, path: str, server_line: str, expected: dict[str, object]
) -> None:
    port = free_port()
    process = serve(app, str(port))
    try:
        status, body = get(port, path)
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=20)
    assert (status, json.loads(body)) == (
        200,
        {k: v.format(port=port) if isinstance(v, str) else v for k, v in expected.items()},
    ), output
    assert server_line in output
    # stopped cleanly: gunicorn exits 0, uvicorn (0.29+) re-raises the SIGTERM it handled
    assert process.returncode in (0, -signal.SIGTERM), output
    assert any("web-req-1" in line and path.split("?")[0] in line for line in output.splitlines())


def test_a_port_that_is_not_a_number_is_refused() -> None:
    process = serve("flask_app:app", "90x0")
    output, _ = process.communicate(timeout=20)
    assert (process.returncode, output) == (
        1,
        "scf-asgi: error: PORT must be a port number, got '90x0'\n",
    )


SSE_APP = """\
import asyncio

from starlette.applications import Starlette
from starlette.responses import StreamingResponse
from starlette.routing import Route

events_released = {}  # the Event is made in the server's loop (Python 3.9 binds it at creation)


def release():
    return events_released.setdefault("event", asyncio.Event())


async def events(request):
    async def stream():
        yield "data: first\\n\\n"
        await asyncio.wait_for(release().wait(), 10)
        yield "data: second\\n\\n"

    return StreamingResponse(stream(), media_type="text/event-stream")


async def go(request):
    release().set()
    return StreamingResponse(iter(["ok"]))


app = Starlette(routes=[Route("/events", events), Route("/go", go)])
"""


def test_server_sent_events_reach_the_client_as_they_are_sent(tmp_path: Path) -> None:
    (tmp_path / "sse_app.py").write_text(SSE_APP)
    port = free_port()
    env = dict(os.environ, PORT=str(port), PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        [sys.executable, "-m", "scf_asgi", "web", "sse_app:app"],
        cwd=str(tmp_path),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        get(port, "/nothing")  # listening
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/events", timeout=10) as stream:
            # the first event arrives while the second is still held back by the app
            first = stream.readline() + stream.readline()
            assert get(port, "/go") == (200, b"ok")
            second = stream.readline() + stream.readline()
    finally:
        process.terminate()
        process.communicate(timeout=20)
    assert (first, second) == (b"data: first\n\n", b"data: second\n\n")
