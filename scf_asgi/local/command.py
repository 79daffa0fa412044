"""The emulator's commands (see `scf_asgi.cli`):

    scf-asgi local MODULE:ATTR     serve the app behind an emulated API gateway and runtime
    scf-asgi invoke --event FILE   send a raw event to a running `scf-asgi local`
    scf-asgi event TYPE            print a template event of a trigger type

Cheap to import, standard library only: `scf_asgi.cli` builds every command's parser, on a
deployed function's cold start too, where the [local] extra is not installed; `local` says what
to install when it is missing.
"""

from __future__ import annotations

import json
import sys

from .. import options
from ..errors import ConfigurationError
from ..platform import (
    DEFAULT_INIT_TIMEOUT_MS,
    ENV_FUNCTION_NAME,
    ENV_HANDLER,
    ENV_PORT,
    ENV_REGION,
    WEB_FUNCTION_PORT,
)
from .config import TRIGGERS, LocalConfig
from .templates import TEMPLATES, template

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any

__all__ = ["add_parsers", "event_command", "invoke_command", "local_command"]

DEFAULT_PORT = 8000
DEFAULT_INSPECTOR_PATH = "/_scf"
INSTALL_HINT = "pip install 'scf-asgi[local]'"


def add_parsers(commands: Any) -> None:
    _add_local(commands)
    _add_invoke(commands)
    _add_event(commands)


def _add_local(commands: Any) -> None:
    local = commands.add_parser(
        "local",
        help="run an app locally, behind an emulated API gateway and Custom Runtime",
        description=(
            "Serve MODULE:ATTR on http://HOST:PORT/ the way SCF runs it: each request becomes an "
            "API gateway (or function URL) event for a function instance (`scf-asgi run`, or "
            "your bootstrap, in a child process) that talks to an emulated Custom Runtime API; "
            "one event at a time per instance, the function timeout kills the instance, the "
            "6 MB payload limit applies. Paths starting with /STAGE/ have the stage removed, as "
            "on the gateway's default domain. The invocation inspector shows every event and "
            f"result at {DEFAULT_INSPECTOR_PATH}/. Needs the [local] extra: {INSTALL_HINT}."
        ),
    )
    local.add_argument("app", nargs="?", help="MODULE:ATTR of the app (optional with --bootstrap)")
    local.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    local.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port to listen on ({DEFAULT_PORT}; 0: any)"
    )
    local.add_argument(
        "--trigger",
        choices=TRIGGERS,
        default="apigw",
        help="the HTTP entry point to play: the API gateway (apigw, the default) or a function "
        "URL (function-url: no requestContext, no stage, the client in X-Forwarded-For)",
    )
    local.add_argument(
        "--stage", default="release", help="the API gateway stage (release; apigw only)"
    )
    local.add_argument(
        "--bootstrap",
        default=None,
        metavar="PATH",
        help="run this executable as the instance (cwd: its directory, the code directory) "
        "instead of `scf-asgi run MODULE:ATTR`",
    )
    local.add_argument(
        "--web",
        action="store_true",
        help="web-function mode: --bootstrap is an scf_bootstrap that starts an HTTP server on "
        f"the port in {ENV_PORT} (on SCF: {WEB_FUNCTION_PORT}); requests are passed on to it "
        "as HTTP with the platform's limits (4 KB headers, 6 MB bodies)",
    )
    local.add_argument(
        "--handler",
        default=None,
        metavar="MODULE.ATTR",
        help=f"the function's handler setting, given to the instance as {ENV_HANDLER} (default: "
        "MODULE:ATTR); what `scf-asgi run` with no app in a bootstrap serves",
    )
    local.add_argument(
        "--instances",
        type=int,
        default=1,
        metavar="N",
        help="up to N instances serve concurrent requests, each cold-started on first use and "
        "each handling one request at a time (1)",
    )
    local.add_argument(
        "--timeout-ms",
        type=int,
        default=3000,
        help="the function timeout: an invocation still running then is answered 502 and its "
        "instance killed (3000)",
    )
    local.add_argument(
        "--memory-mb",
        type=int,
        default=128,
        help="memory_limit_in_mb given to the instance (128; reported, not enforced)",
    )
    local.add_argument(
        "--init-timeout-ms",
        type=int,
        default=DEFAULT_INIT_TIMEOUT_MS,
        help="time an instance has to post /runtime/init/ready (web mode: to listen) before it "
        f"is killed ({DEFAULT_INIT_TIMEOUT_MS}, the platform's default)",
    )
    local.add_argument(
        "--host-header",
        default=None,
        metavar="HOST",
        help="send this Host in events instead of the browser's (e.g. a gateway default domain, "
        "to see the stage root path and https URLs the app builds there)",
    )
    local.add_argument(
        "--function-name", default="scf-asgi-local", help=f"{ENV_FUNCTION_NAME} (scf-asgi-local)"
    )
    local.add_argument("--region", default="ap-guangzhou", help=f"{ENV_REGION} (ap-guangzhou)")
    local.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an environment variable of the function (its configured variables); repeatable",
    )
    local.add_argument(
        "--reload",
        action="store_true",
        help="restart the instances when a .py file under the code directory changes; an app "
        "that fails to start waits for the fix",
    )
    local.add_argument(
        "--writable-code",
        dest="read_only",
        action="store_false",
        help="let the instance write to its code directory (on SCF the code is read-only and "
        "only /tmp is writable; here, by default, writes under the code directory fail)",
    )
    local.add_argument(
        "--inspector-path",
        default=DEFAULT_INSPECTOR_PATH,
        metavar="PATH",
        help=f"where the invocation inspector is served, never forwarded to the app "
        f"({DEFAULT_INSPECTOR_PATH})",
    )
    local.add_argument(
        "--no-inspector",
        dest="inspector_path",
        action="store_const",
        const=None,
        help="no inspector: every path goes to the app (`scf-asgi invoke` needs the inspector)",
    )
    local.add_argument(
        "--history",
        type=int,
        default=100,
        metavar="N",
        help="how many invocations the inspector keeps (100)",
    )
    options.add_arguments(
        local.add_argument_group(
            "options of `scf-asgi run`, passed on to the instance (put them in the bootstrap "
            "with --bootstrap)"
        )
    )
    local.set_defaults(command_main=local_command)


def _add_invoke(commands: Any) -> None:
    invoke = commands.add_parser(
        "invoke",
        help="send a raw event to a running `scf-asgi local`; print its result",
        description=(
            "Send the event in FILE (- for standard input) as it is to a running `scf-asgi "
            "local`, as a trigger would (timer, COS, CMQ, CKafka, CLS, a hand-written API "
            "gateway event: see `scf-asgi event`), and print only the function's JSON result "
            "on standard output. Exit status 1, and the error on standard error, when the "
            "invocation failed."
        ),
    )
    invoke.add_argument("--event", required=True, metavar="FILE", help="the event; - for stdin")
    invoke.add_argument("--host", default="127.0.0.1", help="where `scf-asgi local` listens")
    invoke.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"its port ({DEFAULT_PORT})")
    invoke.add_argument(
        "--inspector-path",
        default=DEFAULT_INSPECTOR_PATH,
        metavar="PATH",
        help=f"its --inspector-path ({DEFAULT_INSPECTOR_PATH})",
    )
    invoke.set_defaults(command_main=invoke_command)


def _add_event(commands: Any) -> None:
    event = commands.add_parser(
        "event",
        help="print a template event of a trigger type",
        description="Print a template event of trigger TYPE as JSON (edit it, then send it "
        "with `scf-asgi invoke --event -`).",
    )
    event.add_argument("type", choices=list(TEMPLATES), metavar="TYPE", help=", ".join(TEMPLATES))
    event.set_defaults(command_main=event_command)


# -- local -----------------------------------------------------------------------------------


def _parse_env(items: list[str]) -> dict[str, str]:
    environment: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ConfigurationError(f"--env takes NAME=VALUE, got {item!r}")
        environment[name] = value
    return environment


def config_from_args(args: argparse.Namespace) -> LocalConfig:
    given = options.given(args)
    passed_on = {name: value for name, value in given.items() if name != "access_log"}
    if args.bootstrap and passed_on:
        print(
            "scf-asgi: warning: options for `scf-asgi run` are ignored with --bootstrap "
            "(put them in the bootstrap script): "
            + ", ".join(options.BY_NAME[name].flag for name in passed_on),
            file=sys.stderr,
        )
    return LocalConfig(
        app=args.app,
        handler=args.handler,
        host=args.host,
        port=args.port,
        stage=args.stage,
        trigger=args.trigger,
        bootstrap=args.bootstrap,
        web=args.web,
        instances=args.instances,
        timeout_ms=args.timeout_ms,
        memory_mb=args.memory_mb,
        init_timeout_ms=args.init_timeout_ms,
        host_header=args.host_header,
        function_name=args.function_name,
        region=args.region,
        environment=_parse_env(args.env),
        reload=args.reload,
        read_only=args.read_only,
        inspector_path=args.inspector_path,
        history=args.history,
        access_log=given.get("access_log", True),
        run_args=options.to_argv(given),
    )


def local_command(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    config.check()
    missing = [name for name in _LOCAL_MODULES if not _importable(name)]
    if config.reload and not _importable("watchfiles"):
        missing.append("watchfiles")
    if missing:
        raise ConfigurationError(
            f"`scf-asgi local` needs {', '.join(missing)}, which is not installed: {INSTALL_HINT}"
        )
    from .emulator import run

    return run(config)


_LOCAL_MODULES = ("uvicorn", "starlette", "httpx")


def _importable(name: str) -> bool:
    import importlib

    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


# -- invoke, event ---------------------------------------------------------------------------


def invoke_command(args: argparse.Namespace) -> int:
    import http.client

    if args.event == "-":
        event = sys.stdin.buffer.read()
    else:
        try:
            with open(args.event, "rb") as file:
                event = file.read()
        except OSError as exc:
            raise ConfigurationError(f"cannot read the event {args.event!r}: {exc}") from None
    path = "/" + args.inspector_path.strip("/") + "/api/invoke"
    # http.client, not urllib: no proxy from the environment for a server on this machine.
    connection = http.client.HTTPConnection(args.host, args.port, timeout=None)
    try:
        connection.request("POST", path, event, {"Content-Type": "application/json"})
        response = connection.getresponse()
        status, body = response.status, response.read()
    except OSError as exc:
        raise ConfigurationError(
            f"no `scf-asgi local` answers on {args.host}:{args.port} ({exc})"
        ) from None
    finally:
        connection.close()
    text = body.decode("utf-8", "replace")
    if status == 200 and response.getheader("X-Scf-Result") == "response":
        sys.stdout.write(text + ("" if text.endswith("\n") else "\n"))
        return 0
    if response.getheader("X-Scf-Result") == "error":
        print(f"scf-asgi: the invocation failed: {text}", file=sys.stderr)
    elif status == 404:
        print(
            f"scf-asgi: {args.host}:{args.port} has no inspector at {args.inspector_path} "
            "(started with --no-inspector or another --inspector-path?)",
            file=sys.stderr,
        )
    else:
        print(f"scf-asgi: the invocation failed ({status}): {text}", file=sys.stderr)
    return 1


def event_command(args: argparse.Namespace) -> int:
    sys.stdout.write(json.dumps(template(args.type), indent=2, ensure_ascii=False) + "\n")
    return 0
