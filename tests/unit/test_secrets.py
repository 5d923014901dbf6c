"""Secrets in the file: `{file: PATH}` reads only a small regular file, a password is one line,
and a value interpolated from the environment is never echoed in an error message."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from pgtopo.errors import SpecError
from pgtopo.loader import parse_topology
from pgtopo.spec import Topology
from pgtopo.state import MAX_SECRET_BYTES, desired_passwords

SECRET = "s3cret-Password-from-the-environment"


def topo_with(superuser_password: dict) -> Topology:
    return Topology.model_validate({
        "version": 1, "cluster": "pg", "image": "postgres:17", "primary": "primary", "nodes": {"primary": {}},
        "auth": {"superuser_password": superuser_password},
    })


def problem(tmp_path: Path, ref: dict, env: dict[str, str] | None = None) -> str:
    with pytest.raises(SpecError) as info:
        desired_passwords(topo_with(ref), tmp_path, env or {})
    [text] = info.value.problems
    return text


def test_a_regular_file_is_read(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("  one-line-password\n")
    assert desired_passwords(topo_with({"file": "pw"}), tmp_path, {}) == ("one-line-password", None)


def test_a_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    text = problem(tmp_path, {"file": "dir"})
    assert text.startswith("auth.superuser_password: ") and "regular file" in text, text


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(problem(tmp_path, {"file": "fifo"})), daemon=True)
    reader.start()
    reader.join(timeout=5)
    assert not reader.is_alive(), "reading a FIFO secret blocked"
    assert "is not a regular file" in result[0] and "point auth.superuser_password at a regular file" in result[0]


def test_a_device_is_refused(tmp_path: Path) -> None:
    text = problem(tmp_path, {"file": "/dev/zero"})
    assert "/dev/zero is not a regular file" in text, text


def test_a_large_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "big").write_bytes(b"x" * (MAX_SECRET_BYTES + 1))
    assert f"larger than {MAX_SECRET_BYTES} bytes" in problem(tmp_path, {"file": "big"})
    (tmp_path / "limit").write_bytes(b"x" * MAX_SECRET_BYTES)
    assert desired_passwords(topo_with({"file": "limit"}), tmp_path, {})[0] == "x" * MAX_SECRET_BYTES


def test_a_missing_file_says_what_to_do(tmp_path: Path) -> None:
    text = problem(tmp_path, {"file": "absent"})
    assert "No such file or directory" in text and "regular file" in text, text


@pytest.mark.parametrize("content", ["first\nsecond", "tab\there", "nul\x00byte"])
def test_a_password_is_one_line_of_printable_characters(tmp_path: Path, content: str) -> None:
    (tmp_path / "pw").write_text(content)
    text = problem(tmp_path, {"file": "pw"})
    assert "one line of printable characters" in text and content not in text
    text = problem(tmp_path, {"env": "PW"}, {"PW": content})
    assert "environment variable PW" in text and content not in text


def test_an_env_secret_is_never_shown(tmp_path: Path) -> None:
    assert SECRET not in problem(tmp_path, {"env": "PW"}, {"PW": SECRET + "\n"})


HEAD = "version: 1\ncluster: pg\nprimary: primary\nnodes: {primary: {}}\n"


@pytest.mark.parametrize("line", [
    "image: ${X}",  # fails the image pattern
    "image: postgres:17\nauth: {superuser_password: '${X}'}",  # a union: must be {env:} or {file:}
    "image: postgres:17\nauth: {replication_user: '${X}'}",
    "image: postgres:17\nnetwork: ${X}",
    "image: postgres:17\nparameters: {work_mem: '${X}${X}${X}'}",  # too long for a parameter
])
def test_an_interpolated_value_is_not_echoed_in_errors(line: str) -> None:
    secret = SECRET + "/;" + "y" * 340
    with pytest.raises(SpecError) as info:
        parse_topology(HEAD + line + "\n", "t.yaml", {"X": secret})
    text = str(info.value)
    assert text.startswith("t.yaml:"), text
    for piece in (secret, secret[:37], SECRET[:12]):
        assert piece not in text, text
    assert "the value of '${X}" in text or "must be at most" in text, text
