"""A node the file calls a replica that accepts writes, or a standby that cannot stream: which of
demote, rewind and re-clone brings it back, from which upstream and through which slot, and whether
`apply` asks before doing it (destructive).  Pure, like test_plan.py."""

from __future__ import annotations

import pytest

from pgtopo.actions import Kind, Phase, Wave
from pgtopo.observed import NodeFacts, WalReceiver
from pgtopo.pgcontrol import SHUT_DOWN
from pgtopo.plan import plan

from .test_plan import REJOIN, T, container, converged, pg_primary, pg_replica, promoted, volume
from .test_promotion import TO_REPLICA, standby, stopped

DEPTH_1 = Wave(Phase.BUILD, 2)  # a direct replica's wave: after the primary's (rank 1)


def new_primary() -> NodeFacts:
    """The file's primary after a failover: timeline 2, which left timeline 1 at 0/3000148."""
    return NodeFacts("primary", container=container(T, "primary"), volume=volume(T, "primary"),
                     pg=pg_primary(T, timeline=2, lsn=0x5000000, history=((1, 0x3000148),)))


def test_an_old_primary_that_wrote_nothing_past_the_fork_is_demoted_not_rewound() -> None:
    """It still accepts writes on timeline 1 but stopped before the new primary's fork: it holds
    nothing the new primary lacks, so it only restarts as a standby (nothing destroyed)."""
    obs = converged(T, primary=new_primary(), replica=promoted(T, "replica", 1, 0x3000100, ()))
    assert plan(T, obs).refusals[0].startswith("several nodes accept writes")
    demote, start = plan(T, obs, allow_data_loss=True).actions
    assert (demote.kind, demote.node, demote.upstream, demote.slot, demote.wave) == (
        Kind.DEMOTE, "replica", "primary", "pgtopo_replica", DEPTH_1)
    assert demote.reason == ("accepts writes but timeline 1 is in primary's history up to 0/3000148: restart it as "
                             "a standby of primary")
    assert not demote.destructive and not demote.data_loss
    assert (start.kind, start.node) == (Kind.START, "replica")


@pytest.mark.parametrize(("facts", "kind", "reason"), REJOIN)
def test_a_writer_brought_back_streams_from_its_upstream_through_its_slot_in_its_wave(
        facts: NodeFacts, kind: Kind, reason: str) -> None:
    first = plan(T, converged(T, replica=facts), allow_data_loss=True).actions[0]
    assert (first.kind, first.upstream, first.slot, first.wave) == (kind, "primary", "pgtopo_replica", DEPTH_1)


def test_a_diverged_standby_beside_a_failover_is_rewound_from_the_new_primary_and_apply_asks_first() -> None:
    """replica2 runs as a standby on a timeline 2 of its own (left timeline 1 at 0/2000000): the
    failover to replica goes ahead with --allow-data-loss, and replica2 is rewound from replica."""
    went_on = NodeFacts("replica2", container=container(TO_REPLICA, "replica2"), volume=volume(TO_REPLICA, "replica2"),
                        pg=pg_replica(TO_REPLICA, "replica2", timeline=2, lsn=0x2100000, receive_lsn=0x2100000,
                                      receiver=None, history=((1, 0x2000000),)))
    obs = converged(TO_REPLICA, primary=stopped(TO_REPLICA, "primary", SHUT_DOWN, 0x3000000),
                    replica=standby(TO_REPLICA, "replica", 0x3000000), replica2=went_on)
    p = plan(TO_REPLICA, obs, allow_data_loss=True)
    assert p.actions[0].kind is Kind.FAILOVER
    rewind = next(a for a in p.actions if a.node == "replica2")
    assert (rewind.kind, rewind.upstream, rewind.slot, rewind.wave) == (Kind.REWIND, "replica", "pgtopo_replica2",
                                                                        DEPTH_1)
    assert rewind.reason == ("cannot stream: timeline 2 diverged from replica at 0/2000000: pg_rewind from replica "
                             "(re-clone if that fails)")
    assert rewind.destructive and rewind in p.destructive


@pytest.mark.parametrize("upstream_lsn", [None, 0x3000000])
def test_a_standby_that_cannot_stream_is_left_alone_while_a_position_is_unknown(upstream_lsn: int | None) -> None:
    """replica2 (cascaded from replica) does not stream; when its own replay position or its
    upstream's is unknown, nothing tells whether it diverged: it waits, and nothing is rewound."""
    upstream = NodeFacts("replica", container=container(T, "replica"), volume=volume(T, "replica"),
                         pg=pg_replica(T, "replica", lsn=upstream_lsn))
    waiting = NodeFacts("replica2", container=container(T, "replica2"), volume=volume(T, "replica2"),
                        pg=pg_replica(T, "replica2", lsn=None if upstream_lsn else 0x100,
                                      receiver=WalReceiver("waiting", None, None)))
    p = plan(T, converged(T, replica=upstream, replica2=waiting))
    assert not p.refusals and [a for a in p.actions if a.node == "replica2"] == []


def test_a_writer_that_diverged_is_rewound_with_what_to_do_if_that_fails() -> None:
    first = plan(T, converged(T, replica=REJOIN[0].values[0]), allow_data_loss=True).actions[0]
    assert first.reason.startswith("accepts writes; timeline 2 diverged from primary at 0/3000148: pg_rewind from "
                                   "primary (re-clone if that fails)")


def lagging_upstream(t=T) -> NodeFacts:
    """replica, replica2's upstream, a standby still on timeline 1 at 0/3000000."""
    return NodeFacts("replica", container=container(t, "replica"), volume=volume(t, "replica"),
                     pg=pg_replica(t, "replica", lsn=0x3000000))


@pytest.mark.parametrize(("writer", "kind"), [
    # on timeline 1, past its upstream but not past the primary (0/4000000): a re-clone
    (promoted(T, "replica2", 1, 0x3500000, ()), Kind.RECLONE),
    # on a timeline 2 the primary (timeline 3) went on from at 0/3800000, not past it: a rewind
    (promoted(T, "replica2", 2, 0x3700000, ((1, 0x3400000),)), Kind.REWIND),
])
def test_a_cascaded_writer_brought_back_from_a_lagging_upstream_is_destructive(writer: NodeFacts, kind: Kind) -> None:
    """replica2 holds nothing the primary lacks, so no data-loss mark makes it destructive: its
    own rule must, since a rewind or re-clone from replica throws away what replica2 holds."""
    primary = NodeFacts("primary", container=container(T, "primary"), volume=volume(T, "primary"),
                        pg=pg_primary(T, timeline=3 if kind is Kind.REWIND else 1, lsn=0x4000000,
                                      history=((1, 0x3400000), (2, 0x3800000)) if kind is Kind.REWIND else ()))
    p = plan(T, converged(T, primary=primary, replica=lagging_upstream(), replica2=writer), allow_data_loss=True)
    action = next(a for a in p.actions if a.node == "replica2")
    assert (action.kind, action.upstream, action.data_loss) == (kind, "replica", False)
    assert action.destructive and action in p.destructive
