"""Turn a topology YAML file into a `Topology`; called by the CLI before anything else touches Docker.

Every problem becomes one `FILE:LINE:COL: message` line (1-based) and all of them are raised
together as one `SpecError`: YAML syntax, duplicate keys, alias bombs, `${VAR}` interpolation
(as docker compose does it, in string values only), pydantic's field errors and the model's
cross-field problems.  No ruamel or pydantic exception escapes.

Parameters of a major pgtopo ships no settings catalog for are checked only when the caller
passes a `CatalogLookup` (diff and apply do: image_catalog.py asks the image's own server); the
loader itself does no I/O.
"""

from __future__ import annotations

import difflib
import os
import re
import types
from collections import defaultdict
from collections.abc import Mapping
from typing import Annotated, Any, NoReturn, Protocol, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from pgtopo import pg_settings, spec
from pgtopo.backup import spec as backup_spec
from pgtopo.errors import SpecError
from pgtopo.interpolate import InterpolationError, interpolate  # noqa: F401  (re-exported for callers)
from pgtopo.spec import Topology, TopologyProblems
from pgtopo.yaml_tree import (  # noqa: F401  (MAX_* re-exported for callers)
    MAX_BYTES,
    MAX_DEPTH,
    MAX_NODES,
    Abort,
    Path,
    Pos,
    Problem,
    Tree,
    dotted,
    own_pos,
    read_yaml,
    shown,
)

_Err = tuple[dict[str, Any], Path, str, bool]  # a pydantic error, its data path, union member, is_key


# --- pydantic's errors -> readable problems -------------------------------------------------

_PATTERN_TEXT = {
    spec.PARAM_TEXT_PATTERN: "must not contain control characters",
    backup_spec.PATH_PATTERN: "must be an absolute path (starting with /) without control characters",
    backup_spec.LSN_PATTERN: "must be an LSN as PostgreSQL writes it, e.g. 0/3000028",
}
_NO_GOT = {"string_too_long", "too_short", "too_long", "value_error"}


def _got(value: Any) -> str:
    """A short description of an input value, for `(got ...)`."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:37] + "...")
    if isinstance(value, dict):
        keys = ", ".join(map(shown, value))
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
    if kind == "timezone_aware":
        return "must name its time zone, e.g. 2026-11-26T10:00:00Z or 2026-11-26T12:00:00+02:00"
    if kind.startswith(("datetime_", "date_")):
        return "must be a date and time, e.g. 2026-11-26T10:00:00Z"
    if kind == "literal_error":  # Literal[True] reads as YAML writes it
        return "must be " + re.sub(r"(?<!')\b(True|False)\b(?!')", lambda m: m[1].lower(), str(ctx["expected"]))
    if kind.startswith(("int_", "float_", "bool_")):
        scalar = kind.split("_")[0]
        return {"int": "must be an integer", "float": "must be a number", "bool": "must be true or false"}[scalar]
    table = {
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
        return f"{dotted(path)}: missing required key"
    if kind == "extra_forbidden":
        return f"{dotted(path)}: {_unknown_key(path)}"
    if is_key:
        return f"{dotted(path[:-1])}: key {path[-1]!r} {_reason(err)}"
    text = f"{dotted(path)}: {_reason(err)}"
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


def _keys(model: type[BaseModel]) -> dict[str, Any]:
    """A model's keys as the file writes them (a field's alias: `from`, not `from_`) → their types."""
    return {field.alias or name: field.annotation for name, field in model.model_fields.items()}


def _fields_at(path: Path) -> list[str]:
    """The keys the model allows in the mapping at `path` (none if it is not a model)."""
    tp: Any = Topology
    for step in path:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel) and step in _keys(tp):
            tp = _keys(tp)[step]
        elif get_origin(tp) is dict:
            tp = get_args(tp)[1]
        else:
            return []
    tp = _unwrap(tp)
    return list(_keys(tp)) if isinstance(tp, type) and issubclass(tp, BaseModel) else []


def _split_loc(loc: tuple[Any, ...], data: Any, kind: str) -> tuple[Path, Path | None, str, bool]:
    """A pydantic loc as (data path, path of the union it went through, union member, is_key)."""
    path: list[str] = []
    union_at: Path | None = None
    member, is_key = "", False
    for i, step in enumerate(loc):
        if step == "[key]" and i == len(loc) - 1 and kind != "extra_forbidden":  # not a key named "[key]"
            is_key = True
        elif (isinstance(data, dict) and step in data) or (  # a key, or an item of a list
                isinstance(data, list) and isinstance(step, int) and 0 <= step < len(data)):
            data = data[step]
            path.append(str(step))
        elif kind == "missing" and i == len(loc) - 1:
            path.append(str(step))
        elif union_at is None:  # a step that is not in the data: the union member pydantic tried
            union_at, member = tuple(path), str(step)
    return tuple(path), union_at, member, is_key


def _member_text(member: str) -> str:
    """How a union member reads in `must be X or Y`."""
    model = getattr(spec, member, None) or getattr(backup_spec, member, None)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return "{" + ", ".join(f"{n}: ..." for n, f in model.model_fields.items() if f.is_required()) + "}"
    if member == "bool":
        return "true or false"
    if member in ("int", "float", "constrained-int", "constrained-float"):
        return "a number"
    return "a string"


def _fitting_member(path: Path, members: dict[str, list[_Err]]) -> list[_Err] | None:
    """The union member whose own errors to report: one with only value errors (a pattern, a range),
    else a mapping whose keys are all that member's (a value inside it of the wrong type)."""
    for items in members.values():
        kinds = [e["type"] for e, *_ in items]
        if not any(k in ("missing", "extra_forbidden") or k.endswith(("_type", "_parsing")) for k in kinds):
            return items
    for items in members.values():
        if all(len(p) > len(path) and e["type"] not in ("missing", "extra_forbidden") for e, p, *_ in items):
            return items
    return None


def _union_problems(path: Path, errs: list[_Err], tree: Tree, data: Any) -> list[Problem]:
    """One failed union: the errors of the member that nearly fits, else one summary."""
    members: dict[str, list[_Err]] = {}
    for item in errs:
        members.setdefault(item[2], []).append(item)
    if (items := _fitting_member(path, members)) is not None:
        return [(_position(tree, p, "key" if k else e["type"]), tree.conceal(p, _message(e, p, k)))
                for e, p, _, k in items]
    wanted = list(dict.fromkeys(_member_text(m) for m in members))
    expected = " or ".join([", ".join(wanted[:-1]), wanted[-1]] if len(wanted) > 1 else wanted)
    for step in path:
        data = data[step]
    message = f"{dotted(path)}: must be {expected} (got {_got(data)})"
    return [(_position(tree, path, "union"), tree.conceal(path, message))]


def _position(tree: Tree, path: Path, kind: str) -> Pos:
    """Where an error at `path` points: its value, its key, or the nearest ancestor's key."""
    if kind in ("key", "cross", "extra_forbidden") and path in tree.keypos:
        return tree.keypos[path]
    if kind == "cross" and path and isinstance(path[-1], str) and path[-1].isdigit() and path in tree.valpos:
        return tree.valpos[path]  # an item of a list (which has no key)
    if kind not in ("missing", "key", "cross", "extra_forbidden") and path in tree.valpos:
        return tree.valpos[path]
    path = path[:-1] if kind == "missing" else path
    while path and path not in tree.keypos:
        path = path[:-1]
    return tree.keypos[path] if path else tree.valpos.get((), (1, 1))


def _cross(tree: Tree, loc: tuple[str | int, ...], msg: str) -> Problem:
    """A problem the model found across keys (or a server's catalog found), at the key it is about."""
    path = tuple(str(p) for p in loc)
    return _position(tree, path, "cross"), tree.conceal(path, f"{dotted(path)}: {msg}")


def _validation_problems(exc: ValidationError, data: Any, tree: Tree) -> list[Problem]:
    """Every pydantic error, and every cross-field problem, as a positioned message."""
    problems: list[Problem] = []
    unions: dict[Path, list[_Err]] = {}
    for err in exc.errors():
        if isinstance(error := (err.get("ctx") or {}).get("error"), TopologyProblems):
            problems += [_cross(tree, loc, msg) for loc, msg in error.problems]
            continue
        path, union_at, member, is_key = _split_loc(err["loc"], data, err["type"])
        if any(path[: len(f)] == f for f in tree.failed):
            continue  # its interpolation failed, which is already reported
        if union_at is not None:
            unions.setdefault(union_at, []).append((dict(err), path, member, is_key))
        else:
            message = tree.conceal(path, _message(err, path, is_key))
            problems.append((_position(tree, path, "key" if is_key else err["type"]), message))
    for path, errs in unions.items():
        problems.extend(_union_problems(path, errs, tree, data))
    return problems


# --- public API -----------------------------------------------------------------------------

_REQUIRED = "version, cluster, image, primary and nodes"


def _raise(filename: str, problems: list[Problem]) -> NoReturn:
    ordered = sorted(dict.fromkeys(problems), key=lambda p: p[0])
    raise SpecError([f"{filename}:{line}:{col}: {msg}" for (line, col), msg in ordered])


def _to_data(text: str, filename: str, env: Mapping[str, str]) -> tuple[dict[str, Any], Tree]:
    """The document as plain, interpolated data; raises SpecError for YAML-level problems."""
    root, problems = read_yaml(text)
    if problems:
        _raise(filename, problems)
    if root is None:
        _raise(filename, [((1, 1), f"empty document: expected a mapping with {_REQUIRED}")])
    tree = Tree(env)
    start = own_pos(root, (1, 1))
    try:
        data = tree.convert(root, (), start, 0)
    except Abort as exc:
        _raise(filename, [*tree.problems, exc.problem])
    if not isinstance(data, dict):
        _raise(filename, [(start, f"the document must be a mapping (got {_got(data)})")])
    return data, tree


class CatalogLookup(Protocol):
    """The settings catalog of the topology's image, asked of its own server; None when it cannot
    be known (the image is not in the engine: the plan refuses that anyway)."""

    def __call__(self, topo: Topology) -> pg_settings.Catalog | None: ...


def parse_topology(text: str, filename: str, env: Mapping[str, str],
                   catalog: CatalogLookup | None = None) -> Topology:
    """Parse, interpolate and validate one topology document; raises SpecError with every problem.
    `catalog`: asked for the settings of the file's image when no shipped catalog covers its major
    (and the file sets parameters); its refusals are problems like any other."""
    data, tree = _to_data(text, filename, env)
    try:
        topology = Topology.model_validate(data, by_alias=True, by_name=False)  # `from`, never `from_`
    except ValidationError as exc:
        _raise(filename, [*tree.problems, *_validation_problems(exc, data, tree)])
    if tree.problems:
        _raise(filename, tree.problems)
    if catalog is not None and spec.needs_server_catalog(topology):
        known = catalog(topology)
        refused = spec.catalog_problems(topology, known) if known is not None else []
        if refused:
            _raise(filename, [_cross(tree, loc, msg) for loc, msg in refused])
    return topology


def load_topology(path: str | os.PathLike[str], env: Mapping[str, str] | None = None,
                  catalog: CatalogLookup | None = None) -> Topology:
    """Read the file at `path` and return its Topology; `env` (default os.environ) feeds `${VAR}`;
    `catalog` as for parse_topology."""
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
    return parse_topology(text, filename, os.environ if env is None else env, catalog)
