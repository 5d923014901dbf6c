"""Promotion decisions beside another cluster's data (promotion.py), the cases
test_promotion_refusals.py and test_synchronous.py leave open: a running node of another cluster
proves nothing about this cluster's commits, and a candidate holding another cluster's data is
never compared with this cluster's copies to pick the node to name instead.
"""

from __future__ import annotations

from pgtopo.observed import DataFacts, NodeFacts
from pgtopo.pgcontrol import SHUT_DOWN, SHUT_DOWN_IN_RECOVERY
from pgtopo.plan import plan

from .test_plan import OTHER, SYSID, container, pg_replica, volume
from .test_promotion import TO_REPLICA, lost_write, standby, stopped
from .test_synchronous import NEW, OLD, primary_lost


def test_a_running_standby_of_another_cluster_does_not_count_towards_the_quorum() -> None:
    """replica streams, carries the file's rule and its position is known, but its data is another
    cluster's: only replica2 of the two synchronous standbys holds this cluster's WAL."""
    foreign = standby(OLD, "replica", 0x3000000, system_identifier=OTHER)
    p = plan(NEW, primary_lost(replica=foreign))
    assert p.actions == ()
    assert ("replica2: synchronous.durability is required but 1 of the 2 synchronous standbys of primary are "
            "reachable (replica2) and each commit waited for 1: R + W > N does not hold (1 + 1 <= 2)") in p.refusals[-1]


def test_a_file_s_primary_of_another_cluster_is_never_compared_with_this_cluster_s_copies_to_name_one() -> None:
    """replica (the file's primary) runs another cluster's data at 0/3000000; replica2's volume, not
    read, is at least at 0/3100000.  How those two compare says nothing: the two LSNs count WAL of
    different clusters, so no refusal names a node "instead" on the strength of it."""
    alien = NodeFacts("replica", container=container(TO_REPLICA, "replica"), volume=volume(TO_REPLICA, "replica"),
                      pg=pg_replica(TO_REPLICA, "replica", lsn=0x3000000, receive_lsn=0x3000000, receiver=None,
                                    system_identifier=OTHER))
    unread = NodeFacts("replica2", container=container(TO_REPLICA, "replica2", "exited"),
                       volume=volume(TO_REPLICA, "replica2"),
                       data=DataFacts(True, SYSID, state=SHUT_DOWN_IN_RECOVERY, checkpoint=0x3100000, timeline=1))
    obs = lost_write(primary=stopped(TO_REPLICA, "primary", SHUT_DOWN, 0x3000000), replica=alien, replica2=unread)
    refusals = plan(TO_REPLICA, obs).refusals
    assert refusals[0].startswith("replica: its data belongs to another cluster")
    assert not any("as the primary in the file instead" in r for r in refusals), refusals
