"""The two reproductions of issue 11 (see scenarios.py), checked by the harness's checker, and
its full disk in a clone, and a failover the synchronous quorum rule allows.

Both reproductions broke an invariant on da9ba9e (split-brain: two writers; lost-write: 20
acknowledged rows rewound away) and were strict xfails until main's e4f702d fixed them; they are
regression tests now.  disk-full: the apply that clones onto a full disk fails cleanly and the
apply after the user freed the space converges.
"""

from __future__ import annotations

import os

import pytest

from tests.chaos.harness import Options
from tests.chaos.scenarios import disk_full, lost_write, split_brain, sync_quorum

pytestmark = pytest.mark.integration

OPTS = Options(image=os.environ.get("PGTOPO_TEST_IMAGE", "pgtopo-local/postgres:17"), op_timeout=40)


def test_split_brain_after_a_half_done_switchover() -> None:
    violations = split_brain(OPTS)
    assert violations == []


def test_failover_never_discards_acknowledged_rows() -> None:
    violations = lost_write(OPTS)
    assert violations == []


def test_a_full_disk_in_a_clone_fails_cleanly_and_the_apply_after_freeing_it_converges() -> None:
    violations = disk_full(OPTS)
    assert violations == []


def test_a_quorum_failover_keeps_every_acknowledged_row() -> None:
    """synchronous any 1 required: the primary cut off with a commit waiting; the quorum rule
    promotes a standby, and rejoining the old primary discards only WAL nobody acknowledged."""
    violations = sync_quorum(OPTS)
    assert violations == []
