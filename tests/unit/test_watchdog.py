"""pgtopo's own deadline on a session: a peer that keeps the connection open but never answers
(a paused container behind docker-proxy) must not hold a read forever."""

from __future__ import annotations

import socket
import time

from pgtopo.pg_ops import Watchdog


class _Conn:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def fileno(self) -> int:
        return self.sock.fileno()


def test_a_read_from_a_silent_peer_ends_when_the_watchdog_fires() -> None:
    ours, theirs = socket.socketpair()
    try:
        dog = Watchdog(_Conn(ours), 0.2)  # type: ignore[arg-type]
        ours.settimeout(10)  # only a safety net for the test itself
        assert ours.recv(1) == b""  # the shut-down socket reads as closed (not socket.timeout)
        assert dog.fired
        dog.disarm()
    finally:
        ours.close()
        theirs.close()


def test_a_disarmed_watchdog_never_touches_the_socket() -> None:
    ours, theirs = socket.socketpair()
    try:
        dog = Watchdog(_Conn(ours), 0.1)  # type: ignore[arg-type]
        dog.disarm()
        time.sleep(0.3)
        theirs.sendall(b"x")
        ours.settimeout(5)
        assert ours.recv(1) == b"x" and not dog.fired
    finally:
        ours.close()
        theirs.close()
