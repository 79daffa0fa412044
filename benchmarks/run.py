"""scf-asgi benchmarks: ratios against the adapters people use today, measured side by side.

    python benchmarks/run.py              full run (about 5 minutes on 2 cores)
    python benchmarks/run.py --quick      a short run, for a smoke test
    python benchmarks/run.py --markdown   the table with date and machine, to paste in the README
    python benchmarks/run.py --only asgi,loop   some rows only (see ROWS)

Every row is a ratio (or a difference) computed from repeated, interleaved runs: contenders take
turns (ABAB..., the order rotated each round), each round gives one paired ratio, and the row
reports the median of those. Before timing, every contender's answer is checked against the
others', so a broken contender cannot look fast.

Our side always goes through the public code paths: ``scf_asgi.Adapter(app)(event, None)`` in
process, and the real ``python -m scf_asgi run module:app`` child process for the loop rows,
against the fast loopback runtime API of runtime_api.py. The rows of what users choose between
(real apps against web-function servers, cold starts, the packaged zip) are in choice.py and
packaged.py; what the modules share is in harness.py.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_apps  # noqa: E402
import choice  # noqa: E402
import events  # noqa: E402
import packaged  # noqa: E402
from harness import (  # noqa: E402
    MB,
    Row,
    Settings,
    check_same,
    child_env,
    expected_json_body,
    floor_command,
    interleave_children,
    log,
    ms,
    our_command,
    paired,
    plain_python,
    spawn,
    stop,
    us,
    version,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

ROWS = (
    "asgi",
    "wsgi",
    "loop",
    "loop-wsgi",
    "cold",
    "binary",
    "memory",
    "import",
    "apps",
    "cold-apps",
    "zip",
)


# -- in process --------------------------------------------------------------------------------


def interleave(
    contenders: dict[str, Callable[[], Any]], rounds: int, batch: int
) -> dict[str, list[float]]:
    """Seconds per call of each contender, one figure per round; the order rotates each round."""
    names = list(contenders)
    times: dict[str, list[float]] = {name: [] for name in names}
    for call in contenders.values():  # warm up: imports, caches, lifespan
        for _ in range(50):
            call()
    clock = time.perf_counter
    for round_ in range(rounds):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            call = contenders[name]
            gc.collect()
            started = clock()
            for _ in range(batch):
                call()
            times[name].append((clock() - started) / batch)
    return times


def bench_asgi(settings: Settings) -> list[Row]:
    from mangum import Mangum

    from scf_asgi import Adapter

    app = bench_apps.asgi_app
    # asyncio's loop, as Mangum's and as a default install's (this process has uvloop, which
    # `loop="auto"` would take): the row compares the adapters, not the loops.
    ours = Adapter(app, loop="asyncio")
    mangum_off = Mangum(app, lifespan="off")
    mangum_auto = Mangum(app)
    tencent, aws = events.tencent_event(), events.aws_event()
    context = _LambdaContext()
    contenders = {
        "ours": lambda: ours(tencent, None),
        "mangum": lambda: mangum_off(aws, context),
        "mangum-auto": lambda: mangum_auto(aws, context),
    }
    check_same({name: call() for name, call in contenders.items()}, expected_json_body())
    try:
        times = interleave(contenders, settings.inproc_rounds, settings.inproc_batch)
    finally:
        ours.close()  # its lifespan, started on the first event
    mine = statistics.median(times["ours"])
    rows = []
    for name, label, goal in (
        ("mangum", "Mangum(lifespan='off')", 0.5),
        ("mangum-auto", "Mangum() default: lifespan per event", None),
    ):
        ratio, spread = paired(times["ours"], times[name])
        rows.append(
            Row(
                "in-process gateway event, trivial ASGI app (JSON body, query, 2 cookies)",
                f"{us(mine)}/event",
                f"{label}, same app, AWS event: {us(statistics.median(times[name]))}",
                ratio,
                "x",
                goal,
                spread,
            )
        )
    return rows


class _LambdaContext:
    function_name = "bench"
    aws_request_id = "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"


def bench_wsgi(settings: Settings) -> list[Row]:
    import serverless_wsgi
    from apig_wsgi import make_lambda_handler

    from scf_asgi import Adapter

    app = bench_apps.wsgi_app
    ours = Adapter(app)
    apig = make_lambda_handler(app)
    tencent, aws = events.tencent_event(), events.aws_event()
    context = _LambdaContext()
    contenders = {
        "ours": lambda: ours(tencent, None),
        "apig-wsgi": lambda: apig(aws, context),
        "serverless-wsgi": lambda: serverless_wsgi.handle_request(app, aws, context),
    }
    check_same({name: call() for name, call in contenders.items()}, expected_json_body())
    times = interleave(contenders, settings.inproc_rounds, settings.inproc_batch)
    mine = statistics.median(times["ours"])
    rows = []
    for name, goal in (("apig-wsgi", 0.9), ("serverless-wsgi", None)):
        ratio, spread = paired(times["ours"], times[name])
        rows.append(
            Row(
                "in-process gateway event, trivial WSGI app (same request)",
                f"{us(mine)}/event",
                f"{name}, same app, AWS event: {us(statistics.median(times[name]))}",
                ratio,
                "x",
                goal,
                spread,
            )
        )
    return rows


async def bench_loop(settings: Settings, interface: str) -> list[Row]:
    app = "bench_apps:asgi_app" if interface == "asgi" else "bench_apps:wsgi_app"
    event = json.dumps(events.tencent_event(), separators=(",", ":")).encode("utf-8")
    commands = {
        "scf-asgi run": our_command(app),
        "scf-asgi run --no-access-log": our_command(app, "--no-access-log"),
        "floor": floor_command(interface, app),
    }
    # Each epoch starts fresh processes: one process can be a few percent faster or slower than
    # the next for reasons of its own (hash seeds, memory layout), and a row measured on a single
    # set of processes moved by up to 0.1x from one run to the next.
    times: dict[str, list[float]] = {name: [] for name in commands}
    cpu: dict[str, list[float]] = {name: [] for name in commands}
    for epoch in range(settings.loop_epochs):
        children = [await spawn(name, argv, event) for name, argv in commands.items()]
        try:
            if epoch == 0:
                answers = {child.name: await child.answer() for child in children}
                check_same(answers, expected_json_body())
            epoch_times = await interleave_children(
                children, settings.loop_rounds, settings.loop_batch, settings.loop_warmup
            )
        finally:
            for child in children:
                await stop(child)
        for name, values in epoch_times.items():
            times[name].extend(values)
        for child in children:
            cpu[child.name].extend(child.cpu_per_event[-len(epoch_times[child.name]) :])
    ours, quiet = "scf-asgi run", "scf-asgi run --no-access-log"
    floor_time = statistics.median(times["floor"])
    rows = []
    for name, goal in ((ours, 1.3), (quiet, None)):
        mine = statistics.median(times[name])
        ratio, spread = paired(times[name], times["floor"])
        suffix = "" if name == ours else " --no-access-log"
        rows.append(
            Row(
                f"invocations through the `scf-asgi run{suffix}` loop, trivial "
                f"{interface.upper()} app (time per invocation)",
                f"{1 / mine:,.0f}/s ({us(mine)})",
                f"bare-socket floor client, same app: {1 / floor_time:,.0f}/s ({us(floor_time)})",
                ratio,
                "x",
                goal,
                spread,
            )
        )
    # The runtime API's own CPU time (it shares the core) is in both sides of the ratio above;
    # this row leaves it out: the child's CPU time alone, ours against the floor's.
    ratio, spread = paired(cpu[ours], cpu["floor"])
    rows.append(
        Row(
            f"CPU time of the `scf-asgi run` process alone per invocation, trivial "
            f"{interface.upper()} app (the runtime API's share left out)",
            us(statistics.median(cpu[ours])),
            f"bare-socket floor client: {us(statistics.median(cpu['floor']))}",
            ratio,
            "x",
            None,
            spread,
        )
    )
    return rows


async def bench_cold(settings: Settings) -> list[Row]:
    event = json.dumps(events.tencent_event(), separators=(",", ":")).encode("utf-8")
    app = "bench_apps:asgi_app"
    commands = {
        "ours": our_command(app),
        "floor": [plain_python(), "-m", "floor_ready", app],
        "socket floor": floor_command("asgi", app),
    }
    floors = {
        "floor": "bare script: imports asyncio, http.client, json and the app, posts ready",
        "socket floor": "the loop's floor client: imports asyncio, json, socket and the app, "
        "posts ready on a raw socket (no http.client, which scf-asgi does not import)",
    }
    # A .pyc written beside the sources (a run without PYTHONDONTWRITEBYTECODE) would be read
    # by the no-.pyc pass, which would then not compile anything.
    stale = [
        str(path.relative_to(HERE.parent))
        for path in (HERE.parent / "scf_asgi" / "__pycache__", HERE / "__pycache__")
        if path.is_dir()
    ]
    rows = []
    for bytecode in (True, False):
        names = list(commands) if bytecode else ["ours", "floor"]
        times: dict[str, list[float]] = {name: [] for name in names}
        for round_ in range(settings.cold_rounds + 1):  # round 0 warms page cache and .pyc
            for name in names if round_ % 2 == 0 else names[::-1]:
                child = await spawn(name, commands[name], event, bytecode=bytecode)
                await stop(child)
                if round_:
                    times[name].append(child.startup)
        for floor in floors if bytecode else ["floor"]:
            ratio, spread = paired(times["ours"], times[floor])
            rows.append(
                Row(
                    "cold start: process spawn to `POST /runtime/init/ready`, trivial ASGI app"
                    + (
                        ""
                        if bytecode
                        else " (no .pyc for scf_asgi and the app: compiled from source; the "
                        "standard library's .pyc as installed)"
                        + (
                            f" NOT MEASURED AS SAID: .pyc found in {', '.join(stale)}"
                            if stale
                            else ""
                        )
                    ),
                    ms(statistics.median(times["ours"])),
                    f"{floors[floor]}: {ms(statistics.median(times[floor]))}",
                    ratio,
                    "x",
                    1.15 if bytecode and floor == "floor" else None,
                    spread,
                )
            )
        if settings.quick:
            break
    return rows


async def bench_binary(settings: Settings) -> list[Row]:
    raw, event = events.binary_event_bytes(settings.binary_size)
    app = "bench_apps:binary_app"
    ours = await spawn("scf-asgi run", our_command(app), event)
    floor = await spawn("floor", floor_command("asgi", app), event)
    children = [ours, floor]
    try:
        answers = {child.name: await child.answer() for child in children}
        check_same(answers, raw)
        times = await interleave_children(
            children, settings.binary_rounds, settings.binary_batch, warmup=2
        )
    finally:
        for child in children:
            await stop(child)
    ratio, spread = paired(times["scf-asgi run"], times["floor"])
    size = settings.binary_size // MB
    return [
        Row(
            f"{size} MB binary request + {size} MB binary response through the loop",
            ms(statistics.median(times["scf-asgi run"])),
            "floor (base64 + JSON + the same socket writes): "
            + ms(statistics.median(times["floor"])),
            ratio,
            "x",
            1.5,
            spread,
        )
    ]


async def bench_memory(settings: Settings) -> list[Row]:
    event = json.dumps(events.tencent_event(), separators=(",", ":")).encode("utf-8")
    rows = []
    for interface in ("asgi", "wsgi"):
        child = await spawn("scf-asgi run", our_command(f"bench_apps:{interface}_app"), event)
        try:
            await child.run(settings.memory_first)
            first = child.rss()
            await child.run(settings.memory_total - settings.memory_first)
            last = child.rss()
        finally:
            await stop(child)
        rows.append(
            Row(
                f"resident memory after {settings.memory_total:,} invocations vs after the first "
                f"{settings.memory_first}, {interface.upper()} app",
                f"{last / MB:.2f} MB",
                f"itself after {settings.memory_first}: {first / MB:.2f} MB",
                (last - first) / MB,
                "MB",
                1.0,
            )
        )
    return rows


def _timed_differences(
    commands: dict[str, list[str]], rounds: int, env: dict[str, str]
) -> tuple[dict[str, list[float]], list[float]]:
    """Seconds per run of each command (alternating, round 0 dropped), and the per-round
    differences of the first command from the second."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    names = list(commands)
    for round_ in range(rounds + 1):
        for name in names if round_ % 2 == 0 else names[::-1]:
            started = time.perf_counter()
            subprocess.run(commands[name], check=True, cwd=HERE, env=env, capture_output=True)
            if round_:
                times[name].append(time.perf_counter() - started)
    first, second = names
    return times, sorted(a - b for a, b in zip(times[first], times[second]))


def _ms_spread(differences: list[float]) -> str:
    quarter = len(differences) // 4
    return f" ({differences[quarter] * 1e3:+.1f}-{differences[-1 - quarter] * 1e3:+.1f})"


def bench_import(settings: Settings) -> list[Row]:
    # `import scf_asgi` alone loads Adapter/serve lazily; a user who serves an app pays for those
    # too, so the row imports them (and reports whether asyncio came along: it should not).
    ours = "from scf_asgi import Adapter, serve; import sys; print('asyncio' in sys.modules)"
    env = child_env()
    python = plain_python()
    probe = subprocess.run([python, "-c", ours], check=True, cwd=HERE, env=env, capture_output=True)
    asyncio_loaded = probe.stdout.decode().strip() == "True"
    times, differences = _timed_differences(
        {"ours": [python, "-c", ours], "bare": [python, "-c", "pass"]}, settings.import_rounds, env
    )
    # What a WSGI app in SCF's built-in runtime pays before its first answer: the import and the
    # first event (both sides import the benchmark's app and event; only ours answers it).
    setup = "import bench_apps, events; event = events.tencent_event()"
    first_event = setup + "; from scf_asgi import Adapter; Adapter(bench_apps.wsgi_app)(event)"
    first_times, first_differences = _timed_differences(
        {"ours": [python, "-c", first_event], "bare": [python, "-c", setup]},
        settings.import_rounds,
        env,
    )
    return [
        Row(
            "import of `scf_asgi`: `from scf_asgi import Adapter, serve` (what serving any app "
            f"needs; `import scf_asgi` alone loads less); asyncio imported: "
            f"{'yes' if asyncio_loaded else 'no'}",
            ms(statistics.median(times["ours"])),
            f"`python -c pass`: {ms(statistics.median(times['bare']))}",
            statistics.median(differences) * 1e3,
            "ms",
            10.0,
            _ms_spread(differences),
        ),
        Row(
            "a WSGI app's first event in process (SCF's built-in runtime): the import, "
            "`Adapter(app)` and its first event",
            ms(statistics.median(first_times["ours"])),
            "the same script importing the app and the event but not scf_asgi: "
            + ms(statistics.median(first_times["bare"])),
            statistics.median(first_differences) * 1e3,
            "ms",
            None,
            _ms_spread(first_differences),
        ),
    ]


# -- the report ----------------------------------------------------------------------------------


def machine() -> list[str]:
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    packages = ", ".join(
        f"{name} {version(name)}"
        for name in (
            *("scf-asgi", "mangum", "apig-wsgi", "serverless-wsgi", "werkzeug", "asgiref"),
            *("fastapi", "pydantic", "starlette", "flask", "django"),
            *("uvicorn", "httptools", "gunicorn", "uvloop", "orjson"),
        )
    )
    return [
        f"CPU: {cpu}, {os.cpu_count()} cores; {platform.system()} {platform.release()}",
        f"Python {platform.python_version()} ({platform.python_implementation()})",
        f"Packages: {packages}",
    ]


HEADER = ["what", "ours", "vs", "ratio (spread)", "goal", "met"]


def render(rows: list[Row], markdown: bool, info: list[str], seconds: float, command: str) -> str:
    lines = []
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    if markdown:
        lines.append(f"Measured {date} with `{command}` ({seconds:.0f} s):")
        lines.append("")
        lines.extend(f"- {line}" for line in info)
        lines.append("")
    else:
        lines.extend(info)
        lines.append(f"Date: {date}; run time {seconds:.0f} s")
        lines.append("")
    for index, row in enumerate([HEADER, *[row.cells() for row in rows]]):
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
        if index == 0:
            lines.append("|" + "---|" * len(row))
    goals = [row for row in rows if row.goal is not None]
    met = [row for row in goals if row.met]
    missed = [row for row in goals if not row.met]
    lines.append("")
    lines.append(f"Goals met: {len(met)} of {len(goals)}.")
    for row in missed:
        lines.append(f"Not met: {row.what} vs {row.versus.split(':')[0]}: {row.cells()[3]}.")
    lines.append(
        "Ratios: median of per-round ratios of interleaved runs (in brackets, the range of the "
        "middle half of the rounds); below 1.00x ours is faster."
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds: a smoke test")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the processes to one CPU")
    parser.add_argument("--only", default="", help=f"comma-separated rows of {', '.join(ROWS)}")
    args = parser.parse_args(argv)
    selected = [name.strip() for name in args.only.split(",") if name.strip()] or list(ROWS)
    unknown = sorted(set(selected) - set(ROWS))
    if unknown:
        parser.error(f"unknown rows {unknown}; choose from {', '.join(ROWS)}")
    settings = Settings(args.quick)
    info = machine()
    if not args.no_pin and hasattr(os, "sched_setaffinity"):
        # The runtime API and the child take turns on one core: the ping-pong then costs their
        # CPU time plus two context switches, rather than cross-core wake-ups whose latency
        # (large and erratic on VMs) would swamp the differences being measured.
        cpu = max(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        info.append(f"Benchmark processes pinned to CPU {cpu} (children inherit it)")
    for line in info:
        log(line)
    started = time.perf_counter()
    rows: list[Row] = []
    loop = asyncio.new_event_loop()
    steps: dict[str, Callable[[], list[Row]]] = {
        "asgi": lambda: bench_asgi(settings),
        "wsgi": lambda: bench_wsgi(settings),
        "loop": lambda: loop.run_until_complete(bench_loop(settings, "asgi")),
        "loop-wsgi": lambda: loop.run_until_complete(bench_loop(settings, "wsgi")),
        "cold": lambda: loop.run_until_complete(bench_cold(settings)),
        "binary": lambda: loop.run_until_complete(bench_binary(settings)),
        "memory": lambda: loop.run_until_complete(bench_memory(settings)),
        "import": lambda: bench_import(settings),
        "apps": lambda: loop.run_until_complete(choice.bench_per_request(settings)),
        "cold-apps": lambda: loop.run_until_complete(choice.bench_cold_apps(settings)),
        "zip": lambda: loop.run_until_complete(packaged.bench_zip(settings)),
    }
    try:
        for name in ROWS:
            if name in selected:
                log(f"running {name} ...")
                step_started = time.perf_counter()
                new = steps[name]()
                rows.extend(new)
                for row in new:
                    log(f"  {row.cells()[3]:>22}  {row.what} / {row.versus.split(':')[0]}")
                log(f"  ({time.perf_counter() - step_started:.1f} s)")
    finally:
        loop.close()
    flags = [arg for arg in (sys.argv[1:] if argv is None else argv) if arg != "--markdown"]
    command = "benchmarks/run.py " + " ".join(flags) if flags else "make bench"
    print(render(rows, args.markdown, info, time.perf_counter() - started, command))
    return 0


if __name__ == "__main__":
    sys.exit(main())
