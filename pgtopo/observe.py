"""Observation: Docker listings and Postgres probes → `Observed` (read-only, parallel).

Called by reconcile.py and the CLI's status; execute.py reads its `Snapshot`.  One container listing
(by name prefix, so objects without pgtopo's labels that would collide are seen too), one volume
listing and one network lookup, run concurrently; then the state volume is read and every running
node is probed in parallel.  Volume contents are read (pg_control) only for nodes whose server
cannot answer: at once for those without a running container (meanwhile the state is read), after a
failed probe for the others.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from pgtopo import (
    autoconf,
    desired,
    docker_ops,
    labels as L,
    majors,
    pg_ops,
    pgcontrol,
    probe,
    state as cluster_state,
    walend,
)
from pgtopo.backup import archiver, repository
from pgtopo.containers import Mount
from pgtopo.errors import PgtopoError
from pgtopo.observed import (
    ContainerFacts,
    DatabaseFacts,
    DataFacts,
    NetworkFacts,
    NodeFacts,
    Observed,
    PgFacts,
    PoolerFacts,
    RoleFacts,
    VolumeFacts,
)
from pgtopo.pooler import admin, config as pooler_config
from pgtopo.roles import read as roles_read
from pgtopo.spec import Topology
from pgtopo.timelines import lsn_text

if TYPE_CHECKING:
    import docker

    from pgtopo.state import ClusterState


@dataclass
class Snapshot:
    """Observation plus what execution needs to reach the servers (not part of the pure plan input)."""

    observed: Observed
    state: "ClusterState | None"
    endpoints: dict[str, pg_ops.Endpoint] = field(default_factory=dict)


def observe(client: "docker.DockerClient", topo: Topology, known: "ClusterState | None" = None,
            wanted: tuple[str | None, str | None] = (None, None),
            role_passwords: Mapping[str, str] | None = None) -> Snapshot:
    """`known`: the cluster's state as this process last wrote or read it under the cluster's
    lock (nobody else writes it meanwhile); then it is not read again.  `wanted`: the superuser
    and replication passwords the file asks for (None where it leaves them to pgtopo): compared
    with those in use (Observed.password_drift), and the superuser one is tried when the stored
    one is refused (see pg_ops.Endpoint).  `role_passwords`: those of the file's `roles:`, compared
    with the verifiers on the primary (RoleFacts.password)."""
    fallback = wanted[0]
    names = desired.names(topo)
    prefix = f"{topo.cluster}-"
    with ThreadPoolExecutor(max_workers=5) as pool:
        f_containers = pool.submit(docker_ops.list_containers, client, prefix)
        f_volumes = pool.submit(docker_ops.list_volumes, client, prefix)
        f_network = pool.submit(docker_ops.inspect_network, client, topo.network_name)
        # Meanwhile: the state through the primary's container, by name (used only if the listing
        # shows that container is ours); and psycopg's import, which the probes need next, in a
        # thread of its own that nothing waits for (a first use of psycopg waits for it through
        # Python's import lock): with no server to probe, the plan need not wait for it.
        f_state: "Future[ClusterState | None]" = (
            pool.submit(lambda: known) if known is not None
            else pool.submit(_state_in, client, names.container(topo.primary), topo.cluster))
        f_image = pool.submit(docker_ops.image_env, client, topo.image)
        f_ports = pool.submit(docker_ops.published_ports, client) if _fixed_ports(topo) else None
        f_repository = pool.submit(repository.volume_facts, client, topo)
        threading.Thread(target=_import_psycopg, name="pgtopo-import", daemon=True).start()
        containers, volumes, network = f_containers.result(), f_volumes.result(), f_network.result()
        image = f_image.result()
        published = f_ports.result() if f_ports is not None else {}

    parts = _classify(topo, names, [_container(c) for c in containers], volumes)
    every = sorted(set(topo.nodes) | set(parts.containers) | set(parts.volumes) | set(parts.jobs))
    with ThreadPoolExecutor(max_workers=min(16, max(1, len(every)))) as pool:
        # The volumes of nodes whose server cannot run are read while the state is being read.
        stopped = {n: pool.submit(_read_data, client, topo.image, parts.volumes[n])
                   for n in every if n in parts.volumes and not _runs(parts.containers.get(n))}
        state = _read_state(client, topo, parts, f_state, known)
        endpoints = _endpoints(parts.containers, state, fallback, topo.cluster)
        futures = {n: pool.submit(_probe_node, client, topo.image, n, parts, endpoints.get(n), stopped.get(n))
                   for n in every}
        f_pooler = pool.submit(probe_pooler, topo.cluster, parts.pooler, state)
        f_read_pooler = pool.submit(probe_pooler, topo.cluster, parts.read_pooler, state)
        f_catalog = pool.submit(_read_catalog, topo, endpoints.get(topo.primary), role_passwords or {})
        f_archiver = pool.submit(archiver.read, endpoints.get(topo.primary), topo.cluster) if topo.backup is not None else None
        facts = {n: f.result() for n, f in futures.items()}
        pooler, read_pooler = f_pooler.result(), f_read_pooler.result()
        catalog = f_catalog.result()
        archiving = f_archiver.result() if f_archiver is not None else None
    primary = facts[topo.primary].pg
    roles, databases = catalog if catalog is not None and primary is not None and not primary.in_recovery \
        else (None, None)
    observed = Observed(
        cluster=topo.cluster,
        network=_network(network),
        state_volume=parts.state_volume,
        system_identifier=state.system_identifier if state else None,
        credentials=state is not None,
        restored_from=state.restored_from if state else None,
        nodes=facts,
        foreign=tuple(sorted(parts.foreign)),
        leftovers=tuple(sorted(parts.helpers)),
        image_present=image is not None,
        image_id=image[0] if image is not None else None,
        image_major=_image_major(client, topo, image[1] if image is not None else None, facts),
        ports_taken=_ports_taken(client, topo, names, published),
        password_drift=password_drift(wanted, state),
        pooler=pooler,
        read_pooler=read_pooler,
        roles=roles,
        databases=databases,
        repository=f_repository.result(),
        archiver=archiving,
    )
    return Snapshot(observed=observed, state=state, endpoints=endpoints)


def _read_catalog(topo: Topology, ep: pg_ops.Endpoint | None, passwords: Mapping[str, str]
                  ) -> tuple[tuple[RoleFacts, ...], tuple[DatabaseFacts, ...]] | None:
    """The file's roles and databases and those pgtopo made, on the file's primary; None when it
    cannot be read (the plan then leaves them to a later round)."""
    if ep is None:
        return None
    try:
        return roles_read.read(ep, sorted(topo.roles), sorted(topo.databases), passwords)
    except PgtopoError:
        return None


_MAJOR_BY_JOB: dict[str, int | None] = {}  # image -> `postgres -V`'s major, once a process


def _image_major(client: "docker.DockerClient", topo: Topology, env: tuple[str, ...] | None,
                 facts: dict[str, NodeFacts]) -> int | None:
    """The major of the file's image, from its configuration; else from `postgres -V` in a job, run
    only when some data would meet the image for the first time (a node's container missing or of
    another image): in a cluster at rest no job runs."""
    if env is None:
        return None
    major = majors.of_image_env(env)
    meets = any(f.has_data and (f.container is None or f.container.image != topo.image)
                for n, f in facts.items() if n in topo.nodes)
    if major is not None or not meets:
        return major
    if topo.image not in _MAJOR_BY_JOB:
        try:
            output = docker_ops.run_job(client, desired.version_job(topo), timeout=60)
        except PgtopoError:
            output = ""  # unknown: the plan checks nothing, the server would say it when it starts
        _MAJOR_BY_JOB[topo.image] = majors.of_version_output(output)
    return _MAJOR_BY_JOB[topo.image]


def _fixed_ports(topo: Topology) -> dict[str, int]:
    return {n: node.port for n, node in sorted(topo.nodes.items()) if node.port is not None}


def _ports_taken(client: "docker.DockerClient", topo: Topology, names: L.Names,
                 published: dict[int, str]) -> tuple[tuple[str, int, str], ...]:
    """(node, port, who) for each fixed host port of the file that another container publishes, or,
    on a local engine, that this host cannot bind (another process listens there).  The node's own
    container publishing its port is no conflict."""
    taken = []
    for node, port in _fixed_ports(topo).items():
        who = published.get(port)
        if who == names.container(node):
            continue
        if who is not None:
            taken.append((node, port, f"container {who}"))
        elif docker_ops.engine_is_local(client) and not docker_ops.port_free(topo.nodes[node].bind, port):
            taken.append((node, port, "another process on this host"))
    return tuple(taken)


def _import_psycopg() -> None:
    import psycopg  # noqa: F401


@dataclass
class _Parts:
    containers: dict[str, ContainerFacts] = field(default_factory=dict)
    volumes: dict[str, VolumeFacts] = field(default_factory=dict)
    jobs: dict[str, list[ContainerFacts]] = field(default_factory=dict)
    state_volume: VolumeFacts | None = None
    foreign: list[str] = field(default_factory=list)
    helpers: list[str] = field(default_factory=list)  # helper containers a killed pgtopo left behind
    pooler: ContainerFacts | None = None
    read_pooler: ContainerFacts | None = None


def _container(raw: dict[str, Any]) -> ContainerFacts:
    port = None
    for p in raw.get("Ports") or []:
        if p.get("PrivatePort") in (L.PG_PORT, L.POOLER_PORT) and p.get("PublicPort") and p.get("IP") in ("127.0.0.1", "0.0.0.0", None):
            port = int(p["PublicPort"])
    return ContainerFacts(
        id=raw["Id"],
        name=raw["Names"][0].lstrip("/"),
        state=raw.get("State", "unknown"),
        image=raw.get("Image", ""),
        image_id=raw.get("ImageID") or None,
        labels=raw.get("Labels") or {},
        host_port=port,
        networks=tuple(sorted(((raw.get("NetworkSettings") or {}).get("Networks") or {}).keys())),
    )


def _classify(topo: Topology, names: L.Names, containers: list[ContainerFacts], volumes: list[dict[str, Any]]) -> _Parts:
    parts = _Parts()
    wanted_containers = {names.container(n): n for n in topo.nodes}
    for c in containers:
        ours = c.labels.get(L.CLUSTER) == topo.cluster
        role, node = c.labels.get(L.ROLE), c.labels.get(L.NODE)
        if not ours:
            if c.name in wanted_containers or c.name == names.lock or (topo.pooler is not None and c.name in (
                    pooler_config.container_name(topo.cluster, "read-write"),
                    pooler_config.container_name(topo.cluster, "read-only"))):
                parts.foreign.append(f"container {c.name}")
        elif role == "node" and node:
            parts.containers[node] = c
        elif role == "job" and node:
            parts.jobs.setdefault(node, []).append(c)
        elif role == "helper" and not c.running:
            parts.helpers.append(c.name)
        elif role == "pooler" and c.labels.get(pooler_config.POOL_LABEL) == "read-only":
            parts.read_pooler = c
        elif role == "pooler":
            parts.pooler = c
    wanted_volumes = {names.volume(n): n for n in topo.nodes}
    for raw in volumes:
        vol = VolumeFacts(name=raw["Name"], labels=raw.get("Labels") or {})
        ours = vol.labels.get(L.CLUSTER) == topo.cluster
        if vol.name == names.state_volume:
            if ours:
                parts.state_volume = vol
            else:
                parts.foreign.append(f"volume {vol.name}")
        elif not ours:
            if vol.name in wanted_volumes:
                parts.foreign.append(f"volume {vol.name}")
        elif vol.labels.get(L.ROLE) == "node" and vol.labels.get(L.NODE):
            parts.volumes[vol.labels[L.NODE]] = vol
    return parts


def _network(raw: dict[str, Any] | None) -> NetworkFacts | None:
    if raw is None:
        return None
    configs = (raw.get("IPAM") or {}).get("Config") or []
    subnet = next((c.get("Subnet") for c in configs if c.get("Subnet")), None)
    return NetworkFacts(
        name=raw["Name"], id=raw["Id"], subnet=subnet, owned=(raw.get("Labels") or {}).get(L.CLUSTER) is not None
    )


def _read_state(client: "docker.DockerClient", topo: Topology, parts: _Parts,
                early: "Future[ClusterState | None]", known: "ClusterState | None") -> "ClusterState | None":
    """The cluster's state.  Every node container mounts the one state volume, so one read is
    enough: the early read through the primary's container when that container is ours, else
    through any node container, else through a helper.  `known` (see observe) is used as it is."""
    if parts.state_volume is None:
        return None
    if known is not None:
        return known
    primary = parts.containers.get(topo.primary)
    if primary is not None and primary.running and (state := early.result()) is not None:
        return state
    for some in parts.containers.values():  # another running node container, else a helper
        if some.running and some.name != (primary.name if primary else None):
            if (state := _state_in(client, some.id, topo.cluster)) is not None:
                return state
            break
    return cluster_state.read(client, topo.image, parts.state_volume.name, topo.cluster)


def _state_in(client: "docker.DockerClient", container: str, cluster: str) -> "ClusterState | None":
    """The state read in a running node container of this cluster; None when that cannot be done
    (the container is stopped or paused, was removed meanwhile, or is not pgtopo's: nothing runs
    in a container without the cluster's label): the caller reads it another way."""
    try:
        info = docker_ops.inspect_container(client, container)
        labels = info.get("Config", {}).get("Labels") or {}
        if labels.get(L.CLUSTER) != cluster or info.get("State", {}).get("Paused"):
            # a process started in a container as it is paused (docker pause) never starts, and
            # Docker 20.10 answers nothing about that container until it is thawed by hand
            return None
        return cluster_state.read_in(client, container)
    except PgtopoError:
        return None


def password_drift(wanted: tuple[str | None, str | None], state: "ClusterState | None") -> tuple[str, ...]:
    """The auth fields whose password in the file differs from the one in use (never the values)."""
    if state is None:
        return ()
    have = (state.superuser_password, state.replication_password)
    names = ("superuser_password", "replication_password")
    return tuple(name for name, want, had in zip(names, wanted, have, strict=True) if want is not None and want != had)


def _endpoints(containers: dict[str, ContainerFacts], state: "ClusterState | None",
               fallback: str | None, cluster: str) -> dict[str, pg_ops.Endpoint]:
    if state is None:
        return {}
    return {
        node: pg_ops.Endpoint(node, c.host_port, state.superuser_password, fallback, cluster)
        for node, c in containers.items()
        if c.running and c.host_port
    }


def probe_pooler(cluster: str, container: ContainerFacts | None, state: "ClusterState | None") -> PoolerFacts:
    """The pooler's container, and what its admin console says when it runs."""
    if container is None or not container.running or container.host_port is None or state is None:
        return PoolerFacts(container=container)
    try:
        said = admin.state(admin.Console(container.host_port, pooler_config.password(state.superuser_password)))
    except PgtopoError as exc:
        return PoolerFacts(container=container, error=exc.message)
    return PoolerFacts(container=container, targets=pooler_config.targets(said.host, cluster), paused=said.paused,
                       clients=said.clients, servers=said.servers)


def _runs(container: ContainerFacts | None) -> bool:
    return container is not None and container.running


def _probe_node(client: "docker.DockerClient", image: str, node: str, parts: _Parts,
                endpoint: pg_ops.Endpoint | None, read: "Future[DataFacts] | None") -> NodeFacts:
    container, volume = parts.containers.get(node), parts.volumes.get(node)
    pg = pg_error = data = None
    if endpoint is not None:
        try:
            pg = probe.probe(endpoint)
        except PgtopoError as exc:
            pg_error = exc.message
    elif container is not None and container.running:
        pg_error = "no published port or no password known"
    if read is not None:
        data = read.result()
    elif pg is None and volume is not None:
        data = _read_data(client, image, volume)
    if pg is None and container is not None and container.running:  # caught between two crashes?
        container = replace(container, restarts=_restarts(client, container.id))
    stream_error = settings_pause = None
    if pg is not None and pg.in_recovery and container is not None and (not _streams(pg) or pg.replay_paused):
        tail = _log_tail(client, container.id)
        stream_error = last_stream_error(tail) if not _streams(pg) else None
        settings_pause = last_settings_pause(tail) if pg.replay_paused else None
    elif container is not None and container.running and not_open_yet(pg_error):
        # a standby still replaying up to a consistent state refuses connections; its receiver
        # says in the log when its upstream no longer has the WAL it needs (copies.never_consistent)
        stream_error = last_stream_error(_log_tail(client, container.id))
    return NodeFacts(name=node, container=container, volume=volume, data=data, pg=pg, pg_error=pg_error,
                     jobs=tuple(parts.jobs.get(node, [])), stream_error=stream_error, settings_pause=settings_pause)


def not_open_yet(error: str | None) -> bool:
    """The server refused a connection because it has not reached a consistent state yet (its words
    up to PostgreSQL 13, and from 14 on)."""
    return error is not None and ("the database system is starting up" in error
                                  or "the database system is not yet accepting connections" in error)


def _streams(pg: PgFacts) -> bool:
    return pg.receiver is not None and pg.receiver.status == "streaming"


# What a standby's WAL receiver logs when it cannot stream (PostgreSQL 12 to 18).
_STREAM_FAILURE = re.compile(r"(could not receive data from WAL stream|could not connect to the primary server|"
                             r"could not start WAL streaming|highest timeline \d+ of the primary is behind)"
                             r":?\s*(.*)")


def _log_tail(client: "docker.DockerClient", container: str) -> list[str]:
    """The server log's last lines: read only for a standby that does not stream or whose replay
    is paused, so a healthy cluster pays nothing.  A standby tries to stream only once it has
    replayed all the WAL of its own pg_wal: a receiver's complaint means it waits for WAL from
    where it has replayed to."""
    try:
        return docker_ops.last_lines(client, container, 40).splitlines()
    except PgtopoError:
        return []


def _since_start(tail: list[str]) -> list[str]:
    started = max((i for i, line in enumerate(tail) if "starting PostgreSQL" in line), default=-1)
    return tail[started + 1:]


def last_settings_pause(tail: list[str]) -> str | None:
    """PostgreSQL paused this standby's replay at a parameter change of its primary's that its
    own settings are below ("max_wal_senders = 40 is a lower setting than on the primary server,
    where its value was 42"), since the server last started; None otherwise."""
    for line in reversed(_since_start(tail)):
        if "is a lower setting than on the primary server" in line:
            return re.sub(r"^.*?DETAIL:\s*", "", line).strip().rstrip(".")
    return None


def last_stream_error(tail: list[str]) -> str | None:
    """The WAL receiver's last complaint in these last lines of a server log, after the last
    "starting PostgreSQL" (the lines of an earlier run say nothing about this one)."""
    for line in reversed(_since_start(tail)):
        match = _STREAM_FAILURE.search(line)
        if match:
            detail = re.sub(r"^(FATAL|ERROR):\s*", "", match.group(2).strip())
            return f"{match.group(1)}: {detail}" if detail else match.group(1)
    return None


def _restarts(client: "docker.DockerClient", container: str) -> int:
    try:
        return int(docker_ops.inspect_container(client, container).get("RestartCount", 0))
    except PgtopoError:  # removed meanwhile: nothing to say
        return 0


def _read_data(client: "docker.DockerClient", image: str, volume: VolumeFacts) -> DataFacts:
    """Does the volume hold a PGDATA, of which cluster (pg_control's system identifier), and did
    a rewind stop half-way?  Read through a helper that mounts the volume read-only, never
    through the node's own container (docker_ops.HelperId says why)."""
    mounts = (Mount(volume.name, L.DATA_MOUNT, read_only=True),)
    cluster = volume.labels.get(L.CLUSTER, "")
    with docker_ops.helper(client, image, mounts, L.labels(cluster, "helper"), L.Names(cluster).helper()) as cid:
        return _data_facts(client, cid)


def _data_facts(client: "docker.DockerClient", container: docker_ops.HelperId) -> DataFacts:
    control = pgcontrol.parse(docker_ops.read_file(client, container, f"{L.PGDATA}/global/pg_control") or b"")
    before = (docker_ops.read_file(client, container, L.UPGRADED_FROM) or b"").strip()
    upgraded_from = int(before) if before.isdigit() else None
    if control is None:
        swap = majors.of_pg_version_file(docker_ops.read_file(client, container, L.UPGRADE_SWAP))
        return DataFacts(has_pgdata=False, swap_from=swap, upgraded_from=upgraded_from)
    interrupted = docker_ops.read_file(client, container, L.REWIND_MARKER) is not None
    fenced = any(docker_ops.read_file(client, container, f"{L.PGDATA}/{signal}") is not None
                 for signal in ("standby.signal", "recovery.signal"))
    conf = docker_ops.read_file(client, container, f"{L.PGDATA}/postgresql.auto.conf")
    return DataFacts(has_pgdata=True, system_identifier=control.system_identifier, interrupted=interrupted,
                     state=control.state, checkpoint=control.checkpoint, timeline=control.timeline, fenced=fenced,
                     limits=control.limits, auto_conf=autoconf.parse(conf.decode(errors="replace")) if conf else None,
                     major=majors.of_pg_version_file(docker_ops.read_file(client, container, f"{L.PGDATA}/PG_VERSION")),
                     upgraded_from=upgraded_from)


def read_wal_ends(client: "docker.DockerClient", topo: Topology, observed: Observed,
                  nodes: tuple[str, ...]) -> Observed:
    """Where the WAL of these stopped nodes ends (pg_waldump in a read-only job on each volume,
    in parallel): what a promotion must compare (copies.wal_end_needed says when).  A node
    whose WAL cannot be read keeps wal_end None, and the planner treats it as possibly ahead."""
    if not nodes:
        return observed
    with ThreadPoolExecutor(max_workers=min(8, len(nodes))) as pool:
        found = dict(zip(nodes, pool.map(lambda n: _wal_end(client, topo, observed.node(n), observed.image_major),
                                          nodes), strict=True))
    updated = {name: replace(facts, data=found.get(name) or facts.data) for name, facts in observed.nodes.items()}
    return replace(observed, nodes=updated)


def _wal_end(client: "docker.DockerClient", topo: Topology, facts: NodeFacts,
             image_major: int | None) -> DataFacts | None:
    data = facts.data
    if data is None or data.timeline is None or data.checkpoint is None:
        return None
    job = desired.waldump_job(topo, facts.name, data.timeline, lsn_text(data.checkpoint))
    if data.major != image_major and facts.container is not None and facts.container.image_id is not None:
        # WAL of another major (an upgrade under way) is read by the node's own container's image,
        # whose pg_waldump knows that WAL's format
        job = replace(job, image=facts.container.image_id)
    try:
        output = docker_ops.run_job(client, job)
    except PgtopoError as exc:
        return replace(data, wal_error=f"{exc.message.splitlines()[0]} {exc.message.splitlines()[-1]}"[:300])
    end = walend.parse(output)
    if end is None or end.end is None:
        return replace(data, wal_error=walend.why_no_end(output))
    return replace(data, wal_end=end.end, wal_timeline=end.timeline, history=end.history)
