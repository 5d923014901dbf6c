"""The pooler's actions word for word, as `pgtopo diff` shows them: each endpoint's name, port,
targets and wave; what it is paused around; where the read-only pool goes; and diff's warnings."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pgtopo.actions import Action, Kind, Phase, Wave
from pgtopo.observed import NodeFacts, Observed
from pgtopo.plan import plan
from pgtopo.pooler import planning
from pgtopo.spec import Topology

from .test_plan import container, converged, pg_replica, topo, volume
from .test_pooler_plan import POOLER, RO, T, pooler_container, read_pooler, streaming, with_pooler

RW_WAVE = Wave(Phase.POOLER, 0)
RO_WAVE = Wave(Phase.POOLER, 1)  # after the read-write endpoint: both make the pooler's role


def pooler_actions(t: Topology, obs: Observed) -> list[Action]:
    return [a for a in plan(t, obs).actions if a.node in ("pooler", "pooler-ro")]


def with_read_pooler(obs: Observed, t: Topology = RO, targets: tuple[str, ...] = ("replica", "replica2"),
                     **facts) -> Observed:
    """`obs` with the read-write pooler in sync and the read-only one as `facts` say."""
    return replace(with_pooler(obs, t=t), read_pooler=read_pooler(t, targets, **facts))


def stopped_read_pooler(t: Topology = RO) -> Observed:
    ro = read_pooler(t, (), paused=None)
    ro = replace(ro, container=replace(ro.container, state="exited"))
    return replace(with_pooler(streaming(t), t=t), read_pooler=ro)


@pytest.mark.parametrize("t, obs, expected", [
    pytest.param(topo(), with_pooler(converged(topo())),
                 Action(Kind.REMOVE_POOLER, "pooler", "the file has no pooler: remove pg-pooler (its clients are "
                        "disconnected)", wave=Wave(Phase.REMOVE, 0), target="pg-pooler"),
                 id="remove-read-write"),
    pytest.param(T, replace(with_pooler(converged(T)), read_pooler=read_pooler(RO, ("replica",))),
                 Action(Kind.REMOVE_POOLER, "pooler-ro", "the file has no read-only pooler endpoint: remove "
                        "pg-pooler-ro (its clients are disconnected)", wave=Wave(Phase.REMOVE, 0), target="pg-pooler-ro"),
                 id="remove-read-only"),
    pytest.param(T, converged(T),
                 Action(Kind.CREATE_POOLER, "pooler", "create pg-pooler: the applications' read-write endpoint on "
                        "port 6432, pointing at primary", wave=RW_WAVE),
                 id="create-read-write"),
    pytest.param(RO, with_pooler(streaming(RO), t=RO),
                 Action(Kind.CREATE_POOLER, "pooler-ro", "create pg-pooler-ro: the applications' read-only endpoint "
                        "on port 6433, pointing at replica, replica2", wave=RO_WAVE),
                 id="create-read-only"),
    pytest.param(T, with_pooler(converged(T), container=pooler_container(T, hash_="other")),
                 Action(Kind.RECREATE_POOLER, "pooler", "pg-pooler was made with other settings (image, port or "
                        "parameters): make it again (its clients reconnect)", wave=RW_WAVE),
                 id="recreate-on-other-settings"),
    pytest.param(RO, stopped_read_pooler(),
                 Action(Kind.START_POOLER, "pooler-ro", "pg-pooler-ro is exited: start it, pointing at replica, "
                        "replica2", wave=RO_WAVE),
                 id="start-read-only"),
    pytest.param(T, with_pooler(converged(T), paused=None, error="connection refused"),
                 Action(Kind.RECREATE_POOLER, "pooler", "pg-pooler runs but its admin console does not answer "
                        "(connection refused): make it again", wave=RW_WAVE),
                 id="console-refuses"),
    pytest.param(T, with_pooler(converged(T), paused=None),
                 Action(Kind.RECREATE_POOLER, "pooler", "pg-pooler runs but its admin console does not answer "
                        "(no answer): make it again", wave=RW_WAVE),
                 id="console-silent"),
    pytest.param(T, with_pooler(converged(T), target="replica"),
                 Action(Kind.REPOINT_POOLER, "pooler", "it points at replica, the primary is primary: point it there "
                        "and resume", wave=RW_WAVE),
                 id="repoint-read-write"),
    pytest.param(T, with_pooler(converged(T), target=None),
                 Action(Kind.REPOINT_POOLER, "pooler", "it points at no node, the primary is primary: point it there "
                        "and resume", wave=RW_WAVE),
                 id="repoint-read-write-from-nowhere"),
    pytest.param(RO, with_read_pooler(streaming(RO), targets=("primary",)),
                 Action(Kind.REPOINT_POOLER, "pooler-ro", "it points at primary, the replicas that stream are replica, "
                        "replica2: point it there and resume", wave=RO_WAVE),
                 id="repoint-read-only-to-the-replicas"),
    pytest.param(RO, with_read_pooler(streaming(RO, replica2=NodeFacts(
        "replica2", container=container(RO, "replica2", state="exited"), volume=volume(RO, "replica2")))),
                 Action(Kind.REPOINT_POOLER, "pooler-ro", "it points at replica, replica2, the replicas that stream "
                        "are replica: point it there and resume", wave=RO_WAVE),
                 id="repoint-read-only-one-replica-left"),
    pytest.param(RO, with_read_pooler(converged(RO)),  # its replicas replay 64 MiB behind: none fits
                 Action(Kind.REPOINT_POOLER, "pooler-ro", "it points at replica, replica2, no replica streams: the "
                        "primary, read-only, is primary: point it there and resume", wave=RO_WAVE),
                 id="repoint-read-only-to-the-primary"),
])
def test_each_pooler_action_reads_as_diff_shows_it(t: Topology, obs: Observed, expected: Action) -> None:
    assert pooler_actions(t, obs) == [expected]


RESUME_REASON = "it is paused and no apply is running (a pgtopo stopped while it held it paused): resume it"


def test_a_paused_pooler_is_resumed_first_thing() -> None:
    [resume] = pooler_actions(T, with_pooler(converged(T), paused=True))
    assert resume == Action(Kind.RESUME_POOLER, "pooler", RESUME_REASON, wave=Wave(Phase.BUILD, 0))
    assert resume.wave.phase is Phase.BUILD  # `apply -v` logs the wave by its phase's name


def test_a_paused_read_only_endpoint_is_resumed_too() -> None:
    [resume] = pooler_actions(RO, with_read_pooler(streaming(RO), paused=True))
    assert resume == Action(Kind.RESUME_POOLER, "pooler-ro", RESUME_REASON, wave=Wave(Phase.BUILD, 0))


def test_a_reload_of_the_primary_is_not_paused_around() -> None:
    """Only a step that interrupts the primary's writes is paused around, not a reload of its settings."""
    changed = topo(pooler=POOLER, parameters={"work_mem": "8MB"})
    p = plan(changed, with_pooler(converged(T), t=changed))
    assert any(a.node == "primary" and a.kind is Kind.CONFIGURE for a in p.actions)
    assert not any(a.pause_pooler for a in p.actions)


def test_a_replica_exactly_at_the_lag_bound_stays_in_the_read_only_pool() -> None:
    bound = RO.pooler.read_only.max_lag_bytes
    at_bound = NodeFacts("replica", container=container(RO, "replica"), volume=volume(RO, "replica"),
                         pg=pg_replica(RO, "replica", lsn=0x4000000 - bound))
    assert planning.read_targets(RO, streaming(RO, replica=at_bound)) == ("replica", "replica2")


def test_the_read_only_pool_goes_to_the_primary_when_it_does_not_answer() -> None:
    stopped = NodeFacts("primary", container=container(RO, "primary", state="exited"), volume=volume(RO, "primary"))
    assert planning.read_targets(RO, streaming(RO, primary=stopped)) == ("primary",)


@pytest.mark.parametrize("t", [pytest.param(T, id="no read-only endpoint"), pytest.param(topo(), id="no pooler")])
def test_without_a_read_only_endpoint_reads_go_to_the_primary(t: Topology) -> None:
    assert planning.read_targets(t, streaming(t)) == ("primary",)


def test_diff_warns_of_a_session_pool_and_of_a_port_open_to_every_interface() -> None:
    t = topo(pooler={**POOLER, "pool_mode": "session", "bind": "0.0.0.0"})
    assert planning.warnings(t) == (
        "pooler.pool_mode is session: a switchover or a restart of the primary cannot be hidden from clients (a "
        "session pool cannot pause while they stay connected); transaction hides them",
        "the pooler's port 6432 is published on every interface (bind: 0.0.0.0)",
    )


def test_a_transaction_pool_on_loopback_draws_no_warning() -> None:
    assert planning.warnings(T) == ()
