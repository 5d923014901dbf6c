"""How apply runs a plan's waves (reconcile._run_waves), against a fake engine and SQL layer
(flow_fakes): a failing action stops its node's later actions and every later wave, the other
nodes of its wave finish first, and the error that reaches the user is that action's, naming its
node; the lock is confirmed armed before a second wave; background work is waited for."""

from __future__ import annotations

from types import SimpleNamespace
from unittest.mock import create_autospec

import docker
import psycopg
import pytest
from docker.errors import APIError

from pgtopo import docker_ops, pg_ops, reconcile
from pgtopo.actions import Action, Kind, Phase, Plan, Wave
from pgtopo.errors import (
    DockerError,
    NotConverged,
    PgtopoError,
    PostgresError,
    Replan,
    ServerDidNotStart,
    SettingRejected,
)
from pgtopo.plan import plan

from .flow_fakes import World, context
from .test_plan import T, converged, topo

REAL_CREATE_VOLUME, REAL_ALTER_SYSTEM = docker_ops.create_volume, pg_ops.alter_system
FIRST, SECOND = Wave(Phase.BUILD, 1), Wave(Phase.ROLL, 0)


def run(world: World, *actions: Action, ctx=None) -> None:
    ctx = ctx or context(T, converged(T), world.journal)
    reconcile._run_waves(ctx, Plan(actions=actions), reconcile.Events(), reconcile.Outcome())


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> World:
    return World(monkeypatch, T, converged(T))


def failing_in_docker(monkeypatch: pytest.MonkeyPatch, ctx) -> Action:
    """A volume the engine refuses to create, through the real docker_ops."""
    monkeypatch.setattr(docker_ops, "create_volume", REAL_CREATE_VOLUME)
    ctx.client.api = create_autospec(docker.APIClient, instance=True)
    ctx.client.api.create_volume.side_effect = APIError(
        "no space left on device", response=SimpleNamespace(status_code=500, reason="Server Error", url="", text=""))
    return Action(Kind.CREATE_VOLUME, "replica", "new node", wave=FIRST)


def failing_in_postgres(monkeypatch: pytest.MonkeyPatch, ctx) -> Action:
    """A server that refuses connections, through the real pg_ops."""
    monkeypatch.setattr(pg_ops, "alter_system", REAL_ALTER_SYSTEM)

    def refused(**kw):
        raise psycopg.OperationalError(f"connection to server at 127.0.0.1, port {kw['port']} failed: refused")

    monkeypatch.setattr(psycopg, "connect", refused)
    return Action(Kind.CONFIGURE, "replica", "work_mem differs", wave=FIRST, settings=(("work_mem", "8MB"),))


@pytest.mark.parametrize("make_failing, error_type, named", [
    (failing_in_docker, DockerError, "pg-replica-data"),
    (failing_in_postgres, PostgresError, "replica: cannot connect"),
])
def test_a_failing_action_stops_its_node_and_every_later_wave(world: World, monkeypatch: pytest.MonkeyPatch,
                                                             make_failing, error_type, named: str) -> None:
    ctx = context(T, converged(T), world.journal)
    failing = make_failing(monkeypatch, ctx)
    same_node_after = Action(Kind.RESTART, "replica", "after the failing one", wave=FIRST)
    other_node = Action(Kind.DROP_SLOT, "replica2", "unused slot", wave=FIRST, slot="pgtopo_old")
    later_wave = Action(Kind.RESTART, "primary", "a later wave", wave=SECOND)
    with pytest.raises(error_type) as info:
        run(world, later_wave, failing, same_node_after, other_node, ctx=ctx)
    assert named in info.value.message, info.value.message
    assert ("drop-slot", "replica2", "pgtopo_old") in world.journal, "the other node of the wave did not finish"
    assert ("stop", "replica") not in world.journal, "the failing node's next action ran"
    assert ("stop", "primary") not in world.journal, "a later wave ran after a failure"


def test_waves_run_in_order_with_the_lock_confirmed_in_between(world: World) -> None:
    run(world, Action(Kind.RESTART, "primary", "second", wave=SECOND),
        Action(Kind.DROP_SLOT, "replica", "first", wave=FIRST, slot="s"))
    assert world.journal[0] == ("drop-slot", "replica", "s")
    assert world.index("drop-slot", "replica", "s") < world.index("confirm-lock") < world.index("stop", "primary")


def test_a_lock_that_cannot_be_armed_stops_the_apply_after_the_first_wave(world: World) -> None:
    ctx = context(T, converged(T), world.journal)

    def unarmed() -> None:
        raise DockerError("Docker failed to start the lock container pg-pgtopo-lock: engine gone")

    ctx.confirm_lock = unarmed
    with pytest.raises(DockerError, match="lock container"):
        run(world, Action(Kind.DROP_SLOT, "replica", "first", wave=FIRST, slot="s"),
            Action(Kind.RESTART, "primary", "second", wave=SECOND), ctx=ctx)
    assert ("stop", "primary") not in world.journal


def test_an_interrupt_during_an_action_stops_the_later_waves(world: World) -> None:
    world.fail[("drop-slot", "replica", "s")] = KeyboardInterrupt()
    with pytest.raises(KeyboardInterrupt):
        run(world, Action(Kind.DROP_SLOT, "replica", "first", wave=FIRST, slot="s"),
            Action(Kind.RESTART, "primary", "second", wave=SECOND))
    assert ("stop", "primary") not in world.journal


def with_background(monkeypatch: pytest.MonkeyPatch, error: Exception, action_error: Exception | None):
    """Each action leaves work in the background that fails with `error`; the action itself
    fails with `action_error` (if any)."""
    finished = []

    def background() -> None:
        finished.append(True)
        raise error

    def execute(ctx, action: Action) -> None:
        ctx.in_background(background)
        if action_error is not None:
            raise action_error

    monkeypatch.setattr(reconcile, "execute", execute)
    return finished


def test_background_work_is_waited_for_and_its_error_raised(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    finished = with_background(monkeypatch, DockerError("writing the state volume failed"), None)
    with pytest.raises(DockerError, match="writing the state volume failed"):
        run(world, Action(Kind.INIT, "primary", "new", wave=FIRST))
    assert finished == [True]


def test_an_action_s_error_wins_over_its_background_work_s(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    finished = with_background(monkeypatch, DockerError("background"), PostgresError("primary: initdb failed"))
    with pytest.raises(PostgresError, match="primary: initdb failed"):
        run(world, Action(Kind.INIT, "primary", "new", wave=FIRST))
    assert finished == [True]


# A restart whose server does not start with the file's settings (rollback.py): that node is put
# back on the postgresql.auto.conf it ran with, the nodes configured but not restarted get their old
# values back, no later wave runs, and the error names the setting and quotes the server.
BEFORE, AFTER = topo(parameters={"work_mem": "4MB"}), topo(parameters={"work_mem": "8MB", "shared_buffers": "900GB"})
FATAL = "FATAL:  could not map anonymous shared memory: Cannot allocate memory"


def run_plan(monkeypatch: pytest.MonkeyPatch, crashing: set[str], fail: dict | None = None):
    """AFTER's plan against a cluster running BEFORE; `crashing`: servers that stop as soon as they
    start until their postgresql.auto.conf is rewritten.  Returns the world, what was started, the error."""
    observed = converged(BEFORE)
    world = World(monkeypatch, AFTER, observed)
    world.crashing, world.fail = set(crashing), fail or {}
    started: list[Action] = []
    ctx = context(AFTER, observed, world.journal)
    with pytest.raises(PgtopoError) as info:
        reconcile._run_waves(ctx, plan(AFTER, observed), reconcile.Events(started=started.append), reconcile.Outcome())
    return world, started, info.value


def test_a_restart_that_does_not_start_is_put_back_and_the_change_taken_out_of_the_others(
        monkeypatch: pytest.MonkeyPatch) -> None:
    world, started, error = run_plan(monkeypatch, {"replica2"})
    assert isinstance(error, SettingRejected) and error.exit_code == 2
    assert "replica2: its server did not start with shared_buffers = 900GB from the file" in error.message
    assert FATAL in error.message and "shared_buffers" in (error.hint or "")
    # replica2: stopped, its old postgresql.auto.conf written back, started again
    mine = [e for e in world.journal if "replica2" in e and e[0] != "alter-system"]
    assert mine == [("stop", "replica2"), ("start", "replica2", "standby"),  # the restart
                    ("stop", "replica2"), ("job", "conf", "replica2"), ("start", "replica2", "standby")], mine
    assert "work_mem = '4MB'" in world.conf["replica2"] and "900GB" not in world.conf["replica2"]
    assert world.running["replica2"] and "replica2" not in world.crashing
    # the others: configured, never restarted, given their old values back
    undone = [(node, settings) for node, settings in world.altered if settings.get("work_mem") == "4MB"]
    assert sorted(undone) == [(n, {"shared_buffers": None, "work_mem": "4MB"}) for n in ("primary", "replica")]
    assert ("stop", "replica") not in world.journal and ("stop", "primary") not in world.journal
    assert [a.kind for a in started if a.node == "replica2"][-1] is Kind.RESTORE_CONF  # shown like any action


def test_a_server_that_does_not_start_outside_a_restart_is_reported_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    world = World(monkeypatch, T, converged(T))
    world.running["replica"], world.crashing = False, {"replica"}
    with pytest.raises(ServerDidNotStart) as info:
        run(world, Action(Kind.START, "replica", "container is exited", wave=FIRST))
    assert info.value.fatal == FATAL and not isinstance(info.value, SettingRejected)
    assert "conf" not in {e[1] for e in world.journal if e[0] == "job"}


def test_when_putting_it_back_fails_too_apply_says_both(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = {("job", "conf", "replica2"): DockerError("pg-replica2-conf failed (exit 1): no space left on device")}
    world, _, error = run_plan(monkeypatch, {"replica2"}, broken)
    assert isinstance(error, SettingRejected)
    assert "but putting replica2 back failed too:\npg-replica2-conf failed (exit 1): no space left on device" in error.message
    assert {node for node, s in world.altered if s.get("work_mem") == "4MB"} == {"primary", "replica"}


def test_a_replan_ends_the_round_after_its_wave_with_what_finished_counted(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """A node found unable to go on (its upstream removed the WAL it needs) ends the round once the
    other nodes of its wave are done; a real error in the same wave is the one raised."""
    stuck = Action(Kind.START, "replica", "start it", wave=FIRST)
    other = Action(Kind.DROP_SLOT, "replica2", "unused slot", wave=FIRST, slot="pgtopo_old")
    later = Action(Kind.RESTART, "primary", "a later wave", wave=SECOND)

    def execute(ctx, action: Action) -> None:
        world.journal.append((action.kind.value, action.node))
        if action is stuck:
            raise Replan("replica: its server cannot open; planning again")

    monkeypatch.setattr(reconcile, "execute", execute)
    outcome = reconcile.Outcome()
    ctx = context(T, converged(T), world.journal)
    with pytest.raises(Replan):
        reconcile._run_waves(ctx, Plan(actions=(later, stuck, other)), reconcile.Events(), outcome)
    assert [a for a, _ in outcome.done] == [other] and ("restart", "primary") not in world.journal

    failing = Action(Kind.CONFIGURE, "replica2", "work_mem", wave=FIRST)

    def execute_both(ctx, action: Action) -> None:
        if action is stuck:
            raise Replan("replica: planning again")
        raise PostgresError("replica2: the server refused ALTER SYSTEM")

    monkeypatch.setattr(reconcile, "execute", execute_both)
    with pytest.raises(PostgresError, match="refused ALTER SYSTEM"):
        reconcile._run_waves(ctx, Plan(actions=(stuck, failing)), reconcile.Events(), reconcile.Outcome())


def test_apply_plans_again_after_a_replan_and_converges(monkeypatch: pytest.MonkeyPatch) -> None:
    rounds: list[int] = []
    first = Plan(actions=(Action(Kind.REWIND, "replica", "diverged", wave=FIRST),))
    then = Plan(actions=(Action(Kind.RECLONE, "replica", "can never become consistent", wave=FIRST),))
    plans = iter([first, then, Plan()])
    snapshot = reconcile.Snapshot(observed=converged(T), state=None, endpoints={})

    def diff(*args, **kw):
        rounds.append(1)
        return next(plans), snapshot

    def run_waves(ctx, p: Plan, events, outcome) -> None:
        outcome.done.append((p.actions[0], 1.0))
        if p is first:
            raise Replan("replica: its server cannot open; planning again")

    monkeypatch.setattr(reconcile, "diff", diff)
    monkeypatch.setattr(reconcile, "_run_waves", run_waves)
    told: list[str] = []
    held = SimpleNamespace(arm=lambda: None, confirm=lambda: None)
    outcome = reconcile.Outcome()
    reconcile._converge(create_autospec(docker.DockerClient, instance=True), T, None,  # type: ignore[arg-type]
                        lambda p: True, reconcile.Events(info=told.append), outcome, (False, False, "never"), held)
    assert len(rounds) == 3 and [a.kind for a, _ in outcome.done] == [Kind.REWIND, Kind.RECLONE]
    assert told == ["replica: its server cannot open; planning again"]


def test_a_replan_with_no_round_left_is_not_converged(monkeypatch: pytest.MonkeyPatch) -> None:
    stuck = Plan(actions=(Action(Kind.START, "replica", "start it", wave=FIRST),))
    snapshot = reconcile.Snapshot(observed=converged(T), state=None, endpoints={})
    monkeypatch.setattr(reconcile, "diff", lambda *a, **kw: (stuck, snapshot))

    def run_waves(ctx, p: Plan, events, outcome) -> None:
        raise Replan("replica: its server cannot open: WAL removed; planning again", hint="run apply again")

    monkeypatch.setattr(reconcile, "_run_waves", run_waves)
    held = SimpleNamespace(arm=lambda: None, confirm=lambda: None)
    with pytest.raises(NotConverged) as caught:
        reconcile._converge(create_autospec(docker.DockerClient, instance=True), T, None,  # type: ignore[arg-type]
                            lambda p: True, reconcile.Events(), reconcile.Outcome(), (False, False, "never"), held)
    assert caught.value.message == f"replica: its server cannot open: WAL removed (after {reconcile.MAX_ROUNDS} rounds)"
    assert caught.value.exit_code == 1 and caught.value.hint == "run apply again"
