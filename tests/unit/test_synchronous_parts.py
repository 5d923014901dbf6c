"""The parts of synchronous.py on their own, on plain values: which standbys count as streaming,
what a delay of zero is, the warnings for restarts that make commits wait and for `preferred`,
the primary's own lowering of the rule, and the quorum guard's verdicts and words.  Builders
from test_synchronous.py, test_plan.py and test_promotion.py."""

from __future__ import annotations

import pytest

from pgtopo import synchronous
from pgtopo.actions import Action, Kind, Phase, Wave
from pgtopo.observed import Downstream, NodeFacts
from pgtopo.pgcontrol import SHUT_DOWN, SHUT_DOWN_IN_RECOVERY
from pgtopo.plan import plan
from pgtopo.spec import Topology
from pgtopo.synchronous import DELAY_SETTING, SETTING, Quorum

from .test_plan import container, converged, pg_primary, pg_replica, volume
from .test_promotion import standby, stopped
from .test_synchronous import ANY1, ANY2, OLD, primary_lost, rule_changes, running, sync_topo, unanswering

FOUR = {"primary": {}, "replica": {}, "replica2": {}, "replica3": {}}


def writer(t: Topology, *rows: Downstream, node: str = "primary", **kw) -> NodeFacts:
    return NodeFacts(node, container=container(t, node), volume=volume(t, node),
                     pg=pg_primary(t, downstreams=rows, **kw))


# --- which standbys stream -------------------------------------------------------------------------

def test_only_eligible_standbys_in_the_streaming_state_count() -> None:
    t = sync_topo(nodes={"primary": {}, "replica": {}, "replica2": {}, "backup": {"sync": False}})
    rows = (Downstream("replica", "catchup", 0), Downstream("replica2", "streaming", 0),
            Downstream("backup", "streaming", 0))
    assert synchronous.streaming_standbys(t, converged(t, primary=writer(t, *rows))) == ("replica2",)


# --- what a delay is -------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "delay"), [("", None), ("0", None), ("0ms", None), ("0s", None), ("1h", "1h")])
def test_an_empty_or_zero_apply_delay_is_no_delay(value: str, delay: str | None) -> None:
    t = sync_topo()
    facts = NodeFacts("replica", pg=pg_replica(t, "replica", auto_conf={DELAY_SETTING: value}))
    assert synchronous.delayed(facts) == delay


# --- restarts that make commits wait -----------------------------------------------------------------

def restart(node: str) -> Action:
    return Action(Kind.RESTART, node, "max_connections only applies after a restart", wave=Wave(Phase.RESTART))


@pytest.mark.parametrize(("nodes", "number", "warning"), [
    (None, 2, "commits wait while replica restarts: synchronous.number is 2 and only 1 other eligible standby "
              "streams (replica2); another eligible replica would keep them flowing"),
    (FOUR, 3, "commits wait while replica restarts: synchronous.number is 3 and only 2 other eligible standbys "
              "stream (replica2, replica3); another eligible replica would keep them flowing"),
], ids=["one other streams", "two others stream"])
def test_the_stall_warning_names_the_other_standbys_that_stream(nodes: dict | None, number: int, warning: str) -> None:
    t = sync_topo(nodes=nodes, number=number)
    obs = running(t, tuple(n for n in t.nodes if n != "primary"))
    assert synchronous.stalls(t, obs, [restart("replica")]) == (warning,)


def test_no_stall_is_warned_about_while_no_single_node_takes_writes() -> None:
    t = sync_topo()
    obs = converged(t, primary=stopped(t, "primary", SHUT_DOWN, 0x3000000))
    assert synchronous.stalls(t, obs, [restart("replica")]) == ()


# --- preferred ---------------------------------------------------------------------------------------

def test_preferred_names_every_standby_that_still_streams() -> None:
    t = sync_topo(nodes=FOUR, number=3, durability="preferred")
    p = plan(t, running(t, ("replica", "replica2")))
    assert p.warnings == ("synchronous.durability is preferred and only replica, replica2 of the eligible standbys "
                          "stream: commits wait for 2, not 3, until apply runs again with more streaming",)


# --- the primary lowers its rule last ------------------------------------------------------------------

CASCADE = {"primary": {}, "replica": {}, "replica2": {}, "cascade": {"upstream": "replica"}}
CASCADE_ANY1 = 'ANY 1 ("primary", "replica", "replica2")'


def test_the_primary_lowers_its_rule_in_the_wave_right_after_the_deepest_standby() -> None:
    p = plan(sync_topo(nodes=CASCADE), running(sync_topo(nodes=CASCADE, number=2)))
    waves = {node: wave for node, wave, _ in rule_changes(p)}
    assert waves["cascade"] == Wave(Phase.BUILD, 3)
    [lowered] = [a for a in p.actions if a.node == "primary" and a.kind is Kind.CONFIGURE]
    assert lowered == Action(Kind.CONFIGURE, "primary", f"ALTER SYSTEM {SETTING}={CASCADE_ANY1}: fewer synchronous "
                             "standbys, set on the primary once every standby has it", wave=Wave(Phase.BUILD, 4),
                             settings=((SETTING, CASCADE_ANY1),))


def test_a_new_rule_with_the_same_number_is_set_on_the_primary_first() -> None:
    p = plan(sync_topo(method="first"), running(sync_topo()))
    assert {node: wave for node, wave, _ in rule_changes(p)} == {
        "primary": Wave(Phase.BUILD, 1), "replica": Wave(Phase.BUILD, 2), "replica2": Wave(Phase.BUILD, 2)}


LOWER = ((SETTING, ANY1),)


@pytest.mark.parametrize("facts", [
    NodeFacts("primary"),
    NodeFacts("primary", pg=pg_replica(OLD, "replica", auto_conf={SETTING: ANY2})),
    NodeFacts("replica", pg=pg_primary(OLD, auto_conf={SETTING: ANY2})),
], ids=["its server does not answer", "it is a standby", "a writer the file does not name"])
def test_only_the_file_s_primary_taking_writes_lowers_its_rule_last(facts: NodeFacts) -> None:
    assert synchronous.lowered_last(OLD, facts, LOWER) is None
    primary = NodeFacts("primary", pg=pg_primary(OLD, auto_conf={SETTING: ANY2}))
    assert synchronous.lowered_last(OLD, primary, LOWER) is not None  # the case one fact away


# --- the quorum guard ------------------------------------------------------------------------------

NOT_IN_EFFECT = (f"the synchronous rule the file asks for ({ANY1}) is not in effect on {{}}, so nothing proves how "
                 "many standbys held each commit")


def test_no_running_node_proves_nothing() -> None:
    obs = primary_lost(replica=unanswering(OLD, "replica", SHUT_DOWN_IN_RECOVERY),
                       replica2=unanswering(OLD, "replica2", SHUT_DOWN_IN_RECOVERY))
    assert synchronous.quorum(OLD, obs, "replica2", set()) == Quorum(False, NOT_IN_EFFECT.format("no running node"))


def test_every_node_carrying_another_rule_is_named() -> None:
    other = {SETTING: ANY2}
    obs = primary_lost(replica=standby(OLD, "replica", 0x3000000, auto_conf=other),
                       replica2=standby(OLD, "replica2", 0x3000000, auto_conf=other))
    assert synchronous.quorum(OLD, obs, "replica2", {"replica", "replica2"}) == Quorum(
        False, NOT_IN_EFFECT.format("replica, replica2"))


def test_a_candidate_outside_the_rule_proves_nothing() -> None:
    t = sync_topo(nodes={"primary": {}, "replica": {}, "replica2": {"sync": False}})
    assert synchronous.quorum(t, primary_lost(t), "replica2", {"replica", "replica2"}) == Quorum(
        False, "replica2 is not one of the synchronous standbys (primary, replica)")


def test_a_reachable_old_primary_counts_among_the_standbys() -> None:
    obs = primary_lost(primary=stopped(OLD, "primary", SHUT_DOWN, 0x3000000))
    assert synchronous.quorum(OLD, obs, "replica2", {"primary", "replica", "replica2"}) == Quorum(
        True, "3 of the 3 synchronous standbys are reachable (primary, replica, replica2) and each commit waited "
              "for 1: R + W > N (3 + 1 > 3), so one of them holds every acknowledged commit")


def test_the_old_primary_is_the_one_the_standbys_receivers_stream_from() -> None:
    only_rule = {SETTING: ANY1}  # no primary_conninfo: the receiver alone says where they stream from
    obs = primary_lost(**{n: standby(OLD, n, 0x3000000, streaming=True, auto_conf=only_rule)
                          for n in ("replica", "replica2")})
    assert synchronous.quorum(OLD, obs, "replica2", {"replica", "replica2"}) == Quorum(
        True, "2 of the 2 synchronous standbys of primary are reachable (replica, replica2) and each commit waited "
              "for 1: R + W > N (2 + 1 > 2), so one of them holds every acknowledged commit")


def test_standbys_that_name_no_upstream_leave_the_old_primary_counted() -> None:
    only_rule = {SETTING: ANY1}  # neither a receiver nor a primary_conninfo
    obs = primary_lost(**{n: standby(OLD, n, 0x3000000, auto_conf=only_rule) for n in ("replica", "replica2")})
    assert synchronous.quorum(OLD, obs, "replica2", {"replica", "replica2"}) == Quorum(
        False, "2 of the 3 synchronous standbys are reachable (replica, replica2) and each commit waited for 1: "
               "R + W > N does not hold (2 + 1 <= 3); bring primary back so its WAL can be read")


def test_with_no_standby_reachable_the_guard_asks_for_each_back() -> None:
    assert synchronous.quorum(OLD, primary_lost(), "replica2", set()) == Quorum(
        False, "0 of the 2 synchronous standbys of primary are reachable (none) and each commit waited for 1: "
               "R + W > N does not hold (0 + 1 <= 2); bring replica, replica2 back so their WAL can be read")

