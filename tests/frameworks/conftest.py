from __future__ import annotations

from collections.abc import Iterator

import pytest

from .harness import close_adapters


@pytest.fixture(autouse=True, scope="session")
def _close_framework_adapters() -> Iterator[None]:
    yield
    close_adapters()
