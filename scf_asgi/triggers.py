"""Which trigger sent an event (pure data inspection, no I/O)."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

__all__ = ["WARMUP_NAMES", "detect_trigger", "is_http_event", "is_warmup"]

# A timer trigger with one of these names, or with one of them as its message, is a warm-up
# ping: it keeps an instance (and the app in it) started, and is answered at once.
WARMUP_NAMES = frozenset({"warmup", "warm-up", "warm_up", "scf-asgi-warmup"})

# Trigger name -> the key its event records carry, for triggers that send `{"Records": [...]}`.
_RECORD_KEYS = (("cos", "cos"), ("cmq", "CMQ"), ("ckafka", "Ckafka"))


def is_http_event(event: Mapping[str, Any]) -> bool:
    """An HTTP request: an API gateway event or a function URL's (which has no
    `requestContext`; neither has a hand-written console test event)."""
    return event.get("httpMethod").__class__ is str


def is_warmup(event: Mapping[str, Any]) -> bool:
    """A warm-up ping: a timer event whose TriggerName or Message (case aside) is one of
    `WARMUP_NAMES`."""
    if event.get("Type") != "Timer":
        return False
    for field in ("TriggerName", "Message"):
        value = event.get(field)
        if isinstance(value, str) and value.strip().lower() in WARMUP_NAMES:
            return True
    return False


def detect_trigger(event: Mapping[str, Any]) -> str | None:
    """Name the trigger that produced `event` ("apigateway", "websocket", "timer", "cos",
    "cmq", "ckafka", "cls" or "clb"), or None if unknown."""
    if is_http_event(event):
        return "apigateway"
    if isinstance(event.get("websocket"), dict):
        return "websocket"  # the gateway's WebSocket API: connect / message / close events
    if event.get("Type") == "Timer":
        return "timer"
    records = event.get("Records")
    if isinstance(records, list) and records and isinstance(records[0], dict):
        first = records[0]
        for name, key in _RECORD_KEYS:
            if key in first:
                return name
    if isinstance(event.get("clslogs"), dict):
        return "cls"
    if "payload" in event and "headers" in event:
        return "clb"
    return None
