"""The packaged-zip row (`zip`): the FastAPI app of app_fastapi.py built by `scf-asgi package`
(its dependencies pinned to the versions of the bench venv, installed for this CPython; scf-asgi
vendored; unchecked-hash .pyc compiled for every module of the package), unzipped as SCF unzips
it and started by its own `bootstrap` on a bare interpreter (a venv of the standard library
only, named by SCF_PYTHON), spawn to the first answer with an event waiting. The same folder
with every .pyc removed is the other side: every module of the package is then compiled from
source on each start, as from a read-only code folder (the standard library's .pyc are read as
installed, in both). Information only ("published" in issue 14).

Before timing, one start of each folder runs with PYTHONVERBOSE=1, and the import system's own
account of where each module's code came from is checked: every module of the package from its
.pyc in one folder, every one from source in the other.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path

import events
from harness import BENCH_DIR, HERE, PY, VENV_KEY, Row, Settings, log, ms, paired, spawn, stop

ZIP_WORK = BENCH_DIR / f"zip-{VENV_KEY}"
BARE_VENV = BENCH_DIR / f"bare-python-{VENV_KEY}"
APP = "app_fastapi:app"


def build_zip(output: Path) -> None:
    """`scf-asgi package` of app_fastapi.py, from a folder of its own outside the repository
    (so that no pyproject.toml above it adds settings: only the flags count)."""
    with tempfile.TemporaryDirectory(prefix="scf-asgi-bench-") as scratch:
        source = Path(scratch) / "fastapi_app"
        source.mkdir()
        shutil.copyfile(HERE / "app_fastapi.py", source / "app_fastapi.py")
        (source / "requirements.txt").write_text(
            "".join(f"{name}=={metadata.version(name)}\n" for name in ("fastapi", "pydantic"))
        )
        command = [PY, "-m", "scf_asgi", "package", APP, "--source", str(source)]
        done = subprocess.run(
            [*command, "-o", str(output), "--json", "--quiet"],
            cwd=source,
            capture_output=True,
            text=True,
        )
    if done.returncode != 0:
        raise SystemExit(f"scf-asgi package failed:\n{done.stdout}\n{done.stderr}")
    summary = json.loads(done.stdout)
    if not summary.get("compiled") or summary.get("compile_failures"):
        raise SystemExit(f"scf-asgi package compiled no .pyc for this Python: {summary}")


def extract(archive: Path, folder: Path) -> None:
    """Unzip with the modes stored in the zip (the bootstrap's 0755), as the platform does."""
    with zipfile.ZipFile(archive) as opened:
        for info in opened.infolist():
            opened.extract(info, folder)
            mode = (info.external_attr >> 16) & 0o7777
            if mode:
                os.chmod(folder / info.filename, mode)


def bare_python() -> Path:
    python = BARE_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([PY, "-m", "venv", "--without-pip", str(BARE_VENV)], check=True)
    return python


def bootstrap_env(python: Path, **extra: str) -> dict[str, str]:
    """What the platform gives the bootstrap (the runtime API's variables are added by spawn):
    no PYTHON* variables, a system PATH, the interpreter named by SCF_PYTHON."""
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
        "SCF_PYTHON": str(python),
        **extra,
    }


async def code_origins(folder: Path, event: bytes, python: Path) -> tuple[int, int]:
    """(modules of `folder` loaded from .pyc, from source) in one start, by the import
    system's verbose messages."""
    child = await spawn(
        "verbose",
        [str(folder / "bootstrap")],
        event,
        env=bootstrap_env(python, PYTHONVERBOSE="1"),
        first=True,
    )
    child.errors.seek(0)
    lines = child.errors.read().decode("utf-8", "replace").splitlines()
    await stop(child)
    prefix = str(folder) + os.sep
    from_pyc = sum(line.startswith(f"# code object from '{prefix}") for line in lines)
    from_source = sum(line.startswith(f"# code object from {prefix}") for line in lines)
    return from_pyc, from_source


async def bench_zip(settings: Settings) -> list[Row]:
    shutil.rmtree(ZIP_WORK, ignore_errors=True)
    archive = ZIP_WORK / "fastapi_app.zip"
    build_zip(archive)
    python = bare_python()
    folders = {"with .pyc": ZIP_WORK / "with-pyc", "no .pyc": ZIP_WORK / "no-pyc"}
    for folder in folders.values():
        extract(archive, folder)
    removed = 0
    for cache in sorted(folders["no .pyc"].rglob("__pycache__")):
        removed += sum(1 for _ in cache.glob("*.pyc"))
        shutil.rmtree(cache)
    event = json.dumps(events.tencent_event(), separators=(",", ":")).encode("utf-8")
    problems = []
    origins = {}
    for name, folder in folders.items():
        from_pyc, from_source = await code_origins(folder, event, python)
        origins[name] = (from_pyc, from_source)
        if (from_source if name == "with .pyc" else from_pyc) or not (from_pyc or from_source):
            problems.append(f"{name}: {from_pyc} modules from .pyc, {from_source} from source")
    if problems:
        log("  NOT MEASURED AS SAID: " + "; ".join(problems))
    times: dict[str, list[float]] = {name: [] for name in folders}
    names = list(folders)
    for round_ in range(settings.zip_rounds + 1):  # round 0 warms the page cache
        for name in names if round_ % 2 == 0 else names[::-1]:
            child = await spawn(
                name,
                [str(folders[name] / "bootstrap")],
                event,
                env=bootstrap_env(python),
                first=True,
            )
            await stop(child)
            assert child.first_response is not None
            status, body = events.normalise(child.first_response)[:2]
            if status != 200 or json.loads(body) != events.REAL_ANSWER:
                raise SystemExit(f"the packaged app ({name}) answered {status}: {body[:300]!r}")
            if round_:
                times[name].append(child.first_answer)
    ratio, spread = paired(times["no .pyc"], times["with .pyc"])
    modules = origins["with .pyc"][0]
    with_pyc = ms(statistics.median(times["with .pyc"]))
    return [
        Row(
            "cold start of the packaged FastAPI zip (`scf-asgi package`) started by its "
            "bootstrap, spawn to first answer: without any .pyc in the package"
            + (f" NOT MEASURED AS SAID ({'; '.join(problems)})" if problems else ""),
            f"{ms(statistics.median(times['no .pyc']))} ({removed} .pyc removed)",
            f"the same folder with its unchecked-hash .pyc: {with_pyc} ({modules} modules read "
            "from them)",
            ratio,
            "x",
            None,
            spread,
        )
    ]
