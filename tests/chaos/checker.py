"""The invariants of the chaos harness, as pure functions over what the harness recorded.

Called by `harness.py` after every step and by `tests/unit/test_chaos_checker.py` with
hand-built samples.  No I/O here: the monitor, the client and the Docker listing hand in plain
values; each check returns the violations it found, each with a sentence a person can act on.

One writer.  The monitor probes every running node in *sweeps*.  A sweep asks each node
`pg_is_in_recovery()` (phase 1, all nodes concurrently), waits until every phase-1 answer is in
(the barrier, at instant T), then asks the nodes that answered false again on the *same
connection* (phase 2).  A node that answered false before T and again after T on one connection
was a writer at T: a server cannot leave and re-enter read-write mode without a restart, and a
restart ends the connection.  So two such nodes in one sweep were two writers at the same
instant T.  A legitimate handover can never show that: the old primary's shutdown completes (and
ends its connections) before the promotion of the new one begins, so the old primary cannot
answer false after any instant at which the new one already answered false.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Probe:
    """One node's answers in one sweep.  `None` answers mean no answer (down, paused, cut off)."""

    node: str
    conn: int  # identity of the connection both phases used (a new one after every reconnect)
    first_sent: float
    first_received: float
    first_in_recovery: bool | None
    second_sent: float | None = None
    second_received: float | None = None
    second_in_recovery: bool | None = None

    def writer_at(self, instant: float) -> bool:
        """True when the answers prove this node accepted writes at `instant`."""
        return (self.first_in_recovery is False and self.second_in_recovery is False
                and self.second_sent is not None
                and self.first_received <= instant <= self.second_sent)


@dataclass(frozen=True)
class Sweep:
    """All probes of one sweep; `barrier` is the instant T between its two phases."""

    number: int
    barrier: float
    probes: tuple[Probe, ...]

    def writers(self) -> list[str]:
        return sorted(p.node for p in self.probes if p.writer_at(self.barrier))


@dataclass(frozen=True)
class Violation:
    invariant: str  # one-writer | lost-write | convergence | orphans
    message: str


def two_writers(sweeps: list[Sweep]) -> list[Violation]:
    """A violation for every sweep in which two or more nodes were proven writers at its barrier
    (consecutive sweeps with the same writers are reported once, with the count)."""
    out: list[Violation] = []
    run: tuple[list[str], Sweep, int] | None = None
    for sweep in sweeps:
        writers = sweep.writers()
        if len(writers) >= 2 and run is not None and run[0] == writers:
            run = (writers, run[1], run[2] + 1)
            continue
        if run is not None:
            out.append(_two_writers_violation(*run))
        run = (writers, sweep, 1) if len(writers) >= 2 else None
    if run is not None:
        out.append(_two_writers_violation(*run))
    return out


def _two_writers_violation(writers: list[str], first: Sweep, count: int) -> Violation:
    return Violation("one-writer", f"{' and '.join(writers)} both accepted writes at t={first.barrier:.3f} "
                                   f"(sweep {first.number}, and {count - 1} sweep(s) after it)")


@dataclass(frozen=True)
class Ack:
    """A row the client inserted and whose COMMIT returned: it must never disappear."""

    id: int
    node: str
    at: float


@dataclass(frozen=True)
class LossAllowance:
    """A step run with --allow-data-loss: rows acknowledged up to `until` may be gone."""

    step: str
    until: float


def lost_writes(acks: list[Ack], present: set[int], allowances: Sequence[LossAllowance] = ()) -> list[Violation]:
    """Acknowledged rows missing from the primary, except those a lossy step was allowed to lose."""
    cutoff = max((a.until for a in allowances), default=float("-inf"))
    missing = [a for a in acks if a.id not in present and a.at > cutoff]
    if not missing:
        return []
    by_node: dict[str, list[int]] = {}
    for ack in missing:
        by_node.setdefault(ack.node, []).append(ack.id)
    where = "; ".join(f"{len(ids)} acknowledged by {node} (ids {_ranges(ids)})" for node, ids in sorted(by_node.items()))
    first = min(a.at for a in missing)
    return [Violation("lost-write", f"{len(missing)} acknowledged row(s) missing on the primary: {where}; "
                                    f"the first acknowledged at t={first:.3f}")]


def _ranges(ids: list[int], limit: int = 6) -> str:
    ids = sorted(ids)
    spans: list[str] = []
    start = prev = ids[0]
    for i in ids[1:] + [None]:  # type: ignore[list-item]
        if i is not None and i == prev + 1:
            prev = i
            continue
        spans.append(str(start) if start == prev else f"{start}-{prev}")
        if i is not None:
            start = prev = i
    return ", ".join(spans[:limit]) + (", ..." if len(spans) > limit else "")


@dataclass(frozen=True)
class Objects:
    """Docker objects that carry the cluster's label, by kind."""

    containers: frozenset[str] = field(default_factory=frozenset)
    volumes: frozenset[str] = field(default_factory=frozenset)
    networks: frozenset[str] = field(default_factory=frozenset)


def orphans(found: Objects, nodes: set[str], former: set[str], cluster: str, network: str) -> list[Violation]:
    """After recovery the labelled objects must be exactly: a container and a volume per node of
    the file, the state volume and the network.  Data volumes of nodes removed from the file
    (`former`) may remain: pgtopo keeps volumes unless asked."""
    want_containers = {f"{cluster}-{n}" for n in nodes}
    want_volumes = {f"{cluster}-{n}-data" for n in nodes} | {f"{cluster}-pgtopo-state"}
    allowed_volumes = want_volumes | {f"{cluster}-{n}-data" for n in former}
    problems = []
    if extra := sorted(found.containers - want_containers):
        problems.append(f"containers nobody asked for: {', '.join(extra)}")
    if missing := sorted(want_containers - found.containers):
        problems.append(f"node containers missing: {', '.join(missing)}")
    if extra := sorted(found.volumes - allowed_volumes):
        problems.append(f"volumes nobody asked for: {', '.join(extra)}")
    if missing := sorted(want_volumes - found.volumes):
        problems.append(f"volumes missing: {', '.join(missing)}")
    if found.networks != {network}:
        problems.append(f"networks {sorted(found.networks)} instead of [{network!r}]")
    return [Violation("orphans", p) for p in problems]


def leftovers(found: Objects) -> list[Violation]:
    """After `destroy --volumes` nothing with the cluster's label may remain."""
    names = sorted(found.containers | found.volumes | found.networks)
    return [Violation("orphans", f"left after destroy --volumes: {', '.join(names)}")] if names else []
