"""An app whose dependency is not installed; its name starts with the dependency's name."""

import missing  # type: ignore[import-not-found]  # noqa: F401

app = None
