"""Synchronous replication: the rule every node carries, how many standbys it asks for now, and
what it proves about a failover.  Pure.

Called by desired.py (the setting), plan.py (`durability: preferred` lowers the number to the
standbys that stream; restarts that make commits wait are warned about) and promotion.py (the
quorum rule: with `durability: required`, a failover may promote while a copy's WAL end is
unknown when the reachable synchronous standbys prove they hold every acknowledged commit).
docs/synchronous.md says what each guarantee rests on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from pgtopo import conninfo
from pgtopo.actions import Action, Kind, Phase, Wave
from pgtopo.labels import node_of_host
from pgtopo.observed import NodeFacts, Observed
from pgtopo.spec import Topology, sync_eligible

SETTING = "synchronous_standby_names"
DELAY_SETTING = "recovery_min_apply_delay"
_RULE = re.compile(r'^(ANY|FIRST) ([0-9]+) \((.*)\)$')
# Restarts and recreates of a node: while one runs, that node streams no WAL
STOPS = (Kind.RESTART, Kind.RECREATE, Kind.REWIND, Kind.RECLONE)


def rule_text(topo: Topology, number: int) -> str:
    """synchronous_standby_names for `number` standbys: the same text on every node ('' for none)."""
    sync = topo.synchronous
    if sync is None or number < 1:
        return ""
    names = ", ".join(f'"{name}"' for name in sync_eligible(topo))
    return f"{sync.method.upper()} {number} ({names})"


def node_settings(topo: Topology, node: str) -> dict[str, str]:
    """The settings pgtopo owns for synchronous and delayed replication on `node` (the file's
    full rule; `preferred` lowers it in the plan, see wanted_rule)."""
    out: dict[str, str] = {}
    if topo.synchronous is not None:
        out[SETTING] = rule_text(topo, topo.synchronous.number)
    if (delay := topo.nodes[node].delay) is not None:
        out[DELAY_SETTING] = delay
    return out


@dataclass(frozen=True)
class Rule:
    """A synchronous_standby_names as pgtopo writes it."""

    method: str  # ANY | FIRST
    number: int
    names: tuple[str, ...]


def parse(text: str | None) -> Rule | None:
    """The rule of a synchronous_standby_names pgtopo wrote; None for none or another shape."""
    match = _RULE.fullmatch(text or "")
    if match is None:
        return None
    names = tuple(part.strip().strip('"') for part in match.group(3).split(","))
    return Rule(match.group(1), int(match.group(2)), names)


def streaming_standbys(topo: Topology, obs: Observed) -> tuple[str, ...] | None:
    """The eligible standbys streaming from the node that accepts writes; None when no single node does."""
    writers = [facts for facts in obs.nodes.values() if facts.pg is not None and not facts.pg.in_recovery]
    if len(writers) != 1 or writers[0].pg is None:
        return None
    eligible = set(sync_eligible(topo)) - {writers[0].name}
    return tuple(sorted(d.application_name for d in writers[0].pg.downstreams
                        if d.application_name in eligible and d.state == "streaming"))


def wanted_rule(topo: Topology, obs: Observed) -> str | None:
    """The synchronous_standby_names every node must have now: the file's, or with `durability:
    preferred` one for as many standbys as stream (at most the file's number).  None: the file
    has no synchronous: block, or (preferred) no single writer to count standbys on."""
    sync = topo.synchronous
    if sync is None:
        return None
    if sync.durability == "required":
        return rule_text(topo, sync.number)
    streaming = streaming_standbys(topo, obs)
    if streaming is None:
        return None
    return rule_text(topo, min(sync.number, len(streaming)))


def preferred_note(topo: Topology, obs: Observed, rule: str | None) -> str | None:
    """What `durability: preferred` does now, in a sentence for the plan; None when it asks for the file's number."""
    sync = topo.synchronous
    if sync is None or sync.durability != "preferred" or rule is None or rule == rule_text(topo, sync.number):
        return None
    streaming = streaming_standbys(topo, obs) or ()
    if not streaming:
        return ("synchronous.durability is preferred and no eligible standby streams: commits do not wait "
                "(asynchronous) until one does and apply runs again")
    return (f"synchronous.durability is preferred and only {', '.join(streaming)} of the eligible standbys "
            f"stream{'s' if len(streaming) == 1 else ''}: commits wait for {len(streaming)}, not "
            f"{sync.number}, until apply runs again with more streaming")


def delayed(facts: NodeFacts) -> str | None:
    """The node's recovery_min_apply_delay when it replays late (observed), else None."""
    pg = facts.pg
    value = pg.auto_conf.get(DELAY_SETTING) if pg is not None else None
    return value if value not in (None, "", "0", "0ms", "0s") else None


def stalls(topo: Topology, obs: Observed, actions: Iterable[Action]) -> tuple[str, ...]:
    """Warnings for planned work that stops synchronous standbys until fewer than `number`
    stream: commits wait meanwhile (`preferred` too: it lowers the number only when a plan is
    made).  Nodes are stopped one wave at a time, so the question is asked for each stopped
    node alone."""
    sync = topo.synchronous
    streaming = streaming_standbys(topo, obs)
    if sync is None or streaming is None:
        return ()
    out = []
    for node in sorted({a.node for a in actions if a.kind in STOPS and a.node in streaming}):
        if len(streaming) - 1 < sync.number:
            others = [s for s in streaming if s != node]
            out.append(f"commits wait while {node} restarts: synchronous.number is {sync.number} and only "
                       f"{len(others)} other eligible standby{'' if len(others) == 1 else 's'} "
                       f"stream{'s' if len(others) == 1 else ''} ({', '.join(others) or 'none'}); another eligible "
                       "replica would keep them flowing")
    return tuple(out)


def lowered_last(topo: Topology, facts: NodeFacts, changes: tuple[tuple[str, str | None], ...]) -> Action | None:
    """The primary's part of a change that lowers the number of synchronous standbys, as an action
    of its own that runs after every standby has the new rule.  The failover guard (quorum) counts
    the rule the standbys carry: it must never be above the one the primary acknowledged commits
    with, so the primary raises its number first (its wave comes first) and lowers it last."""
    pg = facts.pg
    change = next(((k, v) for k, v in changes if k == SETTING), None)
    if pg is None or pg.in_recovery or facts.name != topo.primary or change is None:
        return None
    have, want = parse(pg.auto_conf.get(SETTING)), parse(change[1])
    if have is None or (want is not None and want.number >= have.number):
        return None
    last = 2 + max(topo.depth(n) for n in topo.nodes)
    what = f"{SETTING}={change[1]}" if change[1] is not None else f"reset {SETTING}"
    return Action(Kind.CONFIGURE, facts.name, f"ALTER SYSTEM {what}: fewer synchronous standbys, "
                  "set on the primary once every standby has it", wave=Wave(Phase.BUILD, last), settings=(change,))


@dataclass(frozen=True)
class Quorum:
    """What the reachable synchronous standbys prove about a failover."""

    holds: bool
    why: str


def quorum(topo: Topology, obs: Observed, candidate: str, known: set[str]) -> Quorum | None:
    """With `durability: required`, may a promotion of `candidate` leave copies whose WAL end is
    unknown aside?  Every acknowledged commit was flushed on W (the rule's number) of the N
    standbys the rule lists (less the old primary); R of them have a copy whose end is known
    (`known`); when R + W > N at least one of those holds each acknowledged commit, and the
    candidate holds all of theirs (promotion.py checks that).  Only when every running node of
    the file carries the file's rule (so the old primary ran with it: it is set there first),
    and the candidate is one of the eligible.  None: the file asks for no such guarantee."""
    sync = topo.synchronous
    if sync is None or sync.durability != "required":
        return None
    wanted = rule_text(topo, sync.number)
    rule = parse(wanted)
    assert rule is not None
    running = [f for name, f in sorted(obs.nodes.items()) if name in topo.nodes and f.pg is not None]
    drifted = [f.name for f in running if f.pg is not None and f.pg.auto_conf.get(SETTING) != wanted]
    if not running or drifted:
        where = ", ".join(drifted) or "no running node"
        return Quorum(False, f"the synchronous rule the file asks for ({wanted}) is not in effect on {where}, so "
                             "nothing proves how many standbys held each commit")
    if candidate not in rule.names:
        return Quorum(False, f"{candidate} is not one of the synchronous standbys ({', '.join(rule.names)})")
    old = _old_primary(topo, obs, rule, known)
    standbys = [n for n in rule.names if n != old]
    reachable = sorted(n for n in standbys if n in known)
    n, w, r = len(standbys), rule.number, len(reachable)
    counted = (f"{r} of the {n} synchronous standbys{f' of {old}' if old else ''} are reachable "
               f"({', '.join(reachable) or 'none'}) and each commit waited for {w}")
    if r + w > n:
        return Quorum(True, f"{counted}: R + W > N ({r} + {w} > {n}), so one of them holds every acknowledged "
                            "commit")
    unreachable = sorted(set(standbys) - set(reachable))
    their = "its" if len(unreachable) == 1 else "their"
    return Quorum(False, f"{counted}: R + W > N does not hold ({r} + {w} <= {n}); bring "
                         f"{', '.join(unreachable)} back so {their} WAL can be read")


def _old_primary(topo: Topology, obs: Observed, rule: Rule, known: set[str]) -> str | None:
    """The node the listed standbys streamed from, when they all name one that is not reachable
    (it is then not counted among N); None otherwise (every listed node counts: a stricter N)."""
    ups = {facts.pg.receiver.upstream if facts.pg.receiver else _conninfo_node(topo, facts)
           for name in rule.names if (facts := obs.node(name)).pg is not None and facts.pg.in_recovery}
    if len(ups) != 1:
        return None
    (up,) = ups
    return up if up in rule.names and up not in known else None


def _conninfo_node(topo: Topology, facts: NodeFacts) -> str | None:
    """The node a standby's primary_conninfo names (its receiver is down while that node is)."""
    assert facts.pg is not None
    text = facts.pg.auto_conf.get("primary_conninfo")
    try:
        host = conninfo.parse(text).get("host") if text else None
    except ValueError:
        return None
    return node_of_host(host, topo.cluster)
