"""Never clone or rewind from a server of another cluster: the source's system identifier is
checked against the one recorded at initdb before anything is stopped or copied (the source
itself serving another cluster's data, which the planner cannot see).  A state that lacks it (an
apply killed between initdb and recording it) gets the primary's from record-identity, and the
check holds from then on, in the same apply."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from pgtopo import docker_ops, execute, nodes, pg_ops, probe, state as cluster_state
from pgtopo.actions import Action, Kind
from pgtopo.errors import SafetyRefusal

from .flow_fakes import context as flow_context
from .test_plan import T, converged

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


def test_record_identity_keeps_the_primarys_and_a_later_clone_is_checked_against_it(
        monkeypatch: pytest.MonkeyPatch, touched: list[str]) -> None:
    ctx = flow_context(T, converged(T))
    ctx.snapshot.state = cluster_state.ClusterState("pw", "rpw", system_identifier=None)
    written: list[int | None] = []
    monkeypatch.setattr(cluster_state, "write", lambda client, image, volume, cluster, state, user:
                        written.append(state.system_identifier))
    monkeypatch.setattr(probe, "probe", lambda endpoint: SimpleNamespace(system_identifier=OURS))
    execute.execute(ctx, Action(Kind.RECORD_IDENTITY, "primary", "test"))
    ctx.settle()
    assert written == [OURS] and ctx.snapshot.state.system_identifier == OURS

    monkeypatch.setattr(probe, "probe", lambda endpoint: SimpleNamespace(system_identifier=THEIRS))
    with pytest.raises(SafetyRefusal, match="it serves another cluster"):
        execute.execute(ctx, Action(Kind.CLONE, "replica", "test", upstream="primary", slot="pgtopo_replica"))
    assert touched == []
