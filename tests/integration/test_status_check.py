"""`pgtopo status --check` for monitoring: exit 0 while the cluster is as the file says, exit 1 with
each node's drift when it is not."""

from __future__ import annotations

import json
import subprocess

from .conftest import IMAGE, PAIR, pgtopo


def test_status_check_exits_1_on_drift_and_names_it(make_cluster) -> None:
    c = make_cluster(IMAGE)
    c.write(PAIR)
    assert pgtopo("apply", str(c.path)).code == 0
    ok = pgtopo("status", str(c.path), "--check")
    assert ok.code == 0 and "in sync with the file" in ok.out, ok

    subprocess.run(["docker", "stop", c.container("replica")], check=True, capture_output=True)
    drift = pgtopo("status", str(c.path), "--check")
    assert drift.code == 1, drift
    row = next(line for line in drift.out.splitlines() if line.startswith("replica "))
    assert row.rstrip().endswith("start"), drift.out
    doc = json.loads(pgtopo("status", str(c.path), "--check", "--output", "json").out)
    assert doc["in_sync"] is False
    assert {n["name"]: n["drift"] for n in doc["nodes"]} == {"primary": [], "replica": ["start"]}
    assert pgtopo("status", str(c.path)).code == 0  # without --check, status only shows
