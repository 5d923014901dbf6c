"""Never clone or rewind from a server of another cluster: the source's system identifier is
checked against the one recorded at initdb before anything is stopped or copied (the source
itself serving another cluster's data, which the planner cannot see)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from pgtopo import docker_ops, execute, nodes, pg_ops, probe
from pgtopo.actions import Action, Kind
from pgtopo.errors import SafetyRefusal

from .test_plan import T

OURS, THEIRS = 7000000000000000001, 7999999999999999999


def context() -> Any:
    state = SimpleNamespace(system_identifier=OURS)
    return SimpleNamespace(topo=T, snapshot=SimpleNamespace(state=state), client=None,
                           endpoint=lambda node: f"endpoint of {node}")


@pytest.fixture
def touched(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Everything that would stop, change or copy: none of it may run after a refusal."""
    calls: list[str] = []
    monkeypatch.setattr(nodes, "stop", lambda ctx, node: calls.append(f"stop {node}"))
    monkeypatch.setattr(docker_ops, "run_job", lambda *a, **k: calls.append("job"))
    monkeypatch.setattr(pg_ops, "create_slot", lambda *a, **k: calls.append("slot"))
    return calls


@pytest.mark.parametrize("kind, run", [(Kind.CLONE, execute._clone), (Kind.REWIND, execute._rewind)])
def test_a_source_serving_another_cluster_is_refused_before_anything_is_touched(
        monkeypatch: pytest.MonkeyPatch, touched: list[str], kind: Kind, run: Any) -> None:
    monkeypatch.setattr(probe, "probe", lambda endpoint: SimpleNamespace(system_identifier=THEIRS))
    action = Action(kind, "replica", "test", upstream="primary", slot="pgtopo_replica")
    with pytest.raises(SafetyRefusal, match=f"replica: refusing to {kind.value} from primary: it serves another "
                                            f"cluster \\(system identifier {THEIRS}, this cluster is {OURS}\\)"):
        run(context(), action)
    assert touched == []


def test_a_source_of_this_cluster_passes_the_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(probe, "probe", lambda endpoint: SimpleNamespace(system_identifier=OURS))
    execute._check_source(context(), "replica", "primary", "clone")  # no refusal
