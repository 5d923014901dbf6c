"""The pooler's part of a plan, on plain values: its container made, started, pointed at the
primary, resumed or removed, and which steps it is paused around."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pgtopo import labels as L
from pgtopo.actions import Kind, Phase
from pgtopo.observed import ContainerFacts, NodeFacts, Observed, PoolerFacts
from pgtopo.plan import plan
from pgtopo.pooler import config, planning
from pgtopo.spec import Topology

from .test_plan import container, converged, pg_replica, topo, volume

POOLER = {"image": "pgtopo-local/pgbouncer:1", "port": 6432}
T = topo(pooler=POOLER)
SESSION = topo(pooler={**POOLER, "pool_mode": "session"})


def pooler_container(t: Topology, state: str = "running", hash_: str | None = None) -> ContainerFacts:
    return ContainerFacts(id="id-pooler", name=f"{t.cluster}-pooler", state=state, image="pgtopo-local/pgbouncer:1",
                          labels={L.CLUSTER: t.cluster, L.ROLE: "pooler",
                                  L.CONFIG_HASH: hash_ or config.config_hash(t)}, host_port=6432)


def with_pooler(obs: Observed, t: Topology = T, **facts) -> Observed:
    base = dict(container=pooler_container(t), targets=(t.primary,), paused=False, clients=0, servers=0)
    if "target" in facts:
        target = facts.pop("target")
        facts["targets"] = (target,) if target else ()
    base.update(facts)
    return replace(obs, pooler=PoolerFacts(**base))


def pooler_kinds(p) -> list[str]:
    return [a.kind.value for a in p.actions if a.node == "pooler"]


@pytest.mark.parametrize("t, obs, expected", [
    pytest.param(topo(), converged(topo()), [], id="no pooler in the file, none found: nothing"),
    pytest.param(T, converged(T), ["create-pooler"], id="none found: create it"),
    pytest.param(T, with_pooler(converged(T)), [], id="running, answering, pointing at the primary: nothing"),
    pytest.param(T, with_pooler(converged(T), container=pooler_container(T, hash_="other")), ["recreate-pooler"],
                 id="made with other settings: make it again"),
    pytest.param(T, with_pooler(converged(T), container=pooler_container(T, state="exited"), paused=None),
                 ["start-pooler"], id="stopped: start it"),
    pytest.param(T, with_pooler(converged(T), paused=None, error="refused"), ["recreate-pooler"],
                 id="running, its console refuses pgtopo: make it again"),
    pytest.param(T, with_pooler(converged(T), target="replica"), ["repoint-pooler"],
                 id="pointing at a standby while the primary takes writes: point it at the primary"),
    pytest.param(T, with_pooler(converged(T), paused=True), ["resume-pooler"],
                 id="paused with no apply running: resume it"),
    pytest.param(topo(), with_pooler(converged(topo())), ["remove-pooler"], id="the file has no pooler: remove it"),
])
def test_the_pooler_is_reconciled_like_a_node(t: Topology, obs: Observed, expected: list[str]) -> None:
    assert pooler_kinds(plan(t, obs)) == expected


def test_it_is_made_after_the_nodes_once_the_primary_runs() -> None:
    p = plan(T, Observed(cluster="pg"))
    assert p.actions[-1].kind is Kind.CREATE_POOLER and p.actions[-1].wave.phase is Phase.POOLER


def test_no_repoint_while_the_file_promotes_another_node() -> None:
    t = topo(pooler=POOLER, primary="replica", nodes={"primary": {}, "replica": {}, "replica2": {"upstream": "replica"}})
    caught_up = NodeFacts("replica", container=container(T, "replica"), volume=volume(T, "replica"),
                          pg=pg_replica(T, "replica", lsn=0x4000000))
    obs = with_pooler(converged(T, replica=caught_up), t=t, target="primary")
    p = plan(t, obs)
    assert any(a.kind is Kind.SWITCHOVER for a in p.actions)
    assert Kind.REPOINT_POOLER not in {a.kind for a in p.actions}
    switch = next(a for a in p.actions if a.kind is Kind.SWITCHOVER)
    assert switch.pause_pooler  # the switchover repoints it inside its pause


def restart_of(node: str, t: Topology = T):
    """The plan for a restart-only setting change, with a pooler that answers."""
    changed = topo(pooler=t.pooler.model_dump(), parameters={"max_connections": 200})
    obs = with_pooler(converged(T), t=changed)
    return {a.node: a for a in plan(changed, obs).actions if a.kind is Kind.RESTART}


def test_a_restart_of_the_primary_is_paused_around_and_a_replica_s_is_not() -> None:
    restarts = restart_of("primary")
    assert restarts["primary"].pause_pooler
    assert not restarts["replica"].pause_pooler and not restarts["replica2"].pause_pooler


def test_a_session_pool_is_never_paused_and_diff_warns() -> None:
    changed = topo(pooler=SESSION.pooler.model_dump(), parameters={"max_connections": 200})
    p = plan(changed, with_pooler(converged(T), t=changed))
    assert not any(a.pause_pooler for a in p.actions)
    assert any("session" in w for w in p.warnings)


def test_a_pooler_that_does_not_answer_is_not_paused_around_anything() -> None:
    changed = topo(pooler=POOLER, parameters={"max_connections": 200})
    p = plan(changed, with_pooler(converged(T), t=changed, paused=None, error="down"))
    assert not any(a.pause_pooler for a in p.actions)


def test_a_pause_already_planned_is_not_resumed_first() -> None:
    changed = topo(pooler=POOLER, parameters={"max_connections": 200})
    p = plan(changed, with_pooler(converged(T), t=changed, paused=True))
    assert Kind.RESUME_POOLER not in {a.kind for a in p.actions}


def test_a_stopped_primary_is_not_repointed_to() -> None:
    stopped = NodeFacts("primary", container=container(T, "primary", state="exited"), volume=volume(T, "primary"))
    obs = with_pooler(converged(T, primary=stopped), target="replica")
    assert "repoint-pooler" not in pooler_kinds(plan(T, obs))



RO = topo(pooler={**POOLER, "read_only": {"port": 6433}})


def read_pooler(t: Topology, targets: tuple[str, ...], **facts) -> PoolerFacts:
    c = ContainerFacts(id="id-ro", name=f"{t.cluster}-pooler-ro", state="running", image="pgtopo-local/pgbouncer:1",
                       labels={L.CLUSTER: t.cluster, L.ROLE: "pooler", config.POOL_LABEL: "read-only",
                               L.CONFIG_HASH: config.config_hash(t, "read-only")}, host_port=6433)
    return PoolerFacts(**{"container": c, "targets": targets, "paused": False, "clients": 0, "servers": 0, **facts})


def streaming(t: Topology, **overrides) -> Observed:
    """A converged cluster whose replicas have replayed all the primary's WAL."""
    replicas = {n: NodeFacts(n, container=container(t, n), volume=volume(t, n), pg=pg_replica(t, n, lsn=0x4000000))
                for n in t.replicas()}
    return converged(t, **{**replicas, **overrides})


def test_the_read_only_endpoint_goes_to_the_replicas_that_stream() -> None:
    obs = with_pooler(streaming(RO), t=RO)
    assert [a.kind.value for a in plan(RO, obs).actions if a.node == "pooler-ro"] == ["create-pooler"]
    assert planning.read_targets(RO, obs) == ("replica", "replica2")
    in_sync = replace(obs, read_pooler=read_pooler(RO, ("replica", "replica2")))
    assert plan(RO, in_sync).actions == ()


def test_a_replica_that_stops_streaming_or_lags_leaves_the_read_only_pool() -> None:
    stopped = NodeFacts("replica2", container=container(RO, "replica2", state="exited"), volume=volume(RO, "replica2"))
    obs = replace(with_pooler(streaming(RO, replica2=stopped), t=RO), read_pooler=read_pooler(RO, ("replica", "replica2")))
    assert planning.read_targets(RO, obs) == ("replica",)
    repoint = [a for a in plan(RO, obs).actions if a.node == "pooler-ro"]
    assert [a.kind for a in repoint] == [Kind.REPOINT_POOLER] and "replica2" in repoint[0].reason
    cut_off = NodeFacts("replica", container=container(RO, "replica"), volume=volume(RO, "replica"),
                        pg=pg_replica(RO, "replica", lsn=0x4000000, receiver=None))  # runs, streams from nobody
    assert planning.read_targets(RO, replace(obs, nodes={**obs.nodes, "replica": cut_off})) == ("primary",)
    lagging = NodeFacts("replica", container=container(RO, "replica"), volume=volume(RO, "replica"),
                        pg=pg_replica(RO, "replica", lsn=0x4000000 - 17 * 1024 * 1024))
    assert planning.read_targets(RO, replace(obs, nodes={**obs.nodes, "replica": lagging})) == ("primary",)


def test_the_read_only_endpoint_leaves_with_the_file_s_read_only() -> None:
    obs = replace(with_pooler(converged(T)), read_pooler=read_pooler(RO, ("replica",)))
    assert [(a.node, a.kind.value) for a in plan(T, obs).actions] == [("pooler-ro", "remove-pooler")]


def test_the_read_only_endpoint_is_its_own_container() -> None:
    spec = config.container(RO, "read-only")
    assert spec.name == "pg-pooler-ro" and spec.host_port == 6433 and spec.labels[config.POOL_LABEL] == "read-only"
    assert config.config_hash(RO, "read-only") != config.config_hash(RO)
    ini = config.ini(RO, ("replica", "replica2"), "read-only")
    assert "* = host=pg-replica,pg-replica2 port=5432\n" in ini and "server_round_robin = 1" in ini
    assert "default_transaction_read_only" in config.ini(RO, ("primary",), "read-only")
    assert "default_transaction_read_only" not in config.ini(RO, ("primary",))
