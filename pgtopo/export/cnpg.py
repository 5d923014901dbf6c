"""The file's cluster as a CloudNativePG `Cluster` manifest, and a `Database` per database of the file.

Called by `pgtopo export --format cnpg` (cli.py) with a loaded Topology.  Pure: no Docker, no
server, not even the file's secrets (a password becomes the name of a Secret the user creates).
What the file says that CloudNativePG cannot express is left out, each with a warning that starts
with the file's key.  Field names follow CloudNativePG 1.30's CRDs (tests/data/cnpg/ holds their
schemas, which the tests validate against); the parameters it fixes follow its
pkg/postgres/configuration.go of that release.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, assert_never

from pgtopo import pg_settings
from pgtopo.desired import setting_text
from pgtopo.errors import SpecError
from pgtopo.labels import Names
from pgtopo.spec import Topology

API_VERSION = "postgresql.cnpg.io/v1"
IMAGE_REPOSITORY = "ghcr.io/cloudnative-pg/postgresql"
DEFAULT_STORAGE_SIZE = "10Gi"
SOURCE_PORT = 5432  # the primary's server port on the cluster's Docker network
QUANTITY = re.compile(r"^[0-9]+(?:\.[0-9]+)?(?:Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")  # storage.size: 10Gi, 500M

Manifest = dict[str, Any]

_LOGGING = "CloudNativePG collects the server log itself (JSON lines on the pod's output)"
_TLS = "CloudNativePG turns TLS on with certificates of its own (spec.certificates)"
_ITS_OWN = "CloudNativePG sets it itself and refuses a Cluster that sets it"
# The parameters CloudNativePG fixes or blocks (FixedConfigurationParameters): its webhook refuses
# a Cluster that sets one.  shared_preload_libraries is one of them, but has a field of its own.
FIXED_PARAMETERS: dict[str, str] = {
    **dict.fromkeys(("event_source", "log_destination", "log_directory", "log_file_mode", "log_filename",
                     "log_rotation_age", "log_rotation_size", "log_truncate_on_rotation", "logging_collector",
                     "syslog_facility", "syslog_ident", "syslog_sequence_numbers", "syslog_split_messages"), _LOGGING),
    **dict.fromkeys(("ssl", "ssl_ca_file", "ssl_cert_file", "ssl_crl_file", "ssl_dh_params_file", "ssl_ecdh_curve",
                     "ssl_key_file", "ssl_passphrase_command", "ssl_passphrase_command_supports_reload",
                     "ssl_prefer_server_ciphers"), _TLS),
    **dict.fromkeys(("allow_system_table_mods", "archive_cleanup_command", "archive_command", "archive_mode",
                     "bonjour", "bonjour_name", "cluster_name", "config_file", "data_directory", "data_sync_retry",
                     "external_pid_file", "hba_file", "hot_standby", "ident_file", "jit_provider",
                     "listen_addresses", "pg_failover_slots.primary_dsn", "pg_failover_slots.standby_slot_names",
                     "port", "primary_conninfo", "primary_slot_name", "promote_trigger_file", "recovery_end_command",
                     "recovery_min_apply_delay", "recovery_target", "recovery_target_action",
                     "recovery_target_inclusive", "recovery_target_lsn", "recovery_target_name",
                     "recovery_target_time", "recovery_target_timeline", "recovery_target_xid",
                     "restart_after_crash", "restore_command", "stats_temp_directory", "synchronized_standby_slots",
                     "synchronous_standby_names", "temp_tablespaces", "unix_socket_directories",
                     "unix_socket_group", "unix_socket_permissions"), _ITS_OWN),
}
_FALSE = frozenset({"off", "false", "no", "0"})
# Role names CloudNativePG keeps for itself (and pg_*, which the file cannot name either)
RESERVED_ROLES = frozenset({"postgres", "streaming_replica"})
RESERVED_ROLE_PREFIX = "cnpg_"


@dataclass(frozen=True)
class PgBaseBackup:
    """Clone the running pgtopo primary over a replication connection (CloudNativePG's
    pg_basebackup bootstrap).  `source_host`: how the pods reach the primary; by default its
    container's name, which is how the cluster's Docker network knows it."""

    source_host: str | None = None


@dataclass(frozen=True)
class InitDb:
    """Start empty (CloudNativePG's initdb bootstrap, with its own `app` database and owner)."""


Bootstrap = PgBaseBackup | InitDb


def cluster_manifest(topo: Topology, image_name: str | None, bootstrap: Bootstrap, *,
                     storage_size: str = DEFAULT_STORAGE_SIZE, file: str = "the file") -> tuple[list[Manifest],
                                                                                                 list[str]]:
    """The Cluster document, then a Database document per database of the file; and a warning for
    each thing of the file they leave out or that the user must add (a Secret), in the file's order.
    SpecError (naming `file`) when `image_name` is None and the file's image tag names no major."""
    spec: Manifest = {"instances": len(topo.nodes), "imageName": image_name or default_image(topo, file)}
    warnings = node_warnings(topo)
    postgresql, found = _postgresql(topo)
    warnings += found
    if postgresql:
        spec["postgresql"] = postgresql
    boot, found = _bootstrap(topo, bootstrap)
    spec.update(boot)
    roles, found_roles = _roles(topo)
    if roles:
        spec["managed"] = {"roles": roles}
    spec["storage"] = {"size": storage_size}
    warnings += found_roles + block_warnings(topo) + found
    cluster = {"apiVersion": API_VERSION, "kind": "Cluster", "metadata": {"name": topo.cluster}, "spec": spec}
    documents = [cluster, *_databases(topo)]
    _refuse_clashes(topo, documents, file)
    return documents, warnings


def _refuse_clashes(topo: Topology, documents: list[Manifest], file: str) -> None:
    """Kubernetes names end in a letter or digit, and two Secrets (or two Databases) cannot share
    one: a cluster name ending in `-`, or roles such as `app` and `app_` (both `<cluster>-app`),
    cannot be exported as they are."""
    problems = []
    if topo.cluster.endswith("-"):
        problems.append(f"{file}: cluster name {topo.cluster!r} ends in '-', which a Kubernetes name cannot")
    spec = documents[0]["spec"]
    secrets = [(r["passwordSecret"]["name"], f"role {r['name']}") for r in spec.get("managed", {}).get("roles", [])
               if "passwordSecret" in r]
    secrets += [(c["password"]["name"], "the replication user") for c in spec.get("externalClusters", [])]
    databases = [(d["metadata"]["name"], f"database {d['spec']['name']}") for d in documents[1:]]
    for kind, named in (("Secret", secrets), ("Database", databases)):
        seen: dict[str, str] = {}
        for name, what in named:
            if name in seen:
                problems.append(f"{file}: {seen[name]} and {what} would both need the {kind} {name}")
            seen.setdefault(name, what)
    if problems:
        raise SpecError(problems, hint="rename one of them in the file (Kubernetes object names: letters, digits "
                                       "and '-', ending in a letter or digit), then export again")


def default_image(topo: Topology, file: str) -> str:
    """CloudNativePG's image of the major the file's image names by its tag (postgres:17 → …:17)."""
    major = pg_settings.major_of_image(topo.image)
    if major is None:
        raise SpecError([f"{file}: image {topo.image} names no PostgreSQL major in its tag, so the CloudNativePG "
                         "image cannot be chosen from it"],
                        hint=f"pass --image-name with the major the file's image runs, e.g. --image-name "
                             f"{IMAGE_REPOSITORY}:18")
    return f"{IMAGE_REPOSITORY}:{major}"


def object_name(cluster: str, name: str) -> str:
    """A Kubernetes object name for a role's Secret or a Database: `<cluster>-<name>`, with `_`
    (which such names cannot hold) as `-`."""
    return f"{cluster}-{name.replace('_', '-')}".rstrip("-")


def node_warnings(topo: Topology) -> list[str]:
    """What the file's nodes say that a CloudNativePG cluster of identical instances cannot."""
    found: list[str] = []
    for name, node in topo.nodes.items():
        upstream = topo.upstream_of(name)
        if upstream is not None and upstream != topo.primary:
            found.append(f"nodes.{name}.upstream: {name} streams from {upstream}; every CloudNativePG replica "
                         "streams from the primary (no cascading inside a cluster), and so will this one")
        if node.delay is not None:
            found.append(f"nodes.{name}.delay: CloudNativePG delays only a whole replica cluster "
                         f"(spec.replica.minApplyDelay), never one instance: {name} becomes a replica without its "
                         f"{node.delay} delay")
        if node.parameters:
            found.append(f"nodes.{name}.parameters: left out ({', '.join(node.parameters)}): every CloudNativePG "
                         "instance has the same parameters")
        if node.sync is False:
            found.append(f"nodes.{name}.sync: CloudNativePG cannot keep one instance out of synchronous "
                         f"replication: {name} may become a synchronous standby")
        if node.sync_priority is not None:
            found.append(f"nodes.{name}.sync_priority: left out: CloudNativePG orders the synchronous standbys "
                         "itself")
    ports = [f"{name} {node.port}" for name, node in topo.nodes.items() if node.port is not None]
    if ports:
        c = topo.cluster
        found.append(f"nodes: host ports are not exported ({', '.join(ports)}): applications reach the cluster "
                     f"through the Services CloudNativePG makes ({c}-rw, {c}-ro, {c}-r)")
    return found


def _postgresql(topo: Topology) -> tuple[Manifest, list[str]]:
    """spec.postgresql: the file's cluster parameters as text, less those CloudNativePG refuses;
    shared_preload_libraries in a list of its own; the synchronous block."""
    parameters: dict[str, str] = {}
    libraries: list[str] = []
    found: list[str] = []
    for name, value in topo.parameters.items():
        text = setting_text(value)
        if name == "shared_preload_libraries":
            libraries = [lib.strip(" '\"") for lib in text.split(",") if lib.strip(" '\"")]
        elif name in FIXED_PARAMETERS:
            found.append(f"parameters.{name}: left out: {FIXED_PARAMETERS[name]}")
        elif len(topo.nodes) > 1 and _refused_with_replicas(name, text):
            found.append(f"parameters.{name}: left out: CloudNativePG refuses {name} = {text} in a cluster with "
                         "replicas")
        else:
            parameters[name] = text
    postgresql: Manifest = {}
    if parameters:
        postgresql["parameters"] = parameters
    if libraries:
        postgresql["shared_preload_libraries"] = libraries
    if (sync := topo.synchronous) is not None:
        postgresql["synchronous"] = {"method": sync.method, "number": sync.number, "dataDurability": sync.durability}
    return postgresql, found


def _refused_with_replicas(name: str, text: str) -> bool:
    """CloudNativePG's webhook refuses wal_level minimal and wal_log_hints off beside replicas."""
    value = text.strip().lower()
    return (name == "wal_level" and value == "minimal") or (name == "wal_log_hints" and value in _FALSE)


def _roles(topo: Topology) -> tuple[list[Manifest], list[str]]:
    """spec.managed.roles: each role of the file with the attributes it sets; a password becomes a
    Secret the user must create."""
    roles: list[Manifest] = []
    found: list[str] = []
    for name, role in topo.roles.items():
        if name in RESERVED_ROLES or name.startswith(RESERVED_ROLE_PREFIX):
            found.append(f"roles.{name}: left out: CloudNativePG keeps the name {name} for a role of its own "
                         f"({', '.join(sorted(RESERVED_ROLES))}, {RESERVED_ROLE_PREFIX}*)")
            continue
        entry: Manifest = {"name": name, "login": role.login}  # CloudNativePG's default is NOLOGIN
        if role.createdb:
            entry["createdb"] = True
        if not role.inherit:
            entry["inherit"] = False
        if role.connection_limit != -1:
            entry["connectionLimit"] = role.connection_limit
        if role.valid_until != "infinity":
            entry["validUntil"] = role.valid_until
        if role.in_roles:
            entry["inRoles"] = list(role.in_roles)
        if role.password is not None:
            secret = object_name(topo.cluster, name)
            entry["passwordSecret"] = {"name": secret}
            found.append(f"roles.{name}.password: create the Secret {secret} (type kubernetes.io/basic-auth; "
                         f"username {name}; password: the one the file names) before applying the manifest; "
                         "CloudNativePG sets the role's password from it")
        roles.append(entry)
    return roles, found


def _databases(topo: Topology) -> list[Manifest]:
    """A Database document per database of the file (from template0 when it names an encoding or
    a locale, as pgtopo creates it)."""
    documents: list[Manifest] = []
    for name, database in topo.databases.items():
        spec: Manifest = {"cluster": {"name": topo.cluster}, "name": name, "owner": database.owner}
        if database.encoding is not None:
            spec["encoding"] = database.encoding
        if database.locale is not None:
            spec["locale"] = database.locale
        if database.encoding is not None or database.locale is not None:
            spec["template"] = "template0"
        documents.append({"apiVersion": API_VERSION, "kind": "Database",
                          "metadata": {"name": object_name(topo.cluster, name)}, "spec": spec})
    return documents


def block_warnings(topo: Topology) -> list[str]:
    """The file's blocks that have no counterpart in the manifest."""
    found: list[str] = []
    if (pooler := topo.pooler) is not None:
        read_only = ", and a second one of type ro for pooler.read_only" if pooler.read_only is not None else ""
        found.append(f"pooler: not exported: write a CloudNativePG Pooler (spec.cluster.name {topo.cluster}, type "
                     f"rw, pgbouncer.poolMode {pooler.pool_mode}){read_only}")
    if topo.backup is not None:
        found.append("backup: not exported: CloudNativePG backs up to an object store (the Barman Cloud plugin) or "
                     "to volume snapshots, not into pgtopo's repository; configure one, and a ScheduledBackup "
                     "for backup.schedule")
    if topo.bootstrap is not None:
        found.append("bootstrap: not exported: CloudNativePG cannot restore from pgtopo's repository; the manifest "
                     "bootstraps as --bootstrap says")
    return found


def _bootstrap(topo: Topology, bootstrap: Bootstrap) -> tuple[Manifest, list[str]]:
    """spec.bootstrap, and for pg_basebackup the external cluster it clones: the file's primary."""
    match bootstrap:
        case InitDb():
            return {"bootstrap": {"initdb": {}}}, []
        case PgBaseBackup(source_host=host):
            host = host or Names(topo.cluster).container(topo.primary)
            secret, user = f"{topo.cluster}-replication", topo.auth.replication_user
            source = {"name": topo.cluster,
                      "connectionParameters": {"host": host, "port": str(SOURCE_PORT), "user": user,
                                               "dbname": "postgres", "sslmode": "prefer"},
                      "password": {"name": secret, "key": "password"}}
            return {"bootstrap": {"pg_basebackup": {"source": topo.cluster}}, "externalClusters": [source]}, [
                f"--bootstrap pg_basebackup: create the Secret {secret} with the key password (the password of "
                f"{user}, the file's replication user), and let the pods reach the file's primary (node "
                f"{topo.primary}) at {host}:{SOURCE_PORT} (--source-host): pgtopo's pg_hba.conf takes replication "
                "connections only from the cluster's Docker network (docs/export.md)"]
        case _:
            assert_never(bootstrap)
