"""Run Python web apps (ASGI: FastAPI, Starlette, Django, ...; WSGI: Flask, Django, ...) on
Tencent Cloud SCF's Custom Runtime, in process: ``serve(app)``."""

from __future__ import annotations

from .context import Context
from .errors import (
    AppError,
    ConfigurationError,
    DeployError,
    IntegrationFormatError,
    InvalidEventError,
    PackageError,
    RequestTooLarge,
    RuntimeAPIError,
    SCFAsgiError,
    UnhandledEventError,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .adapter import Adapter

__all__ = [
    "Adapter",
    "AppError",
    "ConfigurationError",
    "Context",
    "DeployError",
    "IntegrationFormatError",
    "InvalidEventError",
    "PackageError",
    "RequestTooLarge",
    "RuntimeAPIError",
    "SCFAsgiError",
    "UnhandledEventError",
    "serve",
]

__version__ = "0.1.0"


def serve(app: Any, **options: Any) -> None:
    """Run `app` on the SCF Custom Runtime until SIGTERM/SIGINT; the options are `Adapter`'s.

    An `Adapter` (say, the `main_handler` kept from the built-in runtime) is served with the
    options it was made with; giving options as well is a ConfigurationError.
    """
    from .runtime import serve as serve_on_runtime

    serve_on_runtime(app, **options)


def __getattr__(name: str) -> Any:
    # `Adapter` loads on first use, and the runtime only when `serve` runs, so `import scf_asgi`
    # (or a module that only needs the exceptions or Context) stays cheap on a cold start, and
    # an app in SCF's built-in runtime never loads the socket code.
    if name == "Adapter":
        from .adapter import Adapter

        return Adapter
    raise AttributeError(f"module 'scf_asgi' has no attribute {name!r}")
