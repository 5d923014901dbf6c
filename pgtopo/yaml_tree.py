"""Read one topology YAML document into plain, interpolated data, remembering where each key and
value is (1-based line and column), so that every later problem can point into the file.

Called by loader.py.  A cheap pass over the parser's events comes first (nesting depth, node
count, documents, duplicate keys: an alias bomb is refused before anything is built), then
ruamel's round-trip load, then the conversion to plain values with `${VAR}` interpolation in
string values.  No ruamel exception escapes: each becomes a positioned problem.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from datetime import date
from typing import Any

from ruamel.yaml import YAML, events as ev
from ruamel.yaml.comments import TaggedScalar
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.reader import ReaderError
from ruamel.yaml.scalarbool import ScalarBoolean

from pgtopo.interpolate import InterpolationError, interpolate

MAX_NODES = 10_000
MAX_DEPTH = 50
MAX_BYTES = 1 << 20

Path = tuple[str, ...]
Pos = tuple[int, int]
Problem = tuple[Pos, str]


# --- YAML: a cheap pass over the parser's events, then the round-trip load ------------------

class Abort(Exception):
    """Stop reading: nothing useful can be said about the document beyond this problem."""

    def __init__(self, pos: Pos, message: str) -> None:
        super().__init__(message)
        self.problem: Problem = (pos, message)


def _mark_pos(mark: Any) -> Pos:
    return (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)


class _EventScan:
    """Before anything is built: nesting depth, node count, documents and duplicate keys."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.documents = self.count = 0
        self.stack: list[list[Any]] = []  # open collections: [a mapping's keys or None, expecting a key]
        self.tag_mark: Any = None  # the first explicitly tagged node: where construction errors point
        self.tag = ""

    def run(self, yaml: YAML, text: str) -> None:
        for event in yaml.parse(text):
            if isinstance(event, ev.DocumentStartEvent):
                self.documents += 1
                if self.documents == 2:
                    raise Abort(_mark_pos(event.start_mark), "more than one YAML document (one topology per file)")
            elif isinstance(event, (ev.MappingEndEvent, ev.SequenceEndEvent)):
                self.stack.pop()
            elif isinstance(event, ev.NodeEvent):
                self._node(event, _mark_pos(event.start_mark))

    def _node(self, event: ev.NodeEvent, pos: Pos) -> None:
        self.count += 1
        if self.count > MAX_NODES:
            raise Abort(pos, f"too many nodes: more than {MAX_NODES}")
        tag = getattr(event, "tag", None)
        if tag and self.tag_mark is None:
            self.tag_mark, self.tag = event.start_mark, str(tag).replace("tag:yaml.org,2002:", "!!")
        if self.stack and self.stack[-1][0] is not None:
            keys, expect_key = self.stack[-1]
            if expect_key and isinstance(event, ev.ScalarEvent):
                if event.value in keys:
                    first = keys[event.value]
                    self.problems.append((pos, f"duplicate key {event.value!r} (first defined at line {first})"))
                keys.setdefault(event.value, pos[0])
            self.stack[-1][1] = not expect_key
        if isinstance(event, (ev.MappingStartEvent, ev.SequenceStartEvent)):
            self.stack.append([{} if isinstance(event, ev.MappingStartEvent) else None, True])
            if len(self.stack) > MAX_DEPTH:
                raise Abort(pos, f"nested deeper than {MAX_DEPTH} levels")


_YAML_HINTS = {
    "mapping values are not allowed": " (check the indentation of this line)",
    "found character '\\t'": " (indent with spaces, not tabs)",
}


_LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")


def _yaml_problem(exc: YAMLError, text: str) -> Problem:
    """Where and what a ruamel error is, without its multi-line rendering."""
    if isinstance(exc, ReaderError):  # no mark: count lines as ruamel's marks do
        breaks = list(_LINE_BREAK.finditer(text, 0, exc.position))
        line, col = len(breaks) + 1, exc.position - (breaks[-1].end() if breaks else 0) + 1
        char = exc.character if isinstance(exc.character, int) else ord(exc.character or "\0")
        return (line, col), f"unacceptable character #x{char:04x}: {exc.reason}"
    if not isinstance(exc, MarkedYAMLError):
        return (1, 1), " ".join(str(exc).split())
    if isinstance(exc, DuplicateKeyError):
        key = re.search(r'duplicate key "(.*?)" with value', exc.problem or "")
        return _mark_pos(exc.problem_mark), f"duplicate key {key.group(1) if key else ''!r}"
    message, mark = exc.problem or exc.context or "invalid YAML", exc.problem_mark or exc.context_mark
    message += next((hint for start, hint in _YAML_HINTS.items() if message.startswith(start)), "")
    if exc.problem and exc.context and exc.context_mark is not None and exc.context_mark is not mark:
        line, col = _mark_pos(exc.context_mark)
        message += f" ({exc.context} at line {line}, column {col})"
    return _mark_pos(mark), message


def read_yaml(text: str) -> tuple[Any, list[Problem]]:
    """The single document of `text` as ruamel's round-trip tree (None if empty), or the problems."""
    yaml = YAML(typ="rt")
    scan = _EventScan()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ruamel would print them on stderr (a reused anchor, ...)
            scan.run(yaml, text)
            if scan.problems or scan.documents == 0:
                return None, scan.problems
            return yaml.load(text), []
    except Abort as exc:
        return None, [*scan.problems, exc.problem]
    except YAMLError as exc:
        return None, [*scan.problems, _yaml_problem(exc, text)]
    except RecursionError:
        return None, [((1, 1), f"nested deeper than {MAX_DEPTH} levels")]
    except Exception as exc:  # noqa: BLE001 - ruamel fails in many ways on odd tags (`!!int abc`)
        tag = f" tagged {scan.tag}" if scan.tag else ""
        return None, [(_mark_pos(scan.tag_mark), f"cannot construct a value{tag}: {exc}")]


# --- ruamel's tree -> plain values, remembering positions ----------------------------------

def _lc(node: Any, kind: str, key: Any, default: Pos) -> Pos:
    """ruamel's position of a mapping key/value or sequence item, 1-based; `default` if unknown."""
    try:
        line, col = getattr(node.lc, kind)(key)
        return (line + 1, col + 1)
    except (AttributeError, KeyError, TypeError, ValueError, IndexError):
        return default


def own_pos(node: Any, default: Pos) -> Pos:
    lc = getattr(node, "lc", None)
    return default if lc is None or lc.line is None else (lc.line + 1, lc.col + 1)


def _plain_key(key: Any) -> str | None:
    """A mapping key as a string; None for keys that are collections."""
    key = key.value if isinstance(key, TaggedScalar) else key
    if isinstance(key, (bool, ScalarBoolean)) or key is None:
        return {None: "null", True: "true", False: "false"}[None if key is None else bool(key)]
    return str(key) if isinstance(key, (str, int, float)) else None


class Tree:
    """Plain data converted from ruamel's tree, and where each path's key and value are."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.count = 0
        self.keypos: dict[Path, Pos] = {}
        self.valpos: dict[Path, Pos] = {}
        self.failed: set[Path] = set()  # paths whose value could not be interpolated or converted
        self.problems: list[Problem] = []
        self.interpolated: dict[Path, tuple[str, str]] = {}  # (text in the file, value) where `$` was expanded

    def conceal(self, path: Path, message: str) -> str:
        """`message` without the value interpolated at `path` (it may come from a secret in the
        environment): the text in the file is shown instead, which the file's reader can see anyway."""
        raw, value = self.interpolated.get(path, ("", ""))
        if not value:
            return message
        shown_as = f"the value of {raw if len(raw) <= 40 else raw[:37] + '...'!r}"
        for form in (repr(value), repr(value[:37] + "...")):
            message = message.replace(form, shown_as)
        return message.replace(value, shown_as) if len(value) >= 4 else message

    def convert(self, node: Any, path: Path, pos: Pos, depth: int) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise Abort(pos, f"too many nodes: more than {MAX_NODES} after expanding aliases")
        self.valpos[path] = pos
        if isinstance(node, (dict, list, tuple, set)) and depth >= MAX_DEPTH:
            raise Abort(pos, f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, dict):
            return self._mapping(node, path, own_pos(node, pos), depth + 1)
        if isinstance(node, (list, tuple, set)):
            items = list(node)
            return [self.convert(v, (*path, str(i)), _lc(node, "item", i, pos), depth + 1) for i, v in enumerate(items)]
        return self._scalar(node, path, pos)

    def _mapping(self, node: dict[Any, Any], path: Path, here: Pos, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for raw_key, value in node.items():
            self.count += 1
            kpos, key = _lc(node, "key", raw_key, here), _plain_key(raw_key)
            if key is None or key in out:
                what = "keys must be strings or numbers" if key is None else f"duplicate key {key!r}"
                self.problems.append((kpos, what))
                continue
            self.keypos[(*path, key)] = kpos
            vpos = kpos if value is None else _lc(node, "value", raw_key, kpos)
            out[key] = self.convert(value, (*path, key), vpos, depth)
        return out

    def _scalar(self, node: Any, path: Path, pos: Pos) -> Any:
        node = node.value if isinstance(node, TaggedScalar) else node
        if node is None or isinstance(node, (bool, ScalarBoolean)):
            return None if node is None else bool(node)
        if isinstance(node, (int, float)):
            return int(node) if isinstance(node, int) else float(node)
        if isinstance(node, date):
            return node.isoformat()
        try:
            if not isinstance(node, str):
                raise InterpolationError(f"unsupported YAML value of type {type(node).__name__}")
            value = interpolate(str(node), self.env)
            if "$" in node:
                self.interpolated[path] = (node, value)
            return value
        except InterpolationError as exc:
            self.problems.append((pos, f"{dotted(path)}: {exc}"))
            self.failed.add(path)
            return node if isinstance(node, str) else None


def shown(key: Any) -> str:
    """A key as a message shows it: as it is when plainly printable, else quoted and escaped."""
    text = str(key)
    return text if text and text.isprintable() and text == text.strip() else repr(text)


def dotted(path: tuple[Any, ...]) -> str:
    return ".".join(shown(p) for p in path) or "(document)"
