"""Images of the official postgres images' shape, 17 and 18: the `postgres` user is uid 999, the
image runs as root by default, an entrypoint initdbs on `postgres` with an empty PGDATA, PG_MAJOR
is set, and VOLUME/PGDATA are laid out as each major's official image lays them out.  The
official images cannot be pulled here: these stand-ins are built from the local Debian images.

pgtopo runs every container as `postgres` with `sh -c` as its command, so the entrypoint passes it
through; it mounts its own volume for PGDATA and a tmpfs over the image's VOLUME path."""

from __future__ import annotations

import dataclasses
import os
import subprocess
from pathlib import Path

import docker
import pytest

from .conftest import PAIR, actions, pgtopo, psql, wait_for
from .test_image_volumes import anonymous_mounts, dangling

pytestmark = pytest.mark.skipif(bool(os.environ.get("PGTOPO_TEST_IMAGE")), reason="built from the 17 and 18 images")

# Each major's official layout: PGDATA, and the VOLUME the image declares
LAYOUT = {17: ("/var/lib/postgresql/data", "/var/lib/postgresql/data"),
          18: ("/var/lib/postgresql/18/docker", "/var/lib/postgresql")}

ENTRYPOINT = """#!/bin/sh
# A stand-in of the official images' docker-entrypoint.sh: `postgres` on an empty PGDATA initdbs first
# (and needs POSTGRES_PASSWORD); any other command runs as it is.
set -e
if [ "$1" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -z "${POSTGRES_PASSWORD:-}" ]; then
        echo "Error: Database is uninitialized and superuser password is not specified." >&2
        exit 1
    fi
    printf '%s\\n' "$POSTGRES_PASSWORD" > /tmp/pwfile
    initdb -D "$PGDATA" -U postgres --pwfile=/tmp/pwfile
    rm -f /tmp/pwfile
fi
exec "$@"
"""


def official_shape(major: int, context: Path) -> str:
    pgdata, volume = LAYOUT[major]
    tag = f"pgtopo-local/postgres:{major}-official-shape"
    context.mkdir(parents=True, exist_ok=True)
    (context / "docker-entrypoint.sh").write_text(ENTRYPOINT)
    (context / "Dockerfile").write_text(f"""FROM pgtopo-local/postgres:{major}
USER root
RUN sed -i 's/^postgres:x:[0-9]*:[0-9]*:/postgres:x:999:999:/' /etc/passwd \\
 && sed -i 's/^postgres:x:[0-9]*:/postgres:x:999:/' /etc/group \\
 && mkdir -p {pgdata} && chown -R 999:999 /var/lib/postgresql /run/postgresql && chmod 0700 {pgdata}
COPY docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
RUN chmod 0755 /usr/local/bin/docker-entrypoint.sh
ENV PG_MAJOR={major} PGDATA={pgdata}
VOLUME {volume}
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]
""")
    subprocess.run(["docker", "build", "-q", "-t", tag, str(context)], check=True, capture_output=True, timeout=300)
    return tag


@pytest.mark.parametrize("major", [17, 18])
def test_a_cluster_on_an_official_shaped_image(make_cluster, engine: docker.DockerClient, tmp_path: Path,
                                               major: int) -> None:
    image = official_shape(major, tmp_path / "image")
    shape = engine.images.get(image).attrs["Config"]
    assert shape["User"] in ("", "root") and shape["Entrypoint"] == ["docker-entrypoint.sh"]
    before = dangling(engine)
    c = make_cluster(image)
    c.write(PAIR)
    applied = pgtopo("apply", str(c.path))
    assert applied.code == 0, applied
    owner = subprocess.run(["docker", "exec", c.container("replica"), "sh", "-c", 'id -u; stat -c %u "$PGDATA"'],
                           capture_output=True, text=True, check=True).stdout.split()
    assert owner == ["999", "999"], owner  # the server, and its data, are the image's postgres user
    psql(c.container("primary"), "CREATE TABLE t AS SELECT 1 AS i")
    switched = pgtopo("switchover", str(c.path), "--to", "replica", "--yes")
    assert switched.code == 0, switched
    assert psql(c.container("replica"), "SELECT pg_is_in_recovery(), count(*) FROM t") == "f|1"
    assert psql(c.container("replica"), "SHOW server_version_num")[:2] == str(major)
    assert pgtopo("diff", str(c.path)).code == 0
    assert anonymous_mounts(engine, c.name) == []
    assert dangling(engine) - before == set()

    if major == 17:  # PG_MAJOR says the image's major: an 18 of the same shape upgrades this data
        dataclasses.replace(c, image=official_shape(18, tmp_path / "image18")).write(PAIR.replace(
            "primary: primary", "primary: replica"))  # as the switchover left the file
        pending = pgtopo("diff", str(c.path))
        said = pending.out + pending.err
        assert pending.code == 1 and "major-upgrade  17 → 18" in said and "re-clone" in said, said


@pytest.mark.parametrize("major", [17, 18])
def test_drift_on_an_official_shaped_image_is_repaired_as_on_any_other(make_cluster, tmp_path: Path,
                                                                       major: int) -> None:
    """The drift cases users meet first (how-apply-decides 1 to 3), on the official images' shape:
    a removed container comes back on its volume without a clone, a removed volume is cloned again,
    a stopped primary is started; the data survives each."""
    c = make_cluster(official_shape(major, tmp_path / "image"))
    c.write(PAIR)
    assert pgtopo("apply", str(c.path)).code == 0
    psql(c.container("primary"), "CREATE TABLE t AS SELECT 1 AS i")

    subprocess.run(["docker", "rm", "-f", c.container("replica")], check=True, capture_output=True)
    again = pgtopo("apply", str(c.path))
    assert again.code == 0 and ("create", "replica") in actions(again.out), again
    assert not any(kind in ("clone", "re-clone") for kind, _ in actions(again.out)), again.out
    assert psql(c.container("replica"), "SELECT count(*) FROM t") == "1"

    subprocess.run(["docker", "rm", "-f", c.container("replica")], check=True, capture_output=True)
    subprocess.run(["docker", "volume", "rm", f"{c.name}-replica-data"], check=True, capture_output=True)
    cloned = pgtopo("apply", str(c.path))
    assert cloned.code == 0 and ("clone", "replica") in actions(cloned.out), cloned
    assert psql(c.container("replica"), "SELECT status FROM pg_stat_wal_receiver") == "streaming"

    subprocess.run(["docker", "stop", c.container("primary")], check=True, capture_output=True)
    started = pgtopo("apply", str(c.path))
    assert started.code == 0 and ("start", "primary") in actions(started.out), started
    assert psql(c.container("primary"), "SELECT count(*) FROM t") == "1"
    assert pgtopo("diff", str(c.path)).code == 0


@pytest.mark.parametrize("method", ["native", "pgbackrest"])
def test_backup_and_restore_on_an_official_shaped_image(make_cluster, engine: docker.DockerClient, tmp_path: Path,
                                                        method: str) -> None:
    """The image runs as root with its own entrypoint and uid 999: archiving, a backup from the
    standby, and a new cluster restored from it, each as the image's postgres user."""
    image = official_shape(18, tmp_path / "image")
    src = make_cluster(image)
    backup_block = f"backup:\n  method: {method}\n  repository: {{volume: {src.name}-backup}}\n"
    src.write(PAIR + backup_block)
    assert pgtopo("apply", str(src.path)).code == 0
    taken = pgtopo("backup", str(src.path))
    assert taken.code == 0 and "taken from replica (standby)" in taken.out, taken
    p = src.container("primary")
    psql(p, "CREATE TABLE a (v text); INSERT INTO a VALUES ('after-the-backup')")
    segment = psql(p, "SELECT pg_walfile_name(pg_switch_wal())")
    assert wait_for(lambda: psql(p, "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver") >= segment, 30)
    owners = subprocess.run(["docker", "exec", p, "sh", "-c", f"find /var/lib/pgtopo-backup/{src.name} ! -uid 999"],
                            capture_output=True, text=True, check=True).stdout
    assert owners == "", owners  # everything in the repository is the image's postgres user's

    dst = make_cluster(image)
    dst.write(PAIR + f"bootstrap:\n  restore:\n    from: {{cluster: {src.name}, "
                     f"repository: {{volume: {src.name}-backup}}}}\n")
    restored = pgtopo("apply", str(dst.path))
    assert restored.code == 0, restored
    for node in ("primary", "replica"):
        assert psql(dst.container(node), "SELECT string_agg(v, ',') FROM a") == "after-the-backup"
    assert psql(dst.container("primary"), "SELECT pg_is_in_recovery()") == "f"
    assert pgtopo("diff", str(dst.path)).code == 0
