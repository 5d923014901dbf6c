"""Where things sit in a backup repository, and the archive command: pure.

A repository (a Docker volume or a host directory) is mounted at REPO_MOUNT in every node of a
cluster with a `backup:` block and in the jobs that take, list and expire backups; a restore's
source repository at SOURCE_MOUNT, read-only, in the restore job only.  One repository may hold
several clusters, each under its own name:

    <cluster>/wal/<segment>            archived WAL (and .history, .partial, .backup files)
    <cluster>/base/<label>/            a complete base backup (plain format: a PGDATA copy)
    <cluster>/base/<label>/pgtopo-backup.json   what `pgtopo backups` lists, written last
    <cluster>/base/<label>.partial/    a backup under way, or one a killed run left
"""

from __future__ import annotations

from pgtopo.backup import pgbackrest
from pgtopo.backup.spec import Repository, VolumeRepository
from pgtopo.containers import Mount

REPO_MOUNT = "/var/lib/pgtopo-backup"
SOURCE_MOUNT = "/var/lib/pgtopo-restore"
MANIFEST = "pgtopo-backup.json"
PARTIAL = ".partial"
REPOSITORY_ROLE = "repository"  # the role label of a repository volume pgtopo created


def cluster_dir(cluster: str, mount: str = REPO_MOUNT) -> str:
    return f"{mount}/{cluster}"


def wal_dir(cluster: str, mount: str = REPO_MOUNT) -> str:
    return f"{cluster_dir(cluster, mount)}/wal"


def base_dir(cluster: str, mount: str = REPO_MOUNT) -> str:
    return f"{cluster_dir(cluster, mount)}/base"


def backup_dir(cluster: str, label: str, mount: str = REPO_MOUNT) -> str:
    return f"{base_dir(cluster, mount)}/{label}"


def archive_command(cluster: str) -> str:
    """archive_command of every node: copy the segment into the repository under a temporary
    name, flush it, rename it into place and flush the directory, so an archived segment is
    never half there.  A segment already archived is accepted only when identical (a standby
    promoted meanwhile, a retry after a crash), never overwritten: an old primary that went on
    writing after a failover cannot replace this cluster's WAL with its own.  A copy that fails
    (a full repository) removes its temporary file: the archiver retries every minute, and each
    retry's leftover would take space the retry after needs."""
    wal = wal_dir(cluster)
    return (f'f={wal}/%f; if [ -f "$f" ]; then cmp -s %p "$f"; else mkdir -p {wal} && {{ cp %p "$f.tmp$$" '
            f'&& sync "$f.tmp$$" && mv "$f.tmp$$" "$f" && sync {wal} || {{ rm -f "$f.tmp$$"; exit 1; }}; }}; fi')


def restore_command(cluster: str, mount: str = SOURCE_MOUNT) -> str:
    """restore_command of a restore: read-only from the source cluster's archive."""
    return f"cp {wal_dir(cluster, mount)}/%f %p"


def archive_settings(cluster: str, method: str = "native") -> dict[str, str]:
    """What a node of a cluster with a `backup:` block runs with.  archive_mode=on: the primary
    archives; a standby promoted by a switchover or failover archives from then on (the old
    primary archives everything before its clean shutdown in a switchover)."""
    command = pgbackrest.archive_command(cluster, REPO_MOUNT) if method == "pgbackrest" else archive_command(cluster)
    return {"archive_mode": "on", "archive_command": command, "archive_timeout": "60s"}


def repository_mount(repo: Repository, target: str = REPO_MOUNT, read_only: bool = False) -> Mount:
    if isinstance(repo, VolumeRepository):
        return Mount(repo.volume, target, read_only=read_only)
    return Mount(repo.path, target, read_only=read_only, bind=True)
