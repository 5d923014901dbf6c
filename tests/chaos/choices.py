"""What each round does, drawn from the seed alone (pure).

Every round draws from its own `random.Random(f"{seed}:{round}")`, always the same number of
draws, so round 7 of seed 1 is the same choice whatever rounds 1-6 did or how long they took.
Node picks are drawn as fractions in [0, 1) and resolved against the file as it is when the round
runs (`pick`): the choices replay exactly; which node a fraction lands on can differ only if an
earlier round ended differently (e.g. a refusal led the harness to name another primary).
Timing is real, not simulated: a fault at "0.8 s" lands wherever the command is at that moment.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

OPS = ("change", "switchover", "failover", "idle")
OP_WEIGHTS = (5, 3, 2, 1)
CHANGES = ("cascade", "flatten", "restart-param", "add-replica", "remove-replica")
FAULTS = ("none", "stop", "kill", "rm", "kill-pgtopo", "disconnect", "pause", "engine-restart")
FAULT_WEIGHTS = (3, 2, 2, 2, 3, 2, 2, 1)
FAILOVER_KILLS = ("stop", "kill", "rm")
# Share of add-replica rounds whose new replica gets a data volume too small for its clone (a full
# disk): drawn from the round's spare draw, so every other choice of a seed stays what it was.
DISK_FULL_RATE = 0.3
# Share of rounds that start with a burst of about 40 MB of WAL on the primary, so the copies the
# round's fault stops hold WAL well past their last checkpoint's segment (the client's small rows
# rarely take them there; a WAL end read only to that segment's end once went unseen for 200 rounds).
WAL_BURST_RATE = 0.3

T = TypeVar("T")


@dataclass(frozen=True)
class Choice:
    """One round's decisions, before they meet the cluster."""

    round: int
    op: str  # change | switchover | failover | idle
    change: str  # for op=change: one of CHANGES
    switch_by_command: bool  # switchover: `pgtopo switchover --to` (else edit the file and apply)
    failover_kill: str  # failover: how the primary dies (stop | kill | rm)
    target: float  # which node the op is about, resolved by `pick`
    other: float  # a second node (an upstream to cascade from)
    value: float  # a parameter value
    fault: str  # one of FAULTS
    fault_target: float
    fault_delay: float  # seconds after the op's command started
    lossy: bool  # this round may pass --allow-data-loss
    disk_full: bool = False  # add-replica: the new replica's data volume is an 8 MB tmpfs (a full disk)
    wal_burst: bool = False  # the round starts with about 40 MB of WAL written on the primary

    def describe(self) -> str:
        op = {"change": f"change:{self.change}",
              "switchover": "switchover:" + ("command" if self.switch_by_command else "edit"),
              "failover": f"failover:{self.failover_kill}"}.get(self.op, self.op)
        fault = "none" if self.fault == "none" else f"{self.fault}@{self.fault_delay:.2f}s(t={self.fault_target:.2f})"
        return (f"round {self.round}: op={op} target={self.target:.2f} other={self.other:.2f} fault={fault}"
                + (" disk-full" if self.disk_full else "") + (" wal-burst" if self.wal_burst else "")
                + (" lossy" if self.lossy else ""))


def draw(seed: int, round_no: int, engine_restart: bool = False, lossy_rate: float = 0.0) -> Choice:
    """The choice for `round_no` of `seed`; the same arguments always give the same choice."""
    rng = random.Random(f"{seed}:{round_no}")
    op = rng.choices(OPS, OP_WEIGHTS)[0]
    change = rng.choice(CHANGES)
    by_command = rng.random() < 0.5
    kill = rng.choice(FAILOVER_KILLS)
    target, other, value = rng.random(), rng.random(), rng.random()
    fault = rng.choices(FAULTS, FAULT_WEIGHTS)[0]
    fault_target, delay = rng.random(), rng.uniform(0.05, 2.5)
    spare = rng.random()  # was a pause length; now only decides disk_full (same draws, same seeds)
    lossy_draw = rng.random()
    burst_draw = rng.random()  # drawn last: every earlier choice of a seed stays what it was
    if fault == "engine-restart" and not engine_restart:
        fault = "none"
    disk_full = op == "change" and change == "add-replica" and spare < DISK_FULL_RATE
    return Choice(round_no, op, change, by_command, kill, target, other, value, fault, fault_target,
                  round(delay, 3), lossy_draw < lossy_rate, disk_full, burst_draw < WAL_BURST_RATE)


def pick(fraction: float, items: Sequence[T]) -> T:
    """Resolve a drawn fraction against a list (sorted by the caller, so it is stable)."""
    if not items:
        raise ValueError("nothing to pick from")
    return items[min(int(fraction * len(items)), len(items) - 1)]
