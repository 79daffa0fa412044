"""An ASGI app that lets the end-to-end tests observe the runtime loop from the inside.

Gates are files in the directory named by GATE_DIR: the app waits for `<name>.go` to appear,
which lets a test decide exactly when a handler or a background task may finish.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

GATES = Path(os.environ.get("GATE_DIR", "/tmp"))
seen: dict[str, Any] = {"loop": None, "background": []}


async def wait_for_gate(name: str) -> None:
    (GATES / f"{name}.waiting").touch()
    for _ in range(2000):
        if (GATES / f"{name}.go").exists():
            return
        await asyncio.sleep(0.005)
    raise TimeoutError(f"gate {name} never opened")


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
    if os.environ.get("FAIL_STARTUP"):
        raise RuntimeError("database unreachable")
    await asyncio.sleep(0.05)
    yield {"startup_finished_at": time.time()}
    print("LOOP_APP SHUTDOWN", flush=True)


async def startup_time(request: Request) -> JSONResponse:
    return JSONResponse({"startup_finished_at": request.state.startup_finished_at})


async def same_loop(request: Request) -> JSONResponse:
    loop = asyncio.get_running_loop()
    if seen["loop"] is None:
        seen["loop"] = loop
        seen["future"] = loop.create_future()  # awaited by a later invocation
        seen["future"].set_result("made in an earlier invocation")
    return JSONResponse({"same_loop": seen["loop"] is loop, "future": await seen["future"]})


async def gated_background(request: Request) -> JSONResponse:
    async def later() -> None:
        await wait_for_gate("background")
        seen["background"].append("done")

    return JSONResponse({"posted": True}, background=BackgroundTask(later))


async def background_log(request: Request) -> JSONResponse:
    return JSONResponse({"background": seen["background"]})


async def gated_handler(request: Request) -> JSONResponse:
    await wait_for_gate("handler")
    return JSONResponse({"finished": True})


async def detach(request: Request) -> JSONResponse:
    """Hands the loop work of its own: a task no one awaits, and a timer. Each leaves a marker
    file when it has run, which the test looks for while the instance waits for an event."""

    async def detached() -> None:
        await wait_for_gate("detached")
        (GATES / "detached.done").touch()

    seen["detached"] = asyncio.get_running_loop().create_task(detached())
    asyncio.get_running_loop().call_later(0.2, (GATES / "timer.done").touch)
    return JSONResponse({"detached": True})


current_user: contextvars.ContextVar[str | None] = contextvars.ContextVar("user", default=None)


async def remember_user(request: Request) -> JSONResponse:
    """What a middleware does with a context variable: set it for the request in hand."""
    before = current_user.get()
    current_user.set(request.query_params.get("user"))
    return JSONResponse({"before": before})


async def boom(request: Request) -> JSONResponse:
    raise RuntimeError("secret detail that must not leak")


app = Starlette(
    routes=[
        Route("/startup-time", startup_time),
        Route("/same-loop", same_loop),
        Route("/gated-background", gated_background),
        Route("/background-log", background_log),
        Route("/gated-handler", gated_handler),
        Route("/detach", detach),
        Route("/remember-user", remember_user),
        Route("/boom", boom),
    ],
    lifespan=lifespan,
)
