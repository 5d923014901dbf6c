"""The two reproductions of issue 11 (see scenarios.py), checked by the harness's checker.

Both broke an invariant on da9ba9e (split-brain: two writers; lost-write: 20 acknowledged rows
rewound away) and were strict xfails until main's e4f702d fixed them; they are regression tests now.
"""

from __future__ import annotations

import os

import pytest

from tests.chaos.harness import Options
from tests.chaos.scenarios import lost_write, split_brain

pytestmark = pytest.mark.integration

OPTS = Options(image=os.environ.get("PGTOPO_TEST_IMAGE", "pgtopo-local/postgres:17"), op_timeout=40)


def test_split_brain_after_a_half_done_switchover() -> None:
    violations = split_brain(OPTS)
    assert violations == []


def test_failover_never_discards_acknowledged_rows() -> None:
    violations = lost_write(OPTS)
    assert violations == []
