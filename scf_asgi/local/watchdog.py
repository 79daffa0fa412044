"""`Watchdog`: a process that ends the function instances when the emulator dies.

Each instance runs in a process group of its own, so that Ctrl-C reaches the emulator only,
which then stops the instances in order. If the emulator itself dies (SIGKILL, a crash, the
terminal closed), nothing would end them: a web function's server would listen forever. The
watchdog is a small process in a session of its own, started before any instance, that the
emulator tells each instance's process group; the kernel closes the emulator's end of its
standard input however the emulator exits, and on that end of file the watchdog SIGKILLs the
groups it still knows.

The watchdog hears of a group as soon as the process is started, a few event-loop turns
after the fork. A process started in that moment by an emulator that is then killed is not
ended by it (an event function's runtime gives up once its runtime API is gone). The instances
were once also started with a ``preexec_fn`` asking for SIGKILL on the parent's death
(``PR_SET_PDEATHSIG``), which closed that moment on Linux; but a ``preexec_fn`` runs Python
code in the forked child, which Python documents as unsafe when the parent has threads (the
emulator has some: watchfiles's under --reload, asyncio's child watchers before Python 3.12),
and a child that deadlocked there would hold up the emulator's event loop, which waits for its
exec. So none is used.
"""

from __future__ import annotations

import subprocess
import sys

__all__ = ["Watchdog"]

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
