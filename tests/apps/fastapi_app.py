"""A small real FastAPI app for the end-to-end tests (lifespan, background tasks, state)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, Optional

from fastapi import BackgroundTasks, FastAPI, Query, Request
from fastapi.responses import PlainTextResponse, StreamingResponse

events: list[str] = []
lock: asyncio.Lock | None = None


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    global lock
    lock = asyncio.Lock()  # bound to the loop on first use; must keep working across events
    events.append("startup")
    yield {"started": "yes"}
    events.append("shutdown")
    print("LIFESPAN SHUTDOWN", flush=True)


app = FastAPI(lifespan=lifespan)


@app.get("/items/{item_id}")
@app.head("/items/{item_id}", include_in_schema=False)
async def item(
    item_id: int,
    request: Request,
    q: Annotated[Optional[list[str]], Query()] = None,  # noqa: UP045 (FastAPI evaluates it, on 3.9 too)
) -> dict[str, Any]:
    assert lock is not None
    async with lock:
        await asyncio.sleep(0)
    return {
        "id": item_id,
        "q": q or [],
        "root_path": request.scope["root_path"],
        "url": str(request.url),
        "state": request.state.started,
        "request_id": request.scope["scf.context"].request_id,
        "events": events,
    }


@app.post("/echo")
async def echo(request: Request) -> PlainTextResponse:
    return PlainTextResponse(await request.body(), media_type=request.headers.get("content-type"))


def record(value: str) -> None:
    events.append(value)


@app.get("/background")
async def background(tasks: BackgroundTasks) -> dict[str, str]:
    tasks.add_task(record, "background-done")
    return {"ok": "yes"}


@app.get("/stream")
async def stream() -> StreamingResponse:
    async def parts() -> AsyncIterator[bytes]:
        for part in (b"one,", b"two,", b"three"):
            await asyncio.sleep(0)
            yield part

    return StreamingResponse(parts(), media_type="text/plain")


@app.get("/boom")
async def boom() -> None:
    raise RuntimeError("secret detail that must not leak")
