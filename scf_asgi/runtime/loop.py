"""The invocation loop: post ready, pull each event, hand it to the adapter with its
`Invocation` (the `Responder` that posts to the runtime API), and see that it gets exactly one
answer; SIGTERM/SIGINT stop the loop between events, never in the middle of one.

`serve(app)` puts it together: the adapter, the client, the ASGI lifespan around the loop.
"""

from __future__ import annotations

import json
import os
import signal
import time

from ..adapter import Adapter
from ..errors import ConfigurationError, InvalidEventError, RuntimeAPIError
from ..gateway import parse_json
from ..logs import log_error, log_info, log_warning, serving
from ..platform import MAX_PAYLOAD_BYTES
from .client import (
    ERROR,
    RESPONSE,
    SHUTDOWN_SIGNALS,
    EventTooLarge,
    Interrupted,
    RuntimeClient,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Awaitable, Coroutine, Generator, Iterator
    from typing import Any, Callable, Union

    from ..context import Context
    from ..types import Payload, Responder

    Pending = Union[Coroutine[Any, Any, None], None]
    Handle = Callable[[Any, Context, Responder], Pending]

__all__ = ["AnswerCheck", "Invocation", "ShutdownGuard", "dispatch", "error_body", "run", "serve"]


# A 5xx answer to a posted response (or error) is a fault of the runtime API, not a refusal of
# the answer: the same bytes are posted again, after these pauses (the first post wins on the
# platform, so a repeat cannot answer twice), and only then does the invocation fail.
RESPONSE_RETRY_DELAYS = (0.05, 0.2, 0.5)


def error_body(error_type: str, message: str) -> bytes:
    """The body of an invocation error (the platform accepts any format)."""
    return json.dumps({"errorType": error_type, "errorMessage": message}).encode("utf-8")


# An answer's way to the runtime API, with no I/O: each step is ("post", path, body), sent back
# the status it got, or ("sleep", seconds, None). The blocking and the async pumps drive it.
if TYPE_CHECKING:
    Step = tuple[str, Any, Any]


def _response_steps(request_id: str, data: bytes) -> Generator[Step, Any, None]:
    if len(data) > MAX_PAYLOAD_BYTES:
        # The documented limit is "about 6 MB" of result, so it is posted all the same: the
        # platform decides, and a refusal below becomes an invocation error.
        log_warning(
            "request %s: a %d-byte result is over the platform's limit of about 6 MB "
            "(binary bodies grow by a third as base64); it may be refused",
            request_id,
            len(data),
        )
    status = yield ("post", RESPONSE, data)
    for delay in RESPONSE_RETRY_DELAYS:
        if status < 500:
            break
        log_warning(
            "request %s: POST %s answered %d; posting it again", request_id, RESPONSE, status
        )
        yield ("sleep", delay, None)
        status = yield ("post", RESPONSE, data)
    if status != 200:
        # Without an accepted answer the event would hang until the platform's timeout; a
        # rejected response (too large, malformed) becomes an invocation error instead.
        log_error(
            "request %s: POST %s answered %d (%d bytes posted)",
            request_id,
            RESPONSE,
            status,
            len(data),
        )
        yield from _error_steps(
            request_id,
            "ResponseRejected",
            f"the runtime API rejected the response with status {status} "
            f"({len(data)} bytes; the platform's limit is about 6 MB)",
        )


def _error_steps(request_id: str, error_type: str, message: str) -> Generator[Step, Any, None]:
    body = error_body(error_type, message)
    status = yield ("post", ERROR, body)
    for delay in RESPONSE_RETRY_DELAYS:
        if status < 500:
            break
        log_warning("request %s: POST %s answered %d; posting it again", request_id, ERROR, status)
        yield ("sleep", delay, None)
        status = yield ("post", ERROR, body)
    if status != 200:
        log_error("request %s: POST %s answered %d", request_id, ERROR, status)


class Invocation:
    """The runtime API's side of one event, as a `Responder`: exactly one of `respond` and
    `fail` takes effect, and a second answer is logged and dropped. Posts with the blocking
    client, before `respond` or `fail` returns."""

    __slots__ = ("client", "request_id", "answered")

    def __init__(self, client: Any, request_id: str) -> None:
        self.client = client
        self.request_id = request_id
        self.answered = False

    def respond(self, payload: Payload) -> None:
        if self.answered:
            log_error("request %s: a second answer was dropped", self.request_id)
            return
        try:
            data = payload.encode()
        except Exception as exc:  # MemoryError for a body too large to encode, say
            log_error("request %s: the answer cannot be encoded", self.request_id, exc_info=exc)
            self.fail("InternalError", f"scf-asgi could not encode the answer: {exc!r}")
            return
        self.answered = True
        self._post(_response_steps(self.request_id, data))

    def fail(self, error_type: str, message: str, cause: BaseException | None = None) -> None:
        if self._first():
            self._post(_error_steps(self.request_id, error_type, message))

    def _first(self) -> bool:
        if self.answered:
            log_error("request %s: a second answer was dropped", self.request_id)
            return False
        self.answered = True
        return True

    def _post(self, steps: Generator[Step, Any, None]) -> None:
        client = self.client
        result: Any = None
        try:
            while True:
                kind, value, body = steps.send(result)
                if kind == "post":
                    result = client.exchange("POST", value, body)[0]
                else:
                    time.sleep(value)
                    result = None
        except StopIteration:
            pass


class ShutdownGuard:
    """SIGTERM/SIGINT for the blocking loop: stop at once while waiting for an event that has
    not begun to arrive, or after answering the event in flight.

    The handler only notes the request; the signal also writes its number to a wake-up pipe
    (`signal.set_wakeup_fd`) that the long poll waits on beside its socket, so a signal at any
    moment, even between the last answer and the next poll, ends the wait, and none can cut
    an event short once its first bytes are read. The pipe has a byte for every signal with a
    Python handler, the app's own too (a SIGALRM timer): only a shutdown signal's ends a wait.
    """

    def __init__(self) -> None:
        self.requested = False
        self.wakeup_fd: int | None = None  # readable once a signal has come
        self._write_fd: int | None = None
        self._previous: dict[int, Any] = {}
        self._previous_wakeup = -1

    def __enter__(self) -> ShutdownGuard:
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)
        try:
            self._previous_wakeup = signal.set_wakeup_fd(write_fd)
            for signum in SHUTDOWN_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._on_signal)
        except ValueError:  # not the main thread: signals stay with whoever owns them
            os.close(read_fd)
            os.close(write_fd)
            return self
        self.wakeup_fd, self._write_fd = read_fd, write_fd
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
        if self.wakeup_fd is not None and self._write_fd is not None:
            signal.set_wakeup_fd(self._previous_wakeup)
            os.close(self.wakeup_fd)
            os.close(self._write_fd)
            self.wakeup_fd = self._write_fd = None

    def _on_signal(self, signum: int, frame: object) -> None:
        self.requested = True
        log_info("received %s; shutting down", signal.Signals(signum).name)


def _invocations(client: RuntimeClient) -> Iterator[tuple[bytes, Context, Invocation]]:
    """Post ready, then yield each event pulled until a shutdown signal."""
    with ShutdownGuard() as shutdown:
        try:
            client.ready(shutdown.wakeup_fd)
        except Interrupted:
            return
        while not shutdown.requested:
            try:
                raw, context = client.next_invocation(shutdown.wakeup_fd)
            except Interrupted:
                return
            except EventTooLarge as exc:
                # Not read, so no handler can have it; asking again would bring it again.
                log_error("request %s: %s; the event is refused", exc.request_id, exc)
                Invocation(client, exc.request_id).fail("InvalidEventError", str(exc))
                continue
            yield raw, context, Invocation(client, context.request_id)


class AnswerCheck:
    """Around one event: whatever the handler did, the event ends with exactly one answer."""

    __slots__ = ("invocation",)

    def __init__(self, invocation: Invocation) -> None:
        self.invocation = invocation

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: object
    ) -> bool:
        invocation = self.invocation
        if isinstance(error, RuntimeAPIError):
            return False  # the runtime API is gone: nothing more can be posted
        if error is not None and not isinstance(error, Exception):
            # The process is exiting (SystemExit, KeyboardInterrupt): answer on the way out.
            if not invocation.answered:
                try:
                    invocation.fail(
                        "InternalError",
                        f"the instance is exiting ({type(error).__name__}) during this event",
                    )
                except Exception:
                    pass
            return False
        if error is not None:
            log_error(
                "request %s: internal error in scf-asgi", invocation.request_id, exc_info=error
            )
        if not invocation.answered:
            log_error("request %s: the handler gave no answer", invocation.request_id)
            invocation.fail("InternalError", "scf-asgi: the event got no answer")
        return True


def dispatch(handle: Handle, raw: bytes, context: Context, invocation: Invocation) -> Pending:
    try:
        event = parse_json(raw)
    except InvalidEventError as exc:
        log_error("request %s: %s", context.request_id, exc)
        invocation.fail("InvalidEventError", str(exc), exc)
        return None
    return handle(event, context, invocation)


def run(client: RuntimeClient, handle: Handle, complete: Callable[[Awaitable[None]], Any]) -> None:
    """Post ready, then answer events with `handle` until a shutdown signal; `complete` runs
    what `handle` leaves pending (an async event handler's work)."""
    for raw, context, invocation in _invocations(client):
        with AnswerCheck(invocation):
            pending = dispatch(handle, raw, context, invocation)
            if pending is not None:
                complete(pending)


def serve(app: Any, **options: Any) -> None:
    """Run `app` on the SCF Custom Runtime until SIGTERM/SIGINT. Options: see `Adapter`.

    An `Adapter` (say, the `main_handler` kept from the built-in runtime) is served with the
    options it was made with; giving options as well is a ConfigurationError.
    """
    if isinstance(app, Adapter):
        if options:
            names = ", ".join(sorted(options))
            raise ConfigurationError(
                f"the app is already an Adapter, made with its own options: give {names} to "
                "the Adapter, or pass its app instead"
            )
        adapter = app
    else:
        adapter = Adapter(app, **options)
    serving()
    if adapter.interface == "asgi":
        from .aio import serve_asgi  # the event loop's pump: asyncio only for ASGI apps

        serve_asgi(adapter)
        return
    client = RuntimeClient.from_environ()
    try:
        run(client, adapter.handle, adapter.runner.run)
    finally:
        client.close()
        adapter.close()
