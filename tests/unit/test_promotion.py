"""Promotion decisions on hand-built observed states: who may accept writes, who is fenced,
which copy is the most advanced, when a plan would discard WAL.  Pure, like test_plan.py."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pgtopo.actions import Kind
from pgtopo.copies import Ahead, Copy, ahead_of, copies, copy_of, most_advanced
from pgtopo.observed import DataFacts, NodeFacts, Slot, WalReceiver
from pgtopo.pgcontrol import IN_PRODUCTION, SHUT_DOWN, SHUT_DOWN_IN_RECOVERY
from pgtopo.plan import plan

from .test_plan import OTHER, SYSID, container, converged, kinds, pg_primary, pg_replica, topo, volume

FLAT = topo(nodes={"primary": {}, "replica": {}, "replica2": {}})
TO_REPLICA = topo(primary="replica", nodes={"primary": {}, "replica": {}, "replica2": {}})


def stopped(t, node: str, state: int, end: int | None, timeline: int = 1, fenced: bool = False,
            with_container: bool = True, history=()) -> NodeFacts:
    """A node whose server does not run: its volume read (pg_control), its WAL end read when `end`."""
    data = DataFacts(True, SYSID, state=state, checkpoint=0x1000000, timeline=timeline, fenced=fenced,
                     wal_end=end, wal_timeline=timeline if end is not None else None, history=history)
    return NodeFacts(node, container=container(t, node, "exited") if with_container else None,
                     volume=volume(t, node), data=data)


def standby(t, node: str, receive: int, replay: int | None = None, streaming: bool = False, **kw) -> NodeFacts:
    receiver = WalReceiver("streaming", t.upstream_of(node), None) if streaming else None
    return NodeFacts(node, container=container(t, node), volume=volume(t, node),
                     pg=pg_replica(t, node, lsn=replay if replay is not None else receive, receive_lsn=receive,
                                   receiver=receiver, **kw))


def lost_write(t=TO_REPLICA, **over):
    """Reproduction 2: replica never received the last commit; replica2 (stopped) and the old
    primary's volume (no container) hold it."""
    nodes = dict(primary=stopped(t, "primary", IN_PRODUCTION, 0x3000200, with_container=False),
                 replica=standby(t, "replica", 0x3000000),
                 replica2=stopped(t, "replica2", SHUT_DOWN_IN_RECOVERY, 0x3000100, fenced=True))
    nodes.update(over)
    return converged(t, **nodes)


def test_a_failover_past_copies_that_hold_more_wal_is_refused_naming_each_and_the_best() -> None:
    p = plan(TO_REPLICA, lost_write())
    assert p.actions == ()
    [refusal] = p.refusals
    assert refusal.startswith("replica: refusing to make it the primary: ")
    assert "primary: holds 512 bytes of WAL on timeline 1 that replica does not have" in refusal
    assert "replica2: holds 256 bytes of WAL on timeline 1" in refusal
    assert "(primary: primary)" in refusal and "--allow-data-loss" in refusal


def test_allow_data_loss_fails_over_anyway_fencing_every_copy_that_is_not_a_running_standby() -> None:
    p = plan(TO_REPLICA, lost_write(), allow_data_loss=True)
    failover = p.actions[0]
    assert (failover.kind, failover.node) == (Kind.FAILOVER, "replica")
    assert failover.fence == ("primary", "replica2") and failover.data_loss and failover.destructive
    assert p.data_loss == (failover,)


def test_a_failover_compares_what_the_candidate_received_not_what_it_replayed() -> None:
    behind_in_replay = standby(TO_REPLICA, "replica", receive=0x3000200, replay=0x3000000)
    p = plan(TO_REPLICA, lost_write(replica=behind_in_replay))
    assert not p.refusals and p.actions[0].kind is Kind.FAILOVER and not p.actions[0].data_loss


def test_a_copy_whose_end_cannot_be_read_counts_as_possibly_ahead() -> None:
    unread = stopped(TO_REPLICA, "replica2", SHUT_DOWN_IN_RECOVERY, None, fenced=True)
    p = plan(TO_REPLICA, lost_write(primary=stopped(TO_REPLICA, "primary", SHUT_DOWN, 0x3000000), replica2=unread))
    [refusal] = p.refusals
    assert "replica2: cannot tell whether it holds WAL replica lacks (its WAL was not read)" in refusal


def test_a_copy_whose_wal_could_not_be_read_says_why() -> None:
    unread = stopped(TO_REPLICA, "replica2", SHUT_DOWN_IN_RECOVERY, None, fenced=True)
    assert unread.data is not None
    unread = replace(unread, data=replace(unread.data, wal_error="pg_waldump found no valid record (start 0/5A000000)"))
    p = plan(TO_REPLICA, lost_write(primary=stopped(TO_REPLICA, "primary", SHUT_DOWN, 0x3000000), replica2=unread))
    [refusal] = p.refusals
    assert ("replica2: cannot tell whether it holds WAL replica lacks (its WAL could not be read: pg_waldump found "
            "no valid record (start 0/5A000000)), so replica is not made the primary. Fix what keeps its volume "
            "from being read, then apply again") in refusal


def test_fence_the_right_nodes_in_a_cascade_with_the_middle_down() -> None:
    """p -> r1 -> r2, r1 down, the file makes r2 the primary: p must be fenced too (r2's
    primary_conninfo points at r1, not at p)."""
    t = topo(primary="replica2", nodes={"primary": {}, "replica": {}, "replica2": {}})
    obs = converged(t, primary=stopped(t, "primary", SHUT_DOWN, 0x3000000),
                    replica=stopped(t, "replica", SHUT_DOWN_IN_RECOVERY, 0x3000000, fenced=True),
                    replica2=standby(t, "replica2", 0x3000000))
    failover = plan(t, obs).actions[0]
    assert (failover.kind, failover.fence) == (Kind.FAILOVER, ("primary", "replica"))
    assert "fence primary, replica" in failover.reason


def test_equal_copies_fail_over_without_consent() -> None:
    obs = lost_write(primary=stopped(TO_REPLICA, "primary", SHUT_DOWN, 0x3000000),
                     replica2=stopped(TO_REPLICA, "replica2", SHUT_DOWN_IN_RECOVERY, 0x3000000, fenced=True))
    p = plan(TO_REPLICA, obs)
    assert not p.refusals and not p.data_loss and p.actions[0].kind is Kind.FAILOVER


def test_several_writers_are_refused_with_their_timelines_and_positions() -> None:
    second = NodeFacts("replica", container=container(FLAT, "replica"), volume=volume(FLAT, "replica"),
                       pg=pg_replica(FLAT, "replica", in_recovery=False, receiver=None, timeline=2, lsn=0x3000200,
                                     history=((1, 0x3000148),)))
    [refusal] = plan(FLAT, converged(FLAT, replica=second)).refusals
    assert "primary (timeline 1, WAL 0/4000000); replica (timeline 2, WAL 0/3000200)" in refusal


def test_the_files_primary_on_the_stale_side_is_refused_and_the_newer_writer_named() -> None:
    """The file still names the old primary (stopped, timeline 1) while replica was promoted and
    takes writes on timeline 2: starting the old one would make two writers."""
    promoted = NodeFacts("replica", container=container(FLAT, "replica"), volume=volume(FLAT, "replica"),
                         pg=pg_replica(FLAT, "replica", in_recovery=False, receiver=None, timeline=2, lsn=0x5000000,
                                       history=((1, 0x3000148),)))
    obs = converged(FLAT, primary=stopped(FLAT, "primary", SHUT_DOWN, 0x3000148), replica=promoted)
    [refusal] = plan(FLAT, obs).refusals
    assert "replica accepts writes" in refusal and "(primary: replica)" in refusal
    allowed = plan(FLAT, obs, allow_data_loss=True)
    assert kinds(allowed)[:2] == [("replica", "fence"), ("primary", "start")]
    assert allowed.actions[0].data_loss and allowed.actions[0].wave < allowed.actions[1].wave


def test_a_stopped_primary_behind_a_stopped_newer_lineage_is_refused() -> None:
    """No writer runs, but a stopped node holds a newer timeline that forked from the file's
    primary and went on: the file's primary is the stale side."""
    newer = stopped(FLAT, "replica", IN_PRODUCTION, 0x5000000, timeline=2, history=((1, 0x3000148),))
    obs = converged(FLAT, primary=stopped(FLAT, "primary", SHUT_DOWN, 0x3000148), replica=newer)
    [refusal] = plan(FLAT, obs).refusals
    assert "replica: holds" in refusal and "timeline 2" in refusal and "(primary: replica)" in refusal


def test_a_fenced_old_primary_with_the_newest_wal_is_unfenced_not_promoted() -> None:
    old = stopped(FLAT, "primary", SHUT_DOWN, 0x3000148, fenced=True)
    p = plan(FLAT, converged(FLAT, primary=old, replica=standby(FLAT, "replica", 0x3000148),
                             replica2=standby(FLAT, "replica2", 0x3000148)))
    assert kinds(p)[:2] == [("primary", "unfence"), ("primary", "start")]


def test_a_fenced_former_standby_is_never_unfenced() -> None:
    """A standby's data started without standby.signal would take writes on the old timeline:
    it is started as a standby and promoted (a new timeline) instead."""
    was_standby = stopped(TO_REPLICA, "replica", SHUT_DOWN_IN_RECOVERY, 0x3000200, fenced=True)
    p = plan(TO_REPLICA, lost_write(replica=was_standby))
    assert ("replica", "unfence") not in kinds(p) and ("replica", "start") in kinds(p)


def test_a_replica_whose_data_last_ran_as_a_primary_is_fenced_before_it_starts() -> None:
    old_primary = stopped(TO_REPLICA, "primary", SHUT_DOWN, 0x3000000)
    new_primary = NodeFacts("replica", container=container(TO_REPLICA, "replica"), volume=volume(TO_REPLICA, "replica"),
                            pg=pg_primary(TO_REPLICA, timeline=2, lsn=0x5000000, history=((1, 0x3000000),)))
    p = plan(TO_REPLICA, converged(TO_REPLICA, primary=old_primary, replica=new_primary))
    assert kinds(p)[:2] == [("primary", "fence"), ("primary", "start")]
    fenced_already = stopped(TO_REPLICA, "primary", SHUT_DOWN, 0x3000000, fenced=True)
    p = plan(TO_REPLICA, converged(TO_REPLICA, primary=fenced_already, replica=new_primary))
    assert ("primary", "fence") not in kinds(p) and ("primary", "start") in kinds(p)


def test_a_leftover_fence_on_the_running_primary_is_removed() -> None:
    fenced = NodeFacts("primary", container=container(FLAT, "primary"), volume=volume(FLAT, "primary"),
                       pg=pg_primary(FLAT, fenced=True))
    assert kinds(plan(FLAT, converged(FLAT, primary=fenced))) == [("primary", "unfence")]


CASCADE = topo(nodes={"primary": {}, "replica": {}, "replica2": {"upstream": "replica"}})
SWITCH = topo(primary="replica", nodes={"primary": {}, "replica": {}, "replica2": {"upstream": "replica"}})


def test_a_switchover_onto_a_node_without_room_for_the_slots_it_needs_is_refused() -> None:
    """Reproduction 1: replica has max_replication_slots 1 and already holds replica2's slot."""
    one_slot = standby(SWITCH, "replica", 0x3000000, streaming=True, slots=(Slot("pgtopo_replica2"),),
                       limits={"max_replication_slots": 1, "max_wal_senders": 10})
    obs = converged(CASCADE, replica=one_slot)
    [refusal] = plan(SWITCH, obs).refusals
    assert refusal.startswith("replica: needs 2 replication slots") and "max_replication_slots is 1" in refusal


def test_a_switchover_onto_a_node_with_higher_hot_standby_settings_is_refused() -> None:
    big = standby(SWITCH, "replica", 0x3000000, streaming=True,
                  limits={"max_connections": 200, "max_replication_slots": 10, "max_wal_senders": 10})
    obs = converged(CASCADE, replica=big, primary=NodeFacts(
        "primary", container=container(CASCADE, "primary"), volume=volume(CASCADE, "primary"),
        pg=pg_primary(CASCADE, lsn=0x3000000, limits={"max_connections": 100})))
    refusals = plan(SWITCH, obs).refusals
    assert any("max_connections is 200 there but 100 on primary" in r for r in refusals), refusals


def test_a_switchover_ignores_probe_skew_of_standbys_streaming_from_the_writer() -> None:
    """Under load a streaming standby probed a moment after the primary reads ahead of it."""
    obs = converged(FLAT, replica=standby(FLAT, "replica", 0x4000000, streaming=True),
                    replica2=standby(FLAT, "replica2", 0x4000100, streaming=True))
    to_replica = topo(primary="replica", nodes={"primary": {}, "replica": {}, "replica2": {}})
    p = plan(to_replica, obs)
    assert not p.refusals and p.actions[0].kind is Kind.SWITCHOVER


@pytest.mark.parametrize(("copies", "best"), [
    ({"a": Copy("a", 1, 100), "b": Copy("b", 1, 200)}, "b"),
    ({"a": Copy("a", 2, 100, ((1, 50),)), "b": Copy("b", 1, 50)}, "a"),
    ({"a": Copy("a", 2, 100, ((1, 50),)), "b": Copy("b", 1, 60)}, None),  # diverged: no single best
    ({"a": Copy("a", 1, 100), "b": Copy("b", 1, 50, exact=False)}, None),  # one end unknown
])
def test_most_advanced(copies, best) -> None:
    assert most_advanced(copies) == best


def test_ahead_of_counts_bytes_past_the_shared_end() -> None:
    ahead = ahead_of(Copy("a", 1, 0x3000200), Copy("b", 2, 0x5000000, ((1, 0x3000148),)))
    assert ahead is not None and ahead.bytes == 0x3000200 - 0x3000148 and ahead.timeline == 1
    assert ahead_of(Copy("a", 1, 0x3000148), Copy("b", 2, 0x5000000, ((1, 0x3000148),))) is None


def test_a_running_old_primary_that_does_not_answer_but_is_known_ahead_is_named() -> None:
    """The old primary is cut off its network: its last checkpoint alone is past what the
    candidate received.  Name it (its WAL holds the candidate's), and say how to read it."""
    cut_off = NodeFacts("primary", container=container(TO_REPLICA, "primary"), volume=volume(TO_REPLICA, "primary"),
                        data=DataFacts(True, SYSID, state=IN_PRODUCTION, checkpoint=0x3100000, timeline=1),
                        pg_error="cannot connect")
    p = plan(TO_REPLICA, lost_write(primary=cut_off,
                                    replica2=stopped(TO_REPLICA, "replica2", SHUT_DOWN_IN_RECOVERY, 0x3000000,
                                                     fenced=True)))
    assert "primary: holds 1048576 bytes of WAL on timeline 1 that replica does not have" in p.refusals[0]
    assert "(primary: primary)" in p.refusals[0]
    assert p.refusals[1].startswith("primary: its server does not answer (cannot connect), and its WAL reaches")
    assert "Stop its container so its volume can be read (`docker stop pg-primary`)" in p.refusals[1]


def test_a_copy_says_how_far_its_wal_goes_and_whether_that_is_a_lower_bound() -> None:
    assert Copy("a", 1, 0x3000000).describe() == "timeline 1, WAL 0/3000000"
    assert Copy("a", 1, 0x3000000, exact=False).describe() == "timeline 1, WAL at least 0/3000000"


def test_ahead_of_says_why_in_the_reference_s_name() -> None:
    diverged = ahead_of(Copy("a", 1, 0x3000200), Copy("b", 2, 0x5000000, ((1, 0x3000148),)))
    assert diverged == Ahead("a", 0x3000200 - 0x3000148, 1, "timeline 1 diverged from b at 0/3000148")
    unread = ahead_of(Copy("a", 1, 0x1000000, exact=False, unknown="its WAL was not read"), Copy("b", 1, 0x3000000))
    assert unread == Ahead("a", None, 1, "its WAL was not read")
    unrelated = ahead_of(Copy("a", 5, 0x2000000, ((4, 0x1000000),)), Copy("b", 1, 0x3000000))
    assert unrelated == Ahead("a", 0x2000000, 5, "it shares no timeline with b")  # all of it


def test_copies_leave_out_another_cluster_s_data_and_keep_data_of_unknown_identity() -> None:
    t = topo(nodes={"primary": {}, "replica": {}, "replica2": {}})

    def node(name: str, sysid: int | None) -> NodeFacts:
        return NodeFacts(name, volume=volume(t, name), data=DataFacts(True, sysid, wal_end=0x3000000, wal_timeline=1))

    obs = converged(t)
    obs = replace(obs, nodes={"foreign": node("foreign", OTHER), "replica": node("replica", None),
                              "replica2": node("replica2", SYSID)})
    assert set(copies(obs, SYSID)) == {"replica", "replica2"}
    assert set(copies(obs, None)) == {"foreign", "replica", "replica2"}  # no identity recorded: nothing to compare


@pytest.mark.parametrize(("pg", "expected"), [
    (dict(in_recovery=True, timeline=2, lsn=None, history=((1, 0x3000000),)),
     Copy("replica", 2, 0, ((1, 0x3000000),), exact=False, unknown="its server reports no WAL position")),
    (dict(in_recovery=False, timeline=None, lsn=None, receiver=None),
     Copy("replica", 0, 0, exact=False, writer=True, unknown="its server reports no WAL position")),
    (dict(in_recovery=False, timeline=2, lsn=0x5000000, receiver=None), Copy("replica", 2, 0x5000000, writer=True)),
    (dict(in_recovery=True, timeline=1, lsn=0x3000000, receive_lsn=0x3000100), Copy("replica", 1, 0x3000100)),
])
def test_a_running_server_s_copy_ends_where_it_says(pg, expected: Copy) -> None:
    """A writer's copy ends at its own position and moves; a standby's at what it received; a server
    that reports no position holds a copy of unknown end."""
    facts = NodeFacts("replica", container=container(FLAT, "replica"), volume=volume(FLAT, "replica"),
                      pg=pg_replica(FLAT, "replica", **pg))
    assert copy_of(facts) == expected


@pytest.mark.parametrize(("data", "running", "error", "expected"), [
    (DataFacts(True, SYSID, checkpoint=0x1000000, timeline=1, wal_timeline=1), False, None,
     Copy("replica", 1, 0x1000000, exact=False, unknown="its WAL was not read")),  # pg_waldump found no record
    (DataFacts(True, SYSID, checkpoint=0x1000000, timeline=2, history=((1, 0x800000),)), True, None,
     Copy("replica", 2, 0x1000000, ((1, 0x800000),), exact=False, unknown="its server does not answer (no connection)")),
    (DataFacts(True, SYSID, checkpoint=0x1000000, timeline=1), True, "timeout", Copy(
        "replica", 1, 0x1000000, exact=False, unknown="its server does not answer (timeout)")),
])
def test_a_volume_s_copy_ends_at_its_last_checkpoint_at_least_when_its_wal_was_not_read(
        data: DataFacts, running: bool, error: str | None, expected: Copy) -> None:
    facts = NodeFacts("replica", container=container(FLAT, "replica", "running" if running else "exited"),
                      volume=volume(FLAT, "replica"), data=data, pg_error=error)
    assert copy_of(facts) == expected


def test_data_a_pg_rewind_left_half_done_is_recloned_without_counting_its_wal() -> None:
    """An interrupted pg_rewind leaves data that cannot be trusted: re-cloned from its upstream, and
    the WAL it seems to hold past the primary is not counted as a loss (it may be neither's)."""
    half = NodeFacts("replica", container=container(FLAT, "replica", "exited"), volume=volume(FLAT, "replica"),
                     data=DataFacts(True, SYSID, state=SHUT_DOWN_IN_RECOVERY, checkpoint=0x3000000, timeline=2,
                                    interrupted=True, wal_end=0x5000000, wal_timeline=2, history=((1, 0x3000000),)))
    p = plan(FLAT, converged(FLAT, replica=half))
    assert not p.refusals
    [reclone] = [a for a in p.actions if a.node == "replica" and a.kind is Kind.RECLONE]
    assert reclone.reason == ("a pg_rewind was interrupted, so its data cannot be trusted: pg_basebackup from primary")
    assert reclone.destructive and not reclone.data_loss and reclone.upstream == "primary"


def test_a_standby_that_cannot_stream_because_it_diverged_is_rewound_only_with_consent() -> None:
    """Its timeline 2 left the primary's history at 0/3000000 (a promotion the primary never saw):
    it can never stream as it is, and a rewind discards what it holds past the fork."""
    diverged = NodeFacts("replica", container=container(FLAT, "replica"), volume=volume(FLAT, "replica"),
                         pg=pg_replica(FLAT, "replica", receiver=WalReceiver("waiting", "primary", None), timeline=2, lsn=0x3500000,
                                       history=((1, 0x3000000),)))
    obs = converged(FLAT, replica=diverged)
    assert plan(FLAT, obs).refusals == (
        "replica: a rewind would discard 5242880 bytes of WAL on timeline 2 that no other node holds (timeline 2 "
        "diverged from primary at 0/3000000). If replica's writes must survive, name it as the primary in the file "
        "(primary: replica); to discard them, apply with --allow-data-loss",)
    rewind, start = [a for a in plan(FLAT, obs, allow_data_loss=True).actions if a.node == "replica"]
    assert start.kind is Kind.START
    assert rewind.kind is Kind.REWIND and rewind.data_loss and rewind.upstream == "primary"
    assert rewind.reason == ("cannot stream: timeline 2 diverged from primary at 0/3000000: pg_rewind from primary "
                             "(re-clone if that fails); discards 5242880 bytes of WAL on timeline 2 that primary does "
                             "not have")
