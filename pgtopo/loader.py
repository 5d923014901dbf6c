"""Turn a topology YAML file into a `Topology`; called by the CLI before anything touches Docker.

Every problem becomes one `FILE:LINE:COL: message` line (1-based) and all of them are raised
together as one `SpecError`: YAML syntax, duplicate keys, alias bombs, `${VAR}` interpolation
(as docker compose does it, in string values only), pydantic's field errors and the model's
cross-field problems.  No ruamel or pydantic exception escapes.
"""

from __future__ import annotations

import difflib
import os
import re
import types
import warnings
from collections import defaultdict
from collections.abc import Mapping
from datetime import date
from typing import Annotated, Any, NoReturn, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml import events as ev
from ruamel.yaml.comments import TaggedScalar
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.reader import ReaderError
from ruamel.yaml.scalarbool import ScalarBoolean

from pgtopo import spec
from pgtopo.interpolate import InterpolationError, interpolate
from pgtopo.errors import SpecError
from pgtopo.spec import Topology, TopologyProblems

MAX_NODES = 10_000
MAX_DEPTH = 50
MAX_BYTES = 1 << 20

Path = tuple[str, ...]
Pos = tuple[int, int]
Problem = tuple[Pos, str]
_Err = tuple[dict[str, Any], Path, str, bool]  # a pydantic error, its data path, union member, is_key


# --- YAML: a cheap pass over the parser's events, then the round-trip load ------------------

class _Abort(Exception):
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
                    raise _Abort(_mark_pos(event.start_mark), "more than one YAML document (one topology per file)")
            elif isinstance(event, (ev.MappingEndEvent, ev.SequenceEndEvent)):
                self.stack.pop()
            elif isinstance(event, ev.NodeEvent):
                self._node(event, _mark_pos(event.start_mark))

    def _node(self, event: ev.NodeEvent, pos: Pos) -> None:
        self.count += 1
        if self.count > MAX_NODES:
            raise _Abort(pos, f"too many nodes: more than {MAX_NODES}")
        if getattr(event, "tag", None) and self.tag_mark is None:
            self.tag_mark, self.tag = event.start_mark, str(event.tag).replace("tag:yaml.org,2002:", "!!")
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
                raise _Abort(pos, f"nested deeper than {MAX_DEPTH} levels")


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


def _read_yaml(text: str) -> tuple[Any, list[Problem]]:
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
    except _Abort as exc:
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


def _own_pos(node: Any, default: Pos) -> Pos:
    lc = getattr(node, "lc", None)
    return default if lc is None or lc.line is None else (lc.line + 1, lc.col + 1)


def _plain_key(key: Any) -> str | None:
    """A mapping key as a string; None for keys that are collections."""
    key = key.value if isinstance(key, TaggedScalar) else key
    if isinstance(key, (bool, ScalarBoolean)) or key is None:
        return {None: "null", True: "true", False: "false"}[None if key is None else bool(key)]
    return str(key) if isinstance(key, (str, int, float)) else None


class _Tree:
    """Plain data converted from ruamel's tree, and where each path's key and value are."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.count = 0
        self.keypos: dict[Path, Pos] = {}
        self.valpos: dict[Path, Pos] = {}
        self.failed: set[Path] = set()  # paths whose value could not be interpolated or converted
        self.problems: list[Problem] = []

    def convert(self, node: Any, path: Path, pos: Pos, depth: int) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise _Abort(pos, f"too many nodes: more than {MAX_NODES} after expanding aliases")
        self.valpos[path] = pos
        if isinstance(node, (dict, list, tuple, set)) and depth >= MAX_DEPTH:
            raise _Abort(pos, f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, dict):
            return self._mapping(node, path, _own_pos(node, pos), depth + 1)
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
            return interpolate(str(node), self.env)
        except InterpolationError as exc:
            self.problems.append((pos, f"{_dotted(path)}: {exc}"))
            self.failed.add(path)
            return node if isinstance(node, str) else None


# --- pydantic's errors -> readable problems -------------------------------------------------

_PATTERN_TEXT = {spec.ParamText.__metadata__[0].pattern: "must not contain control characters"}
_NO_GOT = {"string_too_long", "too_short", "too_long", "value_error"}


def _shown(key: Any) -> str:
    """A key as a message shows it: as it is when plainly printable, else quoted and escaped."""
    text = str(key)
    return text if text and text.isprintable() and text == text.strip() else repr(text)


def _dotted(path: tuple[Any, ...]) -> str:
    return ".".join(_shown(p) for p in path) or "(document)"


def _got(value: Any) -> str:
    """A short description of an input value, for `(got ...)`."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:37] + "...")
    if isinstance(value, dict):
        keys = ", ".join(map(_shown, value))
        return "a mapping with keys " + keys if 0 < len(value) <= 5 else "a mapping" if value else "an empty mapping"
    if isinstance(value, int) and value.bit_length() > 128:
        return f"an integer of {value.bit_length()} bits"  # str() refuses more than 4300 digits
    return "a list" if isinstance(value, list) else str(value)


def _reason(err: Mapping[str, Any]) -> str:
    """What pydantic's error demands, phrased for people (without the input)."""
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind == "string_pattern_mismatch":
        return _PATTERN_TEXT.get(ctx["pattern"], f"must match {ctx['pattern']}")
    if kind in ("too_short", "string_too_short") and ctx.get("min_length") == 1:
        return "must not be empty"
    if kind.startswith(("int_", "float_", "bool_")):
        scalar = kind.split("_")[0]
        return {"int": "must be an integer", "float": "must be a number", "bool": "must be true or false"}[scalar]
    table = {
        "literal_error": "must be {expected}",
        "string_too_long": "must be at most {max_length} characters",
        "string_too_short": "must be at least {min_length} characters",
        "too_short": "must have at least {min_length} entries",
        "too_long": "must have at most {max_length} entries",
        "greater_than_equal": "must be >= {ge}",
        "greater_than": "must be > {gt}",
        "less_than_equal": "must be <= {le}",
        "less_than": "must be < {lt}",
    }
    if kind in table:
        return table[kind].format_map(defaultdict(str, ctx))
    if kind in ("dict_type", "model_type", "model_attributes_type", "string_type"):
        return "must be a string" if kind == "string_type" else "must be a mapping"
    return str(err["msg"]).removeprefix("Value error, ")


def _message(err: Mapping[str, Any], path: Path, is_key: bool) -> str:
    """`path: what is wrong (got ...)` for one pydantic error."""
    kind = err["type"]
    if kind == "missing":
        return f"{_dotted(path)}: missing required key"
    if kind == "extra_forbidden":
        return f"{_dotted(path)}: {_unknown_key(path)}"
    if is_key:
        return f"{_dotted(path[:-1])}: key {path[-1]!r} {_reason(err)}"
    text = f"{_dotted(path)}: {_reason(err)}"
    if kind not in _NO_GOT:
        text += f" (got {_got(err['input'])})"
    if err["input"] is None and kind in ("model_type", "dict_type"):
        text += "; write {} for an empty mapping"
    return text


def _unknown_key(path: Path) -> str:
    valid = _fields_at(path[:-1])
    if close := difflib.get_close_matches(path[-1], valid, n=1):
        return f"unknown key {path[-1]!r} (did you mean {close[0]!r}?)"
    return f"unknown key {path[-1]!r}" + (f" (expected one of: {', '.join(valid)})" if valid else "")


def _unwrap(tp: Any) -> Any:
    """Strip Annotated[...] and Optional[...] from a type."""
    while get_origin(tp) in (Annotated, Union, types.UnionType):
        members = [a for a in get_args(tp) if a is not type(None)]
        if get_origin(tp) is not Annotated and len(members) != 1:
            return tp
        tp = members[0]
    return tp


def _fields_at(path: Path) -> list[str]:
    """The keys the model allows in the mapping at `path` (none if it is not a model)."""
    tp: Any = Topology
    for step in path:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel) and step in tp.model_fields:
            tp = tp.model_fields[step].annotation
        elif get_origin(tp) is dict:
            tp = get_args(tp)[1]
        else:
            return []
    tp = _unwrap(tp)
    return list(tp.model_fields) if isinstance(tp, type) and issubclass(tp, BaseModel) else []


def _split_loc(loc: tuple[Any, ...], data: Any, kind: str) -> tuple[Path, Path | None, str, bool]:
    """A pydantic loc as (data path, path of the union it went through, union member, is_key)."""
    path: list[str] = []
    union_at: Path | None = None
    member, is_key = "", False
    for i, step in enumerate(loc):
        if step == "[key]" and i == len(loc) - 1 and kind != "extra_forbidden":  # not a key named "[key]"
            is_key = True
        elif isinstance(data, dict) and step in data:
            data = data[step]
            path.append(str(step))
        elif kind == "missing" and i == len(loc) - 1:
            path.append(str(step))
        elif union_at is None:  # a step that is not in the data: the union member pydantic tried
            union_at, member = tuple(path), str(step)
    return tuple(path), union_at, member, is_key


def _member_text(member: str) -> str:
    """How a union member reads in `must be X or Y`."""
    model = getattr(spec, member, None)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return "{" + ", ".join(f"{n}: ..." for n, f in model.model_fields.items() if f.is_required()) + "}"
    if member == "bool":
        return "true or false"
    if member in ("int", "float", "constrained-int", "constrained-float"):
        return "a number"
    return "a string"


def _union_problems(path: Path, errs: list[_Err], tree: _Tree, data: Any) -> list[Problem]:
    """One failed union: the errors of the member that nearly fits, else one summary."""
    members: dict[str, list[_Err]] = {}
    for item in errs:
        members.setdefault(item[2], []).append(item)
    for items in members.values():
        kinds = [e["type"] for e, *_ in items]
        if not any(k in ("missing", "extra_forbidden") or k.endswith(("_type", "_parsing")) for k in kinds):
            return [(_position(tree, p, "key" if k else e["type"]), _message(e, p, k)) for e, p, _, k in items]
    wanted = list(dict.fromkeys(_member_text(m) for m in members))
    expected = " or ".join([", ".join(wanted[:-1]), wanted[-1]] if len(wanted) > 1 else wanted)
    for step in path:
        data = data[step]
    return [(_position(tree, path, "union"), f"{_dotted(path)}: must be {expected} (got {_got(data)})")]


def _position(tree: _Tree, path: Path, kind: str) -> Pos:
    """Where an error at `path` points: its value, its key, or the nearest ancestor's key."""
    if kind in ("key", "cross", "extra_forbidden") and path in tree.keypos:
        return tree.keypos[path]
    if kind not in ("missing", "key", "cross", "extra_forbidden") and path in tree.valpos:
        return tree.valpos[path]
    path = path[:-1] if kind == "missing" else path
    while path and path not in tree.keypos:
        path = path[:-1]
    return tree.keypos[path] if path else tree.valpos.get((), (1, 1))


def _validation_problems(exc: ValidationError, data: Any, tree: _Tree) -> list[Problem]:
    """Every pydantic error, and every cross-field problem, as a positioned message."""
    problems: list[Problem] = []
    unions: dict[Path, list[_Err]] = {}
    for err in exc.errors():
        if isinstance(error := (err.get("ctx") or {}).get("error"), TopologyProblems):
            for loc, msg in error.problems:
                path = tuple(str(p) for p in loc)
                problems.append((_position(tree, path, "cross"), f"{_dotted(path)}: {msg}"))
            continue
        path, union_at, member, is_key = _split_loc(err["loc"], data, err["type"])
        if any(path[: len(f)] == f for f in tree.failed):
            continue  # its interpolation failed, which is already reported
        if union_at is not None:
            unions.setdefault(union_at, []).append((dict(err), path, member, is_key))
        else:
            problems.append((_position(tree, path, "key" if is_key else err["type"]), _message(err, path, is_key)))
    for path, errs in unions.items():
        problems.extend(_union_problems(path, errs, tree, data))
    return problems


# --- public API -----------------------------------------------------------------------------

_REQUIRED = "version, cluster, image, primary and nodes"


def _raise(filename: str, problems: list[Problem]) -> NoReturn:
    ordered = sorted(dict.fromkeys(problems), key=lambda p: p[0])
    raise SpecError([f"{filename}:{line}:{col}: {msg}" for (line, col), msg in ordered])


def _to_data(text: str, filename: str, env: Mapping[str, str]) -> tuple[dict[str, Any], _Tree]:
    """The document as plain, interpolated data; raises SpecError for YAML-level problems."""
    root, problems = _read_yaml(text)
    if problems:
        _raise(filename, problems)
    if root is None:
        _raise(filename, [((1, 1), f"empty document: expected a mapping with {_REQUIRED}")])
    tree = _Tree(env)
    start = _own_pos(root, (1, 1))
    try:
        data = tree.convert(root, (), start, 0)
    except _Abort as exc:
        _raise(filename, [*tree.problems, exc.problem])
    if not isinstance(data, dict):
        _raise(filename, [(start, f"the document must be a mapping (got {_got(data)})")])
    return data, tree


def parse_topology(text: str, filename: str, env: Mapping[str, str]) -> Topology:
    """Parse, interpolate and validate one topology document; raises SpecError with every problem."""
    data, tree = _to_data(text, filename, env)
    try:
        topology = Topology.model_validate(data)
    except ValidationError as exc:
        _raise(filename, [*tree.problems, *_validation_problems(exc, data, tree)])
    if tree.problems:
        _raise(filename, tree.problems)
    return topology


def load_topology(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> Topology:
    """Read the file at `path` and return its Topology; `env` (default os.environ) feeds `${VAR}`."""
    filename = os.fspath(path)
    try:
        with open(filename, "rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise SpecError([f"{filename}: cannot read: {exc.strerror or exc}"]) from None
    if len(raw) > MAX_BYTES:
        raise SpecError([f"{filename}: cannot read: larger than {MAX_BYTES} bytes"])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        reason = f"not UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})"
        raise SpecError([f"{filename}: cannot read: {reason}"]) from None
    return parse_topology(text, filename, os.environ if env is None else env)
