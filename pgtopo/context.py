"""What the actions of one apply share: the Docker client, the topology, the snapshot of what
exists (updated as actions change it) and the callbacks the CLI passed in.

Made by reconcile.py; used by execute.py, switch.py and nodes.py.  Guarded by one lock across
the threads of a wave.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from pgtopo import desired, pg_ops
from pgtopo.errors import PgtopoError
from pgtopo.observe import Snapshot
from pgtopo.spec import Topology

if TYPE_CHECKING:
    import docker


class Progress(Protocol):
    """Shows what is happening now on a node ("" clears it)."""

    def __call__(self, node: str, text: str) -> None: ...


class ConfirmLock(Protocol):
    """Waits until the cluster lock's container has started (it starts in the background): called
    before a write downtime, so the engine is not busy with it then."""

    def __call__(self) -> None: ...


def _no_progress(node: str, text: str) -> None:
    pass


def _no_lock() -> None:
    pass


@dataclass
class Context:
    """What execution shares between actions of one apply (guarded by a lock across threads)."""

    client: "docker.DockerClient"
    topo: Topology
    snapshot: Snapshot
    base_dir: Path
    progress: Progress = _no_progress
    confirm_lock: ConfirmLock = _no_lock
    lock: threading.Lock = field(default_factory=threading.Lock)
    clone_slots: dict[str, threading.Semaphore] = field(default_factory=dict)
    background: list[tuple[threading.Thread, list[BaseException]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.names = desired.names(self.topo)

    def in_background(self, fn: Callable[[], None]) -> None:
        """Run `fn` off the critical path; `settle()` waits for it and raises what it raised."""
        errors: list[BaseException] = []

        def run() -> None:
            try:
                fn()
            except BaseException as exc:  # handed to settle()
                errors.append(exc)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        with self.lock:
            self.background.append((thread, errors))

    def settle(self, raise_errors: bool = True) -> None:
        with self.lock:
            pending, self.background = self.background, []
        failed = []
        for thread, errors in pending:
            thread.join()
            failed += errors
        if failed and raise_errors:
            raise failed[0]

    @property
    def password(self) -> str:
        if self.snapshot.state is None:
            raise PgtopoError("the cluster's credentials are not known yet", hint="run apply again")
        return self.snapshot.state.superuser_password

    def endpoint(self, node: str) -> pg_ops.Endpoint:
        ep = self.snapshot.endpoints.get(node)
        if ep is None:
            raise PgtopoError(f"{node}: the server is not running or its port is not published",
                              hint=f"check `docker ps -a --filter name={self.names.container(node)}`")
        return ep
