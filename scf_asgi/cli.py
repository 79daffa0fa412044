"""The `scf-asgi` command (also `python -m scf_asgi`).

scf-asgi run [MODULE:ATTR]     serve an app on the Custom Runtime (the `bootstrap` command);
                               with no argument, the platform's _HANDLER variable names it
scf-asgi local MODULE:ATTR     run it on this machine behind an emulated API gateway and
                               Custom Runtime, with the platform's behaviour

Each command lives with the layer it drives: `run` here, the others in the modules listed in
`COMMAND_MODULES`, each of which adds its sub-parsers in ``add_parsers(commands)`` and sets
``command_main(args) -> exit status`` as their default. The adapter's options are flags built
from `options`, never written out here.
"""

from __future__ import annotations

import importlib
import os
import sys

from . import options
from .errors import ConfigurationError, SCFAsgiError
from .platform import ENV_HANDLER

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from typing import Any

__all__ = ["COMMAND_MODULES", "load_app", "main"]

# The modules that add commands, in the order `scf-asgi --help` lists them.
COMMAND_MODULES = (
    "scf_asgi.cli",
    "scf_asgi.local.command",
    "scf_asgi.packaging.commands",
    "scf_asgi.web",
    "scf_asgi.deploy",
)


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


def build_parser() -> argparse.ArgumentParser:
    import argparse

    from . import __version__

    parser = argparse.ArgumentParser(
        prog="scf-asgi", description="Run Python web apps on Tencent Cloud SCF's Custom Runtime."
    )
    parser.add_argument("--version", action="version", version=f"scf-asgi {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parsers(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    try:
        if words[:1] == ["run"]:
            # What a bootstrap runs at every cold start: read without argparse (and without
            # the other commands' modules), which cost 8 ms of imports; anything unusual
            # (--help, an unknown flag, a bad value) goes to argparse, for its messages.
            parsed = options.parse_flags(words[1:])
            if parsed is not None and len(parsed[0]) <= 1:
                positional, given = parsed
                return run_app(positional[0] if positional else None, given)
        elif words[:1] == ["web"]:
            # What an scf_bootstrap runs at every cold start: the same, for `web`'s flags.
            from .web import parse_web_flags, serve_web

            web_settings = parse_web_flags(words[1:])
            if web_settings is not None:
                return serve_web(*web_settings)
        args = build_parser().parse_args(words)
        return int(args.command_main(args))
    except SCFAsgiError as exc:
        print(f"scf-asgi: error: {exc}", file=sys.stderr)
        return 1


# -- scf-asgi run --------------------------------------------------------------------------------


def add_parsers(commands: Any) -> None:
    run = commands.add_parser(
        "run",
        help="serve an app on the Custom Runtime API (what `bootstrap` runs)",
        description="Serve MODULE:ATTR on the Custom Runtime API until SIGTERM/SIGINT.",
    )
    run.add_argument(
        "app", nargs="?", help=f"MODULE:ATTR of the app (default: the {ENV_HANDLER} variable)"
    )
    options.add_arguments(run)
    run.set_defaults(command_main=run_command)


def run_command(args: argparse.Namespace) -> int:
    return run_app(args.app, options.given(args))


def run_app(reference: str | None, given: dict[str, Any]) -> int:
    """`scf-asgi run`: serve the app named by `reference` (else the handler setting) with the
    options `given` on the command line."""
    from .adapter import Adapter
    from .runtime import RuntimeClient, serve

    # Checked before importing the app, so a wrong environment fails at once and clearly.
    RuntimeClient.from_environ()
    reference = reference or os.environ.get(ENV_HANDLER, "")
    if not reference:
        raise ConfigurationError(f"no app given: pass MODULE:ATTR or set {ENV_HANDLER}")
    app = load_app(reference)
    # Only the options given on the command line: the rest are the Adapter's defaults, and an
    # Adapter named as the app keeps its own (giving both is an error).
    if isinstance(app, Adapter) and given:
        flags = ", ".join(options.BY_NAME[name].flag for name in given)
        raise ConfigurationError(
            f"{reference} is an Adapter, made with its own options: set {flags} there, "
            "or name its app instead"
        )
    if given.get("event_handler"):
        given["event_handler"] = load_app(given["event_handler"])
    serve(app, **given)
    return 0
