"""Run Python web apps (ASGI: FastAPI, Starlette, Django, ...; WSGI: Flask, Django, ...) on
Tencent Cloud SCF's Custom Runtime, in process: ``serve(app)``."""

from __future__ import annotations

from .context import Context
from .errors import (
    AppError,
    ConfigurationError,
    IntegrationFormatError,
    InvalidEventError,
    RuntimeAPIError,
    SCFAsgiError,
    UnhandledEventError,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .adapter import Adapter
    from .runtime import serve

__all__ = [
    "Adapter",
    "AppError",
    "ConfigurationError",
    "Context",
    "IntegrationFormatError",
    "InvalidEventError",
    "RuntimeAPIError",
    "SCFAsgiError",
    "UnhandledEventError",
    "serve",
]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # `Adapter` and `serve` load on first use, so `import scf_asgi` (or a module that only
    # needs the exceptions or Context) stays cheap on a cold start, and an app run in SCF's
    # built-in runtime never loads the socket code of `serve`.
    if name == "Adapter":
        from .adapter import Adapter

        return Adapter
    if name == "serve":
        from .runtime import serve

        return serve
    raise AttributeError(f"module 'scf_asgi' has no attribute {name!r}")
