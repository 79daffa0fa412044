"""Function instances: starting, watching, timing out and restarting the processes, and
handing requests to them one at a time.

An `Instance` is one slot of the function's scale (``--instances N``): at any time at most one
process, started on first use (a cold start), killed when an invocation outlives the function
timeout or when the code changes (``--reload``), and started again on the next request. Its
stdout and stderr are passed through to the terminal and recorded against the invocation in
progress (the output of initialisation goes with the first invocation, as on SCF). The `Pool`
hands each request a free instance, a warm one first, and queues requests when all are busy.

In event mode an instance is ready when it posts ``/runtime/init/ready`` on its `Channel`; in
web-function mode (``--web``) when its ``scf_bootstrap`` accepts connections on the port given
in ``PORT``. Each process group is known to the `Watchdog`, which ends it should the emulator
die without stopping it.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import re
import signal
import socket
import sys
import time

from ..platform import ENV_PORT
from .config import LOOPBACK
from .runtime_api import Channel
from .watchdog import Watchdog

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any, Callable

    # Where an invocation's output goes, a line at a time: (stream name, text).
    OutputSink = Callable[[str, str], None]

__all__ = ["Instance", "InstanceError", "Pool", "PoolClosed", "free_port"]

logger = logging.getLogger("scf_asgi.local")

STOP_GRACE = 5  # seconds between SIGTERM and SIGKILL when an instance is stopped
_READ_CHUNK = 64 * 1024


class InstanceError(Exception):
    """An instance could not be started or did not become ready (the message says why)."""


class PoolClosed(Exception):
    """The emulator is shutting down: no instance takes a new request."""


def free_port() -> int:
    """A TCP port on the loopback address that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


class Instance:
    """One slot of the function's scale and its current process."""

    def __init__(
        self,
        number: int,
        command: Sequence[str],
        cwd: str,
        env: dict[str, str],
        *,
        init_timeout_ms: int,
        channel: Channel | None,
        watchdog: Watchdog | None = None,
        web: bool = False,
        label_output: bool = False,
        init_hint: str = "",
    ) -> None:
        self.number = number
        self.command = list(command)
        self.cwd = cwd
        self.env = env
        self.init_timeout_ms = init_timeout_ms
        self.channel = channel  # event mode: its runtime API
        self.watchdog = watchdog
        self.web = web
        self.init_hint = init_hint  # added to the error when a process exits during init
        self.port = 0  # web mode: where the current process listens
        self.prefix = f"[instance {number}] " if label_output else ""
        self.process: asyncio.subprocess.Process | None = None
        self.exited: asyncio.Future[int] | None = None
        self.starts = 0
        self.invocations = 0  # of the current process
        self.started_at = 0.0
        self.ready = False
        self.stale = False  # the code changed: restart before the next invocation
        self._stopped: set[int] = set()  # pids stopped on purpose (no "exited" warning)
        self._terminated: asyncio.Future[int] | None = None  # the process sent SIGTERM
        self._readers: list[asyncio.Task[None]] = []
        self._init_output: list[tuple[str, str]] = []
        self._sink: OutputSink | None = None
        # The access lines of the last invocations, kept off the terminal.
        self._quiet: collections.deque[re.Pattern[str]] = collections.deque(maxlen=8)

    @property
    def alive(self) -> bool:
        return self.exited is not None and not self.exited.done()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def warm(self) -> bool:
        return self.alive and self.ready and not self.stale

    @property
    def starting(self) -> bool:
        return self.alive and not self.ready

    # -- the process ------------------------------------------------------------------------

    async def start(self) -> None:
        if self.channel is not None:
            self.channel.renew()
        env = dict(self.env)
        if self.web:
            self.port = free_port()
            env[ENV_PORT] = str(self.port)
        self.ready = False
        self.stale = False
        self.invocations = 0
        self._init_output = []
        self._sink = None
        self.started_at = time.monotonic()
        self.starts += 1
        try:
            process = await asyncio.create_subprocess_exec(
                *self.command,
                cwd=self.cwd,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,  # Ctrl-C reaches the emulator only; it stops the rest
            )
        except OSError as exc:
            raise InstanceError(f"cannot start the function instance: {exc}") from None
        self.process = process
        if self.watchdog is not None:
            self.watchdog.watch(process.pid)
        what = "cold start" if self.starts == 1 else f"cold start #{self.starts}"
        logger.info("%s%s: started the function instance, pid %d", self.prefix, what, process.pid)
        assert process.stdout is not None and process.stderr is not None
        self._readers = [
            asyncio.ensure_future(self._pass_on(process.stdout, "stdout", sys.stdout)),
            asyncio.ensure_future(self._pass_on(process.stderr, "stderr", sys.stderr)),
        ]
        exited = asyncio.ensure_future(process.wait())
        exited.add_done_callback(lambda task: self._on_exit(process.pid, task))
        self.exited = exited

    def _on_exit(self, pid: int, task: asyncio.Future[int]) -> None:
        # Whatever it started goes with it, as when the platform ends an instance.
        _signal_group(pid, signal.SIGKILL)
        if self.watchdog is not None:
            self.watchdog.forget(pid)
        if task.cancelled() or pid in self._stopped:
            return
        logger.warning(
            "%sthe function instance (pid %d) exited with code %s", self.prefix, pid, task.result()
        )

    async def _pass_on(self, stream: asyncio.StreamReader, name: str, terminal: object) -> None:
        """Copy the instance's output to the terminal, a line at a time, and record it."""
        out = getattr(terminal, "buffer", None)
        while True:
            try:
                line = await stream.readline()
            except ValueError:  # a line longer than the limit: take what there is
                line = await stream.read(_READ_CHUNK)
            if not line:
                return
            text = line.decode("utf-8", "replace")
            sink = self._sink
            if sink is None:
                self._init_output.append((name, text))
            else:
                sink(name, text)
            if any(access_line.match(text) for access_line in self._quiet):
                continue  # the instance's access line: the emulator writes the request's line
            data = (self.prefix + text).encode("utf-8", "replace") if self.prefix else line
            if out is not None:
                try:
                    out.write(data)
                    out.flush()
                except (OSError, ValueError):
                    pass

    async def ensure_ready(self) -> None:
        """Start a process if none runs (or the code changed) and wait until it is ready;
        `InstanceError` if it fails to initialise."""
        if self.stale and self.alive:
            await self.stop()
        if not self.alive:
            await self.start()
        if self.ready:
            return
        assert self.exited is not None
        remaining = self.init_timeout_ms / 1000 - (time.monotonic() - self.started_at)
        ready = asyncio.ensure_future(self._wait_ready())
        waits: set[asyncio.Future[Any]] = {ready, self.exited}
        try:
            await asyncio.wait(waits, timeout=max(remaining, 0), return_when="FIRST_COMPLETED")
        finally:
            ready.cancel()
        if self.exited.done():
            await self._drain_output()
            raise InstanceError(
                f"the function instance exited with code {self.exited.result()} during "
                + (
                    "initialisation, before it listened on its port (see its output)"
                    if self.web
                    else "initialisation, before POST /runtime/init/ready (see its output)"
                )
                + self.init_hint
            )
        if not ready.done() or ready.cancelled():
            what = (
                f"listen on port {self.port} (the {ENV_PORT} variable)"
                if self.web
                else "post /runtime/init/ready"
            )
            logger.error(
                "%sthe function instance did not %s within %d ms (the init timeout); killing it",
                self.prefix,
                what,
                self.init_timeout_ms,
            )
            await self.kill()
            raise InstanceError(
                f"the function instance did not {what} within the init timeout "
                f"({self.init_timeout_ms} ms, --init-timeout-ms) and was killed"
            )
        self.ready = True
        elapsed = (time.monotonic() - self.started_at) * 1000
        logger.info("%sthe function instance is ready (init took %.0f ms)", self.prefix, elapsed)

    async def _wait_ready(self) -> None:
        if self.channel is not None:
            await self.channel.ready.wait()
            return
        while True:  # web mode: the server accepts connections
            try:
                _, writer = await asyncio.open_connection(LOOPBACK, self.port)
            except OSError:
                await asyncio.sleep(0.02)
                continue
            writer.close()
            return

    async def _drain_output(self) -> None:
        """Wait (briefly) until the output of a process that exited has been read."""
        if self._readers:
            await asyncio.wait(self._readers, timeout=1)

    # -- invocations ------------------------------------------------------------------------

    def hand_over_output(self, sink: OutputSink) -> None:
        """Give `sink` the output of initialisation (an init failure's traceback)."""
        for name, text in self._init_output:
            sink(name, text)
        self._init_output = []

    def begin_invocation(self, sink: OutputSink, request_id: str, method: str) -> bool:
        """Send the instance's output to `sink` from now on (the output of initialisation
        first), and keep the invocation's access line off the terminal; whether this is the
        process's first invocation (a cold start)."""
        self.hand_over_output(sink)
        self._sink = sink
        rid = re.escape(request_id)
        if self.web:
            # `scf-asgi web`'s servers log "<time> <request id> <client> "GET /path HTTP/1.1"
            # 200" with the id the front door sent in X-Scf-Request-Id.
            self._quiet.append(re.compile(rf'.*\s{rid}\s.*"{re.escape(method)} '))
        else:
            # `scf-asgi run` logs "[INFO] <request id> GET /path ..." for each invocation,
            # before it posts the answer (so the line may be read after the answer arrived).
            self._quiet.append(re.compile(rf"\[INFO\] {rid} "))
        self.invocations += 1
        return self.invocations == 1

    async def kill(self) -> None:
        """SIGKILL the process (and anything it started), as the platform does."""
        process, exited = self.process, self.exited
        if process is None or exited is None or exited.done():
            return
        self._stopped.add(process.pid)
        _signal_group(process.pid, signal.SIGKILL)
        await exited
        await self._drain_output()

    async def stop(self, grace: float = STOP_GRACE) -> None:
        """SIGTERM, wait up to `grace` seconds, then SIGKILL. A process already sent SIGTERM
        is not sent another: the runtime's handlers are gone once its loop has ended, and a
        second SIGTERM would kill it in the middle of the app's shutdown."""
        process, exited = self.process, self.exited
        if process is None or exited is None:
            return
        if not exited.done():
            if self._terminated is not exited:  # else another stop of it is under way
                self._terminated = exited
                self._stopped.add(process.pid)
                _signal_group(process.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.shield(exited), grace)
            except asyncio.TimeoutError:
                logger.warning(
                    "%sthe function instance did not exit %.0f s after SIGTERM; killing it",
                    self.prefix,
                    grace,
                )
                _signal_group(process.pid, signal.SIGKILL)
                await exited
        _signal_group(process.pid, signal.SIGKILL)  # whatever it started and left behind
        await self._drain_output()


def _signal_group(pid: int, signum: int) -> None:
    try:
        os.killpg(pid, signum)
    except ProcessLookupError:
        pass
    except PermissionError:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass


class Pool:
    """The instances of the function; each handles one request at a time."""

    def __init__(self, instances: Sequence[Instance]) -> None:
        self.instances = list(instances)
        self.closed = False
        self._free = list(instances)
        self._waiting: collections.deque[asyncio.Future[Instance]] = collections.deque()

    async def acquire(self) -> Instance:
        """A free instance (a warm one if any), waiting in line when all are busy;
        `PoolClosed` once the emulator is shutting down."""
        if self.closed:
            raise PoolClosed
        if self._free and not self._waiting:
            return self._take()
        waiter: asyncio.Future[Instance] = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release(waiter.result())
            else:
                self._waiting.remove(waiter)
            raise

    def _take(self) -> Instance:
        for instance in self._free:
            if instance.warm:
                break
        else:
            instance = self._free[0]
        self._free.remove(instance)
        return instance

    def release(self, instance: Instance) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(instance)
                return
        self._free.append(instance)
        self._free.sort(key=lambda item: item.number)

    def idle(self) -> list[Instance]:
        return list(self._free)

    def close(self) -> None:
        """Shutting down: the requests waiting in line, and any later one, get `PoolClosed`."""
        self.closed = True
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_exception(PoolClosed())

    async def stop(self) -> None:
        await asyncio.gather(*(instance.stop() for instance in self.instances))
