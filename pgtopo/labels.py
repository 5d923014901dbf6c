"""Names and labels of every Docker object pgtopo makes, and the config hash that detects drift.

Used by observe (to find and classify objects), by the planner (to compare hashes) and by the
Docker operations (to stamp objects).  Pure.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from pgtopo import __version__

PREFIX = "io.pgtopo"
CLUSTER = f"{PREFIX}.cluster"
NODE = f"{PREFIX}.node"
ROLE = f"{PREFIX}.role"  # node | job | lock | state | helper | pooler
VERSION = f"{PREFIX}.version"
CONFIG_HASH = f"{PREFIX}.config-hash"
JOB = f"{PREFIX}.job"  # for role=job: init | clone | rewind

DATA_MOUNT = "/var/lib/postgresql/data"
PGDATA = f"{DATA_MOUNT}/pgdata"
REWIND_MARKER = f"{DATA_MOUNT}/rewind.incomplete"
# A major upgrade (upgrade.py) builds the new cluster in UPGRADE_NEXT beside PGDATA, then swaps:
# PGDATA becomes kept_data(old major) and UPGRADE_NEXT becomes PGDATA.  UPGRADE_SWAP (the old
# major) exists while the swap is under way; UPGRADED_FROM keeps the old cluster's system
# identifier, so the new one is known as this cluster's until the state volume records it.
UPGRADE_NEXT = f"{DATA_MOUNT}/pgdata.next"
UPGRADE_SWAP = f"{DATA_MOUNT}/upgrade.swap"
UPGRADED_FROM = f"{DATA_MOUNT}/upgraded-from"
STATE_MOUNT = "/run/pgtopo"
PASSFILE = f"{STATE_MOUNT}/pgpass"
PG_PORT = 5432
POOLER_PORT = 6432  # PgBouncer's, inside the pooler's container


@dataclass(frozen=True)
class Names:
    """Docker names for one cluster (the network's name is the topology's network_name)."""

    cluster: str

    def container(self, node: str) -> str:
        return f"{self.cluster}-{node}"

    def volume(self, node: str) -> str:
        return f"{self.cluster}-{node}-data"

    def job(self, node: str, job: str) -> str:
        return f"{self.cluster}-{node}-{job}"

    def helper(self) -> str:
        """A helper container's name: unique, and with the cluster's prefix, so observation and
        destroy find one that a killed pgtopo left behind."""
        import secrets

        return f"{self.cluster}-pgtopo-helper-{secrets.token_hex(4)}"

    @property
    def state_volume(self) -> str:
        return f"{self.cluster}-pgtopo-state"

    @property
    def lock(self) -> str:
        return f"{self.cluster}-pgtopo-lock"


def kept_data(major: int) -> str:
    """Where a major upgrade keeps the old cluster's data, in the node's own volume."""
    return f"{DATA_MOUNT}/pgdata.{major}"


def node_of_host(host: str | None, cluster: str) -> str | None:
    """The node a conninfo host names: its container's name `<cluster>-<node>` (unique in the
    engine, resolved on the cluster network), or a bare node alias (as an older pgtopo wrote it)."""
    if host is not None and cluster and host.startswith(f"{cluster}-"):
        return host[len(cluster) + 1:]
    return host


def slot_name(node: str) -> str:
    """The physical replication slot a replica uses on its upstream."""
    return "pgtopo_" + node.replace("-", "_")


def labels(cluster: str, role: str, node: str | None = None, **extra: str) -> dict[str, str]:
    """Labels for a new object; every object pgtopo makes carries cluster, role and version."""
    out = {CLUSTER: cluster, ROLE: role, VERSION: __version__}
    if node is not None:
        out[NODE] = node
    for key, value in extra.items():
        out[f"{PREFIX}.{key.replace('_', '-')}"] = value
    return out


def config_hash(config: dict[str, object]) -> str:
    """sha256 of the sorted JSON of a container's desired configuration (docker compose's idea)."""
    blob = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()
