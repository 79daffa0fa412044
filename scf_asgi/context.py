"""The invocation `Context`: who this invocation is and how long it has left."""

from __future__ import annotations

import os
import time

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
        name, version, namespace, region = _function_facts()
        return cls(
            str(get("request_id", "")),
            _int(get("memory_limit_in_mb")),
            _int(get("time_limit_in_ms")),
            str(get("function_name") or name),
            str(get("function_version") or version),
            str(get("namespace") or namespace),
            str(get("tencentcloud_region") or region),
        )

    def __repr__(self) -> str:
        return (
            f"Context(request_id={self.request_id!r}, function_name={self.function_name!r}, "
            f"remaining_time_ms={self.remaining_time_ms()})"
        )


_FUNCTION_FACTS: tuple[str, str, str, str] | None = None


def _function_facts() -> tuple[str, str, str, str]:
    """Function name, version, namespace and region from the environment, read once: they are
    the same for every invocation of a process."""
    global _FUNCTION_FACTS
    if _FUNCTION_FACTS is None:
        environ = os.environ
        _FUNCTION_FACTS = (
            environ.get("SCF_FUNCTIONNAME", ""),
            environ.get("SCF_FUNCTIONVERSION", ""),
            environ.get("SCF_NAMESPACE", ""),
            environ.get("TENCENTCLOUD_REGION", ""),
        )
    return _FUNCTION_FACTS


def _int(value: Any) -> int:
    if value.__class__ is int:
        return value  # type: ignore[no-any-return]
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
