"""The primary's new settings are proven before it is the first node to restart with them: by a
replica restarted before it on the same settings, else by `prove-settings` (a throw-away server of
the image), which runs before any node is configured or restarted."""

from __future__ import annotations

from pgtopo import proof
from pgtopo.actions import Kind, Phase, Wave
from pgtopo.plan import plan
from pgtopo.spec import Topology

from .test_plan import topo
from .test_plan_standby_settings import BEFORE, CASCADE, TODAY, running


def kinds(t: Topology, before: Topology, limits: dict[str, int] | None = None) -> list[tuple[str, str]]:
    """(node, kind) of the proof, the configures and the restarts, in the order the waves run them."""
    wanted = (Kind.PROVE_SETTINGS, Kind.CONFIGURE, Kind.RESTART)
    return [(a.node, a.kind.value) for wave in plan(t, running(before, limits or TODAY)).waves()
            for a in wave if a.kind in wanted]


def test_a_primary_that_restarts_first_is_proven_before_any_node_is_changed() -> None:
    steps = kinds(topo(nodes=CASCADE, parameters={"max_connections": 50, "max_locks_per_transaction": 32}), BEFORE)
    assert steps[0] == ("primary", "prove-settings")
    assert ("primary", "restart") in steps and steps.index(("primary", "restart")) < steps.index(("replica", "restart"))
    assert all(kind != "prove-settings" for _, kind in steps[1:])


def test_the_proof_runs_in_the_first_wave_and_says_why() -> None:
    p = plan(topo(nodes=CASCADE, parameters={"max_connections": 50}), running(BEFORE, TODAY))
    [prove] = [a for a in p.actions if a.kind is Kind.PROVE_SETTINGS]
    assert prove.wave == Wave(Phase.BUILD, 0) and p.waves()[0][0] is prove
    assert not prove.destructive and not prove.data_loss
    assert "it restarts first" in prove.reason and "before any node is changed" in prove.reason


def test_replicas_restarted_first_on_the_same_settings_prove_them() -> None:
    steps = kinds(topo(nodes=CASCADE, parameters={"max_connections": 150}), BEFORE)
    assert ("primary", "prove-settings") not in steps
    assert steps[-1] == ("primary", "restart")


def test_a_primary_alone_is_proven() -> None:
    solo = {"primary": {}}
    p = plan(topo(nodes=solo, parameters={"max_connections": 150}), running(topo(nodes=solo), TODAY))
    assert [a.kind for a in p.actions][0] is Kind.PROVE_SETTINGS
    assert "no replica restarts on them" in p.actions[0].reason


def test_replicas_on_other_settings_prove_nothing_about_the_primary_s() -> None:
    nodes = {**CASCADE, "primary": {"parameters": {"max_locks_per_transaction": 128}}}
    t = topo(nodes=nodes, parameters={"max_connections": 150})
    steps = kinds(t, BEFORE)
    assert steps[0] == ("primary", "prove-settings")
    assert steps.index(("replica", "restart")) < steps.index(("primary", "restart"))
    reason = next(a.reason for a in plan(t, running(BEFORE, TODAY)).actions if a.kind is Kind.PROVE_SETTINGS)
    assert "the replicas restarted before it (replica2, replica) run other settings" in reason


def test_no_restart_of_the_primary_no_proof() -> None:
    nodes = {**CASCADE, "replica": {"parameters": {"max_locks_per_transaction": 128}}}
    assert [k for _, k in kinds(topo(nodes=nodes), BEFORE)] == ["configure", "restart"]


def test_the_job_s_verdict() -> None:
    assert proof.verdict(f"noise\n{proof.STARTED}\n") == (True, "")
    log = "2026-11-30 LOG:  starting\n2026-11-30 FATAL:  could not map anonymous shared memory: Cannot allocate memory"
    assert proof.verdict(f"{proof.REFUSED}\n{log}\n") == (False, log)
    assert proof.verdict("sh: initdb: not found") is None
