"""`pgtopo history` on a real cluster: an apply that changed something is recorded (who, what,
how it ended), a no-op apply and an already applied saved plan are not, the table and the JSON
document say the same, no secret reaches the history, and it reads with no node running."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import jsonschema

from .conftest import IMAGE, SOLO, pgtopo

ROOT = Path(__file__).resolve().parents[2]
WORK_MEM = "12345kB"  # interpolated from the environment: its value must not be kept
CI = {"GITHUB_RUN_ID": "987654321", "GITHUB_TOKEN": "ghs_not-to-be-kept", "HIST_WORK_MEM": WORK_MEM}


def entries(path: Path) -> list[dict]:
    shown = pgtopo("history", str(path), "--output", "json", env=CI)
    assert shown.code == 0, shown
    doc = json.loads(shown.out)
    schema = json.loads((ROOT / "schemas/history.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(doc)
    return doc["entries"]


def test_history_keeps_the_applies_that_changed_something(make_cluster, tmp_path: Path) -> None:
    c = make_cluster(IMAGE)
    c.write(SOLO)
    empty = pgtopo("history", str(c.path))
    assert empty.code == 0 and "no apply recorded yet" in empty.out, empty
    assert pgtopo("apply", str(c.path)).code == 0
    assert pgtopo("apply", str(c.path)).code == 0  # nothing to do: not recorded
    first, = entries(c.path)
    assert (first["number"], first["command"], first["result"]) == (1, "apply", {"exit_code": 0, "error": None})
    assert ("init", "primary") in [(a["kind"], a["node"]) for a in first["actions"]]

    c.write(SOLO + "parameters:\n  work_mem: ${HIST_WORK_MEM}\n")
    changed = pgtopo("apply", str(c.path), env=CI)
    assert changed.code == 0, changed
    one, two = entries(c.path)
    assert one == first
    assert two["number"] == 2 and two["command"] == "apply" and two["file"] == str(c.path)
    assert [(a["kind"], a["node"], a["reason"]) for a in two["actions"]] == [
        ("configure", "primary", "ALTER SYSTEM set work_mem")]
    assert two["actions"][0]["seconds"] >= 0 and two["seconds"] >= two["actions"][0]["seconds"]
    assert two["result"] == {"exit_code": 0, "error": None}
    assert two["started_at"].endswith("Z") and two["origin"]["ci"] == {"GITHUB_RUN_ID": "987654321"}
    assert two["origin"]["user"] and two["origin"]["host"] and two["origin"]["pgtopo_version"]

    table = pgtopo("history", str(c.path), env=CI)
    assert table.code == 0, table
    row = next(line for line in table.out.splitlines() if line.startswith("2 "))
    for cell in (two["started_at"][:10], "apply", "ok", "configure primary", "GITHUB_RUN_ID=987654321"):
        assert cell in row, (cell, table.out)

    stored = read(c.container("primary"), "history.json")
    assert json.loads(stored)["entries"] == [one, two]
    secrets = (WORK_MEM, "ghs_not-to-be-kept", read(c.container("primary"), "superuser_password"),
               read(c.container("primary"), "replication_password"))
    for secret in secrets:
        assert secret and secret not in stored and secret not in table.out, secret


def read(container: str, name: str) -> str:
    """A file of the state volume, read in a node container (history.json is root's)."""
    done = subprocess.run(["docker", "exec", "-u", "root", container, "cat", f"/run/pgtopo/{name}"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout

def test_a_saved_plan_is_recorded_once_and_then_is_already_applied(make_cluster, tmp_path: Path) -> None:
    c = make_cluster(IMAGE)
    c.write(SOLO)
    plan = tmp_path / "plan.json"
    assert pgtopo("diff", str(c.path), "--out", str(plan)).code == 1
    assert pgtopo("apply", str(plan)).code == 0
    again = pgtopo("apply", str(plan))
    assert again.code == 0 and "this plan was already applied" in again.out, again
    recorded, = entries(c.path)
    assert recorded["command"] == "apply-plan" and recorded["file"] == str(plan)
    subprocess.run(["docker", "stop", c.container("primary")], check=True, capture_output=True, timeout=120)
    assert entries(c.path) == [recorded]  # no node runs: read through a helper
