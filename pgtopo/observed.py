"""What exists: the observed state of a cluster, as plain frozen values (no I/O).

Built by `observe.py` and `probe.py`; read by `plan.py`, `promotion.py`, `copies.py`, `documents.py`
and `render.py`.  Unit tests build these by hand to
describe a situation and check the plan for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from pgtopo import labels as L, majors
from pgtopo.backup.archiving import ArchiverFacts
from pgtopo.pgcontrol import PRIMARY_STATES

# Settings a standby needs at least as high as its primary's (PostgreSQL checks them on replay).
HOT_STANDBY_SETTINGS = ("max_connections", "max_worker_processes", "max_wal_senders",
                        "max_prepared_transactions", "max_locks_per_transaction")
# Settings that bound what an upstream can serve: one slot and one WAL sender per standby.
CAPACITY_SETTINGS = ("max_wal_senders", "max_replication_slots")


@dataclass(frozen=True)
class ContainerFacts:
    """One container found by the listing."""

    id: str
    name: str
    state: str  # created | running | restarting | paused | exited | dead
    image: str
    image_id: str | None = None  # the id of the image it was created from (None: not observed)
    labels: Mapping[str, str] = field(default_factory=dict)
    host_port: int | None = None
    networks: tuple[str, ...] | None = None  # None: not observed (unit tests that do not care)
    restarts: int = 0  # Docker's restart count, read only for a running container whose server did not answer

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def crash_looping(self) -> bool:
        """Docker restarts it over and over (caught restarting, or running again after a restart)."""
        return self.state == "restarting" or self.restarts > 0

    @property
    def owned(self) -> bool:
        return L.CLUSTER in self.labels

    @property
    def config_hash(self) -> str | None:
        return self.labels.get(L.CONFIG_HASH)


@dataclass(frozen=True)
class VolumeFacts:
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def owned(self) -> bool:
        return L.CLUSTER in self.labels


@dataclass(frozen=True)
class NetworkFacts:
    name: str
    id: str
    subnet: str | None
    owned: bool


@dataclass(frozen=True)
class DataFacts:
    """What a data volume holds, read from its files without starting Postgres."""

    has_pgdata: bool
    system_identifier: int | None = None
    interrupted: bool = False  # a pg_rewind began and never finished: the data cannot be trusted
    state: int | None = None  # pg_control's DBState (pgcontrol.SHUT_DOWN, ...); None: not read
    checkpoint: int | None = None  # the latest checkpoint's LSN: the WAL reaches at least this far
    timeline: int | None = None  # the latest checkpoint's timeline
    fenced: bool = False  # standby.signal (or recovery.signal) in PGDATA: it can only start as a standby
    # Where its WAL really ends (the end of its last valid record, read with pg_waldump) and on
    # which timeline, with that timeline's history; None when not read (read only when a
    # promotion must be decided, see copies.wal_end_needed).
    wal_end: int | None = None
    wal_timeline: int | None = None
    history: tuple[tuple[int, int], ...] = ()
    wal_error: str | None = None  # why its WAL end could not be read, when it was tried and failed
    # pg_control's hot-standby values: a standby does not start with settings below them
    limits: Mapping[str, int] = field(default_factory=dict)
    # the settings of its postgresql.auto.conf, what its server starts with; None: not read, or
    # a line pgtopo cannot read (autoconf.parse)
    auto_conf: Mapping[str, str] | None = None
    major: int | None = None  # the PostgreSQL major that made it (PG_VERSION); None: not read
    # a major upgrade's swap of this volume was interrupted (labels.UPGRADE_SWAP): the old major, and
    # PGDATA may be missing for a moment that must never be taken for an empty volume
    swap_from: int | None = None
    upgraded_from: int | None = None  # the system identifier of the cluster its data was upgraded from

    @property
    def was_primary(self) -> bool:
        """pg_control says it ran (or was about to run) as a primary: unfenced, it would start
        accepting writes."""
        return self.state in PRIMARY_STATES


@dataclass(frozen=True)
class WalReceiver:
    status: str
    upstream: str | None  # the host in primary_conninfo: a node name (network alias)
    slot: str | None


@dataclass(frozen=True)
class Downstream:
    """One row of pg_stat_replication on a node."""

    application_name: str
    state: str
    lag_bytes: int | None
    sync_state: str = "async"  # async | potential | sync | quorum (synchronous_standby_names)


@dataclass(frozen=True)
class Slot:
    name: str


@dataclass(frozen=True)
class PgFacts:
    """Facts read from a running server through its published port."""

    server_version: int
    system_identifier: int
    in_recovery: bool
    timeline: int | None
    lsn: int | None  # current (primary) or replayed (standby) WAL position
    receive_lsn: int | None = None  # a standby: the WAL it has received (a promotion replays all of it)
    fenced: bool = False  # standby.signal in PGDATA: a restart brings it back as a standby
    receiver: WalReceiver | None = None
    downstreams: tuple[Downstream, ...] = ()
    slots: tuple[Slot, ...] = ()
    pending_restart: tuple[str, ...] = ()
    # postgresql.auto.conf entries in effect (pg_file_settings without errors: a value waiting
    # for a restart is "setting could not be applied" there, so it is left out)
    auto_conf: Mapping[str, str] = field(default_factory=dict)
    # settings waiting for a restart whose running value came from postgresql.auto.conf: that
    # value (current_setting), which the file no longer holds
    running_conf: Mapping[str, str] = field(default_factory=dict)
    replication_roles: tuple[str, ...] = ()
    restart_settings: frozenset[str] = frozenset()  # settings that only a restart applies
    history: tuple[tuple[int, int], ...] = ()  # (parent timeline, LSN where it ended)
    limits: Mapping[str, int] = field(default_factory=dict)  # HOT_STANDBY_SETTINGS and CAPACITY_SETTINGS
    # Where the oldest WAL segment file in its pg_wal starts: a standby needing older WAL from
    # it can never stream from it again (PostgreSQL removed it; pgtopo does not archive yet)
    oldest_wal: int | None = None
    replay_paused: bool = False  # a standby whose replay is paused (by hand, or by PostgreSQL itself)

    @property
    def working_conf(self) -> dict[str, str]:
        """The postgresql.auto.conf this server runs with: what a restart that fails to start
        puts back (rollback.py)."""
        return {**{k: v for k, v in self.auto_conf.items() if k not in self.pending_restart}, **self.running_conf}


@dataclass(frozen=True)
class NodeFacts:
    """Everything observed about one node name (in the file, or found by label)."""

    name: str
    container: ContainerFacts | None = None
    volume: VolumeFacts | None = None
    data: DataFacts | None = None  # None: not read (Postgres answered, or no volume)
    pg: PgFacts | None = None
    pg_error: str | None = None  # why the probe failed, when the container runs
    jobs: tuple[ContainerFacts, ...] = ()  # one-shot containers left by an interrupted apply
    # A standby that does not stream: its WAL receiver's last error since the server started
    # (it has replayed all the WAL its own pg_wal holds: it waits for more from its upstream);
    # also read for a running server that does not answer yet (still short of a consistent state)
    stream_error: str | None = None
    # A standby whose replay PostgreSQL paused: replaying a parameter change of its primary's
    # that its own settings are below (the server's DETAIL line)
    settings_pause: str | None = None

    @property
    def has_data(self) -> bool:
        """The node's volume holds a PGDATA, as far as observation could tell."""
        return self.pg is not None or (self.data is not None and self.data.has_pgdata)

    @property
    def system_identifier(self) -> int | None:
        if self.pg is not None:
            return self.pg.system_identifier
        return self.data.system_identifier if self.data else None

    @property
    def major(self) -> int | None:
        """The PostgreSQL major of its data: its server's when it answers, else PG_VERSION's."""
        if self.pg is not None:
            return majors.of_server_version(self.pg.server_version)
        return self.data.major if self.data else None


@dataclass(frozen=True)
class PoolerFacts:
    """The pooler's container and what its admin console says (docs/pooler.md)."""

    container: ContainerFacts | None = None
    targets: tuple[str, ...] = ()  # the nodes its pools go to, in its order; none: not known
    paused: bool | None = None  # paused or pausing; None: not known
    clients: int | None = None
    servers: int | None = None
    error: str | None = None  # why its console did not answer, when its container runs

    @property
    def answers(self) -> bool:
        return self.paused is not None

    @property
    def target(self) -> str | None:
        """The one node a read-write pool points at; None when not known (or several)."""
        return self.targets[0] if len(self.targets) == 1 else None


@dataclass(frozen=True)
class RoleFacts:
    """A role on the primary that the file names or pgtopo manages (never its password or verifier)."""

    name: str
    managed: bool  # its comment is pgtopo's mark (roles/planning.MARK): pgtopo made or adopted it
    login: bool = True
    createdb: bool = False
    inherit: bool = True
    connection_limit: int = -1
    valid_until: str = "infinity"  # "infinity" (also for none), "-infinity", or a timestamp in UTC (spec.valid_until_text)
    in_roles: tuple[str, ...] = ()  # the roles it is a member of, sorted
    password: bool | None = None  # the file's password matches its SCRAM verifier; None: not compared


@dataclass(frozen=True)
class DatabaseFacts:
    """A database on the primary that the file names or pgtopo manages."""

    name: str
    owner: str
    managed: bool  # its comment is pgtopo's mark
    encoding: str | None = None
    locale: str | None = None  # its LC_COLLATE


@dataclass(frozen=True)
class Observed:
    """The whole observed state of one cluster."""

    cluster: str
    network: NetworkFacts | None = None
    state_volume: VolumeFacts | None = None
    system_identifier: int | None = None  # recorded at initdb in the state volume
    credentials: bool = False  # the state volume holds the cluster's passwords
    restored_from: str | None = None  # the state volume records a restore from a backup ("CLUSTER LABEL")
    nodes: Mapping[str, NodeFacts] = field(default_factory=dict)
    foreign: tuple[str, ...] = ()  # objects with pgtopo names but without pgtopo labels
    leftovers: tuple[str, ...] = ()  # helper containers a killed pgtopo left behind (never started)
    image_present: bool = True  # the file's image exists in the engine (else apply pulls it: images.py)
    image_id: str | None = None  # the id of the image the file's image name now names; None: not known
    image_major: int | None = None  # the PostgreSQL major of the file's image; None: not known
    # auth fields whose value in the file differs from the password in use (never the values)
    password_drift: tuple[str, ...] = ()
    # (node, host port, who holds it) for fixed ports of the file that something else holds
    ports_taken: tuple[tuple[str, int, str], ...] = ()
    pooler: PoolerFacts = PoolerFacts()
    read_pooler: PoolerFacts = PoolerFacts()  # the pooler's read-only endpoint
    # read on the file's primary while it takes writes; None: not read (it does not, or did not answer)
    roles: tuple[RoleFacts, ...] | None = None
    databases: tuple[DatabaseFacts, ...] | None = None
    # with a backup: block: its repository volume (None: missing, or the repository is a host path),
    # and the file's primary's pg_stat_archiver (None: not read)
    repository: VolumeFacts | None = None
    archiver: ArchiverFacts | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "nodes", MappingProxyType(dict(self.nodes)))

    def node(self, name: str) -> NodeFacts:
        return self.nodes.get(name) or NodeFacts(name=name)
