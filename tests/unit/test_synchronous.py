"""Synchronous replication and delayed replicas on plain values (docs/synchronous.md): what the
file may say, the rule every node carries, what plan does with `required` and `preferred`, the
quorum failover guard (R + W > N), delayed replicas, and what status shows.  Pure, like
test_plan.py and test_promotion.py, whose builders it uses."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgtopo import desired, documents, render, rollback, synchronous
from pgtopo.actions import Kind, Plan, Wave
from pgtopo.loader import load_topology
from pgtopo.observed import DataFacts, Downstream, NodeFacts, Observed
from pgtopo.pgcontrol import IN_PRODUCTION, SHUT_DOWN, SHUT_DOWN_IN_RECOVERY
from pgtopo.plan import plan
from pgtopo.pooler import planning
from pgtopo.spec import OWNED_PARAMETERS, Topology, sync_eligible
from pgtopo.synchronous import SETTING, Rule, parse, rule_text

from .test_loader import HEAD, problems
from .test_plan import SYSID, container, converged, kinds, pg_primary, pg_replica, topo, volume
from .test_pooler_plan import POOLER
from .test_promotion import standby, stopped

NODES = {"primary": {}, "replica": {}, "replica2": {}}
ANY1 = 'ANY 1 ("primary", "replica", "replica2")'
ANY2 = 'ANY 2 ("primary", "replica", "replica2")'


def sync_topo(primary: str = "primary", nodes: dict | None = None, **sync) -> Topology:
    return topo(primary=primary, nodes=nodes or NODES, synchronous={"number": 1, **sync})


ASYNC = topo(nodes=NODES)


# --- 1. what the file may say -----------------------------------------------------------------

def owned(key: str) -> str:
    return f"parameter {key!r} cannot be set: {OWNED_PARAMETERS[key]}"


REFUSED = [
    pytest.param("  primary: {}\n  replica: {}\n  backup: {sync: false}\n  late: {delay: 1h}\nsynchronous: {number: 2}\n",
                 "10:15: synchronous.number: number is 2 but only 1 standby may be synchronous (replica: replicas of the "
                 "primary without sync: false or a delay); lower it or add replicas", id="number-above-eligible"),
    pytest.param("  primary: {}\n  replica: {}\n  replica2: {upstream: replica, sync: true}\nsynchronous: {}\n",
                 "8:33: nodes.replica2.sync: node 'replica2' streams from replica, not the primary: PostgreSQL never "
                 "makes a cascaded standby synchronous; remove sync", id="sync-on-a-cascaded-node"),
    pytest.param("  primary: {}\n  replica: {sync_priority: 1}\nsynchronous: {method: any}\n",
                 "7:13: nodes.replica.sync_priority: sync_priority orders method: first; with method: any every "
                 "eligible standby counts the same: remove it", id="sync_priority-with-any"),
    pytest.param("  primary: {}\n  replica: {}\n  late: {delay: 1h, sync_priority: 2}\nsynchronous: {method: first}\n",
                 "8:21: nodes.late.sync_priority: node 'late' is never synchronous (sync: false or a delay): remove "
                 "sync_priority", id="sync_priority-on-a-delayed-node"),
    pytest.param("  primary: {}\n  replica: {}\n  backup: {sync: false, sync_priority: 2}\nsynchronous: {method: first}\n",
                 "8:25: nodes.backup.sync_priority: node 'backup' is never synchronous (sync: false or a delay): remove "
                 "sync_priority", id="sync_priority-on-a-sync-false-node"),
    pytest.param("  primary: {}\n  replica: {sync: true}\n",
                 "7:13: nodes.replica.sync: sync needs a synchronous: block (synchronous: {method: any, number: 1})",
                 id="sync-without-a-synchronous-block"),
    pytest.param("  primary: {}\n  replica: {sync_priority: 1}\n",
                 "7:13: nodes.replica.sync_priority: sync_priority needs a synchronous: block (synchronous: {method: "
                 "any, number: 1})", id="sync_priority-without-a-synchronous-block"),
    pytest.param("  primary: {delay: 1h}\n  replica: {}\n",
                 "6:13: nodes.primary.delay: the primary 'primary' cannot have a delay: remove it (a delayed node is made "
                 "the primary only once its delay is removed)", id="delay-on-the-primary"),
    pytest.param("  primary: {}\n  replica: {}\n  late: {delay: 1h, sync: true}\nsynchronous: {}\n",
                 "8:21: nodes.late.sync: node 'late' has a delay: it is never synchronous; remove sync",
                 id="delay-with-sync-true"),
    *(pytest.param(f"  primary: {{}}\n  replica: {{delay: {bad}}}\n",
                   "7:20: nodes.replica.delay: must be a duration: a whole number and ms, s, min, h or d, e.g. 30s, "
                   f"15min, 1h (got '{bad}')", id=f"delay-{bad}") for bad in ("1 hour", "0s", "90x")),
    pytest.param("  primary: {}\n  replica: {delay: 25d}\n",
                 "7:20: nodes.replica.delay: must be at most 2147483647 ms, about 24 days (got '25d')",
                 id="delay-over-the-max"),
    pytest.param("  primary: {}\nparameters: {synchronous_standby_names: '*'}\n",
                 f"7:14: parameters.synchronous_standby_names: {owned('synchronous_standby_names')}",
                 id="cluster-synchronous_standby_names"),
    pytest.param("  primary: {}\nparameters: {recovery_min_apply_delay: 5min}\n",
                 f"7:14: parameters.recovery_min_apply_delay: {owned('recovery_min_apply_delay')}",
                 id="cluster-recovery_min_apply_delay"),
    pytest.param("  primary: {}\n  replica: {parameters: {synchronous_standby_names: x}}\n",
                 f"7:26: nodes.replica.parameters.synchronous_standby_names: {owned('synchronous_standby_names')}",
                 id="node-synchronous_standby_names"),
    pytest.param("  primary: {}\n  replica: {parameters: {recovery_min_apply_delay: 5min}}\n",
                 f"7:26: nodes.replica.parameters.recovery_min_apply_delay: {owned('recovery_min_apply_delay')}",
                 id="node-recovery_min_apply_delay"),
]


@pytest.mark.parametrize(("nodes", "expected"), REFUSED)
def test_the_file_is_refused_at_the_key_with_what_to_write_instead(tmp_path: Path, nodes: str, expected: str) -> None:
    assert problems(tmp_path, HEAD + nodes) == [expected]


def test_a_file_with_every_synchronous_key_loads(tmp_path: Path) -> None:
    path = tmp_path / "topo.yaml"
    path.write_text(HEAD + "  primary: {sync_priority: 2}\n  replica: {sync: true, sync_priority: 1}\n  replica2: {}\n"
                    "  backup: {sync: false}\n  reporting: {delay: 24d}\n  cascade: {upstream: replica}\n"
                    "synchronous: {method: first, number: 2, durability: preferred}\n", encoding="utf-8")
    t = load_topology(path, {})
    assert t.synchronous is not None and (t.synchronous.method, t.synchronous.durability) == ("first", "preferred")
    assert rule_text(t, t.synchronous.number) == 'FIRST 2 ("replica", "primary", "replica2")'
    assert t.nodes["reporting"].delay == "24d"


# --- 2. the rule ------------------------------------------------------------------------------

@pytest.mark.parametrize(("nodes", "sync", "rule"), [
    pytest.param(NODES, {}, ANY1, id="any: every direct replica and the primary, by name"),
    pytest.param({"primary": {}, "replica": {"sync_priority": 1}, "replica2": {}}, {"method": "first"},
                 'FIRST 1 ("replica", "primary", "replica2")', id="first: the docs' example"),
    pytest.param({"primary": {}, "zed": {"sync_priority": 5}, "bee": {"sync_priority": 5}, "ant": {"sync_priority": 9},
                  "alpha": {}}, {"method": "first", "number": 2},
                 'FIRST 2 ("bee", "zed", "ant", "alpha", "primary")', id="first: by priority, then name; unprioritised last"),
    pytest.param({"primary": {}, "replica": {}, "cascade": {"upstream": "replica"}, "reporting": {"delay": "1h"},
                  "backup": {"sync": False}}, {}, 'ANY 1 ("primary", "replica")',
                 id="cascaded, delayed and sync-false nodes left out"),
])
def test_the_rule_lists_the_eligible_nodes_in_order(nodes: dict, sync: dict, rule: str) -> None:
    t = sync_topo(nodes=nodes, **sync)
    assert t.synchronous is not None and rule_text(t, t.synchronous.number) == rule
    assert rule_text(t, 0) == "" and sync_eligible(ASYNC) == ()


def test_every_node_carries_the_same_rule_and_only_the_delayed_one_a_delay() -> None:
    t = sync_topo(nodes={"primary": {}, "replica": {}, "cascade": {"upstream": "replica"}, "reporting": {"delay": "1h"}})
    rule = 'ANY 1 ("primary", "replica")'
    assert {n: desired.settings(t, n) for n in t.nodes} == {
        "primary": {SETTING: rule}, "replica": {SETTING: rule}, "cascade": {SETTING: rule},
        "reporting": {"recovery_min_apply_delay": "1h", SETTING: rule}}
    assert SETTING not in desired.settings(ASYNC, "primary")


@pytest.mark.parametrize(("nodes", "sync"), [(NODES, {"number": 2}), (
    {"primary": {}, "replica": {"sync_priority": 1}, "replica2": {}, "late": {"delay": "1h"}}, {"method": "first"})])
def test_parse_reads_back_what_rule_text_writes(nodes: dict, sync: dict) -> None:
    t = sync_topo(nodes=nodes, **sync)
    assert t.synchronous is not None
    assert parse(rule_text(t, t.synchronous.number)) == Rule(t.synchronous.method.upper(), t.synchronous.number,
                                                             sync_eligible(t))
    assert parse(ANY1) == Rule("ANY", 1, ("primary", "replica", "replica2"))


@pytest.mark.parametrize("text", ["", None, "*", "replica, replica2", '2 ("a", "b")', 'any 1 ("a")', "ANY 1 a"])
def test_parse_gives_none_for_no_rule_or_one_pgtopo_did_not_write(text: str | None) -> None:
    assert parse(text) is None


# --- 3. plan: required and preferred ----------------------------------------------------------

def running(ran: Topology, streaming: tuple[str, ...] = (), **over: NodeFacts) -> Observed:
    """`ran` converged (its settings in every auto_conf); the primary sees `streaming` stream."""
    rows = tuple(Downstream(n, "streaming", 0, "quorum") for n in streaming)
    primary = NodeFacts("primary", container=container(ran, "primary"), volume=volume(ran, "primary"),
                        pg=pg_primary(ran, downstreams=rows))
    return converged(ran, **{"primary": primary, **over})


def everywhere(rule: str | None) -> list[tuple[str, str | None]]:
    return [("primary", rule), ("replica", rule), ("replica2", rule)]


def rule_changes(p: Plan) -> list[tuple[str, Wave, str | None]]:
    """(node, wave, value) of each CONFIGURE that touches synchronous_standby_names."""
    return [(a.node, a.wave, dict(a.settings)[SETTING]) for a in p.actions
            if a.kind is Kind.CONFIGURE and SETTING in dict(a.settings)]


@pytest.mark.parametrize(("ran", "number", "rule"), [(ASYNC, 1, ANY1), (sync_topo(), 2, ANY2)],
                         ids=["no rule yet", "raised 1 -> 2"])
def test_a_new_or_higher_rule_is_set_on_every_node_the_primary_first(ran: Topology, number: int, rule: str) -> None:
    p = plan(sync_topo(number=number), running(ran))
    changes = rule_changes(p)
    assert sorted((node, value) for node, _, value in changes) == everywhere(rule)
    first = {node: wave for node, wave, _ in changes}
    assert first["primary"] < first["replica"] and first["primary"] < first["replica2"]
    assert not p.warnings


@pytest.mark.parametrize(("file", "rule"), [(topo(nodes=NODES, synchronous={}, parameters={"work_mem": "8MB"}), ANY1),
                                            (topo(nodes=NODES, parameters={"work_mem": "8MB"}), None)],
                         ids=["2 -> 1", "synchronous removed"])
def test_a_lower_rule_reaches_the_primary_last_in_an_action_of_its_own(file: Topology, rule: str | None) -> None:
    p = plan(file, running(sync_topo(number=2)))
    changes = rule_changes(p)
    assert sorted((node, value) for node, _, value in changes) == everywhere(rule)
    [(_, last, _)] = [c for c in changes if c[0] == "primary"]
    assert all(wave < last for node, wave, _ in changes if node != "primary")
    early = [a for a in p.actions if a.node == "primary" and a.kind is Kind.CONFIGURE and a.wave < last]
    assert [a.settings for a in early] == [(("work_mem", "8MB"),)]  # the rest of the primary's change stays early


def test_removing_synchronous_says_reset_on_the_primary_as_on_the_replicas() -> None:
    p = plan(ASYNC, running(sync_topo(number=2)))
    reasons = [a.reason for a in p.actions if a.kind is Kind.CONFIGURE]
    assert len(reasons) == 3 and all("reset synchronous_standby_names" in r and "None" not in r for r in reasons)


PREFERRED_WARNS = "synchronous.durability is preferred and "


@pytest.mark.parametrize(("streaming", "rule", "warning"), [
    (("replica",), ANY1, "only replica of the eligible standbys streams: commits wait for 1, not 2, until apply runs "
                         "again with more streaming"),
    ((), "", "no eligible standby streams: commits do not wait (asynchronous) until one does and apply runs again"),
    (("replica", "replica2"), None, None),
], ids=["one of two streams", "none streams", "both stream"])
def test_preferred_lowers_the_rule_to_the_standbys_that_stream_and_says_so(streaming, rule, warning) -> None:
    t = sync_topo(number=2, durability="preferred")
    p = plan(t, running(t, streaming))
    assert not p.refusals
    if rule is None:
        assert rule_changes(p) == [] and p.warnings == ()
        return
    assert sorted((n, v) for n, _, v in rule_changes(p)) == everywhere(rule)
    assert p.warnings == (PREFERRED_WARNS + warning,)


def test_preferred_leaves_the_rule_alone_while_no_single_node_takes_writes() -> None:
    t, lowered = sync_topo(number=2, durability="preferred"), sync_topo(durability="preferred")
    obs = running(lowered, primary=stopped(lowered, "primary", SHUT_DOWN, 0x3000000),
                  replica=standby(lowered, "replica", 0x3000000), replica2=standby(lowered, "replica2", 0x3000000))
    p = plan(t, obs)
    assert not p.refusals and ("primary", "start") in kinds(p)
    assert not any(SETTING in dict(a.settings) for a in p.actions) and p.warnings == ()  # neither set nor reset


@pytest.mark.parametrize("streaming", [(), ("replica",)])
def test_required_keeps_the_file_s_number_whoever_streams(streaming: tuple[str, ...]) -> None:
    t = sync_topo(number=2)
    p = plan(t, running(t, streaming))
    assert (p.actions, p.refusals, p.warnings) == ((), (), ())


# --- 4. restarts that make commits wait -------------------------------------------------------

@pytest.mark.parametrize(("durability", "streaming", "warned"), [
    ("required", ("replica",), True), ("required", ("replica", "replica2"), False), ("preferred", ("replica",), True),
])
def test_a_restart_of_the_only_streaming_synchronous_standby_is_warned_about(durability, streaming, warned) -> None:
    t = sync_topo(durability=durability)
    restarting = NodeFacts("replica", container=container(t, "replica"), volume=volume(t, "replica"),
                           pg=pg_replica(t, "replica", pending_restart=("max_connections",)))
    p = plan(t, running(t, streaming, replica=restarting))
    assert ("replica", "restart") in kinds(p)
    assert p.warnings == (("commits wait while replica restarts: synchronous.number is 1 and only 0 other eligible "
                           "standbys stream (none); another eligible replica would keep them flowing",) if warned else ())


# --- 5. failover: the quorum rule -------------------------------------------------------------

OLD, NEW = sync_topo(), sync_topo(primary="replica2")  # what the nodes ran with; the file after the edit


def unanswering(t: Topology, node: str, state: int = IN_PRODUCTION) -> NodeFacts:
    """Its container runs and holds data, its server does not answer: how far its WAL goes is unknown."""
    return NodeFacts(node, container=container(t, node), volume=volume(t, node), pg_error="cannot connect",
                     data=DataFacts(True, SYSID, state=state, checkpoint=0x1000000, timeline=1))


def primary_lost(ran: Topology = OLD, **over: NodeFacts) -> Observed:
    nodes = dict(primary=unanswering(ran, "primary"), replica=standby(ran, "replica", 0x3000000),
                 replica2=standby(ran, "replica2", 0x3000000))
    return converged(ran, **{**nodes, **over})


@pytest.mark.parametrize(("over", "fence"), [
    ({}, ("primary",)),
    ({n: standby(OLD, n, 0x3000000, streaming=True) for n in ("replica", "replica2")}, ("primary",)),
    ({"replica": stopped(OLD, "replica", SHUT_DOWN_IN_RECOVERY, 0x3000000, fenced=True)}, ("primary", "replica")),
], ids=["receivers down: primary_conninfo names the old primary", "receivers still streaming from it",
        "replica stopped, its volume read"])
def test_a_quorum_of_reachable_synchronous_standbys_fails_over_past_an_unreachable_old_primary(over, fence) -> None:
    p = plan(NEW, primary_lost(**over))
    assert not p.refusals
    failover = p.actions[0]
    assert (failover.kind, failover.node, failover.fence, failover.data_loss) == (Kind.FAILOVER, "replica2", fence, False)
    assert failover.reason.endswith(
        "promote replica2 (unreachable copies left aside: 2 of the 2 synchronous standbys of primary are reachable "
        "(replica, replica2) and each commit waited for 1: R + W > N (2 + 1 > 2), so one of them holds every "
        "acknowledged commit)")
    assert [a for a in p.actions if a.node in fence] == []  # fenced by the failover: Promotion.handled
    assert "primary: taken care of by the failover; rejoins in a later round" in p.notes
    # without the relaxation (no synchronous: block) the same copies refuse
    [refusal] = plan(topo(primary="replica2", nodes=NODES), primary_lost(**over)).refusals
    assert refusal.startswith("primary: cannot tell whether it holds WAL replica2 lacks")


SYNC_FALSE = {"primary": {}, "replica": {}, "replica2": {"sync": False}}
QUORUM_REFUSED = [
    pytest.param(NEW, primary_lost(replica=unanswering(OLD, "replica", SHUT_DOWN_IN_RECOVERY)), NEW, primary_lost(),
                 "replica2: synchronous.durability is required but 1 of the 2 synchronous standbys of primary are "
                 "reachable (replica2) and each commit waited for 1: R + W > N does not hold (1 + 1 <= 2); bring "
                 "replica back so its WAL can be read", None, id="one of two standbys reachable"),
    pytest.param(NEW, primary_lost(replica=standby(OLD, "replica", 0x3000000, auto_conf={
        **pg_replica(OLD, "replica").auto_conf, SETTING: ANY2})), NEW, primary_lost(),
                 "replica2: synchronous.durability is required but the synchronous rule the file asks for "
                 f"({ANY1}) is not in effect on replica, so nothing proves how many standbys held each commit", None,
                 id="a running node carries another rule"),
    pytest.param(sync_topo("replica2", SYNC_FALSE), primary_lost(sync_topo(nodes=SYNC_FALSE)), NEW, primary_lost(),
                 "replica2: synchronous.durability is required but replica2 is not one of the synchronous standbys "
                 "(primary, replica)", None, id="the candidate has sync: false"),
    pytest.param(sync_topo("replica2", durability="preferred"), primary_lost(sync_topo(durability="preferred")), NEW,
                 primary_lost(), "primary: cannot tell whether it holds WAL replica2 lacks (its server does not answer "
                 "(cannot connect))", "R + W", id="preferred: the strict guard, no quorum"),
    pytest.param(NEW, primary_lost(replica=standby(OLD, "replica", 0x3000100)), NEW, primary_lost(),
                 "replica2: refusing to make it the primary: replica: holds 256 bytes of WAL on timeline 1 that "
                 "replica2 does not have", "cannot tell", id="a reachable copy known to be ahead"),
]


@pytest.mark.parametrize(("file", "obs", "fixed_file", "fixed", "refusal", "absent"), QUORUM_REFUSED)
def test_a_failover_the_quorum_does_not_prove_is_refused_unless_data_loss_is_allowed(
        file: Topology, obs: Observed, fixed_file: Topology, fixed: Observed, refusal: str, absent: str | None) -> None:
    assert plan(fixed_file, fixed).actions[0].kind is Kind.FAILOVER  # the case one fact away fails over
    p = plan(file, obs)
    assert p.actions == () and any(r.startswith(refusal) for r in p.refusals), p.refusals
    assert absent is None or not any(absent in r for r in p.refusals)
    allowed = plan(file, obs, allow_data_loss=True)
    assert not allowed.refusals and (allowed.actions[0].kind, allowed.actions[0].node) == (Kind.FAILOVER, "replica2")


def test_the_quorum_refusal_also_names_each_copy_that_cannot_be_read() -> None:
    refusals = plan(NEW, primary_lost(replica=unanswering(OLD, "replica", SHUT_DOWN_IN_RECOVERY))).refusals
    assert [r.split(":")[0] for r in refusals] == ["primary", "replica", "replica2"]
    assert "Stop its container so its volume can be read (`docker stop pg-replica`)" in refusals[1]


def test_a_failed_primary_restart_never_leaves_the_standbys_a_higher_rule_than_the_primary() -> None:
    """number 1 -> 2 with a restart setting: replica and replica2 restart with both, the primary does not start."""
    file = topo(nodes=NODES, synchronous={"number": 2}, parameters={"shared_buffers": "4GB"})
    obs = running(sync_topo(), ("replica", "replica2"))
    p = plan(file, obs)
    failed = next(a for a in p.actions if a.kind is Kind.RESTART and a.node == "primary")
    done = p.actions[:p.actions.index(failed)]
    assert [a.node for a in done if a.kind is Kind.RESTART] == ["replica", "replica2"]  # they keep ANY 2
    [restore] = rollback.steps(file, obs, done, failed, "FATAL: could not map anonymous shared memory")
    rule = parse(dict(restore.settings).get(SETTING))
    assert restore.node == "primary" and rule is not None and rule.number >= 2


# --- 6. delayed replicas ----------------------------------------------------------------------

DELAYED_NODES = {"primary": {}, "replica": {}, "reporting": {"delay": "1h"}}
DELAYED = topo(nodes=DELAYED_NODES)
TO_REPORTING = topo(primary="reporting", nodes={"primary": {}, "replica": {}, "reporting": {}})


def test_a_failover_to_a_delayed_replica_is_refused_unless_data_loss_is_allowed() -> None:
    obs = converged(DELAYED, primary=stopped(DELAYED, "primary", SHUT_DOWN, 0x3000000),
                    replica=standby(DELAYED, "replica", 0x3000000), reporting=standby(DELAYED, "reporting", 0x3000000))
    assert synchronous.delayed(obs.node("reporting")) == "1h"  # what it runs with, whatever the file says now
    assert plan(TO_REPORTING, obs).refusals == (
        "reporting: refusing to make it the primary: it is a delayed replica (recovery_min_apply_delay 1h), kept to "
        "undo mistakes, not to take over. Name another node as the primary, or apply with --allow-data-loss to "
        "promote it anyway",)
    assert plan(TO_REPORTING, obs, allow_data_loss=True).actions[0].kind is Kind.FAILOVER


@pytest.mark.parametrize("allow", [False, True])
def test_a_switchover_to_a_delayed_replica_is_refused_even_with_data_loss_allowed(allow: bool) -> None:
    obs = converged(DELAYED, replica=standby(DELAYED, "replica", 0x4000000, streaming=True),
                    reporting=standby(DELAYED, "reporting", 0x4000000, streaming=True))
    assert plan(TO_REPORTING, obs, allow_data_loss=allow).refusals == (
        "reporting: cannot switch over to it: it is a delayed replica (recovery_min_apply_delay 1h), which replays "
        "WAL that late. Keep primary as the primary in the file (primary: primary), remove reporting's delay and "
        "apply, then switch over again",)


def test_the_read_only_pool_leaves_a_delayed_streaming_replica_out() -> None:
    t = topo(nodes=DELAYED_NODES, pooler={**POOLER, "read_only": {"port": 6433}})
    both = converged(t, replica=standby(t, "replica", 0x4000000, streaming=True),
                     reporting=standby(t, "reporting", 0x4000000, streaming=True))
    assert planning.read_targets(t, both) == ("replica",)
    alone = converged(t, replica=stopped(t, "replica", SHUT_DOWN_IN_RECOVERY, 0x4000000),
                      reporting=standby(t, "reporting", 0x4000000, streaming=True))
    assert planning.read_targets(t, alone) == ("primary",)


# --- 7. status --------------------------------------------------------------------------------

STATUS_NODES = {**NODES, "reporting": {"delay": "1h"}}
STATUS = sync_topo(nodes=STATUS_NODES)


def status_of(t: Topology, in_effect: str) -> documents.StatusDocument:
    rows = (Downstream("replica", "streaming", 0, "quorum"), Downstream("replica2", "streaming", 0, "quorum"),
            Downstream("reporting", "streaming", 0, "async"))
    pg = pg_primary(t, downstreams=rows, auto_conf={**desired.settings(t, "primary"), SETTING: in_effect})
    return documents.status_document(t, converged(t, primary=NodeFacts(
        "primary", container=container(t, "primary"), volume=volume(t, "primary"), pg=pg)))


def test_status_shows_each_standby_s_synchronous_state_and_delay() -> None:
    doc = status_of(STATUS, ANY1)
    assert {n.name: (n.sync_state, n.delay) for n in doc.nodes} == {
        "primary": (None, None), "replica": ("quorum", None), "replica2": ("quorum", None), "reporting": ("async", "1h")}
    assert [render.status_cells(n)[5] for n in doc.nodes] == ["-", "streaming (quorum)", "streaming (quorum)",
                                                             "streaming, delay 1h"]


def test_status_says_which_rule_the_file_asks_for_and_which_the_primary_runs_with() -> None:
    doc = status_of(STATUS, ANY1)
    assert doc.synchronous is not None
    assert doc.synchronous.model_dump() == {"method": "any", "number": 1, "durability": "required", "rule": ANY1,
                                            "in_effect": ANY1}
    assert render.synchronous_line(doc.synchronous) == f"synchronous {ANY1} · durability required"
    lowered = status_of(sync_topo(nodes=STATUS_NODES, number=2, durability="preferred"), ANY1)
    assert lowered.synchronous is not None and lowered.synchronous.in_effect == ANY1
    assert render.synchronous_line(lowered.synchronous) == (f"synchronous {ANY2} · durability preferred · the primary "
                                                            f"runs with {ANY1}")
