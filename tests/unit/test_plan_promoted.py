"""A promoted node's postgresql.auto.conf is made to match the file: the primary_conninfo and
primary_slot_name it kept from when it was a standby are reset once it takes writes.  Pure
planner cases on hand-built observed states, like test_plan.py."""

from __future__ import annotations

from dataclasses import replace

from pgtopo import desired, labels as L
from pgtopo.observed import NodeFacts
from pgtopo.plan import plan

from .test_plan import container, converged, kinds, pg_primary, pg_replica, topo, volume

BEFORE = topo(nodes={"primary": {}, "replica": {}, "replica2": {}})
AFTER = topo(primary="replica", nodes={"primary": {}, "replica": {}, "replica2": {}})
# What replica's postgresql.auto.conf held while it streamed from primary
AS_STANDBY = desired.replication_settings(BEFORE, "replica", 170000)


def promoted(t=AFTER, auto_conf=None, **kw) -> NodeFacts:
    """replica, promoted: it takes writes, with `auto_conf` (default: what it had as a standby)."""
    conf = {**desired.settings(t, "replica"), **AS_STANDBY} if auto_conf is None else auto_conf
    return NodeFacts("replica", container=container(t, "replica"), volume=volume(t, "replica"),
                     pg=pg_primary(t, auto_conf=conf, **kw))


def test_after_a_switchover_the_new_primary_keeps_no_upstream_in_its_auto_conf() -> None:
    p = plan(AFTER, converged(AFTER, replica=promoted()))
    assert kinds(p) == [("replica", "configure")], p.actions
    [action] = p.actions
    assert action.settings == (("primary_conninfo", None), ("primary_slot_name", None))
    assert action.reason.startswith("ALTER SYSTEM RESET primary_conninfo, primary_slot_name: left from when it "
                                    "was a standby")
    assert "no restart" in action.reason and not action.destructive


def test_only_the_entries_it_still_has_are_reset_and_no_restart_follows() -> None:
    left = {**desired.settings(AFTER, "replica"), "primary_slot_name": L.slot_name("replica")}
    p = plan(AFTER, converged(AFTER, replica=promoted(auto_conf=left,
                                                      restart_settings=frozenset({"primary_slot_name"}))))
    assert kinds(p) == [("replica", "configure")]
    assert p.actions[0].settings == (("primary_slot_name", None),)


def test_once_reset_the_cluster_is_converged_and_nothing_is_planned() -> None:
    assert plan(AFTER, converged(AFTER, replica=promoted(auto_conf=desired.settings(AFTER, "replica")))).empty
    assert plan(BEFORE, converged(BEFORE)).empty  # never promoted: nothing to reset either


def test_a_user_setting_change_on_the_new_primary_is_its_own_action() -> None:
    t = topo(primary="replica", nodes={"primary": {}, "replica": {}, "replica2": {}},
             parameters={"work_mem": "8MB"})
    p = plan(t, converged(t, replica=promoted(t, auto_conf={**AS_STANDBY})))
    on_primary = [a for a in p.actions if a.node == "replica"]
    assert [a.settings for a in on_primary] == [(("primary_conninfo", None), ("primary_slot_name", None)),
                                                (("work_mem", "8MB"),)]


def test_a_standby_the_file_makes_the_primary_is_promoted_first_and_reset_only_later() -> None:
    """Its entries stream WAL until it is promoted: the switchover (or failover) round leaves
    them alone; the next round resets them."""
    caught_up = pg_replica(BEFORE, "replica", lsn=pg_primary(BEFORE).lsn)
    before = converged(BEFORE, replica=replace(converged(BEFORE).node("replica"), pg=caught_up))
    switchover = plan(AFTER, before)
    assert kinds(switchover)[0] == ("replica", "switchover") and ("replica", "configure") not in kinds(switchover)

    old = before.node("primary")
    stopped = replace(old, pg=None, container=container(BEFORE, "primary", "exited"))
    failover = plan(AFTER, replace(before, nodes={**before.nodes, "primary": stopped}))
    assert ("replica", "failover") in kinds(failover) and ("replica", "configure") not in kinds(failover), failover
