"""A container removed while pgtopo reads from it says nothing about the files in it: Docker's 404
for a missing container must never read as "no such file" (an old primary's volume misread as
empty was cloned into, and its data started as a second writer, in a chaos run)."""

from __future__ import annotations

from unittest import mock

import docker
import pytest
from docker.errors import NotFound

from pgtopo import docker_ops, observe
from pgtopo.observed import ContainerFacts, VolumeFacts


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


def test_observation_reads_the_volume_itself_when_the_container_went_away(monkeypatch: pytest.MonkeyPatch) -> None:
    """The volume of a container removed mid-observation is read through a helper, not taken as empty."""
    gone = docker_ops.ContainerGone("container c1 was removed while pgtopo read ...")
    calls: list[str] = []

    def facts(_client: object, container: str) -> object:
        calls.append(container)
        if container == "c1":
            raise gone
        return "data read through the helper"

    class Helper:
        def __enter__(self) -> str:
            return "helper-1"

        def __exit__(self, *_: object) -> None:
            return None

    monkeypatch.setattr(observe, "_data_facts", facts)
    monkeypatch.setattr(docker_ops, "helper", lambda *a, **k: Helper())
    container = mock.Mock(spec=ContainerFacts, id="c1")
    volume = VolumeFacts("pg-replica3-data", {"io.pgtopo.cluster": "pg"})
    assert observe._read_data(mock.Mock(), "img", container, volume) == "data read through the helper"
    assert calls == ["c1", "helper-1"]
