"""The README's Frameworks table is the one `table.py` prints, and every claim has a test."""

from __future__ import annotations

import importlib
from pathlib import Path

from . import table
from .harness import TESTS_BY_FEATURE
from .matrix import FEATURES, FRAMEWORKS

README = Path(__file__).resolve().parents[2] / "README.md"
TEST_MODULES = ("test_common", "test_extras", "test_runtime_lifespan")


def test_every_claimed_feature_has_a_test() -> None:
    for name in TEST_MODULES:
        importlib.import_module(f"{__package__}.{name}")
    claimed = {feature for framework in FRAMEWORKS for feature in framework.features}
    assert claimed <= set(FEATURES)
    assert sorted(claimed - set(TESTS_BY_FEATURE)) == []


def test_pending_claims_are_claims() -> None:
    for framework in FRAMEWORKS:
        assert set(framework.pending) <= set(framework.features), framework.key
        assert all(reason.startswith("adapter: ") for reason in framework.pending.values())


def test_readme_frameworks_table_is_up_to_date() -> None:
    readme = README.read_text(encoding="utf-8")
    assert table.readme_region(readme) is not None, (
        f"README.md has lost its {table.START_MARKER} / {table.END_MARKER} lines: put them "
        "back, then run: python -m tests.frameworks.table --write README.md"
    )
    assert readme == table.with_table(readme), (
        "README.md's Frameworks table is stale: python -m tests.frameworks.table --write README.md"
    )


def test_write_replaces_only_the_marked_region(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    before = f"# Title\n\nIntro.\n\n{table.START_MARKER}\nold table\n{table.END_MARKER}\n\nMore.\n"
    readme.write_text(before, encoding="utf-8")
    assert table.main(["--write", str(readme)]) == 0
    assert readme.read_text(encoding="utf-8") == (
        f"# Title\n\nIntro.\n\n{table.START_MARKER}\n{table.render_table()}\n"
        f"{table.END_MARKER}\n\nMore.\n"
    )
