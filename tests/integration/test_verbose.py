"""`-v` explains a run in the log: what was observed, each decision of the plan with its reason,
every wait; with --log-format json, one JSON event per line (what a CI log keeps)."""

from __future__ import annotations

import json

from .conftest import IMAGE, PAIR, SOLO, pgtopo


def events(stderr: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def test_verbose_json_logs_observation_decisions_and_waits(make_cluster) -> None:
    c = make_cluster(IMAGE)
    c.write(SOLO)
    assert pgtopo("apply", str(c.path)).code == 0
    c.write(PAIR)
    done = pgtopo("-v", "apply", str(c.path), "--log-format", "json")
    assert done.code == 0, done
    found = events(done.err)
    observed = [e for e in found if e["event"] == "observed node"]
    assert {e["node"] for e in observed} >= {"primary"} and all("container" in e for e in observed)
    planned = [e for e in found if e["event"] == "plan"]
    assert any(e.get("node") == "replica" and e.get("action") == "create-volume" and e["reason"] for e in planned), planned
    waits = [e for e in found if e["event"] == "waiting"]
    assert any(e.get("node") == "replica" for e in waits), waits
    assert any(e["event"] == "action done" and e.get("node") == "replica" for e in found)
    quiet = pgtopo("apply", str(c.path), "--log-format", "json")
    assert quiet.code == 0 and not [e for e in events(quiet.err) if e["event"] in ("observed node", "plan")]
