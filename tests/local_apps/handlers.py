"""An event handler for the non-HTTP triggers sent with `scf-asgi invoke` in the tests."""

from __future__ import annotations

from typing import Any


def on_event(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if event.get("Message") == "fail":
        raise ValueError("the handler was asked to fail")
    print("HANDLER SAW", sorted(event), flush=True)
    return {"keys": sorted(event), "request_id": context.request_id}
