"""Run Python web apps (ASGI: FastAPI, Starlette, Django, ...; WSGI: Flask, Django, ...) on
Tencent Cloud SCF's Custom Runtime, in process: ``serve(app)``."""

from __future__ import annotations

from .adapter import Adapter, serve
from .context import Context
from .errors import (
    AppError,
    ConfigurationError,
    InvalidEventError,
    RuntimeAPIError,
    SCFAsgiError,
    UnhandledEventError,
)

__all__ = [
    "Adapter",
    "AppError",
    "ConfigurationError",
    "Context",
    "InvalidEventError",
    "RuntimeAPIError",
    "SCFAsgiError",
    "UnhandledEventError",
    "serve",
]

__version__ = "0.1.0"
