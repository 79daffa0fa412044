"""What kind of callable an app is: ASGI 3, ASGI 2 or WSGI, told from its shape.

Imports nothing heavy: a WSGI app is detected without asyncio or inspect being loaded, unless
its shape is unusual.
"""

from __future__ import annotations

from .errors import ConfigurationError

__all__ = ["detect_interface", "is_coroutine_callable", "routes_on_relative_path"]

_CO_COROUTINE = 0x80  # inspect.CO_COROUTINE, without importing inspect at start-up


def _call_target(app: object) -> object:
    """The function that calling `app` runs: itself, or its class's ``__call__``."""
    return app if hasattr(app, "__code__") else type(app).__call__


def is_coroutine_callable(app: object) -> bool:
    """Whether calling `app` returns a coroutine (an `async def` function, method or object)."""
    if isinstance(app, type):
        return False
    code = getattr(_call_target(app), "__code__", None)
    if code is not None:
        return bool(code.co_flags & _CO_COROUTINE)
    import inspect

    return inspect.iscoroutinefunction(app) or inspect.iscoroutinefunction(type(app).__call__)


def routes_on_relative_path(app: object) -> bool:
    """Whether the app routes on a `path` without `root_path` (Falcon's ASGI App does)."""
    return type(app).__module__.split(".", 1)[0] == "falcon"


def detect_interface(app: object) -> str:
    """'asgi' or 'wsgi', from the shape of the callable; raises ConfigurationError if unclear."""
    if not callable(app):
        raise ConfigurationError(f"the app must be callable, got {type(app).__name__}")
    if isinstance(app, type):
        return "asgi"  # an ASGI 2 application class, instantiated once per scope
    if is_coroutine_callable(app):
        return "asgi"
    function = _call_target(app)
    code = getattr(function, "__code__", None)
    if code is not None:
        bound = hasattr(app, "__self__") and function is app  # a bound method: skip `self`
        positional = code.co_argcount - (0 if function is app and not bound else 1)
        defaults = getattr(function, "__defaults__", None) or ()
        if positional - len(defaults) == 2:
            return "wsgi"
        if positional in (1, 3):
            return "asgi"
    import inspect

    try:
        parameters = [
            p
            for p in inspect.signature(app).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
        ]
    except (TypeError, ValueError):
        parameters = []
    if len(parameters) == 2:
        return "wsgi"
    if len(parameters) in (1, 3):
        return "asgi"
    raise ConfigurationError(
        f"cannot tell whether {app!r} is an ASGI or a WSGI app; pass interface='asgi' or 'wsgi'"
    )
