"""A replica whose upstream no longer has the WAL it needs next can never stream again: the
planner re-clones it (lossless: everything it holds is on the upstream's history), and only then.

Found by a long chaos run: a replica re-added on a volume kept from long ago started, never
streamed, and every apply waited for it in vain.
"""

from __future__ import annotations

from dataclasses import replace

from pgtopo.actions import Kind
from pgtopo.copies import wal_end_needed
from pgtopo.observed import DataFacts, NodeFacts, Observed, WalReceiver
from pgtopo.pgcontrol import SHUT_DOWN_IN_RECOVERY
from pgtopo.plan import plan
from tests.unit.test_plan import SYSID, T, container, converged, pg_primary, pg_replica, volume

SEGMENT = 16 * 1024 * 1024
OLDEST = 40 * SEGMENT  # where the primary's oldest WAL segment file starts
REMOVED = ("could not receive data from WAL stream: ERROR:  requested WAL segment 000000010000000000000003 "
           "has already been removed")


def stopped(end: int | None, checkpoint: int = 3 * SEGMENT) -> NodeFacts:
    """The replica's volume, kept with no container, its WAL read up to `end` (None: not read)."""
    data = DataFacts(True, SYSID, state=SHUT_DOWN_IN_RECOVERY, checkpoint=checkpoint, timeline=1, fenced=True,
                     wal_end=end, wal_timeline=1 if end is not None else None)
    return NodeFacts("replica", container=None, volume=volume(T, "replica"), data=data)


def standby(lsn: int, stream_error: str | None) -> NodeFacts:
    """The replica running as a standby that does not stream."""
    pg = pg_replica(T, "replica", lsn=lsn, receiver=WalReceiver("waiting", None, None))
    return NodeFacts("replica", container=container(T, "replica"), volume=volume(T, "replica"), pg=pg,
                     stream_error=stream_error)


def observed(replica: NodeFacts):
    obs = converged(T, replica=replica)
    primary = obs.node("primary")
    upstream = replace(primary, pg=pg_primary(T, lsn=60 * SEGMENT, oldest_wal=OLDEST))
    return replace(obs, nodes={**obs.nodes, "primary": upstream})


def actions(replica: NodeFacts) -> list[tuple[str, str]]:
    return [(a.kind.value, a.node) for a in plan(T, observed(replica), allow_data_loss=False).actions
            if a.node == "replica"]


def test_a_kept_volume_whose_wal_is_gone_upstream_is_recloned_not_started() -> None:
    p = plan(T, observed(stopped(end=3 * SEGMENT + 4096)))
    clone = next(a for a in p.actions if a.node == "replica")
    assert clone.kind is Kind.RECLONE and clone.destructive and not clone.data_loss
    assert "primary no longer has the WAL it needs from 0/3001000" in clone.reason
    assert [a.kind for a in p.actions if a.node == "replica"] == [Kind.RECLONE, Kind.CREATE]


def test_a_kept_volume_whose_wal_the_upstream_still_has_just_starts() -> None:
    assert actions(stopped(end=OLDEST)) == [("create", "replica")]


def test_a_kept_volume_whose_wal_end_was_not_read_is_never_recloned_on_a_guess() -> None:
    assert actions(stopped(end=None)) == [("create", "replica")]


def test_a_standby_waiting_for_wal_its_upstream_removed_is_recloned() -> None:
    assert actions(standby(lsn=OLDEST - 1, stream_error=REMOVED)) == [("re-clone", "replica"), ("start", "replica")]
    no_slot = "could not start WAL streaming: ERROR:  replication slot \"pgtopo_replica\" does not exist"
    assert actions(standby(lsn=OLDEST - 1, stream_error=no_slot))[0] == ("re-clone", "replica")


def test_a_standby_still_replaying_its_own_wal_is_left_to_stream() -> None:
    """Not streaming yet and behind the upstream's oldest WAL, but its receiver has not tried
    since it started: it may be replaying what its own pg_wal holds."""
    assert actions(standby(lsn=3 * SEGMENT, stream_error=None)) == []


def test_a_stale_complaint_from_before_a_repoint_does_not_reclone() -> None:
    """The log says an upstream lacked the WAL, but this one has it from where the standby is."""
    assert actions(standby(lsn=OLDEST, stream_error=REMOVED)) == []


def test_the_wal_end_of_a_stopped_replica_is_read_only_when_its_checkpoint_is_older_than_upstream_wal() -> None:
    assert wal_end_needed(T, observed(stopped(end=None, checkpoint=3 * SEGMENT))) == ("replica",)
    assert wal_end_needed(T, observed(stopped(end=None, checkpoint=OLDEST))) == ()
    assert wal_end_needed(T, converged(T, replica=stopped(end=None))) == ()  # oldest WAL unknown


def test_only_the_receivers_complaints_since_the_server_last_started_count() -> None:
    from pgtopo.observe import last_stream_error

    before = ["LOG:  starting PostgreSQL 17.6", f"FATAL:  {REMOVED}", "LOG:  received fast shutdown request",
              "LOG:  starting PostgreSQL 17.6", "LOG:  redo starts at 0/3000028"]
    assert last_stream_error(before) is None  # still replaying its own WAL
    after = [*before, "LOG:  waiting for WAL to become available at 0/3000110",
             "FATAL:  could not connect to the primary server: connection refused", "LOG:  waiting for WAL"]
    assert last_stream_error(after) == "could not connect to the primary server: connection refused"
    assert last_stream_error([f"2026-11-30 08:53:57.572 UTC [55] FATAL:  {REMOVED}"]) == (
        "could not receive data from WAL stream: requested WAL segment 000000010000000000000003 has already been removed")


PAUSE = "max_wal_senders = 40 is a lower setting than on the primary server, where its value was 42"


def paused(lsn: int, pause: str | None, replay_paused: bool = True) -> NodeFacts:
    """The replica running as a standby whose replay PostgreSQL paused (or not)."""
    pg = pg_replica(T, "replica", lsn=lsn, receiver=WalReceiver("waiting", None, None), replay_paused=replay_paused)
    return NodeFacts("replica", container=container(T, "replica"), volume=volume(T, "replica"), pg=pg,
                     settings_pause=pause)


def test_a_standby_paused_at_an_older_parameter_change_is_recloned() -> None:
    """Found by chaos seed 107 round 50: a replica added back on an old volume replayed a parameter
    change from before a setting was raised and lowered again, above the values it was held at:
    PostgreSQL paused its replay for good, and every apply waited for it in vain."""
    p = plan(T, observed(paused(OLDEST + 100, PAUSE)))
    clone = next(a for a in p.actions if a.node == "replica")
    assert clone.kind is Kind.RECLONE and clone.destructive and not clone.data_loss
    assert clone.reason == (f"PostgreSQL paused its replay at an older parameter change ({PAUSE}): it cannot go on "
                            "with the settings it runs with: pg_basebackup from primary")


def test_a_replay_paused_by_hand_is_left_alone() -> None:
    assert actions(paused(OLDEST + 100, None)) == []
    assert actions(paused(OLDEST + 100, PAUSE, replay_paused=False)) == []  # resumed meanwhile


def test_the_settings_pause_is_read_from_the_log_since_the_server_last_started() -> None:
    from pgtopo.observe import last_settings_pause

    detail = f"2026-11-30 10:25:08.456 UTC [48] DETAIL:  {PAUSE}."
    assert last_settings_pause(["LOG:  starting PostgreSQL 17.6", detail, "LOG:  recovery has paused"]) == PAUSE
    assert last_settings_pause([detail, "LOG:  starting PostgreSQL 17.6", "LOG:  redo starts at 0/3000028"]) is None


def test_a_kept_volume_on_the_timeline_the_upstream_left_is_recloned_when_its_wal_is_gone() -> None:
    """The upstream was promoted since (timeline 2, timeline 1 ended past the volume's end): the
    volume is on its history, so it is behind, not diverged, and re-cloned losing nothing."""
    obs = observed(stopped(end=3 * SEGMENT + 4096))
    promoted = replace(obs.node("primary"), pg=pg_primary(T, lsn=60 * SEGMENT, oldest_wal=OLDEST, timeline=2,
                                                          history=((1, 50 * SEGMENT),)))
    p = plan(T, replace(obs, nodes={**obs.nodes, "primary": promoted}))
    clone = next(a for a in p.actions if a.node == "replica")
    assert clone.kind is Kind.RECLONE and not clone.data_loss
    assert "primary no longer has the WAL it needs from 0/3001000" in clone.reason


def test_a_node_gone_from_the_file_never_needs_its_wal_end_read_to_stream() -> None:
    """Only the file's replicas can stream from an upstream; a stray volume is for removal."""
    stray = NodeFacts("old", container=None, volume=volume(T, "replica"),
                      data=DataFacts(True, SYSID, state=SHUT_DOWN_IN_RECOVERY, checkpoint=3 * SEGMENT, timeline=1))
    obs = observed(stopped(end=OLDEST))
    assert wal_end_needed(T, replace(obs, nodes={**obs.nodes, "old": stray})) == ()


# A rewound copy short of its consistent point (PostgreSQL 13: pg_rewind deleted the WAL from the
# last shared checkpoint on, which the new primary had removed): its server runs, refuses every
# connection, and its receiver keeps asking for WAL the upstream no longer has.
REMOVED_TL2 = ("could not receive data from WAL stream: ERROR:  requested WAL segment 000000020000000000000002 "
               "has already been removed")
STARTING = "replica: cannot connect on 127.0.0.1:40000: FATAL:  the database system is starting up"


def not_open(end: int | None, stream_error: str | None = REMOVED_TL2, running: bool = True) -> NodeFacts:
    data = DataFacts(True, SYSID, state=SHUT_DOWN_IN_RECOVERY, checkpoint=2 * SEGMENT, timeline=1,
                     wal_end=end, wal_timeline=1 if end is not None else None)
    return NodeFacts("replica", container=container(T, "replica", state="running" if running else "exited"),
                     volume=volume(T, "replica"), data=data, pg_error=STARTING, stream_error=stream_error)


def test_a_standby_that_can_never_open_is_recloned_without_loss_when_its_wal_is_on_the_upstreams() -> None:
    p = plan(T, observed(not_open(end=OLDEST + 4096)), allow_data_loss=False)
    assert not p.refusals, p.refusals
    clone = next(a for a in p.actions if a.node == "replica")
    assert clone.kind is Kind.RECLONE and clone.destructive and not clone.data_loss
    assert clone.reason.startswith("can never become consistent: primary no longer has the WAL it must replay first")
    assert "000000020000000000000002" in clone.reason


def test_one_whose_wal_end_is_unknown_is_recloned_only_with_consent() -> None:
    """Without its WAL end read, its copy may hold writes the primary lacks: discarding it is a loss
    the user must allow (copies.ahead_of's rule for an inexact copy)."""
    p = plan(T, observed(not_open(end=None)), allow_data_loss=False)
    assert p.actions == () and "--allow-data-loss" in p.refusals[0] and p.refusals[0].startswith("replica:")
    allowed = plan(T, observed(not_open(end=None)), allow_data_loss=True)
    assert next(a for a in allowed.actions if a.node == "replica").data_loss


def test_a_standby_that_does_not_open_yet_for_another_reason_is_waited_for() -> None:
    assert actions(not_open(end=OLDEST + 4096, stream_error=None)) == []
    assert actions(not_open(end=OLDEST + 4096, stream_error=REMOVED_TL2.replace("has already been removed",
                                                                                "was not found"))) == []


def test_its_wal_end_is_read_although_its_container_runs() -> None:
    stuck = observed(not_open(end=None))
    assert "replica" in wal_end_needed(T, stuck)
    waiting = observed(not_open(end=None, stream_error=None))
    assert "replica" not in wal_end_needed(T, waiting)  # a healthy cluster with a starting standby reads nothing


def cascaded(replica2: NodeFacts, upstream_pg) -> Observed:
    """T's cascade: replica2 streams from replica, whose server is `upstream_pg` (None: not running)."""
    obs = converged(T, replica2=replica2)
    replica = replace(obs.node("replica"), pg=upstream_pg)
    return replace(obs, nodes={**obs.nodes, "replica": replica})


def test_a_paused_standby_whose_upstream_is_down_waits_for_it() -> None:
    """Whether a fresh copy would lose anything is decided against the upstream: with its server
    down, nothing is decided (and nothing could be copied from it anyway)."""
    pg = pg_replica(T, "replica2", lsn=OLDEST, receiver=WalReceiver("waiting", None, None), replay_paused=True)
    replica2 = NodeFacts("replica2", container=container(T, "replica2"), volume=volume(T, "replica2"), pg=pg,
                         settings_pause=PAUSE)
    p = plan(T, cascaded(replica2, None))
    assert not p.refusals and [a for a in p.actions if a.node == "replica2"] == []


def test_a_paused_standby_is_not_recloned_while_its_upstream_reports_no_wal_position() -> None:
    """A cascading upstream that has replayed nothing yet reports no position: the paused standby
    cannot be compared with it and is left alone this round."""
    pg = pg_replica(T, "replica2", lsn=OLDEST, receiver=WalReceiver("waiting", None, None), replay_paused=True)
    replica2 = NodeFacts("replica2", container=container(T, "replica2"), volume=volume(T, "replica2"), pg=pg,
                         settings_pause=PAUSE)
    p = plan(T, cascaded(replica2, pg_replica(T, "replica", lsn=None, oldest_wal=OLDEST)))
    assert not p.refusals and [a for a in p.actions if a.node == "replica2"] == []


def test_a_kept_volume_is_not_recloned_while_its_upstream_reports_no_wal_position() -> None:
    data = DataFacts(True, SYSID, state=SHUT_DOWN_IN_RECOVERY, checkpoint=3 * SEGMENT, timeline=1, fenced=True,
                     wal_end=3 * SEGMENT + 4096, wal_timeline=1)
    kept = NodeFacts("replica2", container=None, volume=volume(T, "replica2"), data=data)
    p = plan(T, cascaded(kept, pg_replica(T, "replica", lsn=None, oldest_wal=OLDEST)))
    assert not p.refusals and [a.kind for a in p.actions if a.node == "replica2"] == [Kind.CREATE]


def test_a_paused_standby_on_the_timeline_its_upstream_left_is_recloned() -> None:
    """The primary was promoted since (timeline 2; timeline 1 ended past the standby's position):
    the standby is on its history, so a fresh copy loses nothing."""
    obs = observed(paused(OLDEST + 100, PAUSE))
    promoted = replace(obs.node("primary"), pg=pg_primary(T, lsn=60 * SEGMENT, oldest_wal=OLDEST, timeline=2,
                                                          history=((1, 50 * SEGMENT),)))
    p = plan(T, replace(obs, nodes={**obs.nodes, "primary": promoted}))
    clone = next(a for a in p.actions if a.node == "replica")
    assert clone.kind is Kind.RECLONE and not clone.data_loss
    assert clone.reason.startswith("PostgreSQL paused its replay at an older parameter change")
