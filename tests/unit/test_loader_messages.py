"""What the loader says about a wrong value: the demand, in words, and what the file holds instead
(`must be ... (got ...)`), one exact `FILE:LINE:COL: message` per problem."""

from __future__ import annotations

import pytest

from pgtopo.errors import SpecError
from pgtopo.loader import parse_topology

# Five lines; a case's nodes start on line 6, what follows them on line 7.
HEAD = "version: 1\ncluster: pg\nimage: postgres:17\nprimary: primary\nnodes:\n"


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_topology(text, "t.yaml", {})
    return info.value.problems


def with_cluster(value: str) -> str:
    """A file whose only fault is the value of `cluster:` (line 2, the value at column 10)."""
    return HEAD.replace("cluster: pg", f"cluster: {value}") + "  primary: {}\n"


# --- (got ...): what the file holds, in a few words ---------------------------------------------


@pytest.mark.parametrize(
    "value, got",
    [
        ("true", "true"),
        ("false", "false"),
        ("{a: 1, b: 2}", "a mapping with keys a, b"),
        ("{a: 1, b: 2, c: 3, d: 4, e: 5}", "a mapping with keys a, b, c, d, e"),
        ("{a: 1, b: 2, c: 3, d: 4, e: 5, f: 6}", "a mapping"),
        ("{}", "an empty mapping"),
        ("[a]", "a list"),
        (str(2**127), str(2**127)),  # 128 bits: still printed
        (str(2**128), "an integer of 129 bits"),
    ],
    ids=["true", "false", "two-keys", "five-keys", "six-keys", "empty-mapping", "list", "128-bits", "129-bits"],
)
def test_what_the_file_holds_instead_of_a_string(value: str, got: str) -> None:
    assert problems(with_cluster(value)) == [f"t.yaml:2:10: cluster: must be a string (got {got})"]


def test_a_null_string_is_not_told_to_write_an_empty_mapping() -> None:
    assert problems(HEAD.replace("cluster: pg", "cluster:") + "  primary: {}\n") == [
        "t.yaml:2:1: cluster: must be a string (got null)"
    ]


@pytest.mark.parametrize(
    "name, got",
    [("A" * 40, "'" + "A" * 40 + "'"), ("A" * 41, "'" + "A" * 37 + "...'")],
    ids=["40-shown-whole", "41-cut"],
)
def test_a_string_longer_than_forty_characters_is_cut(name: str, got: str) -> None:
    assert problems(with_cluster(name)) == [f"t.yaml:2:10: cluster: must match ^[a-z][a-z0-9-]{{0,29}}$ (got {got})"]


# --- the demand, in words -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "tail, expected",
    [
        pytest.param("  primary: {sync: 3}\n", "6:19: nodes.primary.sync: must be true or false (got 3)", id="bool"),
        pytest.param(
            "  primary: {}\nswitchover: {timeout_seconds: abc}\n",
            "7:31: switchover.timeout_seconds: must be a number (got 'abc')",
            id="float",
        ),
        pytest.param(
            "  primary: {}\nswitchover: {timeout_seconds: 0}\n",
            "7:31: switchover.timeout_seconds: must be > 0.0 (got 0)",
            id="greater-than",
        ),
        pytest.param(
            "  primary: {}\nswitchover: {max_lag_bytes: 1.5}\n",
            "7:29: switchover.max_lag_bytes: must be an integer (got 1.5)",
            id="int",
        ),
        pytest.param(
            "  primary: {}\nauth:\n  superuser_password: {file: ''}\n",
            "8:30: auth.superuser_password.file: must not be empty (got '')",
            id="empty-string",
        ),
        pytest.param(
            "  primary: {}\nauth:\n  superuser_password: {file: '" + "f" * 4097 + "'}\n",
            "8:30: auth.superuser_password.file: must be at most 4096 characters",  # no (got ...): it is long
            id="string-too-long",
        ),
        pytest.param(
            "  primary: hello\n", "6:12: nodes.primary: must be a mapping (got 'hello')", id="mapping"
        ),
        pytest.param(
            "  primary: {}\nparameters:\n",
            "7:1: parameters: must be a mapping (got null); write {} for an empty mapping",
            id="null-dict",
        ),
        pytest.param(
            "  primary: {}\nsynchronous:\n  number: 0\n", "8:11: synchronous.number: must be >= 1 (got 0)", id="ge"
        ),
    ],
)
def test_what_a_value_must_be(tail: str, expected: str) -> None:
    assert problems(HEAD + tail) == [f"t.yaml:{expected}"]


@pytest.mark.parametrize(
    "tail, expected",
    [
        pytest.param(
            "  primary: {parameters: {Work_Mem: 1}}\n",
            "6:26: nodes.primary.parameters: key 'Work_Mem' must match ^[a-z_][a-z0-9_]*(\\.[a-z_][a-z0-9_]*)?$",
            id="flow",
        ),
        pytest.param(
            "  primary: {}\n  replica:\n    parameters:\n      Work_Mem: 1\n",
            "9:7: nodes.replica.parameters: key 'Work_Mem' must match ^[a-z_][a-z0-9_]*(\\.[a-z_][a-z0-9_]*)?$",
            id="block",
        ),
    ],
)
def test_a_bad_key_deep_in_the_file_names_its_whole_mapping_and_the_key(tail: str, expected: str) -> None:
    assert problems(HEAD + tail) == [f"t.yaml:{expected}"]


# --- a value that fits none of the shapes a key accepts ----------------------------------------


@pytest.mark.parametrize(
    "tail, expected",
    [
        pytest.param(
            "  primary: {}\npooler: {image: 'pgbouncer:1', parameters: {max_client_conn: x}}\n",
            "7:62: pooler.parameters.max_client_conn: must be true or false or a number (got 'x')",
            id="pooler-setting",
        ),
        pytest.param(
            "  primary: {}\nparameters:\n  work_mem: {a: 1}\n",
            "8:13: parameters.work_mem: must be true or false, a number or a string (got a mapping with keys a)",
            id="parameter",
        ),
        pytest.param(
            "  primary: {}\nauth:\n  superuser_password: {}\n",
            "8:23: auth.superuser_password: must be {env: ...} or {file: ...} (got an empty mapping)",
            id="secret-empty",
        ),
        pytest.param(
            "  primary: {}\nauth:\n  superuser_password: {env: X, extra: 1}\n",
            "8:23: auth.superuser_password: must be {env: ...} or {file: ...} (got a mapping with keys env, extra)",
            id="secret-extra-key",
        ),
    ],
)
def test_a_value_of_no_accepted_shape_lists_the_shapes(tail: str, expected: str) -> None:
    assert problems(HEAD + tail) == [f"t.yaml:{expected}"]


def test_a_list_item_of_the_wrong_type_is_named_and_pointed_at_as_the_item() -> None:
    """Not the list: `in_roles: [app2, {a: 1}]` is wrong in its item 1, at that item."""
    assert problems(HEAD + "  primary: {}\nroles:\n  app: {in_roles: [5]}\n") == [
        "t.yaml:8:20: roles.app.in_roles.0: must be a string (got 5)"]
    assert problems(HEAD + "  primary: {}\nroles:\n  app: {in_roles: [app2, {a: 1}]}\n") == [
        "t.yaml:8:26: roles.app.in_roles.1: must be a string (got a mapping with keys a)"]
