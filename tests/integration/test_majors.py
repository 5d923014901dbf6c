"""A file whose image is of an older PostgreSQL major than the cluster's data (a downgrade):
refused before anything changes, and the cluster runs on as it was, whether its servers run or
its data is read from a stopped node's volume (PG_VERSION).  Without the check, apply recreated a
node on the other image, whose server refused the data; the container restarted forever and apply
waited.  A newer major's image upgrades the cluster: test_upgrade.py."""

from __future__ import annotations

import dataclasses
import os
import subprocess

import docker
import pytest

from .conftest import PAIR, pgtopo, psql, wait_for

pytestmark = pytest.mark.skipif(bool(os.environ.get("PGTOPO_TEST_IMAGE")), reason="needs the 17 and 18 images")

OLD, NEW = "pgtopo-local/postgres:17", "pgtopo-local/postgres:18"


def ids(engine: docker.DockerClient, cluster: str) -> dict[str, tuple[str, str]]:
    return {c.name: (c.id, c.status) for c in engine.containers.list(all=True, filters={"label": f"io.pgtopo.cluster={cluster}"})}


def test_an_older_major_s_image_is_refused(make_cluster, engine) -> None:
    c = make_cluster(NEW)
    c.write(PAIR)
    assert pgtopo("apply", str(c.path)).code == 0
    psql(c.container("primary"), "CREATE TABLE t AS SELECT generate_series(1, 100) AS i")
    before = ids(engine, c.name)
    dataclasses.replace(c, image=OLD).write(PAIR)
    diff = pgtopo("diff", str(c.path))
    assert diff.code == 1, diff
    said = diff.out + diff.err
    assert (f"image: {OLD} is PostgreSQL 17, and primary, replica hold data of PostgreSQL 18: a server never starts "
            "on data of a newer major, and pgtopo never downgrades. Put back an image of PostgreSQL 18") in said, said
    assert "recreate" not in said, said
    refused = pgtopo("apply", str(c.path), "--yes")
    assert refused.code == 1 and "nothing was changed" in refused.err and "Traceback" not in refused.err, refused
    assert ids(engine, c.name) == before  # the same containers, running as they were

    # a stopped node's data says its major too (PG_VERSION in its volume)
    subprocess.run(["docker", "stop", c.container("replica")], check=True, capture_output=True)
    stopped = pgtopo("apply", str(c.path), "--yes")
    assert stopped.code == 1 and "primary, replica hold data of PostgreSQL 18" in stopped.err, stopped
    assert engine.containers.get(c.container("replica")).status == "exited"  # not started on 17

    c.write(PAIR)  # the image put back: the cluster comes back as it was
    assert pgtopo("apply", str(c.path)).code == 0
    psql(c.container("primary"), "INSERT INTO t VALUES (101)")
    assert wait_for(lambda: psql(c.container("replica"), "SELECT count(*) FROM t") == "101")
