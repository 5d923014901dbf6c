"""`python -m tests.chaos --seed 1 --rounds 50` (what `make chaos` runs); `--scenario NAME` runs
one of the deterministic reproductions instead.  Exit 0 when no invariant broke, 1 otherwise."""

from __future__ import annotations

import argparse
import os
import sys

from .harness import Harness, Options
from .scenarios import SCENARIOS
from .topology import Synchronous


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--image", default=os.environ.get("PGTOPO_TEST_IMAGE", "pgtopo-local/postgres:17"))
    parser.add_argument("--lossy", type=float, default=0.0, metavar="RATE",
                        help="share of rounds allowed to pass --allow-data-loss (default 0: none)")
    parser.add_argument("--engine-restart", action="store_true",
                        help="allow Docker engine restarts as a fault (root, local dockerd; disturbs every user)")
    parser.add_argument("--keep-going", action="store_true", help="run every round even after a violation")
    parser.add_argument("--keep", action="store_true", help="leave the cluster up after a violation")
    parser.add_argument("--op-timeout", type=float, default=150.0,
                        help="cancel a pgtopo command after this (pgtopo's longest single wait is 120 s)")
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), help="run one deterministic reproduction")
    parser.add_argument("--synchronous", default="", metavar="METHOD:NUMBER[:DURABILITY]",
                        help="give the file a synchronous: block, e.g. any:1 (durability required unless "
                             ":preferred); with required, every acknowledged row must survive every failover")
    args = parser.parse_args(argv)
    if args.synchronous:
        try:
            args.synchronous = Synchronous.parse(args.synchronous).describe()
        except ValueError as exc:
            parser.error(str(exc))
    replay = (f" LOSSY={args.lossy}" if args.lossy else "") + (" ENGINE_RESTART=1" if args.engine_restart else "")
    opts = Options(seed=args.seed, rounds=args.rounds, image=args.image, lossy_rate=args.lossy,
                   engine_restart=args.engine_restart, keep_going=args.keep_going, keep=args.keep, op_timeout=args.op_timeout,
                   replay=replay, synchronous=args.synchronous)
    if args.scenario:
        violations = SCENARIOS[args.scenario](opts, lambda line: print(line, flush=True))
    else:
        violations = Harness(opts, lambda line: print(line, flush=True)).run()
    print("OK: no invariant broken" if not violations else f"FAILED: {len(violations)} violation(s)")
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
