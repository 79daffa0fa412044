"""`scf-asgi package` and `scf-asgi bootstrap`: real pip installs from the index, real zips,
and each package started by its own bootstrap in an empty folder on a bare interpreter."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import pytest

from scf_asgi import options
from scf_asgi.errors import ConfigurationError, PackageError
from scf_asgi.packaging.bootstrap import event_bootstrap, web_bootstrap
from scf_asgi.packaging.build import check_requires_python, collect_sources
from scf_asgi.packaging.requirements import normalise, unmet
from scf_asgi.packaging.target import Target, find_interpreter
from scf_asgi.platform import ENV_WEB_HOST, MAX_INLINE_ZIP_BYTES, WEB_REQUEST_ID_HEADER
from tests.events import DEFAULT_HOST, gateway_event
from tests.packages import (
    VERSION,
    bare_env,
    bare_venv,
    extract,
    free_port,
    is_executable_file,
    package,
    scf_asgi,
    zip_modes,
)
from tests.runtime_api import ROOT, FakeRuntimeAPI, RuntimeProcess, runtime_env

EXAMPLES = ROOT / "examples"
TAG = sys.implementation.cache_tag  # cpython-311


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bare_venv(tmp_path_factory.mktemp("bare") / "venv")


def copy_example(name: str, destination: Path) -> Path:
    """The example's folder, with what a real project folder also holds and must not ship."""
    source = destination / name
    shutil.copytree(EXAMPLES / name, source)
    # as the examples' requirements did: scf-asgi is not on the index, package vendors it
    with (source / "requirements.txt").open("a") as requirements:
        requirements.write("scf-asgi\n")
    (source / ".git").mkdir()
    (source / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (source / "__pycache__").mkdir()
    (source / "__pycache__" / f"app.{TAG}.pyc").write_bytes(b"stale")
    (source / "node_modules" / "left-pad").mkdir(parents=True)
    (source / "node_modules" / "left-pad" / "index.js").write_text("module.exports = 1\n")
    (source / "env").mkdir()
    (source / "env" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (source / "NOTES.md").write_text("notes\n")
    (source / "static").mkdir()
    (source / "static" / "logo.svg").write_text("<svg/>\n")
    return source


@pytest.fixture(scope="module")
def flask_package(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """examples/flask_app packaged for this Python, with a base path and an exclusion."""
    folder = tmp_path_factory.mktemp("flask")
    source = copy_example("flask_app", folder)
    output = folder / "dist" / "flask_app.zip"
    summary = package(source, output, "app:app", "--base-path", "/api", "--exclude", "*.md")
    return output, summary


def start_bootstrap(
    unpacked: Path, interpreter: Path, api: FakeRuntimeAPI, name: str = "bootstrap"
) -> RuntimeProcess:
    env = bare_env(runtime_env(api), interpreter)
    return RuntimeProcess(api, [], env=env, cwd=unpacked, command=[str(unpacked / name)])


# -- the Done-when tests -----------------------------------------------------------------------


def test_flask_package_runs_in_an_empty_folder_on_a_bare_interpreter(
    flask_package: tuple[Path, dict[str, Any]], bare_python: Path, tmp_path: Path
) -> None:
    output, _ = flask_package
    unpacked = tmp_path / "var-user"
    extract(output, unpacked)
    api = FakeRuntimeAPI()
    runtime = start_bootstrap(unpacked, bare_python, api)
    try:
        answer = api.invoke(
            gateway_event(path="/api/api/items/7", query={"tag": ["x", "y z"]}, host=DEFAULT_HOST)
        )
    finally:
        assert runtime.stop() == 0
        api.close()
    assert answer.kind == "response"
    document = answer.json()
    assert document == {
        "statusCode": 200,
        "headers": {
            "Content-Type": "application/json",
            "Content-Length": str(len(document["body"].encode())),
        },
        "body": document["body"],
        "isBase64Encoded": False,
    }
    assert json.loads(document["body"]) == {
        "id": 7,
        "tags": ["x", "y z"],
        "url": f"https://{DEFAULT_HOST}/release/api/api/items/7",
    }


ASGI_APP = """\
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute


async def hello(request):
    return JSONResponse(
        {
            "path": request.url.path,
            "query": dict(request.query_params),
            "client": request.client.host,
            "scheme": request.url.scheme,
        }
    )


async def echo(websocket):
    await websocket.accept()
    message = await websocket.receive_text()
    await websocket.send_text("echo: " + message)
    await websocket.close()


app = Starlette(routes=[Route("/hello", hello), WebSocketRoute("/ws", echo)])
"""


@pytest.fixture(scope="module")
def web_package(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    source = tmp_path_factory.mktemp("asgi") / "asgi_app"
    source.mkdir()
    (source / "main.py").write_text(ASGI_APP)
    (source / "requirements.txt").write_text("starlette>=0.37\nscf-asgi\n")
    output = source.parent / "web.zip"
    return output, package(source, output, "main:app", "--web", "--interface", "asgi")


class WebInstance:
    def __init__(self, process: subprocess.Popen[str], port: int) -> None:
        self.process = process
        self.port = port
        self.lines: list[str] = []

    def stop(self) -> str:
        self.process.terminate()
        output, _ = self.process.communicate(timeout=20)
        return output


def start_web(unpacked: Path, interpreter: Path, **variables: str) -> WebInstance:
    port = free_port()
    env = bare_env(dict(os.environ), interpreter, PORT=str(port), **variables)
    process = subprocess.Popen(
        [str(unpacked / "scf_bootstrap")],
        cwd=str(unpacked),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"scf_bootstrap exited: {process.communicate()[0]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1):
                pass
        except urllib.error.HTTPError:
            break  # answered (404): listening
        except OSError:
            time.sleep(0.05)
            continue
        break
    else:
        process.kill()
        raise AssertionError(f"scf_bootstrap never listened: {process.communicate()[0]}")
    return WebInstance(process, port)


def websocket_echo(port: int, text: str) -> tuple[str, str]:
    """A minimal RFC 6455 client: the handshake's status line and the echoed message."""
    import base64
    import socket

    key = base64.b64encode(os.urandom(16)).decode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(
            (
                "GET /ws HTTP/1.1\r\nHost: example\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        reader = connection.makefile("rb")
        status = reader.readline().decode().strip()
        while reader.readline() not in (b"\r\n", b""):
            pass
        payload = text.encode()
        mask = os.urandom(4)
        masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
        connection.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + masked)
        head = reader.read(2)
        length = head[1] & 0x7F
        return status, reader.read(length).decode()


def test_web_package_serves_an_asgi_app_over_http_on_port(
    web_package: tuple[Path, dict[str, Any]], bare_python: Path, tmp_path: Path
) -> None:
    output, summary = web_package
    assert (summary["mode"], summary["bootstrap"]) == ("web", "scf_bootstrap")
    names = {item["name"].lower() for item in summary["distributions"]}
    assert {"uvicorn", "wsproto", "starlette"} <= names
    assert "gunicorn" not in names  # --interface asgi: only the ASGI server
    unpacked = tmp_path / "var-user"
    extract(output, unpacked)
    instance = start_web(unpacked, bare_python)
    try:
        request = urllib.request.Request(
            f"http://127.0.0.1:{instance.port}/hello?a=1",
            headers={
                WEB_REQUEST_ID_HEADER: "req-123",
                "X-Forwarded-For": "203.0.113.9",
                "X-Forwarded-Proto": "https",
            },
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            status, body = response.status, json.loads(response.read())
        ws_status, echoed = websocket_echo(instance.port, "hi")
    finally:
        log = instance.stop()
    assert (status, body) == (
        200,
        {"path": "/hello", "query": {"a": "1"}, "client": "203.0.113.9", "scheme": "https"},
    )
    # (the reason phrase differs between uvicorn releases)
    assert (ws_status.split(" ")[:2], echoed) == (["HTTP/1.1", "101"], "echo: hi")
    access = [line for line in log.splitlines() if "GET /hello" in line]
    assert len(access) == 1, log
    assert access[0].split(" ", 2)[2] == 'req-123 203.0.113.9:0 "GET /hello?a=1 HTTP/1.1" 200 OK', (
        log
    )


def test_web_package_serves_a_wsgi_app_with_gunicorn(bare_python: Path, tmp_path: Path) -> None:
    source = copy_example("flask_app", tmp_path)
    output = tmp_path / "flask-web.zip"
    summary = package(source, output, "app:app", "--web", "--interface", "wsgi")
    names = {item["name"].lower() for item in summary["distributions"]}
    assert "gunicorn" in names
    assert not names & {"uvicorn", "wsproto"}
    unpacked = tmp_path / "var-user"
    extract(output, unpacked)
    # as the emulator starts it: on the loopback address only
    instance = start_web(unpacked, bare_python, **{ENV_WEB_HOST: "127.0.0.1"})
    try:
        request = urllib.request.Request(
            f"http://127.0.0.1:{instance.port}/api/items/3?tag=a",
            headers={WEB_REQUEST_ID_HEADER: "req-wsgi-9", "X-Forwarded-Proto": "https"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            status, body = response.status, json.loads(response.read())
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.2", instance.port), timeout=5).close()
    finally:
        log = instance.stop()
    assert f"Listening at: http://127.0.0.1:{instance.port} " in log, log
    assert (status, body) == (
        200,
        {"id": 3, "tags": ["a"], "url": f"https://127.0.0.1:{instance.port}/api/items/3"},
    )
    access = [line for line in log.splitlines() if "GET /api/items/3" in line]
    assert len(access) == 1, log
    fields = access[0].split("] ", 1)[1].rsplit(" ", 2)
    assert fields[0] == 'req-wsgi-9 127.0.0.1 "GET /api/items/3?tag=a HTTP/1.1" 200', log


# -- what is in the zip --------------------------------------------------------------------------


def test_zip_holds_the_app_its_dependencies_and_scf_asgi_and_nothing_else(
    flask_package: tuple[Path, dict[str, Any]],
) -> None:
    output, summary = flask_package
    modes = zip_modes(output)
    assert is_executable_file(modes["bootstrap"])
    assert modes["app.py"] == 0o100644
    assert modes["vendor/"] == 0o40755
    names = set(modes)
    assert {
        "app.py",
        "requirements.txt",
        "static/logo.svg",
        f"__pycache__/app.{TAG}.pyc",
        "vendor/flask/__init__.py",
        "vendor/scf_asgi/__init__.py",
        "vendor/scf_asgi/packaging/build.py",
        "vendor/scf_asgi/py.typed",
        "vendor/scf_asgi-0.1.0.dist-info/METADATA",
        "vendor/asgiref/__init__.py",
    } <= names
    left_out = [
        name
        for name in names
        if name.startswith((".git/", "node_modules/", "env/", "vendor/bin/", "dist/"))
        or name == "NOTES.md"
        or (name.endswith(".pyc") and f".{TAG}." not in name)
        or name.endswith("direct_url.json")
    ]
    assert left_out == []
    with zipfile.ZipFile(output) as opened:
        assert {info.date_time for info in opened.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        assert opened.read(f"__pycache__/app.{TAG}.pyc") != b"stale"
        assert b"\r" not in opened.read("bootstrap")
        assert opened.read("bootstrap").decode() == event_bootstrap(
            "app:app", ["--base-path", "/api"], sys.version_info[:2], made_by="scf-asgi package"
        )
    assert summary["excluded"] == [
        {"path": ".git/", "reason": "version control", "files": 1},
        {"path": "__pycache__/", "reason": "bytecode of the build machine", "files": 1},
        {"path": "env/", "reason": "virtualenv", "files": 1},
        {"path": "node_modules/", "reason": "node_modules", "files": 1},
        {"path": "NOTES.md", "reason": "--exclude *.md", "files": 1},
        {"path": "bootstrap", "reason": "replaced by the generated bootstrap", "files": 1},
    ]
    assert {name: summary[name] for name in ("app", "mode", "python", "compiled", "warnings")} == {
        "app": "app:app",
        "mode": "event",
        "python": VERSION,
        "compiled": True,
        "warnings": [],
    }
    assert summary["notes"] == [
        "requirements.txt names scf-asgi: left to pip out, it is vendored from this installation"
    ]
    assert {"flask", "werkzeug", "jinja2", "asgiref"} <= {
        item["name"].lower() for item in summary["distributions"]
    }
    assert summary["bytes"] == output.stat().st_size
    assert summary["sha256"] == hashlib.sha256(output.read_bytes()).hexdigest()


def test_pyc_are_unchecked_hash_for_the_target_and_are_what_imports_load(
    flask_package: tuple[Path, dict[str, Any]], bare_python: Path, tmp_path: Path
) -> None:
    output, _ = flask_package
    with zipfile.ZipFile(output) as opened:
        pycs = [name for name in opened.namelist() if name.endswith(".pyc")]
        headers = {opened.read(name)[:8] for name in pycs}
    assert len(pycs) > 50
    # PEP 552: the magic number of the target, then flags 0b01 = hash-based, not checked
    assert headers == {importlib.util.MAGIC_NUMBER + (1).to_bytes(4, "little")}
    unpacked = tmp_path / "var-user"
    extract(output, unpacked)
    os.chmod(unpacked, 0o555)  # read-only, as on SCF: nothing can be compiled there
    try:
        done = subprocess.run(
            [str(bare_python), "-v", "-c", "import flask, scf_asgi.cli"],
            cwd=str(unpacked),
            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{unpacked}:{unpacked}/vendor"},
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        os.chmod(unpacked, 0o755)
    loaded = {line for line in done.stderr.splitlines() if line.startswith("# code object from")}
    for package_name, module in (
        ("flask", "__init__"),
        ("werkzeug", "__init__"),
        ("scf_asgi", "cli"),
    ):
        pyc = unpacked / "vendor" / package_name / "__pycache__" / f"{module}.{TAG}.pyc"
        assert f"# code object from '{pyc}'" in loaded
    assert not [line for line in done.stderr.splitlines() if "can't open" in line]


def test_the_same_inputs_give_the_same_bytes(
    flask_package: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    first, summary = flask_package
    source = copy_example("flask_app", tmp_path)  # another folder, other file times
    os.utime(source / "app.py", (1_000_000_000, 1_000_000_000))
    again = package(
        source, tmp_path / "again.zip", "app:app", "--base-path", "/api", "--exclude", "*.md"
    )
    assert again["sha256"] == summary["sha256"]
    assert (tmp_path / "again.zip").read_bytes() == first.read_bytes()


# -- the bootstrap's choice of interpreter -------------------------------------------------------


def other_interpreter() -> str | None:
    for minor in range(9, 14):
        if (3, minor) != sys.version_info[:2]:
            found = find_interpreter((3, minor))
            if found is not None:
                return found.path
    return None


def test_bootstrap_refuses_another_python_in_one_line(
    flask_package: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    other = other_interpreter()
    if other is None:
        pytest.skip("no CPython of another version on this machine")
    extract(flask_package[0], tmp_path)
    done = subprocess.run(
        [str(tmp_path / "bootstrap")],
        env={"PATH": "/usr/bin:/bin", "SCF_PYTHON": other},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    version = subprocess.run(
        [other, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert (done.returncode, done.stdout, done.stderr) == (
        1,
        "",
        f"bootstrap: this package is built for CPython {VERSION}; {other} is cpython {version} "
        f"(set SCF_PYTHON to a CPython {VERSION})\n",
    )


def test_bootstrap_says_when_it_finds_no_python(
    flask_package: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    extract(flask_package[0], tmp_path / "code")
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    bash = shutil.which("bash") or "/bin/bash"
    done = subprocess.run(
        [bash, str(tmp_path / "code" / "bootstrap")],
        env={"PATH": str(empty)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (
        127,
        "",
        f"bootstrap: no Python found for this package (CPython {VERSION}): looked for "
        f"$SCF_PYTHON, /var/lang/python3*/bin/python3*, python{VERSION} and python3 on PATH\n",
    )


def test_bootstrap_finds_the_versioned_python_on_path(
    flask_package: tuple[Path, dict[str, Any]], bare_python: Path, tmp_path: Path
) -> None:
    unpacked = tmp_path / "code"
    extract(flask_package[0], unpacked)
    binaries = tmp_path / "bin"
    binaries.mkdir()
    (binaries / f"python{VERSION}").symlink_to(bare_python)
    api = FakeRuntimeAPI()
    env = bare_env(runtime_env(api), bare_python)
    del env["SCF_PYTHON"]
    env["PATH"] = f"{binaries}:/usr/bin:/bin"
    runtime = RuntimeProcess(api, [], env=env, cwd=unpacked, command=[str(unpacked / "bootstrap")])
    try:
        answer = api.invoke(gateway_event(path="/api/visit"))
    finally:
        assert runtime.stop() == 0
        api.close()
    assert json.loads(answer.json()["body"]) == {"visits": 1}


# -- the target ---------------------------------------------------------------------------------


def test_python_39_target_from_a_newer_python_installs_what_39_runs(tmp_path: Path) -> None:
    """The issue's anyio case: FastAPI for 3.9, built by a newer Python, runs on a bare 3.9."""
    if sys.version_info[:2] == (3, 9):
        pytest.skip("the suite runs on 3.9 itself")
    python39 = find_interpreter((3, 9))
    if python39 is None:
        pytest.skip("no CPython 3.9 on this machine")
    source = tmp_path / "fastapi_app"
    shutil.copytree(EXAMPLES / "fastapi_app", source)
    output = tmp_path / "fastapi39.zip"
    summary = package(source, output, "app:app", "--python", "3.9")
    assert (summary["python"], summary["interpreter"], summary["compiled"]) == (
        "3.9",
        python39.path,
        True,
    )
    versions = {item["name"].lower().replace("_", "-"): item for item in summary["distributions"]}
    assert {"fastapi", "starlette", "anyio", "pydantic-core"} <= set(versions)
    unpacked = tmp_path / "var-user"
    extract(output, unpacked)
    with zipfile.ZipFile(output) as opened:
        so_files = [name for name in opened.namelist() if name.endswith(".so")]
    assert so_files and all("cpython-39-x86_64-linux-gnu" in name for name in so_files)
    interpreter = bare_venv(tmp_path / "venv39", python39.path)
    api = FakeRuntimeAPI()
    runtime = start_bootstrap(unpacked, interpreter, api)
    try:
        answer = api.invoke(
            gateway_event(
                method="POST",
                path="/api/items",
                headers={"content-type": "application/json"},
                body='{"name": "widget", "price": 10}',
            )
        )
    finally:
        assert runtime.stop() == 0
        api.close()
    assert json.loads(answer.json()["body"]) == {"name": "widget", "price_with_tax": 10.6}


def hidden_version() -> str | None:
    """A CPython version with no interpreter under /usr/bin, /usr/local/bin or beside ours."""
    for minor in range(9, 14):
        version = f"3.{minor}"
        if (3, minor) == sys.version_info[:2]:
            continue
        if not any(Path(d, f"python{version}").exists() for d in ("/usr/bin", "/usr/local/bin")):
            return version
    return None


WSGI_APP = """\
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello from " + environ["PATH_INFO"].encode()]
"""


def small_app(folder: Path, requirements: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "main.py").write_text(WSGI_APP)
    if requirements:
        (folder / "requirements.txt").write_text(requirements)
    return folder


def isolated_env(tmp_path: Path) -> dict[str, str]:
    """This machine with no interpreter found by name: no pyenv, no uv, a bare PATH."""
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYENV", "UV_"))}
    cache = Path.home() / ".cache" / "pip"
    env.update(HOME=str(home), PATH="/usr/bin:/bin", PIP_CACHE_DIR=str(cache))
    return env


def test_without_an_interpreter_of_the_version_it_ships_sources_and_says_so(
    tmp_path: Path,
) -> None:
    version = hidden_version()
    if version is None:
        pytest.skip("every CPython version is on PATH here")
    source = small_app(tmp_path / "src")
    output = tmp_path / "out.zip"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "scf_asgi",
            "package",
            "main:app",
            "--python",
            version,
            "-o",
            str(output),
            "--json",
        ],
        cwd=str(source),
        env=isolated_env(tmp_path),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    warning = (
        f"no CPython {version} interpreter on this machine: the package ships sources only (no "
        f".pyc: every cold start compiles every module). Install Python {version} (or pass "
        "--interpreter) for a faster package."
    )
    assert (summary["interpreter"], summary["compiled"], summary["warnings"]) == (
        None,
        False,
        [warning],
    )
    assert done.stderr == f"scf-asgi: warning: {warning}\n"
    with zipfile.ZipFile(output) as opened:
        assert [name for name in opened.namelist() if name.endswith(".pyc")] == []
        assert f"VERSION={version}\n" in opened.read("bootstrap").decode()


ANYIO_APP = """\
import anyio
import tomli


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [anyio.__name__.encode()]
"""


def test_markers_are_judged_for_the_target_whatever_runs_pip(tmp_path: Path) -> None:
    """The review's anyio case: for 3.10, by a 3.11 with no 3.10 to run pip (or one without
    pip), pip judges `python_version < "3.11"` for 3.11 and leaves out what 3.10 needs."""
    if sys.version_info < (3, 11):
        pytest.skip("needs a build interpreter of 3.11+, for a target before it")
    version = next((v for v in ("3.10", "3.9") if v != VERSION), "3.10")
    target = find_interpreter((3, int(version.split(".")[1])))
    if target is None:
        pytest.skip(f"no CPython {version} on this machine to run the package with")
    source = tmp_path / "src"
    source.mkdir()
    (source / "main.py").write_text(ANYIO_APP)
    # root lines' markers too: pip would judge them for 3.11, leave tomli out and look for a
    # package that only 3.11+ would need (and that no index has)
    (source / "requirements.txt").write_text(
        "anyio==4.4.0\n"
        "tomli>=2 ; python_version < '3.11'\n"
        "scf-asgi-test-no-such-package ; python_version >= '3.11'\n"
    )
    bare = bare_venv(tmp_path / "bare", target.path)
    marker = 'python_version < "3.11"'
    for label, flags, env in (
        ("no interpreter", [], isolated_env(tmp_path)),
        # a CPython of the version without pip: the build's pip runs, the .pyc are compiled
        ("one without pip", ["--interpreter", str(bare)], None),
    ):
        output = tmp_path / f"{label}.zip"
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "scf_asgi",
                "package",
                "main:app",
                "--python",
                version,
                "-o",
                str(output),
                "--json",
                *flags,
            ],
            cwd=str(source),
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        summary = json.loads(done.stdout)
        names = sorted(normalise(item["name"]) for item in summary["distributions"])
        assert names == [
            "anyio",
            "asgiref",
            "exceptiongroup",
            "idna",
            "sniffio",
            "tomli",
            "typing-extensions",
        ], label
        assert summary["notes"][-1].startswith(
            "pip judges environment markers for the machine it runs on; installed too, for "
            f"CPython {version} on Linux x86_64 (glibc 2.17, manylinux): exceptiongroup>=1.0.2 "
            f"(for anyio 4.4.0 if {marker}); typing-extensions"
        ), label
        unpacked = tmp_path / label
        extract(output, unpacked)
        imported = subprocess.run(
            [str(bare), "-c", "import main; print(main.anyio.__name__)"],
            cwd=str(unpacked),
            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{unpacked}:{unpacked}/vendor"},
            capture_output=True,
            text=True,
            check=False,
        )
        assert (imported.returncode, imported.stdout) == (0, "anyio\n"), imported.stderr
    assert summary["notes"][0] == (
        f"{bare} has no pip: installing with {sys.executable}'s pip for CPython {version}"
    )
    assert summary["compiled"] is True


def dist_info_requiring(folder: Path, name: str, version: str, *requires: str) -> None:
    info = folder / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    lines += [f"Requires-Dist: {line}" for line in requires]
    (info / "METADATA").write_text("\n".join(lines) + "\n")


def test_what_the_target_needs_is_judged_with_its_own_environment(tmp_path: Path) -> None:
    """Linux x86_64 and CPython 3.10, whatever machine builds: a Mac arm64 would drop greenlet
    (platform_machine == "x86_64"), a 3.11 would drop tomli; extras asked for count."""
    from packaging.requirements import Requirement

    dist_info_requiring(
        tmp_path,
        "web-thing",
        "1.0",
        'greenlet>=3 ; platform_machine == "x86_64" and sys_platform == "linux"',
        'appnope ; sys_platform == "darwin"',
        'pywin32 ; platform_system == "Windows"',
        'tomli>=2 ; python_full_version < "3.11.0"',
        'newer-only ; python_version >= "3.11"',
        "present>=2",
        'uvloop>=0.17 ; extra == "fast" and sys_platform != "win32"',
        'docs-only ; extra == "docs"',
    )
    dist_info_requiring(tmp_path, "present", "1.5")
    environments = Target((3, 10), None).marker_environments()
    needs, conflicts = unmet(
        tmp_path, [(Requirement("web-thing[fast]"), "requirements.txt")], environments
    )
    assert [(need.text, need.by) for need in needs] == [
        (
            "greenlet>=3",
            ['web-thing 1.0 if platform_machine == "x86_64" and sys_platform == "linux"'],
        ),
        ("tomli>=2", ['web-thing 1.0 if python_full_version < "3.11.0"']),
        ("uvloop>=0.17", ['web-thing 1.0 if extra == "fast" and sys_platform != "win32"']),
    ]
    assert conflicts == ["present 1.5 is installed, but web-thing 1.0 needs present>=2"]


def downloaded_wheel(folder: Path, requirement: str) -> Path:
    """The wheel of `requirement` (no dependencies), from the index as pip finds it."""
    command = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(folder)]
    subprocess.run(
        [*command, "--only-binary=:all:", requirement],
        check=True,
        capture_output=True,
    )
    name = requirement.split("==")[0].replace("-", "_")
    return next(folder.glob(f"{name}-*.whl"))


def hashed_line(wheel: Path) -> str:
    name, version = wheel.name.split("-")[:2]
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    return f"{name}=={version} \\\n    --hash=sha256:{digest}\n"


def test_a_hash_pinned_requirements_file_is_installed_as_it_is(tmp_path: Path) -> None:
    """pip-compile --generate-hashes: pip refuses a run where any requirement has no hash, so
    scf-asgi's own (asgiref) go in a later run; what the app's lock lacks for the target is
    refused, not added unchecked."""
    downloads = tmp_path / "downloads"
    idna = downloaded_wheel(downloads, "idna==3.7")
    source = small_app(tmp_path / "src", "# pip-compile --generate-hashes\n" + hashed_line(idna))
    summary = package(source, tmp_path / "hashed.zip", "main:app")
    versions = {normalise(item["name"]): item["version"] for item in summary["distributions"]}
    assert versions["idna"] == "3.7"
    assert "asgiref" in versions
    assert summary["notes"][0].startswith(
        "requirements.txt is in pip's hash-checking mode: scf-asgi's own requirements are "
        "installed after it, without hashes: asgiref>=3.5"
    )
    # a wrong hash is pip's refusal, as it would be anywhere
    (source / "requirements.txt").write_text(
        hashed_line(idna).replace(hashlib.sha256(idna.read_bytes()).hexdigest(), "0" * 64)
    )
    wrong = scf_asgi("package", "main:app", "-o", str(tmp_path / "x.zip"), "-q", cwd=source)
    assert wrong.returncode == 1
    assert "THESE PACKAGES DO NOT MATCH THE HASHES" in wrong.stderr
    if sys.version_info < (3, 11):
        return
    # locked on 3.11 (anyio, idna, sniffio), packaged for 3.10: exceptiongroup and
    # typing-extensions are missing from the lock
    locked = [downloaded_wheel(downloads, f"{name}") for name in ("anyio==4.4.0", "sniffio")]
    (source / "requirements.txt").write_text("".join(map(hashed_line, [*locked, idna])))
    refused = scf_asgi(
        "package",
        "main:app",
        "--python",
        "3.10",
        "-o",
        str(tmp_path / "y.zip"),
        "-q",
        cwd=source,
        env=isolated_env(tmp_path),
    )
    assert refused.returncode == 1
    assert refused.stderr.splitlines()[-1] == (
        "scf-asgi: error: requirements.txt is in pip's hash-checking mode, but CPython 3.10 on "
        "Linux needs what it does not list: exceptiongroup>=1.0.2 (for anyio 4.4.0 if "
        'python_version < "3.11"); typing-extensions>=4.1 (for anyio 4.4.0 if python_version '
        '< "3.11"). Add them with their hashes (a lock compiled for the target, e.g. `uv pip '
        "compile --generate-hashes --python-version 3.10 --python-platform linux`)."
    )


def hand_made_wheel(
    folder: Path, name: str, version: str = "1.0", files: dict[str, str] | None = None
) -> Path:
    """A pure-Python wheel of `name` whose module holds VERSION (and `files`, by path)."""
    import base64

    files = {
        f"{name}/__init__.py": f"VERSION = {version!r}\n".encode(),
        **{path: text.encode() for path, text in (files or {}).items()},
        f"{name}-{version}.dist-info/METADATA": (
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        ).encode(),
        f"{name}-{version}.dist-info/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = [
        f"{path},sha256="
        + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        + f",{len(data)}"
        for path, data in files.items()
    ]
    files[f"{name}-{version}.dist-info/RECORD"] = (
        "\n".join([*record, f"{name}-{version}.dist-info/RECORD,,"]) + "\n"
    ).encode()
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return wheel


def test_relative_paths_in_requirements_mean_the_app_folder(tmp_path: Path) -> None:
    """As `pip install -r requirements.txt` run in the app's folder reads them: a wheel's path,
    --find-links, and a nested -r file's own relative paths; and a module of the app named
    like one of pip's (pip.py) does not stand in for it."""
    source = small_app(tmp_path / "src")
    hand_made_wheel(source / "wheels", "scf_asgi_test_local")
    hand_made_wheel(source / "links", "scf_asgi_test_linked", "2.0")
    hand_made_wheel(source / "more" / "links", "scf_asgi_test_nested", "3.0")
    (source / "more" / "requirements.txt").write_text(
        "--find-links links\nscf-asgi-test-nested==3.0\n"
    )
    (source / "requirements.txt").write_text(
        "./wheels/scf_asgi_test_local-1.0-py3-none-any.whl\n"
        "--find-links ./links\n"
        "scf-asgi-test-linked==2.0\n"
        "-r more/requirements.txt\n"
    )
    (source / "pip.py").write_text("raise SystemExit('the app folder shadowed pip')\n")
    output = tmp_path / "local.zip"
    summary = package(source, output, "main:app", "--exclude", "wheels", "--exclude", "links")
    versions = {normalise(item["name"]): item["version"] for item in summary["distributions"]}
    assert {
        name: versions.get(name)
        for name in ("scf-asgi-test-local", "scf-asgi-test-linked", "scf-asgi-test-nested")
    } == {
        "scf-asgi-test-local": "1.0",
        "scf-asgi-test-linked": "2.0",
        "scf-asgi-test-nested": "3.0",
    }
    with zipfile.ZipFile(output) as opened:
        assert opened.read("vendor/scf_asgi_test_linked/__init__.py") == b"VERSION = '2.0'\n"


MATCH = "match x:\n    case _:\n        pass\n"  # Python 3.10+


def test_app_code_that_does_not_compile_for_the_target_is_refused(tmp_path: Path) -> None:
    if sys.version_info < (3, 10):
        pytest.skip("needs a build interpreter that has match statements")
    python39 = find_interpreter((3, 9))
    source = small_app(tmp_path / "src")
    (source / "routes").mkdir()
    (source / "routes" / "__init__.py").write_text(MATCH)
    output = tmp_path / "out.zip"
    ending = (
        "Fix them (or pin packages that support that version), or leave files the platform "
        "never imports out with --exclude.\n"
    )
    # with no 3.9 to compile with: the app's files parsed with 3.9's grammar
    guessed = scf_asgi(
        "package",
        "main:app",
        "--python",
        "3.9",
        "-o",
        str(output),
        "-q",
        cwd=source,
        env=isolated_env(tmp_path),
    )
    assert (guessed.returncode, guessed.stderr) == (
        1,
        "scf-asgi: error: 1 file(s) do not compile for CPython 3.9, so importing them on the "
        "platform would fail:\n"
        # (ast.parse names the line where the match statement ends)
        f"  {source / 'routes' / '__init__.py'}, line 3: SyntaxError: Pattern matching is only "
        "supported in Python 3.10 and greater\n" + ending,
    )
    assert not output.exists()
    if python39 is None:
        return
    hand_made_wheel(
        source / "wheels",
        "scf_asgi_test_compat",
        files={
            "scf_asgi_test_compat/_py310.py": MATCH,
            "scf_asgi_test_compat/tests/test_match.py": MATCH,
        },
    )
    hand_made_wheel(source / "wheels", "scf_asgi_test_new", files={"scf_asgi_test_new.py": MATCH})
    (source / "requirements.txt").write_text(
        "./wheels/scf_asgi_test_compat-1.0-py3-none-any.whl\n"
        "./wheels/scf_asgi_test_new-1.0-py3-none-any.whl\n"
    )
    compiled = scf_asgi(
        "package",
        "main:app",
        "--python",
        "3.9",
        "-o",
        str(output),
        "-q",
        "--exclude",
        "wheels",
        cwd=source,
    )
    assert (compiled.returncode, compiled.stderr) == (
        1,
        "scf-asgi: error: 2 file(s) do not compile for CPython 3.9, so importing them on the "
        "platform would fail:\n"
        f"  {source / 'routes' / '__init__.py'}, line 1: SyntaxError: invalid syntax\n"
        "  vendor/scf_asgi_test_new.py, line 1: SyntaxError: invalid syntax (an installed "
        "package)\n" + ending,
    )
    # what installed packages ship beyond their top module: a warning, the package is made
    shutil.rmtree(source / "routes")
    (source / "requirements.txt").write_text("./wheels/scf_asgi_test_compat-1.0-py3-none-any.whl\n")
    summary = package(source, output, "main:app", "--python", "3.9", "--exclude", "wheels")
    assert summary["warnings"] == [
        "2 file(s) of installed packages do not compile for CPython 3.9 and ship as source (fine "
        "if nothing imports them there, as with tests or modules for other Python versions):\n"
        "  vendor/scf_asgi_test_compat/_py310.py, line 1: SyntaxError: invalid syntax\n"
        "  vendor/scf_asgi_test_compat/tests/test_match.py, line 1: SyntaxError: invalid syntax"
    ]
    assert summary["compile_failures"] == 2


def sdist_only_package(folder: Path, name: str) -> Path:
    """A find-links folder holding one sdist and no wheel."""
    folder.mkdir()
    root = folder / f"{name}-1.0"
    root.mkdir()
    (root / "PKG-INFO").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (root / "setup.py").write_text(f"from setuptools import setup\nsetup(name={name!r})\n")
    with tarfile.open(folder / f"{name}-1.0.tar.gz", "w:gz") as archive:
        archive.add(root, arcname=root.name)
    shutil.rmtree(root)
    return folder


def test_a_dependency_without_a_binary_wheel_is_named(tmp_path: Path) -> None:
    name = "scf-asgi-test-sdist-only"
    links = sdist_only_package(tmp_path / "links", name)
    source = small_app(tmp_path / "src", f"--find-links {links}\n{name}==1.0\n")
    output = tmp_path / "out.zip"
    done = scf_asgi("package", "main:app", "-o", str(output), "--quiet", cwd=source)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.splitlines()[0] == (
        f"scf-asgi: error: no binary wheel for CPython {VERSION} on Linux x86_64 (glibc 2.17, "
        f"manylinux) (or no such package): {name}==1.0. SCF cannot build packages from source: "
        "pin a version that ships such a wheel (see the package's files on the index), or "
        "choose another --python."
    )
    assert not output.exists()


def dist_info(folder: Path, name: str, version: str, requires_python: str | None) -> None:
    info = folder / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    text = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    if requires_python is not None:
        text += f"Requires-Python: {requires_python}\n"
    (info / "METADATA").write_text(text)


def test_requires_python_is_checked_for_every_distribution(tmp_path: Path) -> None:
    dist_info(tmp_path, "anyio", "4.12.0", ">=3.10")
    dist_info(tmp_path, "old", "1.0", None)
    dist_info(tmp_path, "patchy", "2.0", ">=3.9.2")
    dist_info(tmp_path, "sniffio", "1.3.1", ">=3.7")
    with pytest.raises(PackageError) as refused:
        check_requires_python(tmp_path, (3, 9))
    assert str(refused.value) == (
        "installed for CPython 3.9 but cannot run on it: anyio 4.12.0 (Requires-Python >=3.10). "
        "Pin releases that support it, or choose another --python."
    )
    shutil.rmtree(tmp_path / "anyio-4.12.0.dist-info")
    found, warnings = check_requires_python(tmp_path, (3, 9))
    assert found == [
        {"name": "old", "version": "1.0", "requires_python": ""},
        {"name": "patchy", "version": "2.0", "requires_python": ">=3.9.2"},
        {"name": "sniffio", "version": "1.3.1", "requires_python": ">=3.7"},
    ]
    assert warnings == [
        "patchy 2.0 needs Python >=3.9.2: only some 3.9 releases qualify; check the "
        "platform's patch release"
    ]
    # with the interpreter's full version known, it is judged exactly
    assert check_requires_python(tmp_path, (3, 9, 18))[1] == []
    with pytest.raises(PackageError):
        check_requires_python(tmp_path, (3, 9, 1))


def test_exclusions_and_exclude_patterns(tmp_path: Path) -> None:
    source = tmp_path / "src"
    for relative in [
        "app.py",
        "pkg/__init__.py",
        "pkg/tests/test_a.py",
        "tests/test_b.py",
        "docs/guide.txt",
        "docs/image.png",
        "logs/today.log",
        "venv2/pyvenv.cfg",
        "venv2/lib/site.py",
        "demo.egg-info/PKG-INFO",
        ".mypy_cache/x.json",
        "pkg/__pycache__/__init__.cpython-311.pyc",
        "pkg/stray.pyc",
        "dist/old.zip",
        "build/lib/x.py",
        "vendor/old/__init__.py",
        "scf_bootstrap",
    ]:
        path = source / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x\n")
    (source / "linked").symlink_to(source / "pkg")
    files, excluded = collect_sources(source, ["tests", "docs/*.txt", "*.log"])
    assert files == ["app.py", "docs/image.png", "pkg/__init__.py"]
    assert [item.as_dict() for item in excluded] == [
        {"path": ".mypy_cache/", "reason": "cache", "files": 1},
        {"path": "build/", "reason": "build output", "files": 1},
        {"path": "demo.egg-info/", "reason": "build output", "files": 1},
        {"path": "dist/", "reason": "build output", "files": 1},
        {"path": "linked/", "reason": "a symbolic link to a folder", "files": 0},
        {"path": "tests/", "reason": "--exclude tests", "files": 1},
        {"path": "vendor/", "reason": "vendor/ (installed afresh for the target)", "files": 1},
        {"path": "venv2/", "reason": "virtualenv", "files": 2},
        {"path": "scf_bootstrap", "reason": "replaced by the generated scf_bootstrap", "files": 1},
        {"path": "docs/guide.txt", "reason": "--exclude docs/*.txt", "files": 1},
        {"path": "logs/today.log", "reason": "--exclude *.log", "files": 1},
        {"path": "pkg/__pycache__/", "reason": "bytecode of the build machine", "files": 1},
        {"path": "pkg/tests/", "reason": "--exclude tests", "files": 1},
        {"path": "pkg/stray.pyc", "reason": "bytecode of the build machine", "files": 1},
    ]


def test_links_out_of_the_folder_and_dotenv_files_are_left_out_and_said(tmp_path: Path) -> None:
    secrets = tmp_path / "home" / ".ssh"
    secrets.mkdir(parents=True)
    (secrets / "id_ed25519").write_text("PRIVATE KEY\n")
    source = small_app(tmp_path / "src")
    (source / "conf").mkdir()
    (source / "conf" / "settings.ini").write_text("[app]\n")
    (source / "key").symlink_to(secrets / "id_ed25519")
    (source / "settings.ini").symlink_to(source / "conf" / "settings.ini")  # stays inside
    (source / ".env").write_text("DATABASE_PASSWORD=s3cret\n")
    (source / "conf" / ".env.production").write_text("TOKEN=abc\n")
    (source / ".envrc").write_text("export TOKEN=abc\n")
    (source / "environment.py").write_text("NAME = 'not a dotenv file'\n")
    output = tmp_path / "out.zip"
    summary = package(source, output, "main:app")
    with zipfile.ZipFile(output) as opened:
        names = [name for name in opened.namelist() if not name.startswith("vendor/")]
        linked = opened.read("settings.ini")
    assert sorted(name for name in names if not name.endswith("/")) == [
        f"__pycache__/environment.{TAG}.pyc",
        f"__pycache__/main.{TAG}.pyc",
        "bootstrap",
        "conf/settings.ini",
        "environment.py",
        "main.py",
        "settings.ini",
    ]
    assert linked == b"[app]\n"
    assert summary["excluded"] == [
        {"path": ".env", "reason": ".env file (may hold secrets)", "files": 1},
        {"path": ".envrc", "reason": ".env file (may hold secrets)", "files": 1},
        {"path": "key", "reason": "a symbolic link to outside the app folder", "files": 1},
        {"path": "conf/.env.production", "reason": ".env file (may hold secrets)", "files": 1},
    ]
    assert summary["notes"] == [
        "no requirements.txt or pyproject.toml dependencies: the app needs none",
        "left out .env, .envrc, conf/.env.production: .env files mostly hold secrets, which "
        "belong in the function's environment (--env KEY=VALUE, or env in [tool.scf-asgi]); "
        "--include-dotenv packages them",
        f"left out symbolic links to files outside {source}: key -> {secrets / 'id_ed25519'} "
        "(copy a file into the folder if the app needs it)",
    ]
    assert b"PRIVATE KEY" not in output.read_bytes()
    wanted = package(source, tmp_path / "with-env.zip", "main:app", "--include-dotenv")
    assert [item["path"] for item in wanted["excluded"]] == ["key"]
    with zipfile.ZipFile(tmp_path / "with-env.zip") as opened:
        assert opened.read(".env") == b"DATABASE_PASSWORD=s3cret\n"


def test_size_warning_over_the_inline_limit(tmp_path: Path) -> None:
    source = small_app(tmp_path / "src")
    (source / "blob.bin").write_bytes(os.urandom(MAX_INLINE_ZIP_BYTES + 1024 * 1024))
    summary = package(source, tmp_path / "big.zip", "main:app")
    assert summary["bytes"] > MAX_INLINE_ZIP_BYTES
    size = summary["bytes"] / (1024 * 1024)
    assert summary["warnings"] == [
        f"{size:.1f} MB is over the 20 MB an API call can upload inline: `scf-asgi deploy` "
        "needs --cos-bucket for it"
    ]


def test_an_interrupted_zip_leaves_no_partial_file_and_the_old_zip_as_it_was(
    tmp_path: Path,
) -> None:
    source = small_app(tmp_path / "src")
    output = tmp_path / "dist" / "app.zip"
    output.parent.mkdir()
    output.write_bytes(b"the previous build\n")
    # incompressible, so zipping takes a while
    (source / "blob.bin").write_bytes(hashlib.shake_256(b"slow").digest(96 * 1024 * 1024))
    partial = output.with_name("app.zip.partial")
    process = subprocess.Popen(
        [sys.executable, "-m", "scf_asgi", "package", "main:app", "-o", str(output), "-q"],
        cwd=str(source),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not partial.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert partial.exists(), "the zip was never being written"
    process.send_signal(signal.SIGINT)  # Ctrl-C
    _, stderr = process.communicate(timeout=60)
    assert process.returncode != 0, stderr
    assert "KeyboardInterrupt" in stderr
    assert sorted(path.name for path in output.parent.iterdir()) == ["app.zip"]
    assert output.read_bytes() == b"the previous build\n"
    # a folder where the zip should go: said before any work
    folder = scf_asgi("package", "main:app", "-o", str(output.parent), "-q", cwd=source)
    assert (folder.returncode, folder.stderr) == (
        1,
        f"scf-asgi: error: -o {output.parent}: a folder; name the zip to write\n",
    )


def test_refuses_a_package_over_500_mb_unpacked(tmp_path: Path) -> None:
    source = small_app(tmp_path / "src")
    with (source / "huge.bin").open("wb") as sparse:
        sparse.truncate(501 * 1024 * 1024)  # a sparse file: no disk used
    output = tmp_path / "huge.zip"
    done = scf_asgi("package", "main:app", "-o", str(output), "--quiet", cwd=source)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.startswith("scf-asgi: error: the package unpacks to 501.")
    assert done.stderr.endswith(
        " MB; SCF allows 500 MB unpacked (layers included): leave out more (--exclude), or move "
        "large files to COS or a layer\n"
    )
    assert not output.exists()


def test_quiet_prints_nothing_and_the_default_output_says_each_step(tmp_path: Path) -> None:
    source = small_app(tmp_path / "src")
    quiet = scf_asgi("package", "main:app", "-o", str(tmp_path / "q.zip"), "-q", cwd=source)
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")
    loud = scf_asgi("package", "main:app", "-o", str(tmp_path / "l.zip"), cwd=source)
    assert loud.returncode == 0
    lines = loud.stdout.splitlines()
    assert lines[0] == (
        f"Packaging main:app from {source} for CPython {VERSION} on Linux x86_64 (glibc 2.17, "
        "manylinux), as an event function (Custom Runtime)"
    )
    steps = [line.split(":")[0] for line in lines if line.endswith(" s)")]
    assert steps == ["installing dependencies", f"compiling .pyc for CPython {VERSION}", "zipping"]
    assert lines[-1].startswith(f"Wrote {tmp_path / 'l.zip'} (")


# -- scf-asgi bootstrap and the project file -----------------------------------------------------


def test_bootstrap_command_writes_the_packaged_bootstrap(tmp_path: Path) -> None:
    done = scf_asgi(
        "bootstrap",
        "app:app",
        "--base-path",
        "/api",
        "--no-access-log",
        "-o",
        "out",
        cwd=tmp_path,
    )
    assert (done.returncode, done.stdout) == (0, f"wrote out/bootstrap (CPython {VERSION})\n")
    written = tmp_path / "out" / "bootstrap"
    assert written.read_bytes().decode() == event_bootstrap(
        "app:app",
        ["--base-path", "/api", "--no-access-log"],
        sys.version_info[:2],
        made_by="scf-asgi bootstrap",
    )
    assert written.stat().st_mode & 0o777 == 0o755
    again = scf_asgi("bootstrap", "app:app", "-o", "out", cwd=tmp_path)
    assert (again.returncode, again.stderr) == (
        1,
        "scf-asgi: error: out/bootstrap exists: pass --force to replace it\n",
    )
    forced = scf_asgi("bootstrap", "app:app", "-o", "out", "--force", cwd=tmp_path)
    assert forced.returncode == 0
    assert written.read_text() == event_bootstrap(
        "app:app", [], sys.version_info[:2], made_by="scf-asgi bootstrap"
    )
    web = scf_asgi("bootstrap", "app:app", "--web", "--python", "3.10", "-o", "out", cwd=tmp_path)
    assert web.returncode == 0
    assert (tmp_path / "out" / "scf_bootstrap").read_text() == web_bootstrap(
        "app:app", [], (3, 10), made_by="scf-asgi bootstrap"
    )
    too_old = scf_asgi("bootstrap", "app:app", "--python", "3.8", "-o", "old", cwd=tmp_path)
    assert (too_old.returncode, too_old.stderr) == (
        1,
        "scf-asgi: error: scf-asgi needs Python >=3.9; --python 3.8 cannot run it\n",
    )
    refused = scf_asgi("bootstrap", "app:app", "--web", "--base-path", "/x", cwd=tmp_path)
    assert (refused.returncode, refused.stderr) == (
        1,
        "scf-asgi: error: --base-path: options of the event runtime, not of --web\n",
    )


def test_a_line_break_in_the_app_or_an_option_never_reaches_the_bootstrap(tmp_path: Path) -> None:
    """The bootstrap shows its command in a comment line: a line break in a word would end the
    comment, and the rest would run as shell code at every cold start."""
    injected = f"app:app\ntouch {tmp_path}/PWNED #"
    done = scf_asgi("bootstrap", injected, "-o", "out", cwd=tmp_path)
    assert (done.returncode, done.stderr) == (
        1,
        f"scf-asgi: error: cannot read app reference {injected!r}: expected MODULE:ATTR, Python "
        "names separated by dots (app:app, mysite.wsgi:application)\n",
    )
    in_option = scf_asgi(
        "bootstrap", "app:app", "--base-path", "/x\ntouch PWNED", "-o", "out", cwd=tmp_path
    )
    assert (in_option.returncode, in_option.stderr) == (
        1,
        "scf-asgi: error: '/x\\ntouch PWNED': a control character (a line break, a tab, ...) "
        "cannot be written into a bootstrap\n",
    )
    handler = scf_asgi(
        "bootstrap", "app:app", "--event-handler", "jobs:on\rx", "-o", "out", cwd=tmp_path
    )
    assert (handler.returncode, handler.stderr) == (
        1,
        "scf-asgi: error: --event-handler 'jobs:on\\rx': expected MODULE:ATTR, Python names "
        "separated by dots\n",
    )
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "PWNED").exists()
    # the text itself refuses them too, whoever calls it
    with pytest.raises(ConfigurationError):
        web_bootstrap("app:app", ["--interface", "asgi\x00"], (3, 10), made_by="test")
    # names that are Python identifiers, dotted, are accepted in both forms
    for reference in ("mysite.wsgi:application", "app.app", "pkg.sub:factory.app", "café:app"):
        written = scf_asgi("bootstrap", reference, "-o", "ok", "--force", cwd=tmp_path)
        assert written.returncode == 0, (reference, written.stderr)


def test_project_file_settings_and_flags_over_them(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "demo"\n\n[tool.scf-asgi]\napp = "main:app"\nbase-path = "/cfg"\n'
        'python = "3.10"\ntext-mime-type = ["application/x-demo"]\n'
    )
    from_file = scf_asgi("bootstrap", cwd=tmp_path)
    assert from_file.returncode == 0, from_file.stderr
    assert (tmp_path / "bootstrap").read_text() == event_bootstrap(
        "main:app",
        ["--base-path", "/cfg", "--text-mime-type", "application/x-demo"],
        (3, 10),
        made_by="scf-asgi bootstrap",
    )
    overridden = scf_asgi(
        "bootstrap",
        "other:app",
        "--base-path",
        "/cli",
        "--python",
        VERSION,
        "--force",
        cwd=tmp_path,
    )
    assert overridden.returncode == 0, overridden.stderr
    assert (tmp_path / "bootstrap").read_text() == event_bootstrap(
        "other:app",
        ["--base-path", "/cli", "--text-mime-type", "application/x-demo"],
        sys.version_info[:2],
        made_by="scf-asgi bootstrap",
    )
    (tmp_path / "pyproject.toml").write_text('[tool.scf-asgi]\napp = "main:app"\nmemroy = 256\n')
    typo = scf_asgi("bootstrap", "--force", cwd=tmp_path)
    assert typo.returncode == 1
    assert typo.stderr.startswith(
        f"scf-asgi: error: {tmp_path / 'pyproject.toml'}: unknown key 'memroy' in [tool.scf-asgi]"
    )
    (tmp_path / "pyproject.toml").write_text('[tool.scf-asgi]\napp = "main:app"\nlifespan = "x"\n')
    wrong = scf_asgi("bootstrap", "--force", cwd=tmp_path)
    assert (wrong.returncode, wrong.stderr) == (
        1,
        f"scf-asgi: error: {tmp_path / 'pyproject.toml'}: [tool.scf-asgi] lifespan must be one "
        "of 'auto', 'on', 'off', got 'x'\n",
    )


def test_source_names_the_folder_whose_project_file_is_read(tmp_path: Path) -> None:
    project = small_app(tmp_path / "proj")
    (project / "pyproject.toml").write_text(
        '[tool.scf-asgi]\napp = "main:app"\nexclude = ["*.md"]\nspeed = true\n'
    )
    (project / "NOTES.md").write_text("notes\n")
    output = tmp_path / "proj.zip"
    # from the folder above it, which has no project file
    summary = package(project, output, "--no-speed", cwd=tmp_path)
    assert (summary["app"], summary["excluded"]) == (
        "main:app",
        [{"path": "NOTES.md", "reason": "--exclude *.md", "files": 1}],
    )
    # --no-speed over the file's speed = true
    names = {item["name"].lower() for item in summary["distributions"]}
    assert not names & {"uvloop", "orjson"}, names


def test_no_web_turns_off_the_project_files_web(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.scf-asgi]\napp = "main:app"\nweb = true\n')
    done = scf_asgi("bootstrap", "--no-web", cwd=tmp_path)
    assert (done.returncode, done.stdout) == (0, f"wrote bootstrap (CPython {VERSION})\n")
    assert not (tmp_path / "scf_bootstrap").exists()


def test_examples_name_no_unpublished_package() -> None:
    for requirements in sorted(EXAMPLES.glob("*/requirements.txt")):
        names = [
            line.split(">")[0].split("=")[0].strip()
            for line in requirements.read_text().splitlines()
        ]
        assert "scf-asgi" not in names, requirements


def test_every_option_can_be_written_into_a_bootstrap() -> None:
    """package/bootstrap take the adapter's flags from options.py, so a new option is there."""
    from scf_asgi.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(
        ["bootstrap", "app:app", *[o.flag for o in options.OPTIONS if o.kind == options.SWITCH]]
    )
    assert options.to_argv(options.given(args)) == [
        o.flag for o in options.OPTIONS if o.kind == options.SWITCH
    ]


# -- the build of scf-asgi itself ----------------------------------------------------------------


def test_build_makes_a_wheel_and_an_sdist_that_twine_accepts(tmp_path: Path) -> None:
    source = tmp_path / "src"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".venv*", "dist", "__pycache__", ".*_cache", ".bench", "*.pyc"
        ),
    )
    built = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(tmp_path / "dist"), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    artifacts = sorted(path.name for path in (tmp_path / "dist").iterdir())
    assert artifacts == ["scf_asgi-0.1.0-py3-none-any.whl", "scf_asgi-0.1.0.tar.gz"]
    checked = subprocess.run(
        [
            sys.executable,
            "-m",
            "twine",
            "check",
            "--strict",
            *sorted((tmp_path / "dist").iterdir()),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.count("PASSED") == 2, checked.stdout
    with zipfile.ZipFile(tmp_path / "dist" / "scf_asgi-0.1.0-py3-none-any.whl") as wheel:
        names = set(wheel.namelist())
        metadata = wheel.read("scf_asgi-0.1.0.dist-info/METADATA").decode()
    assert {
        "scf_asgi/py.typed",
        "scf_asgi/deploy.py",
        "scf_asgi/web.py",
        "scf_asgi/packaging/build.py",
    } <= names
    extras = sorted(
        line.split(": ")[1] for line in metadata.splitlines() if line.startswith("Provides-Extra")
    )
    assert {"deploy", "package", "web"} <= set(extras)


# -- without the extras ----------------------------------------------------------------------------

BLOCK_EXTRAS = """
import sys
class Absent:
    names = {"rich", "packaging", "tencentcloud", "qcloud_cos", "uvicorn", "gunicorn", "tomli"}
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, Absent())
from scf_asgi.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_commands_load_and_name_the_extra_when_it_is_missing(tmp_path: Path) -> None:
    def run(*args: str) -> tuple[int, str]:
        done = subprocess.run(
            [sys.executable, "-c", BLOCK_EXTRAS, *args],
            cwd=str(tmp_path),
            capture_output=True,
            text=True,
            check=False,
        )
        return done.returncode, done.stderr

    code, _ = run("--help")
    assert code == 0
    assert run("package", "app:app") == (
        1,
        "scf-asgi: error: this command needs rich: pip install 'scf-asgi[package]'\n",
    )
    assert run("package", "app:app", "--json") == (
        1,
        "scf-asgi: error: this command needs packaging: pip install 'scf-asgi[package]'\n",
    )
    assert run("deploy", "app:app", "--region", "ap-guangzhou") == (
        1,
        "scf-asgi: error: this command needs tencentcloud: pip install 'scf-asgi[deploy]'\n",
    )
    (tmp_path / "app.py").write_text("async def app(scope, receive, send): pass\n")
    assert run("web", "app:app") == (
        1,
        "scf-asgi: error: serving an ASGI app as a web function needs uvicorn: pip install "
        "'scf-asgi[web]' (scf-asgi package --web puts it in the package)\n",
    )


def test_the_command_modules_add_no_import_to_the_parser() -> None:
    """The whole parser is built for every command line but the cold starts' own (`run` and
    `web` read theirs without it): the package, web and deploy commands must add no import to
    it beyond their own modules, so that `scf-asgi --help` or `scf-asgi local` stays quick."""
    script = (
        "import argparse, importlib, sys, scf_asgi.cli as cli\n"
        "own = {'scf_asgi.packaging.commands', 'scf_asgi.web', 'scf_asgi.deploy'}\n"
        "commands = argparse.ArgumentParser().add_subparsers()\n"
        "for name in cli.COMMAND_MODULES:\n"
        "    if name not in own: importlib.import_module(name).add_parsers(commands)\n"
        "before = set(sys.modules)\n"
        "for name in sorted(own): importlib.import_module(name).add_parsers(commands)\n"
        "print(sorted(set(sys.modules) - before))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    # contextvars: web.py's request-id variable, made when it is imported (a C module, well
    # under a millisecond)
    assert done.stdout.strip() == str(
        [
            "_contextvars",
            "contextvars",
            "scf_asgi.deploy",
            "scf_asgi.packaging",
            "scf_asgi.packaging.commands",
            "scf_asgi.web",
        ]
    )


def test_an_app_whose_module_is_not_there_is_refused(tmp_path: Path) -> None:
    source = small_app(tmp_path / "src")
    output = tmp_path / "out.zip"
    done = scf_asgi("package", "mian:app", "-o", str(output), "-q", cwd=source)
    assert (done.returncode, done.stdout, done.stderr) == (
        1,
        "",
        f"scf-asgi: error: mian:app: its module is neither in {source} nor among the installed "
        "dependencies (is --source the app's folder?)\n",
    )
    assert not output.exists()


SPEED_APP = """\
import asyncio
import json


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    loop = type(asyncio.get_running_loop()).__module__.split(".")[0]
    import scf_asgi.gateway

    body = json.dumps({"loop": loop, "orjson": scf_asgi.gateway._orjson is not None}).encode()
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
"""


def test_speed_puts_uvloop_and_orjson_in_the_zip_and_the_function_uses_them(
    bare_python: Path, tmp_path: Path
) -> None:
    source = tmp_path / "speedy"
    source.mkdir()
    (source / "main.py").write_text(SPEED_APP)
    (source / "requirements.txt").write_text("")
    output = tmp_path / "speedy.zip"
    package(source, output, "main:app", "--speed")
    with zipfile.ZipFile(output) as opened:
        names = {name.split("/")[1] for name in opened.namelist() if name.startswith("vendor/")}
    assert {"uvloop", "orjson"} <= names
    unpacked = tmp_path / "var-user"
    extract(output, unpacked)
    api = FakeRuntimeAPI()
    runtime = start_bootstrap(unpacked, bare_python, api)
    try:
        answer = api.invoke(gateway_event(path="/"))
    finally:
        assert runtime.stop() == 0
        api.close()
    assert json.loads(answer.json()["body"]) == {"loop": "uvloop", "orjson": True}
    # Without --speed, neither is shipped: they cost milliseconds at every cold start.
    plain = tmp_path / "plain.zip"
    package(source, plain, "main:app")
    with zipfile.ZipFile(plain) as opened:
        assert not any(
            name.startswith(("vendor/uvloop", "vendor/orjson")) for name in opened.namelist()
        )
