"""The target of a code package, and an interpreter of its version on this machine.

The platform runs CPython X.Y on Linux x86_64 (`platform.TARGET_MACHINE`, glibc
`platform.TARGET_GLIBC`). Wheels are chosen for those tags, environment markers are judged for
that environment (`Target.marker_environments`, whatever machine builds the package), and an
interpreter of the same X.Y on the build machine, when one is found, runs pip and compiles the
``.pyc``.

Where interpreters are looked for, in order: ``--interpreter``; the interpreter running
scf-asgi; ``pythonX.Y`` on PATH; pyenv (``$PYENV_ROOT``, else ``~/.pyenv``), uv
(``$UV_PYTHON_INSTALL_DIR``, else ``~/.local/share/uv/python``), asdf and mise installs;
``/usr/local/bin`` and ``/usr/bin``. Each candidate is asked its version, never trusted by name.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from ..errors import ConfigurationError
from ..platform import TARGET_GLIBC, TARGET_MACHINE

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["PIP_MAIN", "Interpreter", "Target", "find_interpreter", "parse_version"]

_VERSION = re.compile(r"^3\.(\d{1,2})$")
_ASK = "import sys; print(sys.implementation.name, '%d.%d.%d' % sys.version_info[:3])"
# `python -m pip`, without the cwd on sys.path: pip runs in the app's folder (so relative paths
# in its requirements.txt mean what they mean to `pip install -r requirements.txt` there), and
# a module of the app (a pip.py, a typing.py) must not stand in for pip's own.
PIP_MAIN = (
    "import os, runpy, sys\n"
    "sys.path[:] = [p for p in sys.path if p not in ('', os.getcwd())]\n"
    "sys.argv[0] = 'pip'\n"
    "runpy.run_module('pip', run_name='__main__', alter_sys=True)"
)


def parse_version(text: str) -> tuple[int, int]:
    """``"3.10"`` -> ``(3, 10)``; anything else is a ConfigurationError."""
    match = _VERSION.match(text.strip())
    if not match:
        raise ConfigurationError(f"--python must be a CPython version like 3.10, got {text!r}")
    return 3, int(match.group(1))


class Interpreter:
    """A CPython on this machine: its path and full version."""

    __slots__ = ("path", "version")

    def __init__(self, path: str, version: tuple[int, int, int]) -> None:
        self.path = path
        self.version = version

    def __repr__(self) -> str:
        return f"Interpreter({self.path!r}, {self.version!r})"

    def has_pip(self) -> bool:
        done = subprocess.run(
            [self.path, "-c", PIP_MAIN, "--version"], capture_output=True, check=False
        )
        return done.returncode == 0


class Target:
    """CPython `version` on Linux x86_64; `interpreter` is one of that version here, or None."""

    __slots__ = ("version", "interpreter")

    def __init__(self, version: tuple[int, int], interpreter: Interpreter | None) -> None:
        self.version = version
        self.interpreter = interpreter

    @property
    def text(self) -> str:
        return f"{self.version[0]}.{self.version[1]}"

    @property
    def abi(self) -> str:
        return f"cp{self.version[0]}{self.version[1]}"

    @property
    def platform_tags(self) -> list[str]:
        """The wheel platform tags the target runs: the manylinux tag of its glibc and its
        legacy alias (pip accepts the older manylinux tags from these)."""
        major, minor = TARGET_GLIBC
        tags = [f"manylinux_{major}_{minor}_{TARGET_MACHINE}"]
        legacy = {(2, 17): "manylinux2014", (2, 12): "manylinux2010", (2, 5): "manylinux1"}
        if (major, minor) in legacy:
            tags.append(f"{legacy[major, minor]}_{TARGET_MACHINE}")
        return tags

    def marker_environments(self) -> list[dict[str, str]]:
        """The values of PEP 508's environment markers on the target: one environment when the
        interpreter found tells the patch release, else two (X.Y.0 and a last X.Y release), a
        requirement being needed when its marker holds in either."""
        if self.interpreter is not None:
            releases = [".".join(str(part) for part in self.interpreter.version)]
        else:
            releases = [f"{self.text}.0", f"{self.text}.99"]
        return [
            {
                "implementation_name": "cpython",
                "implementation_version": release,
                "os_name": "posix",
                "platform_machine": TARGET_MACHINE,
                "platform_python_implementation": "CPython",
                # the kernel's release and build: not known before the function runs
                "platform_release": "",
                "platform_system": "Linux",
                "platform_version": "",
                "python_full_version": release,
                "python_version": self.text,
                "sys_platform": "linux",
            }
            for release in releases
        ]

    @property
    def description(self) -> str:
        major, minor = TARGET_GLIBC
        return f"CPython {self.text} on Linux {TARGET_MACHINE} (glibc {major}.{minor}, manylinux)"


def _ask(path: str) -> Interpreter | None:
    try:
        done = subprocess.run(
            [path, "-c", _ASK], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    words = done.stdout.split()
    if done.returncode != 0 or len(words) != 2 or words[0] != "cpython":
        return None
    major, minor, micro = (int(part) for part in words[1].split("."))
    return Interpreter(path, (major, minor, micro))


def _candidates(version: tuple[int, int]) -> Iterator[str]:
    name = f"python{version[0]}.{version[1]}"
    yield sys.executable
    on_path = shutil.which(name)
    if on_path:
        yield on_path
    home = Path.home()
    roots: list[tuple[Path, str]] = [
        (Path(os.environ.get("PYENV_ROOT") or home / ".pyenv") / "versions", "%d.%d.*"),
        (
            Path(os.environ.get("UV_PYTHON_INSTALL_DIR") or home / ".local/share/uv/python"),
            "cpython-%d.%d.*",
        ),
        (home / ".asdf" / "installs" / "python", "%d.%d.*"),
        (home / ".local" / "share" / "mise" / "installs" / "python", "%d.%d.*"),
    ]
    for root, pattern in roots:
        if root.is_dir():
            # newest patch release first
            for folder in sorted(root.glob(pattern % version), reverse=True):
                yield str(folder / "bin" / name)
    for system in ("/usr/local/bin", "/usr/bin"):
        yield os.path.join(system, name)


def find_interpreter(version: tuple[int, int], explicit: str | None = None) -> Interpreter | None:
    """An interpreter of `version` on this machine (`explicit`, if given, must be one)."""
    if explicit:
        found = _ask(explicit)
        if found is None:
            raise ConfigurationError(f"--interpreter {explicit}: not a CPython that runs here")
        if found.version[:2] != version:
            raise ConfigurationError(
                f"--interpreter {explicit} is CPython %d.%d.%d, the target is %d.%d"
                % (*found.version, *version)
            )
        return found
    seen: set[str] = set()
    for candidate in _candidates(version):
        if candidate in seen or not os.access(candidate, os.X_OK):
            continue
        seen.add(candidate)
        found = _ask(candidate)
        if found is not None and found.version[:2] == version:
            return found
    return None
