"""The cluster lock's control flow against an autospec'd Docker API (milliseconds, no engine):
a stale lock is judged by the engine's clock, and engine errors end as DockerError with a hint."""

from __future__ import annotations

from types import SimpleNamespace
from unittest.mock import create_autospec

import docker
import pytest
import requests
from docker.errors import APIError

from pgtopo import labels as L, lock
from pgtopo.errors import DockerError

CLUSTER = "pg"
NAME = f"{CLUSTER}-pgtopo-lock"


def client_with(**api_behaviour) -> SimpleNamespace:
    api = create_autospec(docker.APIClient, instance=True)
    api.create_host_config.return_value = {}
    for name, value in api_behaviour.items():
        setattr(getattr(api, name), "side_effect" if isinstance(value, BaseException) or callable(value)
                else "return_value", value)
    return SimpleNamespace(api=api)


def conflict() -> APIError:
    return APIError("Conflict", response=SimpleNamespace(status_code=409, reason="Conflict", url="", text=""))


def created_lock(created: str) -> dict:
    return {"State": {"Status": "created"}, "Config": {"Labels": {L.CLUSTER: CLUSTER}}, "Created": created}


@pytest.mark.parametrize("engine_now, created, removed", [
    ("2030-01-01T00:00:10.5Z", "2030-01-01T00:00:00.000000001Z", False),   # 10 s old by the engine's clock
    ("2030-01-01T00:00:31Z", "2030-01-01T00:00:00.5Z", True),              # 30.5 s old
    ("2030-01-01T02:00:40+02:00", "2030-01-01T00:00:00Z", True),           # the engine reports local time
    ("2000-01-01T00:00:40Z", "2000-01-01T00:00:00Z", True),                # this machine's clock is 30 years on
])
def test_a_created_lock_is_stale_by_the_engine_s_clock(engine_now: str, created: str, removed: bool) -> None:
    client = client_with(create_container=conflict(), inspect_container=created_lock(created),
                         info={"SystemTime": engine_now})
    assert lock._try_acquire(client, NAME, "img", CLUSTER) is None
    if removed:
        client.api.remove_container.assert_called_once_with(NAME, force=False)
    else:
        client.api.remove_container.assert_not_called()


def test_a_fresh_lock_is_kept_whatever_this_machine_s_clock_says() -> None:
    """The engine made the lock a second ago; this machine's clock is far ahead of the engine's."""
    client = client_with(create_container=conflict(), inspect_container=created_lock("1999-12-31T23:59:59Z"),
                         info={"SystemTime": "2000-01-01T00:00:00Z"})
    lock._try_acquire(client, NAME, "img", CLUSTER)
    client.api.remove_container.assert_not_called()


def test_an_odd_engine_time_never_removes_the_lock() -> None:
    client = client_with(create_container=conflict(), inspect_container=created_lock("2000-01-01T00:00:00Z"),
                         info={"SystemTime": "yesterday"})
    assert lock._try_acquire(client, NAME, "img", CLUSTER) is None
    client.api.remove_container.assert_not_called()


ENGINE_GONE = requests.exceptions.ConnectionError("('Connection aborted.', FileNotFoundError(2, 'No such file'))")


@pytest.mark.parametrize("where", ["create_container", "inspect_container", "info", "remove_container"])
def test_the_engine_going_away_while_taking_the_lock_is_a_docker_error(where: str) -> None:
    behaviour = {"create_container": conflict(), "inspect_container": created_lock("2000-01-01T00:00:00Z"),
                 "info": {"SystemTime": "2000-01-01T00:01:00Z"}, where: ENGINE_GONE}
    client = client_with(**behaviour)
    with pytest.raises(DockerError) as info, lock.cluster_lock(client, CLUSTER, "img", timeout=0):
        pass
    assert "Docker failed to" in info.value.message and "Connection aborted" in info.value.message
    assert info.value.hint and "Docker engine" in info.value.hint


def test_an_engine_error_creating_the_lock_names_it() -> None:
    error = APIError("boom", response=SimpleNamespace(status_code=500, reason="Server Error", url="", text=""))
    client = client_with(create_container=error)
    with pytest.raises(DockerError) as info, lock.cluster_lock(client, CLUSTER, "img", timeout=0):
        pass
    assert f"create the lock container {NAME}" in info.value.message


def test_the_engine_going_away_while_the_lock_is_held_reports_the_first_error() -> None:
    """The block fails because the engine went away; releasing the lock then fails too: the user
    sees the block's error, not the release's, and no traceback."""
    client = client_with(create_container={"Id": "abc"}, attach_socket=ENGINE_GONE, start=ENGINE_GONE,
                         remove_container=ENGINE_GONE)
    with pytest.raises(DockerError) as info, lock.cluster_lock(client, CLUSTER, "img", timeout=0) as held:
        held.confirm()
    assert f"start the lock container {NAME}" in info.value.message, info.value.message


def test_a_clean_release_after_a_successful_block() -> None:
    client = client_with(create_container={"Id": "abc"})
    with lock.cluster_lock(client, CLUSTER, "img", timeout=0, arm=False):
        pass
    client.api.remove_container.assert_called_once_with("abc", force=True, v=True)
