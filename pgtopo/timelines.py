"""Can a node follow its upstream as it is, or must it be rewound or re-cloned?  Pure.

Called by plan.py.  Decided from timelines and WAL positions, as Patroni and repmgr do: a node
whose WAL is part of the upstream's history can simply follow; a node that went on past the
point where its timeline left the upstream's history (a promotion) needs pg_rewind back to that
point; a node ahead of its upstream on the same timeline cannot be rewound (pg_rewind finds
nothing to undo) and must be re-cloned.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

History = tuple[tuple[int, int], ...]  # (timeline, LSN where it ended), from the .history file


class Verdict(enum.Enum):
    FOLLOW = "follow"
    REWIND = "rewind"
    RECLONE = "reclone"


@dataclass(frozen=True)
class Position:
    timeline: int
    lsn: int
    history: History = ()

    def end_of(self, timeline: int) -> int | None:
        """Where `timeline` ended in this server's lineage; None when it is not in it.
        The current timeline has not ended: its end is this server's own position."""
        if timeline == self.timeline:
            return self.lsn
        return next((end for tli, end in self.history if tli == timeline), None)


def parse_history(text: str) -> History:
    """A timeline history file: `<parent tli>\\t<switch LSN>\\t<reason>` per line."""
    entries = []
    for line in text.splitlines():
        fields = line.strip().split()
        if len(fields) >= 2 and fields[0].isdigit() and "/" in fields[1]:
            entries.append((int(fields[0]), lsn_int(fields[1])))
    return tuple(entries)


def lsn_int(text: str) -> int:
    hi, lo = text.split("/")
    return (int(hi, 16) << 32) + int(lo, 16)


def lsn_text(value: int) -> str:
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


def decide(node: Position, upstream: Position, name: str = "the upstream") -> tuple[Verdict, str]:
    """What the node needs to stream from `upstream` (called `name` in the reason), and why."""
    if node.timeline == upstream.timeline:
        if node.lsn <= upstream.lsn:
            return Verdict.FOLLOW, f"its WAL (timeline {node.timeline}) is part of {name}'s"
        return Verdict.RECLONE, (f"it is ahead of {name} on the same timeline {node.timeline} "
                                 f"({lsn_text(node.lsn)} > {lsn_text(upstream.lsn)}); pg_rewind cannot undo that")
    end = upstream.end_of(node.timeline)
    if end is not None:
        if node.lsn <= end:
            return Verdict.FOLLOW, f"timeline {node.timeline} is in {name}'s history up to {lsn_text(end)}"
        return Verdict.REWIND, f"timeline {node.timeline} diverged from {name} at {lsn_text(end)}"
    fork = _fork_point(node, upstream)
    if fork is None:
        return Verdict.RECLONE, f"it shares no timeline with {name}"
    return Verdict.REWIND, f"timeline {node.timeline} diverged from {name} at {lsn_text(fork)}"


def shared_end(node: Position, upstream: Position) -> int | None:
    """The last WAL position both lineages hold; None when they share no timeline."""
    if node.timeline == upstream.timeline:
        return min(node.lsn, upstream.lsn)
    end = upstream.end_of(node.timeline)
    if end is not None:
        return min(node.lsn, end)
    return _fork_point(node, upstream)


def _fork_point(node: Position, upstream: Position) -> int | None:
    """The last WAL position both lineages share, walking the node's history backwards."""
    for tli, end in reversed(node.history):
        theirs = upstream.end_of(tli)
        if theirs is not None:
            return min(end, theirs)
    return None
