"""The emulator's commands (see `scf_asgi.cli`):

    scf-asgi local MODULE:ATTR     serve the app behind an emulated API gateway and runtime
    scf-asgi invoke --event FILE   send a raw event to a running `scf-asgi local`
    scf-asgi event TYPE            print a template event of a trigger type

Cheap to import, standard library only: `scf_asgi.cli` builds every command's parser for any
command but `run`, at a web function's cold start too (`scf-asgi web`), where the [local] extra
is not installed; `local` says what to install when it is missing. The flags map onto
`LocalConfig`, whose defaults they show and leave in place when not given.
"""

from __future__ import annotations

import json
import sys

from .. import options
from ..errors import ConfigurationError
from ..platform import (
    ENV_FUNCTION_NAME,
    ENV_HANDLER,
    ENV_PORT,
    ENV_REGION,
    WEB_FUNCTION_PORT,
)
from .config import RESULT_HEADER, TRIGGERS, LocalConfig
from .templates import TEMPLATES, template

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any

__all__ = ["add_parsers", "event_command", "invoke_command", "local_command"]

INSTALL_HINT = "pip install 'scf-asgi[local]'"


def add_parsers(commands: Any) -> None:
    _add_local(commands)
    _add_invoke(commands)
    _add_event(commands)


def _add_local(commands: Any) -> None:
    import argparse

    default = LocalConfig  # each option's default, shown in its help
    local = commands.add_parser(
        "local",
        # An option not given is left out, so that LocalConfig's default applies.
        argument_default=argparse.SUPPRESS,
        help="run an app locally, behind an emulated API gateway and Custom Runtime",
        description=(
            "Serve MODULE:ATTR on http://HOST:PORT/ the way SCF runs it: each request becomes an "
            "API gateway (or function URL) event for a function instance (`scf-asgi run`, or "
            "your bootstrap, in a child process) that talks to an emulated Custom Runtime API; "
            "one event at a time per instance, the function timeout kills the instance, the "
            "6 MB payload limit applies. Paths starting with /STAGE/ have the stage removed, as "
            "on the gateway's default domain. The invocation inspector shows every event and "
            f"result at {default.inspector_path}/. Needs the [local] extra: {INSTALL_HINT}."
        ),
    )
    local.add_argument("app", nargs="?", help="MODULE:ATTR of the app (optional with --bootstrap)")
    local.add_argument(
        "--host",
        help=f"address to listen on ({default.host}; another one, such as 0.0.0.0, lets the "
        "network reach the app and the inspector, which runs any event it is sent)",
    )
    local.add_argument("--port", type=int, help=f"port to listen on ({default.port}; 0: any)")
    local.add_argument(
        "--trigger",
        choices=TRIGGERS,
        help="the HTTP entry point to play: the API gateway (apigw) or a function URL "
        "(function-url: no requestContext, no stage, the client in X-Forwarded-For); "
        f"{default.trigger} by default",
    )
    local.add_argument("--stage", help=f"the API gateway stage ({default.stage}; apigw only)")
    local.add_argument(
        "--bootstrap",
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
        metavar="MODULE.ATTR",
        help=f"the function's handler setting, given to the instance as {ENV_HANDLER} (default: "
        "MODULE:ATTR); what `scf-asgi run` with no app in a bootstrap serves",
    )
    local.add_argument(
        "--instances",
        type=int,
        metavar="N",
        help="up to N instances serve concurrent requests, each cold-started on first use and "
        f"each handling one request at a time ({default.instances})",
    )
    local.add_argument(
        "--timeout-ms",
        type=int,
        help="the function timeout: an invocation still running then is answered 502 and its "
        f"instance killed ({default.timeout_ms})",
    )
    local.add_argument(
        "--memory-mb",
        type=int,
        help=f"memory_limit_in_mb given to the instance ({default.memory_mb}; reported, not "
        "enforced)",
    )
    local.add_argument(
        "--init-timeout-ms",
        type=int,
        help="time an instance has to post /runtime/init/ready (web mode: to listen) before it "
        f"is killed ({default.init_timeout_ms}, the platform's default)",
    )
    local.add_argument(
        "--host-header",
        metavar="HOST",
        help="send this Host in events instead of the browser's (e.g. a gateway default domain, "
        "to see the stage root path and https URLs the app builds there)",
    )
    local.add_argument("--function-name", help=f"{ENV_FUNCTION_NAME} ({default.function_name})")
    local.add_argument("--region", help=f"{ENV_REGION} ({default.region})")
    local.add_argument(
        "--env",
        dest="environment",
        action="append",
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
        metavar="PATH",
        help=f"where the invocation inspector is served, never forwarded to the app "
        f"({default.inspector_path})",
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
        metavar="N",
        help=f"how many invocations the inspector keeps ({default.history})",
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
    invoke.add_argument("--host", default=LocalConfig.host, help="where `scf-asgi local` listens")
    invoke.add_argument(
        "--port", type=int, default=LocalConfig.port, help=f"its port ({LocalConfig.port})"
    )
    invoke.add_argument(
        "--inspector-path",
        default=LocalConfig.inspector_path,
        metavar="PATH",
        help=f"its --inspector-path ({LocalConfig.inspector_path})",
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
    """The LocalConfig of the flags given (`scf-asgi run`'s options among them)."""
    given = options.given(args)
    passed_on = {name: value for name, value in given.items() if name != "access_log"}
    if getattr(args, "bootstrap", None) and passed_on:
        print(
            "scf-asgi: warning: options for `scf-asgi run` are ignored with --bootstrap "
            "(put them in the bootstrap script): "
            + ", ".join(options.BY_NAME[name].flag for name in passed_on),
            file=sys.stderr,
        )
    settings: dict[str, Any] = {
        name: value
        for name, value in vars(args).items()
        if name in LocalConfig.__annotations__ and name not in options.BY_NAME
    }
    if "environment" in settings:
        settings["environment"] = _parse_env(settings["environment"])
    if "access_log" in given:
        settings["access_log"] = given["access_log"]
    return LocalConfig(**settings, run_args=options.to_argv(given))


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
    authority = f"[{args.host}]" if ":" in args.host else args.host
    if args.port != 80:
        authority += f":{args.port}"
    # The inspector runs a posted event only when the post says it comes from the inspector's
    # own origin (which no other web page's can claim).
    headers = {
        "Content-Type": "application/json",
        "Host": authority,
        "Origin": f"http://{authority}",
    }
    # http.client, not urllib: no proxy from the environment for a server on this machine.
    connection = http.client.HTTPConnection(args.host, args.port, timeout=None)
    try:
        connection.request("POST", path, event, headers)
        response = connection.getresponse()
        status, body = response.status, response.read()
    except OSError as exc:
        raise ConfigurationError(
            f"no `scf-asgi local` answers on {args.host}:{args.port} ({exc})"
        ) from None
    finally:
        connection.close()
    text = body.decode("utf-8", "replace")
    result = response.getheader(RESULT_HEADER)
    if status == 200 and result == "response":
        sys.stdout.write(text + ("" if text.endswith("\n") else "\n"))
        return 0
    if result == "error":
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
