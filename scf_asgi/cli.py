"""The `scf-asgi` command (also `python -m scf_asgi`).

scf-asgi run [MODULE:ATTR]     serve an app on the Custom Runtime (the `bootstrap` command);
                               with no argument, the platform's _HANDLER variable names it
scf-asgi local MODULE:ATTR     run it on this machine behind an emulated API gateway and
                               Custom Runtime, with the platform's behaviour (see local.py)
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from .errors import ConfigurationError, SCFAsgiError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

__all__ = ["load_app", "main"]


def load_app(reference: str) -> Any:
    """Import `module:attr` or `module.attr` (the form of SCF's handler setting) from the cwd."""
    module_name, sep, attr = reference.partition(":")
    if not sep:
        module_name, _, attr = reference.rpartition(".")
    if not module_name or not attr:
        raise ConfigurationError(
            f"cannot read app reference {reference!r}: expected MODULE:ATTR (or MODULE.ATTR)"
        )
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        # The module itself (or a package on its path) is missing; anything else it failed to
        # import is the app's own error and keeps its traceback ("fastapi" under fastapi_app).
        missing = exc.name or ""
        if missing == module_name or module_name.startswith(missing + "."):
            raise ConfigurationError(
                f"cannot import module {module_name!r} (from {reference!r}) in {cwd}"
            ) from exc
        raise
    target: Any = module
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ConfigurationError(
                f"module {module_name!r} has no attribute {attr!r} (from {reference!r})"
            ) from None
    return target


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scf-asgi", description="Run Python web apps on Tencent Cloud SCF's Custom Runtime."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser(
        "run", help="serve an app on the Custom Runtime API (what `bootstrap` runs)"
    )
    run.add_argument(
        "app", nargs="?", help="MODULE:ATTR of the app (default: the _HANDLER variable)"
    )
    run.add_argument(
        "--interface",
        choices=("auto", "asgi", "wsgi"),
        help="how to call the app (default auto: from the callable's shape)",
    )
    run.add_argument(
        "--lifespan",
        choices=("auto", "on", "off"),
        help="ASGI lifespan once per instance (default auto: if the app supports it)",
    )
    run.add_argument("--base-path", default=None, help="public path prefix to strip, e.g. /api")
    run.add_argument(
        "--stage-prefix",
        choices=("auto", "on", "off"),
        help="put /<stage> in front of root_path (default auto: on the gateway's default domain)",
    )
    run.add_argument(
        "--text-mime-type",
        action="append",
        default=[],
        dest="text_mime_types",
        metavar="TYPE",
        help="another response type to send as text, e.g. application/x-ndjson (repeatable)",
    )
    run.add_argument(
        "--event-handler",
        default=None,
        metavar="MODULE:ATTR",
        help="a function(event, context) for non-HTTP events (timer, COS, CMQ, ...)",
    )
    run.add_argument(
        "--app-errors",
        choices=("response", "invocation"),
        help="an exception in the app becomes a plain 500 (response, the default) or an "
        "invocation error",
    )
    run.add_argument("--no-access-log", action="store_true", help="no line per invocation")
    run.add_argument(
        "--root-path-in-path",
        choices=("auto", "on", "off"),
        help="whether the ASGI path starts with root_path (default auto: yes, but not for Falcon)",
    )
    _add_local_parser(commands)
    return parser


def _add_local_parser(commands: Any) -> None:
    local = commands.add_parser(
        "local",
        help="run an app locally, behind an emulated API gateway and Custom Runtime",
        description=(
            "Serve MODULE:ATTR on http://HOST:PORT/ the way SCF runs it: each request becomes an "
            "API gateway event for a function instance (`scf-asgi run` in a child process) that "
            "talks to an emulated Custom Runtime API; one event at a time, the function timeout "
            "kills the instance, the 6 MB payload limit applies. Paths starting with /STAGE/ "
            "have the stage removed, as on the gateway's default domain."
        ),
    )
    local.add_argument("app", nargs="?", help="MODULE:ATTR of the app (optional with --bootstrap)")
    local.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    local.add_argument("--port", type=int, default=8000, help="port to listen on (8000; 0: any)")
    local.add_argument("--stage", default="release", help="the gateway stage (release)")
    local.add_argument(
        "--bootstrap",
        default=None,
        metavar="PATH",
        help="run this executable as the instance (cwd: its directory) instead of `scf-asgi run`",
    )
    local.add_argument(
        "--handler",
        default=None,
        metavar="MODULE.ATTR",
        help="the function's handler setting, given to the instance as _HANDLER (default: "
        "MODULE:ATTR); what `scf-asgi run` with no app in a bootstrap serves",
    )
    local.add_argument("--timeout-ms", type=int, default=3000, help="the function timeout (3000)")
    local.add_argument(
        "--memory-mb", type=int, default=128, help="memory_limit_in_mb given to the instance"
    )
    local.add_argument(
        "--init-timeout-ms",
        type=int,
        default=30000,
        help="time the instance has to post /runtime/init/ready (30000)",
    )
    local.add_argument(
        "--host-header",
        default=None,
        metavar="HOST",
        help="send this Host in events instead of the browser's (e.g. a gateway default domain)",
    )
    local.add_argument("--function-name", default="scf-asgi-local", help="SCF_FUNCTIONNAME")
    local.add_argument("--region", default="ap-guangzhou", help="TENCENTCLOUD_REGION")
    passed = local.add_argument_group("passed on to `scf-asgi run`")
    passed.add_argument("--interface", choices=("auto", "asgi", "wsgi"), default=None)
    passed.add_argument("--lifespan", choices=("auto", "on", "off"), default=None)
    passed.add_argument("--base-path", default=None)
    passed.add_argument("--stage-prefix", choices=("auto", "on", "off"), default=None)
    passed.add_argument("--app-errors", choices=("response", "invocation"), default=None)
    passed.add_argument("--text-mime-type", action="append", default=[], dest="text_mime_types")
    passed.add_argument("--root-path-in-path", choices=("auto", "on", "off"), default=None)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "local":
            return _local(args)
    except SCFAsgiError as exc:
        print(f"scf-asgi: error: {exc}", file=sys.stderr)
        return 1
    return 2


def _run(args: argparse.Namespace) -> int:
    from .adapter import Adapter, serve
    from .runtime import RuntimeClient

    # Checked before importing the app, so a wrong environment fails at once and clearly.
    RuntimeClient.from_environ()
    reference = args.app or os.environ.get("_HANDLER", "")
    if not reference:
        raise ConfigurationError("no app given: pass MODULE:ATTR or set _HANDLER")
    app = load_app(reference)
    # Only the options given on the command line: the rest are the Adapter's defaults, and an
    # Adapter named as the app keeps its own (giving both is an error).
    options: dict[str, Any] = {
        name: getattr(args, name) for name in _RUN_OPTIONS if getattr(args, name) not in (None, [])
    }
    if args.no_access_log:
        options["access_log"] = False
    if args.event_handler:
        options["event_handler"] = load_app(args.event_handler)
    if isinstance(app, Adapter) and options:
        special = {"access_log": "--no-access-log", "text_mime_types": "--text-mime-type"}
        flags = ", ".join(special.get(name, "--" + name.replace("_", "-")) for name in options)
        raise ConfigurationError(
            f"{reference} is an Adapter, made with its own options: set {flags} there, "
            "or name its app instead"
        )
    serve(app, **options)
    return 0


# `scf-asgi run` options that are Adapter options of the same name.
_RUN_OPTIONS = (
    "interface",
    "lifespan",
    "base_path",
    "stage_prefix",
    "text_mime_types",
    "app_errors",
    "root_path_in_path",
)


def _local(args: argparse.Namespace) -> int:
    from .local import LocalConfig, run_local  # imported here: `run` never pays for it

    run_args: list[str] = []
    for option in (
        "interface",
        "lifespan",
        "base_path",
        "stage_prefix",
        "app_errors",
        "root_path_in_path",
    ):
        value = getattr(args, option)
        if value is not None:
            run_args += ["--" + option.replace("_", "-"), value]
    for media_type in args.text_mime_types:
        run_args += ["--text-mime-type", media_type]
    if args.bootstrap and run_args:
        print(
            "scf-asgi: warning: options for `scf-asgi run` are ignored with --bootstrap "
            "(put them in the bootstrap script)",
            file=sys.stderr,
        )
    if args.bootstrap and not (args.handler or args.app):
        print(
            "scf-asgi: warning: no handler setting (--handler MODULE.ATTR): the instance gets "
            "no _HANDLER, so a bootstrap running `scf-asgi run` without an app cannot start",
            file=sys.stderr,
        )
    config = LocalConfig(
        app=args.app,
        handler=args.handler,
        host=args.host,
        port=args.port,
        stage=args.stage,
        bootstrap=args.bootstrap,
        timeout_ms=args.timeout_ms,
        memory_mb=args.memory_mb,
        init_timeout_ms=args.init_timeout_ms,
        host_header=args.host_header,
        function_name=args.function_name,
        region=args.region,
        run_args=run_args,
    )
    return run_local(config)
