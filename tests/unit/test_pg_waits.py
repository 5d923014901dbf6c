"""pg_ops' waits on one connection (drop a slot, a reload, a promotion, replay): what they ask,
in what order, and what they say when the answer does not come (a fake connection, no server)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from pgtopo import pg_ops
from pgtopo.errors import PostgresError

EP = pg_ops.Endpoint("primary", 5432, "pw")
Answer = Callable[[str, object], list[tuple[object, ...]]]


class Rows(list):  # type: ignore[type-arg]
    """A cursor's answer: iterated over, or read with fetchone()."""

    def fetchone(self) -> object:
        return self[0] if self else None


class Conn:
    """Answers each query with the rows `answer(query, params)` gives; records what was sent."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.sent: list[str] = []

    def __enter__(self) -> "Conn":
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def fileno(self) -> int:
        return -1

    def execute(self, query: str, params: object = None) -> Rows:
        self.sent.append(query)
        return Rows(self.answer(query, params))


def use(monkeypatch: pytest.MonkeyPatch, answer: Answer) -> Conn:
    conn = Conn(answer)
    monkeypatch.setattr(pg_ops, "connect", lambda ep, timeout=3.0: conn)
    return conn


def test_a_slot_held_by_a_wal_sender_is_dropped_once_the_sender_is_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    state = {"active": 42, "exists": True}

    def answer(query: str, params: object) -> list[tuple[object, ...]]:
        if "pg_terminate_backend" in query:
            state["active"] = None
        elif "pg_drop_replication_slot" in query:
            state["exists"] = False
        elif "active_pid" in query:
            return [(state["active"],)] if state["exists"] else []
        elif query.startswith("SELECT 1"):
            return [(1,)] if state["exists"] else []
        return []

    conn = use(monkeypatch, answer)
    pg_ops.drop_slot(EP, "replica2")
    kinds = [q.split("(")[0] for q in conn.sent]
    assert kinds == ["SELECT active_pid FROM pg_replication_slots WHERE slot_name = %s", "SELECT pg_terminate_backend",
                     "SELECT active_pid FROM pg_replication_slots WHERE slot_name = %s",
                     "SELECT pg_drop_replication_slot", "SELECT 1 FROM pg_replication_slots WHERE slot_name = %s"]


def test_a_slot_its_sender_keeps_is_not_dropped_and_the_sender_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pg_ops, "DROP_WAIT", 0.0)  # the deadline has passed at the first answer
    conn = use(monkeypatch, lambda q, p: [(42,)] if "active_pid" in q else [])
    with pytest.raises(PostgresError, match="slot replica2 is still in use by WAL sender 42 after 0 s; it was not dropped"):
        pg_ops.drop_slot(EP, "replica2")
    assert not any("pg_terminate_backend" in q for q in conn.sent)  # asked once, past the deadline: not stopped


def test_a_reload_is_read_until_no_setting_is_unapplied(monkeypatch: pytest.MonkeyPatch) -> None:
    unapplied = iter([1, 1, 0])

    def answer(query: str, params: object) -> list[tuple[object, ...]]:
        return [(next(unapplied),)] if "pg_file_settings" in query else []

    conn = Conn(answer)
    assert pg_ops.pending_restart(conn, ["work_mem"]) == []  # type: ignore[arg-type]
    assert sum("pg_file_settings" in q for q in conn.sent) == 3


def test_a_setting_pending_a_restart_is_reported_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    def answer(query: str, params: object) -> list[tuple[object, ...]]:
        return [(1,)] if "pg_file_settings" in query else [("shared_buffers",)]

    conn = Conn(answer)
    assert pg_ops.pending_restart(conn, ["shared_buffers"]) == ["shared_buffers"]  # type: ignore[arg-type]
    assert sum("pg_file_settings" in q for q in conn.sent) == 1


def test_replay_is_waited_for_until_past_the_position(monkeypatch: pytest.MonkeyPatch) -> None:
    positions = iter(["0/100", "0/200", "0/300"])
    use(monkeypatch, lambda q, p: [(next(positions), False)])
    assert pg_ops.wait_replayed_past(EP, 0x200, deadline=time.monotonic() + 60, poll=0) == 0x300


def test_a_paused_replay_ends_the_wait_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = use(monkeypatch, lambda q, p: [("0/100", True)])
    assert pg_ops.wait_replayed_past(EP, 0x200, deadline=time.monotonic() + 60, poll=0) is None
    assert len(conn.sent) == 1


def test_a_promotion_is_waited_for_until_out_of_recovery(monkeypatch: pytest.MonkeyPatch) -> None:
    recovering = iter([True, True, False])
    conn = use(monkeypatch, lambda q, p: [(next(recovering),)] if "pg_is_in_recovery" in q else [])
    pg_ops.promote(EP, poll=0)
    assert conn.sent == ["SELECT pg_promote(false)"] + ["SELECT pg_is_in_recovery()"] * 3


def test_a_promotion_that_does_not_finish_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    use(monkeypatch, lambda q, p: [(True,)])
    with pytest.raises(PostgresError, match="primary: promotion did not finish within 0 s"):
        pg_ops.promote(EP, timeout=0, poll=0)


def test_a_wait_to_stream_ends_at_once_with_a_replan_when_the_node_accepts_writes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A node cut off its network when apply planned gets reconnected and waited for as a standby;
    it is a writer (an old primary): waiting 120 s for it to stream cannot help."""
    from pgtopo.errors import Replan

    def answer(query: str, params: object) -> list[tuple[object, ...]]:
        return [(False, None, None)]

    use(monkeypatch, answer)
    started = time.monotonic()
    with pytest.raises(Replan, match="replica: it accepts writes, so it will not stream from primary"):
        pg_ops.wait_streaming(pg_ops.Endpoint("replica", 5433, "pw"), "primary", time.monotonic() + 60, poll=0.01)
    assert time.monotonic() - started < 1


def test_a_standby_without_a_receiver_yet_is_waited_for(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}

    def answer(query: str, params: object) -> list[tuple[object, ...]]:
        calls["n"] += 1
        return [(True, "streaming", "primary")] if calls["n"] > 3 else [(True, None, None)]

    use(monkeypatch, answer)
    pg_ops.wait_streaming(pg_ops.Endpoint("replica", 5433, "pw"), "primary", time.monotonic() + 5, poll=0.01)
    assert calls["n"] == 4
