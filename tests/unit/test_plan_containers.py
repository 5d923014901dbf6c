"""What the planner does with a node's container, and the reason `diff` shows for it: create,
recreate (rolling or not), start, reconnect; and the fence written before a container whose data
last ran as a primary starts as a replica.  Pure, like test_plan.py."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pgtopo.actions import Kind, Phase, Wave
from pgtopo.observed import NodeFacts
from pgtopo.pgcontrol import IN_PRODUCTION, SHUT_DOWN, SHUT_DOWN_IN_RECOVERY
from pgtopo.plan import plan

from .test_plan import T, container, converged, pg_primary, pg_replica, volume
from .test_promotion import FLAT, TO_REPLICA, lost_write, stopped

BUILD = Wave(Phase.BUILD, 2)  # a direct replica's wave
RUNNING = converged(FLAT).node("replica")
KEPT = stopped(FLAT, "replica", SHUT_DOWN_IN_RECOVERY, None, fenced=True)  # stopped standby, container exited
DETACHED = replace(container(FLAT, "replica", "exited"), networks=("bridge",))


def replica_actions(facts: NodeFacts, t=FLAT, **kw) -> list[tuple[Kind, str, Wave]]:
    p = plan(t, converged(t, replica=facts), **kw)
    assert not p.refusals
    return [(a.kind, a.reason, a.wave) for a in p.actions if a.node == "replica"]


CASES = [
    pytest.param(replace(KEPT, container=None),
                 [(Kind.CREATE, "no container; starting on the existing data volume", BUILD)], id="volume kept, no container"),
    pytest.param(replace(RUNNING, container=container(FLAT, "replica", image="postgres:17", hash_="old")),
                 [(Kind.RECREATE, "image postgres:17 → pgtopo-local/postgres:17; the data volume is kept; one node at a "
                   "time, replicas first", Wave(Phase.ROLL, 0))], id="running, image changed: rolling"),
    pytest.param(replace(RUNNING, container=container(FLAT, "replica", hash_="old")),
                 [(Kind.RECREATE, "container configuration changed; the data volume is kept; one node at a time, "
                   "replicas first", Wave(Phase.ROLL, 0))], id="running, configuration changed: rolling"),
    pytest.param(replace(KEPT, container=container(FLAT, "replica", "exited", hash_="old")),
                 [(Kind.RECREATE, "container configuration changed; the data volume is kept", BUILD)],
                 id="stopped, configuration changed: in its wave, nothing to roll"),
    pytest.param(replace(KEPT, container=DETACHED),
                 [(Kind.RECREATE, "container is exited and not attached to network pg_stream: recreate it on its "
                   "volume", BUILD)], id="stopped and detached"),
    pytest.param(KEPT, [(Kind.START, "container is exited", BUILD)], id="stopped"),
    pytest.param(replace(RUNNING, container=replace(container(FLAT, "replica"), networks=("bridge",))),
                 [(Kind.CONNECT, "container is not attached to network pg_stream: reconnect it (alias replica)", BUILD)],
                 id="running and detached"),
]


@pytest.mark.parametrize(("facts", "expected"), CASES)
def test_each_container_rule_says_what_it_does_and_when(facts: NodeFacts, expected) -> None:
    assert replica_actions(facts) == expected


def test_a_stopped_detached_container_whose_data_is_rebuilt_is_started_not_recreated() -> None:
    """The re-clone runs in a job of its own; the node's container is started afterwards (and
    reconnected by the next round's rule if it still is not on the network)."""
    interrupted = replace(KEPT, container=DETACHED, data=replace(KEPT.data, interrupted=True))
    assert [kind for kind, _, _ in replica_actions(interrupted)] == [Kind.RECLONE, Kind.START]


def test_a_running_standby_rewound_is_started_on_its_new_data() -> None:
    new_primary = NodeFacts("primary", container=container(T, "primary"), volume=volume(T, "primary"),
                            pg=pg_primary(T, timeline=2, lsn=0x5000000, history=((1, 0x3000148),)))
    stuck = NodeFacts("replica", container=container(T, "replica"), volume=volume(T, "replica"),
                      pg=pg_replica(T, "replica", timeline=1, lsn=0x3000200, receiver=None))
    p = plan(T, converged(T, primary=new_primary, replica=stuck), allow_data_loss=True)
    assert [(a.kind, a.reason) for a in p.actions if a.node == "replica"][1:] == [(Kind.START, "start on the new data")]


def test_a_replica_whose_data_last_ran_as_a_primary_is_fenced_before_it_starts() -> None:
    old_primary = stopped(FLAT, "replica", IN_PRODUCTION, None)
    assert replica_actions(old_primary) == [
        (Kind.FENCE, "its data last ran as a primary (in production) and the file makes it a replica: write "
                     "standby.signal before its container starts", BUILD),
        (Kind.START, "container is exited", BUILD),
    ]


def test_a_node_the_failover_fences_waits_for_the_next_round() -> None:
    """What it needs next is planned on what it is once fenced (stopped, standby.signal), not on
    what it was before (a container running off the network would get a reconnect)."""
    p = plan(TO_REPLICA, lost_write(primary=stopped(TO_REPLICA, "primary", SHUT_DOWN, 0x3000000)), allow_data_loss=True)
    failover = p.actions[0]
    assert failover.kind is Kind.FAILOVER and "primary" in failover.fence
    assert [a.kind for a in p.actions if a.node == "primary"] == []
    assert "primary: taken care of by the failover; rejoins in a later round" in p.notes
