"""The score of the last `mutmut run`, per module, and the survivors docs/mutation.md does not explain.

Run by `make mutate` after mutmut: reads mutmut's results (mutants/pgtopo/<module>.py.meta) and the
mutant names listed in docs/mutation.md (each survivor that no test can kill is listed there with
its reason). Exits 1 when a mutant survived unexplained, or was not run; prints what to look at.
"""

from __future__ import annotations

import json
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "mutation.md"
MUTANT = re.compile(r"pgtopo(?:\.\w+)+__mutmut_\d+")
KILLED = {1, 3}  # a test failed (3: pytest's internal error, as mutmut counts it)
TIMEOUT = {36, -24, 24, 152, 255}  # the tests hung on the mutant: caught, as mutmut counts it
SURVIVED = 0


def modules() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    return [str(path) for path in config["only_mutate"]]


def results(module: str) -> dict[str, int | None]:
    meta = ROOT / "mutants" / f"{module}.meta"
    if not meta.exists():
        return {}
    codes: dict[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"]
    return codes


def main() -> int:
    explained = set(MUTANT.findall(DOC.read_text())) if DOC.exists() else set()
    rows, unexplained, unrun = [], [], []
    for module in modules():
        codes = results(module)
        killed = sum(1 for code in codes.values() if code in KILLED or code in TIMEOUT)
        survived = sorted(name for name, code in codes.items() if code == SURVIVED)
        known = [name for name in survived if name in explained]
        unexplained += [name for name in survived if name not in explained]
        unrun += sorted(name for name, code in codes.items()
                        if code not in KILLED and code not in TIMEOUT and code != SURVIVED)
        rows.append((module, len(codes), killed, len(known), len(survived) - len(known)))
    print(f"{'module':<24} {'mutants':>8} {'killed':>8} {'equivalent':>11} {'unexplained':>12}")
    for module, total, killed, known, unknown in rows:
        print(f"{module:<24} {total:>8} {killed:>8} {known:>11} {unknown:>12}")
    total, killed = sum(r[1] for r in rows), sum(r[2] for r in rows)
    print(f"{'all':<24} {total:>8} {killed:>8} {sum(r[3] for r in rows):>11} {sum(r[4] for r in rows):>12}"
          f"   score {killed / total:.1%}" if total else "no results: run `make mutate`")
    for name in unexplained:
        print(f"survived, not explained in docs/mutation.md: {name}  (`.venv/bin/mutmut show {name}`)")
    for name in unrun:
        print(f"not run, no test covers it, or suspicious: {name}")
    stale = sorted(explained - {name for module in modules() for name, code in results(module).items()
                                if code == SURVIVED})
    for name in stale:
        print(f"listed in docs/mutation.md but no longer a survivor (killed, or renumbered): {name}")
    return 1 if unexplained or unrun or not total else 0


if __name__ == "__main__":
    sys.exit(main())
