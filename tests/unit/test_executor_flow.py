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
from pgtopo.errors import DockerError, PostgresError

from .flow_fakes import World, context
from .test_plan import T, converged

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
