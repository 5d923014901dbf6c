"""A short seeded slice of the chaos harness, run by `make test` (the long run is `make chaos`).

Each seed runs a few rounds on its own cluster and fails with the replay command and the choices
so far when an invariant breaks.  `CHAOS_SLICE_SEEDS=3,4 CHAOS_SLICE_ROUNDS=5` picks others.
"""

from __future__ import annotations

import os

import pytest

from tests.chaos.harness import Harness, Options

pytestmark = pytest.mark.integration

SEEDS = [int(s) for s in os.environ.get("CHAOS_SLICE_SEEDS", "11,12").split(",")]
ROUNDS = int(os.environ.get("CHAOS_SLICE_ROUNDS", "4"))


@pytest.mark.parametrize("seed", SEEDS)
def test_chaos_slice(seed: int) -> None:
    lines: list[str] = []
    opts = Options(seed=seed, rounds=ROUNDS, image=os.environ.get("PGTOPO_TEST_IMAGE", "pgtopo-local/postgres:17"),
                   op_timeout=150)  # pgtopo's longest single wait is 120 s
    violations = Harness(opts, lambda line: (lines.append(line), print(line))).run()
    assert not violations, "\n".join(lines)
