"""Shapes of the data that crosses a boundary: what the gateway accepts back, and the one seam
between the app layer and whoever carries its answer.

The app layer (`Adapter.handle`, the runners under it) ends every event in exactly one call on
a `Responder`: `respond` with a `Payload`, or `fail`. The Custom Runtime loop's invocation posts
the payload's bytes to the runtime API; `Adapter.__call__` (SCF's built-in Python runtime)
collects its document and returns it. Nothing below the responder knows how the answer travels.

Only type checkers import this module.
"""

from __future__ import annotations

from typing import Any, Protocol, TypedDict, Union

__all__ = ["HeaderValue", "IntegrationResponse", "Payload", "Responder"]

HeaderValue = Union[str, list[str]]


class IntegrationResponse(TypedDict):
    """What the gateway turns back into an HTTP response."""

    isBase64Encoded: bool
    statusCode: int
    headers: dict[str, HeaderValue]
    body: str


class Payload(Protocol):
    """An invocation's result, in both the forms it can leave in."""

    def document(self) -> Any:
        """The result as a JSON value: what a built-in runtime handler returns."""

    def encode(self) -> bytes:
        """The same result as UTF-8 JSON: what is posted to the runtime API."""


class Responder(Protocol):
    """Where one invocation's answer goes; only the first call takes effect."""

    def respond(self, payload: Payload) -> None:
        """The invocation succeeded with this result."""

    def fail(self, error_type: str, message: str, cause: BaseException | None = None) -> None:
        """The invocation failed: `error_type` and `message` are what the platform records
        (never an app's internals); `cause` is the exception behind it, if any, for whoever
        runs the app in process to raise."""
