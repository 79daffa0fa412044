"""`scf_asgi.options` is the one place an option is written: the Adapter's keywords, every
command's flags and the README's table all follow it.

Rewrite the README's table after changing an option: python -m tests.test_options --write
"""

from __future__ import annotations

import argparse
import inspect
import sys
from pathlib import Path
from typing import Any

import pytest

from scf_asgi import Adapter, options

README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- options:start -->", "<!-- options:end -->"


def _values(option: options.Option) -> str:
    if option.kind == options.CHOICE:
        return ", ".join(f'`"{choice}"`' for choice in option.choices)
    if option.kind == options.SWITCH:
        return "`True`, `False`"
    if option.kind == options.COUNT:
        return f"`{option.default}`"
    default = "`()`" if option.kind == options.TEXTS else "`None`"
    return f'{default}, e.g. `"{option.example}"`' if option.example else default


def render_table() -> str:
    rows = [
        "| option | flag | values (default first) | what it does |",
        "|---|---|---|---|",
    ]
    for option in options.OPTIONS:
        flag = option.flag + (f" {option.metavar}" if option.metavar else "")
        if option.kind == options.CHOICE:
            flag = f"{option.flag} {{{','.join(option.choices)}}}"
        rows.append(f"| `{option.name}` | `{flag}` | {_values(option)} | {option.help} |")
    return "\n".join(rows)


def with_table(readme: str) -> str:
    head, _, rest = readme.partition(START)
    _, _, tail = rest.partition(END)
    return f"{head}{START}\n{render_table()}\n{END}{tail}"


def test_readme_options_table_is_up_to_date() -> None:
    readme = README.read_text(encoding="utf-8")
    assert START in readme and END in readme, f"README.md has lost its {START} / {END} lines"
    assert readme == with_table(readme), "stale: python -m tests.test_options --write"


def test_the_adapters_keywords_are_the_options_with_their_defaults() -> None:
    parameters = inspect.signature(Adapter).parameters
    keywords = {
        name: parameter.default
        for name, parameter in parameters.items()
        if parameter.kind is parameter.KEYWORD_ONLY
    }
    assert keywords == {option.name: option.default for option in options.OPTIONS}


def parse(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser()
    options.add_arguments(parser)
    return options.given(parser.parse_args(argv))


def test_options_survive_the_trip_to_a_command_line_and_back() -> None:
    chosen = {
        "interface": "wsgi",
        "lifespan": "off",
        "base_path": "/api",
        "stage_prefix": "on",
        "text_mime_types": ["application/x-ndjson", "application/*"],
        "event_handler": "jobs:on_event",
        "app_errors": "invocation",
        "access_log": False,
        "loop": "asyncio",
        "max_body_bytes": 1024,
        "root_path_in_path": "off",
    }
    assert set(chosen) == set(options.BY_NAME)  # every option is tried
    argv = options.to_argv(chosen)
    assert argv == [
        "--interface",
        "wsgi",
        "--lifespan",
        "off",
        "--base-path",
        "/api",
        "--stage-prefix",
        "on",
        "--text-mime-type",
        "application/x-ndjson",
        "--text-mime-type",
        "application/*",
        "--event-handler",
        "jobs:on_event",
        "--app-errors",
        "invocation",
        "--no-access-log",
        "--loop",
        "asyncio",
        "--max-body-bytes",
        "1024",
        "--root-path-in-path",
        "off",
    ]
    assert parse(argv) == chosen
    assert parse([]) == {}  # nothing given: the Adapter's defaults apply
    assert options.to_argv({"access_log": True, "base_path": None}) == []


def test_a_choice_outside_the_options_choices_is_refused_by_the_command_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        parse(["--lifespan", "maybe"])
    assert "invalid choice: 'maybe' (choose from" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["app:app"],
        ["app:app", "--base-path", "/api", "--no-access-log"],
        ["--base-path=/api", "app:app", "--text-mime-type", "a/b", "--text-mime-type=c/d"],
        ["app:app", "--max-body-bytes", "10", "--loop=asyncio", "--event-handler", "jobs:f"],
    ],
)
def test_the_quick_reading_of_run_flags_is_argparses(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("app", nargs="?")
    options.add_arguments(parser)
    namespace = parser.parse_args(argv)
    positional = [namespace.app] if namespace.app else []
    assert options.parse_flags(argv) == (positional, options.given(namespace))


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["app:app", "-h"],
        ["app:app", "--unknown"],
        ["app:app", "--lifespan", "maybe"],
        ["app:app", "--max-body-bytes", "ten"],
        ["app:app", "--base-path"],
        ["app:app", "--no-access-log=yes"],
    ],
)
def test_anything_unusual_is_left_to_argparse(argv: list[str]) -> None:
    assert options.parse_flags(argv) is None


def test_a_callable_event_handler_cannot_be_written_as_a_flag() -> None:
    with pytest.raises(Exception, match="must be given as MODULE:ATTR"):
        options.to_argv({"event_handler": print})


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        README.write_text(with_table(README.read_text(encoding="utf-8")), encoding="utf-8")
    else:
        print(render_table())
