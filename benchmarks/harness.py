"""What every benchmark module shares: the settings, a row of the table, paired ratios, and the
child processes that serve events from the fast runtime API (runtime_api.py).

A child's CPU time is read from /proc/PID/task/*/schedstat: the scheduler's own count of the time
each of its threads has run, in nanoseconds, which leaves out every other process on the core
(the runtime API, the log reader, an HTTP client).
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from importlib import metadata
from pathlib import Path

import bench_apps
import events
from runtime_api import FakeRuntimeAPI

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from typing import Any

HERE = Path(__file__).resolve().parent
PY = sys.executable
BENCH_DIR = HERE.parent / ".bench"  # caches and scratch of the benchmarks (git-ignored)
PYCACHE = BENCH_DIR / "pycache"
MB = 1024 * 1024
# The packages of scf-asgi's [speed] extra, installed in the bench venv and left out of the venv
# "without [speed]" (.bench/venv-without-speed-*), where the micro rows run.
SPEED_PACKAGES = ("uvloop", "orjson")
# One per bench venv (CI runs the suite on several Pythons in the same checkout).
VENV_KEY = f"{sys.implementation.cache_tag}-{hashlib.sha256(sys.prefix.encode()).hexdigest()[:8]}"
PLAIN_VENV = BENCH_DIR / f"venv-without-speed-{VENV_KEY}"


class Settings:
    def __init__(self, quick: bool) -> None:
        self.quick = quick
        self.inproc_rounds = 7 if quick else 31
        self.inproc_batch = 200 if quick else 400
        self.loop_epochs = 2 if quick else 6
        self.loop_rounds = 2 if quick else 4
        self.loop_batch = 500 if quick else 2000
        self.loop_warmup = 200 if quick else 500
        self.cold_rounds = 5 if quick else 21
        self.binary_rounds = 3 if quick else 7
        self.binary_batch = 3 if quick else 6
        self.binary_size = 5 * MB
        self.memory_first = 100
        self.memory_total = 10_000
        self.import_rounds = 9 if quick else 31
        # choice.py: real apps per request (fresh processes each epoch) and cold starts
        self.apps_epochs = 1 if quick else 3
        self.apps_rounds = 2 if quick else 4
        self.apps_batch = 100 if quick else 800
        self.apps_warmup = 30 if quick else 200
        self.cold_apps_rounds = 2 if quick else 9
        # packaged.py
        self.zip_rounds = 2 if quick else 7


class Row:
    """One line of the table. `value` is a ratio (`unit` "x") or a difference (MB, ms)."""

    def __init__(
        self,
        what: str,
        ours: str,
        versus: str,
        value: float,
        unit: str,
        goal: float | None,
        spread: str = "",
    ) -> None:
        self.what = what
        self.ours = ours
        self.versus = versus
        self.value = value
        self.unit = unit
        self.goal = goal
        self.spread = spread

    @property
    def met(self) -> bool | None:
        return None if self.goal is None else self.value <= self.goal

    def cells(self) -> list[str]:
        if self.unit == "x":
            value, goal = f"{self.value:.2f}x", f"<= {self.goal:g}x" if self.goal else "info"
        else:
            value = f"{self.value:+.2f} {self.unit}"
            goal = f"<= +{self.goal:g} {self.unit}" if self.goal is not None else "info"
        met = {True: "yes", False: "**NO**", None: "-"}[self.met]
        return [self.what, self.ours, self.versus, value + self.spread, goal, met]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def paired(ours: Sequence[float], theirs: Sequence[float]) -> tuple[float, str]:
    """Median of per-round ratios, and its spread (min-max of the middle half) as text."""
    ratios = sorted(a / b for a, b in zip(ours, theirs))
    quarter = len(ratios) // 4
    low, high = ratios[quarter], ratios[-1 - quarter]
    return statistics.median(ratios), f" ({low:.2f}-{high:.2f})"


def us(seconds: float) -> str:
    return f"{seconds * 1e6:.1f} µs"


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms"


def version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def check_same(results: dict[str, dict[str, Any]], expected_body: bytes | None = None) -> None:
    """Every contender answered the same status, body, content type and cookies."""
    seen = {name: events.normalise(result) for name, result in results.items()}
    reference_name, reference = next(iter(seen.items()))
    if reference[0] != 200:
        raise SystemExit(f"{reference_name} answered {reference[0]}: {reference[1][:300]!r}")
    if expected_body is not None and reference[1] != expected_body:
        raise SystemExit(f"{reference_name} answered an unexpected body {reference[1][:300]!r}")
    for name, answer in seen.items():
        ours = (answer[0], answer[1], answer[2].split(";")[0], answer[3])
        theirs = (reference[0], reference[1], reference[2].split(";")[0], reference[3])
        if ours != theirs:
            raise SystemExit(
                f"{name} answered differently from {reference_name}:\n{ours}\n{theirs}"
            )


def expected_json_body() -> bytes:
    return json.dumps(bench_apps.expected_json(), separators=(",", ":")).encode("utf-8")


# -- the venv without [speed] ------------------------------------------------------------------

FIND_SPECS = (
    "import importlib.util, sys\n"
    "print(' '.join(n for n in sys.argv[1:] if importlib.util.find_spec(n) is not None))"
)


def plain_python() -> str:
    """The interpreter of the venv without [speed] (see without_speed_venv), made once a run."""
    global _plain_python
    if _plain_python is None:
        _plain_python = str(without_speed_venv())
    return _plain_python


_plain_python: str | None = None


def without_speed_venv() -> Path:
    """A venv with every package of the bench venv but uvloop and orjson: its site-packages is
    a copy of the bench venv's made of hard links (no symbolic link for imports to resolve, so
    that its imports cost what the bench venv's do), less those two. Made again when the bench
    venv's packages change; returns its interpreter."""
    python = PLAIN_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([PY, "-m", "venv", "--without-pip", str(PLAIN_VENV)], check=True)
    source = Path(sysconfig.get_paths()["purelib"])
    target = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    stamp = PLAIN_VENV / "linked-from.txt"
    fingerprint = "\n".join(
        f"{entry.name} {entry.stat().st_mtime_ns}" for entry in sorted(source.iterdir())
    )
    if not stamp.exists() or stamp.read_text() != fingerprint:
        shutil.rmtree(target)
        shutil.copytree(
            source,
            target,
            symlinks=True,
            copy_function=os.link,
            ignore=lambda folder, names: [
                name
                for name in names
                if folder == str(source) and name.lower().startswith(SPEED_PACKAGES)
            ],
        )
        stamp.write_text(fingerprint)
    found = subprocess.run(
        [str(python), "-c", FIND_SPECS, *SPEED_PACKAGES, "scf_asgi", "fastapi", "django"],
        capture_output=True,
        text=True,
        check=True,
        cwd=HERE,
    ).stdout.split()
    if found != ["scf_asgi", "fastapi", "django"]:
        raise SystemExit(f"the venv without [speed] ({PLAIN_VENV}) finds {found}")
    return python


# -- child processes against the fast runtime API ---------------------------------------------


def process_cpu(
    pids: Iterable[int], previous: frozenset[str] = frozenset()
) -> tuple[float, frozenset[str]]:
    """CPU seconds run so far by every thread of the processes `pids` (the scheduler's own count,
    in nanoseconds, from /proc/PID/task/TID/schedstat), and the threads counted. A thread that
    was counted before (`previous`) and has gone would take its time with it, making the
    difference meaningless: that stops the benchmark."""
    total = 0
    threads = []
    for pid in pids:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as schedstat:
                    total += int(schedstat.read().split()[0])
            except FileNotFoundError:  # ended since listdir
                continue
            threads.append(f"{pid}/{tid}")
    counted = frozenset(threads)
    if previous - counted:
        raise SystemExit(
            f"threads {sorted(previous - counted)} ended between two readings of their CPU time"
        )
    return total / 1e9, counted


class Child:
    def __init__(self, name: str, api: FakeRuntimeAPI, process: subprocess.Popen[bytes]) -> None:
        self.name = name
        self.api = api
        self.process = process
        self.startup = 0.0  # spawn to POST /runtime/init/ready, seconds
        self.cpu_per_event: list[float] = []  # the child's own CPU seconds per event, per run()
        self.log_reader: subprocess.Popen[bytes] | None = None
        self.first_answer = 0.0  # spawn to the first answer posted, seconds (spawn(first=True))
        self.first_response: dict[str, Any] | None = None  # that answer, parsed
        self.threads: frozenset[str] = frozenset()  # the tasks whose CPU time cpu() last read

    def cpu(self) -> float:
        """CPU seconds the child has run (all its threads), without the runtime API's share."""
        seconds, self.threads = process_cpu([self.process.pid], self.threads)
        return seconds

    def rss(self) -> int:
        """Resident set size in bytes (the child is idle in the long poll when this is read)."""
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    async def run(self, count: int, timeout: float = 120.0) -> float:
        """Serve `count` events; seconds per event, from release to the last answer."""
        cpu = self.cpu()
        started = time.perf_counter()
        done = self.api.grant(count)
        try:
            finished = await asyncio.wait_for(done, timeout)
        except asyncio.TimeoutError:
            raise SystemExit(f"{self.name}: timed out; {self.stderr()}") from None
        self.cpu_per_event.append((self.cpu() - cpu) / count)
        if self.api.errors:
            raise SystemExit(f"{self.name} posted an invocation error: {self.api.errors[0]!r}")
        return (finished - started) / count

    async def answer(self) -> dict[str, Any]:
        """One event, capturing the integration response, for the correctness check."""
        self.api.capture = True
        self.api.responses.clear()
        await self.run(1)
        self.api.capture = False
        return json.loads(self.api.responses[-1])  # type: ignore[no-any-return]

    def stderr(self) -> str:
        self.errors.seek(0)
        return self.errors.read().decode("utf-8", "replace")[-2000:]

    errors: Any = None


def our_command(app: str, *extra: str) -> list[str]:
    """`scf-asgi run` as the micro rows run it: a default install, without [speed]."""
    return [plain_python(), "-m", "scf_asgi", "run", app, *extra]


def floor_command(kind: str, app: str) -> list[str]:
    """floor.py, run as a module, as every script the benchmark starts is: its bytecode is then
    cached like scf-asgi's (a script named on the command line is compiled on every start,
    1 to 2 ms for floor.py, which a cold-start row would count against the floor)."""
    return [plain_python(), "-m", "floor", kind, app]


def child_env(bytecode: bool = True) -> dict[str, str]:
    """The environment of every child. With `bytecode`, compiled modules are cached (under
    .bench/, not beside the sources) as in a deployed package that ships its .pyc files; without,
    every import compiles from source (a package without .pyc on SCF's read-only /var/user)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key.lower() not in ("http_proxy", "https_proxy", "all_proxy", "pythonpath")
        and not key.startswith(("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX"))
    }
    if bytecode:
        env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def runtime_env(port: int, base: dict[str, str]) -> dict[str, str]:
    """`base` with the variables the platform sets for a Custom Runtime process."""
    return dict(
        base,
        SCF_RUNTIME_API="127.0.0.1",
        SCF_RUNTIME_API_PORT=str(port),
        SCF_FUNCTIONNAME="bench",
        SCF_FUNCTIONVERSION="$LATEST",
        SCF_NAMESPACE="default",
        TENCENTCLOUD_REGION="ap-guangzhou",
    )


def log_pipe() -> subprocess.Popen[bytes]:
    """A `cat` reading what a child writes to stdout: a pipe that another process reads, as on
    SCF, where the platform collects stdout. Each access line is a write that wakes the reader,
    which runs on the same core, as a collector inside a one-vCPU instance would (to /dev/null
    the line would be nearly free)."""
    return subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)


async def spawn(
    name: str,
    argv: list[str],
    event: bytes,
    *,
    bytecode: bool = True,
    env: dict[str, str] | None = None,
    first: bool = False,
    timeout: float = 120.0,
) -> Child:
    """Start `argv` against a runtime API of its own and wait for `POST /runtime/init/ready`
    (`startup`). With `first`, one event is already waiting when the process starts, and this
    also waits for its answer (`first_answer`, `first_response`). `env` replaces child_env()."""
    api = await FakeRuntimeAPI(event).start()
    env = runtime_env(api.port, child_env(bytecode) if env is None else env)
    answered = None
    if first:
        api.capture = True
        answered = api.grant(1)
    errors = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()
    log_reader = log_pipe()
    assert log_reader.stdin is not None
    started = time.perf_counter()
    process = subprocess.Popen(
        argv, cwd=HERE, env=env, stdin=subprocess.DEVNULL, stdout=log_reader.stdin, stderr=errors
    )
    log_reader.stdin.close()  # the child holds the only write end: cat ends when it does
    child = Child(name, api, process)
    child.errors = errors
    child.log_reader = log_reader
    assert api.ready is not None
    deadline = started + timeout
    for waited in (api.ready, answered):
        if waited is None:
            continue
        while not waited.done():
            if process.poll() is not None:
                raise SystemExit(f"{name} exited with {process.returncode}: {child.stderr()}")
            if time.perf_counter() > deadline:
                raise SystemExit(f"{name}: no answer within {timeout:.0f} s; {child.stderr()}")
            await asyncio.wait([waited], timeout=0.05)
    child.startup = api.ready.result() - started
    if answered is not None:
        child.first_answer = answered.result() - started
        api.capture = False
        if api.errors:
            raise SystemExit(f"{name} posted an invocation error: {api.errors[0]!r}")
        child.first_response = json.loads(api.responses[-1])
        api.responses.clear()
    return child


async def stop(child: Child) -> None:
    process = child.process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        for _ in range(400):
            if process.poll() is not None:
                break
            await asyncio.sleep(0.005)
        else:
            process.kill()
            process.wait()
    await child.api.close()
    child.errors.close()
    if child.log_reader is not None:
        child.log_reader.wait()


async def interleave_children(
    children: list[Child], rounds: int, batch: int, warmup: int
) -> dict[str, list[float]]:
    for child in children:
        if warmup:
            await child.run(warmup)
    times: dict[str, list[float]] = {child.name: [] for child in children}
    for round_ in range(rounds):
        shift = round_ % len(children)
        for child in children[shift:] + children[:shift]:
            gc.collect()
            times[child.name].append(await child.run(batch))
    return times
