"""Loaded by every Python process of an emulated function instance (``scf-asgi local`` puts
this directory first on PYTHONPATH): the code directory is read-only, as on SCF, where the
code package is mounted read-only and only /tmp is writable.

An audit hook refuses writes (opening for writing, creating, renaming, removing, changing
modes) under the directories in `ENV_READ_ONLY` with the error the platform gives,
``OSError(EROFS, "Read-only file system")``. Python's own .pyc writes are refused the same
way, and Python skips them quietly, as it does there. Writes made by C code that raises no
audit event (a C extension's own file I/O) are not caught. Another sitecustomize on the path
still runs.

The emulator imports this module for `ENV_READ_ONLY` only: the hook is put in place when
Python loads it as ``sitecustomize``.
"""

from __future__ import annotations

import os
import sys

# The emulator's own setting for an instance: the directories its Python code may not write to.
ENV_READ_ONLY = "SCF_ASGI_LOCAL_READ_ONLY"
_HERE = os.path.dirname(os.path.abspath(__file__))
_DIRECTORIES: tuple[str, ...] = ()
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
# Audit events that change the file system -> the positions of their path arguments.
_CHANGES = {
    "os.mkdir": (0,),
    "os.rename": (0, 1),
    "os.remove": (0,),
    "os.rmdir": (0,),
    "os.symlink": (1,),
    "os.link": (1,),
    "os.chmod": (0,),
    "os.chown": (0,),
    "os.truncate": (0,),
    "os.utime": (0,),
    "os.mkfifo": (0,),
    "os.mknod": (0,),
}


def _read_only(path: object) -> bool:
    if isinstance(path, int):
        return False  # an open file descriptor: checked when it was opened
    try:
        full = os.path.realpath(os.fsdecode(path))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    for directory in _DIRECTORIES:
        if full == directory or full.startswith(directory + os.sep):
            return True
    return False


def _refuse(path: object) -> None:
    raise OSError(30, "Read-only file system", os.fsdecode(path))  # type: ignore[arg-type]


def _hook(event: str, args: tuple[object, ...]) -> None:
    if event == "open":
        path, mode, flags = args
        writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            mode is None and isinstance(flags, int) and flags & _WRITE_FLAGS
        )
        if writes and path is not None and _read_only(path):
            _refuse(path)
        return
    positions = _CHANGES.get(event)
    if positions is not None:
        for position in positions:
            if position < len(args) and args[position] is not None and _read_only(args[position]):
                _refuse(args[position])


def _run_the_next_sitecustomize() -> None:
    from importlib.machinery import PathFinder

    if _HERE in sys.path:
        sys.path.remove(_HERE)
    spec = PathFinder.find_spec("sitecustomize", sys.path)
    if spec is not None and spec.loader is not None and spec.origin != __file__:
        import importlib.util

        module = importlib.util.module_from_spec(spec)
        sys.modules["sitecustomize"] = module
        spec.loader.exec_module(module)


if __name__ == "sitecustomize":
    _DIRECTORIES = tuple(
        os.path.realpath(path)
        for path in os.environ.get(ENV_READ_ONLY, "").split(os.pathsep)
        if path
    )
    if _DIRECTORIES:
        sys.addaudithook(_hook)
    _run_the_next_sitecustomize()
