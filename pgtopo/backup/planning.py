"""The backup repository's place in a plan: when apply prepares it, and why.  Pure.

Called by plan.py (among the cluster-wide actions of the first wave, so the repository exists,
with its directories owned by the image's postgres user, before any node container that mounts
it is created).  Carried out by execute.py through `backup.repository.ensure`.
"""

from __future__ import annotations

from pgtopo import desired, labels as L
from pgtopo.actions import Action, Kind, Wave
from pgtopo.backup import layout
from pgtopo.backup.spec import VolumeRepository, repository_text
from pgtopo.observed import Observed, VolumeFacts
from pgtopo.spec import Topology


def repository_actions(topo: Topology, obs: Observed) -> list[Action]:
    """Prepare the repository when its volume is missing, or when some node's container is to be
    made (or made again) with it mounted: the directories may not be there yet (a repository
    just named in the file, a directory of the host emptied by hand).  Nothing once every node's
    container mounts it as the file says: those were made after it was prepared."""
    if topo.backup is None:
        return []
    repo, cluster = topo.backup.repository, topo.cluster
    dirs = f"{cluster}/wal and {cluster}/base"
    target = repo.volume if isinstance(repo, VolumeRepository) else repo.path
    if isinstance(repo, VolumeRepository) and obs.repository is None:
        return [Action(Kind.PREPARE_REPOSITORY, "", f"repository volume {repo.volume} does not exist: create it "
                       f"(labelled; pgtopo never removes it) with {dirs} owned by the image's postgres user",
                       wave=Wave(), target=target)]
    mounting = [n for n in sorted(topo.nodes) if not _mounts_it(topo, obs, n)]
    if not mounting:
        return []
    who = f"{', '.join(mounting)} {'are' if len(mounting) > 1 else 'is'}"
    return [Action(Kind.PREPARE_REPOSITORY, "", f"{who} to mount {repository_text(repo)}: make sure {dirs} exist "
                   "there, owned by the image's postgres user", wave=Wave(), target=target)]


def repository_refusals(found: VolumeFacts | None) -> list[str]:
    """An existing volume the file names as its repository that pgtopo made for another job (a
    node's data, a state volume, of this cluster or another): mounting it in every node would mix
    WAL and backups into that data.  A repository volume of another cluster is fine: one
    repository may hold several clusters, each under its own name.  Asked by plan() and, for
    `pgtopo backup`, by repository.ensure."""
    role = (found.labels or {}).get(L.ROLE) if found is not None else None
    if found is None or role in (None, layout.REPOSITORY_ROLE):
        return []
    owner = (found.labels or {}).get(L.CLUSTER, "?")
    return [f"backup.repository: volume {found.name} is pgtopo's {role} volume of cluster {owner}, not a "
            "repository; pgtopo never mounts it as one. Name a volume of its own in backup.repository, and "
            "run the command again"]


def _mounts_it(topo: Topology, obs: Observed, node: str) -> bool:
    """The node's container is as the file says (its config hash covers the repository), made
    from the image the file's image name names now (another image may have another postgres uid)."""
    c = obs.node(node).container
    if c is None or c.config_hash != desired.node_hash(topo, node):
        return False
    return obs.image_id is None or c.image_id is None or c.image_id == obs.image_id
