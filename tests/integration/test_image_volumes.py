"""Images that declare VOLUME, as the official postgres images do: /var/lib/postgresql/data up to
17, /var/lib/postgresql (with PGDATA=/var/lib/postgresql/18/docker) from 18 on.  Docker gives
every container of such an image an anonymous volume at that path unless something is mounted
there, and keeps it after the container is removed unless asked.  pgtopo mounts an empty tmpfs on
each such path its containers do not mount a volume on, and removes its containers with their
anonymous volumes: a cluster's whole life leaves no volume nobody asked for.

The images are stand-ins built here from the local image (no registry): the official images'
VOLUME and PGDATA, on the same PostgreSQL.
"""

from __future__ import annotations

import subprocess

import docker
import pytest

from pgtopo import labels as L

from .conftest import IMAGE, PAIR, dangling, pgtopo, psql

SHAPES = {
    "volume-data": "VOLUME /var/lib/postgresql/data\n",  # postgres:13 … postgres:17
    "volume-18": "ENV PGDATA=/var/lib/postgresql/18/docker\nVOLUME /var/lib/postgresql\n",  # postgres:18
}


def stand_in(shape: str) -> str:
    tag = f"{IMAGE}-{shape}"
    dockerfile = f"FROM {IMAGE}\n{SHAPES[shape]}"
    subprocess.run(["docker", "build", "-q", "-t", tag, "-"], input=dockerfile, text=True, check=True,
                   capture_output=True, timeout=300)
    return tag


def anonymous_mounts(engine: docker.DockerClient, cluster: str) -> list[str]:
    """Volumes mounted in the cluster's containers that are not pgtopo's named, labelled ones."""
    ours = {v.name for v in engine.volumes.list(filters={"label": f"{L.CLUSTER}={cluster}"})}
    found = []
    for c in engine.containers.list(all=True, filters={"label": f"{L.CLUSTER}={cluster}"}):
        for m in c.attrs.get("Mounts") or []:
            if m.get("Type") == "volume" and m.get("Name") not in ours:
                found.append(f"{c.name}:{m.get('Destination')}")
    return found


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_a_cluster_s_life_leaves_no_anonymous_volume(make_cluster, engine: docker.DockerClient, shape: str) -> None:
    image = stand_in(shape)
    before = dangling(engine)
    c = make_cluster(image)
    c.write(PAIR)
    applied = pgtopo("apply", str(c.path))
    assert applied.code == 0, applied
    assert anonymous_mounts(engine, c.name) == []
    psql(c.container("primary"), "CREATE TABLE t AS SELECT 1 AS i")
    switched = pgtopo("switchover", str(c.path), "--to", "replica", "--yes")
    assert switched.code == 0, switched
    assert psql(c.container("replica"), "SELECT pg_is_in_recovery(), count(*) FROM t") == "f|1"
    assert pgtopo("diff", str(c.path)).code == 0
    assert anonymous_mounts(engine, c.name) == []
    assert dangling(engine) - before == set(), "apply, switchover and diff left anonymous volumes"
    destroyed = pgtopo("destroy", str(c.path), "--yes", "--volumes")
    assert destroyed.code == 0, destroyed
    assert dangling(engine) - before == set(), "destroy --volumes left anonymous volumes"
