"""The docs a user reads: README stays short, every relative link and anchor resolves, the safety
table names tests that exist, the topology reference covers the model, and the command table
names real options."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pgtopo import spec
from pgtopo.backup import spec as backup_spec
from pgtopo.cli import cli

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS]
MAX_README_BYTES = 10_000

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
CODE = re.compile(r"```.*?```", re.S)


def _rel(page: Path) -> str:
    return str(page.relative_to(ROOT))


def anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lowercase, punctuation dropped, spaces to dashes."""
    heads = re.findall(r"^#{1,6}\s+(.*)$", CODE.sub("", page.read_text()), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in heads}


def broken_links(page: Path) -> list[str]:
    """Relative links of `page` whose file (or heading anchor) does not exist."""
    broken = []
    for target in LINK.findall(CODE.sub("", page.read_text())):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading #{anchor} in {dest.name}")
    return broken


def test_readme_is_at_most_10_kb() -> None:
    size = len(README.read_bytes())
    assert size <= MAX_README_BYTES, f"README.md is {size} bytes; move detail into docs/"


def test_docs_exist() -> None:
    assert DOCS, "no docs/*.md"


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_relative_links_resolve(page: Path) -> None:
    assert broken_links(page) == []


def test_a_broken_link_is_caught(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    (tmp_path / "there.md").write_text("# A heading\n")
    page.write_text("[ok](there.md#a-heading) [gone](missing.md) [bad](there.md#nope) [web](https://x.org/y)\n")
    assert broken_links(page) == ["missing.md: no such file", "there.md#nope: no heading #nope in there.md"]


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_user_docs_do_not_speak_of_issues_or_the_lab_machine(page: Path) -> None:
    text = page.read_text()
    found = re.findall(r"\bissues? #?\d+|\bthis (?:\d+-core )?machine\b", text, re.I)
    assert not found, found


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_exit_codes_are_stated_only_in_their_page(page: Path) -> None:
    if page.name == "exit-codes.md":
        return
    found = re.findall(r"\bexit(?:s| code| status)? [0-9]+\b|\b(?:130|143)\b", page.read_text(), re.I)
    assert not found, f"{found}: link to docs/exit-codes.md instead"


# --- the safety table --------------------------------------------------------------------------

TEST_REF = re.compile(r"^(?:(?P<file>(?:unit|integration|chaos)/[\w/]+\.py))?(?:::(?P<name>\w+))?$")
CODE_REF = re.compile(r"^code: `(?P<file>pgtopo/\w+\.py)::(?P<name>\w+)`")


def safety_problems(table: str, root: Path) -> list[str]:
    """Each row of the safety table must name at least one test, and every test and piece of
    code it names must exist: `FILE` or `FILE::TEST` under tests/ (`::TEST` alone reuses the
    row's last file), `code: pgtopo/FILE::NAME` for where a guarantee is enforced."""
    problems = []
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| guarantee")]
    for row in rows:
        guarantee, cell = row.strip("| ").rsplit(" | ", 1)
        if (code := CODE_REF.match(cell)) is not None:
            source = root / code["file"]
            if not source.exists() or not re.search(rf"^def {code['name']}\b", source.read_text(), re.M):
                problems.append(f"{guarantee[:40]}…: no {code['file']}::{code['name']}")
            cell = cell[code.end():]
        last, tests = None, 0
        for ref in re.findall(r"`([^`]+)`", cell):
            m = TEST_REF.match(ref)
            if m is None or not (m["file"] or m["name"]):
                continue  # a command or a path, not a test
            last = m["file"] or last
            path = root / "tests" / (last or "?")
            tests += 1
            if not path.exists():
                problems.append(f"{guarantee[:40]}…: no tests/{last}")
            elif m["name"] and not re.search(rf"^def {m['name']}\b", path.read_text(), re.M):
                problems.append(f"{guarantee[:40]}…: no {m['name']} in tests/{last}")
        if tests == 0:
            problems.append(f"{guarantee[:40]}…: names no test")
    return problems


def test_every_safety_row_names_tests_that_exist() -> None:
    table = (ROOT / "docs/safety.md").read_text()
    assert table.count("\n| ") >= 25, "the safety table lost rows"
    assert safety_problems(table, ROOT) == []


def test_a_safety_row_naming_a_missing_test_is_caught() -> None:
    table = "\n".join([
        "| guarantee | checked by |",
        "|---|---|",
        "| kept | `unit/test_docs.py::test_readme_is_at_most_10_kb`, `::test_docs_exist` |",
        "| renamed test | `unit/test_docs.py::test_that_was_renamed` |",
        "| moved file | `integration/test_gone.py` |",
        "| only code | code: `pgtopo/reconcile.py::_refuse`; see `make test` |",
        "| missing code | code: `pgtopo/execute.py::_gone`; `unit/test_plan.py` |",
    ])
    assert safety_problems(table, ROOT) == [
        "renamed test…: no test_that_was_renamed in tests/unit/test_docs.py",
        "moved file…: no tests/integration/test_gone.py",
        "only code…: names no test",
        "missing code…: no pgtopo/execute.py::_gone",
    ]


# --- the topology reference and the command table ----------------------------------------------

def test_topology_reference_covers_every_key_and_refused_setting() -> None:
    text = (ROOT / "docs/topology.md").read_text()
    models = (spec.Topology, spec.Auth, spec.Node, spec.Switchover, spec.Pooler, spec.Synchronous, spec.EnvSecret,
              spec.FileSecret,
              spec.Role, spec.Database, backup_spec.Backup, backup_spec.VolumeRepository, backup_spec.PathRepository,
              backup_spec.FullRetention, backup_spec.WindowRetention, backup_spec.Bootstrap, backup_spec.Restore,
              backup_spec.RestoreSource, backup_spec.TimeTarget, backup_spec.LsnTarget, backup_spec.NameTarget,
              backup_spec.ImmediateTarget)
    keys = {field.alias or name for model in models for name, field in model.model_fields.items()}
    refused = set(spec.MANAGED_PARAMETERS) | set(spec.FORBIDDEN_PARAMETERS) | set(spec.OWNED_PARAMETERS)
    missing = sorted(k for k in keys | refused if not re.search(rf"`[{{]?{k}\b", text))
    assert missing == []


def test_readme_command_table_names_real_commands_and_options() -> None:
    rows = re.findall(r"^\| `pgtopo (\w+)([^`]*)` \|", README.read_text(), re.M)
    assert {name for name, _ in rows} == set(cli.commands)
    for name, usage in rows:
        options = {o for p in cli.commands[name].params for o in (*p.opts, *p.secondary_opts)}
        named = set(re.findall(r"--[a-z-]+", usage))
        assert named <= options, (name, named - options)
