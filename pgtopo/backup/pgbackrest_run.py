"""`backup.method: pgbackrest` on the engine: a backup (servers in the nodes, a job as the
repository's host), the listing, and the check that the image has a pgBackRest that can.

Called by backup.take and backup.listing for a file whose method is pgbackrest.  The certificates
of a backup (backup.tls) exist only in memory here and, for the time of the backup, as files of the
postgres user under /tmp of the containers that use them: the servers remove theirs when they
stop, the job goes with its container.  Nothing of them is in a label, an environment, a command
line or a log.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import TYPE_CHECKING

from pgtopo import __version__, desired, docker_ops, image_catalog, labels as L, state
from pgtopo.backup import jobs, layout, pgbackrest, tls
from pgtopo.backup.record import BackupRecord
from pgtopo.containers import ContainerSpec
from pgtopo.errors import DockerError, PgtopoError, SpecError
from pgtopo.spec import Topology

if TYPE_CHECKING:
    from collections.abc import Callable

    import docker

LIST_TIMEOUT = 300.0
_checked: dict[str, tuple[int, int] | None] = {}  # image id -> its pgBackRest's version (this process)
CACHE_KIND = "pgbackrest"  # what `pgbackrest version` printed, kept by image id (image_catalog)


def check_image(client: "docker.DockerClient", topo: Topology) -> None:
    """The file's image has pgBackRest, recent enough for what pgtopo asks of it (its TLS server,
    annotations); else a message that says which image and what to do.  Once per image and run."""
    image_id = docker_ops.image_id(client, topo.image)
    if image_id is None:
        return  # apply pulls it or says it is missing; `pgtopo backup` finds the nodes' containers
    if image_id not in _checked:
        said = image_catalog.read_cached(image_id, CACHE_KIND)
        if said is None:
            spec = ContainerSpec(name=desired.names(topo).helper(), image=topo.image,
                                 command=["sh", "-c", "pgbackrest version 2>/dev/null || echo none"],
                                 labels=L.labels(topo.cluster, "helper", job="pgbackrest-version"))
            said = docker_ops.run_job(client, spec, timeout=120).strip()
            image_catalog.write_cached(image_id, said, CACHE_KIND)
        _checked[image_id] = pgbackrest.parse_version(said)
    found = _checked[image_id]
    need = ".".join(map(str, pgbackrest.MIN_VERSION))
    if found is None:
        raise SpecError([f"backup.method: pgbackrest, but image {topo.image} has no pgbackrest command"],
                        hint=f"use an image with pgBackRest {need} or later (Debian's pgbackrest package), or "
                             "method: native (pg_basebackup, any image)")
    if found < pgbackrest.MIN_VERSION:
        raise SpecError([f"backup.method: pgbackrest, but image {topo.image} has pgBackRest "
                         f"{'.'.join(map(str, found))}; pgtopo needs {need} or later (its TLS server)"],
                        hint=f"use an image with pgBackRest {need} or later, or method: native")


def _list_job(topo: Topology) -> ContainerSpec:
    assert topo.backup is not None
    return ContainerSpec(name=desired.names(topo).helper(), image=topo.image,
                         command=pgbackrest.list_argv(topo.cluster, layout.REPO_MOUNT),
                         labels=L.labels(topo.cluster, "helper", job="backup-list"),
                         mounts=(layout.repository_mount(topo.backup.repository, read_only=True),))


def contents(output: str, cluster: str) -> jobs.Contents:
    """What LIST_SCRIPT or BACKUP_SCRIPT printed as jobs.Contents; a repository without the stanza
    holds nothing."""
    printed = jobs.tagged(output, "pgtopo-info")
    if not printed:
        return jobs.Contents()
    try:
        found = pgbackrest.records(printed[-1], cluster)
        _, newest = pgbackrest.archive_range(printed[-1], cluster)
    except pgbackrest.InfoError as exc:
        raise PgtopoError(f"the repository's pgBackRest listing cannot be read: {exc}",
                          hint="run `pgbackrest info` in the repository to see what it holds") from None
    return jobs.Contents(records=tuple(found), newest_wal=newest)


def read(client: "docker.DockerClient", topo: Topology) -> jobs.Contents:
    """The cluster's backups in the repository, as `pgbackrest info` lists them (read-only)."""
    return contents(docker_ops.run_job(client, _list_job(topo), timeout=LIST_TIMEOUT), topo.cluster)


def take(client: "docker.DockerClient", topo: Topology, source: str, kind: str,
         run_tethered: "Callable[[ContainerSpec, Callable[[str], None]], str]") -> tuple[BackupRecord, jobs.Contents]:
    """One backup of type `kind` (full or incr) from `source` (the primary, or a standby with the
    primary beside it): pgBackRest's servers started in those nodes, the backup job run by
    `run_tethered` (backup.take's; the job's files written into it before it starts).  The new backup's record
    and what the repository holds after it (retention applied by pgBackRest)."""
    assert topo.backup is not None
    names = desired.names(topo)
    nodes = [topo.primary] + ([source] if source != topo.primary else [])
    hosts = [(names.container(n), n) for n in nodes]
    creds = tls.make([h for h, _ in hosts], topo.cluster)
    notes = {"source": source, "from": "primary" if source == topo.primary else "standby", "version": __version__}
    config = pgbackrest.job_config(topo.cluster, layout.REPO_MOUNT, hosts, standby=source != topo.primary,
                                   retention=topo.backup.retention, annotations=notes)
    server_files = {"ca.crt": creds.ca, "server.crt": creds.server_cert, "server.key": creds.server_key}
    job_files = {"ca.crt": creds.ca, "client.crt": creds.client_cert, "client.key": creds.client_key,
                 "pgbackrest.conf": config.encode()}
    parent, folder = pgbackrest.TLS_DIR.rsplit("/", 1)
    uid, gid = _postgres_ids(client, hosts[0][0], topo.image)  # the nodes' and the job's image: one user
    with ExitStack() as servers:
        for host, _ in hosts:  # files a run left (its container killed with it) are written over
            docker_ops.write_dir(client, host, parent, folder, server_files, uid, gid)
            argv = ["sh", "-c", pgbackrest.SERVER_SCRIPT, "pgtopo-backup-server", pgbackrest.TLS_DIR,
                    *pgbackrest.server_argv(topo.cluster, tls.CLIENT_NAME)]
            servers.enter_context(docker_ops.exec_tethered(client, host, argv, user="postgres"))
        for host, node in hosts:
            try:
                docker_ops.exec_run(client, host, ["sh", "-c", pgbackrest.LISTENING, "pgtopo-listening",
                                                   pgbackrest.TLS_DIR])
            except DockerError as exc:
                raise PgtopoError(f"{node}: pgBackRest's server for the backup did not start: {exc.message}",
                                  hint="nothing was backed up; fix the cause shown, then run `pgtopo backup` "
                                       "again") from exc

        def prepare(cid: str) -> None:
            docker_ops.write_dir(client, cid, parent, folder, job_files, uid, gid)

        output = run_tethered(backup_job(topo, kind), prepare)
    after = contents(output, topo.cluster)
    if not after.records:
        raise PgtopoError("pgBackRest reported success but lists no backup of this cluster",
                          hint="run `pgtopo backups` to see what the repository holds")
    return after.records[-1], after


def _postgres_ids(client: "docker.DockerClient", container: str, image: str) -> tuple[int, int]:
    return state.postgres_ids(client, docker_ops.HelperId(container), image)


def backup_job(topo: Topology, kind: str) -> ContainerSpec:
    """BACKUP_SCRIPT on the cluster's network with the repository mounted and an open stdin (the
    tether); a helper by its labels, as the native method's backup job."""
    assert topo.backup is not None
    argv = ["sh", "-c", pgbackrest.BACKUP_SCRIPT, "pgtopo-backup", pgbackrest.CONFIG, kind, topo.cluster,
            pgbackrest.repo_path(topo.cluster, layout.REPO_MOUNT)]
    return ContainerSpec(name=desired.names(topo).helper(), image=topo.image, command=argv,
                         labels=L.labels(topo.cluster, "helper", job="backup"), network=topo.network_name,
                         mounts=(layout.repository_mount(topo.backup.repository),), stdin=True)
