"""upgrade.run's order of steps against fakes of the Docker adapter (no engine): the node stops
before anything touches its data; the old server runs only while the new cluster is built and is
removed whatever happens; the swap comes only after a build that finished; the new identity is in
the state volume before the node's new container exists; an interrupted swap is finished without a
second build; an upgrade without the old image is refused before anything is stopped."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from pgtopo import docker_ops, labels as L, nodes, state as cluster_state, upgrade
from pgtopo.actions import Action, Kind
from pgtopo.errors import DockerError, SafetyRefusal
from pgtopo.observed import DataFacts

from .flow_fakes import SYSID, context, control
from .test_plan import T, container, converged, topo

T18 = topo(image="pgtopo-local/postgres:18")
NEW_SYSID = 7000000000000000777
UPGRADE = Action(Kind.UPGRADE, "primary", "17 → 18", target="sha256:old17")


class Engine:
    """Records every step upgrade.run takes, in order."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.journal: list[tuple[str, ...]] = []
        self.fail: dict[str, BaseException] = {}
        self.states: list[int | None] = []
        mp = monkeypatch

        def job(client: Any, spec: Any, timeout: float | None = None, progress: Any = None, prepare: Any = None) -> str:
            name = spec.labels[L.JOB]
            if prepare is not None:
                prepare(f"id-{spec.name}")
            if progress is not None:
                progress()
            self.note("job", name, spec.image)
            if name in self.fail:
                raise self.fail[name]
            return ""

        @contextlib.contextmanager
        def tether(client: Any, cid: str) -> Iterator[None]:
            self.note("tether", cid)
            yield
            self.note("untether", cid)

        @contextlib.contextmanager
        def helper(client: Any, image: str, mounts: Any, labels: Any, name: str | None = None) -> Iterator[str]:
            yield "helper"

        mp.setattr(docker_ops, "run_job", job)
        mp.setattr(docker_ops, "tether", tether)
        mp.setattr(docker_ops, "helper", helper)
        mp.setattr(docker_ops, "create_container", lambda client, spec: self.note("create", spec.name, spec.image)
                   or f"id-{spec.name}")
        mp.setattr(docker_ops, "stop", lambda client, cid, timeout=60: self.note("stop", cid))
        mp.setattr(docker_ops, "remove_container", lambda client, cid: self.note("remove", cid))
        mp.setattr(docker_ops, "inspect_container", lambda client, cid: {"State": {"Running": True}})
        mp.setattr(docker_ops, "write_files", lambda client, cid, d, files, uid, gid: self.note("pgpass", cid))
        mp.setattr(docker_ops, "read_file", lambda client, cid, path: control(sysid=NEW_SYSID)
                   if path.endswith("pg_control") else None)
        mp.setattr(cluster_state, "postgres_ids", lambda client, cid, image: (101, 101))
        mp.setattr(cluster_state, "write", lambda client, image, volume, cluster, state, user:
                   self.note("state", str(state.system_identifier)))
        mp.setattr(nodes, "stop", lambda ctx, node: self.note("stop-node", node))
        mp.setattr(nodes, "create", lambda ctx, node: self.note("create-node", node))

    def note(self, *entry: str) -> None:
        self.journal.append(entry)

    def index(self, *entry: str) -> int:
        assert entry in self.journal, f"{entry} not in {self.journal}"
        return self.journal.index(entry)

    def kinds(self) -> list[str]:
        return [e[1] if e[0] == "job" else e[0] for e in self.journal]


def on17(**data: Any) -> Any:
    obs = converged(T)
    primary = replace(obs.node("primary"), pg=None, container=replace(container(T, "primary", "exited"),
                                                                        image_id="sha256:old17"),
                      data=DataFacts(has_pgdata=True, system_identifier=SYSID, major=17, **data))
    return replace(obs, nodes={**obs.nodes, "primary": primary}, image_major=18)


def test_an_upgrade_stops_builds_swaps_records_then_starts_in_that_order(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = Engine(monkeypatch)
    note = upgrade.run(context(T18, on17()), UPGRADE)
    source = "id-pg-primary-upgrade-source"
    assert engine.kinds() == ["stop-node", "upgrade-open", "create", "tether", "pgpass", "upgrade", "stop", "untether",
                              "remove", "upgrade-swap", "state", "remove", "create-node"]
    assert engine.index("create", "pg-primary-upgrade-source", "sha256:old17") > engine.index("stop-node", "primary")
    assert engine.index("job", "upgrade", T18.image) < engine.index("stop", source) < engine.index("remove", source)
    # the new identity is recorded before the node's container of the new image exists
    assert engine.index("state", str(NEW_SYSID)) < engine.index("create-node", "primary")
    assert note.startswith("write downtime")


def test_a_build_that_fails_leaves_the_old_data_as_it_was_and_no_old_server(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = Engine(monkeypatch)
    engine.fail["upgrade"] = DockerError("restore failed")
    with pytest.raises(DockerError):
        upgrade.run(context(T18, on17()), UPGRADE)
    assert "upgrade-swap" not in engine.kinds() and "state" not in engine.kinds() and "create-node" not in engine.kinds()
    assert engine.journal[-1] == ("remove", "id-pg-primary-upgrade-source")


def test_an_interrupted_swap_is_finished_without_building_again(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = Engine(monkeypatch)
    obs = on17()
    swapping = replace(obs.node("primary"), data=DataFacts(has_pgdata=False, swap_from=17, upgraded_from=SYSID))
    upgrade.run(context(T18, replace(obs, nodes={**obs.nodes, "primary": swapping})),
                replace(UPGRADE, target=None))
    assert engine.kinds() == ["stop-node", "upgrade-swap", "state", "remove", "create-node"]


def test_an_upgrade_without_the_old_image_is_refused_before_anything_stops(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = Engine(monkeypatch)
    with pytest.raises(SafetyRefusal):
        upgrade.run(context(T18, on17()), replace(UPGRADE, target=None))
    assert engine.journal == []
