"""Promotion decisions beside another cluster's data (promotion.py), the cases
test_promotion_refusals.py and test_synchronous.py leave open: a running node of another cluster
proves nothing about this cluster's commits.
"""

from __future__ import annotations

from pgtopo.plan import plan

from .test_plan import OTHER
from .test_promotion import standby
from .test_synchronous import NEW, OLD, primary_lost


def test_a_running_standby_of_another_cluster_does_not_count_towards_the_quorum() -> None:
    """replica streams, carries the file's rule and its position is known, but its data is another
    cluster's: only replica2 of the two synchronous standbys holds this cluster's WAL."""
    foreign = standby(OLD, "replica", 0x3000000, system_identifier=OTHER)
    p = plan(NEW, primary_lost(replica=foreign))
    assert p.actions == ()
    assert ("replica2: synchronous.durability is required but 1 of the 2 synchronous standbys of primary are "
            "reachable (replica2) and each commit waited for 1: R + W > N does not hold (1 + 1 <= 2)") in p.refusals[-1]
