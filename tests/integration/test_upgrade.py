"""A major upgrade declared by changing `image:` from PostgreSQL 17 to 18 (upgrade.py): every row
on every node afterwards, the replicas streaming from the upgraded primary, the old data kept in
the primary's volume, a downgrade refused (on the Debian images and on stand-ins of the official
ones); pgtopo killed with SIGKILL during the upgrade leaves
the old cluster intact, so the next apply either finishes the upgrade or, with the file put back,
brings the old cluster back as it was; and a swap killed between its two renames is finished, never
taken for an empty volume.

The two images are pgtopo's Debian-built ones, whose postgres users have different uids (100 and
101): the upgrade must cope with that, as with the official images' 999 and Alpine's 70."""

from __future__ import annotations

import dataclasses
import os
import subprocess

import docker
import pytest

from pgtopo import labels as L

from .conftest import Cluster, pgtopo, psql, wait_for
from .test_kill_steps import kill_at

pytestmark = pytest.mark.skipif(bool(os.environ.get("PGTOPO_TEST_IMAGE")), reason="needs the 17 and 18 images")

OLD, NEW = "pgtopo-local/postgres:17", "pgtopo-local/postgres:18"
TRIO = "primary: primary\nnodes:\n  primary: {}\n  replica: {}\n  replica2: {}\n"
PAIR = "primary: primary\nnodes:\n  primary: {}\n  replica: {}\n"
DIGEST = ("SELECT (SELECT count(*) FROM pgbench_accounts) || ' ' || (SELECT sum(abalance) FROM pgbench_accounts) "
          "|| ' ' || (SELECT md5(string_agg(m, ',' ORDER BY i)) FROM t)")


def fill(c: Cluster) -> str:
    """pgbench's tables with some history, and 5000 rows of our own: what every node must hold."""
    primary = c.container("primary")
    subprocess.run(["docker", "exec", primary, "pgbench", "-U", "postgres", "-i", "-s", "1", "-q", "postgres"],
                   check=True, capture_output=True, timeout=300)
    subprocess.run(["docker", "exec", primary, "pgbench", "-U", "postgres", "-t", "200", "-n", "postgres"],
                   check=True, capture_output=True, timeout=300)
    psql(primary, "CREATE TABLE t AS SELECT g AS i, md5(g::text) AS m FROM generate_series(1, 5000) g")
    return psql(primary, DIGEST)


def volume_root(engine: docker.DockerClient, c: Cluster, node: str) -> dict[str, str]:
    """The entries of a node volume's root, each with its PG_VERSION where it has one."""
    out = engine.containers.run(NEW, ["sh", "-c", 'for d in /d/*; do echo "${d#/d/} $(cat "$d/PG_VERSION" 2>/dev/null)"; '
                                      "done"], entrypoint=[], remove=True, user="root", network_mode="none",
                                labels={L.CLUSTER: c.name},
                                mounts=[docker.types.Mount("/d", f"{c.name}-{node}-data", type="volume")])
    return dict(line.split(" ", 1) if " " in line else (line, "") for line in out.decode().splitlines())


def streams(c: Cluster, node: str) -> bool:
    return psql(c.container(node), "SELECT status FROM pg_stat_wal_receiver") == "streaming"


@pytest.mark.parametrize(("old", "new"), [(OLD, NEW), (f"{OLD}-official-shape", f"{NEW}-official-shape")],
                         ids=["debian", "official-shape"])
def test_changing_image_from_17_to_18_upgrades_the_cluster_and_loses_nothing(make_cluster, engine, old, new) -> None:
    c = make_cluster(old)
    c.write(TRIO)
    assert pgtopo("apply", str(c.path)).code == 0
    before = fill(c)
    old_sysid = psql(c.container("primary"), "SELECT system_identifier FROM pg_control_system()")

    dataclasses.replace(c, image=new).write(TRIO)
    diff = pgtopo("diff", str(c.path))
    assert diff.code == 1, diff
    assert "major-upgrade" in diff.out and "17 → 18" in diff.out and "pgdata.17" in diff.out, diff
    assert diff.out.count("re-clone") == 2, diff
    upgraded = pgtopo("apply", str(c.path), "--yes")
    assert upgraded.code == 0, upgraded
    assert "write downtime" in upgraded.out, upgraded

    for node in ("primary", "replica", "replica2"):
        assert psql(c.container(node), "SHOW server_version_num").startswith("18"), node
        assert wait_for(lambda n=node: psql(c.container(n), DIGEST) == before), node  # every row, every node
        assert psql(c.container(node), "SHOW data_checksums") == "on"
    assert wait_for(lambda: streams(c, "replica") and streams(c, "replica2"))
    new_sysid = psql(c.container("primary"), "SELECT system_identifier FROM pg_control_system()")
    assert new_sysid != old_sysid  # a new cluster (dump and restore), which the replicas were cloned from
    assert psql(c.container("replica"), "SELECT system_identifier FROM pg_control_system()") == new_sysid
    assert pgtopo("diff", str(c.path)).code == 0  # in sync: the new identity is recorded
    root = volume_root(engine, c, "primary")
    assert root.get("pgdata") == "18" and root.get("pgdata.17") == "17", root  # the old data is kept
    psql(c.container("primary"), "INSERT INTO t VALUES (5001, 'after')")
    assert wait_for(lambda: psql(c.container("replica2"), "SELECT count(*) FROM t") == "5001")

    c.write(TRIO)  # back to 17: a downgrade, refused before anything changes
    ids = {x.name: x.id for x in engine.containers.list(all=True, filters={"label": f"{L.CLUSTER}={c.name}"})}
    refused = pgtopo("apply", str(c.path), "--yes")
    assert refused.code == 1 and "never downgrades" in refused.err and "Traceback" not in refused.err, refused
    assert {x.name: x.id for x in engine.containers.list(all=True,
                                                          filters={"label": f"{L.CLUSTER}={c.name}"})} == ids


def test_an_upgrade_killed_half_way_is_finished_or_rolled_back_by_the_next_apply(make_cluster, engine) -> None:
    c = make_cluster(OLD)
    c.write(PAIR)
    assert pgtopo("apply", str(c.path)).code == 0
    before = fill(c)
    new = dataclasses.replace(c, image=NEW)

    # killed while the new cluster is being built; the file put back: the 17 cluster as it was
    new.write(PAIR)
    build = f"{c.name}-primary-upgrade"
    killed = kill_at(c, "apply", str(c.path), "--yes",
                     on_docker=lambda e: "the build started" if e.get("Action") == "start"
                     and e.get("Actor", {}).get("Attributes", {}).get("name") == build else None)
    assert killed.why == "the build started" and killed.code == -9, killed
    # the old server dies with pgtopo (tethered to it), cleanly: nobody can start the node's own
    # container beside it as a second postmaster on the same data
    source = engine.containers.get(f"{c.name}-primary-upgrade-source")
    assert wait_for(lambda: source.reload() or source.status == "exited"), source.status
    assert "database system is shut down" in source.logs().decode()
    c.write(PAIR)
    back = pgtopo("apply", str(c.path), "--yes")
    assert back.code == 0, back
    assert psql(c.container("primary"), "SHOW server_version_num").startswith("17")
    assert psql(c.container("primary"), DIGEST) == before
    assert wait_for(lambda: streams(c, "replica"))
    assert pgtopo("diff", str(c.path)).code == 0

    # killed again in the build; this time the file keeps 18: the next apply finishes the upgrade
    new.write(PAIR)
    killed = kill_at(c, "apply", str(c.path), "--yes",
                     on_docker=lambda e: "the build started" if e.get("Action") == "start"
                     and e.get("Actor", {}).get("Attributes", {}).get("name") == build else None)
    assert killed.why == "the build started", killed
    done = pgtopo("apply", str(c.path), "--yes")
    assert done.code == 0, done
    for node in ("primary", "replica"):
        assert psql(c.container(node), "SHOW server_version_num").startswith("18")
        assert wait_for(lambda n=node: psql(c.container(n), DIGEST) == before)
    assert pgtopo("diff", str(c.path)).code == 0


def test_a_swap_killed_between_its_renames_is_finished_never_initdb(make_cluster, engine) -> None:
    """The one moment the primary's volume holds no PGDATA: the old data renamed away, the new not
    yet renamed in.  Made here by killing apply once the new cluster is built (its old server has
    just stopped, before the swap) and doing the first rename as the swap does, marker first."""
    c = make_cluster(OLD)
    c.write(PAIR)
    assert pgtopo("apply", str(c.path)).code == 0
    before = fill(c)
    dataclasses.replace(c, image=NEW).write(PAIR)
    source = f"{c.name}-primary-upgrade-source"
    killed = kill_at(c, "apply", str(c.path), "--yes",
                     on_docker=lambda e: "the old server stopped" if e.get("Action") == "die"
                     and e.get("Actor", {}).get("Attributes", {}).get("name") == source else None)
    assert killed.why == "the old server stopped", killed
    assert not killed.saw("create", f"{c.name}-primary-upgrade-swap"), killed  # killed before the swap
    assert volume_root(engine, c, "primary").keys() >= {"pgdata", "pgdata.next"}
    engine.containers.run(NEW, ["sh", "-c", "printf '17\\n' > /d/upgrade.swap && mv /d/pgdata /d/pgdata.17"],
                          entrypoint=[], remove=True, user="root", network_mode="none", labels={L.CLUSTER: c.name},
                          mounts=[docker.types.Mount("/d", f"{c.name}-primary-data", type="volume")])
    assert "pgdata" not in volume_root(engine, c, "primary")

    diff = pgtopo("diff", str(c.path))
    assert "interrupted in its swap" in diff.out and "init" not in diff.out.split(), diff
    done = pgtopo("apply", str(c.path), "--yes")
    assert done.code == 0, done
    for node in ("primary", "replica"):
        assert psql(c.container(node), "SHOW server_version_num").startswith("18")
        assert wait_for(lambda n=node: psql(c.container(n), DIGEST) == before)
    root = volume_root(engine, c, "primary")
    assert root.get("pgdata") == "18" and root.get("pgdata.17") == "17" and "upgrade.swap" not in root, root
