"""One HTTP event's way out: its access line, then exactly one call on the `Responder`.

The adapter makes an `HttpExchange` per HTTP event and hands it to the runner, which ends the
event with `respond(response)` (the app answered) or `app_failed(error)` (it did not). What an
app failure becomes is decided here, once, by the ``app_errors`` option: a plain 500, or an
invocation error the platform counts as a failure.
"""

from __future__ import annotations

import time

from .errors import AppError
from .gateway import IntegrationPayload, Response
from .logs import access, log_error, printable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .context import Context
    from .gateway import Request, TextPolicy
    from .types import Responder

__all__ = ["HttpExchange", "plain_response"]

_TEXT_PLAIN = "text/plain; charset=utf-8"


def plain_response(status: int, text: str) -> Response:
    """A short text answer made by scf-asgi itself (400, 500)."""
    return Response(status, [("Content-Type", _TEXT_PLAIN)], text.encode("utf-8"))


_INTERNAL_ERROR = plain_response(500, "Internal Server Error")


class HttpExchange:
    """The answer side of one HTTP event. `request` is None for an event that could not be read
    (its answer is a 400)."""

    __slots__ = (
        "responder",
        "request",
        "context",
        "text_policy",
        "errors_as_invocation",
        "started",
        "answered",
    )

    def __init__(
        self,
        responder: Responder,
        request: Request | None,
        context: Context,
        text_policy: TextPolicy,
        errors_as_invocation: bool,
        started: float | None,
    ) -> None:
        self.responder = responder
        self.request = request
        self.context = context
        self.text_policy = text_policy
        # app_errors="invocation": the answer waits for the app to return (Starlette's error
        # middleware sends its own 500 before it re-raises), and a failure fails the invocation.
        # Otherwise the answer goes out as soon as the app has sent its whole response.
        self.errors_as_invocation = errors_as_invocation
        self.started = started  # perf_counter() at the event's start; None: no access line
        self.answered = False

    def respond(self, response: Response) -> None:
        self.answered = True
        request = self.request
        if self.started is not None:
            # Before the answer: written while the runtime API has the answer to deal with,
            # the line is where the kernel switches to the platform and back.
            elapsed = (time.perf_counter() - self.started) * 1000
            if request is None:
                where = "- -"
            else:
                where = f"{request.method} {printable(request.root_path + request.path)}"
            access(f"{self.context.request_id} {where} {response.status} {elapsed:.1f}ms")
        head = request is not None and request.method == "HEAD"
        self.responder.respond(IntegrationPayload(response, head, self.text_policy))

    def app_failed(self, error: BaseException) -> None:
        """The app raised `error`, or broke the protocol (an AppError), before its response was
        complete."""
        request = self.request
        log_error(
            "request %s: %s %s failed",
            self.context.request_id,
            request.method if request else "-",
            printable(request.root_path + request.path) if request else "-",
            exc_info=error,
        )
        if not self.errors_as_invocation:
            self.respond(_INTERNAL_ERROR)
            return
        self.answered = True
        name = type(error).__name__
        message = f"the app raised {name}; see the log of request {self.context.request_id}"
        if not isinstance(error, Exception):
            # SystemExit or CancelledError from a view must not end whoever raises the cause.
            wrapped = AppError(f"the app raised {name}")
            wrapped.__cause__ = error
            error = wrapped
        self.responder.fail("AppError", message, error)

    def fail(self, error_type: str, message: str, cause: BaseException | None = None) -> None:
        """The event failed for a reason of scf-asgi's own (a failed startup)."""
        self.answered = True
        self.responder.fail(error_type, message, cause)

    def raised_after_response(self, error: BaseException) -> None:
        """The app raised once its answer was out: logged, the answer stands."""
        log_error(
            "request %s: the app raised after its response was sent",
            self.context.request_id,
            exc_info=error,
        )
