"""The scripts SCF starts: `bootstrap` (an event function on the Custom Runtime) and
`scf_bootstrap` (a web function), as text.

Both are bash (the platform runs them directly: LF line endings, ``#!/bin/bash``, mode 0755 in
the zip) and do the same three things:

1. find a CPython of the package's version: ``$SCF_PYTHON``, then the platform's
   ``/var/lang/python3*`` interpreters, then ``python3.X`` and ``python3`` on PATH. A name that
   carries the version is taken as it is; a bare ``python3`` is taken when its installation has
   ``lib/python3.X`` (a file test, so a cold start spawns no extra process to ask it);
2. put the code folder and its ``vendor/`` on ``PYTHONPATH``;
3. exec that interpreter on scf-asgi's command line (``run`` or ``web``). The interpreter first
   checks its own version and refuses a wrong one with one line naming itself and what it is,
   since compiled packages and ``.pyc`` built for another version would fail later and less
   clearly; then it calls scf-asgi's command, as ``python -m scf_asgi`` would, without the
   `runpy` machinery that ``-m`` imports (4 ms of every cold start).
"""

from __future__ import annotations

import re
import shlex

from .. import __version__
from ..errors import ConfigurationError
from ..platform import ENV_PORT, ENV_WEB_HOST, WEB_FUNCTION_PORT

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "EVENT_BOOTSTRAP",
    "PYTHON_VARIABLE",
    "VENDOR",
    "WEB_BOOTSTRAP",
    "event_bootstrap",
    "web_bootstrap",
]

EVENT_BOOTSTRAP = "bootstrap"  # the file the Custom Runtime starts
WEB_BOOTSTRAP = "scf_bootstrap"  # the file a web function starts
VENDOR = "vendor"  # the folder of the installed dependencies, beside the app's code
PYTHON_VARIABLE = "SCF_PYTHON"  # names the interpreter, before any search

# Run by the interpreter found: refuse another version in one line, then scf-asgi's command.
_CHECK_AND_RUN = (
    "import sys\n"
    'if sys.implementation.name != "cpython" or sys.version_info[:2] != ({major}, {minor}):\n'
    '    sys.exit("bootstrap: this package is built for CPython {major}.{minor}; " + '
    'sys.executable + " is " + sys.implementation.name + " %d.%d" % sys.version_info[:2] + '
    '" (set {variable} to a CPython {major}.{minor})")\n'
    "from scf_asgi.cli import main\n"
    "sys.exit(main())"
)

_TEMPLATE = """\
#!/bin/bash
# Written by scf-asgi {scf_asgi_version} ({made_by}). {purpose}
# It runs: python -m scf_asgi {command_line}
# on a CPython {version}: ${variable}, else /var/lang/python3*, else python{version} or python3.
case "$0" in */*) HERE="${{0%/*}}" ;; *) HERE=. ;; esac
HERE="$(cd "$HERE" && pwd)"
VERSION={version}

find_python() {{
    local candidate path real
    for candidate in ${{{variable}:+"${variable}"}} /var/lang/python3*/bin/python"$VERSION" \\
            "python$VERSION"; do
        if path="$(command -v "$candidate" 2>/dev/null)"; then echo "$path"; return 0; fi
    done
    # A name without the version: the one whose installation has lib/python$VERSION.
    for candidate in /var/lang/python3*/bin/python3 python3; do
        path="$(command -v "$candidate" 2>/dev/null)" || continue
        real="$(readlink -f "$path" 2>/dev/null)" || real="$path"
        if [ -d "${{real%/*/*}}/lib/python$VERSION" ]; then
            echo "$path"; return 0
        fi
    done
    # None looks right: the first one found, which refuses itself with its version.
    for candidate in /var/lang/python3*/bin/python3 python3; do
        if path="$(command -v "$candidate" 2>/dev/null)"; then echo "$path"; return 0; fi
    done
    return 1
}}

if ! PYTHON="$(find_python)"; then
    echo "bootstrap: no Python found for this package (CPython $VERSION): looked for" \\
        "\\${variable}, /var/lang/python3*/bin/python3*, python$VERSION and python3 on PATH" >&2
    exit 127
fi
export PYTHONPATH="$HERE:$HERE/{vendor}${{PYTHONPATH:+:$PYTHONPATH}}"
# The code folder is read-only on SCF: never try to write .pyc there.
export PYTHONDONTWRITEBYTECODE=1
cd "$HERE" || exit 1
exec "$PYTHON" -c {check_and_run} {command_line}
"""


# A line break (or any other control character) in a word would end the comment line that
# shows the command, and what follows it would run as shell code at every cold start.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _script(*, version: tuple[int, int], command: Sequence[str], made_by: str, purpose: str) -> str:
    for word in command:
        if _CONTROL.search(word):
            raise ConfigurationError(
                f"{word!r}: a control character (a line break, a tab, ...) cannot be written "
                "into a bootstrap"
            )
    major, minor = version
    check_and_run = _CHECK_AND_RUN.format(major=major, minor=minor, variable=PYTHON_VARIABLE)
    return _TEMPLATE.format(
        scf_asgi_version=__version__,
        made_by=made_by,
        purpose=purpose,
        command_line=shlex.join(command),
        version=f"{major}.{minor}",
        variable=PYTHON_VARIABLE,
        vendor=VENDOR,
        check_and_run=shlex.quote(check_and_run),
    )


def event_bootstrap(
    app: str, run_argv: Sequence[str], version: tuple[int, int], *, made_by: str
) -> str:
    """The `bootstrap` of an event function: ``scf-asgi run APP`` with the adapter's flags
    (`run_argv`, from ``options.to_argv``)."""
    return _script(
        version=version,
        command=["run", app, *run_argv],
        made_by=made_by,
        purpose="SCF's Custom Runtime starts this\n# file in the unpacked code package; "
        "it serves the app on the Custom Runtime API.",
    )


def web_bootstrap(
    app: str, web_argv: Sequence[str], version: tuple[int, int], *, made_by: str
) -> str:
    """The `scf_bootstrap` of a web function: ``scf-asgi web APP``, an HTTP server on
    0.0.0.0:9000 (``$PORT`` overrides the port, ``$SCF_ASGI_WEB_HOST`` the address)."""
    return _script(
        version=version,
        command=["web", app, *web_argv],
        made_by=made_by,
        purpose=f"A web function starts this file;\n# it serves the app over HTTP on "
        f"0.0.0.0:{WEB_FUNCTION_PORT} (${ENV_PORT} overrides the port, ${ENV_WEB_HOST} "
        "the address).",
    )
