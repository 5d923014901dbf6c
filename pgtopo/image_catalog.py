"""The settings catalog of an image's own server, for images whose PostgreSQL major pgtopo ships no
catalog for (a newer release, or a tag that names no major).

Called by the CLI, as the loader's `CatalogLookup`, for diff, apply and switchover (`validate`
stays offline).  A one-shot job of the image (desired.catalog_job: a throw-away server, no network,
no volume, removed afterwards) prints its pg_settings.  `postgres --describe-config` would need no
server, but it leaves out the settings marked not-in-sample (`application_name`, the `debug_*`,
`jit_*` and `trace_*` ones, about fifty in 17) and prints neither units nor enum values: a catalog
made from it would refuse settings the server knows and could not check `4mb` or `archiv`.

What the job printed is kept for the process and on disk, keyed by the image's id: the id is the
digest of the image's configuration, so one id is always the same server.  The disk cache is
`$XDG_CACHE_HOME/pgtopo` (by default `~/.cache/pgtopo`), one small file per image; pgtopo works
without it (a cache it cannot read or write is ignored, and the job runs again).
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from pgtopo import desired, docker_ops, images, pg_settings
from pgtopo.actions import PullPolicy
from pgtopo.errors import DockerError
from pgtopo.spec import Topology

if TYPE_CHECKING:
    import docker

JOB_TIMEOUT = 300.0
CACHE_FORMAT = "1"  # bump when the job's output changes meaning
_IMAGE_ID = re.compile(r"^sha256:([0-9a-f]{64})$")
_seen: dict[str, pg_settings.Catalog] = {}  # image id -> catalog, for this process


def server_catalog(client: "docker.DockerClient", topo: Topology,
                   pull: PullPolicy = "never") -> pg_settings.Catalog | None:
    """The settings the server of the file's image knows; None when the engine does not have the
    image (diff then shows the pull, or refuses under --pull never).  `pull`: apply's policy, so
    that an image apply is about to pull is pulled first and its server asked (images.py)."""
    images.ensure(client, topo.image, pull)
    image_id = docker_ops.image_id(client, topo.image)
    if image_id is None:
        return None
    known = _seen.get(image_id) or _read_cache(image_id)
    if known is None:
        known = _ask_server(client, topo, image_id)
    _seen[image_id] = known
    return known


def _ask_server(client: "docker.DockerClient", topo: Topology, image_id: str) -> pg_settings.Catalog:
    why = (f"pgtopo ships no settings catalog for the major of {topo.image}, so it asks the image's server which "
           "settings it knows")
    hint = ("check that the image runs initdb, pg_ctl, postgres and psql as its postgres user; or use an image whose "
            "tag names a major pgtopo has a catalog for (`validate` lists the problems of those offline)")
    try:
        output = docker_ops.run_job(client, desired.catalog_job(topo), timeout=JOB_TIMEOUT)
    except DockerError as exc:
        raise DockerError(f"{why}, and that failed: {exc.message}", hint=hint) from exc
    try:
        known = pg_settings.parse_server_catalog(output)
    except ValueError as exc:
        raise DockerError(f"{why}, and its answer cannot be read: {exc}", hint=hint) from exc
    _write_cache(image_id, output)
    return known


def cache_dir() -> Path | None:
    """Where catalogs are kept between runs; None when there is no home to keep them in."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    if os.path.isabs(xdg):
        return Path(xdg) / "pgtopo"
    home = os.path.expanduser("~")
    return Path(home) / ".cache" / "pgtopo" if os.path.isabs(home) else None


def _cache_file(image_id: str, kind: str = "settings") -> Path | None:
    match, where = _IMAGE_ID.match(image_id), cache_dir()
    if match is None or where is None:
        return None
    return where / f"{kind}-v{CACHE_FORMAT}-{match.group(1)}.txt"


def write_cached(image_id: str, text: str, kind: str) -> None:
    _write_cache(image_id, text, kind)


def _read_cache(image_id: str) -> pg_settings.Catalog | None:
    text = read_cached(image_id)
    try:
        return pg_settings.parse_server_catalog(text) if text is not None else None
    except ValueError:
        return None  # unreadable: ask the server again


def read_cached(image_id: str, kind: str = "settings") -> str | None:
    """What an earlier run learnt of an image (by its id: a new build of a tag is another); None
    when nothing or nothing readable is kept."""
    path = _cache_file(image_id, kind)
    try:
        return path.read_text(encoding="utf-8") if path else None
    except (OSError, UnicodeDecodeError):
        return None


def _write_cache(image_id: str, output: str, kind: str = "settings") -> None:
    """Atomically (a whole file or none); a cache that cannot be written is no error."""
    path = _cache_file(image_id, kind)
    if path is None:
        return
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{kind}-")
    except OSError:
        return
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(output)
        os.replace(temp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temp)
