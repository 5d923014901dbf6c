"""Saved plans: recognised by content whatever their name, read with the model, and every
damaged or foreign file ends in one message and exit 2 (never a traceback, never Docker)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pgtopo import documents, planfile
from pgtopo.errors import SpecError, StalePlan
from pgtopo.observed import Observed
from pgtopo.plan import plan

from .test_plan import T

NO_DOCKER = "unix:///nonexistent.sock"
TOPOLOGY = """\
version: 1
cluster: pg
image: pgtopo-local/postgres:17
network: pg_stream
primary: primary
nodes:
  primary: {}
  replica: {}
  replica2: {upstream: replica}
"""


@pytest.fixture
def topology(tmp_path: Path) -> Path:
    path = tmp_path / "cluster.yaml"
    path.write_text(TOPOLOGY)
    return path


def saved(topology: Path, name: str) -> Path:
    """A plan saved as `diff --out NAME` saves it (the same writer), made from `topology`."""
    observed = Observed(cluster="pg")
    doc = documents.plan_document(T, str(topology), topology.read_text(), observed, plan(T, observed))
    path = topology.parent / name
    planfile.write(path, doc)
    return path


@pytest.mark.parametrize("name", ["plan.json", "saved.plan", "plan", "cluster-plan.yaml", ".plan", "p l a n.txt"])
def test_a_saved_plan_is_recognised_and_read_whatever_its_name(topology: Path, name: str) -> None:
    path = saved(topology, name)
    assert path.read_text().startswith('{\n  "format": 1,')  # indented, as pgtopo writes it
    assert planfile.is_plan_file(path)
    read = planfile.read(path)
    assert read.topology == T and read.base_dir == topology.parent
    assert read.plan == plan(T, Observed(cluster="pg"))
    assert read.fingerprint == documents.fingerprint(Observed(cluster="pg"))


@pytest.mark.parametrize("indent", [None, 0, 4, "\t"], ids=["compact", "zero", "four", "tab"])
def test_a_saved_plan_is_recognised_whatever_its_layout(topology: Path, indent: int | str | None) -> None:
    path = saved(topology, "saved.plan")
    doc = json.loads(path.read_text())
    doc = {"cluster": doc.pop("cluster"), **doc}  # `format` no longer comes first
    path.write_text("\n\n  " + json.dumps(doc, indent=indent) + "\n\n")
    assert planfile.is_plan_file(path)
    assert planfile.read(path).topology == T


@pytest.mark.parametrize(("name", "text"), [
    ("cluster.yaml", TOPOLOGY),
    ("cluster.plan", TOPOLOGY),
    ("cluster.yml", '# "kind": "not a plan"\n' + TOPOLOGY),
    ("flow.yaml", "{version: 1, cluster: pg, primary: p, nodes: {p: {}}}\n"),
    ("as-json.yaml", json.dumps({"version": 1, "cluster": "pg", "primary": "p", "nodes": {"p": {}}})),
    ("broken.yaml", "version: 1\ncluster: [\n"),
    ("empty.yaml", ""),
    ("list.json", "[1, 2, 3]"),
    ("garbage.json", "this is not json"),
], ids=["yaml", "yaml-named-plan", "comment", "flow-style", "json-topology", "broken-yaml", "empty", "json-list",
        "not-json-named-json"])
def test_a_topology_file_is_still_a_topology(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    assert not planfile.is_plan_file(path)


def test_a_missing_file_is_left_to_the_topology_loader(tmp_path: Path) -> None:
    assert not planfile.is_plan_file(tmp_path / "nowhere.plan")


@pytest.mark.parametrize(("name", "text"), [
    ("truncated.plan", '{\n  "format": 1,\n  "kind": "pgtopo-plan",\n  "pgtopo_version": "0'),
    ("status.plan", json.dumps({"format": 1, "kind": "pgtopo-status", "nodes": []})),
    ("other.json", json.dumps({"kind": "Deployment"})),
])
def test_damaged_or_foreign_documents_are_taken_for_plans_so_the_error_says_so(tmp_path: Path, name: str,
                                                                                 text: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    assert planfile.is_plan_file(path)


def valid(topology: Path) -> dict:
    return json.loads(saved(topology, "plan.json").read_text())


# (what is written, the message's start after "PATH", what the message must also contain)
BAD = {
    "truncated": (lambda d: json.dumps(d, indent=2)[:300], ":", "not a saved plan"),
    "not-utf8": (lambda d: json.dumps(d).encode().replace(b'"primary"', b'"pr\xfamary"', 1),
                 ": not a saved plan", "not JSON text"),
    "deeply-nested": (lambda d: '{"kind": "pgtopo-plan", "x": ' + "[" * 100000 + "]" * 100000 + "}",
                      ": not a saved plan", "not JSON text"),
    "status": (lambda d: json.dumps({"format": 1, "kind": "pgtopo-status"}), ": not a saved plan",
               'a "pgtopo-status" document'),
    "no-kind": (lambda d: json.dumps({"format": 1}), ": not a saved plan", "without a pgtopo kind"),
    "future-format": (lambda d: json.dumps({**d, "format": 2}), ": a saved plan of format 2", "reads format 1"),
    "no-actions": (lambda d: json.dumps({k: v for k, v in d.items() if k != "actions"}),
                   ": the saved plan is damaged: actions:", "Field required"),
    "bad-kind": (lambda d: json.dumps({**d, "actions": [{**d["actions"][0], "kind": "explode"}]}),
                 ": the saved plan is damaged: actions.0.kind:", "create-network"),
    "wave-text": (lambda d: json.dumps({**d, "actions": [{**d["actions"][0], "wave": "soon"}]}),
                  ": the saved plan is damaged: actions.0.wave:", "integer"),
    "actions-object": (lambda d: json.dumps({**d, "actions": {"a": 1}}),
                       ": the saved plan is damaged: actions:", "valid array"),
    "file-null": (lambda d: json.dumps({**d, "file": None}), ": the saved plan is damaged: file:", ""),
    "bad-topology": (lambda d: json.dumps({**d, "topology": {**d["topology"], "primary": "nobody"}}),
                     ": the saved plan is damaged: topology", "nobody"),
    "fingerprint-state-list": (lambda d: json.dumps({**d, "fingerprint": {**d["fingerprint"], "state": []}}),
                               ": the saved plan is damaged: fingerprint.state:", "an object"),
}


@pytest.mark.parametrize("case", BAD)
def test_a_damaged_or_foreign_plan_is_one_clear_error(topology: Path, case: str) -> None:
    make, start, contains = BAD[case]
    content = make(valid(topology))
    path = topology.parent / "saved.plan"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    assert planfile.is_plan_file(path)
    with pytest.raises(SpecError) as caught:
        planfile.read(path)
    message = str(caught.value)
    assert message.startswith(f"{path}{start}"), message
    assert contains in message
    assert caught.value.exit_code == 2 and caught.value.hint


def test_many_problems_are_listed_up_to_a_limit(topology: Path) -> None:
    doc = valid(topology)
    doc["actions"] = [{**a, "wave": "soon", "reason": ""} for a in doc["actions"]]
    path = topology.parent / "saved.plan"
    path.write_text(json.dumps(doc))
    with pytest.raises(SpecError) as caught:
        planfile.read(path)
    assert len(caught.value.problems) == planfile.MAX_PROBLEMS + 1
    assert caught.value.problems[-1].endswith("more")


def test_a_plan_whose_file_changed_is_stale(topology: Path) -> None:
    path = saved(topology, "saved.plan")
    topology.write_text(TOPOLOGY + "# edited\n")
    with pytest.raises(StalePlan, match="changed since the plan was made"):
        planfile.read(path)


def test_a_plan_whose_file_is_gone_is_stale(topology: Path) -> None:
    path = saved(topology, "saved.plan")
    topology.unlink()
    with pytest.raises(StalePlan, match="is not there"):
        planfile.read(path)


# --- through the real CLI: no Docker is reached (every case fails before connecting) -------------


def cli(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOCKER_HOST": NO_DOCKER, "PYTHONIOENCODING": "utf-8"}
    done = subprocess.run([sys.executable, "-m", "pgtopo", *map(str, args)], check=False, cwd=cwd, env=env,
                          capture_output=True, text=True, encoding="utf-8", errors="replace", timeout=60)
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr, done.stderr
    return done


def test_apply_of_a_stale_saved_plan_named_saved_plan_reads_it_as_a_plan(topology: Path) -> None:
    """The reported bug: `apply saved.plan` read the plan as a topology ("unknown key 'topology'")."""
    path = saved(topology, "saved.plan")
    topology.write_text(TOPOLOGY + "# edited\n")  # stale: apply stops before reaching for Docker
    done = cli("apply", path.name, cwd=topology.parent)
    assert done.returncode == 1, done.stderr
    assert "changed since the plan was made" in done.stderr and "unknown key" not in done.stderr


@pytest.mark.parametrize("case", ["truncated", "status", "future-format", "bad-kind", "not-utf8"])
def test_apply_of_a_damaged_plan_exits_2_with_one_message_and_a_hint(topology: Path, case: str) -> None:
    make, start, contains = BAD[case]
    content = make(valid(topology))
    path = topology.parent / "saved.plan"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    done = cli("apply", path.name, "--yes", cwd=topology.parent)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert lines[0].startswith(f"saved.plan{start}") and contains in done.stderr, done.stderr
    assert lines[-1].startswith("hint: ") and len(lines) == 2, done.stderr


def test_apply_of_json_that_is_neither_plan_nor_topology_is_a_topology_error(tmp_path: Path) -> None:
    (tmp_path / "list.json").write_text("[1, 2, 3]\n")
    done = cli("apply", "list.json", cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.startswith("list.json:"), done.stderr
