"""Helpers for the package and deploy tests: the real `scf-asgi` command in a child process,
unzipping as SCF does (modes kept), and bare interpreters (venvs made --without-pip)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

from tests.runtime_api import ROOT

VERSION = f"{sys.version_info[0]}.{sys.version_info[1]}"


def scf_asgi(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """`python -m scf_asgi ARGS` (the installed command), its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "scf_asgi", *args],
        cwd=str(cwd),
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def package(source: Path, output: Path, *args: str, cwd: Path | None = None) -> dict[str, Any]:
    """`scf-asgi package --json` of `source`; the summary it printed."""
    done = scf_asgi(
        "package", *args, "--source", str(source), "-o", str(output), "--json", cwd=cwd or source
    )
    assert done.returncode == 0, done.stdout + done.stderr
    summary: dict[str, Any] = json.loads(done.stdout)
    return summary


def extract(archive: Path, folder: Path) -> None:
    """Unzip as the platform does: with the system's unzip when there is one (it applies the
    modes stored in the zip), else zipfile plus those modes."""
    folder.mkdir(parents=True, exist_ok=True)
    if shutil.which("unzip"):
        subprocess.run(["unzip", "-q", str(archive), "-d", str(folder)], check=True)
        return
    with zipfile.ZipFile(archive) as opened:
        for info in opened.infolist():
            opened.extract(info, folder)
            mode = (info.external_attr >> 16) & 0o7777
            if mode:
                os.chmod(folder / info.filename, mode)


def bare_venv(folder: Path, python: str = sys.executable) -> Path:
    """A venv of `python` made --without-pip: the standard library and nothing else."""
    subprocess.run([python, "-m", "venv", "--without-pip", str(folder)], check=True)
    interpreter = folder / "bin" / "python"
    check = subprocess.run(
        [str(interpreter), "-c", "import sys; print(sys.path)"],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert str(ROOT) not in check.stdout
    return interpreter


def bare_env(base: dict[str, str], interpreter: Path, **extra: str) -> dict[str, str]:
    """`base` (a runtime_env) for a packaged bootstrap: no PYTHONPATH, a minimal PATH, the
    interpreter given as SCF_PYTHON."""
    env = {k: v for k, v in base.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(PATH="/usr/bin:/bin", SCF_PYTHON=str(interpreter), PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def zip_modes(archive: Path) -> dict[str, int]:
    """Each entry's Unix mode, file type bits included."""
    with zipfile.ZipFile(archive) as opened:
        return {info.filename: info.external_attr >> 16 for info in opened.infolist()}


def is_executable_file(mode: int) -> bool:
    return stat.S_ISREG(mode) and mode & 0o777 == 0o755
