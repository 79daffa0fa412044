"""The benchmark suite, end to end in its quick mode: the real `scf-asgi run` loop against the
benchmark's runtime API, Mangum, apig-wsgi and serverless-wsgi side by side.

Before any timing, the benchmark checks that every contender answers its request with the same
status, body, content type and cookies, and exits non-zero if one does not; this test holds it to
that and to reporting every row against its goal. Timings themselves are not checked here (they
depend on the machine): the benchmark reports them and the README records them.
"""

from __future__ import annotations

import subprocess
import sys

from tests.runtime_api import ROOT

ROWS = [
    ("in-process gateway event, trivial ASGI app (JSON body, query, 2 cookies)", "<= 0.5x"),
    ("in-process gateway event, trivial ASGI app (JSON body, query, 2 cookies)", "info"),
    ("in-process gateway event, trivial WSGI app (same request)", "<= 0.9x"),
    ("in-process gateway event, trivial WSGI app (same request)", "info"),
    (
        "invocations through the `scf-asgi run` loop, trivial ASGI app (time per invocation)",
        "<= 1.3x",
    ),
    (
        "invocations through the `scf-asgi run --no-access-log` loop, trivial ASGI app "
        "(time per invocation)",
        "info",
    ),
    (
        "CPU time of the `scf-asgi run` process alone per invocation, trivial ASGI app "
        "(the runtime API's share left out)",
        "info",
    ),
    (
        "invocations through the `scf-asgi run` loop, trivial WSGI app (time per invocation)",
        "<= 1.3x",
    ),
    (
        "invocations through the `scf-asgi run --no-access-log` loop, trivial WSGI app "
        "(time per invocation)",
        "info",
    ),
    (
        "CPU time of the `scf-asgi run` process alone per invocation, trivial WSGI app "
        "(the runtime API's share left out)",
        "info",
    ),
    ("cold start: process spawn to `POST /runtime/init/ready`, trivial ASGI app", "<= 1.15x"),
    ("cold start: process spawn to `POST /runtime/init/ready`, trivial ASGI app", "info"),
    ("5 MB binary request + 5 MB binary response through the loop", "<= 1.5x"),
    (
        "resident memory after 10,000 invocations vs after the first 100, ASGI app",
        "<= +1 MB",
    ),
    (
        "resident memory after 10,000 invocations vs after the first 100, WSGI app",
        "<= +1 MB",
    ),
    (
        "import of `scf_asgi`: `from scf_asgi import Adapter, serve` (what serving any app "
        "needs; `import scf_asgi` alone loads less); asyncio imported: no",
        "<= +10 ms",
    ),
    (
        "a WSGI app's first event in process (SCF's built-in runtime): the import, "
        "`Adapter(app)` and its first event",
        "info",
    ),
]


def test_quick_benchmark_run_checks_every_contender_and_reports_every_row() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    table = [
        line.strip("| ").split(" | ")
        for line in result.stdout.splitlines()
        if line.startswith("| ") and not line.startswith("| what ")
    ]
    assert [(cells[0], cells[4]) for cells in table] == ROWS
    goals = [cells for cells in table if cells[4] != "info"]
    met = sum(cells[5] == "yes" for cells in goals)
    assert f"Goals met: {met} of {len(goals)}." in result.stdout.splitlines()
