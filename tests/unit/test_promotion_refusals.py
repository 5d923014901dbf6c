"""Switchover and failover on hand-built observed states: each refusal a user can meet, word for
word, and what the action says it will do.  Pure, like test_promotion.py (whose helpers it uses)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pgtopo.actions import Kind, Phase, Wave
from pgtopo.observed import DataFacts, NodeFacts, WalReceiver
from pgtopo.pgcontrol import IN_PRODUCTION, SHUT_DOWN, SHUT_DOWN_IN_RECOVERY
from pgtopo.plan import plan

from .test_plan import OTHER, SYSID, container, converged, kinds, pg_primary, pg_replica, topo, volume
from .test_promotion import FLAT, TO_REPLICA, lost_write, standby, stopped

WRITER_AT = 0x4000000  # where converged()'s primary stands


def steady(**over: NodeFacts):
    """FLAT running as the file says, both standbys streaming and caught up: ready to switch over."""
    nodes = dict(replica=standby(FLAT, "replica", WRITER_AT, streaming=True),
                 replica2=standby(FLAT, "replica2", WRITER_AT, streaming=True))
    nodes.update(over)
    return converged(FLAT, **nodes)


def test_a_switchover_says_what_it_does_and_takes_care_of_the_old_primary() -> None:
    p = plan(TO_REPLICA, steady())
    switchover = p.actions[0]
    assert (switchover.kind, switchover.node, switchover.upstream) == (Kind.SWITCHOVER, "replica", "primary")
    assert not switchover.data_loss and not switchover.destructive and switchover.wave == Wave(Phase.BUILD, 1)
    assert switchover.reason == ("the file makes replica the primary: fence primary (standby.signal), CHECKPOINT and "
                                 "fast shutdown of it, wait until replica has replayed its shutdown checkpoint, promote "
                                 "replica, restart primary as a standby of replica")
    assert "primary: taken care of by the switchover; rejoins in a later round" in p.notes


def test_a_switchover_away_from_a_primary_removed_from_the_file_leaves_it_stopped() -> None:
    without = topo(primary="replica", nodes={"replica": {}, "replica2": {}})
    switchover = plan(without, steady()).actions[0]
    assert switchover.kind is Kind.SWITCHOVER
    assert switchover.reason.endswith("promote replica, primary is not in the file: leave it stopped for removal")


@pytest.mark.parametrize(("receiver", "shown"), [(None, "no WAL receiver"), (WalReceiver("catchup", "primary", None),
                                                                             "catchup")])
def test_a_switchover_to_a_standby_that_does_not_stream_is_refused(receiver, shown) -> None:
    candidate = NodeFacts("replica", container=container(FLAT, "replica"), volume=volume(FLAT, "replica"),
                          pg=pg_replica(FLAT, "replica", lsn=WRITER_AT, receiver=receiver))
    assert plan(TO_REPLICA, steady(replica=candidate)).refusals == (
        f"replica: cannot switch over to it: it is not streaming ({shown}); fix its replication first: keep primary "
        "as the primary in the file (primary: primary) and apply, which repairs it, then switch over again",)


def test_a_switchover_to_a_standby_whose_upstream_does_not_answer_is_refused() -> None:
    """Its WAL receiver still says streaming (until wal_receiver_timeout), but from a replica cut
    off the network: the old primary's last WAL would never reach it (a fence, a wait, a rollback)."""
    cascaded = NodeFacts("replica", container=container(FLAT, "replica"), volume=volume(FLAT, "replica"),
                         pg=pg_replica(FLAT, "replica", lsn=WRITER_AT, receiver=WalReceiver("streaming", "replica2", None)))
    cut_off = NodeFacts("replica2", container=container(FLAT, "replica2"), volume=volume(FLAT, "replica2"),
                        pg_error="cannot connect")
    refusals = plan(TO_REPLICA, steady(replica=cascaded, replica2=cut_off)).refusals
    assert refusals[0] == ("replica: cannot switch over to it: it streams from replica2, whose server does not answer, "
                           "so the last WAL of primary would never reach it; keep primary as the primary in the file "
                           "(primary: primary) and apply, which repairs replica2, then switch over again")
    answering = standby(FLAT, "replica2", WRITER_AT, streaming=True)
    assert plan(TO_REPLICA, steady(replica=cascaded, replica2=answering)).actions[0].kind is Kind.SWITCHOVER


def test_a_switchover_to_a_standby_on_another_timeline_is_refused() -> None:
    candidate = standby(FLAT, "replica", WRITER_AT, streaming=True, timeline=2, history=((1, 0x3000000),))
    refusals = plan(TO_REPLICA, steady(replica=candidate)).refusals
    assert refusals == ("replica: cannot switch over to it: it is on timeline 2, primary on 1",)


@pytest.mark.parametrize(("behind", "refused"), [(16 * 1024 * 1024, False), (16 * 1024 * 1024 + 1, True)])
def test_a_switchover_to_a_standby_further_behind_than_max_lag_bytes_is_refused(behind: int, refused: bool) -> None:
    candidate = standby(FLAT, "replica", WRITER_AT - behind, streaming=True)
    p = plan(TO_REPLICA, steady(replica=candidate))
    if not refused:
        assert not p.refusals and p.actions[0].kind is Kind.SWITCHOVER
        return
    assert p.refusals == (f"replica: cannot switch over to it: it replays {behind} bytes behind primary "
                          "(switchover.max_lag_bytes is 16777216); wait and apply again",)


@pytest.mark.parametrize(("writer_at", "candidate_at", "max_lag", "refused"), [
    (16 * 1024 * 1024 + 1, None, 16 * 1024 * 1024, True),  # a candidate with no position counts as at 0/0
    (None, None, 0, False),  # neither position known: no lag to count
])
def test_an_unknown_replay_position_counts_as_zero(writer_at, candidate_at, max_lag, refused: bool) -> None:
    t = topo(primary="replica", nodes={"primary": {}, "replica": {}, "replica2": {}},
             switchover={"max_lag_bytes": max_lag})
    writer = NodeFacts("primary", container=container(FLAT, "primary"), volume=volume(FLAT, "primary"),
                       pg=pg_primary(FLAT, lsn=writer_at))
    candidate = NodeFacts("replica", container=container(FLAT, "replica"), volume=volume(FLAT, "replica"),
                          pg=pg_replica(FLAT, "replica", lsn=candidate_at, receive_lsn=candidate_at))
    refusals = plan(t, steady(primary=writer, replica=candidate)).refusals
    assert any("cannot switch over to it: it replays" in r for r in refusals) is refused


def test_a_switchover_past_a_stopped_copy_that_went_on_is_refused_unless_allowed() -> None:
    """replica2 was promoted on its own (timeline 2) and stopped: what it wrote after the fork is
    on no other node, and the switchover would discard it."""
    went_on = stopped(FLAT, "replica2", IN_PRODUCTION, 0x3500000, timeline=2, history=((1, 0x3000000),))
    obs = steady(replica2=went_on)
    assert plan(TO_REPLICA, obs).refusals == (
        "replica: refusing to make it the primary: replica2: holds 5242880 bytes of WAL on timeline 2 that replica "
        "does not have (timeline 2 diverged from primary at 0/3000000). bring those nodes up and apply again; or "
        "apply with --allow-data-loss to promote replica anyway and discard that WAL",)
    allowed = plan(TO_REPLICA, obs, allow_data_loss=True)
    assert allowed.actions[0].kind is Kind.SWITCHOVER and allowed.actions[0].data_loss


def test_a_switchover_compares_a_standby_that_does_not_stream_with_the_old_primary() -> None:
    """Only standbys streaming from the writer are taken to hold a prefix of its WAL; one that does
    not stream and has received past it holds WAL the candidate would lack."""
    not_streaming = standby(FLAT, "replica2", WRITER_AT + 0x100)
    [refusal] = plan(TO_REPLICA, steady(replica2=not_streaming)).refusals
    assert refusal.startswith("replica: refusing to make it the primary: replica2: holds 256 bytes of WAL on "
                              "timeline 1 that replica does not have")


def test_a_failover_past_a_copy_of_another_cluster_is_not_held_back_by_it() -> None:
    """A volume holding another cluster's data (same node name, other system identifier) is no copy
    of this cluster's WAL, however far it goes."""
    foreign = NodeFacts("replica2", container=container(TO_REPLICA, "replica2", "exited"),
                        volume=volume(TO_REPLICA, "replica2"),
                        data=DataFacts(True, OTHER, state=SHUT_DOWN, checkpoint=0x9000000, timeline=1,
                                       wal_end=0x9000000, wal_timeline=1))
    obs = lost_write(primary=stopped(TO_REPLICA, "primary", SHUT_DOWN, 0x3000000), replica2=foreign)
    p = plan(TO_REPLICA, obs)
    assert p.actions[0].kind is Kind.FAILOVER and not p.actions[0].data_loss


def test_a_failover_says_whom_it_fences_and_what_it_discards() -> None:
    p = plan(TO_REPLICA, lost_write(), allow_data_loss=True)
    failover = p.actions[0]
    assert failover.reason == ("no node accepts writes and the file makes replica the primary: fence primary, "
                               "replica2 (stopped, standby.signal) so none can come back as a writer, promote "
                               "replica (--allow-data-loss: discards what only primary, replica2 hold)")
    assert failover.wave == p.actions[0].wave and failover.wave.rank == 1


def test_a_failover_with_nothing_to_fence_says_so_by_saying_nothing() -> None:
    t = topo(primary="replica", nodes={"replica": {}})
    obs = converged(t, replica=standby(t, "replica", 0x3000000))
    failover = plan(t, obs).actions[0]
    assert failover.reason == "no node accepts writes and the file makes replica the primary: promote replica"
    assert failover.fence == ()


def test_copies_that_cannot_be_read_are_named_with_what_to_do_about_each() -> None:
    """primary's volume (no container) is known ahead; replica2 stopped and unread, replica3's server
    does not answer: neither can be compared, so no copy is named as the one to promote."""
    t = topo(primary="replica", nodes={"primary": {}, "replica": {}, "replica2": {}, "replica3": {}})
    unanswering = NodeFacts("replica3", container=container(t, "replica3"), volume=volume(t, "replica3"),
                            data=DataFacts(True, SYSID, state=SHUT_DOWN_IN_RECOVERY, checkpoint=0x1000000, timeline=1),
                            pg_error="cannot connect")
    obs = converged(t, primary=stopped(t, "primary", IN_PRODUCTION, 0x3000200, with_container=False),
                    replica=standby(t, "replica", 0x3000000),
                    replica2=stopped(t, "replica2", SHUT_DOWN_IN_RECOVERY, None, fenced=True), replica3=unanswering)
    assert plan(t, obs).refusals == (
        "replica: refusing to make it the primary: primary: holds 512 bytes of WAL on timeline 1 that replica does "
        "not have (it is ahead of replica on the same timeline 1 (0/3000200 > 0/3000000); pg_rewind cannot undo "
        "that). bring those nodes up and apply again; or apply "
        "with --allow-data-loss to promote replica anyway and discard that WAL",
        "replica2: cannot tell whether it holds WAL replica lacks (its WAL was not read), so replica is not made the "
        "primary. Fix what keeps its volume from being read, then apply again; or "
        "apply with --allow-data-loss to promote replica anyway",
        "replica3: cannot tell whether it holds WAL replica lacks (its server does not answer (cannot connect)), so "
        "replica is not made the primary. Stop its container so its volume can be read (`docker stop pg-replica3`), "
        "or bring its server back, then apply again; or apply with --allow-data-loss to promote replica anyway",
    )


def test_a_failover_fences_only_nodes_with_data_that_are_not_running_standbys() -> None:
    t = topo(primary="replica", nodes={"primary": {}, "replica": {}, "replica2": {}, "replica3": {}})
    obs = converged(t, primary=stopped(t, "primary", SHUT_DOWN, 0x3000000), replica=standby(t, "replica", 0x3000000),
                    replica2=standby(t, "replica2", 0x3000000),
                    replica3=NodeFacts("replica3", volume=volume(t, "replica3"), data=DataFacts(False)))
    failover = plan(t, obs).actions[0]
    assert (failover.kind, failover.fence) == (Kind.FAILOVER, ("primary",))


@pytest.mark.parametrize(("have", "refused"), [(100, False), (99, True)])
def test_every_running_node_is_checked_against_the_new_primary_s_hot_standby_settings(have: int, refused: bool) -> None:
    """replica2 sorts after the candidate: it is checked too; a setting equal to the new primary's is enough."""
    candidate = standby(FLAT, "replica", WRITER_AT, streaming=True, limits={"max_connections": 100})
    other = standby(FLAT, "replica2", WRITER_AT, streaming=True, limits={"max_connections": have})
    refusals = plan(TO_REPLICA, steady(replica=candidate, replica2=other)).refusals
    expected = ("replica: cannot become the primary: max_connections is 100 there but 99 on replica2, which would not "
                "start as its standby; set max_connections to at least 100 on replica2 (or lower it on replica) and "
                "apply that first")
    assert refusals == ((expected,) if refused else ())


def test_several_writers_are_refused_with_what_to_do() -> None:
    second = NodeFacts("replica", container=container(FLAT, "replica"), volume=volume(FLAT, "replica"),
                       pg=pg_replica(FLAT, "replica", in_recovery=False, receiver=None, timeline=2, lsn=0x3000200,
                                     history=((1, 0x3000148),)))
    assert plan(FLAT, converged(FLAT, replica=second)).refusals == (
        "several nodes accept writes: primary (timeline 1, WAL 0/4000000); replica (timeline 2, WAL 0/3000200). "
        "pgtopo will not pick one. Name the one whose writes must survive as the primary in the file and apply with "
        "--allow-data-loss: the others are rewound and what only they wrote is discarded",)


def test_a_stopped_primary_beside_another_writer_is_refused_with_both_positions() -> None:
    promoted = NodeFacts("replica", container=container(FLAT, "replica"), volume=volume(FLAT, "replica"),
                         pg=pg_replica(FLAT, "replica", in_recovery=False, receiver=None, timeline=2, lsn=0x5000000,
                                       history=((1, 0x3000148),)))
    obs = converged(FLAT, primary=stopped(FLAT, "primary", SHUT_DOWN, 0x3000148), replica=promoted)
    assert plan(FLAT, obs).refusals == (
        "replica accepts writes (timeline 2, WAL 0/5000000) while the file's primary primary is not running "
        "(timeline 1, WAL 0/3000148): starting primary as the primary would make two writers. Name replica as the "
        "primary in the file (primary: replica), or apply with --allow-data-loss to fence replica and discard what "
        "only it wrote",)


def test_a_stopped_copy_whose_last_checkpoint_is_already_ahead_is_one_refusal() -> None:
    """Its WAL was not read, but its last checkpoint alone is past the candidate: it is ahead by at
    least that much, which the refusal says; there is no container to stop."""
    unread = NodeFacts("replica2", container=container(TO_REPLICA, "replica2", "exited"),
                       volume=volume(TO_REPLICA, "replica2"),
                       data=DataFacts(True, SYSID, state=SHUT_DOWN_IN_RECOVERY, checkpoint=0x3100000, timeline=1))
    obs = lost_write(primary=stopped(TO_REPLICA, "primary", SHUT_DOWN, 0x3000000), replica2=unread)
    [refusal] = plan(TO_REPLICA, obs).refusals
    assert refusal.startswith("replica: refusing to make it the primary: replica2: holds 1048576 bytes of WAL on "
                              "timeline 1 that replica does not have")


def test_a_failover_is_refused_when_a_running_standby_could_not_follow_the_new_primary() -> None:
    t = topo(primary="replica", nodes={"primary": {}, "replica": {}, "replica2": {}})
    obs = converged(t, primary=stopped(t, "primary", SHUT_DOWN, 0x3000000),
                    replica=standby(t, "replica", 0x3000000, limits={"max_connections": 200}),
                    replica2=standby(t, "replica2", 0x3000000, limits={"max_connections": 100}))
    [refusal] = plan(t, obs).refusals
    assert refusal.startswith("replica: cannot become the primary: max_connections is 200 there but 100 on replica2")


def test_a_refused_failover_names_the_most_advanced_copy_of_this_cluster_not_another_s() -> None:
    foreign = NodeFacts("other", volume=volume(TO_REPLICA, "other"),
                        data=DataFacts(True, OTHER, state=SHUT_DOWN, checkpoint=0x9000000, timeline=1,
                                       wal_end=0x9000000, wal_timeline=1))
    obs = lost_write()
    obs = replace(obs, nodes={**obs.nodes, "other": foreign})
    [refusal] = plan(TO_REPLICA, obs).refusals
    assert "name primary as the primary in the file instead (primary: primary): it holds the newest WAL" in refusal


def test_a_refused_failover_lists_every_copy_ahead_then_the_one_to_name() -> None:
    assert plan(TO_REPLICA, lost_write()).refusals == (
        "replica: refusing to make it the primary: primary: holds 512 bytes of WAL on timeline 1 that replica does "
        "not have (it is ahead of replica on the same timeline 1 (0/3000200 > 0/3000000); pg_rewind cannot undo "
        "that); replica2: holds 256 bytes of WAL on timeline 1 that replica does not have (it is ahead of replica on "
        "the same timeline 1 (0/3000100 > 0/3000000); pg_rewind cannot undo that). name primary as the primary in "
        "the file instead (primary: primary): it holds the newest WAL; or apply with --allow-data-loss to promote "
        "replica anyway and discard that WAL",)


def test_a_switchover_past_a_copy_of_another_cluster_is_not_held_back_by_it() -> None:
    foreign = NodeFacts("other", volume=volume(FLAT, "other"),
                        data=DataFacts(True, OTHER, state=SHUT_DOWN, checkpoint=0x9000000, timeline=1,
                                       wal_end=0x9000000, wal_timeline=1))
    p = plan(TO_REPLICA, steady(other=foreign))
    assert not p.refusals and p.actions[0].kind is Kind.SWITCHOVER and not p.actions[0].data_loss


def test_a_refused_switchover_names_the_most_advanced_copy_of_this_cluster_not_another_s() -> None:
    foreign = NodeFacts("other", volume=volume(FLAT, "other"),
                        data=DataFacts(True, OTHER, state=SHUT_DOWN, checkpoint=0x9000000, timeline=1,
                                       wal_end=0x9000000, wal_timeline=1))
    [refusal] = plan(TO_REPLICA, steady(replica2=standby(FLAT, "replica2", WRITER_AT + 0x100), other=foreign)).refusals
    assert "name replica2 as the primary in the file instead (primary: replica2): it holds the newest WAL" in refusal


def test_a_copy_whose_server_does_not_answer_and_is_already_ahead_says_to_stop_its_container() -> None:
    """replica2's container runs but its server does not answer; its last checkpoint alone is past
    the candidate.  replica3 (stopped, WAL not read) sorts after it and is named too."""
    t = topo(primary="replica", nodes={"primary": {}, "replica": {}, "replica2": {}, "replica3": {}})
    unanswering = NodeFacts("replica2", container=container(t, "replica2"), volume=volume(t, "replica2"),
                            data=DataFacts(True, SYSID, state=SHUT_DOWN_IN_RECOVERY, checkpoint=0x3100000, timeline=1),
                            pg_error="cannot connect")
    obs = converged(t, primary=stopped(t, "primary", SHUT_DOWN, 0x3000000), replica=standby(t, "replica", 0x3000000),
                    replica2=unanswering, replica3=stopped(t, "replica3", SHUT_DOWN_IN_RECOVERY, None, fenced=True))
    assert plan(t, obs).refusals == (
        "replica: refusing to make it the primary: replica2: holds 1048576 bytes of WAL on timeline 1 that replica "
        "does not have (it is ahead of replica on the same timeline 1 (0/3100000 > 0/3000000); pg_rewind cannot undo "
        "that). bring those nodes up and apply again; or apply with --allow-data-loss to promote replica anyway and "
        "discard that WAL",
        "replica2: its server does not answer (cannot connect), and its WAL reaches at least that far. Stop its "
        "container so its volume can be read (`docker stop pg-replica2`), or bring its server back (reconnect or "
        "restart it), then apply again",
        "replica3: cannot tell whether it holds WAL replica lacks (its WAL was not read), so replica is not made the "
        "primary. Fix what keeps its volume from being read, then apply again; or apply with --allow-data-loss to "
        "promote replica anyway",
    )


def test_a_file_s_primary_holding_another_cluster_s_data_is_refused_as_such() -> None:
    """The file names replica, whose server runs another cluster's data, while a stopped copy of
    this cluster is ahead of it: the plan says the data is another cluster's (no traceback)."""
    alien = NodeFacts("replica", container=container(TO_REPLICA, "replica"), volume=volume(TO_REPLICA, "replica"),
                      pg=pg_replica(TO_REPLICA, "replica", lsn=0x3000000, receive_lsn=0x3000000, receiver=None,
                                    system_identifier=OTHER))
    unread = NodeFacts("replica2", container=container(TO_REPLICA, "replica2", "exited"),
                       volume=volume(TO_REPLICA, "replica2"),
                       data=DataFacts(True, SYSID, state=SHUT_DOWN_IN_RECOVERY, checkpoint=0x3100000, timeline=1))
    obs = lost_write(primary=stopped(TO_REPLICA, "primary", SHUT_DOWN, 0x3000000), replica=alien, replica2=unread)
    assert plan(TO_REPLICA, obs).refusals == (
        f"replica: its data belongs to another cluster (system identifier {OTHER}, this cluster is {SYSID}); move "
        "that volume away or fix the file",)  # no second refusal comparing WAL of two clusters
    assert not plan(TO_REPLICA, obs, allow_data_loss=True).actions


def newer_lineage():
    """The file's primary stopped on timeline 1; replica, stopped too, went on as a primary on timeline 2."""
    newer = stopped(FLAT, "replica", IN_PRODUCTION, 0x5000000, timeline=2, history=((1, 0x3000148),))
    return converged(FLAT, primary=stopped(FLAT, "primary", SHUT_DOWN, 0x3000148), replica=newer)


def test_a_stopped_primary_behind_a_newer_copy_is_refused_word_for_word_unless_allowed() -> None:
    assert plan(FLAT, newer_lineage()).refusals == (
        "primary: refusing to make it the primary: replica: holds 33554104 bytes of WAL on timeline 2 that primary "
        "does not have (timeline 2 diverged from primary at 0/3000148). name replica as the primary in the file "
        "instead (primary: replica): it holds the newest WAL; or apply with --allow-data-loss to promote primary "
        "anyway and discard that WAL",)
    allowed = plan(FLAT, newer_lineage(), allow_data_loss=True)
    assert not allowed.refusals and kinds(allowed)[0] == ("primary", "start")


def foreign_ahead(timeline: int = 1, history=()):
    return NodeFacts("other", volume=volume(FLAT, "other"),
                     data=DataFacts(True, OTHER, state=SHUT_DOWN, checkpoint=0x9000000, timeline=timeline,
                                    wal_end=0x9000000, wal_timeline=timeline, history=history))


def test_a_stopped_primary_is_not_held_back_by_a_copy_of_another_cluster() -> None:
    obs = converged(FLAT, primary=stopped(FLAT, "primary", SHUT_DOWN, 0x3000148), other=foreign_ahead())
    p = plan(FLAT, obs)
    assert not p.refusals and kinds(p)[0] == ("primary", "start")


def test_a_refused_restart_names_the_newest_copy_of_this_cluster_not_another_s() -> None:
    """other, another cluster's volume, would hold every copy's WAL were it of this cluster."""
    other = foreign_ahead(2, ((1, 0x3000148),))
    [refusal] = plan(FLAT, replace(newer_lineage(), nodes={**newer_lineage().nodes, "other": other})).refusals
    assert "name replica as the primary in the file instead (primary: replica)" in refusal


def test_with_allow_data_loss_the_other_writer_is_fenced_first_and_apply_asks() -> None:
    promoted = NodeFacts("replica", container=container(FLAT, "replica"), volume=volume(FLAT, "replica"),
                         pg=pg_replica(FLAT, "replica", in_recovery=False, receiver=None, timeline=2, lsn=0x5000000,
                                       history=((1, 0x3000148),)))
    obs = converged(FLAT, primary=stopped(FLAT, "primary", SHUT_DOWN, 0x3000148), replica=promoted)
    fence = plan(FLAT, obs, allow_data_loss=True).actions[0]
    assert (fence.kind, fence.node, fence.wave, fence.destructive, fence.data_loss) == (
        Kind.FENCE, "replica", Wave(), True, True)
    assert fence.reason == ("--allow-data-loss: replica accepts writes but the file makes primary the primary: stop "
                            "and fence it before primary starts")


def test_a_stopped_primary_whose_wal_cannot_be_read_is_refused_with_why() -> None:
    unread = stopped(FLAT, "primary", SHUT_DOWN, None)
    assert unread.data is not None
    unread = replace(unread, data=replace(unread.data, wal_error="pg_waldump found no valid record (start 0/3000000)"))
    assert plan(FLAT, converged(FLAT, primary=unread)).refusals == (
        "primary: the file's primary runs no server and how far its WAL goes is unknown (its WAL could not be read: "
        "pg_waldump found no valid record (start 0/3000000)); pgtopo cannot check that no other node holds newer WAL. "
        "See the errors above or `docker logs`, fix what keeps its volume from being read and apply again, or apply "
        "with --allow-data-loss",)


def test_a_fenced_old_primary_with_the_newest_wal_is_unfenced_in_its_own_wave() -> None:
    old = stopped(FLAT, "primary", SHUT_DOWN, 0x3000148, fenced=True)
    unfence = plan(FLAT, converged(FLAT, primary=old, replica=standby(FLAT, "replica", 0x3000148),
                                   replica2=standby(FLAT, "replica2", 0x3000148))).actions[0]
    assert (unfence.kind, unfence.node, unfence.wave) == (Kind.UNFENCE, "primary", Wave(Phase.BUILD, 1))
    assert unfence.reason == ("a fenced old primary holds the newest WAL and no node accepts writes: remove its "
                              "standby.signal so it starts as the primary again (no promotion, no new timeline)")


@pytest.mark.parametrize(("slots", "refused"), [(2, False), (1, True)])
def test_an_upstream_without_room_for_its_standbys_slots_is_refused_word_for_word(slots: int, refused: bool) -> None:
    """primary serves replica and replica2 (FLAT): two slots; exactly two is enough."""
    primary = replace(converged(FLAT).node("primary"),
                      pg=pg_primary(FLAT, slots=(), limits={"max_replication_slots": slots, "max_wal_senders": 10}))
    refusals = plan(FLAT, converged(FLAT, primary=primary)).refusals
    assert refusals == ((
        "primary: needs 2 replication slots (2 for its standbys in the file, 0 others it holds) but "
        "max_replication_slots is 1; raise it on primary (parameters: max_replication_slots: 2; it takes a restart) "
        "and apply that before this change",) if refused else ())


@pytest.mark.parametrize(("senders", "refused"), [(2, False), (1, True)])
def test_an_upstream_without_enough_wal_senders_for_its_standbys_is_refused(senders: int, refused: bool) -> None:
    primary = replace(converged(FLAT).node("primary"), pg=pg_primary(FLAT, limits={"max_wal_senders": senders}))
    refusals = plan(FLAT, converged(FLAT, primary=primary)).refusals
    assert refusals == (("primary: needs 2 WAL senders for its standbys but max_wal_senders is 1; raise it on "
                         "primary (it takes a restart) and apply that before this change",) if refused else ())
