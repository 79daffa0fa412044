"""The Custom Runtime API client and the invocation loop: the only code here that uses sockets.

    POST /runtime/init/ready            once, after the app (and its lifespan) has started
    GET  /runtime/invocation/next       long poll; the body is the raw event
    POST /runtime/invocation/response   the answer ...
    POST /runtime/invocation/error      ... or the failure: exactly one of the two per event

One persistent HTTP/1.1 connection (`http.client`, which never consults proxy variables: the
runtime API must be reached directly), re-opened when it drops. Every event pulled gets exactly
one answer: `Invocation` refuses a second, and the loop posts an error if a handler gave none.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import signal
import time

from .context import Context
from .errors import ConfigurationError, RuntimeAPIError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Awaitable, Mapping
    from typing import Any, Callable

    Handler = Callable[[bytes, Context, "Invocation"], None]
    AsyncHandler = Callable[[bytes, Context, "Invocation"], Awaitable[None]]

__all__ = ["Invocation", "RuntimeClient", "ShutdownGuard", "run_loop", "run_loop_async"]

logger = logging.getLogger("scf_asgi")

_JSON_HEADERS = {"Content-Type": "application/json"}
_ENV_HOST = "SCF_RUNTIME_API"
_ENV_PORT = "SCF_RUNTIME_API_PORT"


class RuntimeClient:
    """Talks to the Custom Runtime API over one keep-alive connection.

    A dropped connection or a refused connect is retried with exponential backoff for up to
    `retry_for` seconds; after that `RuntimeAPIError` is raised and the process should exit.
    """

    def __init__(self, host: str, port: int, *, retry_for: float = 10.0) -> None:
        self.host = host
        self.port = port
        self.retry_for = retry_for
        self._connection: http.client.HTTPConnection | None = None
        # Per-process facts for every Context, read once rather than per event.
        environ = os.environ
        self._function = (
            environ.get("SCF_FUNCTIONNAME", ""),
            environ.get("SCF_FUNCTIONVERSION", ""),
            environ.get("SCF_NAMESPACE", ""),
            environ.get("TENCENTCLOUD_REGION", ""),
        )

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> RuntimeClient:
        """Build from SCF_RUNTIME_API / SCF_RUNTIME_API_PORT; ConfigurationError if unset."""
        env = os.environ if environ is None else environ
        missing = [name for name in (_ENV_HOST, _ENV_PORT) if not env.get(name)]
        if missing:
            raise ConfigurationError(
                f"{' and '.join(missing)} not set: this is not an SCF Custom Runtime. "
                "To run locally, use `scf-asgi local MODULE:APP` (the platform's behaviour) "
                "or your framework's own server (e.g. `uvicorn module:app`)."
            )
        port = env[_ENV_PORT]
        if not port.isdigit():
            raise ConfigurationError(f"{_ENV_PORT} must be a port number, got {port!r}")
        retry_for = float(env.get("SCF_ASGI_RUNTIME_RETRY_SECONDS", "10"))
        return cls(env[_ENV_HOST], int(port), retry_for=retry_for)

    # -- the four endpoints ------------------------------------------------------------------

    def ready(self) -> None:
        status, _, body = self._exchange("POST", "/runtime/init/ready", b'{"msg":"ready"}')
        if status != 200:
            raise RuntimeAPIError(f"POST /runtime/init/ready answered {status}: {_excerpt(body)}")

    def next_invocation(self) -> tuple[bytes, Context, Invocation]:
        """Wait (with no timeout) for the next event: its raw body, context and answer slot."""
        deadline = 0.0
        delay = 0.05
        while True:
            status, headers, body = self._exchange("GET", "/runtime/invocation/next")
            received_at = time.monotonic()
            if status == 200:
                break
            logger.error("GET /runtime/invocation/next answered %d: %s", status, _excerpt(body))
            if not deadline:
                deadline = received_at + self.retry_for
            elif received_at >= deadline:
                raise RuntimeAPIError(
                    f"GET /runtime/invocation/next kept answering {status} for {self.retry_for}s"
                )
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
        request_id = headers.get("request_id") or ""
        name, version, namespace, region = self._function
        context = Context(
            request_id,
            _int_header(headers.get("memory_limit_in_mb")),
            _int_header(headers.get("time_limit_in_ms")),
            name,
            version,
            namespace,
            region,
            received_at=received_at,
        )
        return body, context, Invocation(self, request_id)

    def post_response(self, payload: bytes) -> int:
        return self._exchange("POST", "/runtime/invocation/response", payload)[0]

    def post_error(self, payload: bytes) -> int:
        return self._exchange("POST", "/runtime/invocation/error", payload)[0]

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    # -- transport -----------------------------------------------------------------------------

    def _exchange(
        self, method: str, path: str, body: bytes | None = None
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        deadline = 0.0
        delay = 0.05
        while True:
            connection = self._connection
            if connection is None:
                # timeout=None: the long poll on /next must never time out on our side.
                connection = self._connection = http.client.HTTPConnection(self.host, self.port)
            try:
                if body is None:
                    connection.request(method, path)
                else:
                    connection.request(method, path, body, _JSON_HEADERS)
                response = connection.getresponse()
                data = response.read()
                return response.status, response.msg, data
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                now = time.monotonic()
                if not deadline:
                    deadline = now + self.retry_for
                    logger.warning(
                        "runtime API at %s:%d unreachable (%s); retrying for up to %gs",
                        self.host,
                        self.port,
                        exc,
                        self.retry_for,
                    )
                elif now >= deadline:
                    raise RuntimeAPIError(
                        f"runtime API at {self.host}:{self.port} unreachable for "
                        f"{self.retry_for:g}s ({method} {path}): {exc}"
                    ) from exc
                time.sleep(delay)
                delay = min(delay * 2, 1.0)


class Invocation:
    """The answer slot of one event: exactly one of `respond` / `fail` takes effect."""

    __slots__ = ("client", "request_id", "answered")

    def __init__(self, client: RuntimeClient, request_id: str) -> None:
        self.client = client
        self.request_id = request_id
        self.answered = False

    def respond(self, payload: bytes) -> None:
        if self.answered:
            logger.error("request %s: a second answer was dropped", self.request_id)
            return
        self.answered = True
        status = self.client.post_response(payload)
        if status != 200:
            # Without an accepted answer the event would hang until the platform's timeout; a
            # rejected response (too large, malformed) becomes an invocation error instead.
            logger.error(
                "request %s: POST /runtime/invocation/response answered %d (%d bytes posted)",
                self.request_id,
                status,
                len(payload),
            )
            self._post_error(
                error_payload(
                    "RuntimeAPIError",
                    f"the runtime API rejected the response with status {status} "
                    f"({len(payload)} bytes; the platform's limit is about 6 MB)",
                )
            )

    def fail(self, payload: bytes) -> None:
        if self.answered:
            logger.error("request %s: a second answer was dropped", self.request_id)
            return
        self.answered = True
        self._post_error(payload)

    def _post_error(self, payload: bytes) -> None:
        status = self.client.post_error(payload)
        if status != 200:
            logger.error(
                "request %s: POST /runtime/invocation/error answered %d", self.request_id, status
            )


def error_payload(error_type: str, message: str) -> bytes:
    """The body of an invocation error (the platform accepts any format)."""
    return json.dumps({"errorType": error_type, "errorMessage": message}).encode("utf-8")


class _Stop(BaseException):
    """Raised out of a blocking wait on /next when a shutdown signal arrives while idle."""


class ShutdownGuard:
    """SIGTERM/SIGINT handling: stop at once while idle, or after answering the event in flight.

    Python retries a blocking recv() interrupted by a signal once the handler returns (PEP 475),
    so while idle the handler raises to break out of the long poll on /next.
    """

    def __init__(self) -> None:
        self.requested = False
        self.idle = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> ShutdownGuard:
        try:
            for signum in (signal.SIGTERM, signal.SIGINT):
                self._previous[signum] = signal.signal(signum, self._on_signal)
        except ValueError:
            pass  # not the main thread: signals stay with whoever owns them
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _on_signal(self, signum: int, frame: object) -> None:
        self.requested = True
        logger.info("received %s; shutting down", signal.Signals(signum).name)
        if self.idle:
            self.idle = False
            raise _Stop


def _next(client: RuntimeClient, guard: ShutdownGuard) -> tuple[bytes, Context, Invocation] | None:
    if guard.requested:
        return None
    guard.idle = True
    try:
        return client.next_invocation()
    except _Stop:
        return None
    finally:
        guard.idle = False


def _after_handle(invocation: Invocation, error: Exception | None) -> None:
    """The safety net that keeps "exactly one answer per event" true whatever the handler did."""
    if error is not None:
        if isinstance(error, RuntimeAPIError):
            raise error
        logger.error(
            "request %s: internal error in scf-asgi", invocation.request_id, exc_info=error
        )
    if not invocation.answered:
        logger.error("request %s: the handler gave no answer", invocation.request_id)
        invocation.fail(error_payload("InternalError", "scf-asgi: the event got no answer"))


def run_loop(client: RuntimeClient, handle: Handler) -> None:
    """Post ready, then answer events with `handle` until a shutdown signal."""
    with ShutdownGuard() as guard:
        client.ready()
        while True:
            pulled = _next(client, guard)
            if pulled is None:
                return
            raw, context, invocation = pulled
            error = None
            try:
                handle(raw, context, invocation)
            except Exception as exc:
                error = exc
            _after_handle(invocation, error)


async def run_loop_async(client: RuntimeClient, handle: AsyncHandler) -> None:
    """`run_loop` for ASGI apps: runs inside the process's one event loop, no task per event."""
    with ShutdownGuard() as guard:
        client.ready()
        while True:
            pulled = _next(client, guard)
            if pulled is None:
                return
            raw, context, invocation = pulled
            error = None
            try:
                await handle(raw, context, invocation)
            except Exception as exc:
                error = exc
            _after_handle(invocation, error)


def _int_header(value: str | None) -> int:
    return int(value) if value and value.isdigit() else 0


def _excerpt(body: bytes, limit: int = 200) -> str:
    text = body[:limit].decode("utf-8", "replace")
    return text + ("..." if len(body) > limit else "")
