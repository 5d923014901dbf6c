"""Standby-sensitive settings in both directions, on plain values: the order of restarts and copies.

Each case: the file's parameters (and nodes), what every running node holds today → the restarts
and copies in the order apply runs them, and which restarts first wait for the primary's
parameter change to be replayed (`replay_past`).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from pgtopo.actions import Kind, Phase
from pgtopo.observed import HOT_STANDBY_SETTINGS, DataFacts, NodeFacts, Observed
from pgtopo.plan import plan
from pgtopo.spec import Topology

from .test_plan import SYSID, container, converged, pg_primary, pg_replica, topo, volume

CASCADE = {"primary": {}, "replica": {}, "replica2": {"upstream": "replica"}}
RESTART_SETTINGS = frozenset(HOT_STANDBY_SETTINGS)
TODAY = {"max_connections": 100, "max_worker_processes": 8, "max_wal_senders": 40,
         "max_prepared_transactions": 0, "max_locks_per_transaction": 64}


def running(before: Topology, limits: dict[str, int], held: dict[str, dict[str, int]] | None = None,
            pending: tuple[str, ...] = ()) -> Observed:
    """`before`'s nodes running and streaming, postgresql.auto.conf as `before` says, with these
    hot-standby values (`held`: per node); `pending`: settings the standbys wait to restart for."""
    nodes = {}
    for name in before.nodes:
        kw = {"limits": {**limits, **(held or {}).get(name, {})}, "restart_settings": RESTART_SETTINGS}
        pg = (pg_primary(before, **kw) if name == before.primary
              else pg_replica(before, name, pending_restart=pending, **kw))
        nodes[name] = NodeFacts(name, container=container(before, name), volume=volume(before, name), pg=pg)
    return converged(before, **nodes)


def steps(t: Topology, observed: Observed) -> list[tuple[str, str, str | None]]:
    """(node, kind, replay_past) of each restart and copy, in the order the waves run them."""
    wanted = (Kind.RESTART, Kind.CLONE, Kind.CREATE_VOLUME)
    return [(a.node, a.kind.value, a.replay_past) for wave in plan(t, observed).waves() for a in wave
            if a.kind in wanted]


BEFORE = topo(nodes=CASCADE)
WITH_NEW = {**CASCADE, "replica3": {}, "replica4": {"upstream": "replica3"}}
WAIT = "primary"  # replay_past: the primary's parameter change
LOWERED = topo(nodes=CASCADE, parameters={"max_connections": 50})
PREPARED = topo(nodes=CASCADE, parameters={"max_prepared_transactions": 20})

CASES = [
    pytest.param({"max_connections": 150}, CASCADE, running(BEFORE, TODAY),
                 [("replica2", "restart", None), ("replica", "restart", None), ("primary", "restart", None)],
                 id="raising: the deepest standby first, the primary last, nobody waits"),
    *[pytest.param({name: low}, CASCADE, running(BEFORE, TODAY),
                   [("primary", "restart", None), ("replica", "restart", WAIT), ("replica2", "restart", WAIT)],
                   id=f"lowering {name}: the primary first, then the cascade in order, each after replay")
      for name, low in [("max_connections", 50), ("max_worker_processes", 4), ("max_wal_senders", 20),
                        ("max_locks_per_transaction", 32)]],  # max_prepared_transactions: the last case
    pytest.param({"max_connections": 50}, WITH_NEW, running(BEFORE, TODAY),
                 [("primary", "restart", None), ("replica", "restart", WAIT), ("replica2", "restart", WAIT),
                  ("replica3", "create-volume", None), ("replica3", "clone", None),
                  ("replica4", "create-volume", None), ("replica4", "clone", None)],
                 id="lowering with new replicas: they are cloned after every restart, upstreams first"),
    pytest.param({"max_connections": 150}, WITH_NEW, running(BEFORE, TODAY),
                 [("replica3", "create-volume", None), ("replica3", "clone", None),
                  ("replica4", "create-volume", None), ("replica4", "clone", None),
                  ("replica2", "restart", None), ("replica", "restart", None), ("primary", "restart", None)],
                 id="raising with new replicas: cloned first (the primary's values are lower: they can serve)"),
    pytest.param({"max_connections": 50}, CASCADE,
                 running(LOWERED, TODAY, {"primary": {"max_connections": 50}}, pending=("max_connections",)),
                 [("replica2", "restart", WAIT), ("replica", "restart", WAIT)],
                 id="the primary lowered by an earlier apply: each standby still waits for replay"),
    pytest.param({}, CASCADE, running(PREPARED, {**TODAY, "max_prepared_transactions": 20}),
                 [("primary", "restart", None), ("replica", "restart", WAIT), ("replica2", "restart", WAIT)],
                 id="a setting removed from the file falls back to its default (20 → 0): a lowering too"),
]


@pytest.mark.parametrize(("parameters", "nodes", "observed", "expected"), CASES)
def test_restarts_and_copies_run_in_the_order_the_standbys_can_follow(
        parameters: dict[str, int], nodes: dict[str, dict[str, str]], observed: Observed,
        expected: list[tuple[str, str, str | None]]) -> None:
    assert steps(topo(nodes=nodes, parameters=parameters), observed) == expected


def test_a_standby_under_a_copy_made_after_the_restarts_restarts_in_the_next_round() -> None:
    """replica's data is gone: it is cloned after the restarts.  replica2, below it, cannot replay
    the primary's change before then, so its restart (which would wait for that replay in vain)
    is left to the next round; its new value is written in this one, after replica's copy."""
    observed = running(BEFORE, TODAY)
    observed = replace(observed, nodes={**observed.nodes, "replica": NodeFacts("replica")})
    p = plan(LOWERED, observed)
    assert steps(LOWERED, observed) == [("primary", "restart", None), ("replica", "create-volume", None),
                                        ("replica", "clone", None)]
    [configure] = [a for a in p.actions if a.node == "replica2"]
    assert configure.kind is Kind.CONFIGURE and configure.wave.phase is Phase.JOIN
    assert configure.reason.endswith("; its restart is left to the next round, once its upstream streams again")


def test_diff_says_why_in_each_reason() -> None:
    t = topo(nodes=WITH_NEW, parameters={"max_connections": 50})
    p = plan(t, running(BEFORE, TODAY))
    reasons = {(a.node, a.kind): a.reason for a in p.actions}
    assert "the primary first: it lowers max_connections 100 → 50" in reasons["primary", Kind.RESTART]
    assert "only once it has replayed primary's WAL past primary's parameter change" in reasons["replica2", Kind.RESTART]
    assert "after the restarts: primary lowers max_connections 100 → 50" in reasons["replica3", Kind.CLONE]
    late = {a.node for a in p.actions if a.wave.phase is Phase.JOIN}
    assert late == {"replica3", "replica4"}
    assert max(a.wave for a in p.actions if a.kind is Kind.RESTART) < min(a.wave for a in p.actions if a.node in late)


def stuck(t: Topology, node: str, state: str | None, recorded: dict[str, int]) -> NodeFacts:
    """A replica whose server does not answer (its container in `state`; None: no container), its
    pg_control recording these hot-standby values."""
    data = DataFacts(has_pgdata=True, system_identifier=SYSID, state=2, limits={**TODAY, **recorded})
    return NodeFacts(node, container=container(t, node, state=state) if state else None, volume=volume(t, node),
                     data=data, pg_error="connection refused")


LOW = topo(nodes=CASCADE, parameters={"max_connections": 50})
STUCK = [
    pytest.param(LOW, "restarting", [("replica", "rewrite-conf", {"max_connections": "100"}), ("replica", "start", {})],
                 id="restarted before it replayed the primary's change: held at 100 until it has"),
    pytest.param(LOW, None, [("replica", "rewrite-conf", {"max_connections": "100"}), ("replica", "create", {})],
                 id="its container removed after a failed start: held, then a container on its data"),
    pytest.param(LOW, "exited", [("replica", "rewrite-conf", {"max_connections": "100"}), ("replica", "start", {})],
                 id="stopped before it replayed the change: held"),
    pytest.param(BEFORE, "restarting", [("replica", "rewrite-conf", {}), ("replica", "start", {})],
                 id="the file reverted to 100: its conf rewritten from the file"),
    pytest.param(BEFORE, "exited", [("replica", "start", {})], id="stopped, and the file can start it: just start"),
]


@pytest.mark.parametrize(("t", "state", "expected"), STUCK)
def test_a_replica_that_cannot_start_on_its_settings_is_rewritten_from_the_file(
        t: Topology, state: str | None, expected: list[tuple[str, str, dict[str, str]]]) -> None:
    observed = running(BEFORE, TODAY, {"primary": {"max_connections": 50}} if t is LOW else {})
    observed = replace(observed, nodes={**observed.nodes, "replica": stuck(BEFORE, "replica", state, {})})
    p = plan(t, observed)
    assert [(a.node, a.kind.value, dict(a.settings)) for a in p.actions if a.node == "replica"] == expected


def test_lowering_one_and_raising_another_in_one_apply_is_refused_with_the_two_applies_that_do_it() -> None:
    t = topo(nodes=CASCADE, parameters={"max_connections": 50, "max_wal_senders": 60})
    p = plan(t, running(BEFORE, TODAY))
    assert not p.actions
    [refusal] = p.refusals
    assert "lowers max_connections 100 → 50 and raises max_wal_senders 40 → 60 in one apply" in refusal
    assert "Apply the raise first (keep max_connections: 100 in the file), then the lowering" in refusal
    # each on its own goes through
    assert not plan(topo(nodes=CASCADE, parameters={"max_wal_senders": 60}), running(BEFORE, TODAY)).refusals
    assert not plan(topo(nodes=CASCADE, parameters={"max_connections": 50}), running(BEFORE, TODAY)).refusals
    solo = {"primary": {}}  # no standby to follow: one restart does both
    assert not plan(topo(nodes=solo, parameters={"max_connections": 50, "max_wal_senders": 60}),
                    running(topo(nodes=solo), TODAY)).refusals
