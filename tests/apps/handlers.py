"""Event handlers for non-HTTP triggers, used by the end-to-end tests."""

from __future__ import annotations

import asyncio
from typing import Any

from scf_asgi import Context


def sync_handler(event: dict[str, Any], context: Context) -> dict[str, Any]:
    return {
        "trigger_keys": sorted(event),
        "request_id": context.request_id,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "time_limit_in_ms": context.time_limit_in_ms,
        "function": [context.function_name, context.function_version, context.namespace],
        "region": context.region,
        "deadline_ahead": 0 < context.remaining_time_ms() <= context.time_limit_in_ms,
    }


async def async_handler(event: dict[str, Any], context: Context) -> dict[str, Any]:
    await asyncio.sleep(0)
    return {"async": True, "remaining_positive": context.remaining_time_ms() > 0}


def failing_handler(event: dict[str, Any], context: Context) -> None:
    raise ValueError("handler could not process the record")


def unserialisable_handler(event: dict[str, Any], context: Context) -> Any:
    return {"when": object()}


def asyncio_run_handler(event: dict[str, Any], context: Context) -> dict[str, Any]:
    async def fetch() -> str:
        await asyncio.sleep(0)
        return "fetched"

    return {"result": asyncio.run(fetch())}


async def cancelled_handler(event: dict[str, Any], context: Context) -> None:
    task = asyncio.ensure_future(asyncio.sleep(10))
    task.cancel()
    await task  # raises CancelledError into the handler


def exiting_handler(event: dict[str, Any], context: Context) -> None:
    raise SystemExit(3)
