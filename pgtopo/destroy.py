"""Tear a cluster down: every container pgtopo made for it, its network, and (asked) its volumes.

Called by the CLI's destroy.  Only objects that carry this cluster's labels are removed; an
unlabelled network the file merely names is left alone.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from pgtopo import desired, docker_ops, labels as L, waits
from pgtopo.backup.repository import ROLE as REPOSITORY_ROLE
from pgtopo.errors import DockerError
from pgtopo.lock import cluster_lock
from pgtopo.spec import Topology

if TYPE_CHECKING:
    import docker


def destroy(client: "docker.DockerClient", topo: Topology, volumes: bool, lock_timeout: float = 60.0) -> list[str]:
    """Remove the cluster's objects; returns what was removed, by kind and name."""
    removed: list[str] = []
    with cluster_lock(client, topo.cluster, topo.image, lock_timeout) as held:
        held.confirm()
        lock_name = desired.names(topo).lock
        for c in docker_ops.list_containers(client, f"{topo.cluster}-"):
            name = c["Names"][0].lstrip("/")
            if (c.get("Labels") or {}).get(L.CLUSTER) == topo.cluster and name != lock_name:
                docker_ops.remove_container(client, c["Id"])
                removed.append(f"container {name}")
        net = docker_ops.inspect_network(client, topo.network_name)
        if net is not None and (net.get("Labels") or {}).get(L.CLUSTER) == topo.cluster:
            _remove_network(client, topo.network_name)
            removed.append(f"network {topo.network_name}")
        if volumes:  # never a backup repository (role=repository): backups outlive their cluster
            for v in docker_ops.list_volumes(client, f"{topo.cluster}-"):
                labels = v.get("Labels") or {}
                if labels.get(L.CLUSTER) == topo.cluster and labels.get(L.ROLE) != REPOSITORY_ROLE:
                    docker_ops.remove_volume(client, v["Name"])
                    removed.append(f"volume {v['Name']}")
    return removed


def _remove_network(client: "docker.DockerClient", name: str, timeout: float = 10.0) -> None:
    """The engine may still count an endpoint of a container removed a moment ago: retry briefly."""
    lingering: list[DockerError] = []

    def removed() -> bool | None:
        try:
            docker_ops.remove_network(client, name)
            return True
        except DockerError as exc:
            if "active endpoints" not in exc.message:
                raise
            lingering[:] = [exc]
            return None

    if waits.wait_until(removed, time.monotonic() + timeout, waits.DOCKER) is None:
        raise lingering[0]
