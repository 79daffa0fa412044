"""`scf-asgi web`: what an `scf_bootstrap` runs, served from this checkout with the app's
interface detected, on the port that $PORT names (else the platform's 9000)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from scf_asgi.cli import build_parser
from scf_asgi.platform import ENV_WEB_HOST, WEB_REQUEST_ID_HEADER
from scf_asgi.web import parse_web_flags
from tests.packages import free_port
from tests.runtime_api import ROOT

APPS = ROOT / "tests" / "apps"


def serve(app: str, port: str, **variables: str) -> subprocess.Popen[str]:
    env = {name: value for name, value in os.environ.items() if name != ENV_WEB_HOST}
    env.update(PORT=port, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", **variables)
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


def connects(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=5):
            return True
    except ConnectionRefusedError:
        return False


@pytest.mark.parametrize(
    ("app", "listening"),
    [
        ("starlette_app:app", "Uvicorn running on http://{}:"),
        ("flask_app:app", "Listening at: http://{}:"),
    ],
)
def test_web_listens_on_every_address_unless_the_host_variable_names_one(
    app: str, listening: str
) -> None:
    """The platform's proxy needs 0.0.0.0; the emulator names its loopback so that an instance
    is reached only through its front door. 127.0.0.2 is another loopback address: a server
    bound to 127.0.0.1 refuses it, one bound to every address takes it."""
    port = free_port()
    everywhere = serve(app, str(port))
    try:
        assert get(port, "/nothing")[0] == 404
        reached_elsewhere = connects("127.0.0.2", port)
    finally:
        everywhere.terminate()
        output, _ = everywhere.communicate(timeout=20)
    assert reached_elsewhere, output
    assert listening.format("0.0.0.0") in output, output
    port = free_port()
    loopback = serve(app, str(port), **{ENV_WEB_HOST: "127.0.0.1"})
    try:
        assert get(port, "/nothing")[0] == 404
        reached_elsewhere = connects("127.0.0.2", port)
    finally:
        loopback.terminate()
        output, _ = loopback.communicate(timeout=20)
    assert not reached_elsewhere, output
    assert listening.format("127.0.0.1") in output, output


def test_the_fast_path_reads_what_argparse_reads_and_loads_no_parser() -> None:
    """`scf-asgi web` is what every cold start of a web function runs: its flags are read
    without argparse and the other commands' modules, to the same values argparse gives."""
    parser = build_parser()
    for words in (
        ["app:app"],
        ["app:app", "--interface", "wsgi"],
        ["--interface=asgi", "app:app", "--threads", "3", "--host", "127.0.0.1"],
        ["app:app", "--host=::1", "--threads=12"],
    ):
        args = parser.parse_args(["web", *words])
        assert parse_web_flags(words) == (args.app, args.interface, args.host, args.threads)
    # anything else is argparse's to read and to explain
    for words in (
        [],
        ["a:app", "b:app"],
        ["app:app", "--help"],
        ["app:app", "--interface", "rsgi"],
        ["app:app", "--threads", "x"],
        ["app:app", "--threads"],
        ["app:app", "--port", "80"],
    ):
        assert parse_web_flags(words) is None, words
    script = (
        "import sys\n"
        "from scf_asgi.cli import main\n"
        "code = main(['web', 'app:app', '--threads', '4'])\n"
        "print(code, sorted(m for m in sys.modules if m == 'argparse' or m.startswith('scf_')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=dict(os.environ, PORT="x"),
        capture_output=True,
        text=True,
        check=True,
    )
    assert (done.stdout, done.stderr) == (
        "1 ['scf_asgi', 'scf_asgi.cli', 'scf_asgi.context', 'scf_asgi.errors', "
        "'scf_asgi.options', 'scf_asgi.platform', 'scf_asgi.web']\n",
        "scf-asgi: error: PORT must be a port number, got 'x'\n",
    )
    refused = subprocess.run(
        [sys.executable, "-m", "scf_asgi", "web", "app:app", "--threads", "x"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode == 2
    assert refused.stderr.endswith("error: argument --threads: invalid int value: 'x'\n")


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
