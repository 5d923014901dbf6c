"""The two reproductions of issue 11 (see scenarios.py), checked by the harness's checker.

Both are expected to fail on code with the bugs (xfail, strict: the day main fixes one, its test
passes, pytest reports XPASS as a failure, and the marker must go: it is then a regression test).
"""

from __future__ import annotations

import os

import pytest

from tests.chaos.harness import Options
from tests.chaos.scenarios import lost_write, split_brain

pytestmark = pytest.mark.integration

OPTS = Options(image=os.environ.get("PGTOPO_TEST_IMAGE", "pgtopo-local/postgres:17"), op_timeout=40)


@pytest.mark.xfail(strict=True, reason="issue 11, bug 1: a switchover that fails after promoting leaves the old "
                                       "primary unfenced; the next apply starts it as a second writer")
def test_split_brain_after_a_half_done_switchover() -> None:
    violations = split_brain(OPTS)
    assert violations == []


@pytest.mark.xfail(strict=True, reason="issue 11, bug 2: failover promotes a replica that never saw rows "
                                       "replica2 and the old primary's volume hold, then rewinds them away")
def test_failover_never_discards_acknowledged_rows() -> None:
    violations = lost_write(OPTS)
    assert violations == []
