"""`Watchdog`: a process that ends the function instances when the emulator dies.

Each instance runs in a process group of its own, so that Ctrl-C reaches the emulator only,
which then stops the instances in order. If the emulator itself dies (SIGKILL, a crash, the
terminal closed), nothing would end them: a web function's server would listen forever. The
watchdog is a small process in a session of its own, started before any instance, that the
emulator tells each instance's process group; the kernel closes the emulator's end of its
standard input however the emulator exits, and on that end of file the watchdog SIGKILLs the
groups it still knows. On Linux each instance's first process also asks for SIGKILL when its
parent dies (``PR_SET_PDEATHSIG``), for the moment between its start and the watchdog hearing
of it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable

__all__ = ["Watchdog", "die_with_parent"]

# Run with -I (isolated): no site packages or PYTHON* variables, nothing of the project's.
_SCRIPT = """
import os, signal, sys
groups = set()
for line in sys.stdin:
    sign, group = line[0], int(line[1:])
    (groups.add if sign == "+" else groups.discard)(group)
for group in groups:
    try:
        os.killpg(group, signal.SIGKILL)
    except OSError:
        pass
"""
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


class Watchdog:
    """The watchdog process; `watch` and `forget` process groups (named by their leader)."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-I", "-c", _SCRIPT],
            stdin=subprocess.PIPE,
            start_new_session=True,  # neither Ctrl-C nor a signal to our group ends it first
        )

    def _tell(self, line: str) -> None:
        stdin = self.process.stdin
        if stdin is None or stdin.closed:
            return
        try:
            stdin.write(line.encode("ascii"))
            stdin.flush()
        except OSError:  # the watchdog is gone: nothing to tell
            pass

    def watch(self, group: int) -> None:
        self._tell(f"+{group}\n")

    def forget(self, group: int) -> None:
        """The group has been killed: a later group of the same number is someone else's."""
        self._tell(f"-{group}\n")

    def close(self) -> None:
        """The emulator is done (its instances stopped): let the watchdog end."""
        if self.process.stdin is not None:
            try:
                self.process.stdin.close()
            except OSError:
                pass
        self.process.wait()


def die_with_parent() -> Callable[[], None] | None:
    """A `preexec_fn` that makes a child process get SIGKILL when this process dies (Linux's
    ``prctl(PR_SET_PDEATHSIG)``, through ctypes); None where there is no such thing."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before the request took effect
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec
