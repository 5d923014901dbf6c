"""The typed actions a plan is made of, each with its node and a reason a person can read.

Made by plan.py; printed by render.py; carried out by execute.py (dispatch with `match` on
`Kind`).  A plan is a list of waves: every wave runs after the previous one has finished, and
inside a wave each node's actions run in order while different nodes run in parallel.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

# --pull, as docker compose's: missing (pull an image the engine lacks), never, always (images.py)
PullPolicy = Literal["missing", "never", "always"]


class Kind(enum.Enum):
    PULL = "pull"  # the file's image, from its registry (images.py): before anything else, even the lock
    CREATE_NETWORK = "create-network"
    CREATE_STATE = "create-state"
    PREPARE_REPOSITORY = "prepare-repository"  # the backup repository, before any node mounts it (backup/repository.py)
    REMOVE_JOB = "remove-job"
    CREATE_VOLUME = "create-volume"
    INIT = "init"
    RESTORE = "restore"  # the primary's data from another cluster's backup (backup/restore.py), instead of initdb
    CLONE = "clone"  # a node without data: a new container that clones before its server starts
    RECLONE = "re-clone"  # over existing data: a job replaces it with a fresh copy of the upstream's
    REWIND = "rewind"
    DEMOTE = "demote"
    UPGRADE = "major-upgrade"  # the primary's data to the file's image's major (upgrade.py)
    FENCE = "fence"
    UNFENCE = "unfence"
    CREATE = "create"
    RECREATE = "recreate"
    START = "start"
    CONNECT = "connect"
    SWITCHOVER = "switchover"
    FAILOVER = "failover"
    CREATE_ROLE = "create-role"
    SET_PASSWORD = "set-password"
    RECORD_IDENTITY = "record-identity"
    PROVE_SETTINGS = "prove-settings"  # a throw-away server started on the primary's new settings (proof.py)
    CONFIGURE = "configure"
    REWRITE_CONF = "rewrite-conf"
    RESTORE_CONF = "restore-conf"  # only ever made by rollback.py, after a restart that failed
    RESTART = "restart"
    REPOINT = "repoint"
    CREATE_SLOT = "create-slot"
    DROP_SLOT = "drop-slot"
    REMOVE = "remove"
    REMOVE_VOLUME = "remove-volume"
    # the pooler (pgtopo/pooler/): its container, where it points, a pause a killed pgtopo left
    CREATE_POOLER = "create-pooler"
    RECREATE_POOLER = "recreate-pooler"
    START_POOLER = "start-pooler"
    REPOINT_POOLER = "repoint-pooler"
    RESUME_POOLER = "resume-pooler"
    REMOVE_POOLER = "remove-pooler"
    # the file's roles and databases, on the primary (roles/planning.py); "db-role" apart from the replication role's
    CREATE_DB_ROLE = "create-db-role"
    ALTER_DB_ROLE = "alter-db-role"
    DROP_DB_ROLE = "drop-db-role"
    CREATE_DATABASE = "create-database"
    ALTER_DATABASE = "alter-database"
    DROP_DATABASE = "drop-database"

    @property
    def symbol(self) -> Literal["+", "~", "-"]:
        """+ create, ~ change, - remove (destructive actions get '!' from the action itself)."""
        if self in (Kind.REMOVE, Kind.REMOVE_VOLUME, Kind.DROP_SLOT, Kind.REMOVE_JOB, Kind.REMOVE_POOLER,
                    Kind.DROP_DB_ROLE, Kind.DROP_DATABASE):
            return "-"
        if self in (Kind.PULL, Kind.CREATE_NETWORK, Kind.CREATE_STATE, Kind.PREPARE_REPOSITORY, Kind.CREATE_VOLUME,
                    Kind.INIT, Kind.RESTORE, Kind.CLONE, Kind.CREATE, Kind.CREATE_ROLE, Kind.CREATE_SLOT, Kind.CREATE_POOLER,
                    Kind.CREATE_DB_ROLE, Kind.CREATE_DATABASE):
            return "+"
        return "~"


class Phase(enum.IntEnum):
    """The phases of a plan, in the order they run."""

    BUILD = 0  # rank 0: cluster-wide objects; then each node at 1 + its depth (upstreams first)
    ROLL = 1  # recreating running containers: one node a wave, replicas first, primary last
    RESTART = 2  # restarts: one node a wave, replicas first (primary first when lowering)
    REMOVE = 3  # nodes gone from the file: containers (rank 0), then their volumes (rank 1)
    SLOTS = 4  # replication slots nobody uses any more
    JOIN = 5  # when the primary lowers a hot-standby setting: nodes whose data is copied from an
    # upstream, at 1 + their depth, once every restart is done (standby_settings.py)
    POOLER = 6  # the pooler, once the primary takes writes (pooler/planning.py)
    CATALOG = 7  # the file's roles and databases, on the primary once it takes writes (roles/planning.py)


WAVE_STRIDE = 1_000_000  # a wave's number in a plan document: phase * WAVE_STRIDE + rank


class Wave(NamedTuple):
    """When an action runs: waves run in (phase, rank) order, the nodes of one wave in parallel."""

    phase: Phase = Phase.BUILD
    rank: int = 0

    @property
    def number(self) -> int:
        """The integer a plan document carries; numbers sort as the waves run."""
        if not 0 <= self.rank < WAVE_STRIDE:
            raise ValueError(f"wave rank {self.rank} out of range")
        return self.phase * WAVE_STRIDE + self.rank

    @classmethod
    def from_number(cls, number: int) -> Wave:
        phase, rank = divmod(number, WAVE_STRIDE)
        return cls(Phase(phase), rank)


@dataclass(frozen=True)
class Action:
    kind: Kind
    node: str  # the node acted on ("" for cluster-wide actions)
    reason: str
    wave: Wave = Wave()
    upstream: str | None = None  # clone/repoint source; the slot holder for slot actions
    settings: tuple[tuple[str, str | None], ...] = ()  # configure: name -> value (None: reset)
    slot: str | None = None
    target: str | None = None  # a Docker object's name, for actions on one (a left-over job)
    destructive: bool = False
    data_loss: bool = False  # discards WAL no other node holds: needs --allow-data-loss
    fence: tuple[str, ...] = ()  # failover: the nodes stopped and fenced before the promotion
    # restart: first wait until the node has replayed this node's WAL as far as it is flushed (the
    # primary's parameter-change record, when the restart lowers a hot-standby setting)
    replay_past: str | None = None
    pause_pooler: bool = False  # the pooler is paused around it, and pointed at the file's primary after it

    def describe(self) -> str:
        """`replica2: clone — <reason>`, the line diff and apply print."""
        who = self.node or "cluster"
        paused = " (pooler paused around it)" if self.pause_pooler else ""
        return f"{who}: {self.kind.value} — {self.reason}{paused}"


@dataclass(frozen=True)
class Plan:
    actions: tuple[Action, ...] = ()
    refusals: tuple[str, ...] = ()  # why apply must not start; nothing is changed when any exist
    notes: tuple[str, ...] = field(default=())  # what is in sync, and why nothing is done there
    warnings: tuple[str, ...] = ()  # allowed, but worth a second look (a port open to every interface)

    @property
    def empty(self) -> bool:
        return not self.actions and not self.refusals

    @property
    def destructive(self) -> tuple[Action, ...]:
        return tuple(a for a in self.actions if a.destructive or a.data_loss)

    @property
    def data_loss(self) -> tuple[Action, ...]:
        return tuple(a for a in self.actions if a.data_loss)

    def waves(self) -> list[list[Action]]:
        """Actions grouped by wave, in wave order, keeping the plan's order inside each wave."""
        grouped: dict[Wave, list[Action]] = {}
        for action in self.actions:
            grouped.setdefault(action.wave, []).append(action)
        return [grouped[w] for w in sorted(grouped)]
