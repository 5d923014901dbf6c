"""What the pooler's container must be: its spec, its pgbouncer.ini and auth file, the hash that
detects drift, and the credentials of the role it looks passwords up with.  Pure.

Read by the planner (the hash), pooler/run.py (the files it writes into the container) and
observe.py (where to find the pooler and how to log in to its admin console).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from typing import Literal

from pgtopo import labels as L
from pgtopo.containers import ContainerSpec
from pgtopo.spec import POOLER_NODE, READ_POOLER_NODE, Pooler, Topology

Pool = Literal["read-write", "read-only"]
POOL_LABEL = f"{L.PREFIX}.pool"  # which endpoint a pooler container is (absent: read-write)

ROLE = "pgtopo_pooler"  # the role PgBouncer logs in as to look passwords up; also its admin user
LOOKUP_SCHEMA = "pgtopo"  # in the postgres database: the lookup function, executable by ROLE only
LOOKUP_FUNCTION = "pooler_lookup"
# written into the container (never a volume, the environment or a label), as CONFIG_SUBDIR of CONFIG_PARENT
CONFIG_PARENT, CONFIG_SUBDIR = "/etc", "pgtopo-pooler"
CONFIG_DIR = f"{CONFIG_PARENT}/{CONFIG_SUBDIR}"
INI = "pgbouncer.ini"
AUTH_FILE = "userlist.txt"
PORT = L.POOLER_PORT  # inside the container
LAYOUT = 1  # bumped when the container's shape changes: every pooler is then made again
DNS_MAX_TTL = 1.0  # seconds: a node container made again (an image roll) may come back on another address


def node_name(pool: Pool) -> str:
    """The name the pool's actions, status and drift go by (no node may take it)."""
    return READ_POOLER_NODE if pool == "read-only" else POOLER_NODE


def pool_of(node: str) -> Pool:
    return "read-only" if node == READ_POOLER_NODE else "read-write"


def container_name(cluster: str, pool: Pool = "read-write") -> str:
    return f"{cluster}-{node_name(pool)}"


def host_port(topo: Topology, pool: Pool) -> int:
    pooler = _pooler(topo)
    if pool == "read-only":
        if pooler.read_only is None:
            raise ValueError("the file's pooler has no read-only endpoint")
        return pooler.read_only.port
    return pooler.port


def password(superuser_password: str) -> str:
    """The pooler role's password: derived from the superuser's, which the state volume keeps,
    so nothing more is stored and it changes when that one does.  Never shown anywhere."""
    digest = hmac.new(superuser_password.encode(), b"pgtopo-pooler", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _value(value: bool | int | float) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def ini(topo: Topology, targets: Sequence[str], pool: Pool = "read-write") -> str:
    """pgbouncer.ini: every database goes to the containers of `targets` on the cluster network
    (the primary for the read-write pool; for the read-only one, its replicas in turn, or the
    primary with read-only transactions when none streams)."""
    pooler = _pooler(topo)
    names = L.Names(topo.cluster)
    host = ",".join(names.container(node) for node in targets)
    fallback = pool == "read-only" and list(targets) == [topo.primary]
    settings = {
        "listen_addr": "0.0.0.0",
        "listen_port": str(PORT),
        "unix_socket_dir": "",
        "pidfile": "",
        "logfile": "",
        "auth_type": "scram-sha-256",
        "auth_file": f"{CONFIG_DIR}/{AUTH_FILE}",
        "auth_user": ROLE,
        "auth_dbname": "postgres",
        "auth_query": f"SELECT usename, passwd FROM {LOOKUP_SCHEMA}.{LOOKUP_FUNCTION}($1)",
        "admin_users": ROLE,
        "pool_mode": pooler.pool_mode,
        "dns_max_ttl": str(DNS_MAX_TTL),
        "ignore_startup_parameters": "extra_float_digits",
        **({"server_round_robin": "1"} if pool == "read-only" else {}),
        **{key: _value(value) for key, value in sorted(pooler.parameters.items())},
    }
    # `postgres` named as well as `*`: the same route, but always listed by SHOW DATABASES, so
    # observation reads where the pool points before any application has connected
    route = f"host={host} port={L.PG_PORT}"
    if fallback:
        route += " connect_query='SET default_transaction_read_only = on'"
    lines = ["[databases]", f"postgres = {route} dbname=postgres", f"* = {route}", "", "[pgbouncer]"]
    lines += [f"{key} = {value}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


def auth_file(superuser_password: str) -> str:
    """userlist.txt: only the pooler's own role (every other password is looked up)."""
    return f'"{ROLE}" "{password(superuser_password)}"\n'


def targets(ini_host: str | None, cluster: str) -> tuple[str, ...]:
    """The nodes a `host=` of the pooler's databases names (a comma-separated list)."""
    return tuple(node for host in (ini_host or "").split(",") if (node := L.node_of_host(host.strip(), cluster)))


def _config(topo: Topology, pool: Pool) -> dict[str, object]:
    pooler = _pooler(topo)
    return {
        "layout": LAYOUT,
        "image": pooler.image,
        "network": topo.network_name,
        "host_port": host_port(topo, pool),
        "bind": pooler.bind,
        "pool_mode": pooler.pool_mode,
        "parameters": dict(sorted(pooler.parameters.items())),
        **({"pool": pool} if pool == "read-only" else {}),
    }


def config_hash(topo: Topology, pool: Pool = "read-write") -> str:
    """What the container is made with, apart from where it points (a RELOAD changes that)."""
    return L.config_hash(_config(topo, pool))


def container(topo: Topology, pool: Pool = "read-write") -> ContainerSpec:
    pooler = _pooler(topo)
    return ContainerSpec(
        name=container_name(topo.cluster, pool),
        image=pooler.image,
        command=["pgbouncer", f"{CONFIG_DIR}/{INI}"],
        labels={**L.labels(topo.cluster, "pooler", config_hash=config_hash(topo, pool)), POOL_LABEL: pool},
        network=topo.network_name,
        user="",  # the image's own user: PgBouncer refuses to run as root
        publish=PORT,
        host_port=host_port(topo, pool),
        bind=pooler.bind,
        restart=True,
        stop_signal="SIGINT",  # PgBouncer's safe shutdown: waits for every client to finish
    )


def _pooler(topo: Topology) -> Pooler:
    if topo.pooler is None:
        raise ValueError("the file has no pooler")
    return topo.pooler
