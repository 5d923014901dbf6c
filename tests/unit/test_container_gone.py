"""Reading a volume's files must never harm them nor misread them: Docker's 404 for a missing
container must never read as "no such file" (an old primary's volume misread as empty was cloned
into, and its data started as a second writer, in a chaos run), and files are copied only out of
pgtopo's own read-only helpers (a copy out of a node's container can get its volume emptied)."""

from __future__ import annotations

from unittest import mock

import docker
import pytest
from docker.errors import NotFound

from pgtopo import docker_ops, observe
from pgtopo.observed import VolumeFacts


def client(archive_error: Exception, inspect_error: Exception | None) -> mock.MagicMock:
    engine = mock.create_autospec(docker.DockerClient, instance=True)
    engine.api = mock.create_autospec(docker.APIClient, instance=True)
    engine.api.get_archive.side_effect = archive_error
    if inspect_error is not None:
        engine.api.inspect_container.side_effect = inspect_error
    else:
        engine.api.inspect_container.return_value = {"Id": "abc", "State": {"Status": "running"}}
    return engine


def test_a_missing_file_in_a_present_container_is_none() -> None:
    engine = client(NotFound("Could not find the file /x in container abc"), None)
    assert docker_ops.read_file(engine, "abc", "/x") is None


def test_a_container_removed_meanwhile_is_container_gone_not_an_empty_file() -> None:
    engine = client(NotFound("No such container: abc"), NotFound("No such container: abc"))
    with pytest.raises(docker_ops.ContainerGone, match="container abc was removed while pgtopo read /x"):
        docker_ops.read_file(engine, "abc", "/x")


def test_a_stopped_node_s_volume_is_read_only_through_a_read_only_helper(monkeypatch: pytest.MonkeyPatch) -> None:
    """Docker 20.10 empties a volume mounted read-write in a container removed (docker rm -f) while
    a copy out of that container runs (reproduced: 1 of 30 tries; a chaos run lost a primary's
    data that way, then cloned into the empty volume).  Observation never copies out of a node's
    container: only out of a helper it made, whose mount is read-only."""
    engine = client(NotFound("Could not find the file"), None)
    engine.api.create_container.return_value = {"Id": "helper-1"}
    observe._read_data(engine, "img", VolumeFacts("pg-replica3-data", {"io.pgtopo.cluster": "pg"}))
    assert {c.args[0] for c in engine.api.get_archive.call_args_list} == {"helper-1"}
    mounts = engine.api.create_host_config.call_args.kwargs["mounts"]
    assert [(m["Source"], m["ReadOnly"]) for m in mounts] == [("pg-replica3-data", True)]


def test_the_state_is_read_in_a_running_node_container_by_a_process_not_copied_out() -> None:
    engine = client(NotFound("never called"), None)
    engine.api.exec_create.return_value = {"Id": "exec-1"}
    engine.api.exec_start.return_value = (b"", b"tar: not a tar")
    engine.api.inspect_container.return_value = {"Config": {"Labels": {"io.pgtopo.cluster": "pg"}}}
    assert observe._state_in(engine, "pg-primary", "pg") is None  # unreadable: the caller uses a helper
    engine.api.exec_create.assert_called_once()
    engine.api.get_archive.assert_not_called()


def test_nothing_runs_in_a_look_alike_container_without_the_cluster_s_label() -> None:
    engine = client(NotFound("never called"), None)
    engine.api.inspect_container.return_value = {"Config": {"Labels": {}}}
    assert observe._state_in(engine, "pg-primary", "pg") is None
    engine.api.exec_create.assert_not_called()
