"""Every option of `Adapter` / `serve()`, written once: name, default, choices, help, flag.

`Adapter` checks its keywords with `check`; ``scf-asgi run``, ``scf-asgi local`` and
``scf-asgi package`` build their flags with `add_arguments`, read back what was given with
`given`, and turn options into the flags of a ``scf-asgi run`` command line with `to_argv` (the
emulator's instance, a generated ``bootstrap``). The README's options table is checked against
this module by a test.
"""

from __future__ import annotations

from .errors import ConfigurationError
from .platform import MAX_PAYLOAD_BYTES

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Mapping, Sequence
    from typing import Any

__all__ = [
    "BY_NAME",
    "OPTIONS",
    "Option",
    "add_arguments",
    "check",
    "given",
    "parse_flags",
    "to_argv",
]

# How an option is written on a command line.
CHOICE = "choice"  # one of `choices`
TEXT = "text"  # free text, or None
TEXTS = "texts"  # a list of text; the flag is repeated
REFERENCE = "reference"  # a callable in Python, MODULE:ATTR on a command line
SWITCH = "switch"  # True or False; the flag (`--no-...`) turns it off
COUNT = "count"  # a whole number above 0


class Option:
    """One option of the adapter."""

    __slots__ = ("name", "default", "help", "kind", "choices", "metavar", "example")

    def __init__(
        self,
        name: str,
        default: Any,
        help: str,
        *,
        kind: str = CHOICE,
        choices: tuple[str, ...] = (),
        metavar: str | None = None,
        example: str | None = None,
    ) -> None:
        self.name = name
        self.default = default
        self.help = help
        self.kind = kind
        self.choices = choices
        self.metavar = metavar
        self.example = example  # a typical value, for the documentation

    @property
    def flag(self) -> str:
        """The command-line flag: ``--base-path``, ``--text-mime-type``, ``--no-access-log``."""
        words = self.name.replace("_", "-")
        if self.kind == SWITCH:
            return "--no-" + words
        if self.kind == TEXTS:
            return "--" + words.rstrip("s")
        return "--" + words

    def __repr__(self) -> str:
        return f"Option({self.name!r}, default={self.default!r})"


OPTIONS: tuple[Option, ...] = (
    Option(
        "interface",
        "auto",
        "how to call the app: auto tells ASGI 3, ASGI 2 and WSGI callables apart",
        choices=("auto", "asgi", "wsgi"),
    ),
    Option(
        "lifespan",
        "auto",
        "ASGI lifespan, once per instance: auto uses it if the app supports it; on makes a "
        "missing or failing lifespan a start-up error",
        choices=("auto", "on", "off"),
    ),
    Option(
        "base_path",
        None,
        "a public path prefix (a custom domain's path mapping, e.g. /api) stripped from the "
        "path on a segment boundary (/api/x and /api, never /apiary) and given to the app as "
        "root_path / SCRIPT_NAME, so that its URL builder makes public URLs",
        kind=TEXT,
        metavar="PATH",
        example="/api",
    ),
    Option(
        "stage_prefix",
        "auto",
        "put /<stage> (e.g. /release) in front of root_path: auto does it only for requests "
        "through the gateway's default domain (service-xxx-123.gz.apigw.tencentcs.com), whose "
        "public URLs carry the stage while the event's path does not",
        choices=("auto", "on", "off"),
    ),
    Option(
        "text_mime_types",
        (),
        "more response types to send as text, exact (application/vnd.api) or a family "
        "(application/*); the flag is repeated, one type each",
        kind=TEXTS,
        metavar="TYPE",
        example="application/x-ndjson",
    ),
    Option(
        "event_handler",
        None,
        "a function(event, context), sync or async, for non-HTTP triggers (timer, COS, CMQ, "
        "CKafka, CLS); its JSON-serialisable result is the invocation's result",
        kind=REFERENCE,
        metavar="MODULE:ATTR",
        example="jobs:on_event",
    ),
    Option(
        "app_errors",
        "response",
        "an exception in the app becomes a plain 500 Internal Server Error (response; the "
        "traceback goes to the log, never to the client), or an invocation error the platform "
        "counts as a failure (invocation; the answer then waits for the app to return, since "
        "Starlette's error middleware sends its own 500 before re-raising)",
        choices=("response", "invocation"),
    ),
    Option(
        "access_log",
        True,
        "one line per invocation on stdout: request id, method, path, status, milliseconds "
        "(about 10 us where a collector reads stdout)",
        kind=SWITCH,
    ),
    Option(
        "loop",
        "auto",
        "the event loop of an ASGI app: uvloop (the scf-asgi[speed] extra), or asyncio's own; "
        "auto takes uvloop when it is installed",
        choices=("auto", "asyncio", "uvloop"),
    ),
    Option(
        "max_body_bytes",
        MAX_PAYLOAD_BYTES,
        "the largest request body the app is given, once decoded from base64; a larger one "
        "is answered 413 Payload Too Large without being decoded (the platform's own limit on "
        "an event is about 6 MB)",
        kind=COUNT,
        metavar="BYTES",
    ),
    Option(
        "root_path_in_path",
        "auto",
        "whether the ASGI path starts with root_path: auto says yes, as uvicorn sends it, "
        "except for Falcon, which routes on the path without it",
        choices=("auto", "on", "off"),
    ),
)

BY_NAME: dict[str, Option] = {option.name: option for option in OPTIONS}


def check(name: str, value: Any) -> None:
    """Raise ConfigurationError if `value` is not a valid value of option `name`."""
    option = BY_NAME[name]
    kind = option.kind
    if kind == CHOICE:
        if value not in option.choices:
            choices = ", ".join(repr(choice) for choice in option.choices)
            raise ConfigurationError(f"{name} must be one of {choices}, got {value!r}")
    elif kind == TEXT:
        if value is not None and not isinstance(value, str):
            raise ConfigurationError(f"{name} must be a str or None, got {type(value).__name__}")
    elif kind == TEXTS:
        if isinstance(value, (str, bytes)):
            raise ConfigurationError(f"{name} must be a list of str, not a single {type(value)}")
        try:
            items = list(value)
        except TypeError:
            raise ConfigurationError(f"{name} must be a list of str") from None
        if not all(isinstance(item, str) for item in items):
            raise ConfigurationError(f"{name} must be a list of str, got {items!r}")
    elif kind == REFERENCE:
        if value is not None and not callable(value):
            raise ConfigurationError(f"{name} must be callable, got {type(value).__name__}")
    elif kind == SWITCH and not isinstance(value, bool):
        raise ConfigurationError(f"{name} must be True or False, got {value!r}")
    elif kind == COUNT and (value.__class__ is not int or value < 1):
        raise ConfigurationError(f"{name} must be a whole number above 0, got {value!r}")


def add_arguments(parser: Any) -> None:
    """Add a flag for every option to `parser` (an argparse parser or argument group); an
    option not given is absent from the parsed namespace."""
    import argparse

    for option in OPTIONS:
        kind = option.kind
        if kind == SWITCH:
            parser.add_argument(
                option.flag,
                dest=option.name,
                action="store_false",
                default=argparse.SUPPRESS,
                help=f"turn off {option.name}: {option.help}",
            )
            continue
        default = "" if option.default in (None, ()) else f" (default: {option.default})"
        parser.add_argument(
            option.flag,
            dest=option.name,
            default=argparse.SUPPRESS,
            type=int if kind == COUNT else None,
            choices=option.choices or None,
            action="append" if kind == TEXTS else "store",
            metavar=option.metavar,
            help=option.help + default,
        )


_BY_FLAG: dict[str, Option] = {option.flag: option for option in OPTIONS}


def parse_flags(argv: Sequence[str]) -> tuple[list[str], dict[str, Any]] | None:
    """The positional words and the options of a command line made of these flags only
    (``--flag value``, ``--flag=value``, ``--no-access-log``), as argparse would read them;
    None for anything else (``--help``, an unknown flag, a value argparse would refuse), which
    is then argparse's to explain."""
    positional: list[str] = []
    found: dict[str, Any] = {}
    words = iter(argv)
    for word in words:
        if not word.startswith("-"):
            positional.append(word)
            continue
        flag, equals, value = word.partition("=")
        option = _BY_FLAG.get(flag)
        if option is None:
            return None
        if option.kind == SWITCH:
            if equals:
                return None
            found[option.name] = False
            continue
        if not equals:
            value = next(words, "")
            if not value or value.startswith("-"):
                return None
        if option.kind == CHOICE and value not in option.choices:
            return None
        if option.kind == COUNT:
            if not (value.isascii() and value.isdigit()):
                return None
            found[option.name] = int(value)
        elif option.kind == TEXTS:
            found.setdefault(option.name, []).append(value)
        else:
            found[option.name] = value
    return positional, found


def given(namespace: argparse.Namespace) -> dict[str, Any]:
    """The options given on the command line (references still as MODULE:ATTR text)."""
    found = vars(namespace)
    return {name: found[name] for name in BY_NAME if name in found}


def to_argv(options: Mapping[str, Any]) -> list[str]:
    """The ``scf-asgi run`` flags that give these options; a reference must be MODULE:ATTR."""
    argv: list[str] = []
    for name, value in options.items():
        option = BY_NAME[name]
        kind = option.kind
        if kind == SWITCH:
            if not value:
                argv.append(option.flag)
        elif kind == TEXTS:
            for item in value:
                argv += [option.flag, item]
        elif kind == REFERENCE and not isinstance(value, str):
            raise ConfigurationError(f"{name} must be given as MODULE:ATTR here, got {value!r}")
        elif value is not None:
            argv += [option.flag, str(value)]
    return argv
