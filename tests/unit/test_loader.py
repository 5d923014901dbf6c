"""The loader: YAML -> Topology, interpolation, and exact `FILE:LINE:COL: message` problems."""

from __future__ import annotations

import contextlib
import signal
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from pgtopo.errors import SpecError
from pgtopo.loader import InterpolationError, interpolate, load_topology, parse_topology
from pgtopo.spec import Topology
from tests.properties import examples

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))

# Five lines; a case's nodes start on line 6.
HEAD = "version: 1\ncluster: pg\nimage: postgres:17\nprimary: primary\nnodes:\n"


def problems(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> list[str]:
    """The problems of `text` written to a file, without the file name prefix."""
    path = tmp_path / "topo.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_topology(path, env or {})
    prefix = f"{path}:"
    assert all(p.startswith(prefix) for p in info.value.problems), info.value.problems
    return [p[len(prefix) :] for p in info.value.problems]


# --- files that load --------------------------------------------------------------------------


def test_seed_example_loads() -> None:
    topo = load_topology(ROOT / "examples" / "seed.yaml", {})
    assert topo.cluster == "pg"
    assert topo.image == "postgres:18"
    assert topo.network_name == "pg_stream"
    assert topo.primary == "primary"
    assert list(topo.nodes) == ["primary", "replica", "replica2"]
    assert topo.upstream_of("replica2") == "replica"
    assert all(node.port is None for node in topo.nodes.values())


def test_there_are_examples() -> None:
    assert {p.name for p in EXAMPLES} >= {"seed.yaml", "cascading.yaml", "params.yaml"}


@pytest.mark.parametrize("env, image", [({}, "postgres:18"), ({"PGTOPO_IMAGE": "pgtopo/pg:16"}, "pgtopo/pg:16")])
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_every_example_loads(example: Path, env: dict[str, str], image: str) -> None:
    topo = load_topology(example, env)
    assert isinstance(topo, Topology)
    assert topo.image == image


def test_env_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGTOPO_IMAGE", "from-environ:1")
    assert load_topology(ROOT / "examples" / "seed.yaml").image == "from-environ:1"
    monkeypatch.delenv("PGTOPO_IMAGE")
    assert load_topology(ROOT / "examples" / "seed.yaml").image == "postgres:18"


def test_schema_modeline_and_plain_values() -> None:
    text = (
        "# yaml-language-server: $schema=../schemas/topology.schema.json\n"
        + HEAD
        + "  primary: {port: 15432}\n  replica: {port: '15433', upstream: primary}\n"
        + "parameters: {shared_buffers: 128MB, max_connections: 0x78, fsync: true, autovacuum_vacuum_scale_factor: 0.5}\n"
    )
    topo = parse_topology(text, "t.yaml", {})
    assert topo.nodes["primary"].port == 15432
    assert topo.nodes["replica"].port == 15433  # pydantic's lax mode
    assert topo.parameters == {"shared_buffers": "128MB", "max_connections": 120, "fsync": True, "autovacuum_vacuum_scale_factor": 0.5}
    assert type(topo.parameters["max_connections"]) is int


def test_anchors_and_merge_keys() -> None:
    text = HEAD + "  primary: &base {parameters: {work_mem: 8MB}}\n  replica:\n    <<: *base\n    upstream: primary\n"
    topo = parse_topology(text, "t.yaml", {})
    assert topo.nodes["replica"].parameters == {"work_mem": "8MB"}
    assert topo.nodes["replica"].upstream == "primary"


# --- interpolation ------------------------------------------------------------------------------

ENV = {"SET": "value", "EMPTY": "", "PORT": "5433"}


@pytest.mark.parametrize(
    "text, expected",
    [
        ("plain", "plain"),
        ("${SET}", "value"),
        ("$SET", "value"),
        ("a-${SET}-b", "a-value-b"),
        ("${UNSET:-fallback}", "fallback"),
        ("${EMPTY:-fallback}", "fallback"),
        ("${SET:-fallback}", "value"),
        ("${UNSET-fallback}", "fallback"),
        ("${EMPTY-fallback}", ""),
        ("${SET-fallback}", "value"),
        ("${UNSET:-postgres:17}", "postgres:17"),
        ("${UNSET:-}", ""),
        ("${UNSET:-${SET}}", "value"),
        ("${SET:-${UNSET}}", "value"),  # an unused default is not expanded
        ("${SET:+alt}", "alt"),
        ("${EMPTY:+alt}", ""),
        ("${UNSET+alt}", ""),
        ("$$", "$"),
        ("$${SET}", "${SET}"),
        ("cost $$5", "cost $5"),
        ("$", "$"),
        ("5$ and $ 6", "5$ and $ 6"),
        ("${SET:?needed}", "value"),
    ],
)
def test_interpolate(text: str, expected: str) -> None:
    assert interpolate(text, ENV) == expected


@pytest.mark.parametrize(
    "text, message",
    [
        ("${UNSET}", "variable UNSET is not set and has no default"),
        ("$UNSET", "variable UNSET is not set and has no default"),
        ("${UNSET:-${ALSO_UNSET}}", "variable ALSO_UNSET is not set and has no default"),
        ("${EMPTY:?give it a value}", "variable EMPTY is not set or empty: give it a value"),
        ("${UNSET?}", "variable UNSET is not set"),
        ("${", "invalid interpolation: '${' must be followed by a variable name (write '$$' for a literal '$')"),
        ("${}", "invalid interpolation: '${' must be followed by a variable name (write '$$' for a literal '$')"),
        ("${1X}", "invalid interpolation: '${' must be followed by a variable name (write '$$' for a literal '$')"),
        ("${SET", "invalid interpolation: unterminated '${SET' (missing '}')"),
        ("${SET:-abc", "invalid interpolation: unterminated '${' (missing '}')"),
        ("${SET:x}", "invalid interpolation: unexpected ':' after '${SET'"),
        ("${SET x}", "invalid interpolation: unexpected ' ' after '${SET'"),
        ("${A:-" * 11 + "}" * 11, "invalid interpolation: nested deeper than 10 levels"),
    ],
)
def test_interpolate_errors(text: str, message: str) -> None:
    with pytest.raises(InterpolationError) as info:
        interpolate(text, ENV)
    assert str(info.value) == message


@pytest.mark.parametrize(
    "image, env, expected",
    [
        ("${PGTOPO_IMAGE:-postgres:17}", {}, "postgres:17"),
        ("${PGTOPO_IMAGE:-postgres:17}", {"PGTOPO_IMAGE": ""}, "postgres:17"),
        ("${PGTOPO_IMAGE-postgres:17}", {}, "postgres:17"),
        ("${PGTOPO_IMAGE:-postgres:17}", {"PGTOPO_IMAGE": "mine:1"}, "mine:1"),
        ("'${REGISTRY}/postgres:${TAG}'", {"REGISTRY": "r.example", "TAG": "16"}, "r.example/postgres:16"),
    ],
)
def test_interpolation_in_a_file(tmp_path: Path, image: str, env: dict[str, str], expected: str) -> None:
    path = tmp_path / "topo.yaml"
    path.write_text(HEAD.replace("postgres:17", image) + "  primary: {}\n")
    assert load_topology(path, env).image == expected


def test_only_values_are_interpolated() -> None:
    text = HEAD + "  primary: {}\nparameters:\n  ${KEY}: $$x\n"
    with pytest.raises(SpecError) as info:
        parse_topology(text, "t.yaml", {"KEY": "work_mem"})
    pattern = "^[a-z_][a-z0-9_]*(\\.[a-z_][a-z0-9_]*)?$"
    assert info.value.problems == [f"t.yaml:8:3: parameters: key '${{KEY}}' must match {pattern}"]


def test_interpolated_port_is_converted() -> None:
    topo = parse_topology(HEAD + "  primary: {port: '${PORT}'}\n", "t.yaml", {"PORT": "6543"})
    assert topo.nodes["primary"].port == 6543


# --- broken files: exact problems -------------------------------------------------------------

BROKEN = [
    pytest.param(
        "version: 1\ncluster: pg\n  image: postgres:17\n",
        ["3:8: mapping values are not allowed here (check the indentation of this line)"],
        id="wrong-indentation",
    ),
    pytest.param(
        "version: 1\nnodes:\n\tprimary: {}\n",
        ["3:1: found character '\\t' that cannot start any token (indent with spaces, not tabs)"],
        id="tab",
    ),
    pytest.param(
        HEAD + "  primary: {upstream: x\n",
        ["7:1: expected ',' or '}', but got '<stream end>' (while parsing a flow mapping at line 6, column 12)"],
        id="unclosed-flow-mapping",
    ),
    pytest.param(
        HEAD + "  primary: {}\n  replica: {upstrem: primary}\n",
        ["7:13: nodes.replica.upstrem: unknown key 'upstrem' (did you mean 'upstream'?)"],
        id="unknown-key",
    ),
    pytest.param(
        HEAD + "  primary: {}\nparamters: {}\n",
        ["7:1: paramters: unknown key 'paramters' (did you mean 'parameters'?)"],
        id="unknown-top-level-key",
    ),
    pytest.param(
        HEAD + "  primary: {}\n  replica: {color: blue}\n",
        ["7:13: nodes.replica.color: unknown key 'color' (expected one of: port, bind, upstream, parameters, sync, sync_priority, delay)"],
        id="unknown-key-no-suggestion",
    ),
    pytest.param(
        HEAD.replace("primary: primary", "primary: main") + "  primary: {}\n  replica: {}\n",
        ["4:1: primary: primary 'main' is not one of the nodes (primary, replica)"],
        id="primary-not-a-node",
    ),
    pytest.param(
        HEAD + "  primary: {}\n  a: {upstream: b}\n  b: {upstream: a}\n",
        [
            "7:7: nodes.a.upstream: upstream cycle: a -> b -> a; a chain must end at the primary",
            "8:7: nodes.b.upstream: upstream cycle: b -> a -> b; a chain must end at the primary",
        ],
        id="upstream-cycle",
    ),
    pytest.param(
        HEAD + "  primary: {}\n  replica: {upstream: ghost}\n",
        ["7:13: nodes.replica.upstream: upstream 'ghost' of node 'replica' is not a node"],
        id="upstream-not-a-node",
    ),
    pytest.param(
        HEAD + "  primary: {}\n  replica:\n    upstream: replica\n",
        ["8:5: nodes.replica.upstream: node 'replica' cannot stream from itself"],
        id="upstream-itself",
    ),
    pytest.param(
        HEAD + "  primary: {port: 5432}\n  replica: {port: 5432}\n",
        ["7:13: nodes.replica.port: host port 5432 is also used by node 'primary'"],
        id="duplicate-host-port",
    ),
    pytest.param(
        HEAD + "  primary: {}\n  replica: {}\n  replica: {}\n",
        ["8:3: duplicate key 'replica' (first defined at line 7)"],
        id="duplicate-key",
    ),
    pytest.param(
        "version: 1\nversion: 1\ncluster: pg\ncluster: pg\n",
        [
            "2:1: duplicate key 'version' (first defined at line 1)",
            "4:1: duplicate key 'cluster' (first defined at line 3)",
        ],
        id="duplicate-keys-all-reported",
    ),
    pytest.param(
        "",
        ["1:1: empty document: expected a mapping with version, cluster, image, primary and nodes"],
        id="empty",
    ),
    pytest.param(
        "# yaml-language-server: $schema=x.json\n\n",
        ["1:1: empty document: expected a mapping with version, cluster, image, primary and nodes"],
        id="only-comments",
    ),
    pytest.param("- primary\n- replica\n", ["1:1: the document must be a mapping (got a list)"], id="list"),
    pytest.param("hello\n", ["1:1: the document must be a mapping (got 'hello')"], id="scalar"),
    pytest.param(
        HEAD + "  primary: {}\n---\nversion: 1\n",
        ["7:1: more than one YAML document (one topology per file)"],
        id="two-documents",
    ),
    pytest.param(
        HEAD.replace("cluster: pg", "cluster: Bad Name") + "  primary: {}\n",
        ["2:10: cluster: must match ^[a-z][a-z0-9-]{0,29}$ (got 'Bad Name')"],
        id="bad-cluster-name",
    ),
    pytest.param(
        HEAD + "  primary: {}\nparameters:\n  primary_conninfo: host=elsewhere\n",
        ["8:3: parameters.primary_conninfo: parameter 'primary_conninfo' is managed by pgtopo and cannot be set"],
        id="managed-parameter",
    ),
    pytest.param(
        HEAD + "  primary: {parameters: {port: 5433}}\n",
        ["6:26: nodes.primary.parameters.port: parameter 'port' is managed by pgtopo and cannot be set"],
        id="managed-node-parameter",
    ),
    pytest.param(
        HEAD + "  primary: {}\n  pgtopo-x: {}\n",
        ["7:3: nodes.pgtopo-x: node name 'pgtopo-x' is reserved (names starting with 'pgtopo')"],
        id="reserved-node-name",
    ),
    pytest.param(
        "# header\ncluster: pg\n",
        [
            "2:1: version: missing required key",
            "2:1: image: missing required key",
            "2:1: primary: missing required key",
            "2:1: nodes: missing required key",
        ],
        id="missing-keys",
    ),
    pytest.param(
        HEAD + "  primary:\n  replica: {}\n",
        ["6:3: nodes.primary: must be a mapping (got null); write {} for an empty mapping"],
        id="node-without-mapping",
    ),
    pytest.param(HEAD.replace("nodes:\n", "nodes: {}\n"), ["5:8: nodes: must not be empty"], id="no-nodes"),
    pytest.param(
        HEAD + "  primary: {port: 70000}\n  replica: {port: abc}\n",
        [
            "6:19: nodes.primary.port: must be <= 65535 (got 70000)",
            "7:19: nodes.replica.port: must be an integer (got 'abc')",
        ],
        id="bad-ports",
    ),
    pytest.param(
        HEAD.replace("version: 1", "version: '1'") + "  primary: {}\n",
        ["1:10: version: must be 1 (got '1')"],
        id="version-as-string",
    ),
    pytest.param(
        HEAD + "  primary: {}\nparameters:\n  work_mem: [8MB]\n  Shared_Buffers: 1\n  search_path: \"a\\x01\"\n",
        [
            "8:13: parameters.work_mem: must be true or false, a number or a string (got a list)",
            "9:3: parameters: key 'Shared_Buffers' must match ^[a-z_][a-z0-9_]*(\\.[a-z_][a-z0-9_]*)?$",
            "10:16: parameters.search_path: must not contain control characters (got 'a\\x01')",
        ],
        id="bad-parameters",
    ),
    pytest.param(
        HEAD + "  primary: {}\nauth:\n  superuser_password: {envv: PGPASS}\n  replication_password: {env: not-a-var}\n",
        [
            "8:23: auth.superuser_password: must be {env: ...} or {file: ...} (got a mapping with keys envv)",
            "9:31: auth.replication_password.env: must match ^[A-Za-z_][A-Za-z0-9_]*$ (got 'not-a-var')",
        ],
        id="bad-secrets",
    ),
    pytest.param(
        HEAD.replace("postgres:17", "${PGTOPO_X}") + "  primary: {}\n",
        ["3:8: image: variable PGTOPO_X is not set and has no default"],
        id="unset-variable",
    ),
    pytest.param(
        HEAD + "  primary: {port: '${PORT'}\n",
        ["6:19: nodes.primary.port: invalid interpolation: unterminated '${PORT' (missing '}')"],
        id="malformed-interpolation",
    ),
    pytest.param(
        "version: 2\ncluster: pg\nimage: ${PGTOPO_X}\nprimary: primary\nnodes:\n  primary: {prot: 1}\n  Replica: {}\n",
        [
            "1:10: version: must be 1 (got 2)",
            "3:8: image: variable PGTOPO_X is not set and has no default",
            "6:13: nodes.primary.prot: unknown key 'prot' (did you mean 'port'?)",
            "7:3: nodes: key 'Replica' must match ^[a-z][a-z0-9-]{0,29}$",
        ],
        id="several-errors",
    ),
    pytest.param(
        HEAD + "  primary: {}\n  a: {upstream: ghost}\n  b: {port: 1}\n  c: {port: 1}\n  pgtopo: {}\n",
        [
            "7:7: nodes.a.upstream: upstream 'ghost' of node 'a' is not a node",
            "9:7: nodes.c.port: host port 1 is also used by node 'b'",
            "10:3: nodes.pgtopo: node name 'pgtopo' is reserved (names starting with 'pgtopo')",
        ],
        id="several-cross-field-errors",
    ),
    pytest.param("a: *nowhere\n", ["1:4: found undefined alias 'nowhere'"], id="undefined-alias"),
    pytest.param(
        "version: !!int one\n",
        ["1:10: cannot construct a value tagged !!int: invalid literal for int() with base 10: 'one'"],
        id="bad-tag",
    ),
    pytest.param(
        "a: \x01\n",
        ["1:4: unacceptable character #x0001: special characters are not allowed"],
        id="control-character",
    ),
]


@pytest.mark.parametrize("text, expected", BROKEN)
def test_broken_files(tmp_path: Path, text: str, expected: list[str]) -> None:
    assert problems(tmp_path, text) == expected


# --- hostile and unreadable files -------------------------------------------------------------


def billion_laughs() -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    return "\n".join(lines) + "\n"


def merge_bomb() -> str:
    lines = ["m0: &m0 {k: lol}"]
    lines += [f"m{i}: &m{i} {{<<: *m{i - 1}, x{i}: *m{i - 1}, y{i}: *m{i - 1}}}" for i in range(1, 40)]
    return "\n".join(lines) + "\n"


def _hung(*_: object) -> None:
    raise AssertionError("still loading after 60 s: the loader blew up")


@pytest.mark.parametrize(
    "text, expected",
    [
        (billion_laughs(), "too many nodes: more than 10000 after expanding aliases"),
        (merge_bomb(), "too many nodes: more than 10000 after expanding aliases"),
        ("a: " + "[" * 100_000 + "]" * 100_000 + "\n", "nested deeper than 50 levels"),
        ("".join(" " * i + f"k{i}:\n" for i in range(100)) + " " * 100 + "v\n", "nested deeper than 50 levels"),
        ("a0: &a0 [x]\n" + "".join(f"a{i}: &a{i} [*a{i - 1}]\n" for i in range(1, 60)), "nested deeper than 50 levels"),
        ("".join(f"k{i}: {i}\n" for i in range(20_000)), "too many nodes: more than 10000"),
    ],
    ids=["billion-laughs", "merge-keys", "deep-flow", "deep-block", "deep-aliases", "wide"],
)
def test_bombs_are_refused_quickly(tmp_path: Path, text: str, expected: str) -> None:
    signal.signal(signal.SIGALRM, _hung)  # an exponential blow-up takes minutes: fail it, do not wait
    signal.alarm(60)
    try:
        found = problems(tmp_path, text)
    finally:
        signal.alarm(0)
    assert len(found) == 1
    assert found[0].split(": ", 1)[1] == expected


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(SpecError) as info:
        load_topology(path, {})
    assert info.value.problems == [f"{path}: cannot read: No such file or directory"]


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_topology(tmp_path, {})
    assert info.value.problems == [f"{tmp_path}: cannot read: Is a directory"]


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"cluster: caf\xe9\n")
    with pytest.raises(SpecError) as info:
        load_topology(path, {})
    assert info.value.problems == [f"{path}: cannot read: not UTF-8 (byte 0xe9 at offset 12)"]


def test_too_large(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"#" * (1 << 20) + b"\n")
    with pytest.raises(SpecError) as info:
        load_topology(path, {})
    assert info.value.problems == [f"{path}: cannot read: larger than 1048576 bytes"]


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + (HEAD + "  primary: {}\n").encode())
    assert load_topology(path, {}).cluster == "pg"


def test_spec_error_message_is_all_problems() -> None:
    with pytest.raises(SpecError) as info:
        parse_topology("version: 2\ncluster: X\n", "f.yaml", {})
    assert str(info.value) == "\n".join(info.value.problems)
    assert info.value.exit_code == 2


# --- nothing but SpecError escapes ------------------------------------------------------------

YAML_TOKENS = list("ab:-[]{},&*!|>'\"#\n\t $%@`?~01.") + ["  ", "${", "<<", "---", "version: 1\n", "nodes:\n"]
YAMLISH = st.lists(st.sampled_from(YAML_TOKENS), max_size=60).map("".join)


@settings(max_examples=examples(300))
@given(YAMLISH)
def test_any_text_gives_a_topology_or_a_spec_error(text: str) -> None:
    try:
        parse_topology(text, "f.yaml", {"a": "1"})
    except SpecError as exc:
        assert exc.problems and all(p.startswith("f.yaml:") for p in exc.problems)


@settings(max_examples=examples(300))
@given(st.text(alphabet=st.sampled_from(list("${}:-+?AB_ 1")), max_size=30))
def test_interpolate_returns_text_or_raises_interpolation_error(text: str) -> None:
    with contextlib.suppress(InterpolationError):
        assert isinstance(interpolate(text, {"A": "x", "B": ""}), str)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("${A:-" * 10 + "deep" + "}" * 10, "deep"),  # ten levels are allowed; eleven are not (above)
        ("${UNSET:-d}!", "d!"),
        ("${SET:+r}!", "r!"),
        ("${SET:+r}${SET}", "rvalue"),
        ("${UNSET:+${ALSO_UNSET}}", ""),  # not taken: the unset variable inside is never read
    ],
)
def test_interpolation_goes_on_right_after_each_closing_brace(text: str, expected: str) -> None:
    assert interpolate(text, ENV) == expected


def test_the_replacement_of_a_set_variable_is_expanded_and_checked() -> None:
    with pytest.raises(InterpolationError) as info:
        interpolate("${SET:+${ALSO_UNSET}}", ENV)
    assert str(info.value) == "variable ALSO_UNSET is not set and has no default"


def test_a_primary_with_an_upstream_is_refused_at_that_key() -> None:
    text = "version: 1\ncluster: pg\nimage: postgres:17\nprimary: main\nnodes:\n  main: {upstream: r1}\n  r1: {}\n"
    with pytest.raises(SpecError) as info:
        parse_topology(text, "t.yaml", {})
    assert info.value.problems == ["t.yaml:6:10: nodes.main.upstream: the primary 'main' cannot have an upstream"]
