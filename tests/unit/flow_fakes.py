"""A fake Docker engine and a fake SQL layer for the executor's control-flow tests (no engine, no
server, no sleeping).

The functions of pgtopo.docker_ops and pgtopo.pg_ops that the executor calls are replaced by
autospec'd fakes (a call with a wrong signature fails, as docker compose's unit tests do with
docker-py's client).  The fakes keep a little state per node (container running, standby.signal
present, primary or standby) and write every call that changes something, in order, into one
journal; `writers()` says which nodes would accept writes now, and `most_writers` is the most there
ever were at once.  The Docker client handed to the code is an autospec'd DockerClient without an
`api`: a code path that reaches past these fakes towards a real engine fails loudly.
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest.mock import create_autospec

import docker
import pytest

from pgtopo import desired, docker_ops, labels as L, pg_ops, pgcontrol
from pgtopo.containers import ContainerSpec
from pgtopo.context import Context
from pgtopo.errors import DockerError, PostgresError
from pgtopo.observe import Snapshot
from pgtopo.observed import Observed
from pgtopo.spec import Topology
from pgtopo.state import ClusterState

SYSID = 7000000000000000001
CHECKPOINT = 0x5000028


def control(state: int = pgcontrol.SHUT_DOWN, checkpoint: int = CHECKPOINT, sysid: int = SYSID) -> bytes:
    """The header of a pg_control file as pgcontrol.parse reads it."""
    head = struct.pack("<QIIi", sysid, 1300, 202307071, state) + b"\0" * 12  # up to offset 32
    return head + struct.pack("<QQI", checkpoint, checkpoint - 0x28, 1) + b"\0" * 44


def client() -> Any:
    """A Docker client that has no engine behind it (no `api` at all)."""
    return create_autospec(docker.DockerClient, instance=True)


class World:
    """The fake engine and servers of one cluster; see the module's docstring."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, topo: Topology, observed: Observed) -> None:
        self.cluster = topo.cluster
        self.journal: list[tuple[str, ...]] = []
        self.running: dict[str, bool] = {}
        self.fenced: dict[str, bool] = {}
        self.primary: dict[str, bool] = {}  # started unfenced, would it run as a primary?
        self.accepting: dict[str, bool] = {}
        for name, facts in observed.nodes.items():
            self.running[name] = bool(facts.container and facts.container.running)
            self.fenced[name] = bool(facts.pg and facts.pg.fenced)
            self.primary[name] = bool(facts.pg and not facts.pg.in_recovery)
            self.accepting[name] = self.running[name] and self.primary[name]
        self.most_writers = len(self.writers())
        self.fail: dict[tuple[str, ...], BaseException] = {}  # journal entry -> what that call raises
        self.pg_control: dict[str, bytes] = {}  # node -> pg_control once stopped (default: clean)
        self.replayed: dict[str, int | None] = {}  # node -> what wait_replayed_past returns
        self.replay_target: dict[str, int] = {}  # node -> the LSN wait_replayed_past was asked to pass
        self.at_promote: dict[str, tuple[bool, bool]] = {}  # node -> (running, fenced) when promoting
        # nodes whose server stops as soon as it starts (Docker restarts it) until a conf job
        # rewrites their postgresql.auto.conf; what each conf job wrote; what each ALTER SYSTEM set
        self.crashing: set[str] = set()
        self.conf: dict[str, str] = {}
        self.altered: list[tuple[str, dict[str, str | None]]] = []
        self._patch(monkeypatch)

    # -- what tests read ------------------------------------------------------------------------
    def writers(self) -> set[str]:
        return {n for n, yes in self.accepting.items() if yes}

    def index(self, *entry: str) -> int:
        """Where `entry` first is in the journal (fails the test when it is not there)."""
        assert entry in self.journal, f"{entry} not in {self.journal}"
        return self.journal.index(entry)

    def kinds(self) -> list[str]:
        return [e[0] for e in self.journal]

    # -- the fakes ------------------------------------------------------------------------------
    def _node(self, container: str) -> str:
        return container[len(self.cluster) + 1:] if container.startswith(f"{self.cluster}-") else container

    def _event(self, *entry: str) -> None:
        self.journal.append(entry)
        if entry in self.fail:
            raise self.fail[entry]

    def _changed(self) -> None:
        self.most_writers = max(self.most_writers, len(self.writers()))

    def _patch(self, mp: pytest.MonkeyPatch) -> None:
        def fake(module: Any, name: str, fn: Callable[..., Any]) -> None:
            mp.setattr(module, name, create_autospec(getattr(module, name), side_effect=fn))

        fake(docker_ops, "exec_run", self._exec_run)
        fake(docker_ops, "stop", self._stop)
        fake(docker_ops, "start", self._start)
        fake(docker_ops, "inspect_container", self._inspect)
        fake(docker_ops, "read_file", self._read_file)
        mp.setattr(docker_ops, "helper", self._helper)
        fake(docker_ops, "run_job", self._run_job)
        fake(docker_ops, "remove_container", lambda client, c: self._event("remove", self._node(c)))
        fake(docker_ops, "create_container", self._create_container)
        fake(docker_ops, "create_volume", lambda client, name, labels: self._event("create-volume", name))
        fake(docker_ops, "create_network", lambda client, name, labels: self._event("create-network", name))
        fake(docker_ops, "last_lines", self._last_lines)
        fake(pg_ops, "checkpoint", lambda ep, timeout=0: self._event("checkpoint", ep.node))
        fake(pg_ops, "wait_replayed_past", self._wait_replayed_past)
        fake(pg_ops, "promote", self._promote)
        fake(pg_ops, "create_slot", lambda ep, slot: self._event("create-slot", ep.node, slot))
        fake(pg_ops, "drop_slot", lambda ep, slot: self._event("drop-slot", ep.node, slot))
        fake(pg_ops, "wait_ready", self._wait_ready)
        fake(pg_ops, "wait_streaming", lambda ep, upstream, deadline, poll=0.1: None)
        fake(pg_ops, "alter_system", self._alter_system)
        fake(pg_ops, "set_replication_source",
             lambda ep, conninfo, slot: self._event("repoint", ep.node, slot))

    def _exec_run(self, client: Any, container: str, argv: list[str], user: str = "postgres") -> None:
        node = self._node(container)
        if not self.running[node]:
            raise DockerError(f"Docker failed to run {argv[0]} in {container}: container is not running")
        if argv == ["touch", desired.FENCE_SIGNAL]:
            self._event("fence", node)
            self.fenced[node] = True
        elif argv == ["rm", "-f", desired.FENCE_SIGNAL]:
            self._event("unfence", node)
            self.fenced[node] = False
        else:
            self._event("exec", node, " ".join(argv))

    def _stop(self, client: Any, container: str, timeout: int = 60) -> None:
        node = self._node(container)
        self._event("stop", node)
        self.running[node] = self.accepting[node] = False

    def _start(self, client: Any, container: str) -> None:
        node = self._node(container)
        role = "primary" if self.primary[node] and not self.fenced[node] else "standby"
        self._event("start", node, role)
        self.running[node] = True
        self.accepting[node] = role == "primary"
        self._changed()

    def _inspect(self, client: Any, container: str) -> dict[str, Any]:
        node = self._node(container)
        running = self.running.get(node, False)
        looping = running and node in self.crashing
        status = "restarting" if looping else "running" if running else "exited"
        return {"State": {"Running": running, "Paused": False, "Status": status, "Restarting": looping},
                "RestartCount": 0,
                "NetworkSettings": {"Ports": {f"{L.PG_PORT}/tcp": [{"HostIp": "127.0.0.1", "HostPort": "40000"}]}}}

    @contextlib.contextmanager
    def _helper(self, client: Any, image: str, mounts: tuple[Any, ...], labels: dict[str, str],
                name: str | None = None) -> Iterator[str]:
        """A helper on one node's volume: reads through it are that node's files."""
        assert mounts[0].read_only, "a helper that reads must mount the volume read-only"
        volume = mounts[0].volume
        yield f"helper:{volume[len(self.cluster) + 1:-len('-data')]}"

    def _last_lines(self, client: Any, container: str, lines: int = 8) -> str:
        if self._node(container) in self.crashing:
            return ("2026-01-01 00:00:00.000 UTC [1] FATAL:  could not map anonymous shared memory: Cannot allocate "
                    "memory\n2026-01-01 00:00:00.000 UTC [1] LOG:  database system is shut down")
        return "(last lines)"

    def _wait_ready(self, ep: pg_ops.Endpoint, deadline: float, poll: float = 0.1) -> None:
        if ep.node in self.crashing:
            raise PostgresError(f"{ep.node}: cannot connect: connection refused")

    def _alter_system(self, ep: pg_ops.Endpoint, settings: dict[str, str | None]) -> list[str]:
        self._event("alter-system", ep.node)
        self.altered.append((ep.node, dict(settings)))
        return []

    def _read_file(self, client: Any, container: str, path: str) -> bytes | None:
        assert container.startswith("helper:"), f"a file was copied out of {container}, not out of a helper"
        node = container.removeprefix("helper:")
        if path.endswith("/global/pg_control"):
            return self.pg_control.get(node, control(pgcontrol.IN_PRODUCTION if self.running[node] else pgcontrol.SHUT_DOWN))
        return None

    def _run_job(self, client: Any, spec: ContainerSpec, timeout: float | None = None,
                 progress: Callable[[], bool] | None = None) -> str:
        node, job = spec.labels[L.NODE], spec.labels[L.JOB]
        assert not self.running[node], f"a {job} job ran on {node}'s data while its server ran"
        self._event("job", job, node)
        if job in ("fence", "demote"):
            self.fenced[node] = True
        if job == "demote":
            self.primary[node] = False
        if job == "unfence":
            self.fenced[node] = False
        if job == "conf":
            self.conf[node] = spec.command[-1]
            self.crashing.discard(node)
        return ""

    def _create_container(self, client: Any, spec: ContainerSpec) -> str:
        self._event("create", spec.name)
        return f"id-{spec.name}"

    def _wait_replayed_past(self, ep: pg_ops.Endpoint, lsn: int, deadline: float, poll: float = 0.01) -> int | None:
        self.replay_target[ep.node] = lsn
        self._event("wait-replayed", ep.node)
        return self.replayed.get(ep.node, lsn + 1)

    def _promote(self, ep: pg_ops.Endpoint, timeout: float = 60.0, poll: float = 0.01) -> None:
        self.at_promote = {n: (self.running[n], self.fenced[n]) for n in self.running}
        self._event("promote", ep.node)
        self.primary[ep.node] = self.accepting[ep.node] = True
        self._changed()


def context(topo: Topology, observed: Observed, journal: list[tuple[str, ...]] | None = None) -> Context:
    """A Context over `observed` whose lock confirmation is written into `journal`."""
    state = ClusterState(superuser_password="pw", replication_password="rpw", system_identifier=SYSID)
    endpoints = {n: pg_ops.Endpoint(n, 40000 + i, "pw", cluster=topo.cluster)
                 for i, (n, facts) in enumerate(sorted(observed.nodes.items())) if facts.container}
    snapshot = Snapshot(observed=observed, state=state, endpoints=endpoints)
    ctx = Context(client=client(), topo=topo, snapshot=snapshot, base_dir=Path("."))
    if journal is not None:
        ctx.confirm_lock = lambda: journal.append(("confirm-lock",))
    return ctx
