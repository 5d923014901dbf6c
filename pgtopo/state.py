"""The cluster's own state, kept in the Docker engine: passwords, the system identifier and the
history of applies.

Called by observe.py (read), execute.py (write), reconcile.py (the file's passwords) and journal.py
(the history, whose content history.py makes).  The state lives in the labelled volume
`<cluster>-pgtopo-state`, mounted read-only at /run/pgtopo in every node container, so any later
run through the same engine (a fresh CI runner included) finds it, and only those who can already
use that engine can read it.  Files are 0600 and owned by the image's postgres user (the history:
by root, as no server reads it); nothing secret is ever put in labels, environment, command lines
or output.
"""

from __future__ import annotations

import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, assert_never

from pgtopo import docker_ops, labels as L
from pgtopo.containers import Mount
from pgtopo.errors import DockerError, SpecError
from pgtopo.spec import EnvSecret, FileSecret, SecretRef, Topology

if TYPE_CHECKING:
    import docker

SUPERUSER_FILE = "superuser_password"
REPLICATION_FILE = "replication_password"
SYSID_FILE = "system_identifier"
PGPASS_FILE = "pgpass"
RESTORED_FILE = "restored_from"  # a cluster made from a backup: "CLUSTER LABEL" (backup/restore.py)
HISTORY_FILE = "history.json"  # written only by write_history, never by write: see journal.py


@dataclass(frozen=True)
class ClusterState:
    superuser_password: str
    replication_password: str
    system_identifier: int | None = None
    # the hosts pgpass has lines for (desired.pgpass_hosts); none: lines for any host, as an
    # older pgtopo wrote them, kept until the hosts are known
    hosts: tuple[str, ...] = ()
    # set when the cluster was made from another's backup (bootstrap.restore): "CLUSTER LABEL"
    restored_from: str | None = None
    # the history file's bytes as read with the rest (None: none yet); history.py reads them
    history: bytes | None = field(default=None, compare=False)

    def __repr__(self) -> str:  # never print a secret, not even in a debugger or a log
        return f"ClusterState(system_identifier={self.system_identifier})"


def generate_password() -> str:
    """32 URL-safe random characters from `secrets` (no ':' or '\\', so pgpass needs no escaping)."""
    return secrets.token_urlsafe(24)


def _pgpass_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace(":", "\\:")


def pgpass_line(host: str, user: str, password: str) -> str:
    return f"{_pgpass_escape(host)}:{L.PG_PORT}:*:{user}:{_pgpass_escape(password)}\n"


def encode(state: ClusterState, replication_user: str) -> dict[str, bytes]:
    """The files of the state volume.  pgpass names each host, so libpq offers a password only
    to this cluster's nodes."""
    pgpass = "".join(
        pgpass_line(host, user, password)
        for host in state.hosts or ("*",)
        for user, password in (("postgres", state.superuser_password), (replication_user, state.replication_password))
    )
    files = {
        SUPERUSER_FILE: state.superuser_password.encode(),
        REPLICATION_FILE: state.replication_password.encode(),
        PGPASS_FILE: pgpass.encode(),
    }
    # always present (empty until the primary's first initdb, after which pgtopo records it)
    files[SYSID_FILE] = str(state.system_identifier).encode() if state.system_identifier is not None else b""
    if state.restored_from is not None:
        files[RESTORED_FILE] = state.restored_from.encode()
    return files


def read_from(client: "docker.DockerClient", container: docker_ops.HelperId) -> ClusterState | None:
    """Read the state through a helper that mounts the state volume at /run/pgtopo."""
    files = docker_ops.read_dir(client, container, L.STATE_MOUNT) or {}
    return decode(files)


def read_in(client: "docker.DockerClient", container: str) -> ClusterState | None:
    """Read the state in a running node container (which mounts the state volume): by a process
    in it, never by a copy out of it (docker_ops.HelperId says why).  Raises DockerError when
    that container does not run."""
    return decode(docker_ops.exec_read_dir(client, container, L.STATE_MOUNT))


def decode(files: dict[str, bytes]) -> ClusterState | None:
    """The state from the volume's files; None when the passwords are not there (yet)."""
    superuser, replication = files.get(SUPERUSER_FILE), files.get(REPLICATION_FILE)
    if not superuser or not replication:
        return None
    sysid = files.get(SYSID_FILE)
    return ClusterState(
        superuser_password=superuser.decode(),
        replication_password=replication.decode(),
        system_identifier=int(sysid.decode()) if sysid else None,
        hosts=_pgpass_hosts(files.get(PGPASS_FILE, b"").decode(errors="replace")),
        restored_from=files[RESTORED_FILE].decode(errors="replace") if files.get(RESTORED_FILE) else None,
        history=files.get(HISTORY_FILE),
    )


def _pgpass_hosts(text: str) -> tuple[str, ...]:
    """The hosts pgpass has lines for; none when any line is for any host ("*")."""
    hosts = [line.split(":", 1)[0] for line in text.splitlines() if line and not line.startswith("#")]
    return () if "*" in hosts else tuple(sorted(set(hosts)))


def read(client: "docker.DockerClient", image: str, volume: str, cluster: str) -> ClusterState | None:
    """Read the state volume through a short-lived helper container."""
    mounts = (Mount(volume, L.STATE_MOUNT, read_only=True),)
    with docker_ops.helper(client, image, mounts, L.labels(cluster, "helper"), L.Names(cluster).helper()) as cid:
        return read_from(client, cid)


def write(client: "docker.DockerClient", image: str, volume: str, cluster: str,
          state: ClusterState, replication_user: str) -> None:
    """Write the state files (0600, owned by the image's postgres user) into the state volume."""
    mounts = (Mount(volume, L.STATE_MOUNT),)
    with docker_ops.helper(client, image, mounts, L.labels(cluster, "helper"), L.Names(cluster).helper()) as cid:
        uid, gid = postgres_ids(client, cid, image)
        docker_ops.write_files(client, cid, L.STATE_MOUNT, encode(state, replication_user), uid, gid)


def read_history_in(client: "docker.DockerClient", container: str) -> bytes | None:
    """The history file, read in a running node container by a process (as read_in); None when
    absent.  Raises DockerError when that container does not run."""
    return docker_ops.exec_read_dir(client, container, L.STATE_MOUNT).get(HISTORY_FILE)


def read_history(client: "docker.DockerClient", image: str, volume: str, cluster: str) -> bytes | None:
    """The history file, through a short-lived helper that mounts the state volume read-only."""
    mounts = (Mount(volume, L.STATE_MOUNT, read_only=True),)
    with docker_ops.helper(client, image, mounts, L.labels(cluster, "helper"), L.Names(cluster).helper()) as cid:
        return docker_ops.read_file(client, cid, f"{L.STATE_MOUNT}/{HISTORY_FILE}")


def write_history(client: "docker.DockerClient", image: str, volume: str, cluster: str, content: bytes) -> None:
    """Replace the history file of the state volume, and only it (0600, owned by root: no server
    needs it, and it costs no read of the image's users)."""
    mounts = (Mount(volume, L.STATE_MOUNT),)
    with docker_ops.helper(client, image, mounts, L.labels(cluster, "helper"), L.Names(cluster).helper()) as cid:
        docker_ops.write_files(client, cid, L.STATE_MOUNT, {HISTORY_FILE: content}, 0, 0)


def user_ids(client: "docker.DockerClient", container: docker_ops.HelperId, user: str) -> tuple[int, int] | None:
    """The uid and gid of `user` in the /etc/passwd of a created container; None when it has no
    such user."""
    passwd = docker_ops.read_file(client, container, "/etc/passwd") or b""
    for line in passwd.decode(errors="replace").splitlines():
        fields = line.split(":")
        if len(fields) >= 4 and fields[0] == user:
            return int(fields[2]), int(fields[3])
    return None


def postgres_ids(client: "docker.DockerClient", container: docker_ops.HelperId, image: str) -> tuple[int, int]:
    """The uid and gid of the image's postgres user, from the /etc/passwd of a created container."""
    found = user_ids(client, container, "postgres")
    if found is not None:
        return found
    raise DockerError(
        f"image {image} has no 'postgres' user",
        hint="use an image with PostgreSQL server binaries on PATH and a postgres user (e.g. postgres:17)",
    )


def desired_passwords(topo: Topology, base_dir: Path, env: dict[str, str] | None = None) -> tuple[str | None, str | None]:
    """Passwords the file asks for (None where it leaves them to pgtopo)."""
    env = dict(os.environ) if env is None else env
    auth = topo.auth
    return (_resolve(auth.superuser_password, "auth.superuser_password", base_dir, env),
            _resolve(auth.replication_password, "auth.replication_password", base_dir, env))


def role_password(topo: Topology, role: str, base_dir: Path, env: dict[str, str] | None = None) -> str | None:
    """The password the file gives role `role` of its `roles:` (None: it gives none), read when
    it is needed and never kept."""
    return _resolve(topo.roles[role].password, f"roles.{role}.password", base_dir,
                    dict(os.environ) if env is None else env)


def _resolve(ref: SecretRef | None, where: str, base_dir: Path, env: dict[str, str]) -> str | None:
    match ref:
        case None:
            return None
        case EnvSecret(env=name):
            value = env.get(name)
            if not value:
                raise SpecError([f"{where}: environment variable {name} is not set or empty"])
            return _one_line(value, where, f"environment variable {name}")
        case FileSecret(file=name):
            path = (base_dir / name).expanduser()
            value = _read_secret_file(path, where).strip()
            if not value:
                raise SpecError([f"{where}: {path} is empty"])
            return _one_line(value, where, str(path))
        case _:
            assert_never(ref)


def _one_line(value: str, where: str, source: str) -> str:
    """A password must be one line without control characters: pgpass and conninfo are line-based."""
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise SpecError([f"{where}: {source} holds control characters or more than one line; "
                         "a password must be one line of printable characters"])
    return value


MAX_SECRET_BYTES = 4096


def _read_secret_file(path: Path, where: str) -> str:
    """The text of a secret file: a regular file of at most MAX_SECRET_BYTES.  Opened without
    blocking (a FIFO would wait for a writer) and checked after opening, so what is read is what
    was checked."""
    what_to_do = f"point {where} at a regular file of at most {MAX_SECRET_BYTES} bytes that holds only the password"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        raise SpecError([f"{where}: cannot read {path}: {getattr(exc, 'strerror', None) or exc}; {what_to_do}"]) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise SpecError([f"{where}: {path} is not a regular file; {what_to_do}"])
        raw = os.read(fd, MAX_SECRET_BYTES + 1)
    except OSError as exc:
        raise SpecError([f"{where}: cannot read {path}: {exc.strerror or exc}; {what_to_do}"]) from None
    finally:
        os.close(fd)
    if len(raw) > MAX_SECRET_BYTES:
        raise SpecError([f"{where}: {path} is larger than {MAX_SECRET_BYTES} bytes; {what_to_do}"])
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SpecError([f"{where}: {path} is not UTF-8 text; {what_to_do}"]) from None
