"""What puts the cluster back after a restart whose server did not start (rollback.py), on plain
values: the node that failed gets the postgresql.auto.conf it ran with, the nodes configured but
not restarted get their old values back, and apply says which setting and why in the server's words.
"""

from __future__ import annotations

from pgtopo.actions import Action, Kind
from pgtopo.observed import NodeFacts, Observed
from pgtopo.plan import plan
from pgtopo.rollback import PROMISE, message, steps

from .test_plan import container, converged, pg_primary, pg_replica, topo, volume

BEFORE = topo(parameters={"work_mem": "4MB"})  # primary, replica, replica2 (from replica)
AFTER = topo(parameters={"work_mem": "8MB", "shared_buffers": "900GB"})
FATAL = "FATAL:  could not map anonymous shared memory: Cannot allocate memory"


def running_before() -> Observed:
    return converged(BEFORE)


def carried_out(upto: str) -> tuple[list[Action], Action]:
    """The actions of AFTER's plan carried out before the restart of `upto`, and that restart."""
    done: list[Action] = []
    for wave in plan(AFTER, running_before()).waves():
        for action in wave:
            if action.kind is Kind.RESTART and action.node == upto:
                return done, action
            done.append(action)
    raise AssertionError(f"no restart of {upto}")


def test_the_plan_restarts_the_deepest_replica_first_and_says_what_a_failure_does() -> None:
    p = plan(AFTER, running_before())
    restarts = [a for w in p.waves() for a in w if a.kind is Kind.RESTART]
    assert [a.node for a in restarts] == ["replica2", "replica", "primary"]
    assert all(PROMISE in a.reason for a in restarts)
    assert "restore-conf" in PROMISE


def test_the_failed_node_gets_back_what_it_ran_with_and_the_others_their_old_values() -> None:
    done, failed = carried_out("replica2")
    restore, *undo = steps(AFTER, running_before(), done, failed, FATAL)
    assert (restore.kind, restore.node) == (Kind.RESTORE_CONF, "replica2")
    ran_with = running_before().node("replica2").pg
    assert ran_with is not None and dict(restore.settings) == dict(ran_with.auto_conf)
    assert "shared_buffers = 900GB" in restore.reason and FATAL in restore.reason
    assert [(a.kind, a.node) for a in undo] == [(Kind.CONFIGURE, "primary"), (Kind.CONFIGURE, "replica")]
    for a in undo:
        assert dict(a.settings) == {"shared_buffers": None, "work_mem": "4MB"}, a  # reset: it was not set
        assert "replica2's server did not start" in a.reason


def test_nodes_restarted_before_the_failure_keep_the_settings_they_run_with() -> None:
    done, failed = carried_out("replica")
    done_with_restart = [*done, *[a for a in plan(AFTER, running_before()).actions
                                  if a.kind is Kind.RESTART and a.node == "replica2"]]
    _, *undo = steps(AFTER, running_before(), done_with_restart, failed, FATAL)
    assert [a.node for a in undo] == ["primary"]
    text = message(AFTER, running_before(), done_with_restart, failed, FATAL, undo, None)
    assert "replica2, restarted before it, run with the new settings and keep them" in text


def test_a_value_waiting_for_a_restart_is_put_back_as_the_server_runs_it() -> None:
    """An interrupted apply left 900GB in postgresql.auto.conf (pg_file_settings does not apply it)
    over the 256MB the server runs with: the restart puts 256MB back, not 900GB nor nothing."""
    pg = pg_replica(BEFORE, "replica2", pending_restart=("shared_buffers",), running_conf={"shared_buffers": "256MB"})
    observed = converged(BEFORE, replica2=NodeFacts("replica2", container=container(BEFORE, "replica2"),
                                                    volume=volume(BEFORE, "replica2"), pg=pg))
    restart = Action(Kind.RESTART, "replica2", "shared_buffers only apply after a restart")
    [restore] = steps(AFTER, observed, [], restart, FATAL)
    assert dict(restore.settings)["shared_buffers"] == "256MB"
    assert "shared_buffers = 900GB" in restore.reason


def test_only_a_restart_is_put_back() -> None:
    start = Action(Kind.START, "replica2", "container is exited")
    assert steps(AFTER, running_before(), [], start, FATAL) == ()


def test_the_message_names_the_setting_quotes_the_server_and_says_what_was_put_back() -> None:
    done, failed = carried_out("replica2")
    undo = steps(AFTER, running_before(), done, failed, FATAL)
    text = message(AFTER, running_before(), done, failed, FATAL, undo, None)
    assert text.startswith("replica2: its server did not start with shared_buffers = 900GB from the file:")
    assert FATAL in text
    assert "put replica2 back on the settings it ran with before (it runs again)" in text
    assert "; it took the change back out of primary, replica (configured, not restarted yet)" in text
    assert "no other node was restarted" in text
    broken = message(AFTER, running_before(), done, failed, FATAL, undo, "replica2: the server did not come up")
    assert "but putting replica2 back failed too:\nreplica2: the server did not come up" in broken


def test_the_primary_s_restart_is_put_back_the_same_way() -> None:
    """Lowering a hot-standby setting restarts the primary first: should it not start, it is put back
    on what it ran with (it is the file's primary and no replica was promoted)."""
    lowered = topo(parameters={"max_connections": 50, "shared_buffers": "900GB"})
    observed = converged(BEFORE, primary=NodeFacts("primary", container=container(BEFORE, "primary"),
                                                   volume=volume(BEFORE, "primary"),
                                                   pg=pg_primary(BEFORE, limits={"max_connections": 100})))
    p = plan(lowered, observed)
    done = [a for a in p.actions if a.kind is Kind.CONFIGURE]
    first = next(a for w in p.waves() for a in w if a.kind is Kind.RESTART)
    assert first.node == "primary"
    restore, *undo = steps(lowered, observed, done, first, FATAL)
    assert (restore.kind, restore.node) == (Kind.RESTORE_CONF, "primary")
    assert {a.node for a in undo} == {"replica", "replica2"}
