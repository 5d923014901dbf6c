"""Turn a drawn choice into a concrete, valid edit of the topology file (pure).

Called by the harness at the start of each round with the file as it is then.  Every result is a
file pgtopo accepts: upstream chains end at the primary, the primary has no upstream, at least one
replica remains, and (in a synchronous run) at least `standbys` replicas stream from the primary
itself, the synchronous standbys the file's `synchronous.number` asks for.
"""

from __future__ import annotations

from .choices import Choice, pick
from .topology import Topo

REPLICA_NAMES = ("replica", "replica2", "replica3", "replica4")
MAX_NODES = 4
# Settings that need a restart, and the values the harness moves between: max_connections and
# max_wal_senders go below their defaults (100, pgtopo's 40) too, so lowering a setting a standby
# must hold at least as high as its primary is exercised in both directions.
RESTART_PARAMS = (("max_connections", (60, 105, 120)), ("shared_buffers", ("16MB", "32MB", "48MB")),
                  ("max_wal_senders", (20, 42, 50)))


def topology_change(choice: Choice, topo: Topo, standbys: int = 0) -> tuple[Topo, str]:
    """The file after `choice.change`, and a sentence for the log ("nothing to ..." when the
    change does not apply to this file: the round then applies the file unchanged).  `standbys`:
    how many replicas must stream from the primary (the synchronous number; 0 without one)."""
    match choice.change:
        case "cascade":
            return _cascade(choice, topo, standbys)
        case "flatten":
            cascaded = [n for n in topo.replicas() if topo.upstream_of(n) != topo.primary]
            if not cascaded:
                return topo, "nothing to flatten: every replica streams from the primary"
            node = pick(choice.target, cascaded)
            return topo.with_upstream(node, None), f"{node} streams from the primary again"
        case "restart-param":
            name, values = pick(choice.other, RESTART_PARAMS)
            current = topo.params.get(name)
            options = [v for v in values if v != current]
            value = pick(choice.value, options)
            return topo.with_params({**topo.params, name: value}), f"parameter {name}: {current} -> {value} (restart)"
        case "add-replica":
            free = [n for n in REPLICA_NAMES if n not in topo.upstreams]
            if len(topo.upstreams) >= MAX_NODES or not free:
                return topo, f"nothing to add: already {len(topo.upstreams)} nodes"
            node = free[0]
            upstream = pick(choice.other, [None, *topo.replicas()])
            added = topo.with_node(node).with_upstream(node, upstream)
            return added, f"add {node} streaming from {upstream or topo.primary}"
        case "remove-replica":
            if len(topo.replicas()) <= 1:
                return topo, "nothing to remove: only one replica left"
            node = pick(choice.target, topo.replicas())
            removed = topo.without_node(node)
            if len(removed.eligible()) < standbys:
                return topo, (f"nothing to remove: without {node} only {len(removed.eligible())} replica(s) would "
                              f"stream from the primary, and synchronous.number is {standbys}")
            return removed, f"remove {node}"
    raise ValueError(choice.change)


def keep_standbys(topo: Topo, standbys: int) -> tuple[Topo, list[str]]:
    """The file with enough replicas streaming from the primary for `standbys` synchronous ones,
    and the replicas moved there: after a new primary is named, a replica whose upstream named it
    (or the old primary) by name can end up cascaded, leaving too few (only with a number above 1:
    the old primary itself streams from the new one).  Replicas one hop below the primary first."""
    moved: list[str] = []
    while len(topo.eligible()) < standbys:
        cascaded = [n for n in topo.replicas() if topo.upstream_of(n) != topo.primary]
        if not cascaded:
            break
        node = min(cascaded, key=lambda n: (topo.upstream_of(topo.upstream_of(n) or "") != topo.primary, n))
        topo = topo.with_upstream(node, None)
        moved.append(node)
    return topo, moved


def _cascade(choice: Choice, topo: Topo, standbys: int = 0) -> tuple[Topo, str]:
    replicas = topo.replicas()
    node = pick(choice.target, replicas)
    below = _subtree(topo, node)
    candidates = [r for r in replicas if r not in below and r != topo.upstream_of(node)]
    if not candidates:
        return topo, f"nothing to cascade: no other replica {node} could stream from"
    upstream = pick(choice.other, candidates)
    cascaded = topo.with_upstream(node, upstream)
    if len(cascaded.eligible()) < standbys:
        return topo, (f"nothing to cascade: {node} streaming from {upstream} would leave "
                      f"{len(cascaded.eligible())} replica(s) streaming from the primary, and synchronous.number "
                      f"is {standbys}")
    return cascaded, f"{node} streams from {upstream} (cascade)"


def _subtree(topo: Topo, node: str) -> set[str]:
    """`node` and every node that streams from it, directly or not."""
    out, todo = {node}, [node]
    while todo:
        for child in topo.downstreams(todo.pop()):
            if child not in out:
                out.add(child)
                todo.append(child)
    return out
