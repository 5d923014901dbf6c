"""What `diff` shows for the cluster as a whole, word for word: the network, the state volume and
the helper containers a killed pgtopo left, the image pull and its warnings, the warning about a
port open to every interface, and the warnings of synchronous replication side by side.  Pure,
like test_plan.py."""

from __future__ import annotations

from dataclasses import replace

from pgtopo.actions import Kind, Wave
from pgtopo.observed import NodeFacts, Observed, VolumeFacts
from pgtopo.plan import plan

from .test_plan import T, container, converged, pg_replica, topo, volume
from .test_synchronous import running, sync_topo


def cluster_wide(p) -> list[tuple[Kind, str, str, Wave, str | None]]:
    assert not p.refusals, p.refusals
    return [(a.kind, a.node, a.reason, a.wave, a.target) for a in p.actions if a.node == ""]


def test_an_empty_engine_gets_the_network_and_the_state_volume_first() -> None:
    assert cluster_wide(plan(T, Observed(cluster="pg"))) == [
        (Kind.CREATE_NETWORK, "", "network pg_stream does not exist", Wave(), None),
        (Kind.CREATE_STATE, "", "no stored credentials yet: keep the passwords in the state volume", Wave(), None),
    ]


def test_a_state_volume_without_credentials_gets_them() -> None:
    """The volume exists (made by an apply killed before it wrote the passwords), nothing holds data."""
    empty = replace(Observed(cluster="pg"), state_volume=VolumeFacts("pg-pgtopo-state", {}), credentials=False)
    assert (Kind.CREATE_STATE, "", "no stored credentials yet: keep the passwords in the state volume", Wave(),
            None) in cluster_wide(plan(T, empty))


def test_a_helper_container_left_by_a_killed_pgtopo_is_removed_in_the_first_wave() -> None:
    p = plan(T, replace(converged(T), leftovers=("pg-pgtopo-helper-0a1b2c3d",)))
    assert cluster_wide(p) == [(Kind.REMOVE_JOB, "", "helper container pg-pgtopo-helper-0a1b2c3d was left by an "
                                "interrupted pgtopo", Wave(), "pg-pgtopo-helper-0a1b2c3d")]


def test_a_missing_image_is_pulled_first_as_a_cluster_wide_action() -> None:
    p = plan(T, replace(converged(T), image_present=False), pull="missing")
    assert cluster_wide(p) == [(Kind.PULL, "", "pgtopo-local/postgres:17 is not in the Docker engine: pulled from its "
                                "registry first", Wave(), "pgtopo-local/postgres:17")]
    assert p.warnings == ("image pgtopo-local/postgres:17 is not in the Docker engine yet: the PostgreSQL major it "
                          "runs is compared with the data's once apply has pulled it",)


def test_pull_always_warns_that_the_nodes_may_be_recreated_on_a_newer_image() -> None:
    assert plan(T, converged(T), pull="always").warnings == (
        "image pgtopo-local/postgres:17: apply pulls it again first (--pull always); should the registry have a "
        "newer image under that name, the nodes are recreated on it one at a time",)


def test_without_a_pull_policy_a_missing_image_is_refused() -> None:
    """--pull never is the default: the planner never pulls unless told to."""
    p = plan(T, replace(converged(T), image_present=False))
    assert p.actions == ()
    assert p.refusals == ("image pgtopo-local/postgres:17 is not in the Docker engine, and --pull never forbids "
                          "pulling it: build it or `docker load` it, or apply with --pull missing",)


def test_a_port_open_to_every_interface_says_what_protects_it() -> None:
    t = topo(nodes={"primary": {"bind": "0.0.0.0"}, "replica": {}})
    assert plan(t, converged(t)).warnings == (
        "primary: port published on every interface (bind: 0.0.0.0), reachable from other hosts; only "
        "scram-sha-256 stands between them and the server",)


def test_a_restart_stall_and_a_lowered_preferred_rule_are_both_warned_about() -> None:
    """`durability: preferred` for 2 with only replica streaming: the rule is lowered to 1 (a note),
    and replica's restart leaves no other standby to wait for (a stall): the plan says both."""
    t = sync_topo(number=2, durability="preferred")
    restarting = NodeFacts("replica", container=container(t, "replica"), volume=volume(t, "replica"),
                           pg=pg_replica(t, "replica", pending_restart=("max_connections",)))
    warnings = plan(t, running(t, ("replica",), replica=restarting)).warnings
    assert any(w.startswith("commits wait while replica restarts") for w in warnings), warnings
    assert any(w.startswith("synchronous.durability is preferred and only replica") for w in warnings), warnings
