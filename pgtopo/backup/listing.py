"""Reads what a repository holds for the file's cluster: its complete backups and its newest
archived WAL, through a one-shot job (jobs.LIST_SCRIPT).

Called by backup.take (under the cluster's lock, tidying the .partial directories a killed run
left) and by the CLI's `pgtopo backups` (read-only, no lock: a backup under way is a .partial
directory, never listed).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pgtopo import docker_ops
from pgtopo.backup import jobs, pgbackrest_run, repository
from pgtopo.backup.document import BackupsDocument, backups_document, recoverable_window
from pgtopo.backup.spec import VolumeRepository, repository_text
from pgtopo.errors import SpecError
from pgtopo.observe import observe
from pgtopo.spec import Topology

if TYPE_CHECKING:
    import docker

LIST_TIMEOUT = 300.0  # seconds: a listing reads one small file per backup


def needs_backup_block(topo: Topology, file: str) -> None:
    if topo.backup is None:
        raise SpecError([f"{file}: has no backup: block; backups of cluster {topo.cluster} are not configured"],
                        hint="add a backup: block (docs/backup.md), run `pgtopo apply`, then take a backup")


def read(client: "docker.DockerClient", topo: Topology, tidy: bool = False) -> jobs.Contents:
    """The cluster's backups in the repository.  Without `tidy`, read-only, and a repository
    volume that does not exist holds nothing (mounting it would make it, unlabelled)."""
    assert topo.backup is not None
    if not tidy and isinstance(topo.backup.repository, VolumeRepository) and \
            repository.volume_facts(client, topo) is None:
        return jobs.Contents()
    if topo.backup.method == "pgbackrest":  # pgBackRest resumes or removes what a killed backup left
        return pgbackrest_run.read(client, topo)
    return jobs.parse_list_output(docker_ops.run_job(client, jobs.list_job(topo, tidy), timeout=LIST_TIMEOUT))


def document(client: "docker.DockerClient", topo: Topology) -> BackupsDocument:
    """`pgtopo backups`: the complete backups and the recoverable window, its end from the
    primary's pg_stat_archiver when the primary answers."""
    assert topo.backup is not None
    contents = read(client, topo)
    archived = None
    if contents.records:
        facts = observe(client, topo).observed.archiver
        archived = facts.last_archived_time if facts is not None else None
    window = recoverable_window(contents.records, contents.newest_wal_time, archived)
    return backups_document(topo.cluster, repository_text(topo.backup.repository), contents.records,
                            contents.newest_wal, window)
