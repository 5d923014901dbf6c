"""The state volume's files (pgtopo/state.py): what encode writes, decode reads back, and the trip
through the engine's tar archives (an autospec'd Docker API, no engine).  A wrong byte here locks
every node out of replication, or offers a password to a host of another cluster."""

from __future__ import annotations

import io
import tarfile
from types import SimpleNamespace
from unittest.mock import create_autospec

import docker
import pytest
from docker.errors import APIError, NotFound

from pgtopo import labels as L, state
from pgtopo.errors import DockerError
from pgtopo.state import ClusterState, decode, encode

SYSID = 7000000000000000001


@pytest.mark.parametrize("value", [
    ClusterState("su", "rep"),
    ClusterState("su", "rep", system_identifier=SYSID, hosts=("pg-primary", "pg-replica")),
    ClusterState("a:b\\c", "x\\:y", system_identifier=1, hosts=("pg-primary",)),
    ClusterState(state.generate_password(), state.generate_password(), SYSID, ("pg-a",)),
])
def test_decode_reads_back_what_encode_wrote(value: ClusterState) -> None:
    assert decode(encode(value, "repuser")) == value


def test_pgpass_has_a_line_per_host_and_user_with_its_password_escaped() -> None:
    files = encode(ClusterState("p:w\\1", "rep", hosts=("pg-primary", "pg-replica")), "repuser")
    assert files[state.PGPASS_FILE].decode().splitlines() == [
        "pg-primary:5432:*:postgres:p\\:w\\\\1",
        "pg-primary:5432:*:repuser:rep",
        "pg-replica:5432:*:postgres:p\\:w\\\\1",
        "pg-replica:5432:*:repuser:rep",
    ]
    assert files[state.SUPERUSER_FILE] == b"p:w\\1"  # the plain files are not escaped


def test_without_known_hosts_pgpass_is_for_any_host_and_reads_back_as_none() -> None:
    files = encode(ClusterState("su", "rep"), "repuser")
    assert files[state.PGPASS_FILE] == b"*:5432:*:postgres:su\n*:5432:*:repuser:rep\n"
    assert decode(files).hosts == ()


def test_a_wildcard_line_among_named_hosts_means_any_host() -> None:
    files = {state.SUPERUSER_FILE: b"su", state.REPLICATION_FILE: b"rep",
             state.PGPASS_FILE: b"# comment\n\npg-b:5432:*:postgres:su\n*:5432:*:repuser:rep\npg-a:5432:*:x:y\n"}
    assert decode(files).hosts == ()
    files[state.PGPASS_FILE] = b"pg-b:5432:*:postgres:su\npg-a:5432:*:repuser:rep\npg-b:5432:*:repuser:rep\n"
    assert decode(files).hosts == ("pg-a", "pg-b")


def test_the_system_identifier_file_is_always_written_empty_until_known() -> None:
    assert encode(ClusterState("su", "rep"), "r")[state.SYSID_FILE] == b""
    assert encode(ClusterState("su", "rep", SYSID), "r")[state.SYSID_FILE] == str(SYSID).encode()
    assert decode(encode(ClusterState("su", "rep"), "r")).system_identifier is None


@pytest.mark.parametrize("missing", [state.SUPERUSER_FILE, state.REPLICATION_FILE])
@pytest.mark.parametrize("how", ["absent", "empty"])
def test_no_state_until_both_passwords_are_there(missing: str, how: str) -> None:
    files = encode(ClusterState("su", "rep", SYSID), "r")
    if how == "absent":
        del files[missing]
    else:
        files[missing] = b""
    assert decode(files) is None
    assert decode({}) is None


def test_no_secret_in_repr_and_generated_passwords_need_no_escaping() -> None:
    value = ClusterState("super-secret", "repl-secret", SYSID)
    assert "secret" not in repr(value) and "secret" not in str(value)
    passwords = {state.generate_password() for _ in range(50)}
    assert len(passwords) == 50
    assert all(len(p) == 32 and ":" not in p and "\\" not in p for p in passwords)


# -- through the engine's archives ------------------------------------------------------------------

def tar_of(files: dict[str, bytes], directory: str | None = None) -> bytes:
    """A tar stream as the engine's get_archive gives it (a directory comes with its name first)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        if directory is not None:
            info = tarfile.TarInfo(directory)
            info.type = tarfile.DIRTYPE
            tar.addfile(info)
        for name, content in files.items():
            info = tarfile.TarInfo(f"{directory}/{name}" if directory else name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def engine():
    client = create_autospec(docker.DockerClient, instance=True)
    client.api = create_autospec(docker.APIClient, instance=True)
    client.api.create_host_config.return_value = {}
    client.api.create_container.return_value = {"Id": "helper-id"}
    return client


def test_read_from_a_container_decodes_the_mounted_directory() -> None:
    value = ClusterState("su", "rep", SYSID, ("pg-primary",))
    client = engine()
    client.api.get_archive.return_value = (iter([tar_of(encode(value, "repuser"), "pgtopo")]), {})
    assert state.read_from(client, "pg-primary") == value
    client.api.get_archive.assert_called_once_with("pg-primary", L.STATE_MOUNT)


def test_a_missing_state_directory_reads_as_no_state() -> None:
    client = engine()
    client.api.get_archive.side_effect = NotFound("no such file")
    assert state.read_from(client, "pg-primary") is None


PASSWD = b"root:x:0:0::/root:/bin/sh\npostgres:x:999:998::/var/lib/postgresql:/bin/sh\n"


def test_write_puts_0600_files_owned_by_the_image_s_postgres_user_then_removes_its_helper() -> None:
    client = engine()
    client.api.get_archive.return_value = (iter([tar_of({"passwd": PASSWD})]), {})
    value = ClusterState("su", "rep", SYSID, ("pg-primary",))
    state.write(client, "img", "pg-pgtopo-state", "pg", value, "repuser")
    [call] = client.api.put_archive.call_args_list
    container, directory, data = call.args
    assert (container, directory) == ("helper-id", L.STATE_MOUNT)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name: m for m in tar.getmembers()}
        written = {name: tar.extractfile(m).read() for name, m in members.items()}
    assert written == encode(value, "repuser")
    assert {(m.mode, m.uid, m.gid) for m in members.values()} == {(0o600, 999, 998)}
    client.api.remove_container.assert_called_once_with("helper-id", force=True, v=True)


def test_an_image_without_a_postgres_user_writes_nothing_and_leaves_no_helper() -> None:
    client = engine()
    client.api.get_archive.return_value = (iter([tar_of({"passwd": b"root:x:0:0::/root:/bin/sh\n"})]), {})
    with pytest.raises(DockerError, match="has no 'postgres' user"):
        state.write(client, "img", "pg-pgtopo-state", "pg", ClusterState("su", "rep"), "repuser")
    client.api.put_archive.assert_not_called()
    client.api.remove_container.assert_called_once_with("helper-id", force=True, v=True)


def test_a_failed_write_leaves_no_helper() -> None:
    client = engine()
    client.api.get_archive.return_value = (iter([tar_of({"passwd": PASSWD})]), {})
    client.api.put_archive.side_effect = APIError(
        "no space left on device", response=SimpleNamespace(status_code=500, reason="Server Error", url="", text=""))
    with pytest.raises(DockerError, match="write files into helper-id"):
        state.write(client, "img", "pg-pgtopo-state", "pg", ClusterState("su", "rep"), "repuser")
    client.api.remove_container.assert_called_once_with("helper-id", force=True, v=True)
