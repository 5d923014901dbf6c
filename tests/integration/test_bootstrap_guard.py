"""A container made to bootstrap an empty volume (initdb or clone) never starts a server on data it
finds there and did not make: an old primary's volume misread as empty must not come back as a
second writer."""

from __future__ import annotations

import secrets
import subprocess
import time

import docker

from pgtopo import desired, docker_ops
from pgtopo.loader import load_topology

from .conftest import IMAGE, PAIR, pgtopo, psql


def test_a_bootstrap_container_refuses_data_it_did_not_make(make_cluster, engine: docker.DockerClient) -> None:
    c = make_cluster(IMAGE)
    c.write(PAIR)
    assert pgtopo("apply", str(c.path)).code == 0
    psql(c.container("primary"), "CREATE TABLE t AS SELECT 1 AS i")
    subprocess.run(["docker", "rm", "-f", c.container("primary")], check=True, capture_output=True)

    topo = load_topology(c.path)
    psql(c.container("replica"), "SELECT pg_promote()")  # its data now accepts writes too (no standby.signal)
    for node in ("primary", "replica"):  # an initdb request on the old primary's data, a clone one on the other's
        if node == "replica":
            subprocess.run(["docker", "rm", "-f", c.container("replica")], check=True, capture_output=True)
        spec = desired.node_container(topo, node, secrets.token_hex(8))
        cid = docker_ops.create_container(engine, spec)
        docker_ops.start(engine, cid)
        container = engine.containers.get(cid)
        deadline = time.monotonic() + 60  # node containers restart on failure: catch it between two runs
        while time.monotonic() < deadline:
            container.reload()
            state = container.attrs["State"]
            if state["ExitCode"] != 0 and (state["Restarting"] or not state["Running"]):
                break
            time.sleep(0.1)
        logs = container.logs().decode()
        assert state["ExitCode"] == 4, (state, logs)
        assert "holds data this container did not make" in logs and "not starting it: run pgtopo apply" in logs
        assert "database system is ready" not in logs
        container.remove(force=True)

    c.write(PAIR)
    again = pgtopo("apply", str(c.path), "--yes")  # the planner now sees both volumes' data as it is
    assert again.code in (0, 1) and "Traceback" not in again.err, again
    running = [ct.name for ct in engine.containers.list(filters={"name": c.name})]
    writers = [name for name in running if name in (c.container("primary"), c.container("replica"))
               and psql(name, "SELECT pg_is_in_recovery()") == "f"]
    assert len(writers) <= 1, (writers, again)
