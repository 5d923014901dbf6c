"""Recording applies in the cluster's history (pgtopo/journal.py and its use in reconcile.py),
against an autospec'd Docker API and a fake state volume (no engine): a run with nothing to do
writes nothing; a run that started an action is recorded once, under the lock, whatever its end;
recording never hides the run's own error or changes how it ends; the history of a newer pgtopo
is never overwritten; no secret reaches the history.  And a saved plan whose changes are already
in place is "already applied", not stale."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pgtopo import documents, history, journal as journal_mod, reconcile, state as cluster_state
from pgtopo.actions import Action, Kind, Plan
from pgtopo.errors import DockerError, NotConverged, PostgresError, SafetyRefusal, StalePlan
from pgtopo.observe import Snapshot
from pgtopo.observed import Observed
from pgtopo.state import ClusterState

from .test_lock_flow import MINE, WORK, Engine
from .test_plan import T, converged

PASSWORD = "superuser-password-in-use"
STATE = ClusterState(PASSWORD, "replication-password-in-use")


class Volume:
    """The state volume's history file, as write_history leaves it (None: never written)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, log: list[str], fail: BaseException | None = None) -> None:
        self.content: bytes | None = None
        self.writes = 0

        def write(client: Any, image: str, volume: str, cluster: str, content: bytes) -> None:
            log.append("history-write")
            if fail is not None:
                raise fail
            assert volume == "pg-pgtopo-state" and cluster == "pg"
            self.content, self.writes = content, self.writes + 1

        monkeypatch.setattr(cluster_state, "write_history", write)

    def entries(self) -> tuple[history.HistoryEntry, ...]:
        return history.parse(self.content)


def new_journal(tmp_path: Path, text: str = "cluster: pg\n") -> journal_mod.Journal:
    source = tmp_path / "pg.yaml"
    source.write_text(text)
    return journal_mod.Journal(command="apply", file="pg.yaml", source=source,
                               exit_code=lambda exc: getattr(exc, "exit_code", 2))


def snapshot(state: ClusterState | None = STATE, observed: Observed | None = None) -> Snapshot:
    return Snapshot(observed=observed or converged(T), state=state)


# --- Journal.record ----------------------------------------------------------------------------

def test_a_run_that_started_no_action_writes_nothing(monkeypatch, tmp_path: Path) -> None:
    log: list[str] = []
    volume = Volume(monkeypatch, log)
    j = new_journal(tmp_path)
    j.observed(snapshot())
    j.record(Engine([]).client, T, tmp_path, None, log.append)
    j.record(Engine([]).client, T, tmp_path, SafetyRefusal("refusing to apply; nothing was changed"), log.append)
    assert log == [] and volume.content is None


def test_a_run_is_appended_to_the_history_it_found(monkeypatch, tmp_path: Path) -> None:
    log: list[str] = []
    volume = Volume(monkeypatch, log)
    earlier = history.entry(number=7, started_at=datetime.now(UTC), command="switchover",
                            file="pg.yaml", seconds=1.0, actions=[], exit_code=0, error=None,
                            who=history.origin({}, "bob", "h"), redact=lambda t: t)
    j = new_journal(tmp_path)
    j.observed(snapshot(replace(STATE, history=history.encode("pg", [earlier]))))
    a, b = WORK.actions[0], Action(Kind.RESTART, "primary", "shared_buffers only applies after a restart")
    j.started(a)
    j.started(b)
    j.finished(a, 1.5)
    j.record(Engine([]).client, T, tmp_path, PostgresError("primary: restart failed"), log.append)
    assert log == ["history-write"]
    first, new = volume.entries()
    assert first == earlier
    assert new.number == 8 and new.command == "apply" and new.file == "pg.yaml"
    assert [(x.kind, x.node, x.seconds) for x in new.actions] == [(Kind.DROP_SLOT, "replica", 1.5),
                                                                 (Kind.RESTART, "primary", None)]
    assert new.result == history.Result(exit_code=2, error="primary: restart failed")


def test_the_exit_code_is_the_clis(monkeypatch, tmp_path: Path) -> None:
    volume = Volume(monkeypatch, [])
    j = new_journal(tmp_path)
    j.exit_code = lambda exc: 143
    j.observed(snapshot())
    j.started(WORK.actions[0])
    j.record(Engine([]).client, T, tmp_path, KeyboardInterrupt(), print)
    assert volume.entries()[-1].result == history.Result(exit_code=143, error="interrupted")


def test_no_secret_reaches_the_history(monkeypatch, tmp_path: Path) -> None:
    """The passwords in use, and the value of every variable the file refers to."""
    volume = Volume(monkeypatch, [])
    monkeypatch.setenv("ARCHIVE_KEY", "aws-secret-key-123")
    monkeypatch.setenv("UNRELATED", "left-alone-value")
    j = new_journal(tmp_path, "parameters:\n  archive_command: 'up --key ${ARCHIVE_KEY}'\n")
    j.observed(snapshot())
    j.started(Action(Kind.START, "primary", "start with aws-secret-key-123 and left-alone-value"))
    j.record(Engine([]).client, T, tmp_path,
             PostgresError(f"password authentication failed for {PASSWORD} (aws-secret-key-123)"), print)
    raw = (volume.content or b"").decode()
    assert PASSWORD not in raw and "aws-secret-key-123" not in raw and history.REDACTED in raw
    assert "left-alone-value" in raw


def test_a_failed_write_is_one_warning_and_nothing_else(monkeypatch, tmp_path: Path) -> None:
    log: list[str] = []
    Volume(monkeypatch, log, fail=DockerError("Docker failed to create a helper container: no space left"))
    j = new_journal(tmp_path)
    j.observed(snapshot())
    j.started(WORK.actions[0])
    j.record(Engine([]).client, T, tmp_path, None, log.append)  # does not raise
    assert log == ["history-write", "warning: this run was not recorded in the cluster's history: "
                                    "Docker failed to create a helper container: no space left"]


def test_without_a_state_volume_nothing_is_written_and_a_warning_says_so(monkeypatch, tmp_path: Path) -> None:
    """A helper mounting a volume that does not exist would make Docker create it, unlabelled."""
    log: list[str] = []
    volume = Volume(monkeypatch, log)
    j = new_journal(tmp_path)
    j.observed(snapshot(None, Observed(cluster="pg")))
    j.started(Action(Kind.CREATE_NETWORK, "", "network pg-net does not exist"))
    j.record(Engine([]).client, T, tmp_path, DockerError("network create failed"), log.append)
    assert volume.writes == 0 and log == [
        "warning: this run was not recorded in the cluster's history: the cluster has no state volume yet"]


def test_a_state_volume_made_by_this_run_gets_the_history(monkeypatch, tmp_path: Path) -> None:
    volume = Volume(monkeypatch, [])
    j = new_journal(tmp_path)
    j.observed(snapshot(None, Observed(cluster="pg")))
    create = Action(Kind.CREATE_STATE, "", "no stored credentials yet")
    j.started(create)
    j.finished(create, 0.3)
    j.record(Engine([]).client, T, tmp_path, None, print)
    assert [e.number for e in volume.entries()] == [1]


def test_a_history_of_a_newer_pgtopo_is_never_overwritten(monkeypatch, tmp_path: Path) -> None:
    log: list[str] = []
    volume = Volume(monkeypatch, log)
    j = new_journal(tmp_path)
    j.observed(snapshot(replace(STATE, history=json.dumps({"format": 2, "entries": []}).encode())))
    j.started(WORK.actions[0])
    j.record(Engine([]).client, T, tmp_path, None, log.append)
    assert volume.writes == 0 and len(log) == 1 and "newer pgtopo" in log[0]


def test_a_damaged_history_is_started_anew_with_a_warning(monkeypatch, tmp_path: Path) -> None:
    log: list[str] = []
    volume = Volume(monkeypatch, log)
    j = new_journal(tmp_path)
    j.observed(snapshot(replace(STATE, history=b"{\"format\": 1, trunc")))
    j.started(WORK.actions[0])
    j.record(Engine([]).client, T, tmp_path, None, log.append)
    assert [e.number for e in volume.entries()] == [1]
    assert "history is damaged" in log[0] and "started anew" in log[0]


# --- through reconcile.apply -------------------------------------------------------------------

def run_apply(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, plans: list[Plan], volume_fail: BaseException | None = None,
              execute: Any = None) -> tuple[list[str], Volume, journal_mod.Journal, Any]:
    """reconcile.apply with a journal; observation returns `plans` one round after another."""
    log: list[str] = []
    engine = Engine(log)
    volume = Volume(monkeypatch, log, volume_fail)
    rounds = iter(plans)

    def diff(client, topo, *options, known=None, base_dir=None):
        log.append("observe")
        return next(rounds, Plan()), snapshot()

    def run(ctx, action: Action) -> None:
        log.append(f"execute {action.node}")
        if execute is not None:
            execute()

    monkeypatch.setattr(reconcile, "diff", diff)
    monkeypatch.setattr(reconcile, "execute", run)
    j = new_journal(tmp_path)
    events = reconcile.Events(info=log.append)
    try:
        outcome: Any = reconcile.apply(engine.client, T, tmp_path, consent=lambda p: True, lock_timeout=0,
                                       events=events, journal=j)
    except BaseException as exc:  # handed to the test
        outcome = exc
    return log, volume, j, outcome


def test_an_apply_with_nothing_to_do_records_nothing(monkeypatch, tmp_path: Path) -> None:
    log, volume, _, outcome = run_apply(monkeypatch, tmp_path, [])
    assert isinstance(outcome, reconcile.Outcome) and "history-write" not in log


def test_an_apply_is_recorded_once_after_its_actions_and_before_the_lock_goes(monkeypatch, tmp_path: Path) -> None:
    log, volume, _, outcome = run_apply(monkeypatch, tmp_path, [WORK])
    assert isinstance(outcome, reconcile.Outcome) and len(outcome.done) == 1
    assert log.count("history-write") == 1
    assert log.index("execute replica") < log.index("history-write") < log.index(f"lock-remove {MINE}")
    assert volume.entries()[-1].result == history.Result(exit_code=0, error=None)


def test_a_failed_apply_is_recorded_and_its_error_goes_on_unchanged(monkeypatch, tmp_path: Path) -> None:
    error = NotConverged("replica: clone failed")

    def fail() -> None:
        raise error

    log, volume, _, outcome = run_apply(monkeypatch, tmp_path, [WORK], execute=fail)
    assert outcome is error and outcome.message == "replica: clone failed"
    assert log.index("history-write") < log.index(f"lock-remove {MINE}")
    recorded = volume.entries()[-1]
    assert recorded.result == history.Result(exit_code=1, error="replica: clone failed")
    assert [a.seconds for a in recorded.actions] == [None]


def test_a_history_that_cannot_be_written_leaves_the_outcome_as_it_was(monkeypatch, tmp_path: Path) -> None:
    log, _, _, outcome = run_apply(monkeypatch, tmp_path, [WORK], volume_fail=DockerError("engine gone"))
    assert isinstance(outcome, reconcile.Outcome) and len(outcome.done) == 1
    assert "warning: this run was not recorded in the cluster's history: engine gone" in log

    error = PostgresError("primary: server gone")

    def fail() -> None:
        raise error

    _, _, _, outcome = run_apply(monkeypatch, tmp_path, [WORK], volume_fail=DockerError("engine gone"), execute=fail)
    assert outcome is error


# --- saved plans already applied ---------------------------------------------------------------

def saved_apply(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, replanned: Plan) -> tuple[Any, list[str], Engine]:
    """apply_saved of WORK made from state "then", on a cluster now in state "now" where planning
    again gives `replanned`."""
    log: list[str] = []
    engine = Engine(log)
    Volume(monkeypatch, log)
    monkeypatch.setattr(reconcile, "observe", lambda client, topo, **_: snapshot())
    monkeypatch.setattr(documents, "fingerprint", lambda observed: ("now", {"nodes": {"primary": {"timeline": 2}}}))
    monkeypatch.setattr(reconcile, "diff", lambda client, topo, *a, **kw: (replanned, snapshot()))
    monkeypatch.setattr(reconcile, "execute", lambda ctx, a: log.append(f"execute {a.node}"))
    try:
        outcome: Any = reconcile.apply_saved(engine.client, T, tmp_path, WORK,
                                             ("then", {"nodes": {"primary": {"timeline": 1}}}),
                                             consent=lambda p: True, lock_timeout=0,
                                             journal=new_journal(tmp_path))
    except BaseException as exc:  # handed to the test
        outcome = exc
    return outcome, log, engine


def test_a_saved_plan_whose_changes_are_in_place_is_already_applied(monkeypatch, tmp_path: Path) -> None:
    outcome, log, engine = saved_apply(monkeypatch, tmp_path, Plan())
    assert isinstance(outcome, reconcile.Outcome) and outcome.already_applied and outcome.done == []
    assert not [e for e in log if e.startswith("execute") or e == "history-write"]
    assert engine.removed() == [MINE]


@pytest.mark.parametrize("replanned", [WORK, Plan(refusals=("two nodes accept writes",))], ids=["work", "refusal"])
def test_a_cluster_changed_some_other_way_makes_the_plan_stale(monkeypatch, tmp_path: Path, replanned: Plan) -> None:
    outcome, log, engine = saved_apply(monkeypatch, tmp_path, replanned)
    assert isinstance(outcome, StalePlan)
    assert "the cluster changed since the plan was made" in outcome.message
    assert "nodes.primary.timeline: 1 → 2" in outcome.message
    assert (replanned.actions[0].describe() if replanned.actions else "two nodes accept writes") in outcome.message
    assert not [e for e in log if e.startswith("execute") or e == "history-write"]
    assert engine.removed() == [MINE]
