"""A node that cannot start on its postgresql.auto.conf is rewritten from the file offline before it
starts (offline_conf.py), the primary too, on plain values: never beside another writer, never a
node the file calls a replica started unfenced, and the primary's raised hot-standby values held
while its standbys run lower ones.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from pgtopo import desired
from pgtopo.actions import Kind
from pgtopo.copies import wal_end_needed
from pgtopo.observed import DataFacts, NodeFacts
from pgtopo.pgcontrol import IN_PRODUCTION, SHUT_DOWN, SHUT_DOWN_IN_RECOVERY
from pgtopo.plan import plan
from pgtopo.spec import Topology

from .test_plan import SYSID, container, converged, kinds, pg_replica, topo, volume

PAIR = topo(nodes={"primary": {}, "replica": {}})
BAD = topo(nodes={"primary": {}, "replica": {}}, parameters={"shared_buffers": "900GB"})
LIMITS = {"max_connections": 100, "max_worker_processes": 8, "max_wal_senders": 40,
          "max_prepared_transactions": 0, "max_locks_per_transaction": 64}


def down(t: Topology, node: str = "primary", state: str | None = "restarting", restarts: int = 0, conf: dict | None = None,
         end: int | None = 0x4000000, pg_state: int = SHUT_DOWN, fenced: bool = False) -> NodeFacts:
    """A node whose server does not answer: its container in `state` (None: no container), its
    volume holding this cluster's data whose WAL ends at `end` (None: not read), and `conf` in its
    postgresql.auto.conf (None: not read)."""
    c = replace(container(t, node, state=state), restarts=restarts) if state else None
    data = DataFacts(True, SYSID, state=pg_state, checkpoint=0x3000000, timeline=1, fenced=fenced,
                     wal_end=end, wal_timeline=1 if end is not None else None, limits=LIMITS, auto_conf=conf)
    return NodeFacts(node, container=c, volume=volume(t, node), data=data, pg_error="connection refused")


def waiting(t: Topology, node: str = "replica") -> NodeFacts:
    """A standby whose upstream is down: it runs, it does not stream."""
    return NodeFacts(node, container=container(t, node), volume=volume(t, node),
                     pg=pg_replica(t, node, receiver=None, limits=LIMITS))


def test_a_crash_looping_primary_is_rewritten_from_the_file_and_started() -> None:
    observed = converged(PAIR, primary=down(BAD), replica=waiting(PAIR))
    p = plan(PAIR, observed)
    assert not p.refusals, p.refusals
    assert kinds(p) == [("primary", "rewrite-conf"), ("primary", "start")]
    assert "it is the file's primary and no other node accepts writes" in p.actions[0].reason


def test_a_primary_caught_running_between_two_crashes_is_rewritten_too() -> None:
    observed = converged(PAIR, primary=down(BAD, state="running", restarts=3), replica=waiting(PAIR))
    assert kinds(plan(PAIR, observed)) == [("primary", "rewrite-conf"), ("primary", "start")]
    assert wal_end_needed(PAIR, replace(observed, nodes={
        **observed.nodes, "primary": down(BAD, state="running", restarts=3, end=None)})) == ("primary",)


def test_a_crash_looping_primary_is_never_started_beside_a_writer() -> None:
    writer = NodeFacts("replica", container=container(PAIR, "replica"), volume=volume(PAIR, "replica"),
                       pg=pg_replica(PAIR, "replica", in_recovery=False, receiver=None, lsn=0x4000000))
    p = plan(PAIR, converged(PAIR, primary=down(BAD, state="running", restarts=3), replica=writer))
    assert p.actions == ()
    assert any("would make two writers" in r for r in p.refusals), p.refusals


def test_with_allow_data_loss_the_other_writer_is_fenced_before_the_primary_starts() -> None:
    writer = NodeFacts("replica", container=container(PAIR, "replica"), volume=volume(PAIR, "replica"),
                       pg=pg_replica(PAIR, "replica", in_recovery=False, receiver=None, lsn=0x4000000))
    p = plan(PAIR, converged(PAIR, primary=down(BAD), replica=writer), allow_data_loss=True)
    order = [(a.node, a.kind.value) for wave in p.waves() for a in wave]
    assert order.index(("replica", "fence")) < order.index(("primary", "rewrite-conf")) < order.index(
        ("primary", "start"))


LOOPING = pytest.mark.parametrize(("state", "restarts"), [("restarting", 0), ("running", 3)],
                                  ids=["caught restarting", "caught between two crashes"])


@LOOPING
def test_a_crash_looping_primary_whose_wal_end_is_unknown_is_refused(state: str, restarts: int) -> None:
    p = plan(PAIR, converged(PAIR, primary=down(BAD, state=state, restarts=restarts, end=None), replica=waiting(PAIR)))
    assert p.actions == ()
    assert any("how far its WAL goes is unknown" in r for r in p.refusals), p.refusals


@LOOPING
def test_a_crash_looping_primary_behind_a_standby_is_refused(state: str, restarts: int) -> None:
    ahead = replace(waiting(PAIR), pg=pg_replica(PAIR, "replica", receiver=None, lsn=0x5000000))
    p = plan(PAIR, converged(PAIR, primary=down(BAD, state=state, restarts=restarts, end=0x4000000), replica=ahead))
    assert p.actions == ()
    assert any("refusing to make it the primary" in r for r in p.refusals), p.refusals


def test_a_crash_looping_replica_whose_data_last_ran_as_a_primary_is_fenced_before_it_starts() -> None:
    old = down(BAD, "replica", pg_state=IN_PRODUCTION)
    p = plan(PAIR, converged(PAIR, replica=old))
    assert kinds(p) == [("replica", "rewrite-conf"), ("replica", "fence"), ("replica", "start")]


def test_a_crash_looping_standby_is_not_fenced_again() -> None:
    standby = down(BAD, "replica", pg_state=SHUT_DOWN_IN_RECOVERY, fenced=True)
    assert kinds(plan(PAIR, converged(PAIR, replica=standby))) == [("replica", "rewrite-conf"), ("replica", "start")]


def test_a_primary_whose_first_start_failed_is_rewritten_before_its_new_container_starts() -> None:
    """After a failed first start the container is removed, its data kept: the file fixed, the
    conf on the volume still says 900GB."""
    observed = converged(PAIR, primary=down(PAIR, state=None, conf={"shared_buffers": "900GB"}),
                         replica=waiting(PAIR))
    p = plan(PAIR, observed)
    assert kinds(p) == [("primary", "rewrite-conf"), ("primary", "create")]
    assert "would start it with shared_buffers 900GB (the file: unset)" in p.actions[0].reason
    assert p.actions[0].settings == ()
    # its first start never got as far as the replication role and the cluster's recorded identity
    first = plan(PAIR, replace(observed, system_identifier=None))
    assert kinds(first) == [("primary", "rewrite-conf"), ("primary", "create"), ("primary", "create-role")]


def test_a_stopped_node_whose_conf_matches_the_file_is_just_started() -> None:
    same = {**desired.settings(BAD, "primary")}
    observed = converged(BAD, primary=down(BAD, state="exited", conf=same), replica=waiting(BAD))
    assert kinds(plan(BAD, observed)) == [("primary", "start")]
    replicated = {**same, **desired.replication_settings(PAIR, "replica")}  # replication keys are repointed
    observed = converged(BAD, replica=down(BAD, "replica", state=None, conf=replicated, pg_state=SHUT_DOWN_IN_RECOVERY,
                                           fenced=True))
    assert kinds(plan(BAD, observed)) == [("replica", "create")]


def test_a_stopped_replica_whose_conf_differs_from_the_file_is_rewritten_before_it_starts() -> None:
    standby = down(BAD, "replica", state="exited", conf={"shared_buffers": "900GB"}, pg_state=SHUT_DOWN_IN_RECOVERY,
                   fenced=True)
    p = plan(PAIR, converged(PAIR, replica=standby))
    assert kinds(p) == [("replica", "rewrite-conf"), ("replica", "start")]


def test_a_running_node_is_never_rewritten_offline() -> None:
    """A container that runs and was never restarted by Docker (its server cut off, or starting)."""
    cut = down(BAD, "replica", state="running", conf={"shared_buffers": "900GB"}, pg_state=SHUT_DOWN_IN_RECOVERY)
    assert Kind.REWRITE_CONF not in {a.kind for a in plan(PAIR, converged(PAIR, replica=cut)).actions}


def test_the_primary_holds_a_raised_hot_standby_value_while_its_standbys_run_lower() -> None:
    raised = topo(nodes={"primary": {}, "replica": {}}, parameters={"max_connections": 150})
    p = plan(raised, converged(raised, primary=down(BAD), replica=waiting(raised)))
    [rewrite] = [a for a in p.actions if a.kind is Kind.REWRITE_CONF]
    assert dict(rewrite.settings) == {"max_connections": "100"}
    assert "max_connections held at 100" in rewrite.reason
    alone = topo(nodes={"primary": {}}, parameters={"max_connections": 150})
    [rewrite] = [a for a in plan(alone, converged(alone, primary=down(BAD))).actions if a.kind is Kind.REWRITE_CONF]
    assert rewrite.settings == (), "no standby runs: nothing to hold"
