"""Hostile topology files (issue 7, "Bad input"): every file ends in a Topology or a SpecError.

Property-based: random, mutated and malicious files are written to `tmp_path` and read by
`load_topology`, the real entry point.  Each must end in either a valid `Topology` or a
`SpecError` whose every line is `FILE:LINE:COL: message` (or `FILE: message` when the file
cannot be read at all) -- never another exception, never a hang, never a Docker call.  Where
the answer is known in advance (the model itself says whether the data is valid) the loader
must agree with it.  A few cases run the real CLI in a subprocess.
"""

from __future__ import annotations

import math
import os
import re
import signal
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, event, example, given, settings, strategies as st
from pydantic import ValidationError

from pgtopo.errors import SpecError
from pgtopo.interpolate import InterpolationError, interpolate
from pgtopo.loader import MAX_BYTES, MAX_DEPTH, MAX_NODES, load_topology
from pgtopo.spec import RESERVED_ROLES, Topology, parameter_problem
from tests.properties import examples

HANG = 60.0  # a load still running after this is hung: a blow-up takes minutes, a real load milliseconds
NO_DOCKER = "unix:///nonexistent.sock"


def bounded(n: int) -> settings:
    """A property's bounds: `n` examples (scaled by the profile); a hang is caught by `load`'s watchdog."""
    return settings(
        max_examples=examples(n),
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                               HealthCheck.data_too_large, HealthCheck.large_base_example],
    )


# --- never a Docker call, never a hang --------------------------------------------------------


class DockerCalled(BaseException):
    """Raised by every way into the Docker SDK; a BaseException so no `except Exception` hides it."""


class Hang(BaseException):
    """Raised by the watchdog when one load runs past HANG seconds."""


@pytest.fixture(autouse=True, scope="module")
def no_docker() -> Iterator[None]:
    import docker

    from pgtopo import docker_ops

    def refuse(*_: Any, **__: Any) -> None:
        raise DockerCalled("the loader must never talk to Docker")

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DOCKER_HOST", NO_DOCKER)
        mp.setattr(docker, "from_env", refuse)
        mp.setattr(docker.DockerClient, "__init__", refuse)
        mp.setattr(docker.APIClient, "__init__", refuse)
        mp.setattr(docker_ops, "connect", refuse)
        yield


def _alarm(*_: Any) -> None:
    raise Hang(f"a load ran for more than {HANG:.0f} s")


# --- what every outcome must look like ------------------------------------------------------

_BREAKS = re.compile("\r\n|[\r\n\x85\u2028\u2029]")  # what YAML counts as a line break


def yaml_lines(text: str) -> list[str]:
    return _BREAKS.split(text)


def check_problems(path: Path, exc: SpecError, text: str | None) -> list[tuple[int, int, str]]:
    """Every problem is one printable `FILE:LINE:COL: message` (or `FILE: message`) line.

    Returns (line, col, message) of the positioned ones; (0, 0, message) for file-level ones.
    """
    assert isinstance(exc.problems, list) and exc.problems, "a SpecError without problems"
    assert str(exc) == "\n".join(exc.problems)
    assert exc.exit_code == 2
    at = re.compile(re.escape(str(path)) + r":([0-9]+):([0-9]+): (\S.*)\Z", re.DOTALL)
    whole = re.compile(re.escape(str(path)) + r": (\S.*)\Z", re.DOTALL)
    found: list[tuple[int, int, str]] = []
    lines = None if text is None else yaml_lines(text.removeprefix("\ufeff"))
    for problem in exc.problems:
        assert isinstance(problem, str)
        # One line, and nothing a terminal would act on (newlines, escapes, bidi overrides).
        assert problem.isprintable(), f"problem is not one printable line: {problem!r}"
        if m := at.match(problem):
            line, col = int(m.group(1)), int(m.group(2))
            assert line >= 1 and col >= 1, problem
            if lines is not None:
                assert line <= len(lines), f"line {line} of a {len(lines)}-line file: {problem!r}"
                assert col <= len(lines[line - 1]) + 1, f"column past the end of line {line}: {problem!r}"
            found.append((line, col, m.group(3)))
        else:
            m = whole.match(problem)
            assert m, f"neither FILE:LINE:COL: nor FILE: -- {problem!r}"
            found.append((0, 0, m.group(1)))
    positions = [(line, col) for line, col, _ in found]
    assert positions == sorted(positions), "problems are not in file order"
    assert len(set(exc.problems)) == len(exc.problems), "a problem is reported twice"
    return found


def load(path: Path, env: dict[str, str] | None = None, text: str | None = None) -> Topology | list[tuple[int, int, str]]:
    """Load `path`: the Topology, or the checked problems of the SpecError; a hang fails the test."""
    watchdog = hasattr(signal, "setitimer")
    if watchdog:
        previous = signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, HANG)
    try:
        with warnings.catch_warnings(record=True) as warned:
            warnings.simplefilter("always")
            result: Any = load_topology(path, {} if env is None else env)
    except SpecError as exc:
        result = exc
    finally:
        if watchdog:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    # A warning would reach the user's terminal as lines that are not FILE:LINE:COL problems.
    assert not warned, [str(w.message) for w in warned]
    if isinstance(result, SpecError):
        return check_problems(path, result, text)
    assert isinstance(result, Topology)
    return result


def write(tmp_path: Path, content: str | bytes) -> Path:
    path = tmp_path / "topology.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_bytes(content.encode("utf-8"))
    return path


def load_text(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> Topology | list[tuple[int, int, str]]:
    return load(write(tmp_path, text), env, text)


def messages(found: Any) -> list[str]:
    assert isinstance(found, list), f"expected a SpecError, got {found!r}"
    return [msg for _, _, msg in found]


# --- a small YAML writer (so any value, however hostile, can be put in a file) ----------------


class Pairs(list):  # type: ignore[type-arg]
    """A mapping written as its (key, value) pairs in order: lets a file repeat a key."""


class Raw(str):
    """Text written into the file as it is (an alias, a tagged node, ...)."""


_PLAIN = re.compile(r"[a-z][a-z0-9_-]*\Z")
_NOT_PLAIN = {"true", "false", "null", "yes", "no", "on", "off", "y", "n"}


def _quoted(text: str) -> str:
    out = []
    for ch in text:
        o = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif 0x20 <= o <= 0x7E or (0xA0 <= o <= 0xFFFD and not 0xD800 <= o <= 0xDFFF and o not in (0x2028, 0x2029, 0xFEFF)) \
                or o >= 0x10000:
            out.append(ch)  # printable in YAML and not a line break: written as it is (RTL, emoji, ...)
        elif o <= 0xFF:
            out.append(f"\\x{o:02x}")
        else:
            out.append(f"\\u{o:04x}")
    return '"' + "".join(out) + '"'


def scalar(value: Any, *, key: bool = False) -> str:
    """`value` as a YAML scalar; `$` in string values is doubled so it survives interpolation."""
    if isinstance(value, Raw):
        return str(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if value.bit_length() < 10_000:
            return str(value)
        return ("-" if value < 0 else "") + f"0x{abs(value):x}"  # str() refuses > 4300 digits
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        return repr(value)
    assert isinstance(value, str), value
    text = value if key else value.replace("$", "$$")
    return text if _PLAIN.match(text) and text not in _NOT_PLAIN else _quoted(text)


def _items(value: Any) -> list[tuple[Any, Any]]:
    return list(value) if isinstance(value, Pairs) else list(value.items())


def flow(value: Any) -> str:
    if isinstance(value, (dict, Pairs)):
        return "{" + ", ".join(f"{scalar(k, key=True)}: {flow(v)}" for k, v in _items(value)) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(flow(v) for v in value) + "]"
    return scalar(value)


def block(value: Any, indent: int = 2, level: int = 0) -> list[str]:
    pad = " " * (indent * level)
    if isinstance(value, list) and not isinstance(value, Pairs):
        return [f"{pad}- {flow(v)}" for v in value] or [f"{pad}[]"]
    lines: list[str] = []
    for k, v in _items(value):
        if isinstance(v, (dict, list)) and v:  # Pairs is a list
            lines.append(f"{pad}{scalar(k, key=True)}:")
            lines += block(v, indent, level + 1)
        else:
            lines.append(f"{pad}{scalar(k, key=True)}: {flow(v)}")
    return lines


def dump(value: Any, style: str = "block", indent: int = 2) -> str:
    if style == "flow":
        return flow(value) + "\n"
    if style == "mixed":  # top level in block style, everything below it in flow style
        return "".join(f"{scalar(k, key=True)}: {flow(v)}\n" for k, v in _items(value))
    return "\n".join(block(value, indent)) + "\n"


STYLES = st.sampled_from(["block", "flow", "mixed"])
INDENTS = st.integers(min_value=1, max_value=6)


# --- valid topologies --------------------------------------------------------------------------

NAME = st.from_regex(r"[a-z][a-z0-9-]{0,29}", fullmatch=True).filter(lambda s: not s.startswith("pgtopo"))
ROLE = st.one_of(
    st.sampled_from(["repuser", "replicator", "_repl", "r" * 63]),
    st.from_regex(r"[a-z_][a-z0-9_]{0,62}", fullmatch=True).filter(
        lambda r: r not in RESERVED_ROLES and not r.startswith("pg_")
    ),
)
PARAM_NAME = st.from_regex(r"[a-z_][a-z0-9_]{0,20}(\.[a-z_][a-z0-9_]{0,10})?", fullmatch=True).filter(
    lambda s: parameter_problem(s) is None
)
PARAM_TEXT = st.text(st.characters(exclude_categories=("Cc", "Cs")), max_size=40)
PARAM_VALUE = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    PARAM_TEXT,
)
PARAMETERS = st.dictionaries(PARAM_NAME, PARAM_VALUE, max_size=4)
IMAGE = st.sampled_from(
    [
        "postgres:17",
        "postgres",
        "postgres:15-bookworm",
        "library/postgres:16.4",
        "pgtopo-local/postgres:15",
        "registry.example.com:5000/team/postgres:17",
        "localhost/pg:V1",
        "postgres@sha256:" + "0123456789abcdef" * 4,
    ]
)
NETWORK = st.from_regex(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}", fullmatch=True)
SECRET = st.one_of(
    st.builds(lambda name: {"env": name}, st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,20}", fullmatch=True)),
    st.builds(lambda name: {"file": name}, st.text(min_size=1, max_size=30)),
)


@st.composite
def topologies(draw: st.DrawFn) -> dict[str, Any]:
    """The data of a valid topology: a tree of nodes rooted at the primary, unique ports."""
    names = draw(st.lists(NAME, min_size=1, max_size=5, unique=True))
    ports = draw(st.lists(st.integers(min_value=1, max_value=65535), min_size=len(names), max_size=len(names), unique=True))
    nodes: dict[str, Any] = {}
    for i, name in enumerate(names):
        node: dict[str, Any] = {}
        if i and draw(st.booleans()):
            node["upstream"] = names[draw(st.integers(min_value=0, max_value=i - 1))]
        if draw(st.booleans()):
            node["port"] = ports[i]
        if draw(st.booleans()):
            node["parameters"] = draw(PARAMETERS)
        nodes[name] = node
    data: dict[str, Any] = {"version": 1, "cluster": draw(NAME), "image": draw(IMAGE), "primary": names[0]}
    if draw(st.booleans()):
        data["network"] = draw(NETWORK)
    if draw(st.booleans()):
        auth: dict[str, Any] = {"replication_user": draw(ROLE)}
        for key in ("superuser_password", "replication_password"):
            if draw(st.booleans()):
                auth[key] = draw(SECRET)
        data["auth"] = auth
    if draw(st.booleans()):
        data["parameters"] = draw(PARAMETERS)
    if draw(st.booleans()):
        data["switchover"] = {
            "max_lag_bytes": draw(st.integers(min_value=0, max_value=2**62)),
            "timeout_seconds": draw(st.floats(min_value=0, max_value=3600, exclude_min=True)),
        }
    data["nodes"] = nodes
    order = draw(st.permutations(list(data)))
    return {key: data[key] for key in order}


def oracle(data: Any) -> Topology | None:
    """What the model says about `data` directly, without YAML: the Topology, or None."""
    try:
        return Topology.model_validate(data)
    except ValidationError:
        return None


def agree(result: Any, data: Any) -> None:
    """The loader read the file exactly as the model reads `data`."""
    expected = oracle(data)
    event("the model accepts the data" if expected else "the model refuses the data")
    if expected is None:
        assert isinstance(result, list), f"the model refuses {data!r} but the loader accepted it"
    else:
        assert isinstance(result, Topology), f"the model accepts the data but the loader says {result!r}"
        assert result == expected


@bounded(80)
@given(topologies(), STYLES, INDENTS)
def test_valid_files_load_as_the_model_reads_them(tmp_path: Path, data: dict[str, Any], style: str, indent: int) -> None:
    agree(load_text(tmp_path, dump(data, style, indent)), data)


# --- one field corrupted -------------------------------------------------------------------

RTL_EMOJI_CONTROL = [
    "\u202e", "\u202d", "\u2066", "\u200f", "\u061c",  # bidi overrides and marks
    "\u05e9\u05dc\u05d5\u05dd", "\u0645\u0631\u062d\u0628\u0627",  # Hebrew, Arabic
    "\U0001f418", "\U0001f469\u200d\U0001f469\u200d\U0001f467", "\ufe0f",  # emoji, ZWJ sequence
    "\x00", "\x07", "\x1b[31m", "\r", "\n", "\t", "\x7f", "\x85", "\x9b", "\u2028", "\u2029", "\ufeff", "\uffff",
]
UNICODE_TEXT = st.lists(
    st.one_of(st.sampled_from(RTL_EMOJI_CONTROL), st.text(max_size=4), st.sampled_from(["pg", "primary", "-", " "])),
    max_size=6,
).map("".join)
HUGE_INT = st.sampled_from([2**31, 2**63, -(2**63) - 1, 10**30, -(10**30), 16**4000 - 1, -(16**4000), 2**20000])
LONG_TEXT = st.sampled_from([1_000, 4_097, 65_536, 100_000]).map(lambda n: "x" * n)
SMALL = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8))


def nested(depth: int, inner: Any = 1) -> Any:
    for i in range(depth):
        inner = [inner] if i % 2 else {"k": inner}
    return inner


HOSTILE = st.one_of(
    SMALL,
    HUGE_INT,
    st.integers(min_value=-70_000, max_value=0),  # negative and zero ports
    st.sampled_from([0.5, -1.5, 1e308, -0.0, 1e-320, math.inf, -math.inf, math.nan, 5432.0, 5432.5]),
    UNICODE_TEXT,
    LONG_TEXT,
    st.lists(SMALL, max_size=3),  # lists where maps belong
    st.dictionaries(st.text(max_size=5), SMALL, max_size=3),
    st.integers(min_value=1, max_value=MAX_DEPTH + 20).map(nested),
    st.just({}),
    st.just([]),
)
HOSTILE_KEY = st.one_of(
    UNICODE_TEXT,
    st.sampled_from(["[key]", "EnvSecret", "FileSecret", "bool", "int", "float", "str", "env", "file", "port",
                     "upstream", "parameters", "nodes", "<<", "", " ", "1", "null", "x" * 5000]),
)


def mapping_paths(data: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The path of every key of every mapping in `data`."""
    found = []
    if isinstance(data, dict):
        for key, value in data.items():
            found.append((*path, key))
            found += mapping_paths(value, (*path, key))
    return found


def container(data: Any, path: tuple[str, ...]) -> dict[str, Any]:
    for step in path[:-1]:
        data = data[step]
    return data


def copy(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: copy(v) for k, v in data.items()}
    return [copy(v) for v in data] if isinstance(data, list) else data


@bounded(120)
@given(topologies(), st.data(), STYLES)
def test_one_corrupted_field_gives_a_topology_or_positioned_problems(
    tmp_path: Path, data: dict[str, Any], draw: st.DataObject, style: str
) -> None:
    mutated = copy(data)
    path = draw.draw(st.sampled_from(mapping_paths(mutated)), label="path")
    parent, key = container(mutated, path), path[-1]
    how = draw.draw(st.sampled_from(["value", "value", "value", "drop", "extra", "rename"]), label="how")
    if how == "value":
        parent[key] = draw.draw(HOSTILE, label="value")
    elif how == "drop":
        del parent[key]
    elif how == "extra":
        new_key = draw.draw(HOSTILE_KEY, label="key")
        assume(new_key not in parent)
        parent[new_key] = draw.draw(HOSTILE, label="value")
    else:
        new_key = draw.draw(HOSTILE_KEY, label="key")
        assume(new_key not in parent)
        items = list(parent.items())
        parent.clear()
        parent.update((new_key if k == key else k, v) for k, v in items)
    agree(load_text(tmp_path, dump(mutated, style)), mutated)


# Wrong values (type, range, shape) for each field: the problem names the field and points at its line.
WRONG = {
    ("version",): st.sampled_from(["1", 2, 0, None, [1], {"v": 1}, 1.5, "one"]),
    ("cluster",): st.one_of(st.sampled_from([None, 1, 1.5, True, [], ["pg"], {}, {"pg": 1}]), HUGE_INT),
    ("image",): st.sampled_from([None, 17, 17.0, False, ["postgres:17"], {"name": "postgres"}]),
    ("network",): st.sampled_from([1, 2.5, True, ["net"], {"name": "net"}]),
    ("primary",): st.sampled_from([None, 1, True, ["primary"], {"primary": {}}]),
    ("nodes",): st.sampled_from([None, {}, [], ["primary"], "primary", 1, True]),
    ("auth",): st.sampled_from([None, [], "repuser", 1, ["repuser"]]),
    ("parameters",): st.sampled_from([None, [], "work_mem=8MB", 1, [{"work_mem": "8MB"}]]),
    ("switchover",): st.sampled_from([None, [], "fast", 30]),
    ("switchover", "max_lag_bytes"): st.sampled_from([-1, "16MB", 1.5, None, [], {}, math.nan]),
    ("switchover", "timeout_seconds"): st.sampled_from([0, -1, 3601, "30s", None, [], {}, math.nan, math.inf]),
    ("auth", "replication_user"): st.sampled_from([None, 1, [], {}, "Rep", "rep user", "rep;drop", "r" * 64]),
    ("auth", "superuser_password"): st.sampled_from(["secret", 1, [], {}, {"env": "A", "file": "b"},
                                                     {"envv": "A"}, {"env": "not-a-var"}, {"file": ""}]),
}
NODE_WRONG = {
    "port": st.one_of(st.sampled_from([0, -1, 65536, 70000, "abc", 5432.5, [], {}, "5432/tcp"]), HUGE_INT),
    "upstream": st.sampled_from([1, True, [], {}, "Primary", "pgtopo-never-a-node", "a b"]),
    "parameters": st.sampled_from([[], "x", 1, [{"a": 1}]]),
}


@bounded(80)
@given(topologies(), st.data(), st.sampled_from(["block", "mixed"]))
def test_a_field_of_the_wrong_type_is_named_where_it_is(
    tmp_path: Path, data: dict[str, Any], draw: st.DataObject, style: str
) -> None:
    fields = [*WRONG, *[("nodes", n, f) for n in data["nodes"] for f in NODE_WRONG]]
    path = draw.draw(st.sampled_from(fields), label="path")
    value = draw.draw(WRONG[path] if path in WRONG else NODE_WRONG[path[-1]], label="value")
    mutated = copy(data)
    parent = mutated
    for step in path[:-1]:
        parent = parent.setdefault(step, {})
    parent[path[-1]] = value
    text = dump(mutated, style)
    found = load_text(tmp_path, text)
    assert oracle(mutated) is None
    dotted = ".".join(path)
    named = [(line, msg) for line, _, msg in found if msg.startswith((dotted + ":", dotted + "."))]
    assert named, f"no problem names {dotted}: {found}"
    lines = yaml_lines(text)
    token = scalar(path[-1], key=True)
    # On the key's line, or on the next one where a block value starts.
    assert any(token in lines[line - 1] or (line > 1 and token in lines[line - 2]) for line, _ in named), (
        f"{dotted} is not on the lines of {named}"
    )


# --- unicode, interpolation -------------------------------------------------------------------


@bounded(60)
@given(topologies(), st.sampled_from(["cluster", "image", "network", "primary", "name", "param", "value", "file"]),
       UNICODE_TEXT, STYLES)
def test_unicode_in_names_and_values(tmp_path: Path, data: dict[str, Any], where: str, text: str, style: str) -> None:
    mutated = copy(data)
    if where in ("cluster", "image", "network", "primary"):
        mutated[where] = text
    elif where == "name":
        assume(text not in mutated["nodes"])
        mutated["nodes"][text] = {}
    elif where == "param":
        mutated["parameters"] = {text: "on"}
    elif where == "value":
        mutated["parameters"] = {"application_name": text}
    else:
        mutated["auth"] = {"superuser_password": {"file": text}}
    agree(load_text(tmp_path, dump(mutated, style)), mutated)


DOLLAR_TEXT = st.lists(
    st.sampled_from(["$", "$$", "${", "}", "A", "B", "UNSET", ":-", "-", ":?", "?", ":+", "+", "pg", "x", "${A}",
                     "${B:-d}", "${UNSET}", "$A", "${A:-${B:-${UNSET-z}}}", "$(", ")", "`"]),
    max_size=10,
).map("".join)
ENV = {"A": "pg", "B": "", "IMAGE": "postgres:17"}


@bounded(80)
@given(topologies(), st.sampled_from(["cluster", "image", "primary", "network", "value", "port"]), DOLLAR_TEXT)
def test_interpolation_gives_the_value_compose_would_or_a_problem(
    tmp_path: Path, data: dict[str, Any], where: str, raw: str
) -> None:
    mutated = copy(data)
    try:
        value: Any = interpolate(raw, ENV)
    except InterpolationError:
        value = None
    target = mutated
    if where == "value":
        target = mutated.setdefault("parameters", {})
    elif where == "port":
        target = mutated["nodes"][mutated["primary"]]
    key = {"value": "application_name"}.get(where, where)
    target[key] = Raw(_quoted(raw))
    result = load_text(tmp_path, dump(mutated), ENV)
    if value is None:
        assert any(msg.split(": ", 1)[1].startswith(("variable ", "invalid interpolation")) for msg in messages(result))
    else:
        target[key] = value
        agree(result, mutated)


@bounded(40)
@given(st.integers(min_value=1, max_value=40))
def test_nested_interpolation_is_bounded(tmp_path: Path, depth: int) -> None:
    image = "${UNSET:-" * depth + "postgres:17" + "}" * depth
    text = f"version: 1\ncluster: pg\nimage: '{image}'\nprimary: p\nnodes: {{p: {{}}}}\n"
    result = load_text(tmp_path, text)
    if depth <= 10:
        assert isinstance(result, Topology) and result.image == "postgres:17"
    else:
        assert messages(result) == ["image: invalid interpolation: nested deeper than 10 levels"]


# --- YAML features: anchors, aliases, merge keys, duplicate keys, tags, bombs -------------------

HEAD = "version: 1\ncluster: pg\nimage: postgres:17\nprimary: primary\n"


NODE_BASE = st.fixed_dictionaries({}, optional={"port": st.integers(1, 65535), "parameters": PARAMETERS})


@bounded(50)
@given(
    st.lists(NODE_BASE, min_size=1, max_size=3),
    st.lists(st.tuples(NAME, st.lists(st.integers(0, 2), max_size=3, unique=True), PARAMETERS, st.booleans()),
             max_size=4, unique_by=lambda t: t[0]),
)
def test_anchors_and_merge_keys_read_as_yaml_says(
    tmp_path: Path, bases: list[dict[str, Any]], replicas: list[tuple[str, list[int], dict[str, Any], bool]]
) -> None:
    """`<<: *a` and `<<: [*a, *b]` merge (the first map wins, own keys win over merged), aliases share."""
    names = {"primary", *(f"base{i}" for i in range(len(bases)))}
    assume(not names & {name for name, *_ in replicas})
    shared = bases[0].get("parameters", {})
    lines = [HEAD, f"parameters: &params {flow(shared)}\n", "nodes:\n", "  primary: {}\n"]
    nodes: dict[str, Any] = {"primary": {}}
    for i, base in enumerate(bases):
        lines.append(f"  base{i}: &b{i} {flow(base)}\n")
        nodes[f"base{i}"] = base
    for name, merged, own, share_params in replicas:
        merged = [m for m in merged if m < len(bases)]
        node: dict[str, Any] = {}
        for m in reversed(merged):  # earlier maps in a merge list win
            node.update(bases[m])
        entries = []
        if len(merged) == 1:
            entries.append(f"<<: *b{merged[0]}")
        elif merged:
            entries.append("<<: [" + ", ".join(f"*b{m}" for m in merged) + "]")
        if own:
            entries.append("parameters: " + flow(own))
            node["parameters"] = own
        elif share_params:
            entries.append("parameters: *params")
            node["parameters"] = shared
        lines.append(f"  {name}: {{{', '.join(entries)}}}\n")
        nodes[name] = node
    data = {"version": 1, "cluster": "pg", "image": "postgres:17", "primary": "primary", "parameters": shared,
            "nodes": nodes}
    agree(load_text(tmp_path, "".join(lines)), data)


@bounded(40)
@given(topologies(), st.data(), STYLES)
def test_a_repeated_key_is_reported_where_it_repeats(tmp_path: Path, data: dict[str, Any], draw: st.DataObject, style: str) -> None:
    paths = mapping_paths(data)
    path = draw.draw(st.sampled_from(paths), label="path")
    value = draw.draw(st.one_of(st.just(container(data, path)[path[-1]]), SMALL), label="second value")

    def with_repeat(node: Any, here: tuple[str, ...]) -> Any:
        if not isinstance(node, dict):
            return node
        pairs = Pairs((k, with_repeat(v, (*here, k))) for k, v in node.items())
        if here == path[:-1]:  # the key again, somewhere after its first occurrence
            first = list(node).index(path[-1])
            pairs.insert(draw.draw(st.integers(first + 1, len(pairs)), label="at"), (path[-1], value))
        return pairs

    text = dump(with_repeat(data, ()), style)
    found = load_text(tmp_path, text)
    key = path[-1]
    repeats = [(line, col) for line, col, msg in found if msg.startswith(f"duplicate key {key!r}")]
    assert repeats, found
    lines = yaml_lines(text)
    token = scalar(key, key=True) + ":"
    for line, col in repeats:  # points at a later occurrence of the key itself
        assert lines[line - 1][col - 1:].startswith(token), (lines[line - 1], col, token)
        assert token in "\n".join([*lines[: line - 1], lines[line - 1][: col - 1]]), "not the second occurrence"


def laughs(width: int, depth: int, how: str) -> str:
    if how == "seq":
        out = ["b0: &b0 [" + ", ".join(['"lol"'] * width) + "]"]
        out += [f"b{i}: &b{i} [" + ", ".join([f"*b{i - 1}"] * width) + "]" for i in range(1, depth + 1)]
    elif how == "map":
        out = ["b0: &b0 {k: lol}"]
        out += [f"b{i}: &b{i} {{" + ", ".join(f"k{j}: *b{i - 1}" for j in range(width)) + "}" for i in range(1, depth + 1)]
    else:  # merge keys
        out = ["b0: &b0 {k: lol}"]
        out += [f"b{i}: &b{i} {{<<: *b{i - 1}, " + ", ".join(f"x{j}: *b{i - 1}" for j in range(width)) + "}"
                for i in range(1, depth + 1)]
    return "\n".join(out) + "\n"


@bounded(20)
@given(st.integers(2, 12), st.integers(1, 70), st.sampled_from(["seq", "map", "merge"]),
       st.sampled_from(["top", "parameters", "node"]))
def test_alias_bombs_are_refused_quickly(tmp_path: Path, width: int, depth: int, how: str, where: str) -> None:
    bomb = laughs(width, depth, how)
    if where == "top":
        text = HEAD + "nodes: {primary: {}}\n" + bomb
    elif where == "parameters":
        text = HEAD + "nodes: {primary: {}}\nparameters:\n" + "".join("  " + line + "\n" for line in bomb.splitlines())
    else:
        text = HEAD + "nodes:\n  primary: {}\n  bomb:\n" + "".join("    " + line + "\n" for line in bomb.splitlines())
    found = messages(load_text(tmp_path, text))
    if width ** depth > 2 * MAX_NODES:
        assert any(m.endswith((f"too many nodes: more than {MAX_NODES} after expanding aliases",
                               f"nested deeper than {MAX_DEPTH} levels")) for m in found), found


@bounded(30)
@given(st.integers(1, 3 * MAX_DEPTH), st.sampled_from(["flow-seq", "flow-map", "block-map", "block-seq", "alias"]),
       st.sampled_from(["top", "parameters.work_mem", "nodes.primary"]))
def test_deep_nesting_is_refused_quickly(tmp_path: Path, depth: int, shape: str, where: str) -> None:
    if shape == "alias":  # each anchor one level deeper than the one it names
        text = HEAD + "nodes: {primary: {}}\na0: &a0 [x]\n" + "".join(f"a{i}: &a{i} [*a{i - 1}]\n" for i in range(1, depth))
    elif shape.startswith("flow"):
        value = "[" * depth + "1" + "]" * depth if shape == "flow-seq" else "{a: " * depth + "1" + "}" * depth
        text = HEAD + {
            "top": "nodes: {primary: {}}\ndeep: " + value + "\n",
            "parameters.work_mem": "nodes: {primary: {}}\nparameters: {work_mem: " + value + "}\n",
            "nodes.primary": "nodes: {primary: " + value + "}\n",
        }[where]
    else:
        step = "- " if shape == "block-seq" else "k:\n"
        body = "".join(" " * (2 * i) + step for i in range(depth)).rstrip("\n") + " 1\n"
        lead = {"top": "deep:\n", "parameters.work_mem": "parameters:\n  work_mem:\n", "nodes.primary": ""}[where]
        pad = " " * {"top": 2, "parameters.work_mem": 4, "nodes.primary": 4}[where]
        if where == "nodes.primary":
            text = HEAD + "nodes:\n  primary:\n"
        else:
            text = HEAD + "nodes: {primary: {}}\n" + lead
        text += "".join(pad + line + "\n" for line in body.splitlines())
    found = messages(load_text(tmp_path, text))
    if depth > MAX_DEPTH + 2:
        assert any(m.endswith(f"nested deeper than {MAX_DEPTH} levels") for m in found), found


TAGS = ["!!str", "!!int", "!!float", "!!bool", "!!null", "!!map", "!!seq", "!!binary", "!!timestamp", "!!set",
        "!!omap", "!!pairs", "!custom", "!<tag:yaml.org,2002:int>", "!!python/object/apply:os.system",
        "!!python/name:os.system", "!!merge", "!!value"]
SCALARS = ["1", "0x1f", "-0o17", "1.5", ".nan", "-.inf", "true", "null", "~", "primary", "pg", "postgres:17", "''",
           '"\\u0000"', '"\\x1b[2J"', '"\U0001f418"', '"\u202e"', "2001-01-01", "2001-01-01T00:00:00Z", "12:30:00",
           "1e999", "${X}", "$$", "=", "<<", "'<<'", "[]", "{}", "-", "?", "|", ">", "'a\\'b'", "!", "&", "*", "%"]
KEYS = ["version", "cluster", "image", "network", "primary", "auth", "parameters", "switchover", "nodes", "primary",
        "port", "upstream", "replication_user", "env", "file", "<<", "? [a]", "? {a: 1}", "1", "null", "true", "'a'"]


def yaml_nodes() -> st.SearchStrategy[str]:
    scalar_ = st.sampled_from(SCALARS)
    return st.recursive(
        scalar_,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4).map(lambda xs: "[" + ", ".join(xs) + "]"),
            st.lists(st.tuples(st.sampled_from(KEYS), inner), max_size=4).map(
                lambda kv: "{" + ", ".join(f"{k}: {v}" for k, v in kv) + "}"),
            st.tuples(st.sampled_from(["a", "b", "c"]), inner).map(lambda t: f"&{t[0]} {t[1]}"),
            st.sampled_from(["*a", "*b", "*c", "*nowhere"]),
            st.tuples(st.sampled_from(TAGS), inner).map(lambda t: f"{t[0]} {t[1]}"),
        ),
        max_leaves=12,
    )


@bounded(150)
@given(st.lists(st.tuples(st.sampled_from(KEYS), yaml_nodes()), max_size=8),
       st.lists(st.tuples(st.integers(0, 20), st.sampled_from(["\t", "  ", "---\n", "...\n", "\n", "# c\n", "%YAML 1.1\n"])),
                max_size=3))
def test_yaml_with_anchors_tags_and_merges_gives_a_topology_or_problems(
    tmp_path: Path, entries: list[tuple[str, str]], edits: list[tuple[int, str]]
) -> None:
    text = HEAD + "nodes: {primary: {}}\n" + "".join(f"{k}: {v}\n" for k, v in entries)
    for at, piece in edits:
        at = min(at * 7, len(text))
        text = text[:at] + piece + text[at:]
    load_text(tmp_path, text, {"X": "1"})


def test_python_tags_run_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = HEAD + f"nodes: {{primary: {{}}}}\nimage: !!python/object/apply:os.system ['touch {marker}']\n"
    text += f"network: !!python/object/apply:subprocess.call [['touch', '{marker}']]\n"
    messages(load_text(tmp_path, text))
    assert not marker.exists()


# --- bytes, whitespace, comments, size, documents, tabs -----------------------------------------


@bounded(150)
@given(st.binary(max_size=3000))
@example(b"\r\x00")  # a NUL after a CR line break: line 2, column 1
def test_random_bytes(tmp_path: Path, raw: bytes) -> None:
    try:
        text: str | None = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = None
    result = load(write(tmp_path, raw), {}, text)
    if text is None:
        assert isinstance(result, list) and len(result) == 1 and result[0][:2] == (0, 0)
        assert result[0][2].startswith("cannot read: not UTF-8 (byte 0x")


INVALID_UTF8 = [b"\xff", b"\xfe\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82", b"\xf4\x90\x80\x80", b"\x80", b"\xc3"]


@bounded(60)
@given(topologies(), st.sampled_from(INVALID_UTF8), st.floats(0, 1), STYLES)
def test_invalid_utf8_is_named_with_its_offset(
    tmp_path: Path, data: dict[str, Any], bad: bytes, where: float, style: str
) -> None:
    good = dump(data, style)
    cut = int(len(good) * where)
    prefix = good[:cut].encode()
    raw = prefix + bad + good[cut:].encode()
    result = load(write(tmp_path, raw), {})
    assert isinstance(result, list)
    assert [msg for *_, msg in result] == [f"cannot read: not UTF-8 (byte 0x{bad[0]:02x} at offset {len(prefix)})"]


@bounded(80)
@given(topologies(), st.lists(st.tuples(st.floats(0, 1), st.sampled_from(["flip", "insert", "delete"]),
                                        st.integers(0, 255)), min_size=1, max_size=4), STYLES)
def test_a_valid_file_with_damaged_bytes(tmp_path: Path, data: dict[str, Any], damage: list[tuple[float, str, int]],
                                         style: str) -> None:
    raw = bytearray(dump(data, style).encode())
    for where, how, byte in damage:
        at = min(int(len(raw) * where), len(raw) - 1)
        if how == "flip":
            raw[at] ^= byte or 1
        elif how == "insert":
            raw.insert(at, byte)
        else:
            del raw[at]
    try:
        text: str | None = bytes(raw).decode("utf-8-sig")
    except UnicodeDecodeError:
        text = None
    load(write(tmp_path, bytes(raw)), {}, text)


EMPTY_MESSAGE = "empty document: expected a mapping with version, cluster, image, primary and nodes"


@bounded(100)
@given(st.lists(st.one_of(st.sampled_from([" ", "\t", "\n", "\r\n", "\r", "---\n", "...\n"]),
                          st.text(st.characters(exclude_categories=("Cc", "Cs", "Zl", "Zp")), max_size=30).map(
                              lambda c: "#" + c + "\n")), max_size=12),
       st.booleans())
def test_empty_whitespace_and_comment_only_files(tmp_path: Path, parts: list[str], bom: bool) -> None:
    text = "".join(parts)
    assume(text.count("---") <= 1 and "...\n---" not in text)
    raw = (b"\xef\xbb\xbf" if bom else b"") + text.encode()
    found = messages(load(write(tmp_path, raw), {}, text))
    assert len(found) == 1, found  # never a Topology; one problem, one of these:
    assert found[0].startswith((
        EMPTY_MESSAGE,
        "found character '\\t' that cannot start any token (indent with spaces, not tabs)",  # a tab-only line
        "expected the node content, but found '<document end>'",  # `--- ...`
        "the document must be a mapping (got '",  # an indented `...` or `---` is a plain scalar
        "more than one YAML document",
    )), found


@pytest.mark.parametrize("text", ["", " ", "\n\n\n", "   \n \n", "\r\n\r\n", "# only a comment\n", "#\n#\n", "\ufeff",
                                  "---\n", "---\n...\n", "# yaml-language-server: $schema=x.json\n"])
def test_nothing_in_the_file(tmp_path: Path, text: str) -> None:
    assert messages(load_text(tmp_path, text)) == [EMPTY_MESSAGE]


def test_a_tab_only_line_is_a_tab_problem(tmp_path: Path) -> None:
    """ruamel refuses a line holding only a tab (YAML would allow it); the hint still says why."""
    assert load_text(tmp_path, "\t\n") == [
        (1, 1, "found character '\\t' that cannot start any token (indent with spaces, not tabs)")
    ]


def padded(over: int, padding: str) -> bytes:
    """A valid file padded to MAX_BYTES + over bytes."""
    body = (HEAD + "nodes: {primary: {}}\n").encode()
    room = MAX_BYTES + over - len(body)
    if padding == "comment":
        raw = body + b"#" + b"x" * (room - 2) + b"\n"
    elif padding == "spaces":
        raw = body + b" " * (room - 1) + b"\n"
    elif padding == "blank-lines":
        raw = body + b"\n" * room
    else:  # one long value
        raw = body.replace(b"cluster: pg\n", b"cluster: '" + b"p" * (room - 2 + len(b"pg")) + b"'\n")
    assert len(raw) == MAX_BYTES + over
    return raw


@bounded(30)
@given(st.integers(min_value=1, max_value=4096), st.sampled_from(["comment", "spaces", "blank-lines", "string"]))
def test_files_just_over_the_size_limit_are_refused_unread(tmp_path: Path, over: int, padding: str) -> None:
    found = load(write(tmp_path, padded(over, padding)), {}, None)
    assert found == [(0, 0, f"cannot read: larger than {MAX_BYTES} bytes")]


@pytest.mark.parametrize("padding", ["spaces", "string"])
def test_a_file_of_exactly_the_size_limit_is_read(tmp_path: Path, padding: str) -> None:
    result = load(write(tmp_path, padded(0, padding)), {}, None)
    if padding == "string":
        assert messages(result) == ["cluster: must match ^[a-z][a-z0-9-]{0,29}$ (got 'ppppppppppppppppppppppppppppppppppppp...')"]
    else:
        assert isinstance(result, Topology) and result.cluster == "pg"


@pytest.mark.parametrize(
    "size, expected",
    [(MAX_BYTES + 1, f"cannot read: larger than {MAX_BYTES} bytes"), (50 * MAX_BYTES, f"cannot read: larger than {MAX_BYTES} bytes")],
)
def test_huge_files_are_not_read(tmp_path: Path, size: int, expected: str) -> None:
    path = tmp_path / "huge.yaml"
    with open(path, "wb") as handle:
        handle.write((HEAD + "nodes: {primary: {}}\n").encode())
        handle.truncate(size)  # the rest is NUL bytes, never read
    assert messages(load(path, {})) == [expected]


@bounded(40)
@given(topologies(), st.lists(st.sampled_from(["valid", "empty", "scalar", "broken"]), min_size=1, max_size=3),
       st.booleans(), st.booleans())
def test_more_than_one_document(tmp_path: Path, data: dict[str, Any], others: list[str], explicit: bool, ends: bool) -> None:
    docs = [dump(data)] + [{"valid": dump(data), "empty": "", "scalar": "hello\n", "broken": "a: [\n"}[o] for o in others]
    text = ("---\n" if explicit else "") + docs[0]
    second_line = None
    for doc in docs[1:]:
        if ends:
            text += "...\n"
        if second_line is None:
            second_line = text.count("\n") + 1
        text += "---\n" + doc
    found = load_text(tmp_path, text)
    one_topology = "more than one YAML document (one topology per file)"
    assert (second_line, 1, one_topology) in found, (found, second_line)


@bounded(40)
@given(topologies(), st.lists(st.tuples(st.floats(0, 1), st.sampled_from(["indent", "after-colon", "in-value", "end"])),
                              min_size=1, max_size=3))
def test_tabs(tmp_path: Path, data: dict[str, Any], tabs: list[tuple[float, str]]) -> None:
    """Tabs anywhere: a file that still loads means what it did without them."""
    lines = dump(data).splitlines()
    for where, how in tabs:
        i = min(int(len(lines) * where), len(lines) - 1)
        line = lines[i]
        if how == "indent":
            lines[i] = "\t" + line
        elif how == "after-colon" and ": " in line:
            lines[i] = line.replace(": ", ":\t", 1)
        elif how == "in-value":
            lines[i] = line + "\t"
        else:
            lines[i] = line + "\t# tab"
    text = "\n".join(lines) + "\n"
    result = load_text(tmp_path, text)
    if isinstance(result, Topology):
        assert result == oracle(data)
    elif any(line.startswith("\t") for line in lines):
        assert result


def test_a_tab_indented_file_gets_the_hint(tmp_path: Path) -> None:
    found = load_text(tmp_path, HEAD + "nodes:\n\tprimary: {}\n")
    assert isinstance(found, list) and found[0][:2] == (6, 1)
    assert "(indent with spaces, not tabs)" in found[0][2]


# --- what the properties found (each failed before its fix in loader.py) -------------------------

TOP = HEAD + "nodes: {primary: {}}\n"
EXPECTED_KEYS = ("version, cluster, image, network, primary, auth, parameters, switchover, nodes, synchronous, pooler, "
                 "roles, databases, backup, bootstrap")


@pytest.mark.parametrize(
    "text, expected",
    [
        pytest.param(TOP + '"[key]": 1\n', [f"6:1: [key]: unknown key '[key]' (expected one of: {EXPECTED_KEYS})"],
                     id="a-key-named-[key]-was-an-IndexError"),
        pytest.param(TOP.replace("nodes: {primary: {}}", "nodes: {primary: {port: 0x" + "f" * 4000 + "}}"),
                     ["5:25: nodes.primary.port: must be <= 65535 (got an integer of 16000 bits)"],
                     id="a-huge-int-was-a-ValueError"),
        pytest.param(TOP.replace("nodes: {primary: {}}", 'nodes: {primary: {}, "a\\nb": {port: -1}}'),
                     ["5:22: nodes: key 'a\\nb' must match ^[a-z][a-z0-9-]{0,29}$",
                      "5:37: nodes.'a\\nb'.port: must be >= 1 (got -1)"],
                     id="a-newline-in-a-key-split-the-line"),
        pytest.param(TOP + '" primary\\u202e": 1\n',
                     ["6:1: ' primary\\u202e': unknown key ' primary\\u202e' (did you mean 'primary'?)"],
                     id="a-bidi-override-in-a-key-was-printed-raw"),
        pytest.param(TOP + '"": 1\n', [f"6:1: '': unknown key '' (expected one of: {EXPECTED_KEYS})"],
                     id="an-empty-key-read-as-(document)"),
        pytest.param(TOP.replace("version: 1", 'version: {"\\x1f": null}'),
                     ["1:10: version: must be 1 (got a mapping with keys '\\x1f')"],
                     id="a-control-character-in-got"),
        pytest.param("a: 1\rb: \x01\n", ["2:4: unacceptable character #x0001: special characters are not allowed"],
                     id="cr-line-breaks-counted-for-a-bad-character"),
        pytest.param("a: 1\u2028b: \x01\n", ["2:4: unacceptable character #x0001: special characters are not allowed"],
                     id="u2028-line-breaks-counted-for-a-bad-character"),
    ],
)
def test_found_by_the_properties(tmp_path: Path, text: str, expected: list[str]) -> None:
    found = load_text(tmp_path, text)
    assert isinstance(found, list), found
    assert [f"{line}:{col}: {msg}" for line, col, msg in found] == expected


def test_a_reused_anchor_warns_nobody(tmp_path: Path) -> None:
    """ruamel warns about an anchor defined twice; the warning must not reach stderr (load() checks)."""
    topo = load_text(tmp_path, "version: 1\ncluster: &a pg\nimage: postgres:17\nprimary: &a p\nnodes: {p: {}}\n")
    assert isinstance(topo, Topology) and topo.primary == "p"


# --- the real CLI: exit 0 or 2, never a traceback, never Docker ---------------------------------


def cli(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOCKER_HOST": NO_DOCKER, "PYTHONIOENCODING": "utf-8"}
    env.pop("PGTOPO_IMAGE", None)
    done = subprocess.run([sys.executable, "-m", "pgtopo", *map(str, args)], check=False, cwd=cwd, env=env, capture_output=True,
                          text=True, encoding="utf-8", errors="replace", timeout=30)
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr, done.stderr
    return done


BAD_FILES: dict[str, bytes] = {
    "binary": bytes(range(256)) * 4,
    "alias-bomb": (HEAD + "nodes: {primary: {}}\n" + laughs(9, 9, "seq")).encode(),
    "newline-in-a-node-name": (HEAD + 'nodes:\n  primary: {}\n  "a\\nb": {port: -1}\n').encode(),
    "huge-hex-port": (HEAD + "nodes:\n  primary: {port: 0x" + "f" * 4000 + "}\n").encode(),
    "reused-anchor": (HEAD.replace("cluster: pg", "cluster: &a pg") + "network: &a x\nnodes: {primary: {port: *a}}\n").encode(),
    "rtl-and-emoji": (HEAD.replace("cluster: pg", "cluster: \"pg\u202egnp.exe\U0001f418\"") +
                      "nodes: {primary: {}, \"\u202eevil\": {}}\n").encode(),
}


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_cli_validate_a_bad_file(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, BAD_FILES[name])
    done = cli("validate", path, cwd=tmp_path)
    assert done.returncode == 2, done
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert lines and all(re.match(re.escape(str(path)) + r"(:[0-9]+:[0-9]+)?: \S", line) for line in lines), lines


def test_cli_validate_a_good_file(tmp_path: Path) -> None:
    """Valid, with an anchor used twice (ruamel warns about that on stderr unless told not to)."""
    path = write(tmp_path, "version: 1\ncluster: &a pg\nimage: postgres:17\nprimary: &a p\nnodes: {p: {}, r: {upstream: *a}}\n")
    done = cli("validate", path, cwd=tmp_path)
    assert done.returncode == 0, done
    assert done.stdout == f"{path}: valid (cluster pg, 2 node(s), primary p)\n"
    assert done.stderr == ""


def test_cli_diff_reports_a_broken_file_before_any_docker_call(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + "nodes:\n  primary: {port: 70000}\n  replica: {prot: 1}\n")
    done = cli("diff", path, cwd=tmp_path)
    assert done.returncode == 2, done
    assert done.stderr.splitlines() == [
        f"{path}:6:19: nodes.primary.port: must be <= 65535 (got 70000)",
        f"{path}:7:13: nodes.replica.prot: unknown key 'prot' (did you mean 'port'?)",
    ]


def test_cli_diff_of_a_valid_file_does_reach_for_docker(tmp_path: Path) -> None:
    """The control for the test above: with a valid file, diff fails on the missing engine instead."""
    path = write(tmp_path, HEAD + "nodes:\n  primary: {}\n")
    done = cli("diff", path, cwd=tmp_path)
    assert done.returncode == 2, done
    assert "cannot reach the Docker engine" in done.stderr
    assert not re.search(r":[0-9]+:[0-9]+: ", done.stderr)


def test_loading_never_imports_the_docker_sdk(tmp_path: Path) -> None:
    good = write(tmp_path, HEAD + "nodes: {primary: {}}\n")
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(BAD_FILES["alias-bomb"])
    code = (
        "import sys\n"
        "from pgtopo.errors import SpecError\n"
        "from pgtopo.loader import load_topology\n"
        f"load_topology({str(good)!r}, {{}})\n"
        "try:\n"
        f"    load_topology({str(bad)!r}, {{}})\n"
        "except SpecError:\n"
        "    pass\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('docker', 'requests', 'psycopg')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=30,
                          env={**os.environ, "DOCKER_HOST": NO_DOCKER})
    assert done.returncode == 0, done.stderr
    assert done.stdout == "[]\n"
