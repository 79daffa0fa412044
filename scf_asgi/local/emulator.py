"""`run(config)`: the emulator's parts put together and served by two `uvicorn.Server`s.

    browser, curl  --HTTP-->  front door  --event-->  runtime API  <--HTTP--  instance 1..N
                   <--HTTP--  (gateway)   <--answer--  (platform)             (child processes)

One server listens on the front door's socket (where the inspector's paths go to the
inspector), the other on one loopback socket per instance for its runtime API (each instance's
``SCF_RUNTIME_API_PORT``), so a request reaches the runtime API only through one of its own
sockets. uvicorn (h11) does the HTTP/1.1: framing, chunked bodies, 100-continue, keep-alive.

SIGINT and SIGTERM are the emulator's, not the servers', so that it stops in an order that
loses nothing: the front door stops accepting connections and a request with no instance yet
gets 503; the invocations in progress get their answers, the runtime API still serving; then
the instances are stopped, and the runtime API last. A second signal kills the instances at
once. Should the emulator die without stopping them, its `Watchdog` ends them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import signal
import socket
import sys

import uvicorn

from ..errors import ConfigurationError
from .config import LOOPBACK
from .front_door import FrontDoor, Reloader
from .inspector import History, inspector_app
from .instance import STOP_GRACE, Instance, Pool, PoolClosed
from .runtime_api import Channel, RuntimeAPI, runtime_api_app, tagging_protocol
from .watchdog import Watchdog

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

    from .config import LocalConfig

__all__ = ["run"]

logger = logging.getLogger("scf_asgi.local")
KEEP_ALIVE_SECONDS = 75  # how long a front-door connection may sit idle (the old server's)
HEAD_LIMIT = 64 * 1024  # request line and headers, in event mode


def run(config: LocalConfig) -> int:
    """Run the emulator until SIGINT/SIGTERM; the exit status."""
    config.check()
    _configure_logging()
    return asyncio.run(_serve(config))


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named, not 0: asyncio turns Nagle's algorithm off only for sockets that say
    # so (with it on, a head and a body written apart wait 40 ms for a delayed ACK).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigurationError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


class _Server(uvicorn.Server):
    """A uvicorn server that leaves SIGINT and SIGTERM alone: the emulator stops its servers
    itself, one after the other."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class _FrontRoutes:
    """The app on the front door's socket: the inspector's paths (never forwarded to the
    function) to the inspector, every other to the front door."""

    def __init__(self, front: FrontDoor, inspector: Any, root: str | None) -> None:
        self.front = front
        self.inspector = inspector
        self.root = root

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        root = self.root
        path = scope.get("path", "")
        inspected = scope["type"] == "http" and root is not None
        if inspected and (path == root or path.startswith(f"{root}/")):
            await self.inspector(scope, receive, send)
        else:
            await self.front(scope, receive, send)


async def _serve(config: LocalConfig) -> int:
    command, code_dir = config.command()
    front_socket = _listen(config.host, config.port)
    watchdog = Watchdog()
    try:
        return await _serve_with(config, command, code_dir, front_socket, watchdog)
    finally:
        watchdog.close()


async def _serve_with(
    config: LocalConfig,
    command: list[str],
    code_dir: str,
    front_socket: socket.socket,
    watchdog: Watchdog,
) -> int:
    api = RuntimeAPI([])
    api_sockets: list[socket.socket] = []
    instances: list[Instance] = []
    for number in range(1, config.instances + 1):
        channel = None
        api_port = None
        if not config.web:
            channel = Channel(f"instance {number}")
            sock = _listen(LOOPBACK, 0)
            host, api_port = sock.getsockname()[:2]
            api.channels.append(channel)
            api.by_address[(host, api_port)] = channel
            api_sockets.append(sock)
        instances.append(
            Instance(
                number,
                command,
                code_dir,
                config.environ(code_dir, api_port),
                init_timeout_ms=config.init_timeout_ms,
                channel=channel,
                watchdog=watchdog,
                web=config.web,
                label_output=config.instances > 1,
                init_hint=config.init_hint(),
            )
        )
    pool = Pool(instances)
    history = History(config.history)
    reloader = Reloader() if config.reload else None
    http_client = None
    if config.web:
        import httpx

        # No proxy from the environment: the function's server is on this machine.
        http_client = httpx.AsyncClient(trust_env=False, timeout=None)
    port = front_socket.getsockname()[1]
    shown_host = f"[{config.host}]" if ":" in config.host else config.host
    front = FrontDoor(
        config,
        pool,
        history,
        reloader=reloader,
        http_client=http_client,
        address=f"{shown_host}:{port}",
    )
    inspector = None
    if config.inspector_path is not None:
        inspector = inspector_app(
            history, front.invoke_raw, root=config.inspector_path, host=config.host
        )
    front_server = _Server(
        uvicorn.Config(
            _FrontRoutes(front, inspector, config.inspector_path),
            http="h11",
            lifespan="off",
            # The front door is the gateway: the client is the peer, whatever it claims in
            # X-Forwarded-For (which goes into the event as sent).
            proxy_headers=False,
            log_config=None,
            access_log=False,
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
            # In progress at shutdown: invocations, which end within the function timeout.
            timeout_graceful_shutdown=math.ceil(config.timeout_ms / 1000) + STOP_GRACE,
            h11_max_incomplete_event_size=HEAD_LIMIT,
            server_header=False,
            date_header=True,
        )
    )
    api_server = _Server(
        uvicorn.Config(
            runtime_api_app(api),
            http=tagging_protocol(api),
            lifespan="off",
            log_config=None,
            access_log=False,
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
            timeout_graceful_shutdown=STOP_GRACE,
            server_header=False,
            date_header=False,
        )
    )
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    kills: list[asyncio.Future[None]] = []

    def on_signal() -> None:
        if not stop.is_set():
            stop.set()
            return
        logger.info("killing the function instances")
        kills.extend(asyncio.ensure_future(instance.kill()) for instance in pool.instances)

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal)
    # The sockets listen already: a connection made from now on is served once the servers
    # have started.
    front_serving = asyncio.ensure_future(front_server.serve(sockets=[front_socket]))
    api_serving = None
    if api_sockets:
        api_serving = asyncio.ensure_future(api_server.serve(sockets=api_sockets))
    url = f"http://{shown_host}:{port}"
    if not config.web:
        logger.info(
            "runtime API on %s:%s; function timeout %d ms, memory %d MB",
            LOOPBACK,
            ",".join(str(address[1]) for address in api.by_address),
            config.timeout_ms,
            config.memory_mb,
        )
    if config.web or config.trigger != "apigw":
        mode = "web function" if config.web else f"{config.trigger} events"
        logger.info("serving %s/ (%s)", url, mode)
    else:
        logger.info("serving %s/ (also as the gateway's stage URL %s/%s/)", url, url, config.stage)
    if config.inspector_path:
        logger.info("invocation inspector: %s%s/", url, config.inspector_path)
    background = [asyncio.ensure_future(_prewarm(front, pool))]
    if reloader is not None:
        background.append(asyncio.ensure_future(_watch(code_dir, reloader, pool)))
    stopped = asyncio.ensure_future(stop.wait())
    ended = {stopped, front_serving} | ({api_serving} if api_serving else set())
    try:
        await asyncio.wait(ended, return_when=asyncio.FIRST_COMPLETED)
        logger.info("shutting down")
        # No new instance from now on: a request waiting for one gets 503, and so does one
        # whose instance is still starting (stopped here) or which waits for a fix (woken).
        pool.close()
        if reloader is not None:
            reloader.close()
        history.close()
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        front_server.should_exit = True
        starting = [instance.stop() for instance in pool.instances if instance.starting]
        # The invocations in progress are answered, the runtime API serving on meanwhile.
        await asyncio.gather(front_serving, *starting)
    finally:
        stopped.cancel()
        front_server.should_exit = True
        await pool.stop()
        for channel in api.channels:
            channel.close()
        if api_serving is not None:
            api_server.should_exit = True
            await api_serving
        if http_client is not None:
            await http_client.aclose()
    return 0


async def _prewarm(front: FrontDoor, pool: Pool) -> None:
    """Start the first instance at once, so an import error shows before any request."""
    try:
        instance = await pool.acquire()
    except PoolClosed:
        return
    try:
        await instance.ensure_ready()
    except Exception as exc:  # InstanceError: logged, and the next request tries again
        logger.error("%s; a new instance will be started on the next request", exc)
        if front.reloader is not None:
            logger.error("waiting for a change to the code to start it again (--reload)")
    finally:
        pool.release(instance)


async def _watch(code_dir: str, reloader: Reloader, pool: Pool) -> None:
    """Restart the instances when a Python file under the code directory changes."""
    import watchfiles

    restart: asyncio.Future[None] | None = None
    try:
        async for changes in watchfiles.awatch(
            code_dir, watch_filter=watchfiles.PythonFilter(), debounce=200, step=50
        ):
            names = sorted({os.path.relpath(path, code_dir) for _, path in changes})
            logger.info(
                "change detected in %s; restarting the function instances", ", ".join(names)
            )
            for instance in pool.instances:
                instance.stale = True
            for instance in pool.idle():
                # Checked again for each: while an earlier one is stopped, a request may take
                # this one (it then stops the old process itself) and start it on the new
                # code (`start` clears `stale`); that process is left alone.
                if instance.alive and instance.stale and instance in pool.idle():
                    await instance.stop()
            reloader.change()
            # Not awaited: a request may hold an instance until this change reaches it.
            if restart is None or restart.done():
                restart = asyncio.ensure_future(_restart(pool))
    finally:
        if restart is not None:
            restart.cancel()


async def _restart(pool: Pool) -> None:
    try:
        instance = await pool.acquire()
    except PoolClosed:
        return
    try:
        await instance.ensure_ready()
    except Exception as exc:
        logger.error("%s; waiting for a change to the code to start it again (--reload)", exc)
    finally:
        pool.release(instance)


def _configure_logging() -> None:
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("[local] %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    # uvicorn's own lines: warnings only (the emulator writes the request lines itself).
    for name in ("uvicorn", "uvicorn.error"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.setLevel(logging.WARNING)
        if not uvicorn_logger.handlers:
            uvicorn_logger.addHandler(logger.handlers[0])
        uvicorn_logger.propagate = False
