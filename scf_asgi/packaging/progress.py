"""What `package` and `deploy` show while they work: rich's status and progress on a terminal,
one line per finished step elsewhere, nothing with ``--quiet``, and only the final JSON
document on stdout with ``--json`` (warnings then go to stderr).
"""

from __future__ import annotations

import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from contextlib import AbstractContextManager
    from typing import Any

__all__ = ["Reporter", "require"]


def require(module: str, extra: str) -> Any:
    """Import `module`, or fail with the extra of scf-asgi that installs it."""
    import importlib

    from ..errors import ConfigurationError

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigurationError(
            f"this command needs {module.split('.')[0]}: pip install 'scf-asgi[{extra}]'"
        ) from None


class Reporter:
    """Progress and messages of one command run."""

    def __init__(self, *, quiet: bool = False, json_output: bool = False) -> None:
        self.quiet = quiet or json_output
        self.json_output = json_output
        self.warnings: list[str] = []
        self.notes: list[str] = []
        if self.quiet:
            self.console: Any = None
        else:
            rich_console = require("rich.console", "package")
            self.console = rich_console.Console(highlight=False)

    # -- messages

    def say(self, text: str) -> None:
        if self.console is not None:
            self.console.print(text, markup=False, soft_wrap=True)

    def note(self, text: str) -> None:
        """Something the user should know that is not wrong (in --json: the notes list)."""
        self.notes.append(text)
        self.say(text)

    def warn(self, text: str) -> None:
        self.warnings.append(text)
        if self.console is not None:
            self.console.print(f"warning: {text}", style="yellow", markup=False, soft_wrap=True)
        elif self.json_output:
            print(f"scf-asgi: warning: {text}", file=sys.stderr)

    # -- steps

    def step(self, title: str) -> AbstractContextManager[Step]:
        """A long step: a spinner with its latest news on a terminal, then one line with its
        duration."""
        from contextlib import contextmanager

        @contextmanager
        def running() -> Iterator[Step]:
            started = time.monotonic()
            step = Step(self, title)
            if self.console is not None and self.console.is_terminal:
                with self.console.status(title) as status:
                    step.status = status
                    yield step
            else:
                yield step
            seconds = time.monotonic() - started
            self.say(f"{title}: {step.result or 'done'} ({seconds:.1f} s)")

        return running()

    def progress(self, title: str, total: int) -> AbstractContextManager[Any]:
        """A bar for a step that counts (the files of a zip); a no-op off a terminal."""
        from contextlib import contextmanager

        @contextmanager
        def counting() -> Iterator[Any]:
            if self.console is not None and self.console.is_terminal:
                rich_progress = require("rich.progress", "package")
                with rich_progress.Progress(console=self.console, transient=True) as bar:
                    task = bar.add_task(title, total=total)
                    yield lambda: bar.advance(task)
            else:
                yield lambda: None

        return counting()


class Step:
    """A running step: `update` shows news on the spinner, `result` ends its line."""

    def __init__(self, reporter: Reporter, title: str) -> None:
        self.reporter = reporter
        self.title = title
        self.status: Any = None
        self.result = ""

    def update(self, news: str) -> None:
        if self.status is not None:
            self.status.update(f"{self.title}: {news}")
