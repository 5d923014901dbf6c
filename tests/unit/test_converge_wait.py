"""apply never calls a cluster converged while a node's server did not answer: the plan saw
nothing of it.  It waits for that server (nodes.await_server: until it answers, at once an error
when Docker restarts it or it exits), then observes again.  Found by
tests/integration/test_kill_steps.py: apply killed while the primary's container ran initdb,
retried at once, observed that container's new data with its server still starting, planned
nothing and exited 0; the replication role and the system identifier were never made."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from pgtopo import nodes, reconcile
from pgtopo.actions import Action, Kind, Plan, Wave
from pgtopo.errors import PgtopoError
from pgtopo.observe import Snapshot
from pgtopo.observed import DataFacts, NodeFacts

from .test_lock_flow import Engine
from .test_plan import SYSID, T, container, converged, volume

STARTING = converged(T, primary=NodeFacts("primary", container=container(T, "primary"), volume=volume(T, "primary"),
                                          data=DataFacts(True, SYSID), pg_error="the database system is starting up"))
ROLE = Plan(actions=(Action(Kind.CREATE_ROLE, "primary", "replication role repuser is missing", wave=Wave()),))


def apply(monkeypatch: pytest.MonkeyPatch, rounds: list[tuple[Plan, object]],
          comes_up: bool = True) -> list[str]:
    """reconcile.apply with each round's (plan, observed) in turn, then an empty plan of a
    converged cluster; returns what happened, in order."""
    journal: list[str] = []
    left = iter(rounds)

    def diff(client, topo, *options, known=None, base_dir=None):
        journal.append("observe")
        p, observed = next(left, (Plan(), converged(T)))
        return p, Snapshot(observed=observed, state=None)

    def await_server(ctx, node: str) -> None:
        journal.append(f"wait for {node}")
        if not comes_up:
            raise PgtopoError(f"{node}: the server did not come up (its server stopped and Docker restarted it)")

    monkeypatch.setattr(reconcile, "diff", diff)
    monkeypatch.setattr(reconcile, "execute", lambda ctx, action: journal.append(f"execute {action.kind.value}"))
    monkeypatch.setattr(nodes, "await_server", await_server)
    reconcile.apply(Engine([]).client, T, Path("."), consent=lambda p: True, lock_timeout=0)
    return journal


def test_a_server_still_starting_is_waited_for_then_observed_again(monkeypatch: pytest.MonkeyPatch) -> None:
    assert reconcile.not_answering(T, Snapshot(observed=STARTING, state=None)) == ["primary"]
    journal = apply(monkeypatch, [(Plan(), STARTING), (ROLE, converged(T))])
    assert journal == ["observe", "wait for primary", "observe", "execute create-role", "observe"]


def test_a_server_that_never_comes_up_fails_the_apply(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(PgtopoError, match="primary: the server did not come up"):
        apply(monkeypatch, [(Plan(), STARTING)], comes_up=False)


def test_stopped_and_answering_nodes_are_not_waited_for(monkeypatch: pytest.MonkeyPatch) -> None:
    stopped = converged(T, replica2=replace(STARTING.node("replica2"), container=container(T, "replica2", "exited"),
                                            pg=None))
    assert reconcile.not_answering(T, Snapshot(observed=stopped, state=None)) == []
    assert apply(monkeypatch, [(Plan(), converged(T))]) == ["observe"]
