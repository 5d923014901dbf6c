"""The topology model: what a cluster must be, as the file says it (frozen pydantic v2).

Built by `loader.load_topology`; read by the planner and the CLI.  Pure: no I/O here, not even
resolving secrets (that is `state.desired_passwords`).  Cross-field checks report every problem at
once, each with the location of the key it is about, so the loader can print `FILE:LINE:COL` for
each.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from pgtopo import pg_settings
from pgtopo.backup.spec import Backup, Bootstrap, VolumeRepository
from pgtopo.labels import Names
from pgtopo.pooler import settings as pooler_settings

NAME_PATTERN = r"^[a-z][a-z0-9-]{0,29}$"
ROLE_PATTERN = r"^[a-z_][a-z0-9_]{0,62}$"
PARAM_PATTERN = r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$"
NETWORK_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$"
IMAGE_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9_.:/@-]{0,254}$"
PARAM_TEXT_PATTERN = r"^[^\x00-\x1f\x7f]*$"  # no control characters

# Docker's image reference grammar (distribution/reference): [DOMAIN[:PORT]/]NAME[:TAG][@DIGEST].
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
IMAGE_REFERENCE = re.compile(
    rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*(?::[0-9]+)?/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?",
    re.ASCII,
)
# Roles that cannot replicate: the superuser, names PostgreSQL reserves, pg_hba.conf's `all`.
RESERVED_ROLES = frozenset({"postgres", "public", "none", "all"})
# ... nor be a role of the file's `roles:` (nor the replication user, pg_*, pgtopo*: see _role_problems),
# nor a name SQL reads as a role of its own (CURRENT_USER and its kind)
RESERVED_FILE_ROLES = RESERVED_ROLES | {"current_role", "current_user", "session_user"}
RESERVED_DATABASES = frozenset({"postgres", "template0", "template1"})
ENCODING_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$"
LOCALE_PATTERN = r"^[A-Za-z0-9_.@-]{1,64}$"


def _image_reference(value: str) -> str:
    if not IMAGE_REFERENCE.fullmatch(value):
        raise ValueError("must be a Docker image reference, [REGISTRY[:PORT]/]NAME[:TAG][@DIGEST] with NAME in "
                         f"lowercase (got {value!r})")
    return value


DURATION = re.compile(r"^([1-9][0-9]{0,9})(ms|s|min|h|d)$")
_DURATION_MS = {"ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}
MAX_DELAY_MS = 2**31 - 1  # recovery_min_apply_delay's largest value


def duration_ms(text: str) -> int:
    match = DURATION.fullmatch(text)
    assert match is not None
    return int(match.group(1)) * _DURATION_MS[match.group(2)]


def duration_text(value: str) -> str:
    """A duration as PostgreSQL writes one: a whole number and ms, s, min, h or d."""
    if not isinstance(value, str) or not DURATION.fullmatch(value):
        raise ValueError(f"must be a duration: a whole number and ms, s, min, h or d, e.g. 30s, 15min, 1h (got "
                         f"{value!r})")
    if duration_ms(value) > MAX_DELAY_MS:
        raise ValueError(f"must be at most {MAX_DELAY_MS} ms, about 24 days (got {value!r})")
    return value


def _replication_role(value: str) -> str:
    if value in RESERVED_ROLES or value.startswith(("pg_", "pgtopo")):
        raise ValueError(f"{value!r} cannot be the replication user (reserved: postgres, public, none, all, pg_*, "
                         "pgtopo*)")
    return value


# Settings pgtopo owns: a user value would break replication or pgtopo's access to the server.
MANAGED_PARAMETERS = frozenset(
    {
        "primary_conninfo",
        "primary_slot_name",
        "port",
        "listen_addresses",
        "data_directory",
        "hba_file",
        "ident_file",
        "config_file",
        "unix_socket_directories",
        "cluster_name",
    }
)
# Settings the file says another way: what to write instead.
OWNED_PARAMETERS = {
    "synchronous_standby_names": "pgtopo sets it on every node from the file's synchronous: block (method, "
                                 "number) and each node's sync / sync_priority: use those",
    "recovery_min_apply_delay": "pgtopo sets it from a node's delay: (e.g. delay: 1h): use that",
    "archive_mode": "pgtopo sets it from the file's backup: block (docs/backup.md): use that",
}

# Settings the file may not set because they break pgtopo's guarantees, or run a command (or load
# a library) as the postgres user, beside the credentials in the state volume: why, and what to do.
_RUNS_A_COMMAND = ("runs a command as the postgres user, which can read the cluster's credentials; "
                   "pgtopo archives WAL and restores from the file's backup: and bootstrap: blocks "
                   "(docs/backup.md): remove it")
FORBIDDEN_PARAMETERS = {
    "recovery_target": "would stop WAL replay at a point of its own, so a standby may never catch up and a "
                       "promotion may lose committed writes: remove it (to restore a new cluster to a point in "
                       "time: the file's bootstrap: block, docs/backup.md)",
    "promote_trigger_file": "would let a file promote a standby behind pgtopo's back (two writers): remove it "
                            "and promote by changing `primary:` in the file",
    "hot_standby": "must stay on: pgtopo reads every standby's state through SQL before it decides anything; "
                   "remove it",
    "archive_command": _RUNS_A_COMMAND,
    "archive_library": "loads a library into the server, which can read the cluster's credentials; "
                       "pgtopo archives WAL from the file's backup: block (docs/backup.md): remove it",
    "archive_cleanup_command": _RUNS_A_COMMAND,
    "restore_command": _RUNS_A_COMMAND,
    "recovery_end_command": _RUNS_A_COMMAND,
    "ssl_passphrase_command": "runs a command as the postgres user, which can read the cluster's credentials: "
                              "remove it (use a key without a passphrase)",
}


def parameter_problem(name: str) -> str | None:
    """Why the file may not set parameter `name`; None when it may."""
    if name in MANAGED_PARAMETERS:
        return f"parameter {name!r} is managed by pgtopo and cannot be set"
    if name in OWNED_PARAMETERS:
        return f"parameter {name!r} cannot be set: {OWNED_PARAMETERS[name]}"
    why = FORBIDDEN_PARAMETERS.get("recovery_target" if name.startswith("recovery_target") else name)
    return f"parameter {name!r} cannot be set: it {why}" if why else None


Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
ParamName = Annotated[str, StringConstraints(pattern=PARAM_PATTERN, max_length=63)]
ParamText = Annotated[str, StringConstraints(pattern=PARAM_TEXT_PATTERN, max_length=1024)]
ParamInt = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]  # what PostgreSQL can hold at most
ParamValue = bool | ParamInt | float | ParamText
Parameters = dict[ParamName, ParamValue]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EnvSecret(_Frozen):
    """A secret read from an environment variable of the pgtopo process."""

    env: Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


class FileSecret(_Frozen):
    """A secret read from a file (relative paths are relative to the topology file)."""

    file: Annotated[str, StringConstraints(min_length=1, max_length=4096)]


SecretRef = EnvSecret | FileSecret


class Auth(_Frozen):
    """Roles and passwords. Passwords are optional: absent ones are generated and kept by pgtopo."""

    replication_user: Annotated[
        str, StringConstraints(pattern=ROLE_PATTERN), AfterValidator(_replication_role)
    ] = "repuser"
    superuser_password: SecretRef | None = None
    replication_password: SecretRef | None = None


class Node(_Frozen):
    """One PostgreSQL server: the primary, or a replica streaming from `upstream`."""

    port: Annotated[int, Field(ge=1, le=65535)] | None = Field(
        default=None, description="Host port published on 127.0.0.1; an ephemeral one when absent."
    )
    bind: Literal["127.0.0.1", "0.0.0.0"] = Field(
        default="127.0.0.1",
        description="Where the port is published: loopback only, or every interface (diff warns).",
    )
    upstream: Name | None = Field(
        default=None, description="The node this replica streams from; the primary when absent."
    )
    parameters: Parameters = Field(default_factory=dict, description="Overrides cluster parameters.")
    sync: bool | None = Field(
        default=None, description="May be a synchronous standby (with `synchronous:`); absent: yes, unless delayed."
    )
    sync_priority: Annotated[int, Field(ge=1, le=1000)] | None = Field(
        default=None, description="Its place in `method: first` (lower first; then by name); absent: after those "
                                  "that have one."
    )
    delay: Annotated[str, AfterValidator(duration_text)] | None = Field(
        default=None, description="Replays WAL this long after it was written (recovery_min_apply_delay): 30s, "
                                  "15min, 1h, 2d. Never synchronous, never promoted without --allow-data-loss."
    )


class Synchronous(_Frozen):
    """Synchronous replication: commits wait until `number` standbys hold them (docs/synchronous.md)."""

    method: Literal["any", "first"] = Field(
        default="any", description="any: a quorum of `number` among the eligible (ANY n); first: the first "
                                   "`number` that stream, by sync_priority (FIRST n)."
    )
    number: Annotated[int, Field(ge=1, le=100)] = Field(default=1, description="How many standbys hold each "
                                                                               "commit before it returns.")
    durability: Literal["required", "preferred"] = Field(
        default="required", description="required: commits wait while fewer stream (PostgreSQL blocks them); "
                                        "preferred: each apply lowers `number` to the standbys that stream."
    )


class Switchover(_Frozen):
    """How careful a declared switchover is (changing `primary:` to a running replica)."""

    max_lag_bytes: Annotated[int, Field(ge=0, le=2**63 - 1)] = Field(
        default=16 * 1024 * 1024, description="Refuse when the candidate replays further behind than this."
    )
    timeout_seconds: Annotated[float, Field(gt=0, le=3600)] = Field(
        default=30.0, description="How long to wait for the candidate to replay the old primary's last WAL."
    )


PoolerSetting = bool | Annotated[int, Field(ge=0, le=2**31 - 1)] | Annotated[float, Field(ge=0, le=2**31 - 1)]
Image = Annotated[str, StringConstraints(pattern=IMAGE_PATTERN), AfterValidator(_image_reference)]


class ReadOnlyPool(_Frozen):
    """The pooler's read-only endpoint: a PgBouncer of its own over the replicas that stream."""

    port: Annotated[int, Field(ge=1, le=65535)] = Field(description="Its host port.")
    max_lag_bytes: Annotated[int, Field(ge=0, le=2**63 - 1)] = Field(
        default=16 * 1024 * 1024, description="A replica replaying further behind its primary leaves the pool "
                                              "(at the next apply).")


class Pooler(_Frozen):
    """A PgBouncer in front of the cluster: the applications' one endpoint (docs/pooler.md)."""

    image: Image = Field(description="An image with pgbouncer (1.19 or later) on PATH whose user is not root.")
    port: Annotated[int, Field(ge=1, le=65535)] = Field(
        default=6432, description="The read-write endpoint's host port (PgBouncer's own default)."
    )
    bind: Literal["127.0.0.1", "0.0.0.0"] = Field(
        default="127.0.0.1", description="Where the port is published: loopback only, or every interface (diff warns)."
    )
    pool_mode: Literal["transaction", "session"] = Field(
        default="transaction", description="transaction hides switchovers and restarts; session cannot (diff warns)."
    )
    pause_timeout_seconds: Annotated[float, Field(gt=0, le=600)] = Field(
        default=10.0, description="How long PAUSE may wait for running transactions before apply resumes the pool "
                                  "and refuses the step."
    )
    parameters: dict[ParamName, PoolerSetting] = Field(
        default_factory=dict, description="PgBouncer settings, from an allow-list (docs/pooler.md)."
    )
    read_only: ReadOnlyPool | None = Field(default=None, description="A second endpoint whose pools go to the "
                                                                     "streaming replicas; absent: none.")


def valid_until_text(value: str) -> str:
    """`infinity`, or an ISO 8601 timestamp (UTC when it names no offset) written in UTC the way
    observation reads the server's (`2030-01-01T00:00:00+00:00`)."""
    if value == "infinity":
        return value
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"must be an ISO 8601 timestamp (2030-01-01T00:00:00Z) or infinity (got {value!r})") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat()


RoleName = Annotated[str, StringConstraints(pattern=ROLE_PATTERN)]


class Role(_Frozen):
    """An applications' role that pgtopo makes and keeps as the file says (docs/topology.md#roles)."""

    password: SecretRef | None = Field(default=None, description="Set as a SCRAM verifier; absent: pgtopo sets "
                                                                 "none and leaves the role's own alone.")
    login: bool = Field(default=True, description="May log in (LOGIN).")
    createdb: bool = Field(default=False, description="May create databases (CREATEDB).")
    inherit: bool = Field(default=True, description="Uses the privileges of the roles it is a member of (INHERIT).")
    connection_limit: Annotated[int, Field(ge=-1, le=2**31 - 1)] = Field(
        default=-1, description="Concurrent connections it may hold; -1: no limit.")
    valid_until: Annotated[str, StringConstraints(max_length=64), AfterValidator(valid_until_text)] = Field(
        default="infinity", description="When its password stops being accepted: an ISO 8601 timestamp (UTC when "
                                        "it names no offset) or infinity.")
    in_roles: tuple[RoleName, ...] = Field(default=(), description="The roles it is a member of, and only those: "
                                                                   "predefined pg_* roles or roles of the file.")


class Database(_Frozen):
    """A database that pgtopo makes and whose owner it keeps (docs/topology.md#databases)."""

    owner: RoleName = Field(default="postgres", description="A role of the file, or postgres.")
    encoding: Annotated[str, StringConstraints(pattern=ENCODING_PATTERN)] | None = Field(
        default=None, description="At creation only (from template0); the server's default when absent.")
    locale: Annotated[str, StringConstraints(pattern=LOCALE_PATTERN)] | None = Field(
        default=None, description="At creation only (from template0); the server's default when absent.")


class TopologyProblems(ValueError):
    """Cross-field problems of a topology, each as (location, message)."""

    def __init__(self, problems: list[tuple[tuple[str | int, ...], str]]) -> None:
        super().__init__("; ".join(msg for _, msg in problems))
        self.problems = problems


class Topology(_Frozen):
    """A whole cluster: the file's `version: 1` document."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={"title": "pgtopo topology file, version 1"},
    )

    version: Literal[1]
    cluster: Name = Field(description="Prefixes every Docker object: <cluster>-<node>.")
    image: Image = Field(description="An image with PostgreSQL >= 13 server binaries on PATH and a postgres user.")
    network: Annotated[str, StringConstraints(pattern=NETWORK_PATTERN)] | None = Field(
        default=None, description='A bridge network; "<cluster>-net" when absent.'
    )
    primary: Name = Field(description="The node that must be the primary.")
    auth: Auth = Field(default_factory=Auth)
    parameters: Parameters = Field(default_factory=dict, description="Cluster-wide settings.")
    switchover: Switchover = Field(default_factory=Switchover)
    nodes: Annotated[dict[Name, Node], Field(min_length=1)]
    synchronous: Synchronous | None = Field(default=None, description="Synchronous replication; absent: every "
                                                                      "standby is asynchronous.")
    pooler: Pooler | None = Field(default=None, description="A PgBouncer endpoint that follows the primary; "
                                                            "absent: none.")
    roles: dict[RoleName, Role] = Field(default_factory=dict, description="Login roles pgtopo makes and keeps "
                                                                          "on the primary.")
    databases: dict[RoleName, Database] = Field(default_factory=dict, description="Databases pgtopo makes on "
                                                                                  "the primary.")
    backup: Backup | None = Field(default=None, description="WAL archiving and base backups into a repository; "
                                                            "absent: none.")
    bootstrap: Bootstrap | None = Field(default=None, description="How a cluster with no data anywhere is made; "
                                                                  "absent: initdb.")

    @model_validator(mode="after")
    def _check_shape(self) -> "Topology":
        problems = topology_problems(self)
        if problems:
            raise TopologyProblems(problems)
        return self

    # Derived views: pure functions of the model.

    @property
    def network_name(self) -> str:
        return self.network or f"{self.cluster}-net"

    def upstream_of(self, node: str) -> str | None:
        """The node `node` streams from; None for the primary."""
        if node == self.primary:
            return None
        return self.nodes[node].upstream or self.primary

    def replicas(self) -> list[str]:
        return [name for name in self.nodes if name != self.primary]

    def depth(self, node: str) -> int:
        """0 for the primary, 1 for its direct replicas, 2 for cascaded ones, ..."""
        hops, current = 0, node
        while (up := self.upstream_of(current)) is not None:
            hops, current = hops + 1, up
        return hops

    def downstreams(self, node: str) -> list[str]:
        return [name for name in self.nodes if self.upstream_of(name) == node]

    def parameters_of(self, node: str) -> dict[str, ParamValue]:
        """Cluster parameters with the node's own overrides on top."""
        return {**self.parameters, **self.nodes[node].parameters}


def topology_problems(topo: Topology) -> list[tuple[tuple[str | int, ...], str]]:
    """Every cross-field problem of `topo`, with the location of the key it is about."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    nodes = topo.nodes
    if topo.primary not in nodes:
        problems.append((("primary",), f"primary {topo.primary!r} is not one of the nodes ({', '.join(nodes)})"))
    for name, node in nodes.items():
        if name.startswith("pgtopo"):
            problems.append((("nodes", name), f"node name {name!r} is reserved (names starting with 'pgtopo')"))
        if node.upstream is None:
            continue
        if name == topo.primary:
            problems.append((("nodes", name, "upstream"), f"the primary {name!r} cannot have an upstream"))
        elif node.upstream == name:
            problems.append((("nodes", name, "upstream"), f"node {name!r} cannot stream from itself"))
        elif node.upstream not in nodes:
            problems.append((("nodes", name, "upstream"), f"upstream {node.upstream!r} of node {name!r} is not a node"))
    problems.extend(_chain_problems(topo))
    problems.extend(_port_problems(topo))
    problems.extend(_parameter_problems(topo))
    problems.extend(_pooler_problems(topo))
    problems.extend(_synchronous_problems(topo))
    problems.extend(_role_problems(topo))
    problems.extend(_database_problems(topo))
    problems.extend(_repository_problems(topo))
    return problems


def _repository_problems(topo: Topology) -> list[tuple[tuple[str | int, ...], str]]:
    """A repository volume named like one of the cluster's own volumes would be mounted, and
    written to, as both (a node's data under its WAL archive)."""
    if topo.backup is None or not isinstance(topo.backup.repository, VolumeRepository):
        return []
    names = Names(topo.cluster)
    own = {names.volume(n): f"node {n}'s data volume" for n in topo.nodes} | {names.state_volume: "the state volume"}
    volume = topo.backup.repository.volume
    if volume not in own:
        return []
    return [(("backup", "repository", "volume"), f"volume {volume!r} is {own[volume]}: a repository needs a "
             f"volume of its own (e.g. {topo.cluster}-backup)")]


def sync_eligible(topo: Topology) -> tuple[str, ...]:
    """The nodes synchronous_standby_names lists, in the order it lists them: the primary and its
    direct replicas, less those with `sync: false` or a `delay` (the primary's own name is ignored
    by its server, and keeps the list the same after a switchover)."""
    if topo.synchronous is None:
        return ()
    eligible = [name for name, node in topo.nodes.items() if topo.depth(name) <= 1 and node.delay is None
                and node.sync is not False]
    last = 1001  # after every sync_priority
    return tuple(sorted(eligible, key=lambda n: (topo.nodes[n].sync_priority or last, n)))


def _synchronous_problems(topo: Topology) -> list[tuple[tuple[str | int, ...], str]]:
    if topo.primary not in topo.nodes or _chain_problems(topo):
        return []
    problems: list[tuple[tuple[str | int, ...], str]] = []
    sync = topo.synchronous
    for name, node in topo.nodes.items():
        where = ("nodes", name)
        if node.delay is not None and name == topo.primary:
            problems.append(((*where, "delay"), f"the primary {name!r} cannot have a delay: remove it (a delayed "
                             "node is made the primary only once its delay is removed)"))
        if node.delay is not None and node.sync:
            problems.append(((*where, "sync"), f"node {name!r} has a delay: it is never synchronous; remove sync"))
        for key in ("sync", "sync_priority"):
            if getattr(node, key) is None:
                continue
            if sync is None:
                problems.append(((*where, key), f"{key} needs a synchronous: block (synchronous: {{method: any, "
                                 "number: 1})"))
            elif topo.depth(name) > 1:
                problems.append(((*where, key), f"node {name!r} streams from {topo.upstream_of(name)}, not the "
                                 f"primary: PostgreSQL never makes a cascaded standby synchronous; remove {key}"))
            elif key == "sync_priority" and (node.delay is not None or node.sync is False):
                problems.append(((*where, key), f"node {name!r} is never synchronous (sync: false or a delay): "
                                 "remove sync_priority"))
            elif key == "sync_priority" and sync.method != "first":
                problems.append(((*where, key), "sync_priority orders method: first; with method: any every "
                                 "eligible standby counts the same: remove it"))
    if sync is not None:
        standbys = [n for n in sync_eligible(topo) if n != topo.primary]
        if sync.number > len(standbys):
            count = f"{len(standbys)} standby{'' if len(standbys) == 1 else 's'}"
            problems.append((("synchronous", "number"), f"number is {sync.number} but only {count} "
                             f"may be synchronous ({', '.join(standbys) or 'none'}: replicas of the primary without "
                             "sync: false or a delay); lower it or add replicas"))
    return problems


def _role_problems(topo: Topology) -> list[tuple[tuple[str | int, ...], str]]:
    """Names the file's roles may not take, and memberships PostgreSQL would refuse or that would
    hand a role pgtopo's or the superuser's rights."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    replication = topo.auth.replication_user
    for name, role in topo.roles.items():
        if name in RESERVED_FILE_ROLES or name == replication or name.startswith(("pg_", "pgtopo")):
            problems.append((("roles", name), f"role name {name!r} is reserved (postgres, public, none, all, "
                             f"current_role, current_user, session_user, the replication user {replication}, pg_*, "
                             "pgtopo*)"))
        for i, group in enumerate(role.in_roles):
            where = ("roles", name, "in_roles", i)
            if group == name:
                problems.append((where, f"role {name!r} cannot be a member of itself"))
            elif group in role.in_roles[:i]:
                problems.append((where, f"{group!r} is listed twice"))
            elif group.startswith("pgtopo") or not (group.startswith("pg_") or group in topo.roles):
                problems.append((where, f"{group!r} is neither a predefined pg_* role nor a role of the file"))
        if (cycle := _membership_cycle(topo, name)) is not None and name == min(cycle):  # once a cycle
            problems.append((("roles", name, "in_roles"), f"membership cycle: {' -> '.join(cycle)}"))
    return problems


def _membership_cycle(topo: Topology, start: str) -> list[str] | None:
    """A chain of memberships among the file's roles that leads from `start` back to it."""
    path, todo = [start], [iter(topo.roles[start].in_roles)]
    while todo:
        group = next(todo[-1], None)
        if group is None:
            todo.pop()
            path.pop()
        elif group == start and len(path) > 1:
            return [*path, start]
        elif group in topo.roles and group not in path:
            path.append(group)
            todo.append(iter(topo.roles[group].in_roles))
    return None


def _database_problems(topo: Topology) -> list[tuple[tuple[str | int, ...], str]]:
    problems: list[tuple[tuple[str | int, ...], str]] = []
    for name, db in topo.databases.items():
        if name in RESERVED_DATABASES:
            problems.append((("databases", name), f"database name {name!r} is reserved (postgres, template0, "
                             "template1)"))
        if db.owner != "postgres" and db.owner not in topo.roles:
            problems.append((("databases", name, "owner"), f"owner {db.owner!r} is not a role of the file "
                             "(nor postgres)"))
    return problems


POOLER_NODE = "pooler"  # the pooler's container is <cluster>-pooler: no node may have that name
READ_POOLER_NODE = "pooler-ro"  # and its read-only endpoint's, <cluster>-pooler-ro


def _pooler_problems(topo: Topology) -> list[tuple[tuple[str | int, ...], str]]:
    pooler = topo.pooler
    if pooler is None:
        return []
    problems: list[tuple[tuple[str | int, ...], str]] = []
    if POOLER_NODE in topo.nodes:
        problems.append((("nodes", POOLER_NODE), f"node name {POOLER_NODE!r} is taken by the pooler's container "
                                                 f"({topo.cluster}-{POOLER_NODE}): rename the node"))
    if pooler.read_only is not None and READ_POOLER_NODE in topo.nodes:
        problems.append((("nodes", READ_POOLER_NODE), f"node name {READ_POOLER_NODE!r} is taken by the pooler's "
                         f"read-only container ({topo.cluster}-{READ_POOLER_NODE}): rename the node"))
    for name, node in topo.nodes.items():
        if node.port == pooler.port:
            problems.append((("pooler", "port"), f"host port {pooler.port} is also used by node {name!r}"))
        if pooler.read_only is not None and node.port == pooler.read_only.port:
            problems.append((("pooler", "read_only", "port"), f"host port {pooler.read_only.port} is also used by "
                             f"node {name!r}"))
    if pooler.read_only is not None and pooler.read_only.port == pooler.port:
        problems.append((("pooler", "read_only", "port"), f"host port {pooler.port} is also the read-write "
                         "endpoint's (pooler.port)"))
    for key, value in pooler.parameters.items():
        if (why := pooler_settings.problem(key, value)) is not None:
            problems.append((("pooler", "parameters", key), why))
    return problems


def _chain_problems(topo: Topology) -> list[tuple[tuple[str | int, ...], str]]:
    """Upstream cycles, and chains that do not reach the primary."""
    if topo.primary not in topo.nodes:
        return []
    problems: list[tuple[tuple[str | int, ...], str]] = []
    for name in topo.nodes:
        seen = [name]
        current = name
        while current != topo.primary:
            up = topo.nodes[current].upstream or topo.primary
            if up not in topo.nodes or up == current:
                break  # reported by the per-node checks
            if up in seen:
                cycle = " -> ".join([*seen[seen.index(up):], up])
                problems.append((("nodes", name, "upstream"), f"upstream cycle: {cycle}; a chain must end at the primary"))
                break
            seen.append(up)
            current = up
    return problems


def _port_problems(topo: Topology) -> list[tuple[tuple[str | int, ...], str]]:
    owners: dict[int, str] = {}
    problems: list[tuple[tuple[str | int, ...], str]] = []
    for name, node in topo.nodes.items():
        if node.port is None:
            continue
        if node.port in owners:
            problems.append((("nodes", name, "port"), f"host port {node.port} is also used by node {owners[node.port]!r}"))
        else:
            owners[node.port] = name
    return problems


def _parameter_places(topo: Topology) -> list[tuple[tuple[str | int, ...], Parameters]]:
    return [(("parameters",), topo.parameters), *((("nodes", name, "parameters"), node.parameters)
                                                   for name, node in topo.nodes.items())]


def _parameter_problems(topo: Topology) -> list[tuple[tuple[str | int, ...], str]]:
    problems: list[tuple[tuple[str | int, ...], str]] = []
    major = pg_settings.major_of_image(topo.image)
    for loc, params in _parameter_places(topo):
        for key, value in params.items():
            if (why := parameter_problem(key) or pg_settings.problem(key, value, major)) is not None:
                problems.append(((*loc, key), why))
    return problems


def needs_server_catalog(topo: Topology) -> bool:
    """The file sets parameters that no shipped catalog can check (the image's tag names no major,
    or one pgtopo has no catalog for): only the image's own server can say whether it knows them."""
    major = pg_settings.major_of_image(topo.image)
    if major is not None and pg_settings.catalog(major) is not None:
        return False
    return any("." not in key for _, params in _parameter_places(topo) for key in params)


def catalog_problems(topo: Topology, known: pg_settings.Catalog) -> list[tuple[tuple[str | int, ...], str]]:
    """Every parameter of the file that the server behind `known` would refuse, at its key."""
    return [((*loc, key), why) for loc, params in _parameter_places(topo) for key, value in params.items()
            if (why := pg_settings.problem(key, value, known.major, known.settings)) is not None]
