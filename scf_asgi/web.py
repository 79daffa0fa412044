"""``scf-asgi web MODULE:ATTR``: serve an app as an SCF *web function* (what `scf_bootstrap` runs).

A web function gets raw HTTP from the platform's proxy on ``0.0.0.0:9000``, so the app is
served by an established server rather than translated from events: uvicorn for ASGI apps,
gunicorn (threaded workers) for WSGI apps. ``$PORT`` overrides the port (the local emulator
and tests give each instance a free one), ``$SCF_ASGI_WEB_HOST`` the address (the emulator's
loopback, so an instance is reached only through its front door). Each access line starts
with the request id the platform sends in its ``X-Scf-Request-Id`` header, so a log line can
be matched to an invocation. This is the mode for server-sent events, WebSockets and instance
concurrency; the event mode (`scf-asgi run`) is the one that takes every trigger.

An outer layer: it imports the app and a server, never the Custom Runtime client.
"""

from __future__ import annotations

import os
from contextvars import ContextVar

from . import options
from .errors import ConfigurationError
from .platform import ENV_PORT, ENV_WEB_HOST, WEB_FUNCTION_PORT, WEB_REQUEST_ID_HEADER

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    import logging
    from collections.abc import Awaitable, MutableMapping, Sequence
    from typing import Any, Callable

    Scope = MutableMapping[str, Any]
    Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
    Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

__all__ = [
    "ACCESS_FORMAT",
    "add_parsers",
    "listen_host",
    "listen_port",
    "parse_web_flags",
    "serve_web",
    "web_command",
]

# The access line of both servers: request id, client, request line, status.
ACCESS_FORMAT = '%(asctime)s %(request_id)s %(client_addr)s "%(request_line)s" %(status_code)s'
_GUNICORN_ACCESS_FORMAT = (
    "%(t)s %({" + WEB_REQUEST_ID_HEADER + '}i)s %(h)s "%(r)s" %(s)s %(b)s %(M)sms'
)
_REQUEST_ID_HEADER = WEB_REQUEST_ID_HEADER.encode("latin-1")
# The request id of the request being served, for the log lines it causes.
_request_id: ContextVar[str] = ContextVar("scf_request_id", default="-")
# The platform's proxy reaches the server on every address of the instance (section 1).
ALL_ADDRESSES = "0.0.0.0"
DEFAULT_THREADS = 8


def listen_host() -> str:
    """The address to listen on: ``$SCF_ASGI_WEB_HOST``, else every address (0.0.0.0)."""
    return os.environ.get(ENV_WEB_HOST) or ALL_ADDRESSES


def listen_port() -> int:
    """The port to listen on: ``$PORT``, else the platform's web-function port."""
    value = os.environ.get(ENV_PORT, "")
    if not value:
        return WEB_FUNCTION_PORT
    if not (value.isascii() and value.isdigit()) or not 0 < int(value) < 65536:
        raise ConfigurationError(f"{ENV_PORT} must be a port number, got {value!r}")
    return int(value)


def add_parsers(commands: Any) -> None:
    web = commands.add_parser(
        "web",
        help="serve an app as a web function (what scf_bootstrap runs)",
        description=(
            f"Serve MODULE:ATTR over HTTP on HOST:{WEB_FUNCTION_PORT} (${ENV_PORT} overrides the "
            "port) with uvicorn (ASGI) or gunicorn (WSGI), as an SCF web function; access lines "
            "carry the platform's request id."
        ),
    )
    web.add_argument("app", help="MODULE:ATTR of the app")
    interface = options.BY_NAME["interface"]
    web.add_argument(
        interface.flag,
        dest=interface.name,
        choices=interface.choices,
        default=interface.default,
        help=interface.help,
    )
    web.add_argument(
        "--host",
        default=None,
        help=f"address to listen on (default: ${ENV_WEB_HOST}, else {ALL_ADDRESSES}, as the "
        "platform needs)",
    )
    web.add_argument(
        "--threads",
        type=int,
        default=DEFAULT_THREADS,
        help=f"WSGI: requests one instance serves at once (gunicorn threads; {DEFAULT_THREADS})",
    )
    web.set_defaults(command_main=web_command)


def parse_web_flags(words: Sequence[str]) -> tuple[str, str, str | None, int] | None:
    """(app, interface, host, threads) of a ``scf-asgi web`` command line made of its own flags
    only, as argparse would read them; None for anything else (``--help``, an unknown flag, a
    value argparse would refuse), which is then argparse's to explain. What every cold start of
    a web function reads: the whole parser costs more than the rest of the command's start."""
    interface = options.BY_NAME["interface"]
    found: dict[str, str] = {}
    positional: list[str] = []
    remaining = iter(words)
    for word in remaining:
        if not word.startswith("-"):
            positional.append(word)
            continue
        flag, equals, value = word.partition("=")
        if flag not in (interface.flag, "--host", "--threads"):
            return None
        if not equals:
            value = next(remaining, "")
            if not value or value.startswith("-"):
                return None
        found[flag] = value
    chosen = found.get(interface.flag, interface.default)
    threads = found.get("--threads", str(DEFAULT_THREADS))
    if (
        len(positional) != 1
        or chosen not in interface.choices
        or not (threads.isascii() and threads.isdigit())
    ):
        return None
    return positional[0], chosen, found.get("--host"), int(threads)


def web_command(args: argparse.Namespace) -> int:
    return serve_web(args.app, args.interface, args.host, args.threads)


def serve_web(reference: str, interface: str, host: str | None, threads: int) -> int:
    """`scf-asgi web`: serve the app named by `reference` on `host` (default: `listen_host`)
    and `listen_port` until the server stops."""
    from .cli import load_app

    port = listen_port()
    host = host or listen_host()
    app = load_app(reference)
    if interface == "auto":
        from .detect import detect_interface

        interface = detect_interface(app)
    if interface == "asgi":
        _serve_asgi(app, host, port)
    else:
        _serve_wsgi(app, host, port, threads)
    return 0


# -- ASGI: uvicorn -----------------------------------------------------------------------------


def _with_request_id(app: Any) -> Any:
    """The app, wrapped so the request id of each request is known to the log lines it causes
    (uvicorn logs its access line inside the request's task, where the variable is set)."""

    async def with_request_id(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            for name, value in scope["headers"]:
                if name == _REQUEST_ID_HEADER:
                    _request_id.set(value.decode("latin-1"))
                    break
        await app(scope, receive, send)

    return with_request_id


class RequestIdFilter:
    """A logging filter that gives every record the current request's id (``-`` outside one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get()
        return True


def _uvicorn_log_config() -> dict[str, Any]:
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {
            "default": {
                "()": "uvicorn.logging.DefaultFormatter",
                "fmt": "%(asctime)s %(request_id)s %(levelprefix)s %(message)s",
                "use_colors": False,
            },
            "access": {
                "()": "uvicorn.logging.AccessFormatter",
                "fmt": ACCESS_FORMAT,
                "use_colors": False,
            },
        },
        "handlers": {
            "default": {
                "formatter": "default",
                "filters": ["request_id"],
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stdout",
            },
            "access": {
                "formatter": "access",
                "filters": ["request_id"],
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stdout",
            },
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
        },
    }


def _serve_asgi(app: Any, host: str, port: int) -> None:
    try:
        import uvicorn
    except ImportError:
        raise ConfigurationError(
            "serving an ASGI app as a web function needs uvicorn: pip install 'scf-asgi[web]' "
            "(scf-asgi package --web puts it in the package)"
        ) from None
    uvicorn.run(
        _with_request_id(app),
        host=host,
        port=port,
        log_config=_uvicorn_log_config(),
        # The platform's proxy is the only client: trust its X-Forwarded-* headers.
        proxy_headers=True,
        forwarded_allow_ips="*",
        lifespan="auto",
    )


# -- WSGI: gunicorn ----------------------------------------------------------------------------


def _serve_wsgi(app: Any, host: str, port: int, threads: int) -> None:
    try:
        from gunicorn.app.base import BaseApplication
    except ImportError:
        raise ConfigurationError(
            "serving a WSGI app as a web function needs gunicorn: pip install 'scf-asgi[web]' "
            "(scf-asgi package --web puts it in the package)"
        ) from None

    settings = {
        "bind": f"{host}:{port}",
        "workers": 1,
        "worker_class": "gthread",
        "threads": threads,
        # The platform enforces the function's timeout; gunicorn's own would kill a long
        # request earlier with no answer.
        "timeout": 0,
        "accesslog": "-",
        "errorlog": "-",
        "access_log_format": _GUNICORN_ACCESS_FORMAT,
        "forwarded_allow_ips": "*",
    }

    class WebFunction(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for name, value in settings.items():
                self.cfg.set(name, value)

        def load(self) -> Any:
            return app

    WebFunction().run()
