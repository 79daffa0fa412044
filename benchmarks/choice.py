"""The rows of what users choose between (issue 14): an event function served by `scf-asgi run`,
or a web function, whose `scf_bootstrap` runs uvicorn or gunicorn on a port. Real apps
(app_fastapi.py, app_flask.py, app_django.py), the benchmark request of events.py.

Per request (`apps`), for each real app, four processes side by side on one core:

- `scf-asgi run` with [speed]: the bench venv, where uvloop and orjson are installed, with
  ``--loop uvloop`` for an ASGI app when ``scf-asgi run --help`` lists that flag;
- `scf-asgi run` without [speed]: the same packages less uvloop and orjson (a venv whose
  site-packages is the bench venv's, hard-linked, but those two), flags left at defaults;
- the bare runtime client of floor.py with the same app, in that same venv without [speed];
- the web-function server: uvicorn with uvloop and httptools for the ASGI app, gunicorn's sync
  worker for the WSGI apps, each with its default settings, fed the same request over HTTP by
  web_client.py (in this process, on the same core, one request at a time).

Each reports the instance CPU per request (the serving processes' own CPU time from /proc:
every thread of the `scf-asgi run`, floor or uvicorn process, of gunicorn's master and worker;
the runtime API, the HTTP client and the stdout readers left out) and the wall time per request
(runtime side: from the release of a batch of events to its last answer, the runtime API's work
included; HTTP side: the client's send of the first request to the end of the last answer, the
client's work included).

Cold start (`cold-apps`), for the trivial apps of bench_apps.py and the real apps: process spawn
to `POST /runtime/init/ready` of `scf-asgi run` without [speed] against the raw-socket floor
(floor.py, in the same venv); and spawn to the first answer of `scf-asgi run` with [speed],
an event already waiting, against the web-function server's spawn to its first answer on its
port (the listening socket is made by the benchmark and handed to the server, so the request is
sent the moment the process starts and nothing polls the port).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import tempfile
import time

import events
from harness import (
    FIND_SPECS,
    HERE,
    PY,
    SPEED_PACKAGES,
    Row,
    Settings,
    child_env,
    expected_json_body,
    interleave_children,
    log,
    log_pipe,
    ms,
    paired,
    plain_python,
    process_cpu,
    spawn,
    stop,
    us,
)
from web_client import HTTPClient, Response, request_bytes

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class App:
    """An app the rows serve, and the web-function server a user would run it with."""

    def __init__(self, key: str, label: str, reference: str, interface: str) -> None:
        self.key = key
        self.label = label
        self.reference = reference
        self.interface = interface

    @property
    def server(self) -> str:
        return "uvicorn" if self.interface == "asgi" else "gunicorn"

    def expected(self, body: bytes) -> bool:
        """Whether `body` is the answer this app must give to the benchmark request."""
        if self.key.startswith("trivial"):
            return body == expected_json_body()
        return bool(json.loads(body) == events.REAL_ANSWER)


REAL_APPS = [
    App("fastapi", "FastAPI app", "app_fastapi:app", "asgi"),
    App("flask", "Flask app", "app_flask:app", "wsgi"),
    App("django", "Django app", "app_django:application", "wsgi"),
]
TRIVIAL_APPS = [
    App("trivial-asgi", "trivial ASGI app", "bench_apps:asgi_app", "asgi"),
    App("trivial-wsgi", "trivial WSGI app", "bench_apps:wsgi_app", "wsgi"),
]
SERVERS = {
    "uvicorn": "uvicorn (uvloop, httptools)",
    "gunicorn": "gunicorn sync (1 worker)",
}
# The goals of issue 14 on these rows (None: information only).
PER_REQUEST_GOALS = {
    ("fastapi", "cpu", "with", "server"): 1.10,
    ("fastapi", "cpu", "without", "floor"): 1.03,
    ("flask", "cpu", "without", "server"): 0.75,
    ("django", "cpu", "without", "server"): 0.80,
}
COLD_READY_GOALS = {"trivial-asgi": 1.05, "trivial-wsgi": 3.0}  # trivial WSGI: +ms
COLD_FIRST_GOALS = {"fastapi": 0.80, "flask": 0.80, "django": 0.80}


# -- with and without [speed] -----------------------------------------------------------------


class Speed:
    """How our side runs with [speed] and without it, found out once per run."""

    def __init__(self) -> None:
        help_text = subprocess.run(
            [PY, "-m", "scf_asgi", "run", "--help"], capture_output=True, text=True, check=True
        ).stdout
        self.loop_flag = "--loop" in help_text and "uvloop" in help_text
        installed = subprocess.run(
            [PY, "-c", FIND_SPECS, *SPEED_PACKAGES], capture_output=True, text=True, check=True
        ).stdout.split()
        if installed != list(SPEED_PACKAGES):
            raise SystemExit(
                f"with [speed] needs {', '.join(SPEED_PACKAGES)} installed in {PY}; found "
                f"{installed}: pip install -e '.[bench]'"
            )
        self.plain_python = plain_python()

    def ours_with(self, app: App) -> list[str]:
        loop = ["--loop", "uvloop"] if self.loop_flag and app.interface == "asgi" else []
        return [PY, "-m", "scf_asgi", "run", app.reference, *loop]

    def ours_without(self, app: App) -> list[str]:
        return [self.plain_python, "-m", "scf_asgi", "run", app.reference]

    def floor(self, app: App) -> list[str]:
        return [self.plain_python, "-m", "floor", app.interface, app.reference]

    def with_note(self, app: App, loaded: dict[str, bool] | None = None) -> str:
        """What "with [speed]" meant for this app, as the ours cell of its rows says it; with
        `loaded`, which of the [speed] packages the process had mapped (FastAPI imports orjson
        itself when it is installed, for its ORJSONResponse)."""
        if app.interface == "wsgi":
            note = "orjson installed; a WSGI app runs no event loop"
        elif self.loop_flag:
            note = "uvloop and orjson installed, --loop uvloop"
        else:
            note = "uvloop and orjson installed; no --loop in `scf-asgi run --help` yet: not passed"
        if loaded is not None:
            note += "; loaded: " + (", ".join(name for name in loaded if loaded[name]) or "none")
        return note


def speed_loaded(pid: int, interface: str) -> dict[str, bool]:
    names = SPEED_PACKAGES if interface == "asgi" else ("orjson",)
    return {name: mapped(pid, name) for name in names}


def mapped(pid: int, name: str) -> bool:
    """Whether a file of the package `name` (a compiled extension) is mapped in process `pid`."""
    with open(f"/proc/{pid}/maps") as maps:
        return any(f"/{name}/" in line for line in maps)


# -- the web-function servers -----------------------------------------------------------------


def server_command(app: App, fd: int) -> list[str]:
    if app.server == "uvicorn":
        return [PY, "-m", "serve_uvicorn", str(fd), app.reference]
    return [
        *(PY, "-m", "gunicorn", "--workers", "1", "--worker-class", "sync"),
        *("--bind", f"fd://{fd}", app.reference),
    ]


class WebServer:
    """A web-function server in a child process, and the HTTP client that feeds it; the same
    interface as harness.Child, so that interleave_children takes turns with both."""

    def __init__(self, name: str, app: App, process: subprocess.Popen[bytes], port: int) -> None:
        self.name = name
        self.app = app
        self.process = process
        self.client = HTTPClient(port, request_bytes(events.tencent_event()))
        self.cpu_per_event: list[float] = []
        self.first_answer = 0.0  # spawn to the end of the first answer, seconds
        self.first_response: Response | None = None
        self.pids = [process.pid]
        self.threads: frozenset[str] = frozenset()
        self.errors: Any = None
        self.log_reader: subprocess.Popen[bytes] | None = None

    def find_workers(self) -> None:
        """The server's processes: it and its children (gunicorn's worker), once it has
        answered (gunicorn forks its worker before that)."""
        pid = self.process.pid
        with open(f"/proc/{pid}/task/{pid}/children") as children:
            self.pids = [pid, *(int(child) for child in children.read().split())]

    def cpu(self) -> float:
        seconds, self.threads = process_cpu(self.pids, self.threads)
        return seconds

    async def run(self, count: int) -> float:
        """`count` requests one after the other; seconds per request, as the client saw it."""
        cpu = self.cpu()
        exchange = self.client.exchange
        started = time.perf_counter()
        for _ in range(count):
            response = exchange()
            if response.status != 200:
                raise SystemExit(f"{self.name} answered {response.status}: {response.body!r}")
        elapsed = time.perf_counter() - started
        self.cpu_per_event.append((self.cpu() - cpu) / count)
        # A fresh connection for each batch, so that no idle keep-alive timeout (uvicorn's is
        # 5 s) closes one under the next batch; the one connect is 1/count of it.
        self.client.close()
        return elapsed / count

    async def answer(self) -> Response:
        """One request, for the correctness check (on a connection of its own)."""
        try:
            return self.client.exchange()
        finally:
            self.client.close()

    def connections_per_request(self) -> float:
        return self.client.connections / max(self.client.exchanges, 1)

    def stderr(self) -> str:
        self.errors.seek(0)
        return self.errors.read().decode("utf-8", "replace")[-2000:]


async def start_server(name: str, app: App, *, timeout: float = 120.0) -> WebServer:
    """Spawn the app's web-function server on a listening socket made here, send it the
    benchmark request at once and time spawn to the end of its answer."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    port = listener.getsockname()[1]
    fd = listener.fileno()
    errors = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop_server()
    log_reader = log_pipe()
    assert log_reader.stdin is not None
    started = time.perf_counter()
    process = subprocess.Popen(
        server_command(app, fd),
        cwd=HERE,
        env=child_env(),
        stdin=subprocess.DEVNULL,
        stdout=log_reader.stdin,
        stderr=errors,
        pass_fds=(fd,),
    )
    listener.close()  # the server holds it now: if it dies, the connection below is refused
    log_reader.stdin.close()
    server = WebServer(name, app, process, port)
    server.errors = errors
    server.log_reader = log_reader
    server.client.timeout = timeout
    try:
        server.first_response = server.client.exchange()
    except OSError as exc:
        process.kill()
        process.wait()
        raise SystemExit(f"{name}: no answer ({exc}); {server.stderr()}") from None
    server.first_answer = time.perf_counter() - started
    server.client.close()
    server.find_workers()
    return server


async def stop_server(server: WebServer) -> None:
    server.client.close()
    process = server.process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        for _ in range(1000):
            if process.poll() is not None:
                break
            await asyncio.sleep(0.005)
        else:
            for pid in server.pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            process.wait()
    server.errors.close()
    if server.log_reader is not None:
        server.log_reader.wait()


# -- checks -----------------------------------------------------------------------------------


def check_alike(app: App, answers: dict[str, tuple[int, bytes, str, list[str]]]) -> None:
    """Every contender gave the app's answer, and the same status, body bytes, content type
    and cookies as the others."""
    reference_name, reference = next(iter(answers.items()))
    for name, answer in answers.items():
        if answer[0] != 200 or not app.expected(answer[1]):
            raise SystemExit(f"{name} ({app.label}) answered {answer[0]}: {answer[1][:300]!r}")
        if answer != reference:
            raise SystemExit(
                f"{name} answered the {app.label} request differently from {reference_name}:\n"
                f"{answer}\n{reference}"
            )


def check_server(server: WebServer) -> None:
    """The server is what its row says: uvicorn on uvloop with httptools."""
    if server.app.server == "uvicorn":
        missing = [name for name in ("uvloop", "httptools") if not mapped(server.pids[0], name)]
        if missing:
            raise SystemExit(f"{server.name} runs without {', '.join(missing)}")


# -- per request --------------------------------------------------------------------------------

WITH, WITHOUT, FLOOR, SERVER = "with", "without", "floor", "server"


async def bench_per_request(settings: Settings) -> list[Row]:
    speed = Speed()
    rows: list[Row] = []
    for app in REAL_APPS:
        rows += await _per_request(settings, speed, app)
        log(f"  ({app.label} done)")
    return rows


async def _per_request(settings: Settings, speed: Speed, app: App) -> list[Row]:
    event = json.dumps(events.tencent_event(), separators=(",", ":")).encode("utf-8")
    commands = {
        WITH: speed.ours_with(app),
        WITHOUT: speed.ours_without(app),
        FLOOR: speed.floor(app),
    }
    wall: dict[str, list[float]] = {name: [] for name in (*commands, SERVER)}
    cpu: dict[str, list[float]] = {name: [] for name in wall}
    loaded = None
    connections = 0.0
    for epoch in range(settings.apps_epochs):
        contenders: list[Any] = []
        try:
            for name, argv in commands.items():
                contenders.append(await spawn(name, argv, event))
            contenders.append(await start_server(SERVER, app))
            if epoch == 0:
                answers = {}
                for contender in contenders:
                    answer = await contender.answer()
                    answers[contender.name] = (
                        answer.normalise()
                        if isinstance(answer, Response)
                        else events.normalise(answer)
                    )
                check_alike(app, answers)
                check_server(contenders[-1])
            times = await interleave_children(
                contenders, settings.apps_rounds, settings.apps_batch, settings.apps_warmup
            )
            if epoch == 0:
                loaded = speed_loaded(contenders[0].process.pid, app.interface)
                for contender in contenders[1:3]:  # without [speed], and the floor
                    if any(speed_loaded(contender.process.pid, "asgi").values()):
                        raise SystemExit(f"{contender.name} loaded a package of [speed]")
            connections = contenders[-1].connections_per_request()
        finally:
            for contender in contenders:
                await (
                    stop_server(contender) if isinstance(contender, WebServer) else stop(contender)
                )
        for contender in contenders:
            wall[contender.name].extend(times[contender.name])
            cpu[contender.name].extend(contender.cpu_per_event[-len(times[contender.name]) :])
    server = f"{SERVERS[app.server]}, same app over HTTP, "
    if connections > 0.5:
        server += f"a new connection per request ({connections:.2f}; the sync worker closes each)"
    else:
        server += "one keep-alive connection per batch"
    notes = {
        WITH: speed.with_note(app, loaded),
        WITHOUT: "default flags: asyncio's loop, json" if app.interface == "asgi" else "json",
    }
    rows = []
    for measure, values, title in (
        ("cpu", cpu, "instance CPU time (the serving processes' own, from /proc)"),
        ("wall", wall, "wall time"),
    ):
        pairs = [(WITH, SERVER), (WITHOUT, SERVER)]
        if measure == "cpu":
            pairs.append((WITHOUT, FLOOR))
        for ours, theirs in pairs:
            ratio, spread = paired(values[ours], values[theirs])
            versus = (
                server
                if theirs == SERVER
                else "bare runtime client (floor.py, no [speed]), same app"
            )
            rows.append(
                Row(
                    f"per request, {app.label}: {title}, `scf-asgi run` {ours} [speed]",
                    f"{us(statistics.median(values[ours]))} ({notes[ours]})",
                    f"{versus}: {us(statistics.median(values[theirs]))}",
                    ratio,
                    "x",
                    PER_REQUEST_GOALS.get((app.key, measure, ours, theirs)),
                    spread,
                )
            )
    return rows


# -- cold start -------------------------------------------------------------------------------


async def bench_cold_apps(settings: Settings) -> list[Row]:
    speed = Speed()
    event = json.dumps(events.tencent_event(), separators=(",", ":")).encode("utf-8")
    rows: list[Row] = []
    for app in [*TRIVIAL_APPS, *REAL_APPS]:
        ready: dict[str, list[float]] = {WITHOUT: [], FLOOR: []}
        first: dict[str, list[float]] = {WITH: [], SERVER: [], WITHOUT: [], FLOOR: []}
        names = [WITHOUT, FLOOR, WITH, SERVER]
        commands = {
            WITH: speed.ours_with(app),
            WITHOUT: speed.ours_without(app),
            FLOOR: speed.floor(app),
        }
        loaded = None
        for round_ in range(settings.cold_apps_rounds + 1):  # round 0 warms caches and .pyc
            shift = round_ % len(names)
            answers = {}
            for name in names[shift:] + names[:shift]:
                if name == SERVER:
                    server = await start_server(name, app)
                    await stop_server(server)
                    assert server.first_response is not None
                    answers[name] = server.first_response.normalise()
                    startup, first_answer = 0.0, server.first_answer
                else:
                    child = await spawn(name, commands[name], event, first=True)
                    if name == WITH and loaded is None:
                        loaded = speed_loaded(child.process.pid, app.interface)
                    await stop(child)
                    assert child.first_response is not None
                    answers[name] = events.normalise(child.first_response)
                    startup, first_answer = child.startup, child.first_answer
                if round_:
                    first[name].append(first_answer)
                    if name in ready:
                        ready[name].append(startup)
            if round_ == 0:
                check_alike(app, answers)
        rows.append(_cold_ready_row(app, ready, first))
        ratio, spread = paired(first[WITH], first[SERVER])
        rows.append(
            Row(
                f"cold start, {app.label}: process spawn to first answer, `scf-asgi run` with "
                "[speed] (an event waiting)",
                f"{ms(statistics.median(first[WITH]))} ({speed.with_note(app, loaded)})",
                f"{SERVERS[app.server]}, spawn to its first answer on its port: "
                + ms(statistics.median(first[SERVER])),
                ratio,
                "x",
                COLD_FIRST_GOALS.get(app.key),
                spread,
            )
        )
        log(f"  ({app.label} done)")
    return rows


def _cold_ready_row(app: App, ready: dict[str, list[float]], first: dict[str, list[float]]) -> Row:
    what = (
        f"cold start, {app.label}: process spawn to `POST /runtime/init/ready`, `scf-asgi run` "
        "without [speed]"
    )
    ours = ms(statistics.median(ready[WITHOUT]))
    ours += f" (first answer {ms(statistics.median(first[WITHOUT]))})"
    versus = "raw-socket floor (floor.py, no [speed]), same app: " + ms(
        statistics.median(ready[FLOOR])
    )
    versus += f" (first answer {ms(statistics.median(first[FLOOR]))})"
    goal = COLD_READY_GOALS.get(app.key)
    if app.key == "trivial-wsgi":  # the goal is a difference in milliseconds
        differences = sorted(a - b for a, b in zip(ready[WITHOUT], ready[FLOOR]))
        quarter = len(differences) // 4
        spread = f" ({differences[quarter] * 1e3:+.1f}-{differences[-1 - quarter] * 1e3:+.1f})"
        return Row(what, ours, versus, statistics.median(differences) * 1e3, "ms", goal, spread)
    ratio, spread = paired(ready[WITHOUT], ready[FLOOR])
    return Row(what, ours, versus, ratio, "x", goal, spread)
