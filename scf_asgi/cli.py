"""The `scf-asgi` command (also `python -m scf_asgi`).

scf-asgi run [MODULE:ATTR]     serve an app on the Custom Runtime (the `bootstrap` command);
                               with no argument, the platform's _HANDLER variable names it
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
        if exc.name and module_name.startswith(exc.name):
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
    run.add_argument("--interface", choices=("auto", "asgi", "wsgi"), default="auto")
    run.add_argument("--lifespan", choices=("auto", "on", "off"), default="auto")
    run.add_argument("--base-path", default=None, help="public path prefix to strip, e.g. /api")
    run.add_argument(
        "--stage-prefix",
        choices=("auto", "on", "off"),
        default="auto",
        help="put /<stage> in front of root_path (auto: on the gateway's default domain only)",
    )
    run.add_argument(
        "--text-mime-type",
        action="append",
        default=[],
        dest="text_mime_types",
        help="another response type to send as text (repeatable)",
    )
    run.add_argument(
        "--event-handler", default=None, help="MODULE:ATTR of a handler for non-HTTP events"
    )
    run.add_argument("--app-errors", choices=("response", "invocation"), default="response")
    run.add_argument("--no-access-log", action="store_true", help="no line per invocation")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            return _run(args)
    except SCFAsgiError as exc:
        print(f"scf-asgi: error: {exc}", file=sys.stderr)
        return 1
    return 2


def _run(args: argparse.Namespace) -> int:
    from .adapter import Adapter
    from .runtime import RuntimeClient

    # Checked before importing the app, so a wrong environment fails at once and clearly.
    RuntimeClient.from_environ()
    reference = args.app or os.environ.get("_HANDLER", "")
    if not reference:
        raise ConfigurationError("no app given: pass MODULE:ATTR or set _HANDLER")
    app = load_app(reference)
    handler = load_app(args.event_handler) if args.event_handler else None
    Adapter(
        app,
        interface=args.interface,
        lifespan=args.lifespan,
        base_path=args.base_path,
        stage_prefix=args.stage_prefix,
        text_mime_types=args.text_mime_types,
        event_handler=handler,
        app_errors=args.app_errors,
        access_log=not args.no_access_log,
    ).serve()
    return 0
