"""postgresql.auto.conf as text: read the settings a stopped node will start with.  Pure.

Called by observe.py, which reads the file from a node's volume when its server does not answer,
so the planner can tell whether that node would start on the file's settings (plan.py rewrites it
offline when not).  The grammar is PostgreSQL's configuration-file syntax (guc-file.l) as far as a
postgresql.auto.conf uses it: `name = 'value'` lines (ALTER SYSTEM writes only those), comments,
and the unquoted values a hand edit may leave.
"""

from __future__ import annotations

import re

_LINE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.$-]*)\s*=?\s*(.*)$")
_UNQUOTED = re.compile(r"^([^\s#']+)\s*(#.*)?$")
_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def parse(text: str) -> dict[str, str] | None:
    """The settings of a postgresql.auto.conf (a later line wins, as in PostgreSQL); None when a
    line cannot be read (then nobody can tell what the server would start with)."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            return None
        value = _value(match.group(2))
        if value is None:
            return None
        out[match.group(1).lower()] = value
    return out


def _value(rest: str) -> str | None:
    if not rest.startswith("'"):
        match = _UNQUOTED.match(rest)
        return match.group(1) if match else None
    chars, i = [], 1
    while i < len(rest):
        c = rest[i]
        if c == "\\" and i + 1 < len(rest):
            chars.append(_ESCAPES.get(rest[i + 1], rest[i + 1]))
            i += 2
        elif c == "'" and rest[i + 1:i + 2] == "'":
            chars.append("'")
            i += 2
        elif c == "'":
            tail = rest[i + 1:].strip()
            return "".join(chars) if not tail or tail.startswith("#") else None
        else:
            chars.append(c)
            i += 1
    return None  # no closing quote
