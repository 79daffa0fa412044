"""The "scf_asgi" logger, loaded on first use, and the one-line-per-invocation access log.

`logging` is imported only when something is logged or serving starts, so importing scf_asgi
stays cheap for a cold start.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    import logging
    from typing import TextIO

__all__ = ["access", "access_enabled", "configure_logging", "excerpt", "get_logger", "printable"]

_logger: logging.Logger | None = None
# The handler configure_logging() installed, when scf-asgi owns the output.
_own_handler: logging.StreamHandler[TextIO] | None = None


def get_logger() -> logging.Logger:
    global _logger
    if _logger is None:
        import logging

        _logger = logging.getLogger("scf_asgi")
    return _logger


def configure_logging() -> None:
    """Send scf_asgi's lines to stdout (which SCF collects) unless logging is configured."""
    global _own_handler
    import logging

    logger = get_logger()
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("[%(levelname)s] %(message)s"))
        logger.addHandler(handler)
        _own_handler = handler


def access_enabled() -> bool:
    """Whether an access line would be logged (checked before building one)."""
    logger = _logger
    if logger is None:
        if "logging" not in sys.modules:
            # Nobody can have configured logging without importing it, and unconfigured logging
            # drops INFO: no line, and no 10 ms import for an in-process app that never logs.
            return False
        logger = get_logger()
    return logger.isEnabledFor(20)  # logging.INFO


def access(line: str) -> None:
    """Log one access line at INFO."""
    logger = _logger or get_logger()
    if not logger.isEnabledFor(20):  # logging.INFO
        return
    handler = _own_handler
    handlers = logger.handlers
    if handler is not None and len(handlers) == 1 and handlers[0] is handler and not logger.filters:
        # Our own handler is the only output: write the line in its format directly. Going
        # through logging (record, lock, formatter, flush) measured 25-40 us per invocation.
        stream = handler.stream
        try:
            stream.write("[INFO] " + line + "\n")
            stream.flush()
        except (OSError, ValueError):
            pass  # a broken or closed stdout must not cost the invocation its answer
    else:
        logger.info("%s", line)


def printable(text: str) -> str:
    """Text from a client, safe in a log line: control characters escaped, so that a path
    with a newline cannot forge a line of its own in the function's log."""
    return text if text.isprintable() else repr(text)[1:-1]


def excerpt(body: bytes, limit: int = 300) -> str:
    """The start of a body, as text, for a log line or an error message."""
    text = body[:limit].decode("utf-8", "replace")
    return text + ("..." if len(body) > limit else "")
