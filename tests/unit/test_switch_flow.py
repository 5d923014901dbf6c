"""Switchover and failover control flow against a fake engine and a fake SQL layer (flow_fakes):
never two writers.  A switchover fences the old primary before it stops it and promotes only a
candidate that replayed the old primary's last WAL; otherwise the old primary is unfenced and
started again as the primary, and nothing is promoted.  A failover confirms the lock, then fences,
then promotes."""

from __future__ import annotations

import pytest

from pgtopo import pgcontrol, switch
from pgtopo.actions import Action, Kind
from pgtopo.errors import DockerError, PgtopoError, PostgresError, RolledBack
from pgtopo.execute import execute
from pgtopo.observed import NodeFacts

from .flow_fakes import CHECKPOINT, World, context, control
from .test_plan import T, container, converged, pg_primary, topo, volume

# The file after `primary:` moved to replica: the old primary becomes replica's standby.
SWITCHED = topo(primary="replica", nodes={"primary": {"upstream": "replica"}, "replica": {},
                                          "replica2": {"upstream": "replica"}})
SWITCHOVER = Action(Kind.SWITCHOVER, "replica", "primary: moved to replica in the file", upstream="primary")
FAILOVER = Action(Kind.FAILOVER, "replica", "the primary is gone", fence=("primary",))


def switchover(world: World, observed=None) -> str:
    ctx = context(SWITCHED, observed or converged(T), world.journal)
    return execute(ctx, SWITCHOVER) or ""


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> World:
    return World(monkeypatch, SWITCHED, converged(T))


def test_a_switchover_fences_and_stops_the_old_primary_before_promoting(world: World) -> None:
    note = switchover(world)
    assert world.index("fence", "primary") < world.index("checkpoint", "primary") < world.index("stop", "primary")
    assert world.index("confirm-lock") < world.index("stop", "primary")  # the engine is quiet for the downtime
    assert world.index("stop", "primary") < world.index("wait-replayed", "replica") < world.index("promote", "replica")
    assert world.at_promote["primary"] == (False, True), "the old primary ran, or was not fenced, at the promotion"
    # then the old primary comes back as the new primary's standby
    assert world.index("promote", "replica") < world.index("job", "demote", "primary") \
        < world.index("start", "primary", "standby")
    assert world.writers() == {"replica"} and world.most_writers == 1
    assert note.startswith("write downtime")


def test_the_candidate_must_replay_past_the_old_primary_s_shutdown_checkpoint(world: World) -> None:
    switchover(world)
    assert world.replay_target == {"replica": CHECKPOINT}


def rolled_back(world: World) -> RolledBack:
    with pytest.raises(RolledBack) as info:
        switchover(world)
    return info.value


def assert_rolled_back(world: World) -> None:
    """The old primary takes writes again (unfenced before it started), the candidate was never
    promoted, and there was never a second writer."""
    assert "promote" not in world.kinds(), "a candidate was promoted in a rolled-back switchover"
    assert world.running["primary"] and not world.fenced["primary"]
    unfenced = next(i for i, e in enumerate(world.journal) if e[:2] in (("unfence", "primary"), ("job", "unfence")))
    assert unfenced < world.index("start", "primary", "primary")
    assert world.writers() == {"primary"} and world.most_writers == 1


@pytest.mark.parametrize("why", ["in time", "error", "frozen"])
def test_a_candidate_that_does_not_replay_in_time_rolls_the_switchover_back(world: World, why: str) -> None:
    if why == "in time":
        world.replayed["replica"] = None  # wait_replayed_past's deadline passed
    else:
        world.fail[("wait-replayed", "replica")] = (
            PostgresError("replica: cannot connect on 127.0.0.1:40001: connection refused") if why == "error"
            else switch._Frozen())
    error = rolled_back(world)
    assert_rolled_back(world)
    assert "primary was unfenced and started again as the primary, replica was not promoted" in error.message


def test_an_unclean_shutdown_rolls_back_without_waiting_or_promoting(world: World) -> None:
    world.pg_control["primary"] = control(pgcontrol.IN_PRODUCTION)  # Docker killed it past the timeout
    error = rolled_back(world)
    assert_rolled_back(world)
    assert "wait-replayed" not in world.kinds()
    assert "did not shut down cleanly" in error.message


def failover_observed():
    """The old primary's container runs and its server still answers (cut off from the others)."""
    return converged(T)


def test_a_failover_confirms_the_lock_then_fences_then_promotes(monkeypatch: pytest.MonkeyPatch) -> None:
    world = World(monkeypatch, SWITCHED, failover_observed())
    note = execute(context(SWITCHED, failover_observed(), world.journal), FAILOVER)
    assert world.index("confirm-lock") < world.index("stop", "primary")
    assert world.index("stop", "primary") < world.index("job", "fence", "primary") < world.index("promote", "replica")
    assert world.at_promote["primary"] == (False, True)
    assert world.writers() == {"replica"} and world.most_writers == 1
    assert "fenced (standby only from now on): primary" in (note or "")


def test_a_failover_fences_every_node_it_names_before_promoting(monkeypatch: pytest.MonkeyPatch) -> None:
    observed = converged(T, replica2=NodeFacts(name="replica2", container=container(T, "replica2"),
                                               volume=volume(T, "replica2"), pg=pg_primary(T)))  # a second writer
    world = World(monkeypatch, SWITCHED, observed)
    execute(context(SWITCHED, observed, world.journal), Action(Kind.FAILOVER, "replica", "r", fence=("primary", "replica2")))
    promoted = world.index("promote", "replica")
    assert world.index("job", "fence", "primary") < promoted and world.index("job", "fence", "replica2") < promoted
    assert world.writers() == {"replica"}


@pytest.mark.parametrize("failing", [("stop", "primary"), ("job", "fence", "primary")])
def test_a_failover_whose_fence_fails_promotes_nothing(monkeypatch: pytest.MonkeyPatch, failing) -> None:
    world = World(monkeypatch, SWITCHED, failover_observed())
    world.fail[failing] = DockerError("Docker failed to stop container pg-primary: engine busy")
    with pytest.raises(DockerError):
        execute(context(SWITCHED, failover_observed(), world.journal), FAILOVER)
    assert "promote" not in world.kinds()


def test_a_failover_whose_lock_cannot_be_confirmed_touches_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    world = World(monkeypatch, SWITCHED, failover_observed())
    ctx = context(SWITCHED, failover_observed(), world.journal)

    def unarmed() -> None:
        raise DockerError("Docker failed to start the lock container pg-pgtopo-lock: no space left on device")

    ctx.confirm_lock = unarmed
    with pytest.raises(DockerError):
        execute(ctx, FAILOVER)
    assert world.journal == []


def test_a_promotion_that_hangs_leaves_the_old_primary_fenced(monkeypatch: pytest.MonkeyPatch) -> None:
    world = World(monkeypatch, SWITCHED, failover_observed())
    world.fail[("promote", "replica")] = switch._Frozen()
    with pytest.raises(PgtopoError, match="primary stayed fenced"):
        execute(context(SWITCHED, failover_observed(), world.journal), FAILOVER)
    assert not world.running["primary"] and world.fenced["primary"]
    assert "unfence" not in world.kinds() and ("job", "unfence", "primary") not in world.journal


def test_fence_and_unfence_actions(monkeypatch: pytest.MonkeyPatch) -> None:
    """fence: stopped first, then standby.signal by a job; unfence of a stopped node: by a job."""
    world = World(monkeypatch, SWITCHED, converged(T))
    ctx = context(SWITCHED, converged(T), world.journal)
    execute(ctx, Action(Kind.FENCE, "primary", "r"))
    assert world.journal == [("stop", "primary"), ("job", "fence", "primary")]
    execute(ctx, Action(Kind.UNFENCE, "primary", "r"))
    assert world.journal[-1] == ("job", "unfence", "primary") and not world.fenced["primary"]
