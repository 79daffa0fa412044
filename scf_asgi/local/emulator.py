"""`run(config)`: the emulator's parts put together and served by one `uvicorn.Server`.

    browser, curl  --HTTP-->  front door  --event-->  runtime API  <--HTTP--  instance 1..N
                   <--HTTP--  (gateway)   <--answer--  (platform)             (child processes)

The server listens on the front door's socket and on one loopback socket per instance for
its runtime API (each instance's ``SCF_RUNTIME_API_PORT``); requests are told apart by the
socket they came in on. uvicorn (h11) does the HTTP/1.1: framing, chunked bodies,
100-continue, keep-alive.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys

from ..errors import ConfigurationError
from .front_door import FrontDoor, Reloader
from .inspector import History
from .instance import Instance, Pool
from .runtime_api import Channel, RuntimeAPI, runtime_api_app, tagging_protocol

TYPE_CHECKING = False
if TYPE_CHECKING:
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
    # uvicorn restores the handlers it found and re-raises the signal that stopped it: these
    # make that a no-op, so a Ctrl-C or SIGTERM ends the emulator with status 0.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: None)
    try:
        return asyncio.run(_serve(config))
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_DFL)


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


class _Dispatch:
    """The one app uvicorn serves: the runtime API for its sockets, the front door else."""

    def __init__(self, front: FrontDoor, api_ports: set[int], runtime_api: Any) -> None:
        self.front = front
        self.api_ports = api_ports
        self.runtime_api = runtime_api

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        server = scope.get("server")
        if server is not None and server[1] in self.api_ports:
            await self.runtime_api(scope, receive, send)
        else:
            await self.front(scope, receive, send)


async def _serve(config: LocalConfig) -> int:
    import uvicorn

    command, code_dir = config.command()
    front_socket = _listen(config.host, config.port)
    channels: list[Channel] = []
    api_sockets: list[socket.socket] = []
    instances: list[Instance] = []
    for number in range(1, config.instances + 1):
        channel = None
        api_port = None
        if not config.web:
            channel = Channel(f"instance {number}")
            sock = _listen("127.0.0.1", 0)
            api_port = sock.getsockname()[1]
            channels.append(channel)
            api_sockets.append(sock)
        instances.append(
            Instance(
                number,
                command,
                code_dir,
                config.environ(code_dir, api_port),
                init_timeout_ms=config.init_timeout_ms,
                channel=channel,
                web=config.web,
                label_output=config.instances > 1,
                init_hint=config.init_hint(),
            )
        )
    api = RuntimeAPI(channels)
    for channel, sock in zip(channels, api_sockets):
        api.by_port[sock.getsockname()[1]] = channel
    pool = Pool(instances)
    history = History(config.history)
    reloader = Reloader() if config.reload else None
    http_client = None
    if config.web:
        import httpx

        # No proxy from the environment: the function's server is on this machine.
        http_client = httpx.AsyncClient(trust_env=False, timeout=None)
    front = FrontDoor(config, pool, history, reloader=reloader, http_client=http_client)
    port = front_socket.getsockname()[1]
    shown_host = f"[{config.host}]" if ":" in config.host else config.host
    front.address = f"{shown_host}:{port}"

    app = _Dispatch(front, set(api.by_port), runtime_api_app(api))
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            http=tagging_protocol(api),
            lifespan="off",
            # The front door is the gateway: the client is the peer, whatever it claims in
            # X-Forwarded-For (which goes into the event as sent).
            proxy_headers=False,
            log_config=None,
            access_log=False,
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
            timeout_graceful_shutdown=5,
            h11_max_incomplete_event_size=HEAD_LIMIT,
            server_header=False,
            date_header=True,
        )
    )
    serving = asyncio.ensure_future(server.serve(sockets=[front_socket, *api_sockets]))
    watcher = None
    try:
        while not server.started:
            if serving.done():
                serving.result()
                return 1
            await asyncio.sleep(0.01)
        url = f"http://{shown_host}:{port}"
        mode = "web function" if config.web else f"{config.trigger} events"
        if not config.web:
            logger.info(
                "runtime API on 127.0.0.1:%s; function timeout %d ms, memory %d MB",
                ",".join(str(p) for p in api.by_port),
                config.timeout_ms,
                config.memory_mb,
            )
        if config.web or config.trigger != "apigw":
            logger.info("serving %s/ (%s)", url, mode)
        else:
            logger.info(
                "serving %s/ (also as the gateway's stage URL %s/%s/)", url, url, config.stage
            )
        if config.inspector_path:
            logger.info("invocation inspector: %s%s/", url, config.inspector_path)
        if reloader is not None:
            watcher = asyncio.ensure_future(_watch(code_dir, reloader, pool))
        prewarm = asyncio.ensure_future(_prewarm(front, pool))
        while not server.should_exit and not serving.done():
            await asyncio.sleep(0.05)
        logger.info("shutting down")
        prewarm.cancel()
    finally:
        if watcher is not None:
            watcher.cancel()
        history.close()
        await pool.stop()
        for channel in channels:
            channel.close()
        server.should_exit = True
        await serving
        if http_client is not None:
            await http_client.aclose()
    return 0


async def _prewarm(front: FrontDoor, pool: Pool) -> None:
    """Start the first instance at once, so an import error shows before any request."""
    instance = await pool.acquire()
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
    async for changes in watchfiles.awatch(
        code_dir, watch_filter=watchfiles.PythonFilter(), debounce=200, step=50
    ):
        names = sorted({os.path.relpath(path, code_dir) for _, path in changes})
        logger.info("change detected in %s; restarting the function instances", ", ".join(names))
        for instance in pool.instances:
            instance.stale = True
        for instance in pool.idle():
            if instance.alive:
                await instance.stop()
        reloader.change()
        # Not awaited: a request may hold an instance until this change reaches it.
        if restart is None or restart.done():
            restart = asyncio.ensure_future(_restart(pool))


async def _restart(pool: Pool) -> None:
    instance = await pool.acquire()
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
