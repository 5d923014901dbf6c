"""The cluster lock through a whole apply, against an autospec'd Docker API (no engine): taken
before the cluster is observed, armed before a person is asked to consent, and removed (by its
id) on every way out: success, refusal, an action's error, a bug, Ctrl-C.  And the wait for a
lock another apply holds: a lock left "created" by a holder that died is removed (by the engine's
clock, never by force), a live one or another cluster's never."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest.mock import create_autospec

import docker
import pytest
from docker.errors import APIError

from pgtopo import documents, labels as L, lock, reconcile, waits
from pgtopo.actions import Action, Kind, Phase, Plan, Wave
from pgtopo.errors import DockerError, LockTimeout, PostgresError, SafetyRefusal, StalePlan
from pgtopo.observe import Snapshot

from .test_plan import T, converged

NAME = "pg-pgtopo-lock"
MINE = "lock-id"
# destructive, so apply asks for consent
WORK = Plan(actions=(Action(Kind.DROP_SLOT, "replica", "unused", wave=Wave(Phase.SLOTS, 0), slot="s",
                            destructive=True),))
TWO_WAVES = Plan(actions=(Action(Kind.DROP_SLOT, "replica", "first", wave=Wave(Phase.BUILD, 1), slot="s"),
                          Action(Kind.RESTART, "primary", "second", wave=Wave(Phase.ROLL, 0))))


def conflict(status: int = 409) -> APIError:
    return APIError("Conflict", response=SimpleNamespace(status_code=status, reason="Conflict", url="", text=""))


class Engine:
    """An autospec'd docker APIClient whose lock calls are written into `journal`."""

    def __init__(self, journal: list[str]) -> None:
        self.api = api = create_autospec(docker.APIClient, instance=True)
        api.create_host_config.return_value = {}
        api.create_container.side_effect = lambda **kw: journal.append("lock-create") or {"Id": MINE}
        api.start.side_effect = lambda cid: journal.append(f"lock-start {cid}")
        api.remove_container.side_effect = lambda cid, **kw: journal.append(f"lock-remove {cid}")
        self.client = create_autospec(docker.DockerClient, instance=True)
        self.client.api = api

    def removed(self) -> list[str]:
        return [c.args[0] for c in self.api.remove_container.call_args_list]


class Apply:
    """reconcile.apply against the Engine, with observation and planning (`diff`) returning the
    given plans one round after another (then an empty plan), and actions carried out by
    `execute`; everything written into one journal."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.journal: list[str] = []
        self.engine = Engine(self.journal)
        self.monkeypatch = monkeypatch
        arm = lock.Held.arm
        monkeypatch.setattr(lock.Held, "arm", lambda held: self.journal.append("arm") or arm(held))

    def __call__(self, plans: list[Plan], execute: Callable[[Any, Action], Any] | None = None,
                 consent: Callable[[Plan], bool] = lambda p: True) -> None:
        rounds = iter(plans)

        def diff(client, topo, *options, known=None, base_dir=None):
            self.journal.append("observe")
            return next(rounds, Plan()), Snapshot(observed=converged(T), state=None)

        def run(ctx, action: Action) -> None:
            self.journal.append(f"execute {action.node}")
            if execute is not None:
                execute(ctx, action)

        def asked(p: Plan) -> bool:
            self.journal.append("consent")
            return consent(p)

        self.monkeypatch.setattr(reconcile, "diff", diff)
        self.monkeypatch.setattr(reconcile, "execute", run)
        reconcile.apply(self.engine.client, T, Path("."), consent=asked, lock_timeout=0)


def test_the_lock_is_taken_before_observing_armed_before_consent_and_removed_last(monkeypatch) -> None:
    apply = Apply(monkeypatch)
    apply([WORK])
    journal = apply.journal
    assert journal.index("lock-create") < journal.index("observe") < journal.index("arm") < journal.index("consent")
    assert journal.index("consent") < journal.index("execute replica")
    assert f"lock-start {MINE}" in journal
    assert removed_after_everything_else(journal)
    assert apply.engine.removed() == [MINE]  # by its id: the name may be another apply's by now


def test_an_apply_with_nothing_to_do_never_starts_the_lock(monkeypatch) -> None:
    apply = Apply(monkeypatch)
    apply([])
    assert "arm" not in apply.journal and apply.engine.api.start.call_count == 0
    assert apply.engine.removed() == [MINE]


def interrupt(*args: Any) -> bool:
    raise KeyboardInterrupt()


def bug(*args: Any) -> None:
    raise RuntimeError("a bug")


def postgres_error(*args: Any) -> None:
    raise PostgresError("replica: DROP_REPLICATION_SLOT failed: slot is active")


@pytest.mark.parametrize("plans, execute, consent, raised", [
    pytest.param([WORK], postgres_error, lambda p: True, PostgresError, id="an action fails"),
    pytest.param([WORK], interrupt, lambda p: True, KeyboardInterrupt, id="Ctrl-C during an action"),
    pytest.param([WORK], bug, lambda p: True, RuntimeError, id="a bug in an action"),
    pytest.param([WORK], None, interrupt, KeyboardInterrupt, id="Ctrl-C at the consent prompt"),
    pytest.param([WORK], None, lambda p: False, SafetyRefusal, id="consent refused"),
    pytest.param([Plan(refusals=("two nodes accept writes",))], None, lambda p: True, SafetyRefusal,
                 id="the plan refuses"),
])
def test_the_lock_is_removed_on_every_way_out(monkeypatch, plans, execute, consent, raised) -> None:
    apply = Apply(monkeypatch)
    with pytest.raises(raised):
        apply(plans, execute, consent)
    assert apply.engine.removed() == [MINE]
    assert removed_after_everything_else(apply.journal)


def removed_after_everything_else(journal: list[str]) -> bool:
    """The lock's removal comes after every observation, question and action (the start of the
    lock's container may still finish after it: the engine then removes it, or the start fails)."""
    last = max(i for i, entry in enumerate(journal) if not entry.startswith("lock-"))
    return journal.index(f"lock-remove {MINE}") > last


def test_the_lock_is_removed_when_observation_fails(monkeypatch) -> None:
    engine = Engine([])

    def diff(*args: Any, **kw: Any) -> None:
        raise DockerError("Docker failed to list containers: engine gone")

    monkeypatch.setattr(reconcile, "diff", diff)
    with pytest.raises(DockerError, match="list containers"):
        reconcile.apply(engine.client, T, Path("."), consent=lambda p: True, lock_timeout=0)
    assert engine.removed() == [MINE]


def test_a_lock_that_cannot_be_started_stops_apply_after_its_first_wave(monkeypatch) -> None:
    apply = Apply(monkeypatch)
    apply.engine.api.start.side_effect = APIError(
        "no space left on device", response=SimpleNamespace(status_code=500, reason="Server Error", url="", text=""))
    with pytest.raises(DockerError, match="start the lock container"):
        apply([TWO_WAVES])
    assert "execute replica" in apply.journal and "execute primary" not in apply.journal
    assert apply.engine.removed() == [MINE]


def test_a_stale_saved_plan_releases_the_lock_and_changes_nothing(monkeypatch) -> None:
    engine = Engine([])
    monkeypatch.setattr(reconcile, "STREAM_TIMEOUT", 0)  # should the plan run after all, no long wait after it
    monkeypatch.setattr(reconcile, "observe", lambda client, topo, **_: Snapshot(observed=converged(T), state=None))
    monkeypatch.setattr(documents, "fingerprint", lambda observed: ("now", {"nodes": 3}))
    # planning again finds work: the cluster changed, and not into what the file says
    monkeypatch.setattr(reconcile, "diff", lambda client, topo, *a, **kw: (WORK, None))
    executed: list[Action] = []
    monkeypatch.setattr(reconcile, "execute", lambda ctx, a: executed.append(a))
    with pytest.raises(StalePlan, match="the cluster changed since the plan was made"):
        reconcile.apply_saved(engine.client, T, Path("."), WORK, ("then", {"nodes": 2}),
                              consent=lambda p: True, lock_timeout=0)
    assert executed == [] and engine.removed() == [MINE]


# -- waiting for a lock another apply holds -------------------------------------------------------

def held_by(status: str, created: str, cluster: str = "pg", now: str = "2030-01-01T00:01:00Z",
            then: dict | None = None) -> Engine:
    """The lock exists already (`status`, made at `created` by the engine's clock); after it is
    removed, creating it succeeds."""
    engine = Engine([])
    api = engine.api
    gone = []
    api.create_container.side_effect = lambda **kw: then if gone else (_ for _ in ()).throw(conflict())
    api.inspect_container.return_value = {"State": {"Status": status}, "Created": created,
                                          "Config": {"Labels": {L.CLUSTER: cluster}}}
    api.info.return_value = {"SystemTime": now}
    api.remove_container.side_effect = lambda cid, **kw: gone.append(cid) if then else None
    return engine


def test_a_lock_whose_holder_died_before_starting_it_is_removed_and_taken(monkeypatch) -> None:
    monkeypatch.setattr(waits, "DOCKER", 0)
    engine = held_by("created", "2030-01-01T00:00:00Z", then={"Id": MINE})
    told: list[str] = []
    with lock.cluster_lock(engine.client, "pg", "img", timeout=5, on_wait=told.append, arm=False) as held:
        assert held.cid == MINE
        engine.api.remove_container.assert_called_once_with(NAME, force=False)  # never a started one
    assert engine.removed() == [NAME, MINE]
    assert told == ["waiting for the lock of cluster 'pg': another apply is running"]


@pytest.mark.parametrize("status, created, cluster", [
    pytest.param("running", "2030-01-01T00:00:00Z", "pg", id="its holder runs"),
    pytest.param("created", "2030-01-01T00:00:50Z", "pg", id="made 10 s ago: its holder may be starting it"),
    pytest.param("created", "2030-01-01T00:00:00Z", "other", id="another cluster's label"),
])
def test_a_live_or_foreign_lock_is_waited_for_and_never_removed(status: str, created: str, cluster: str) -> None:
    engine = held_by(status, created, cluster)
    with pytest.raises(LockTimeout, match="another pgtopo holds the lock of cluster 'pg'"), \
            lock.cluster_lock(engine.client, "pg", "img", timeout=0):
        pass
    engine.api.remove_container.assert_not_called()


def test_a_lock_not_waited_for_is_not_said_to_be(monkeypatch) -> None:
    """With no time to wait (timeout 0), the one try fails and apply says only that it timed out."""
    engine = held_by("running", "2030-01-01T00:00:00Z")
    told: list[str] = []
    with pytest.raises(LockTimeout), lock.cluster_lock(engine.client, "pg", "img", timeout=0, on_wait=told.append):
        pass
    assert told == []
    assert engine.api.create_container.call_count == 1


def test_a_stale_lock_its_holder_starts_meanwhile_is_kept(monkeypatch) -> None:
    """The removal is refused (409: its holder has just started it): not an error, keep waiting."""
    engine = held_by("created", "2030-01-01T00:00:00Z")
    engine.api.remove_container.side_effect = conflict()
    with pytest.raises(LockTimeout), lock.cluster_lock(engine.client, "pg", "img", timeout=0):
        pass
    engine.api.remove_container.assert_called_once_with(NAME, force=False)
