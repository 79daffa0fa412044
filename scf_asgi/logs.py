"""What scf-asgi writes to the function's log: its messages and one line per invocation.

While serving (`serving()`), lines go to stdout, which SCF collects, as ``[LEVEL] message``,
written directly: serving never imports `logging` for it (5 ms of every cold start). Where the
process uses logging (a handler on the root logger or on "scf_asgi": the app configured it, or
pytest's caplog), every line goes through the "scf_asgi" logger instead and that configuration
decides; so does a level set on "scf_asgi" (``logging.getLogger("scf_asgi").setLevel(WARNING)``
turns the access line off). In process, outside `serving()`, lines go through logging as any
library's do.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    import logging
    from types import TracebackType
    from typing import Any, Union

    ExcInfo = Union[
        BaseException, bool, tuple[type[BaseException], BaseException, TracebackType], None
    ]

__all__ = [
    "access",
    "access_enabled",
    "excerpt",
    "log_debug",
    "log_error",
    "log_info",
    "log_warning",
    "printable",
    "serving",
]

DEBUG, INFO, WARNING, ERROR = 10, 20, 30, 40  # logging's levels
_NAMES = {DEBUG: "DEBUG", INFO: "INFO", WARNING: "WARNING", ERROR: "ERROR"}

_serving = False
_logger: logging.Logger | None = None  # the "scf_asgi" logger, once logging is imported


def serving() -> None:
    """The runtime loop starts: scf-asgi's lines go to stdout unless logging is configured."""
    global _serving
    _serving = True


def _through_logging() -> logging.Logger | None:
    """The "scf_asgi" logger if lines go through logging; None if they are written directly."""
    global _logger
    logger = _logger
    if logger is None:
        if "logging" not in sys.modules:
            return None if _serving else _import_logger()
        logger = _import_logger()
    if not _serving:
        return logger
    if logger.handlers or logger.manager.root.handlers:
        if logger.level == 0:
            # The app's logging set up (basicConfig leaves the root at WARNING): scf-asgi's own
            # lines stay at INFO unless a level is set on "scf_asgi".
            logger.setLevel(INFO)
        return logger
    return None


def _import_logger() -> logging.Logger:
    global _logger
    import logging

    _logger = logging.getLogger("scf_asgi")
    return _logger


def _direct_level() -> int:
    """The lowest level written directly: INFO, or the level set on "scf_asgi"."""
    logger = _logger
    return (logger.level if logger is not None else 0) or INFO


def _log(level: int, message: str, args: tuple[Any, ...], exc_info: ExcInfo) -> None:
    logger = _through_logging()
    if logger is not None:
        logger.log(level, message, *args, exc_info=exc_info)
        return
    if level < _direct_level():
        return
    text = message % args if args else message
    if exc_info:
        import traceback

        error = sys.exc_info()[1] if exc_info is True else exc_info
        if isinstance(error, tuple):
            error = error[1]
        if isinstance(error, BaseException):
            lines = traceback.format_exception(type(error), error, error.__traceback__)
            text += "\n" + "".join(lines).rstrip("\n")
    _write(f"[{_NAMES[level]}] {text}\n")


def _write(line: str) -> None:
    try:
        stream = sys.stdout
        stream.write(line)
        stream.flush()
    except (AttributeError, OSError, ValueError):
        pass  # a broken or closed stdout must not cost an invocation its answer


def log_debug(message: str, *args: Any) -> None:
    _log(DEBUG, message, args, None)


def log_info(message: str, *args: Any) -> None:
    _log(INFO, message, args, None)


def log_warning(message: str, *args: Any) -> None:
    _log(WARNING, message, args, None)


def log_error(message: str, *args: Any, exc_info: ExcInfo = None) -> None:
    _log(ERROR, message, args, exc_info)


def access_enabled() -> bool:
    """Whether an access line would be written (checked before making one)."""
    logger = _through_logging() if _serving or "logging" in sys.modules else None
    if logger is not None:
        return logger.isEnabledFor(INFO)
    # Not through logging: written directly while serving; in process with logging never
    # imported, nobody can have asked for INFO, so no line (and no 10 ms import for it).
    return _serving and _direct_level() <= INFO


def access(line: str) -> None:
    """One access line, at INFO."""
    logger = _through_logging()
    if logger is not None:
        logger.info("%s", line)
    elif _direct_level() <= INFO:
        _write("[INFO] " + line + "\n")


def printable(text: str) -> str:
    """Text from a client, safe in a log line: control characters escaped, so that a path
    with a newline cannot forge a line of its own in the function's log."""
    return text if text.isprintable() else repr(text)[1:-1]


def excerpt(body: bytes, limit: int = 300) -> str:
    """The start of a body, as text, for a log line or an error message."""
    text = body[:limit].decode("utf-8", "replace")
    return text + ("..." if len(body) > limit else "")
