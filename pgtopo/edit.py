"""Rewrite `primary:` in a topology file in place for `pgtopo switchover`, changing only what must
change and saying what.  Called by the CLI's `switchover` command; the file stays the truth.

ruamel's round-trip loader finds where `primary:` and the new primary's `upstream:` are written;
the edit is made on those lines of the user's text, so every other line stays byte for byte as it
was (a ruamel dump would re-space flow mappings and move comments).  The CLI loads the result
again and checks it says exactly what the old file said but for those two things.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from pgtopo.errors import SpecError

# A YAML scalar as a node name or key is written: double- or single-quoted, or plain.
_SCALAR = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\']|\'\')*\'|[^\s#,{}\[\]]+')


@dataclass(frozen=True)
class Edit:
    """The new text, the changed lines (1-based number, before, after; "" for none), and what was
    removed and why."""

    text: str
    lines: tuple[tuple[int, str, str], ...]
    notes: tuple[str, ...]


def with_primary(path: Path, text: str, node: str) -> Edit:
    """The file's text with `node` as the primary.  The new primary loses its `upstream:` (a
    primary has none), and the edit says so; every other node keeps what it says, so the old
    primary, with no upstream of its own, streams from the new one."""
    from ruamel.yaml import YAML

    doc: Any = YAML(typ="rt").load(text)
    nodes: Any = doc.get("nodes") if hasattr(doc, "get") else None
    if not hasattr(nodes, "get") or node not in nodes:
        known = ", ".join(nodes) if hasattr(nodes, "keys") else "none"
        raise SpecError([f"{path}: --to {node}: not a node of the file (nodes: {known})"])
    if "primary" not in doc:
        raise SpecError([f"{path}: no `primary:` to rewrite; add `primary: {node}` and run apply"])
    lines = text.splitlines(keepends=True)
    before = list(lines)
    line, col = doc.lc.value("primary")
    _replace_scalar(path, lines, line, col, node)
    entry, notes = nodes[node], []
    if hasattr(entry, "lc") and "upstream" in entry:
        _drop_upstream(path, lines, nodes, node)
        notes.append(f"{node}: `upstream: {entry['upstream']}` removed (a primary streams from no one); "
                     f"switching back does not put it back: add it again to make {node} a cascade")
    changed = tuple((i + 1, was.rstrip("\r\n"), now.rstrip("\r\n"))
                    for i, (was, now) in enumerate(zip(before, lines, strict=True)) if was != now)
    return Edit("".join(lines), changed, tuple(notes))


def _replace_scalar(path: Path, lines: list[str], line: int, col: int, value: str) -> None:
    token = _SCALAR.match(lines[line], col)
    if token is None:
        _by_hand(path)
    lines[line] = lines[line][:col] + value + lines[line][token.end():]


def _drop_upstream(path: Path, lines: list[str], nodes: Any, node: str) -> None:
    """Remove the `upstream:` key of `node` from its line: the whole line in a block mapping (with
    `{}` after the node's name when it was its only key), the key and its comma in a flow one."""
    entry = nodes[node]
    (kline, kcol), (vline, vcol) = entry.lc.key("upstream"), entry.lc.value("upstream")
    if kline != vline:
        _by_hand(path)
    value = _SCALAR.match(lines[vline], vcol)
    if value is None:
        _by_hand(path)
    if not entry.fa.flow_style():
        if lines[kline][:kcol].strip() or lines[kline][value.end():].split("#", 1)[0].strip():
            _by_hand(path)  # another key on the same line
        lines[kline] = ""
        if len(entry) == 1:  # `r3:` alone would be null: say it is an empty mapping
            nline = nodes.lc.key(node)[0]
            head, sep, comment = lines[nline].rstrip("\r\n").partition("#")
            lines[nline] = head.rstrip() + " {}" + (f"  {sep}{comment}" if sep else "") + "\n"
        return
    text = lines[kline]
    start, end = kcol, value.end()
    after = re.compile(r"\s*,\s*").match(text, end)
    if after:
        end = after.end()
    else:
        before = re.search(r",\s*$", text[:start])
        if before:
            start = before.start()
    lines[kline] = text[:start] + text[end:]


def _by_hand(path: Path) -> NoReturn:
    raise SpecError([f"{path}: cannot rewrite `primary:` in place; edit the file by hand and run apply"])


def describe(edit: Edit) -> list[str]:
    """The changed lines as a small diff, then the notes."""
    lines = []
    for number, was, now in edit.lines:
        if was:
            lines.append(f"  {number:>4} - {was}")
        if now:
            lines.append(f"  {number:>4} + {now}")
    return lines + [f"  note: {n}" for n in edit.notes]
