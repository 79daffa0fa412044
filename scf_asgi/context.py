"""The invocation `Context`: who this invocation is and how long it has left."""

from __future__ import annotations

import time

from .platform import function_facts

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

__all__ = ["Context"]


class Context:
    """Facts about the current invocation.

    Built by the runtime loop from the ``/runtime/invocation/next`` response headers, or from the
    context dict that SCF's built-in Python runtime passes to ``main_handler``.
    """

    __slots__ = (
        "request_id",
        "memory_limit_in_mb",
        "time_limit_in_ms",
        "function_name",
        "function_version",
        "namespace",
        "region",
        "deadline",
    )

    def __init__(
        self,
        request_id: str = "",
        memory_limit_in_mb: int = 0,
        time_limit_in_ms: int = 0,
        function_name: str = "",
        function_version: str = "",
        namespace: str = "",
        region: str = "",
        *,
        received_at: float | None = None,
    ) -> None:
        self.request_id = request_id
        self.memory_limit_in_mb = memory_limit_in_mb
        self.time_limit_in_ms = time_limit_in_ms
        self.function_name = function_name
        self.function_version = function_version
        self.namespace = namespace
        self.region = region
        if time_limit_in_ms:
            # The platform sends a duration, not a deadline: the clock starts when the event
            # arrives.
            start = time.monotonic() if received_at is None else received_at
            self.deadline = start + time_limit_in_ms / 1000.0
        else:
            self.deadline = 0.0

    def remaining_time_ms(self) -> int:
        """Milliseconds left before the platform kills the invocation (0 when unknown or past)."""
        if not self.deadline:
            return 0
        return max(0, int((self.deadline - time.monotonic()) * 1000))

    @classmethod
    def from_platform(cls, context: Mapping[str, Any]) -> Context:
        """Build from the dict SCF's built-in Python runtime passes as ``context``."""
        get = context.get
        facts = function_facts()
        return cls(
            str(get("request_id", "")),
            _int(get("memory_limit_in_mb")),
            _int(get("time_limit_in_ms")),
            str(get("function_name") or facts.name),
            str(get("function_version") or facts.version),
            str(get("namespace") or facts.namespace),
            str(get("tencentcloud_region") or facts.region),
        )

    def __repr__(self) -> str:
        return (
            f"Context(request_id={self.request_id!r}, function_name={self.function_name!r}, "
            f"remaining_time_ms={self.remaining_time_ms()})"
        )


def _int(value: Any) -> int:
    if value.__class__ is int:
        return value  # type: ignore[no-any-return]
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
