"""A short seeded slice of the chaos harness, run by `make test` (the long run is `make chaos`).

Each seed runs a few rounds on its own cluster and fails with the replay command and the choices
so far when an invariant breaks.  `CHAOS_SLICE_SEEDS=3,4 CHAOS_SLICE_ROUNDS=5` picks others.
One more case runs the synchronous lane (`synchronous: {method: any, number: 1, durability:
required}`: no acknowledged row may be lost by any failover pgtopo allows), seed 13 for 3 rounds;
`CHAOS_SYNC_SEEDS` (and `CHAOS_SLICE_ROUNDS`) change that.
"""

from __future__ import annotations

import os

import pytest

from tests.chaos.harness import Harness, Options

pytestmark = pytest.mark.integration

SEEDS = [int(s) for s in os.environ.get("CHAOS_SLICE_SEEDS", "11,12").split(",")]
ROUNDS = int(os.environ.get("CHAOS_SLICE_ROUNDS", "4"))
SYNCHRONOUS = "any:1:required"
SYNC_SEEDS = [int(s) for s in os.environ.get("CHAOS_SYNC_SEEDS", "13").split(",")]
SYNC_ROUNDS = int(os.environ.get("CHAOS_SLICE_ROUNDS", "3"))

CASES = [pytest.param(seed, "", ROUNDS, id=str(seed)) for seed in SEEDS] + [
    pytest.param(seed, SYNCHRONOUS, SYNC_ROUNDS, id=f"{seed}-sync-{SYNCHRONOUS}") for seed in SYNC_SEEDS]


@pytest.mark.parametrize(("seed", "synchronous", "rounds"), CASES)
def test_chaos_slice(seed: int, synchronous: str, rounds: int) -> None:
    lines: list[str] = []
    opts = Options(seed=seed, rounds=rounds, image=os.environ.get("PGTOPO_TEST_IMAGE", "pgtopo-local/postgres:17"),
                   op_timeout=150, synchronous=synchronous)  # pgtopo's longest single wait is 120 s
    violations = Harness(opts, lambda line: (lines.append(line), print(line))).run()
    assert not violations, "\n".join(lines)
