"""`${VAR}` interpolation in topology values, following docker compose's rules.

Called by yaml_tree.py, as loader.py reads a file, for every string value (never keys).  Pure: the
environment is passed in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

MAX_INTERPOLATION_NESTING = 10


class InterpolationError(ValueError):
    """A `${...}` that cannot be expanded: an unset variable, or malformed syntax."""


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATORS = (":-", ":?", ":+", "-", "?", "+")
_MALFORMED = "invalid interpolation: "


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Expand `$$`, `$VAR`, `${VAR}`, `${VAR:-d}`, `${VAR-d}`, `${VAR:?e}`, `${VAR:+r}` and friends."""
    return _expand(text, 0, env, True, 0)[0]


def _expand(text: str, i: int, env: Mapping[str, str], evaluate: bool, nesting: int) -> tuple[str, int]:
    """Expand from `i`; when nested, stop at the `}` closing the enclosing `${` and return its index."""
    stop = re.compile(r"[$}]" if nesting else r"\$")
    parts: list[str] = []
    while (m := stop.search(text, i)) is not None:
        parts.append(text[i : m.start()])
        if m.group() == "}":
            return "".join(parts), m.start()
        value, i = _dollar(text, m.start(), env, evaluate, nesting)
        parts.append(value)
    if nesting:
        raise InterpolationError(_MALFORMED + "unterminated '${' (missing '}')")
    return "".join(parts) + text[i:], len(text)


def _dollar(text: str, i: int, env: Mapping[str, str], evaluate: bool, nesting: int) -> tuple[str, int]:
    """Expand the `$...` starting at `i`; return its value and the index after it."""
    following = text[i + 1 : i + 2]
    if following == "$":
        return "$", i + 2
    if following == "{":
        return _braced(text, i + 2, env, evaluate, nesting + 1)
    if (m := _NAME.match(text, i + 1)) is not None:
        return _lookup(m.group(), env, evaluate), m.end()
    return "$", i + 1  # a lone '$' is literal, as in compose


def _lookup(name: str, env: Mapping[str, str], evaluate: bool) -> str:
    if evaluate and name not in env:
        raise InterpolationError(f"variable {name} is not set and has no default")
    return env.get(name, "")


def _braced(text: str, i: int, env: Mapping[str, str], evaluate: bool, nesting: int) -> tuple[str, int]:
    """Expand `${NAME...}` whose name starts at `i`; return its value and the index after `}`."""
    if nesting > MAX_INTERPOLATION_NESTING:
        raise InterpolationError(_MALFORMED + f"nested deeper than {MAX_INTERPOLATION_NESTING} levels")
    if (m := _NAME.match(text, i)) is None:
        raise InterpolationError(_MALFORMED + "'${' must be followed by a variable name (write '$$' for a literal '$')")
    name, j = m.group(), m.end()
    if text[j : j + 1] == "}":
        return _lookup(name, env, evaluate), j + 1
    if j >= len(text):
        raise InterpolationError(_MALFORMED + f"unterminated '${{{name}' (missing '}}')")
    if (op := next((o for o in _OPERATORS if text.startswith(o, j)), None)) is None:
        raise InterpolationError(_MALFORMED + f"unexpected {text[j]!r} after '${{{name}'")
    value = env.get(name)
    present = value is not None and (value != "" or ":" not in op)
    word, end = _expand(text, j + len(op), env, evaluate and (present == op.endswith("+")), nesting)
    if evaluate and op.endswith("?") and not present:
        unset = f"variable {name} is not set" + (" or empty" if op == ":?" else "")
        raise InterpolationError(unset + (f": {word}" if word else ""))
    if op.endswith("+"):
        return (word if present else ""), end + 1
    return (value if present and value is not None else word), end + 1
