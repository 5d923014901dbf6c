"""Test-wide set-up: Hypothesis profiles, and the `integration` marker on every test that needs a
Docker engine (the tests under tests/integration and tests/chaos), so `-m "not integration"` is
the unit tier."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import properties  # noqa: F401  (loads the Hypothesis profile)

_ENGINE_DIRS = {Path(__file__).parent / "integration", Path(__file__).parent / "chaos"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if any(parent in _ENGINE_DIRS for parent in Path(item.path).parents):
            item.add_marker(pytest.mark.integration)
