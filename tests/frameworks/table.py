"""Print the README's "Frameworks" table from `matrix.py`, or write it into the README.

    python -m tests.frameworks.table                   print the table
    python -m tests.frameworks.table --write README.md replace the text between the markers

Versions are those installed where this runs (importlib.metadata).
"""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from .matrix import COMMON, FEATURES, FRAMEWORKS, Framework

START_MARKER = "<!-- frameworks:start -->"
END_MARKER = "<!-- frameworks:end -->"
NO_PACKAGE = {"WSGI": "PEP 3333", "ASGI": "ASGI 3.0"}


def installed_version(framework: Framework) -> str:
    if framework.distribution is None:
        return NO_PACKAGE[framework.interface]
    try:
        return version(framework.distribution)
    except PackageNotFoundError:
        return "not installed"


def covered_text(framework: Framework) -> str:
    covered = framework.covered()
    missing = [feature for feature in COMMON if feature not in covered]
    if not missing:
        parts = ["all common cases"]
    elif len(missing) == len(COMMON):
        parts = []
    else:
        parts = ["common cases except " + ", ".join(FEATURES[feature] for feature in missing)]
    parts.extend(FEATURES[feature] for feature in covered if feature not in COMMON)
    if framework.pending:
        parts.append("the rest pending an adapter fix (see `tests/frameworks/matrix.py`)")
    return "; ".join(parts)


def render_table() -> str:
    lines = [
        "Every claim below is a test in `tests/frameworks/`, run through `Adapter` with a small "
        "real app per framework. The common cases are: "
        + ", ".join(FEATURES[feature] for feature in COMMON)
        + ".",
        "",
        "| Framework | Interface | Version tested | Covered |",
        "|---|---|---|---|",
    ]
    for framework in FRAMEWORKS:
        lines.append(
            f"| {framework.name} | {framework.interface} | {installed_version(framework)} "
            f"| {covered_text(framework)} |"
        )
    lines += [
        "",
        "WebSockets cannot work: an API gateway event carries one HTTP request and takes one "
        "answer, so a WebSocket route is never reached (the framework answers the plain HTTP "
        "request, e.g. 404).",
    ]
    return "\n".join(lines)


def readme_region(text: str) -> tuple[int, int] | None:
    """Offsets of the text between the marker lines, or None if the markers are missing."""
    start = text.find(START_MARKER)
    end = text.find(END_MARKER)
    if start == -1 or end == -1 or end < start:
        return None
    return start + len(START_MARKER), end


def with_table(readme: str) -> str:
    region = readme_region(readme)
    if region is None:
        raise SystemExit(f"the README has no {START_MARKER} ... {END_MARKER} lines")
    start, end = region
    return readme[:start] + "\n" + render_table() + "\n" + readme[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.frameworks.table", description=__doc__)
    parser.add_argument("--write", metavar="README", type=Path, help="update this file in place")
    args = parser.parse_args(argv)
    if args.write is None:
        sys.stdout.write(render_table() + "\n")
        return 0
    readme = args.write.read_text(encoding="utf-8")
    updated = with_table(readme)
    if updated != readme:
        args.write.write_text(updated, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
