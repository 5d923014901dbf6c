"""The planner on plain values: (topology, observed state) -> expected actions or refusals.

Each case builds the observed world by hand; no Docker, no Postgres, no mocks.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from pgtopo import desired, labels as L
from pgtopo.actions import Kind
from pgtopo.observed import (
    ContainerFacts,
    DataFacts,
    NetworkFacts,
    NodeFacts,
    Observed,
    PgFacts,
    Slot,
    VolumeFacts,
    WalReceiver,
)
from pgtopo.plan import plan
from pgtopo.spec import Topology

SYSID = 7000000000000000001
OTHER = 7000000000000000999


def topo(**overrides) -> Topology:
    doc = {
        "version": 1,
        "cluster": "pg",
        "image": "pgtopo-local/postgres:17",
        "network": "pg_stream",
        "primary": "primary",
        "nodes": {"primary": {}, "replica": {}, "replica2": {"upstream": "replica"}},
    }
    doc.update(overrides)
    return Topology.model_validate(doc)


def container(t: Topology, node: str, state: str = "running", image: str | None = None, hash_: str | None = None):
    return ContainerFacts(
        id=f"id-{node}", name=f"{t.cluster}-{node}", state=state, image=image or t.image,
        labels={L.CLUSTER: t.cluster, L.ROLE: "node", L.NODE: node,
                L.CONFIG_HASH: hash_ or desired.node_hash(t, node)},
        host_port=40000,
    )


def volume(t: Topology, node: str) -> VolumeFacts:
    return VolumeFacts(name=f"{t.cluster}-{node}-data", labels={L.CLUSTER: t.cluster, L.ROLE: "node", L.NODE: node})


def pg_primary(t: Topology, **kw) -> PgFacts:
    slots = tuple(Slot(L.slot_name(r)) for r in t.replicas() if t.upstream_of(r) == t.primary)
    base = dict(server_version=170000, system_identifier=SYSID, in_recovery=False, timeline=1, lsn=0x4000000,
                slots=slots, auto_conf=desired.settings(t, t.primary), replication_roles=("repuser",),
                restart_settings=frozenset({"max_connections", "shared_buffers"}))
    base.update(kw)
    return PgFacts(**base)


def pg_replica(t: Topology, node: str, **kw) -> PgFacts:
    up = t.upstream_of(node)
    slots = tuple(Slot(L.slot_name(r)) for r in t.replicas() if t.upstream_of(r) == node)
    base = dict(server_version=170000, system_identifier=SYSID, in_recovery=True, timeline=1, lsn=100,
                receiver=WalReceiver("streaming", up, L.slot_name(node)), slots=slots,
                auto_conf={**desired.settings(t, node), **desired.replication_settings(t, node)},
                restart_settings=frozenset({"max_connections", "shared_buffers"}))
    base.update(kw)
    return PgFacts(**base)


def converged(t: Topology, **node_overrides) -> Observed:
    """A healthy cluster exactly as `t` describes it; override any node's facts by name."""
    nodes = {}
    for name in t.nodes:
        pg = pg_primary(t) if name == t.primary else pg_replica(t, name)
        nodes[name] = NodeFacts(name=name, container=container(t, name), volume=volume(t, name), pg=pg)
    nodes.update(node_overrides)
    return Observed(
        cluster=t.cluster,
        network=NetworkFacts(t.network_name, "net-id", "172.18.0.0/16", owned=True),
        state_volume=VolumeFacts(f"{t.cluster}-pgtopo-state", {L.CLUSTER: t.cluster}),
        system_identifier=SYSID,
        credentials=True,
        nodes=nodes,
    )


def kinds(p) -> list[tuple[str, str]]:
    return [(a.node, a.kind.value) for a in p.actions]


T = topo()

CASES = [
    pytest.param(
        T, Observed(cluster="pg"),
        [("", "create-network"), ("", "create-state"),
         ("primary", "create-volume"), ("primary", "init"), ("primary", "create-role"),
         ("replica", "create-volume"), ("replica", "clone"),
         ("replica2", "create-volume"), ("replica2", "clone")],
        id="empty engine: the whole cluster, primary first, cascade last; each new container makes its data",
    ),
    pytest.param(T, converged(T), [], id="converged: nothing to do"),
    pytest.param(
        T, replace(converged(T), system_identifier=None), [("primary", "record-identity")],
        id="state without the system identifier (apply killed after initdb): record the primary's",
    ),
    pytest.param(
        T, replace(converged(T, primary=NodeFacts("primary", container=container(T, "primary"),
                                                  volume=volume(T, "primary"), pg=pg_primary(T, replication_roles=()))),
                   system_identifier=None),
        [("primary", "create-role")],
        id="and without the replication role (killed before it was made): create-role records the identity too",
    ),
    pytest.param(
        T, converged(T, replica=NodeFacts("replica", container=None, volume=volume(T, "replica"),
                                         data=DataFacts(True, SYSID))),
        [("replica", "create")],
        id="replica container removed, volume intact: recreate on the same data, no clone",
    ),
    pytest.param(
        T, converged(T, replica=NodeFacts("replica", container=container(T, "replica", "exited"),
                                         volume=volume(T, "replica"), data=DataFacts(True, SYSID))),
        [("replica", "start")],
        id="replica container stopped: start it",
    ),
    pytest.param(
        T, converged(T, replica2=NodeFacts("replica2", container=container(T, "replica2", "exited"),
                                          volume=volume(T, "replica2"), data=DataFacts(False))),
        [("replica2", "clone")],
        id="replica volume emptied: a new container re-clones from its upstream",
    ),
    pytest.param(
        T, converged(T, replica=NodeFacts("replica", container=container(T, "replica", "exited"),
                                         volume=volume(T, "replica"), data=DataFacts(True, OTHER))),
        [("replica", "re-clone"), ("replica", "start")],
        id="replica holds another cluster's data: re-clone (destructive)",
    ),
    pytest.param(
        T, converged(T, primary=NodeFacts("primary", container=None, volume=volume(T, "primary"),
                                         data=DataFacts(True, SYSID, state=1, wal_end=0x4000000, wal_timeline=1))),
        [("primary", "create")],
        id="primary container removed, volume intact: recreate, never initdb",
    ),
    pytest.param(
        topo(image="pgtopo-local/postgres:17.1"), converged(T),
        [("replica2", "recreate"), ("replica", "recreate"), ("primary", "recreate")],
        id="image changed: recreate containers on their volumes, replicas first, primary last",
    ),
]


@pytest.mark.parametrize(("t", "observed", "expected"), CASES)
def test_plan_cases(t: Topology, observed: Observed, expected: list[tuple[str, str]]) -> None:
    p = plan(t, observed)
    assert not p.refusals, p.refusals
    assert kinds(p) == expected


def test_every_action_has_a_reason_and_waves_put_upstreams_first() -> None:
    p = plan(T, Observed(cluster="pg"))
    assert all(a.reason for a in p.actions)
    wave_of = {a.node: a.wave for a in p.actions if a.kind is Kind.CLONE or a.kind is Kind.INIT}
    assert wave_of["primary"] < wave_of["replica"] < wave_of["replica2"]


def test_reclone_of_foreign_data_is_destructive_and_fresh_clone_is_not() -> None:
    other = converged(T, replica=NodeFacts("replica", container=container(T, "replica", "exited"),
                                          volume=volume(T, "replica"), data=DataFacts(True, OTHER)))
    assert [a.node for a in plan(T, other).destructive] == ["replica"]
    assert plan(T, Observed(cluster="pg")).destructive == ()


REFUSALS = [
    pytest.param(
        converged(T, primary=NodeFacts("primary", volume=volume(T, "primary"), data=DataFacts(False)),
                  replica=NodeFacts("replica", volume=volume(T, "replica"), data=DataFacts(True, SYSID))),
        "still hold this cluster's data",
        id="primary data lost while a replica holds data: never initdb",
    ),
    pytest.param(
        Observed(cluster="pg", foreign=("container pg-primary",)),
        "container pg-primary exists but was not made by pgtopo",
        id="an unlabelled object with a node's name",
    ),
    pytest.param(
        converged(T, primary=NodeFacts("primary", container=container(T, "primary", "exited"),
                                       volume=volume(T, "primary"), data=DataFacts(True, SYSID)),
                  replica=NodeFacts("replica", container=container(T, "replica"), volume=volume(T, "replica"),
                                    pg=pg_replica(T, "replica", in_recovery=False, receiver=None))),
        "starting primary as the primary would make two writers. Name replica as the primary in the file "
        "(primary: replica)",
        id="a replica accepts writes while its upstream is down: never a second writer, name the writer",
    ),
    pytest.param(
        converged(T, primary=NodeFacts("primary", container=container(T, "primary"), volume=volume(T, "primary"),
                                       pg=pg_primary(T, system_identifier=OTHER))),
        "belongs to another cluster",
        id="primary's data is of another cluster",
    ),
]


@pytest.mark.parametrize(("observed", "message"), REFUSALS)
def test_refusals_plan_no_action(observed: Observed, message: str) -> None:
    p = plan(T, observed)
    assert p.actions == ()
    assert any(message in r for r in p.refusals), p.refusals


def test_parameters_changed_configure_then_restart_replicas_before_primary() -> None:
    t = topo(parameters={"work_mem": "8MB", "max_connections": 150})
    p = plan(t, converged(T))
    configure = [a for a in p.actions if a.kind is Kind.CONFIGURE]
    assert {a.node for a in configure} == {"primary", "replica", "replica2"}
    assert dict(configure[0].settings) == {"max_connections": "150", "work_mem": "8MB"}
    restarts = [a.node for a in sorted(p.actions, key=lambda a: a.wave) if a.kind is Kind.RESTART]
    assert restarts == ["replica2", "replica", "primary"]


def test_rolling_recreate_takes_one_node_per_wave() -> None:
    p = plan(topo(image="pgtopo-local/postgres:17.1"), converged(T))
    assert [len(w) for w in p.waves()] == [1, 1, 1]


def test_lowering_a_hot_standby_setting_restarts_the_primary_first() -> None:
    t = topo(parameters={"max_connections": 50})
    high = {"max_connections": 100}
    observed = converged(T, primary=NodeFacts("primary", container=container(T, "primary"),
                                              volume=volume(T, "primary"), pg=pg_primary(T, limits=high)))
    restarts = [a.node for a in plan(t, observed).actions if a.kind is Kind.RESTART]
    assert restarts == ["primary", "replica", "replica2"]
    raised = topo(parameters={"max_connections": 200})
    restarts = [a.node for a in plan(raised, observed).actions if a.kind is Kind.RESTART]
    assert restarts == ["replica2", "replica", "primary"]


def test_prune_volumes_deletes_the_removed_node_volume_only_when_asked() -> None:
    t = topo(nodes={"primary": {}, "replica": {}})
    kept = plan(t, converged(T))
    assert Kind.REMOVE_VOLUME not in {a.kind for a in kept.actions}
    pruned = plan(t, converged(T), prune_volumes=True)
    [gone] = [a for a in pruned.actions if a.kind is Kind.REMOVE_VOLUME]
    assert gone.target == "pg-replica2-data" and gone.destructive


def test_parameter_removed_from_file_is_reset() -> None:
    observed = converged(T, primary=NodeFacts("primary", container=container(T, "primary"),
                                              volume=volume(T, "primary"),
                                              pg=pg_primary(T, auto_conf={"work_mem": "8MB"})))
    [action] = plan(T, observed).actions
    assert action.kind is Kind.CONFIGURE and action.settings == (("work_mem", None),)


def test_node_override_beats_cluster_parameter() -> None:
    t = topo(parameters={"work_mem": "8MB"},
             nodes={"primary": {}, "replica": {"parameters": {"work_mem": "16MB"}}})
    fresh = plan(t, converged(t))
    assert fresh.actions == ()
    assert "work_mem = '16MB'" in desired.auto_conf(t, "replica")
    assert "work_mem = '8MB'" in desired.auto_conf(t, "primary")


def test_wrong_upstream_is_repointed_and_old_slot_dropped() -> None:
    t = topo(nodes={"primary": {}, "replica": {}, "replica2": {}})  # replica2 now straight from the primary
    observed = converged(T)
    p = plan(t, observed)
    assert ("replica2", "repoint") in kinds(p)
    repoint = next(a for a in p.actions if a.kind is Kind.REPOINT)
    assert repoint.upstream == "primary" and "streams from replica" in repoint.reason
    assert ("replica", "drop-slot") in kinds(p)


def test_a_standby_whose_settings_name_the_file_s_upstream_but_streams_from_another_is_repointed() -> None:
    """A repoint killed between its ALTER SYSTEM and its reload: postgresql.auto.conf already says
    the new upstream, the receiver still streams from the old one, whose slot for it is about to be
    dropped as unused; without a reload it would never stream again."""
    t = topo(nodes={"primary": {}, "replica": {}, "replica2": {}})  # replica2 now straight from the primary
    settled = converged(t)
    facts = settled.node("replica2")
    assert facts.pg is not None and facts.pg.receiver is not None
    old_stream = replace(facts.pg, receiver=replace(facts.pg.receiver, upstream="replica"))
    p = plan(t, converged(t, replica2=replace(facts, pg=old_stream)))
    repoint = next(a for a in p.actions if a.node == "replica2")
    assert repoint.kind is Kind.REPOINT and repoint.upstream == "primary" and "streams from replica" in repoint.reason
    assert plan(t, settled).actions == ()


def test_node_removed_from_file_is_removed_and_its_volume_kept() -> None:
    t = topo(nodes={"primary": {}, "replica": {}})
    p = plan(t, converged(T))
    remove = next(a for a in p.actions if a.kind is Kind.REMOVE)
    assert remove.node == "replica2" and remove.destructive and "is kept" in remove.reason
    assert ("replica", "drop-slot") in kinds(p)
    assert max(a.wave for a in p.actions if a.kind is Kind.REMOVE) < max(
        a.wave for a in p.actions if a.kind is Kind.DROP_SLOT)


def test_left_over_job_is_removed_before_the_clone() -> None:
    job = ContainerFacts(id="j", name="pg-replica-clone", state="exited", image=T.image,
                         labels={L.CLUSTER: "pg", L.ROLE: "job", L.NODE: "replica"})
    observed = converged(T, replica=NodeFacts("replica", volume=volume(T, "replica"), data=DataFacts(False),
                                              jobs=(job,)))
    assert kinds(plan(T, observed)) == [("replica", "remove-job"), ("replica", "clone")]


def test_missing_slot_is_created_on_the_upstream() -> None:
    observed = converged(T, primary=NodeFacts("primary", container=container(T, "primary"),
                                              volume=volume(T, "primary"), pg=pg_primary(T, slots=())))
    [action] = plan(T, observed).actions
    assert (action.kind, action.node, action.upstream) == (Kind.CREATE_SLOT, "replica", "primary")


def promoted(t: Topology, node: str, timeline: int, lsn: int, history) -> NodeFacts:
    return NodeFacts(node, container=container(t, node), volume=volume(t, node),
                     pg=pg_replica(t, node, in_recovery=False, receiver=None, timeline=timeline, lsn=lsn,
                                   history=history))


REJOIN = [
    pytest.param(promoted(T, "replica", 2, 0x3000200, ((1, 0x3000148),)), Kind.REWIND, "diverged from primary at 0/3000148",
                 id="promoted by hand and written to: rewind"),
    pytest.param(promoted(T, "replica", 1, 0x9000000, ()), Kind.RECLONE, "ahead of primary on the same timeline",
                 id="ahead on the same timeline: re-clone"),
    pytest.param(promoted(T, "replica", 1, 0x50, ()), Kind.RECLONE, "may differ from its upstream's at the same positions",
                 id="writable on the primary's timeline, behind it: its WAL cannot be trusted, re-clone"),
]


@pytest.mark.parametrize(("facts", "kind", "reason"), REJOIN)
def test_a_second_writer_is_refused_whatever_the_file_says(facts: NodeFacts, kind: Kind, reason: str) -> None:
    p = plan(T, converged(T, replica=facts))
    assert p.actions == ()
    [refusal] = p.refusals
    assert refusal.startswith("several nodes accept writes: primary (timeline 1, WAL 0/4000000); replica (timeline")
    assert "--allow-data-loss" in refusal


@pytest.mark.parametrize(("facts", "kind", "reason"), REJOIN)
def test_with_allow_data_loss_the_files_primary_wins_and_the_other_writer_is_brought_back(
        facts: NodeFacts, kind: Kind, reason: str) -> None:
    p = plan(T, converged(T, replica=facts), allow_data_loss=True)
    assert not p.refusals
    first = p.actions[0]
    assert (first.node, first.kind) == ("replica", kind) and reason in first.reason, first.reason
    assert first.destructive
    assert ("replica", "start") in kinds(p)


def test_a_standby_that_cannot_stream_is_rewound_only_when_its_timeline_diverged() -> None:
    """The old primary after a failover: a standby on timeline 1 past the new primary's fork.
    What it holds past the fork exists on no other node: rewinding it needs --allow-data-loss."""
    new_primary = NodeFacts("primary", container=container(T, "primary"), volume=volume(T, "primary"),
                            pg=pg_primary(T, timeline=2, lsn=0x5000000, history=((1, 0x3000148),)))
    stuck = NodeFacts("replica", container=container(T, "replica"), volume=volume(T, "replica"),
                      pg=pg_replica(T, "replica", timeline=1, lsn=0x3000200, receiver=None))
    refused = plan(T, converged(T, primary=new_primary, replica=stuck))
    assert refused.actions == ()
    assert refused.refusals[0].startswith("replica: a rewind would discard 184 bytes of WAL on timeline 1")
    assert "(primary: replica)" in refused.refusals[0] and "--allow-data-loss" in refused.refusals[0]
    first = plan(T, converged(T, primary=new_primary, replica=stuck), allow_data_loss=True).actions[0]
    assert (first.kind, first.node, first.destructive, first.data_loss) == (Kind.REWIND, "replica", True, True)
    assert "cannot stream: timeline 1 diverged from primary at 0/3000148" in first.reason
    assert "discards 184 bytes of WAL on timeline 1" in first.reason
    waiting = NodeFacts("replica", container=container(T, "replica"), volume=volume(T, "replica"),
                        pg=pg_replica(T, "replica", timeline=1, lsn=0x100, receiver=WalReceiver("starting", None, None)))
    assert plan(T, converged(T, replica=waiting)).actions == ()


def test_a_standby_within_the_new_primarys_history_follows_without_losing_anything() -> None:
    """A clean switchover leaves the old timeline ending exactly where the standby stopped:
    equality is a follow, not a rewind (the boundary of timelines.decide)."""
    new_primary = NodeFacts("primary", container=container(T, "primary"), volume=volume(T, "primary"),
                            pg=pg_primary(T, timeline=2, lsn=0x5000000, history=((1, 0x3000148),)))
    exact = NodeFacts("replica", container=container(T, "replica"), volume=volume(T, "replica"),
                      pg=pg_replica(T, "replica", timeline=1, lsn=0x3000148, receiver=None))
    p = plan(T, converged(T, primary=new_primary, replica=exact))
    assert not p.refusals and all(a.kind is not Kind.REWIND for a in p.actions)


def test_container_cut_off_its_network_is_reconnected() -> None:
    cut = replace(container(T, "replica"), networks=("bridge",))
    observed = converged(T, replica=replace(converged(T).node("replica"), container=cut))
    [action] = plan(T, observed).actions
    assert (action.kind, action.node) == (Kind.CONNECT, "replica") and "pg_stream" in action.reason


def test_a_missing_image_is_refused_before_anything_when_pulls_are_forbidden() -> None:
    p = plan(T, replace(Observed(cluster="pg"), image_present=False), pull="never")
    assert p.actions == () and "--pull never forbids pulling it" in p.refusals[0] and T.image in p.refusals[0]


def test_a_missing_image_is_pulled_before_anything_else() -> None:
    p = plan(T, replace(Observed(cluster="pg"), image_present=False), pull="missing")
    assert not p.refusals and p.actions[0].kind is Kind.PULL and p.actions[0].target == T.image
    assert [a for a in p.actions if a.kind is Kind.PULL] == [p.actions[0]]
    assert p.waves()[0][0] is p.actions[0]  # the first wave runs first: the pull precedes the network, init, ...
    assert any("once apply has pulled it" in warning for warning in p.warnings)
    # an image of another major would be refused once it is there; until then the plan cannot know
    assert plan(T, converged(T), pull="missing").actions == ()


def test_pull_always_pulls_outside_the_plan_so_a_cluster_in_sync_stays_in_sync() -> None:
    p = plan(T, converged(T), pull="always")
    assert p.empty and any("--pull always" in warning for warning in p.warnings)


def test_a_port_open_to_every_interface_is_allowed_with_a_warning() -> None:
    t = topo(nodes={"primary": {"bind": "0.0.0.0", "port": 6543}, "replica": {}})
    p = plan(t, converged(topo(nodes={"primary": {}, "replica": {}})))
    assert [a.kind for a in p.actions] == [Kind.RECREATE]  # the binding is part of the container
    assert p.warnings and "bind: 0.0.0.0" in p.warnings[0] and p.warnings[0].startswith("primary:")
    assert plan(T, converged(T)).warnings == ()


@pytest.mark.parametrize("drift", [("replication_password",), ("superuser_password", "replication_password")])
def test_a_password_changed_in_the_file_is_set_on_the_primary(drift: tuple[str, ...]) -> None:
    observed = replace(converged(T), password_drift=drift)
    [action] = plan(T, observed).actions
    assert (action.node, action.kind) == ("primary", Kind.SET_PASSWORD)
    assert all(f"auth.{name}" in action.reason for name in drift) and not action.destructive


def test_password_drift_names_only_what_the_file_sets_and_differs() -> None:
    from pgtopo.observe import password_drift as _password_drift
    from pgtopo.state import ClusterState

    state = ClusterState(superuser_password="su-old", replication_password="repl")
    assert _password_drift((None, None), state) == ()
    assert _password_drift(("su-old", "repl"), state) == ()
    assert _password_drift(("su-new", None), state) == ("superuser_password",)
    assert _password_drift((None, "repl-new"), state) == ("replication_password",)
    assert _password_drift(("su-new", "repl-new"), None) == ()  # no cluster yet: nothing to change


def test_a_paused_node_is_refused_before_anything() -> None:
    frozen = replace(converged(T).node("replica2"), container=container(T, "replica2", "paused"))
    p = plan(T, converged(T, replica2=frozen))
    assert p.actions == () and p.refusals[0].startswith("replica2: its container pg-replica2 is paused")


def test_a_helper_container_left_by_a_killed_pgtopo_is_removed() -> None:
    p = plan(T, replace(converged(T), leftovers=("pg-pgtopo-helper-0a1b2c3d",)))
    [action] = p.actions
    assert (action.kind, action.node, action.target) == (Kind.REMOVE_JOB, "", "pg-pgtopo-helper-0a1b2c3d")
    assert "left by an interrupted pgtopo" in action.reason


def test_with_120_nodes_rolls_never_share_a_wave_with_restarts() -> None:
    """Rolling ranks go past 100 here: each recreate and each restart still gets a wave of its own,
    every recreate before every restart."""
    names = ["primary"] + [f"r{i:03}" for i in range(119)]
    before = topo(nodes={n: {} for n in names})
    after = topo(nodes={n: {} for n in names}, image="pgtopo-local/postgres:17.1",
                 parameters={"max_connections": 150})
    p = plan(after, converged(before))
    kinds = [{a.kind for a in w} - {Kind.CONFIGURE} for w in p.waves()]
    rolls = [i for i, k in enumerate(kinds) if Kind.RECREATE in k]
    restarts = [i for i, k in enumerate(kinds) if Kind.RESTART in k]
    assert len(rolls) == len(restarts) == 120
    assert all(len(k) == 1 for k in kinds if Kind.RECREATE in k or Kind.RESTART in k)
    assert max(rolls) < min(restarts)
    assert [w[0].node for w in p.waves() if w[0].kind is Kind.RESTART][-1] == "primary"


def test_a_primary_conninfo_with_the_file_s_values_in_another_order_is_not_repointed() -> None:
    from pgtopo import conninfo

    want = conninfo.parse(desired.conninfo(T, "replica"))
    reordered = conninfo.make(**dict(reversed(list(want.items()))))
    pg = pg_replica(T, "replica", auto_conf={**pg_replica(T, "replica").auto_conf, "primary_conninfo": reordered})
    assert kinds(plan(T, converged(T, replica=replace(converged(T).node("replica"), pg=pg)))) == []
    other = conninfo.make(**{**want, "application_name": "someone"})
    pg = pg_replica(T, "replica", auto_conf={**pg.auto_conf, "primary_conninfo": other})
    assert kinds(plan(T, converged(T, replica=replace(converged(T).node("replica"), pg=pg)))) == [("replica", "repoint")]


def test_a_container_made_from_another_image_of_the_file_s_image_name_is_rolled_onto_the_new_one() -> None:
    """After `--pull always` (or a build) the file's image name names a newer image: the containers
    made from the old one are recreated one node a wave, replicas first, as docker compose does."""
    old, new = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    made = {n: replace(container(T, n), image_id=old) for n in T.nodes}
    base = converged(T)
    at_rest = replace(base, image_id=old, nodes={n: replace(f, container=made[n]) for n, f in base.nodes.items()})
    assert plan(T, at_rest).actions == ()
    pulled = replace(at_rest, image_id=new)
    p = plan(T, pulled)
    assert {a.kind for a in p.actions} == {Kind.RECREATE} and p.actions[-1].node == T.primary  # the primary last
    assert sorted(a.node for a in p.actions) == sorted(T.nodes)
    assert all(f"{T.image} now names another image (aaaaaaaaaaaa → bbbbbbbbbbbb" in a.reason for a in p.actions)
    assert [len(w) for w in p.waves()] == [1] * len(T.nodes)  # one node at a time
    assert plan(T, replace(pulled, image_id=None)).actions == ()  # the image's id unknown: nothing on a guess
    # Docker lists such a container by its image's id, the name having moved on
    listed = {n: replace(f, container=replace(f.container, image=old)) for n, f in pulled.nodes.items()}
    again = plan(T, replace(pulled, nodes=listed))
    assert [a.reason for a in again.actions] == [a.reason for a in p.actions]
