"""`pgtopo switchover` edits the file in place: only `primary:` and the new primary's `upstream:`
change, every other line stays as the user wrote it, and what was removed is said aloud."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgtopo import edit
from pgtopo.errors import SpecError
from pgtopo.loader import parse_topology

FILE = """\
# our cluster
version: 1
cluster: shop   # prod
image: postgres:17
parameters: {work_mem: 8MB,   max_connections: 120}
primary: main        # the writer
nodes:
  main: {port: 15432}
  r1:   {port: 15433}
  r3:
    upstream: r1     # a cascade
    parameters:
      work_mem: "16MB"
  r4: {upstream: r1, port: 15435}
"""


def lines_changed(before: str, after: str) -> list[tuple[str, str]]:
    return [(a, b) for a, b in zip(before.splitlines(), after.splitlines(), strict=False) if a != b]


def test_only_the_primary_line_changes_when_the_new_primary_has_no_upstream() -> None:
    change = edit.with_primary(Path("t.yaml"), FILE, "r1")
    assert change.text == FILE.replace("primary: main        # the writer", "primary: r1        # the writer")
    assert change.lines == ((6, "primary: main        # the writer", "primary: r1        # the writer"),)
    assert change.notes == ()


def test_a_block_upstream_is_removed_and_said_aloud() -> None:
    change = edit.with_primary(Path("t.yaml"), FILE, "r3")
    assert change.text == FILE.replace("primary: main  ", "primary: r3  ").replace(
        "    upstream: r1     # a cascade\n", "")
    assert [n for n, _, _ in change.lines] == [6, 11]
    assert change.notes == ("r3: `upstream: r1` removed (a primary streams from no one); switching back does not "
                            "put it back: add it again to make r3 a cascade",)
    described = edit.describe(change)
    assert "     6 - primary: main        # the writer" in described
    assert "    11 -     upstream: r1     # a cascade" in described
    topo = parse_topology(change.text, "t.yaml", {})
    assert topo.primary == "r3" and topo.nodes["r3"].upstream is None and topo.nodes["r4"].upstream == "r1"
    assert topo.parameters_of("r3")["work_mem"] == "16MB"


def test_a_flow_upstream_is_removed_on_its_line_only() -> None:
    change = edit.with_primary(Path("t.yaml"), FILE, "r4")
    after = lines_changed(FILE, change.text)
    assert after == [("primary: main        # the writer", "primary: r4        # the writer"),
                     ("  r4: {upstream: r1, port: 15435}", "  r4: {port: 15435}")]
    assert "r4: `upstream: r1` removed" in change.notes[0]


def test_the_other_lines_stay_byte_for_byte() -> None:
    """A plain ruamel dump re-spaces the flow mapping of `parameters:`; the edit leaves it alone."""
    change = edit.with_primary(Path("t.yaml"), FILE, "r3")
    assert "parameters: {work_mem: 8MB,   max_connections: 120}\n" in change.text
    assert "  r1:   {port: 15433}\n" in change.text
    assert change.text.startswith("# our cluster\n")


def test_an_unknown_node_is_refused() -> None:
    with pytest.raises(SpecError, match="--to nope: not a node of the file"):
        edit.with_primary(Path("t.yaml"), FILE, "nope")
