"""The backup repository on the Docker host: made ready before anything mounts it.

Called by execute.py (the plan's prepare-repository action, before any node container that
mounts the repository is made), by `pgtopo backup` before it takes a backup, and by observe.py
(`volume_facts`: does the repository volume exist).  A volume repository that is missing is
created, labelled role=repository; an existing volume of that name is used as it is (labelled or
not: the user's), and pgtopo never removes one (destroy and --prune-volumes pass it by).  A host
directory must exist already: pgtopo does not create directories on the host.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pgtopo import desired, docker_ops, labels as L
from pgtopo.backup import layout, planning
from pgtopo.backup.spec import PathRepository, Repository, VolumeRepository
from pgtopo.containers import ContainerSpec
from pgtopo.errors import DockerError, SafetyRefusal
from pgtopo.observed import VolumeFacts
from pgtopo.spec import Topology

if TYPE_CHECKING:
    import docker

ROLE = layout.REPOSITORY_ROLE

# Run as root in the file's image: <cluster>, <cluster>/wal and <cluster>/base exist, owned by the
# image's postgres user (everything under a directory another uid owns is handed over: an image
# with another postgres uid), readable by nobody else.  The repository's root is left as it is.
PREPARE_SCRIPT = r"""
set -eu
dir="$1"
uid=$(id -u postgres)
mkdir -p "$dir/wal" "$dir/base"
for d in "$dir" "$dir/wal" "$dir/base"; do
  if [ "$(stat -c %u "$d")" != "$uid" ]; then chown -R postgres: "$d"; fi
done
chmod 0700 "$dir" "$dir/wal" "$dir/base"
sync
"""

MISSING_PATH = "bind source path does not exist"  # the engine's words for a missing host directory


def ensure(client: "docker.DockerClient", topo: Topology) -> None:
    """Make the file's repository ready for this cluster: the volume (when missing, labelled),
    then its <cluster>/wal and <cluster>/base directories owned by the image's postgres user.
    Idempotent; nothing to do for a file without a `backup:` block."""
    if topo.backup is None:
        return
    repo = topo.backup.repository
    found = volume_facts(client, topo)
    if refusals := planning.repository_refusals(found):
        raise SafetyRefusal(refusals[0])
    if isinstance(repo, VolumeRepository) and found is None:
        docker_ops.create_volume(client, repo.volume, L.labels(topo.cluster, ROLE))
    try:
        docker_ops.run_job(client, prepare_job(topo, repo), timeout=120)
    except DockerError as exc:
        if isinstance(repo, PathRepository) and MISSING_PATH in exc.message:
            raise DockerError(f"backup repository {repo.path} does not exist on the Docker host",
                              hint=f"create the directory {repo.path} on the host that runs the Docker engine "
                                   "(pgtopo never creates host directories), then run the command again") from exc
        raise


def prepare_job(topo: Topology, repo: Repository) -> ContainerSpec:
    """The root job that makes the cluster's directories (PREPARE_SCRIPT); a helper by its labels,
    so one a killed pgtopo left behind is removed by the next apply, and by destroy."""
    argv = ["sh", "-c", PREPARE_SCRIPT, "pgtopo-repository", layout.cluster_dir(topo.cluster)]
    return ContainerSpec(name=desired.names(topo).helper(), image=topo.image, command=argv,
                         labels=L.labels(topo.cluster, "helper", job="repository"),
                         mounts=(layout.repository_mount(repo),), user="root")


def volume_facts(client: "docker.DockerClient", topo: Topology) -> VolumeFacts | None:
    """The file's repository volume as the engine lists it; None when it is missing, or when the
    file has no `backup:` block or a host directory as its repository."""
    if topo.backup is None or not isinstance(topo.backup.repository, VolumeRepository):
        return None
    name = topo.backup.repository.volume
    found = [v for v in docker_ops.list_volumes(client, name) if v["Name"] == name]
    return VolumeFacts(name=name, labels=found[0].get("Labels") or {}) if found else None
