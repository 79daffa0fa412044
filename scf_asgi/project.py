"""A project's settings for `package` and `deploy`: ``[tool.scf-asgi]`` in ``pyproject.toml``.

    [tool.scf-asgi]
    app = "app:app"              # MODULE:ATTR
    function = "my-service"      # the function's name (default: the source folder's name)
    region = "ap-guangzhou"
    namespace = "default"
    memory = 256                 # MB
    timeout = 30                 # seconds
    init-timeout = 65            # seconds
    env = { LOG_LEVEL = "info" }
    exclude = ["tests", "*.md"]
    include-dotenv = false        # true: .env files go into the zip too
    python = "3.10"
    web = false
    speed = false                # true: uvloop and orjson (the [speed] extra) in the zip
    source = "."
    base-path = "/api"           # any option of `scf-asgi run`, by its flag's name

Keys may be written with ``-`` or ``_``. Flags on the command line override the file; an
unknown key or a value of the wrong type is an error that names it, so a typo is never
silently ignored.
"""

from __future__ import annotations

import sys
from pathlib import Path

from . import options
from .errors import ConfigurationError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["SETTINGS", "find_pyproject", "load_settings", "read_toml"]

# The project settings other than the adapter's options, and the type each must have.
SETTINGS: dict[str, tuple[type, ...]] = {
    "app": (str,),
    "source": (str,),
    "function": (str,),
    "region": (str,),
    "namespace": (str,),
    "memory": (int,),
    "timeout": (int,),
    "init_timeout": (int,),
    "env": (dict,),
    "exclude": (list,),
    "include_dotenv": (bool,),
    "python": (str,),
    "web": (bool,),
    "speed": (bool,),
    "cos_bucket": (str,),
    "publish": (bool,),
}


def find_pyproject(start: Path) -> Path | None:
    """The ``pyproject.toml`` in `start` or the nearest folder above it."""
    for folder in (start, *start.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def read_toml(path: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised by the suite's 3.9 run
        try:
            import tomli as tomllib
        except ImportError:
            raise ConfigurationError(
                "reading pyproject.toml on Python < 3.11 needs tomli: "
                "pip install 'scf-asgi[package]'"
            ) from None
    try:
        with path.open("rb") as file:
            data: dict[str, Any] = tomllib.load(file)
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"cannot read {path}: {exc}") from None
    return data


def load_settings(path: Path | None) -> dict[str, Any]:
    """The ``[tool.scf-asgi]`` table of `path` (a pyproject.toml), checked: setting names with
    ``_``, adapter options under their option names. Empty when there is no file or table."""
    if path is None:
        return {}
    table = read_toml(path).get("tool", {}).get("scf-asgi", {})
    if not isinstance(table, dict):
        raise ConfigurationError(f"{path}: [tool.scf-asgi] must be a table")
    settings: dict[str, Any] = {}
    value: Any
    for key, value in table.items():
        name = key.replace("-", "_")
        if name in SETTINGS:
            types = SETTINGS[name]
            # bool is an int in Python, but `memory = true` is a mistake
            if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
                expected = " or ".join(t.__name__ for t in types)
                raise ConfigurationError(
                    f"{path}: [tool.scf-asgi] {key} must be a {expected}, got {value!r}"
                )
            if isinstance(value, dict):
                bad = [k for k, v in value.items() if not isinstance(v, str)]
                if bad:
                    raise ConfigurationError(
                        f"{path}: [tool.scf-asgi] env values must be strings: {', '.join(bad)}"
                    )
            if isinstance(value, list) and not all(isinstance(item, str) for item in value):
                raise ConfigurationError(f"{path}: [tool.scf-asgi] exclude must list strings")
            settings[name] = value
        elif name in options.BY_NAME or name.rstrip("s") + "s" in options.BY_NAME:
            # the adapter's options, checked against options.py (text_mime_type -> ..._types)
            option_name = name if name in options.BY_NAME else name.rstrip("s") + "s"
            option = options.BY_NAME[option_name]
            if option.kind == options.REFERENCE:
                if not isinstance(value, str):
                    raise ConfigurationError(
                        f"{path}: [tool.scf-asgi] {key} must be MODULE:ATTR text, got {value!r}"
                    )
            else:
                try:
                    options.check(option_name, value)
                except ConfigurationError as exc:
                    raise ConfigurationError(f"{path}: [tool.scf-asgi] {exc}") from None
            settings.setdefault("options", {})[option_name] = value
        else:
            known = ", ".join(sorted(k.replace("_", "-") for k in SETTINGS))
            raise ConfigurationError(
                f"{path}: unknown key {key!r} in [tool.scf-asgi] (known: {known}, and the "
                "options of `scf-asgi run`)"
            )
    return settings
