"""The file's image in the engine before anything uses it: the `--pull` policy, as docker compose's.

    missing  (the default) pull the image when the engine does not have it
    never    use only what the engine has; a missing image is refused by the plan (air-gapped
             hosts, CI that loads its images beforehand)
    always   pull every time; a new image under the same name rolls the nodes onto it (the plan
             compares each container's image id with the name's: plan._container_action)

Called by reconcile.py before the cluster's lock (the lock is a container of this image, so the
image must be there first), and by image_catalog.py (a file whose parameters only the image's own
server can check).  A pull changes nothing in the cluster, so it needs no consent, as in `docker
compose up`; `diff` never pulls (the plan shows `+ pull` instead).  Credentials are those of the
user's Docker configuration (`docker login`, credential helpers), which docker-py reads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pgtopo import docker_ops
from pgtopo.actions import PullPolicy

if TYPE_CHECKING:
    import docker

@dataclass(frozen=True)
class Pulled:
    image: str
    newer: bool  # the registry had an image the engine did not (else: already up to date)
    seconds: float


_pulled: dict[str, Pulled] = {}  # image -> its pull in this process: an image is pulled once a run
_lock = threading.Lock()


def ensure(client: "docker.DockerClient", image: str, policy: PullPolicy,
           progress: Callable[[str], None] = lambda text: None) -> Pulled | None:
    """Pull `image` when the policy says so; the pull this process made of it (made now or earlier),
    or None when there was none.  Raises DockerError (exit 2) when the pull fails: nothing in the
    cluster was changed yet."""
    with _lock:
        if image in _pulled:
            return _pulled[image]
        if policy == "never" or (policy == "missing" and docker_ops.image_id(client, image) is not None):
            return None
        started = time.monotonic()
        newer = docker_ops.pull_image(client, image, progress)
        _pulled[image] = Pulled(image=image, newer=newer, seconds=time.monotonic() - started)
        return _pulled[image]
