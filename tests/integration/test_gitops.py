"""The CI path: saved plans, stale-plan refusal, JSON documents valid against their schemas,
exit codes, colour rules and start-up imports, through the real CLI on a real cluster."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from referencing import Registry, Resource

from .conftest import IMAGE, PAIR, SOLO, actions, objects, pgtopo, psql

ROOT = Path(__file__).resolve().parents[2]
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def validator(name: str) -> jsonschema.Draft202012Validator:
    topo = json.loads((ROOT / "schemas/topology.schema.json").read_text())
    registry = Registry().with_resource(topo["$id"], Resource.from_contents(topo))
    return jsonschema.Draft202012Validator(json.loads((ROOT / f"schemas/{name}.schema.json").read_text()),
                                           registry=registry)


# A saved plan is known by its content, whatever its name (`saved.plan` was once read as a topology).
@pytest.mark.parametrize("name", ["plan.json", "saved.plan"])
def test_saved_plan_is_applied_exactly_then_already_applied_and_refused_when_stale(make_cluster, engine,
                                                                                  tmp_path: Path, name: str) -> None:
    c = make_cluster(IMAGE)
    c.write(SOLO)
    plan = tmp_path / name
    made = pgtopo("diff", str(c.path), "--out", str(plan))
    assert made.code == 1, made
    doc = json.loads(plan.read_text())
    validator("plan").validate(doc)
    assert objects(engine, c.name)["containers"] == []  # diff changed nothing

    applied = pgtopo("apply", str(plan))
    assert applied.code == 0 and "unknown key" not in applied.err, applied
    assert [kind for kind, _ in actions(applied.out)] == [a["kind"] for a in doc["actions"]]

    again = pgtopo("apply", str(plan))  # the cluster changed since the plan was made: by this plan
    assert again.code == 0 and "this plan was already applied" in again.out, again
    assert actions(again.out) == []

    changed = tmp_path / "changed.json"  # a plan the cluster then moves away from in another way
    c.write(SOLO + "parameters:\n  work_mem: 8MB\n")
    assert pgtopo("diff", str(c.path), "--out", str(changed)).code == 1
    psql(c.container("primary"), "ALTER SYSTEM SET maintenance_work_mem = '99MB'")
    moved = pgtopo("apply", str(changed))
    assert moved.code == 1 and "the cluster changed since the plan was made" in moved.err, moved
    assert "maintenance_work_mem" in moved.err and psql(c.container("primary"), "SHOW work_mem") == "4MB"
    assert pgtopo("apply", str(c.path)).code == 0

    fresh = tmp_path / "fresh.json"
    assert pgtopo("diff", str(c.path), "--out", str(fresh)).code == 0
    c.write(PAIR)  # the file changes after the plan was made
    stale = pgtopo("apply", str(fresh))
    assert stale.code == 1 and "changed since the plan was made" in stale.err, stale
    assert c.container("replica") not in objects(engine, c.name)["containers"]


def test_json_documents_match_their_schemas(make_cluster) -> None:
    c = make_cluster(IMAGE)
    c.write(PAIR)
    before = pgtopo("diff", str(c.path), "--output", "json")
    assert before.code == 1, before
    plan = json.loads(before.out)
    validator("plan").validate(plan)
    assert plan["in_sync"] is False and plan["summary"]["by_kind"]["clone"] == 1
    assert pgtopo("apply", str(c.path)).code == 0

    after = pgtopo("diff", str(c.path), "-o", "json")
    assert after.code == 0, after
    validator("plan").validate(json.loads(after.out))
    assert json.loads(after.out)["in_sync"] is True

    status = pgtopo("status", str(c.path), "--output", "json")
    assert status.code == 0, status
    doc = json.loads(status.out)
    validator("status").validate(doc)
    by_name = {n["name"]: n for n in doc["nodes"]}
    assert by_name["primary"]["role"] == "primary" and by_name["replica"]["role"] == "replica"
    assert by_name["replica"]["upstream"] == "primary" and by_name["replica"]["replication"] == "streaming"
    port = by_name["primary"]["host_port"]
    assert psql(c.container("primary"), "SHOW port") == "5432" and isinstance(port, int)


def test_exit_codes(make_cluster, tmp_path: Path) -> None:
    c = make_cluster(IMAGE)
    c.write("primary: solo\nnodes:\n  solo: {}\n")
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: 1\ncluster: x\n")
    unreachable = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    assert pgtopo("validate", str(c.path)).code == 0
    assert pgtopo("validate", str(broken)).code == 2
    assert pgtopo("diff", str(broken)).code == 2
    assert pgtopo("apply", str(broken)).code == 2
    assert pgtopo("diff", str(c.path)).code == 1
    no_engine = pgtopo("apply", str(c.path), env=unreachable)
    assert no_engine.code == 2 and "cannot reach the Docker engine" in no_engine.err, no_engine
    assert pgtopo("apply", str(c.path)).code == 0
    assert pgtopo("diff", str(c.path)).code == 0
    assert pgtopo("apply", str(c.path)).code == 0
    assert pgtopo("status", str(c.path)).code == 0
    assert pgtopo("destroy", str(c.path)).code == 1  # not a terminal and no --yes
    assert pgtopo("nonsense").code == 2
    for result in (no_engine, pgtopo("diff", str(broken))):
        assert "Traceback" not in result.err


def run_in_pty(args: list[str], env: dict[str, str]) -> str:
    """Run the CLI with a terminal as its stdout, as a person would see it."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "pgtopo", *args], stdout=slave, stderr=slave,
                            stdin=subprocess.DEVNULL, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=60)
    os.close(master)
    return b"".join(chunks).decode(errors="replace")


@pytest.mark.parametrize(("no_color", "coloured"), [(None, True), ("1", False)])
def test_colour_on_a_terminal_unless_no_color(make_cluster, no_color, coloured: bool) -> None:
    c = make_cluster(IMAGE)
    c.write(PAIR)
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    env["TERM"] = "xterm-256color"
    if no_color:
        env["NO_COLOR"] = no_color
    shown = run_in_pty(["diff", str(c.path)], env)
    assert "+ clone" in ANSI.sub("", shown), shown
    assert bool(ANSI.search(shown)) is coloured, shown


def test_plain_output_when_not_a_terminal(make_cluster) -> None:
    c = make_cluster(IMAGE)
    c.write(PAIR)
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    proc = subprocess.run([sys.executable, "-m", "pgtopo", "diff", str(c.path)], capture_output=True, text=True,
                          env=env)
    assert proc.returncode == 1 and "+ clone" in proc.stdout
    assert not ANSI.search(proc.stdout + proc.stderr)


@pytest.mark.parametrize("args", [["--help"], ["validate", "examples/seed.yaml"], ["schema"]])
def test_light_commands_do_not_import_docker_psycopg_or_rich(args: list[str]) -> None:
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "pgtopo", *args], capture_output=True,
                          text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    imported = {line.split("|")[-1].strip().split(".")[0] for line in proc.stderr.splitlines() if "|" in line}
    assert not imported & {"docker", "psycopg", "rich", "requests", "structlog"}, sorted(imported)


def test_json_logs_have_one_event_per_action(make_cluster) -> None:
    c = make_cluster(IMAGE)
    c.write("primary: solo\nnodes:\n  solo: {}\n")
    result = pgtopo("apply", str(c.path), "--log-format", "json")
    assert result.code == 0, result
    events = [json.loads(line) for line in result.err.splitlines() if line.startswith("{")]
    done = [e for e in events if e.get("event") == "action done"]
    assert [e["action"] for e in done] == [kind for kind, _ in actions(result.out)]
    assert all({"cluster", "node", "action", "reason", "duration"} <= set(e) for e in done)
    assert all(e["cluster"] == c.name for e in done)
