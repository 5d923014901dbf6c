"""What a failed restart puts back and says (rollback.py), the cases test_rollback.py leaves open:
several settings at once, a setting the file removes, a restart with nothing known to apply, the
synchronous rule set on another node, and the words of the message, the hint and each undo.
"""

from __future__ import annotations

from pgtopo.actions import Action, Kind
from pgtopo.rollback import changed_settings, hint, message, steps
from pgtopo.synchronous import SETTING

from .test_plan import converged, topo
from .test_rollback import AFTER, BEFORE, FATAL, carried_out, running_before

ANY2 = 'ANY 2 ("primary", "replica", "replica2")'


def restart(node: str) -> Action:
    return Action(Kind.RESTART, node, "its settings only apply after a restart")


def configure(node: str, **settings: str | None) -> Action:
    return Action(Kind.CONFIGURE, node, "ALTER SYSTEM", settings=tuple(settings.items()))


def test_two_settings_that_take_a_restart_are_both_named_and_the_hint_names_the_container() -> None:
    two = topo(parameters={"work_mem": "8MB", "shared_buffers": "900GB", "max_connections": 500})
    done, failed = [configure("replica2", max_connections="500", shared_buffers="900GB")], restart("replica2")
    observed = running_before()
    assert changed_settings(two, observed, done, "replica2") == "max_connections = 500, shared_buffers = 900GB"
    assert hint(two, observed, done, failed) == (
        "fix max_connections and shared_buffers in the file and apply again (`docker logs pg-replica2` has the "
        "server's whole message); applied unchanged, the file fails the same way")


def test_a_setting_the_file_removes_is_named_as_reset() -> None:
    with_it = topo(parameters={"shared_buffers": "256MB"})
    without = topo()
    done = [configure("replica2", shared_buffers=None)]
    assert changed_settings(without, converged(with_it), done, "replica2") == "shared_buffers reset"


def test_only_the_failed_node_s_own_configure_says_what_its_restart_was_to_apply() -> None:
    file = topo(nodes={"primary": {"parameters": {"max_connections": 200}}, "replica": {},
                       "replica2": {"upstream": "replica", "parameters": {"shared_buffers": "900GB"}}})
    done = [configure("primary", max_connections="200"), configure("replica2", shared_buffers="900GB")]
    assert changed_settings(file, running_before(), done, "replica2") == "shared_buffers = 900GB"


def test_a_restart_with_nothing_known_to_apply_still_says_what_to_fix() -> None:
    failed = restart("replica2")
    assert changed_settings(AFTER, running_before(), [], "replica2") == "the file's settings"
    assert hint(AFTER, running_before(), [], failed).startswith("fix the settings in the file and apply again")


def test_with_nothing_else_configured_or_restarted_the_message_says_just_that() -> None:
    failed = restart("replica2")
    undone = steps(AFTER, running_before(), [], failed, FATAL)
    assert [a.kind for a in undone] == [Kind.RESTORE_CONF]
    text = message(AFTER, running_before(), [], failed, FATAL, undone, None)
    assert text.endswith("\napply stopped there and put replica2 back on the settings it ran with before (it runs "
                         "again); no other node was restarted")


def test_the_primary_failing_last_names_both_replicas_restarted_before_it() -> None:
    done, failed = carried_out("primary")
    undone = steps(AFTER, running_before(), done, failed, FATAL)
    text = message(AFTER, running_before(), done, failed, FATAL, undone, None)
    assert text.endswith("; replica, replica2, restarted before it, run with the new settings and keep them")


def test_the_restore_and_each_undo_say_what_they_do_word_for_word() -> None:
    done, failed = carried_out("replica2")
    restore, *undo = steps(AFTER, running_before(), done, failed, FATAL)
    assert restore.reason == (f"its server did not start with shared_buffers = 900GB ({FATAL}): stop it, put back the "
                              "postgresql.auto.conf it ran with before this apply, start it")
    assert [a.reason for a in undo] == [
        "ALTER SYSTEM reset shared_buffers, work_mem=4MB: back to the values it runs with; replica2's server did "
        "not start with this apply's, and its next restart would not either"] * 2


def test_a_synchronous_rule_set_on_another_node_is_not_put_on_the_failed_one() -> None:
    done = [configure("primary", **{SETTING: ANY2}), configure("replica2", shared_buffers="900GB")]
    restore, *_ = steps(AFTER, running_before(), done, restart("replica2"), FATAL)
    ran_with = running_before().node("replica2").pg
    assert ran_with is not None and dict(restore.settings) == ran_with.working_conf


def test_a_node_whose_configure_set_only_the_synchronous_rule_is_skipped_and_the_next_one_undone() -> None:
    done = [configure("primary", **{SETTING: ANY2}), configure("replica", work_mem="8MB")]
    _, *undo = steps(BEFORE, running_before(), done, restart("replica2"), FATAL)
    assert [(a.node, a.settings) for a in undo] == [("replica", (("work_mem", "4MB"),))]
