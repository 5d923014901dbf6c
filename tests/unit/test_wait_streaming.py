"""apply's final wait for streaming replicas: a replica that stopped since it was observed ends
the wait with a clear message instead of the whole timeout."""

from __future__ import annotations

import pytest

from pgtopo import pg_ops, reconcile
from pgtopo.errors import NotConverged
from pgtopo.observe import Snapshot

from .test_plan import T, converged


def snapshot() -> Snapshot:
    eps = {n: pg_ops.Endpoint(n, 40000 + i, "pw") for i, n in enumerate(T.nodes)}
    return Snapshot(observed=converged(T), state=None, endpoints=eps)


def test_a_replica_that_refuses_connections_ends_the_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reconcile, "GONE_AFTER", 0.2)
    monkeypatch.setattr(pg_ops, "streams_from", lambda ep, up: (ep.node != "replica2",
                        "replica2: cannot connect on 127.0.0.1:40002: connection refused"))
    with pytest.raises(NotConverged, match="replica2 stopped answering while apply waited for it to stream"):
        reconcile.wait_streaming(T, snapshot(), timeout=60)


def test_a_replica_still_catching_up_is_waited_for_until_the_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reconcile, "GONE_AFTER", 0.2)
    monkeypatch.setattr(pg_ops, "streams_from", lambda ep, up: (ep.node != "replica2", "WAL receiver is starting"))
    with pytest.raises(NotConverged, match="replicas not streaming after 1 s"):
        reconcile.wait_streaming(T, snapshot(), timeout=1)
