"""Turn a drawn choice into a concrete, valid edit of the topology file (pure).

Called by the harness at the start of each round with the file as it is then.  Every result is a
file pgtopo accepts: upstream chains end at the primary, the primary has no upstream, at least one
replica remains.
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


def topology_change(choice: Choice, topo: Topo) -> tuple[Topo, str]:
    """The file after `choice.change`, and a sentence for the log ("nothing to ..." when the
    change does not apply to this file: the round then applies the file unchanged)."""
    match choice.change:
        case "cascade":
            return _cascade(choice, topo)
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
            return topo.without_node(node), f"remove {node}"
    raise ValueError(choice.change)


def _cascade(choice: Choice, topo: Topo) -> tuple[Topo, str]:
    replicas = topo.replicas()
    node = pick(choice.target, replicas)
    below = _subtree(topo, node)
    candidates = [r for r in replicas if r not in below and r != topo.upstream_of(node)]
    if not candidates:
        return topo, f"nothing to cascade: no other replica {node} could stream from"
    upstream = pick(choice.other, candidates)
    return topo.with_upstream(node, upstream), f"{node} streams from {upstream} (cascade)"


def _subtree(topo: Topo, node: str) -> set[str]:
    """`node` and every node that streams from it, directly or not."""
    out, todo = {node}, [node]
    while todo:
        for child in topo.downstreams(todo.pop()):
            if child not in out:
                out.add(child)
                todo.append(child)
    return out
