"""A missing state volume while the cluster's data exists is refused: pgtopo never makes new
random passwords that would lock it out of its own servers."""

from __future__ import annotations

import subprocess

import docker

from pgtopo import labels as L

from .conftest import IMAGE, PAIR, objects, pgtopo


def test_a_missing_state_volume_with_data_is_refused(make_cluster, engine: docker.DockerClient) -> None:
    c = make_cluster(IMAGE)
    c.write(PAIR)
    assert pgtopo("apply", str(c.path)).code == 0
    for container in engine.containers.list(all=True, filters={"label": f"{L.CLUSTER}={c.name}"}):
        container.remove(force=True)  # the containers mount the state volume: they go first
    subprocess.run(["docker", "volume", "rm", f"{c.name}-pgtopo-state"], check=True, capture_output=True)
    before = objects(engine, c.name)
    assert before["containers"] == [] and before["volumes"] == [f"{c.name}-primary-data", f"{c.name}-replica-data"]

    for command in (["diff"], ["apply", "--yes"]):
        refused = pgtopo(*command, str(c.path))
        assert refused.code == 1, refused
        text = refused.out + refused.err
        assert f"the state volume {c.name}-pgtopo-state is missing while primary, replica hold this cluster's data" \
            in text, refused
        assert "set auth.superuser_password and auth.replication_password" in text, refused
        assert "Traceback" not in text
    assert objects(engine, c.name) == before  # nothing made: no state volume with new passwords
    # ... and not even an unlabelled empty one, made by docker for a job that mounts it by name
    assert engine.volumes.list(filters={"name": f"{c.name}-pgtopo-state"}) == []
