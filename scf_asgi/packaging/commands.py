"""``scf-asgi package`` and ``scf-asgi bootstrap``.

    scf-asgi package [MODULE:ATTR] [--source DIR] [-o FILE.zip] [--python 3.10] [--web]
    scf-asgi bootstrap MODULE:ATTR [--web] [--python 3.10] [-o DIR]

Both read ``[tool.scf-asgi]`` of the nearest ``pyproject.toml`` (see `scf_asgi.project`);
flags override it. The adapter's options (``--base-path``, ``--event-handler``, ...) are built
from `scf_asgi.options` and written into the bootstrap as flags of ``scf-asgi run``.
"""

from __future__ import annotations

import sys

from .. import options
from ..errors import ConfigurationError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from pathlib import Path
    from typing import Any

    from .target import Target

__all__ = [
    "ProjectConfig",
    "add_package_arguments",
    "add_parsers",
    "bootstrap_command",
    "is_reference",
    "package_command",
    "resolve",
]


def add_package_arguments(parser: Any) -> None:
    """The flags `package` and `deploy` share (what goes into the zip)."""
    import argparse

    parser.add_argument(
        "app", nargs="?", help="MODULE:ATTR of the app (default: `app` in [tool.scf-asgi])"
    )
    parser.add_argument(
        "--source", metavar="DIR", help="the app's folder (default: the current folder)"
    )
    parser.add_argument(
        "--python",
        metavar="X.Y",
        help="the CPython version the function runs (default: this interpreter's)",
    )
    parser.add_argument(
        "--interpreter",
        metavar="PATH",
        help="a CPython X.Y on this machine to install and compile with (default: searched)",
    )
    # Switches that [tool.scf-asgi] can set, so each has its --no- form to turn it off.
    parser.add_argument(
        "--web",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="a web function: an scf_bootstrap serving the app over HTTP (uvicorn / gunicorn)",
    )
    parser.add_argument(
        "--speed",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="put scf-asgi's [speed] extra in the zip (uvloop and orjson: less CPU per "
        "invocation, some milliseconds more at every cold start; see the README)",
    )
    parser.add_argument(
        "--exclude",
        action="append",
        metavar="GLOB",
        help="leave out paths matching GLOB (repeatable; a name without / matches at any depth)",
    )
    parser.add_argument(
        "--include-dotenv",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="package .env files too (left out by default: they mostly hold secrets)",
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="print only errors")
    parser.add_argument(
        "--json", action="store_true", help="print a machine-readable summary on stdout"
    )
    options.add_arguments(
        parser.add_argument_group("options of `scf-asgi run`, written into the bootstrap")
    )


def add_parsers(commands: Any) -> None:
    package = commands.add_parser(
        "package",
        help="build the deployable zip of an app (dependencies for SCF's Linux, bootstrap)",
        description=(
            "Build a zip SCF runs as it is: the app's files, its dependencies installed for "
            "CPython X.Y on Linux x86_64 (binary manylinux wheels only, Requires-Python "
            "checked), scf-asgi itself, .pyc for the target when a CPython X.Y is on this "
            "machine, and a `bootstrap` (or, with --web, an `scf_bootstrap`)."
        ),
    )
    add_package_arguments(package)
    package.add_argument(
        "-o", "--output", metavar="FILE.zip", help="default: dist/<folder name>.zip"
    )
    package.set_defaults(command_main=package_command)

    import argparse

    bootstrap = commands.add_parser(
        "bootstrap",
        help="write just the bootstrap (or scf_bootstrap) for your own build",
        description=(
            "Write the `bootstrap` file (with --web: `scf_bootstrap`) that `scf-asgi package` "
            "puts in a zip, for a build of your own: it expects the dependencies, scf-asgi "
            "included, in vendor/ beside it (and uvicorn or gunicorn for --web)."
        ),
    )
    bootstrap.add_argument("app", nargs="?", help="MODULE:ATTR of the app")
    bootstrap.add_argument(
        "--web", action=argparse.BooleanOptionalAction, default=None, help="scf_bootstrap"
    )
    bootstrap.add_argument(
        "--python", metavar="X.Y", help="the CPython version (default: this interpreter's)"
    )
    bootstrap.add_argument(
        "-o", "--output-dir", metavar="DIR", default=".", help="where to write it (.)"
    )
    bootstrap.add_argument("--force", action="store_true", help="replace an existing file")
    options.add_arguments(
        bootstrap.add_argument_group("options of `scf-asgi run`, written into the bootstrap")
    )
    bootstrap.set_defaults(command_main=bootstrap_command)


def is_reference(text: str) -> bool:
    """Whether `text` is MODULE:ATTR (or MODULE.ATTR, SCF's handler form) of Python names, as
    `scf_asgi.cli.load_app` reads it: nothing else may be written into a bootstrap."""
    module, sep, attr = text.partition(":")
    if not sep:
        module, _, attr = text.rpartition(".")
    names = [*module.split("."), *attr.split(".")]
    return bool(module and attr) and all(name.isidentifier() for name in names)


class ProjectConfig:
    """The settings of one command run: ``[tool.scf-asgi]`` with the flags laid over it."""

    def __init__(self, args: argparse.Namespace) -> None:
        from pathlib import Path

        from ..project import find_pyproject, load_settings

        # The project file of the app's folder when --source names one, else of the cwd.
        source = getattr(args, "source", None)
        self.pyproject = find_pyproject(Path(source).resolve() if source else Path.cwd())
        self.settings = load_settings(self.pyproject)
        self.args = args

    def get(self, name: str, default: Any = None) -> Any:
        value = getattr(self.args, name, None)
        if value is not None:
            return value
        return self.settings.get(name, default)

    def adapter_options(self) -> dict[str, Any]:
        merged = dict(self.settings.get("options", {}))
        merged.update(options.given(self.args))
        for name, value in merged.items():
            option = options.BY_NAME[name]
            if option.kind == options.REFERENCE and value and not is_reference(value):
                raise ConfigurationError(
                    f"{option.flag} {value!r}: expected MODULE:ATTR, Python names separated by dots"
                )
        return merged

    def source(self) -> Path:
        """The app folder: --source, else `source` of the file (relative to it), else cwd."""
        from pathlib import Path

        if getattr(self.args, "source", None):
            return Path(self.args.source)
        if "source" in self.settings and self.pyproject is not None:
            return self.pyproject.parent / str(self.settings["source"])
        return Path.cwd()

    def app(self) -> str:
        app = self.get("app")
        if not app:
            raise ConfigurationError(
                "no app given: pass MODULE:ATTR or set app in [tool.scf-asgi] of pyproject.toml"
            )
        if not isinstance(app, str) or not is_reference(app):
            raise ConfigurationError(
                f"cannot read app reference {app!r}: expected MODULE:ATTR, Python names "
                "separated by dots (app:app, mysite.wsgi:application)"
            )
        return app

    def version(self) -> tuple[int, int]:
        from .target import parse_version

        text = self.get("python")
        return parse_version(text) if text else sys.version_info[:2]


def _check_version(version: tuple[int, int]) -> None:
    """scf-asgi's own Requires-Python, read from its metadata."""
    from importlib import metadata

    from .progress import require

    requires = metadata.metadata("scf-asgi").get("Requires-Python") or ""
    specifiers = require("packaging.specifiers", "package")
    series = f"{version[0]}.{version[1]}"
    if requires and not specifiers.SpecifierSet(requires).contains(f"{series}.99"):
        raise ConfigurationError(
            f"scf-asgi needs Python {requires}; --python {series} cannot run it"
        )


def resolve(config: ProjectConfig) -> tuple[Any, Target]:
    """The build spec of `package` (and `deploy`), and its target."""
    from pathlib import Path

    from .build import PackageSpec
    from .progress import require
    from .target import Target, find_interpreter

    require("packaging.specifiers", "package")
    version = config.version()
    _check_version(version)
    target = Target(version, find_interpreter(version, config.get("interpreter")))
    app = config.app()
    source = config.source()
    output_flag = getattr(config.args, "output", None)
    output = Path(output_flag) if output_flag else Path("dist") / f"{source.resolve().name}.zip"
    if output.is_dir():
        raise ConfigurationError(f"-o {output}: a folder; name the zip to write")
    web = bool(config.get("web", False))
    adapter_options = config.adapter_options()
    interface = adapter_options.get("interface", "auto")
    if web:
        ignored = sorted(set(adapter_options) - {"interface"})
        if ignored:
            flags = ", ".join(options.BY_NAME[name].flag for name in ignored)
            raise ConfigurationError(
                f"{flags}: options of the event runtime; a web function serves raw HTTP with "
                "uvicorn or gunicorn, which take none of them"
            )
    excludes = list(config.settings.get("exclude", [])) + list(
        getattr(config.args, "exclude", None) or []
    )
    spec = PackageSpec(
        app=app,
        source=source,
        output=output.resolve(),
        target=target,
        web=web,
        speed=bool(config.get("speed", False)),
        interface=interface,
        run_argv=options.to_argv(adapter_options),
        excludes=excludes,
        include_dotenv=bool(config.get("include_dotenv", False)),
    )
    return spec, target


def package_command(args: argparse.Namespace) -> int:
    from .build import build_package, dumps
    from .progress import Reporter

    config = ProjectConfig(args)
    reporter = Reporter(quiet=args.quiet, json_output=args.json)
    spec, _ = resolve(config)
    summary = build_package(spec, reporter)
    if args.json:
        print(dumps(summary))
    return 0


def bootstrap_command(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .bootstrap import EVENT_BOOTSTRAP, WEB_BOOTSTRAP, event_bootstrap, web_bootstrap

    config = ProjectConfig(args)
    app = config.app()
    version = config.version()
    _check_version(version)
    adapter_options = config.adapter_options()
    if config.get("web", False):
        interface = adapter_options.pop("interface", "auto")
        if adapter_options:
            flags = ", ".join(options.BY_NAME[name].flag for name in adapter_options)
            raise ConfigurationError(f"{flags}: options of the event runtime, not of --web")
        name = WEB_BOOTSTRAP
        web_argv = [] if interface == "auto" else ["--interface", interface]
        text = web_bootstrap(app, web_argv, version, made_by="scf-asgi bootstrap")
    else:
        name = EVENT_BOOTSTRAP
        text = event_bootstrap(
            app, options.to_argv(adapter_options), version, made_by="scf-asgi bootstrap"
        )
    path = Path(args.output_dir) / name
    if path.exists() and not args.force:
        if path.read_text(encoding="utf-8", errors="replace") == text:
            print(f"{path} is up to date")
            return 0
        raise ConfigurationError(f"{path} exists: pass --force to replace it")
    from .build import write_script

    path.parent.mkdir(parents=True, exist_ok=True)
    write_script(path, text)
    print(f"wrote {path} (CPython {version[0]}.{version[1]})")
    return 0
