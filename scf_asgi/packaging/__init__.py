"""From an app folder to a code package SCF runs: ``scf-asgi package`` and ``scf-asgi bootstrap``.

    bootstrap.py   the text of the `bootstrap` (event function) and `scf_bootstrap` (web
                   function) scripts (pure)
    target.py      the target: CPython X.Y on Linux x86_64, and an interpreter of that version
                   on this machine, when there is one
    build.py       the steps: dependencies installed for the target and checked, scf-asgi
                   vendored, sources collected with exclusions, .pyc compiled, a
                   deterministic zip
    progress.py    what the user sees: rich progress, --quiet, --json
    commands.py    the `package` and `bootstrap` commands

An outer layer: it imports the core's facts (options, platform, errors), never its runtime.
"""
