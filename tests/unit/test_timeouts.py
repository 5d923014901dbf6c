"""Nothing waits forever: every Postgres session pgtopo opens carries a statement timeout, TCP
keepalives and a TCP user timeout; one-shot jobs have no fixed cap but stop when asked to.
(A fake psycopg.connect and an autospec'd Docker API: the control flow, in milliseconds.)"""

from __future__ import annotations

import inspect
import time
from types import SimpleNamespace
from unittest.mock import create_autospec

import docker
import psycopg
import pytest
import requests
from urllib3.exceptions import ReadTimeoutError

from pgtopo import docker_ops, pg_ops, waits
from pgtopo.containers import ContainerSpec
from pgtopo.errors import DockerError

EP = pg_ops.Endpoint("primary", 5432, "pw")


class FakeConnection:
    def __init__(self) -> None:
        self.statements: list[str] = []

    def __enter__(self) -> "FakeConnection":
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def fileno(self) -> int:  # pgtopo's own deadline (pg_ops.Watchdog) watches the socket
        return -1

    def execute(self, query, params=None):
        self.statements.append(query.as_string(None) if hasattr(query, "as_string") else query)
        return SimpleNamespace(fetchone=lambda: (1,))


@pytest.fixture
def sessions(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """Every psycopg.connect call's keyword arguments."""
    calls: list[dict] = []

    def fake_connect(**kwargs):
        calls.append(kwargs)
        return FakeConnection()

    monkeypatch.setattr(psycopg, "connect", fake_connect)
    return calls


def assert_bounded(kwargs: dict) -> None:
    assert "-c statement_timeout=30000" in kwargs["options"], kwargs
    assert kwargs["keepalives"] == 1 and kwargs["keepalives_idle"] > 0, kwargs
    assert kwargs["keepalives_interval"] > 0 and kwargs["keepalives_count"] > 0, kwargs
    assert kwargs["tcp_user_timeout"] > 0 and kwargs["connect_timeout"] >= 1, kwargs


def test_every_session_is_bounded(sessions: list[dict]) -> None:
    pg_ops.connect(EP)
    pg_ops.wait_ready(EP, time.monotonic() + 5)
    pg_ops.run(EP, lambda conn: conn.execute("SELECT 1"), "a query")
    assert len(sessions) == 3
    for kwargs in sessions:
        assert_bounded(kwargs)


def test_checkpoint_says_how_long_it_may_take(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = FakeConnection()
    monkeypatch.setattr(pg_ops, "connect", lambda ep, timeout=3.0: conn)
    pg_ops.checkpoint(EP)
    assert conn.statements == [f"SET statement_timeout = {int(pg_ops.CHECKPOINT_TIMEOUT * 1000)}", "CHECKPOINT"]


def timed_out() -> requests.exceptions.ConnectionError:
    """What docker-py raises over a unix socket when a wait's read times out."""
    return requests.exceptions.ConnectionError(ReadTimeoutError(None, None, "Read timed out."))


def job_client(waits: list) -> SimpleNamespace:
    api = create_autospec(docker.APIClient, instance=True)
    api.create_host_config.return_value = {}
    api.create_container.return_value = {"Id": "job"}
    api.wait.side_effect = waits
    api.logs.return_value = b"done\n"
    return SimpleNamespace(api=api)


SPEC = ContainerSpec(name="pg-replica-clone", image="img", command=["true"], labels={})


def test_a_job_has_no_fixed_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    assert inspect.signature(docker_ops.run_job).parameters["timeout"].default is None
    monkeypatch.setattr(waits, "JOB_POLL", 0.01)
    client = job_client([timed_out(), requests.exceptions.ReadTimeout(), timed_out(), {"StatusCode": 0}])
    assert docker_ops.run_job(client, SPEC) == "done\n"
    assert client.api.wait.call_count == 4
    client.api.remove_container.assert_called_once()


def test_a_job_that_stops_making_progress_is_ended(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(waits, "JOB_POLL", 0.01)
    client = job_client([timed_out(), timed_out(), {"StatusCode": 0}])
    answers = iter([True, False])
    with pytest.raises(DockerError, match="stopped making progress"):
        docker_ops.run_job(client, SPEC, progress=lambda: next(answers))
    client.api.remove_container.assert_called_once_with("job", force=True, v=True)


def test_a_job_with_a_timeout_is_ended_at_it() -> None:
    def slow_wait(cid: str, timeout: float) -> dict:
        time.sleep(timeout)  # as the engine does: no answer until the read times out
        raise timed_out()

    client = job_client([])
    client.api.wait.side_effect = slow_wait
    with pytest.raises(DockerError, match="did not finish within 0 s"):
        docker_ops.run_job(client, SPEC, timeout=0.2)
    client.api.remove_container.assert_called_once()


def test_an_engine_gone_while_waiting_is_a_docker_error() -> None:
    client = job_client([requests.exceptions.ConnectionError("('Connection aborted.', FileNotFoundError())")])
    with pytest.raises(DockerError, match="wait for pg-replica-clone"):
        docker_ops.run_job(client, SPEC)
