"""A small real Starlette app: lifespan state, a module-level lock reused across events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

shared_lock = asyncio.Lock()  # created at import; first used inside the process's one loop
counter = {"calls": 0}


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
    yield {"greeting": "hello"}


async def count(request: Request) -> JSONResponse:
    async with shared_lock:
        counter["calls"] += 1
    return JSONResponse(
        {"calls": counter["calls"], "greeting": request.state.greeting, "url": str(request.url)}
    )


async def binary(request: Request) -> Response:
    data = await request.body()
    return Response(data[::-1], media_type="application/octet-stream")


app = Starlette(
    routes=[Route("/count", count), Route("/binary", binary, methods=["POST"])],
    lifespan=lifespan,
)
