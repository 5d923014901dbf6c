"""destroy's removal of the network: the engine may still count an endpoint of a container removed
a moment ago, so that refusal (and only that one) is retried until a deadline."""

from __future__ import annotations

import pytest

from pgtopo import destroy, docker_ops, waits
from pgtopo.errors import DockerError

LINGERING = DockerError("Docker failed to remove network pg-net: error while removing network: network pg-net "
                        "has active endpoints")


def engine(monkeypatch: pytest.MonkeyPatch, answers: list[DockerError | None]) -> list[str]:
    """remove_network raises each error of `answers` in turn (None: it succeeds); returns the calls."""
    calls: list[str] = []
    pending = iter(answers)

    def remove_network(client: object, name: str) -> None:
        calls.append(name)
        error = next(pending, None)
        if error is not None:
            raise error

    monkeypatch.setattr(docker_ops, "remove_network", remove_network)
    monkeypatch.setattr(waits, "DOCKER", 0)
    return calls


def test_an_endpoint_that_lingers_is_waited_out(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = engine(monkeypatch, [LINGERING, LINGERING, None])
    destroy._remove_network(None, "pg-net")  # type: ignore[arg-type]
    assert calls == ["pg-net"] * 3


def test_another_refusal_is_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    other = DockerError("Docker failed to remove network pg-net: permission denied")
    calls = engine(monkeypatch, [other, None])
    with pytest.raises(DockerError) as info:
        destroy._remove_network(None, "pg-net")  # type: ignore[arg-type]
    assert info.value is other and calls == ["pg-net"]


def test_an_endpoint_that_stays_ends_with_the_engines_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = engine(monkeypatch, [LINGERING] * 5)
    with pytest.raises(DockerError) as info:
        destroy._remove_network(None, "pg-net", timeout=0)  # type: ignore[arg-type]
    assert info.value is LINGERING and calls == ["pg-net"]
