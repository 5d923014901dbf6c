"""The cluster's history of applies, in its state volume: recorded as an apply ends, read back for
`pgtopo history`.

Made by the CLI (what runs, from where, how it will exit) and handed to reconcile.py, which tells
it what was observed and each action started and finished, and has it record the run while the
cluster's lock is still held: applies never write the history at once, and the history read by
the first observation under the lock is the one to extend.  Only a run that started an action is
recorded, so an apply with nothing to do (or one refused before any change) writes nothing and
costs nothing.  Recording is best effort: its failure is one warning line, and the run's own
error and exit status stay what they were.  history.py builds the entries (pure).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pgtopo import docker_ops, labels as L, state as cluster_state
from pgtopo.actions import Action, Kind
from pgtopo.errors import DockerError, PgtopoError, SpecError

if TYPE_CHECKING:
    import docker

    from pgtopo import history
    from pgtopo.observe import Snapshot
    from pgtopo.spec import Topology


@dataclass
class Journal:
    """One run of apply, switchover or a saved plan, as it goes (thread-safe: a wave's actions
    report from their own threads)."""

    command: "history.Command"
    file: str  # as given on the command line
    source: Path  # the topology file (of a saved plan: the one it was made from)
    exit_code: Callable[[BaseException], int]  # the status the CLI will exit with for an error
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    t0: float = field(default_factory=time.monotonic)
    actions: list[tuple[Action, float | None]] = field(default_factory=list)
    seen: "Snapshot | None" = None  # the first observation under the lock
    lock: threading.Lock = field(default_factory=threading.Lock)

    def observed(self, snapshot: "Snapshot") -> None:
        if self.seen is None:
            self.seen = snapshot

    def started(self, action: Action) -> None:
        with self.lock:
            self.actions.append((action, None))

    def finished(self, action: Action, seconds: float) -> None:
        with self.lock:
            at = next((i for i, (a, s) in enumerate(self.actions) if a is action and s is None), None)
            if at is not None:
                self.actions[at] = (action, seconds)

    def record(self, client: "docker.DockerClient", topo: "Topology", base_dir: Path, error: BaseException | None,
               warn: Callable[[str], None]) -> None:
        """Add this run to the cluster's history if it started any action; a warning, never an
        exception, when that cannot be done."""
        with self.lock:
            actions = list(self.actions)
        if not actions:
            return
        try:
            self._write(client, topo, base_dir, actions, error, warn)
        except Exception as exc:  # never hide the run's own outcome behind this one
            warn(f"warning: this run was not recorded in the cluster's history: {_why(exc)}")

    def _write(self, client: "docker.DockerClient", topo: "Topology", base_dir: Path,
               actions: list[tuple[Action, float | None]], error: BaseException | None,
               warn: Callable[[str], None]) -> None:
        from pgtopo import history

        seen = self.seen
        made_state = any(a.kind is Kind.CREATE_STATE and s is not None for a, s in actions)
        if not made_state and (seen is None or seen.observed.state_volume is None):
            warn("warning: this run was not recorded in the cluster's history: the cluster has no state volume yet")
            return
        known = seen.state.history if seen is not None and seen.state is not None else None
        try:
            entries = history.parse(known)
        except PgtopoError as exc:
            if known is not None and history.newer_format(known) is not None:
                raise
            warn(f"warning: {exc.message}; it was started anew")
            entries = ()
        new = history.entry(
            number=history.next_number(entries), started_at=self.started_at, command=self.command, file=self.file,
            seconds=time.monotonic() - self.t0, actions=actions,
            exit_code=0 if error is None else self.exit_code(error), error=history.error_text(error),
            who=_origin(), redact=history.redactor(self._secrets(topo, base_dir)))
        content = history.encode(topo.cluster, history.appended(entries, new))
        cluster_state.write_history(client, topo.image, L.Names(topo.cluster).state_volume, topo.cluster, content)

    def _secrets(self, topo: "Topology", base_dir: Path) -> list[str | None]:
        """What no entry may hold: the cluster's passwords (those in use and those the file
        asks for), and every value interpolation took from the environment."""
        from pgtopo import history

        try:  # read again now: a run with nothing to record never pays for it
            names = history.variables(self.source.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            names = ()
        found: list[str | None] = [os.environ.get(name) for name in names]
        state = self.seen.state if self.seen is not None else None
        if state is not None:
            found += [state.superuser_password, state.replication_password]
        with suppress(SpecError):  # a secret that cannot be read was not used either
            found += cluster_state.desired_passwords(topo, base_dir)
        for role in topo.roles:
            with suppress(SpecError):
                found.append(cluster_state.role_password(topo, role, base_dir))
        return found


def _why(exc: Exception) -> str:
    return exc.message if isinstance(exc, PgtopoError) else f"{type(exc).__name__}: {exc}"


def _origin() -> "history.Origin":
    import getpass
    import socket

    from pgtopo import history

    try:
        user: str | None = getpass.getuser()
    except (OSError, KeyError, ImportError):  # no login name and no passwd entry (a bare container)
        user = None
    return history.origin(os.environ, user, socket.gethostname())


def read(client: "docker.DockerClient", topo: "Topology") -> tuple["history.HistoryEntry", ...]:
    """The cluster's history, oldest first: read in one of its running node containers (the
    primary's first), else through a read-only helper; none when the cluster has no state
    volume.  PgtopoError when it cannot be read."""
    from pgtopo import history

    names = L.Names(topo.cluster)
    volumes = docker_ops.list_volumes(client, names.state_volume)
    if not any(v["Name"] == names.state_volume and (v.get("Labels") or {}).get(L.CLUSTER) == topo.cluster
               for v in volumes):
        return ()
    return history.parse(_read_raw(client, topo, names))


def _read_raw(client: "docker.DockerClient", topo: "Topology", names: L.Names) -> bytes | None:
    """By a process in a running node container, never by a copy out of one (docker_ops.HelperId
    says why); through a helper when none runs."""
    running = [c for c in docker_ops.list_containers(client, f"{topo.cluster}-")
               if (c.get("Labels") or {}).get(L.CLUSTER) == topo.cluster
               and (c.get("Labels") or {}).get(L.ROLE) == "node" and c.get("State") == "running"]
    primary = f"/{names.container(topo.primary)}"
    running.sort(key=lambda c: primary not in (c.get("Names") or []))
    for container in running:
        try:
            return cluster_state.read_history_in(client, container["Id"])
        except DockerError:  # stopped or removed meanwhile: the next way
            continue
    return cluster_state.read_history(client, topo.image, names.state_volume, topo.cluster)
