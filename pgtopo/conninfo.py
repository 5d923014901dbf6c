"""libpq keyword/value connection strings, built and read by libpq's own rules.  Pure.

Used by desired.py (primary_conninfo, the clone's and the rewind's source) and plan.py (is the
primary_conninfo a standby has the one the file asks for?).  psycopg's `make_conninfo` and
`conninfo_to_dict` do the same, but the model and the planner never import the driver (the import
contracts of pyproject.toml); tests/unit/test_conninfo.py checks these agree with psycopg's.

The rules (libpq, "Keyword/Value Connection Strings"): `key=value` pairs separated by whitespace,
spaces around `=` allowed; a value that is empty or holds whitespace, a quote or a backslash is
written in single quotes, with `\\'` and `\\\\` inside.
"""

from __future__ import annotations

import re

_PLAIN = re.compile(r"[^\s'\\]+")
_KEY = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*")


def make(**params: str | int) -> str:
    """The connection string for these keywords, in the order given."""
    return " ".join(f"{key}={_quote(str(value))}" for key, value in params.items())


def _quote(value: str) -> str:
    if _PLAIN.fullmatch(value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def parse(text: str) -> dict[str, str]:
    """The keywords and values of a connection string (the last of a repeated keyword wins, as
    in libpq).  Raises ValueError on text libpq would refuse."""
    out: dict[str, str] = {}
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        key = _KEY.match(text, pos)
        if key is None:
            raise ValueError(f"not a connection string: {text!r} (expected keyword=value at character {pos + 1})")
        pos = key.end()
        value, pos = _value(text, pos)
        out[key.group(1)] = value
    return out


def _value(text: str, pos: int) -> tuple[str, int]:
    if pos < len(text) and text[pos] == "'":
        chars, pos = [], pos + 1
        while pos < len(text) and text[pos] != "'":
            if text[pos] == "\\" and pos + 1 < len(text):
                pos += 1
            chars.append(text[pos])
            pos += 1
        if pos >= len(text):
            raise ValueError(f"not a connection string: {text!r} (unterminated quoted value)")
        return "".join(chars), pos + 1
    chars = []
    while pos < len(text) and not text[pos].isspace():
        if text[pos] == "\\":
            pos += 1
            if pos == len(text):  # a trailing backslash escapes nothing: libpq drops it
                break
        chars.append(text[pos])
        pos += 1
    return "".join(chars), pos
