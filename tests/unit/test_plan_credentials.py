"""The planner never makes new passwords for a cluster whose data exists: a missing (or empty)
state volume is refused unless the file says which passwords are in use."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pgtopo.observed import DataFacts, NodeFacts, Observed
from pgtopo.plan import plan

from .test_plan import SYSID, T, converged, topo, volume

BOTH = {"superuser_password": {"env": "SU"}, "replication_password": {"env": "REPL"}}


def stopped(t, node: str) -> NodeFacts:
    """A node whose container was removed; its volume holds the cluster's data."""
    return NodeFacts(node, volume=volume(t, node), data=DataFacts(True, SYSID, wal_end=0x3000000, wal_timeline=1))


def without_state(t, state_volume: bool = False, **nodes: NodeFacts) -> Observed:
    obs = converged(t, **{n: stopped(t, n) for n in t.nodes}) if not nodes else converged(t, **nodes)
    return replace(obs, credentials=False, system_identifier=None,
                   state_volume=obs.state_volume if state_volume else None)


@pytest.mark.parametrize("state_volume, wording", [(False, "is missing"), (True, "holds no credentials")])
def test_lost_credentials_with_data_are_refused(state_volume: bool, wording: str) -> None:
    p = plan(T, without_state(T, state_volume))
    assert p.actions == ()
    refusal = next(r for r in p.refusals if "state volume" in r)
    assert f"the state volume pg-pgtopo-state {wording} while primary, replica, replica2 hold" in refusal
    assert "Restore pg-pgtopo-state, or set auth.superuser_password and auth.replication_password" in refusal


def test_a_replica_s_data_alone_is_enough_to_refuse() -> None:
    empty = NodeFacts("primary", volume=volume(T, "primary"), data=DataFacts(False))
    p = plan(T, without_state(T, primary=empty, replica=stopped(T, "replica"),
                              replica2=NodeFacts("replica2")))
    assert any("while replica hold this cluster's data" in r for r in p.refusals), p.refusals


def test_only_one_password_in_the_file_is_not_enough() -> None:
    t = topo(auth={"superuser_password": {"env": "SU"}})
    assert any("the state volume pg-pgtopo-state is missing" in r for r in plan(t, without_state(t)).refusals)


def test_both_passwords_in_the_file_rebuild_the_state() -> None:
    t = topo(auth=BOTH)
    p = plan(t, without_state(t))
    assert p.refusals == ()
    assert ("", "create-state") in [(a.node, a.kind.value) for a in p.actions]


def test_no_data_anywhere_is_a_new_cluster() -> None:
    p = plan(T, Observed(cluster="pg"))
    assert p.refusals == ()
    assert ("", "create-state") in [(a.node, a.kind.value) for a in p.actions]
