"""The `pgtopo` command: parses arguments, calls the pipeline, renders, maps errors to exit codes.

No decisions are made here.  Exit codes (for users: docs/exit-codes.md):
  validate  0 valid            2 invalid file
  diff      0 in sync          1 changes pending (or apply would refuse)   2 error
  apply     0 converged        1 refused / not converged / lock timeout    2 error in file or environment
  status    0 observed         2 error
  history   0 shown            2 error (a damaged history)
  destroy   0 removed          1 not confirmed                             2 error
  backup    0 taken / not due  1 lock timeout, refused                     2 error (no backup: block, the job failed)
  backups   0 listed           2 error
  export    0 written          2 error (no major in the image's tag and no --image-name)
Heavy libraries (docker, psycopg, rich) are imported only by the commands that need them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from pgtopo import __version__
from pgtopo.errors import (
    EXIT_CHANGES,
    EXIT_ERROR,
    EXIT_OK,
    PgtopoError,
    PoolerBusy,
    PullFailed,
    RolledBack,
    SafetyRefusal,
)

if TYPE_CHECKING:
    import docker

    from pgtopo.actions import Action, Plan, PullPolicy
    from pgtopo.spec import Topology

F = TypeVar("F", bound=Callable[..., Any])  # a command function, decorated with options

FILE = click.argument("file", type=click.Path(dir_okay=False, path_type=Path))


def common(fn: F) -> F:
    """-v and --log-format, accepted after the command as well as before it (on the group)."""
    fn = click.option("-v", "--verbose", is_flag=True, help="Log every step (structlog) on stderr.")(fn)
    fn = click.option("--log-format", type=click.Choice(["console", "json"]), default=None,
                      help="Log format on stderr: console (default) or json for CI; errors too.")(fn)
    return fn


# The group's -v / --log-format (`pgtopo -v apply ...`); a command's own options add to them.
_GLOBAL: dict[str, Any] = {"verbose": False, "log_format": None}


def _setup(verbose: bool, log_format: str | None) -> None:
    from pgtopo import log

    _GLOBAL["verbose"] = verbose = verbose or bool(_GLOBAL["verbose"])
    _GLOBAL["log_format"] = log_format = log_format or _GLOBAL["log_format"] or "console"
    log.configure(verbose=verbose, fmt=log_format)


def _load(file: Path, ask_server: bool = False, pull: "PullPolicy" = "never") -> "Topology":
    """The file's topology.  `ask_server` (diff, apply, switchover): parameters that no shipped
    catalog covers are checked against the image's own server (image_catalog.py), pulled first
    when `pull` (apply's policy) says so."""
    from pgtopo.loader import load_topology

    if not ask_server:
        return load_topology(file)
    from pgtopo import image_catalog

    topo = load_topology(file, catalog=lambda topo: image_catalog.server_catalog(_client(), topo, pull))
    if topo.backup is not None and topo.backup.method == "pgbackrest":
        from pgtopo.backup import pgbackrest_run

        pgbackrest_run.check_image(_client(), topo)
    return topo


def _client() -> "docker.DockerClient":
    from pgtopo import docker_ops

    return docker_ops.connect()


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="pgtopo")
@common
def cli(verbose: bool, log_format: str | None) -> None:
    """Declarative PostgreSQL streaming replication on plain Docker.

    A YAML file says what the cluster must be; `diff` shows what would change, `apply` makes it so.

    \b
    Example:
      pgtopo validate cluster.yaml && pgtopo diff cluster.yaml && pgtopo apply cluster.yaml
    """
    _GLOBAL.update(verbose=verbose, log_format=log_format)


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@common
def validate(files: tuple[Path, ...], verbose: bool, log_format: str | None) -> None:
    """Check topology files; exit 0 when all are valid, 2 with FILE:LINE:COL errors otherwise.

    Never touches Docker (usable as a pre-commit hook: id pgtopo-validate).

    \b
    Example:  pgtopo validate examples/seed.yaml
    """
    from pgtopo.errors import SpecError

    _setup(verbose, log_format)
    problems: list[str] = []
    for file in files:
        try:
            topo = _load(file)
        except SpecError as exc:
            problems += exc.problems
            continue
        click.echo(f"{file}: valid (cluster {topo.cluster}, {len(topo.nodes)} node(s), primary {topo.primary})")
    if problems:
        raise SpecError(problems)


PRUNE = click.option("--prune-volumes", is_flag=True,
                     help="Also delete the data volumes of nodes removed from the file (destructive).")


def _prune_catalog(fn: F) -> F:
    """--prune-roles and --prune-databases: what pgtopo made that the file no longer names."""
    fn = click.option("--prune-databases", is_flag=True,
                      help="Also drop the databases pgtopo made that the file no longer names (destructive).")(fn)
    return click.option("--prune-roles", is_flag=True,
                        help="Also drop the roles pgtopo made that the file no longer names (destructive).")(fn)


def _allow_data_loss(fn: F) -> F:
    """--allow-data-loss, and the retired --force (which now only says what replaced it)."""
    fn = click.option("--force", "retired_force", is_flag=True, hidden=True)(fn)
    return click.option(
        "--allow-data-loss", "allow_data_loss", is_flag=True,
        help="Consent to discarding WAL that no other node holds: promoting past a more advanced copy, "
             "rewinding or re-cloning a diverged writer. Never implied by --yes.")(fn)


def _retired(force: bool) -> None:
    if force:
        raise PgtopoError("--force is gone: a promotion past a more advanced copy discards committed writes",
                          hint="read what `pgtopo diff` says would be discarded, then pass --allow-data-loss")
PULL = click.option(
    # actions.PullPolicy's values, written out: importing actions would slow every start-up (--help)
    "--pull", type=click.Choice(["missing", "never", "always"]), default="missing", show_default=True,
    envvar="PGTOPO_PULL", show_envvar=True,
    help="Pull the file's image from its registry when the engine lacks it (missing), never, or every time "
         "(always), as docker compose does; with the credentials of `docker login`. diff only shows the pull.")
OUTPUT = click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True,
                      help="text for people; json: the documented document (schemas/*.schema.json).")


@cli.command()
@FILE
@common
@PRUNE
@_prune_catalog
@_allow_data_loss
@PULL
@OUTPUT
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Also save the plan; `pgtopo apply PLAN.json` then carries out exactly it.")
def diff(file: Path, verbose: bool, log_format: str | None, prune_volumes: bool, allow_data_loss: bool,
         retired_force: bool, pull: "PullPolicy", output: str, out_file: Path | None, prune_roles: bool,
         prune_databases: bool) -> None:
    """Show what apply would do. Exit 0 in sync, 1 changes pending (or apply would refuse), 2 error.

    \b
    Example:  pgtopo diff cluster.yaml --out plan.json || echo "changes pending"
    """
    from pgtopo import documents, planfile, reconcile, render

    _setup(verbose, log_format)
    _retired(retired_force)
    topo = _load(file, ask_server=True)
    plan, snapshot = reconcile.diff(_client(), topo, prune_volumes, allow_data_loss, pull, prune_roles, prune_databases,
                                    base_dir=file.parent)
    if output == "json" or out_file is not None:
        doc = documents.plan_document(topo, str(file), _read(file), snapshot.observed, plan)
        if out_file is not None:
            planfile.write(out_file, doc)
        if output == "json":
            click.echo(doc.to_json())
    if output == "text":
        render.print_plan(render.console(), topo, plan)
        if out_file is not None:
            render.console().print(f"plan saved to {out_file}; carry it out with `pgtopo apply {out_file}`")
    sys.exit(EXIT_OK if plan.empty else EXIT_CHANGES)


@cli.command()
@FILE
@common
@click.option("-y", "--yes", is_flag=True, help="Carry out destructive actions without asking (needed in CI).")
@click.option("--lock-timeout", type=float, default=600.0, show_default=True,
              help="Seconds to wait for another apply of the same cluster.")
@PRUNE
@_prune_catalog
@_allow_data_loss
@PULL
def apply(file: Path, verbose: bool, log_format: str | None, yes: bool, lock_timeout: float, prune_volumes: bool,
          allow_data_loss: bool, retired_force: bool, pull: "PullPolicy", prune_roles: bool,
          prune_databases: bool) -> None:
    """Make the cluster match the file (or carry out a saved plan); wait until every replica streams.

    FILE is a topology file, or a plan saved by `diff --out` (then exactly that plan runs, and
    only if neither the file nor the cluster changed since; a plan whose changes are already in
    place says so). Exit 0 converged, 1 refused, stale plan or not converged, 2 error in the file
    or environment. A run that changed something is recorded: see `pgtopo history`.

    \b
    Example:  pgtopo apply cluster.yaml --yes
              pgtopo apply plan.json --yes
    """
    _run_apply(file, verbose, log_format, yes, lock_timeout, prune_volumes, allow_data_loss, retired_force, pull,
               prune_roles=prune_roles, prune_databases=prune_databases)


def _run_apply(file: Path, verbose: bool, log_format: str | None, yes: bool, lock_timeout: float,
               prune_volumes: bool, allow_data_loss: bool, retired_force: bool, pull: "PullPolicy",
               switchover: bool = False, prune_roles: bool = False, prune_databases: bool = False) -> None:
    """apply (of a file or a saved plan), or the apply of a switchover; recorded in the history."""
    from pgtopo import journal, log, planfile, reconcile, render
    from pgtopo.actions import Kind

    _setup(verbose, log_format)
    _retired(retired_force)
    saved = planfile.read(file) if planfile.is_plan_file(file) else None
    topo = saved.topology if saved else _load(file, ask_server=True, pull=pull)
    out = render.console()
    progress = render.Progress(out)
    def finished(action: "Action", seconds: float, note: str | None) -> None:
        progress.clear(action.node)
        render.print_done(out, action, seconds, note)
        log.action_done(topo.cluster, action, seconds, note)

    events = reconcile.Events(
        started=lambda a: log.action_started(topo.cluster, a),
        finished=finished,
        info=lambda m: out.print(f"[dim]{m}[/]"),
        progress=progress.update,
    )
    record = journal.Journal(command="switchover" if switchover else "apply-plan" if saved else "apply",
                             file=str(file), source=saved.source if saved else file, exit_code=exit_code)
    with progress:
        if saved is not None:
            outcome = reconcile.apply_saved(_client(), topo, saved.base_dir, saved.plan, saved.fingerprint,
                                            consent=lambda p: _consent(p, yes), lock_timeout=lock_timeout,
                                            events=events, allow_data_loss=allow_data_loss, pull=pull,
                                            journal=record)
        else:
            outcome = reconcile.apply(_client(), topo, file.parent, consent=lambda p: _consent(p, yes),
                                      lock_timeout=lock_timeout, events=events, prune_volumes=prune_volumes,
                                      allow_data_loss=allow_data_loss, pull=pull, journal=record,
                                      prune_roles=prune_roles, prune_databases=prune_databases)
    if outcome.already_applied:
        out.print(f"cluster {topo.cluster}: this plan was already applied; the cluster is as the file says, "
                  "nothing to do")
        return
    if not outcome.done:
        out.print(f"cluster {topo.cluster}: in sync with the file, nothing to do")
        return
    out.print(
        f"applied {len(outcome.done)} action(s) in {outcome.seconds:.1f} s "
        f"(clones {outcome.count(Kind.CLONE) + outcome.count(Kind.RECLONE)}, rewinds {outcome.count(Kind.REWIND)}, "
        f"restarts {outcome.count(Kind.RESTART)}); every replica streams"
    )


def _consent(plan: "Plan", yes: bool) -> bool:
    if yes:
        return True
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        return False
    from pgtopo import render

    out = render.console()
    out.print("[bold red]The plan has destructive actions:[/]")
    for action in plan.destructive:
        out.print(f"  {render.action_line(action)}  [dim]{action.node}[/]")
    return click.confirm("Carry them out?", default=False)


@cli.command()
@FILE
@common
@OUTPUT
@click.option("-w", "--watch", is_flag=True, help="Refresh every 2 s until interrupted.")
@click.option("--check", is_flag=True,
              help="Also plan: a drift column, and exit 1 when apply would change anything or WAL archiving "
                   "fails (for monitoring).")
def status(file: Path, verbose: bool, log_format: str | None, output: str, watch: bool, check: bool) -> None:
    """Show each node: container, host port, role, upstream, replication state, lag, timeline.

    \b
    Example:  pgtopo status cluster.yaml --watch
              pgtopo status cluster.yaml --check   # exit 1 when the cluster differs from the file
    """
    import time

    from pgtopo import documents, reconcile, render
    from pgtopo.observe import observe

    _setup(verbose, log_format)
    topo = _load(file)
    client = _client()

    def current() -> "documents.StatusDocument":
        if check:
            p, snapshot = reconcile.diff(client, topo, base_dir=file.parent)
            return documents.status_document(topo, snapshot.observed, p)
        return documents.status_document(topo, observe(client, topo).observed)

    if output == "json" or not watch:
        doc = current()
        if output == "json":
            click.echo(doc.to_json())
        else:
            render.print_status(render.console(), doc)
        if check and (not doc.in_sync or doc.problems):  # problems: WAL archiving that fails (docs/backup.md)
            _exit(EXIT_CHANGES)
        return
    try:
        render.watch_status(render.console(), current, time.sleep)
    except KeyboardInterrupt:
        return


@cli.command()
@FILE
@common
@OUTPUT
def history(file: Path, verbose: bool, log_format: str | None, output: str) -> None:
    """Show the cluster's last applies that changed something or failed, oldest first.

    Each: when, which command, its actions, how it ended, how long it took, and who ran it
    from where (user, host, pgtopo version, CI job). Kept in the cluster's state volume.

    \b
    Example:  pgtopo history cluster.yaml
              pgtopo history cluster.yaml --output json
    """
    from pgtopo import history as past, journal, render

    _setup(verbose, log_format)
    topo = _load(file)
    doc = past.document(topo.cluster, journal.read(_client(), topo))
    if output == "json":
        click.echo(doc.to_json())
    else:
        render.print_history(render.console(), doc)


@cli.command()
@FILE
@click.argument("node", required=False)
@common
@click.option("--all", "every", is_flag=True,
              help="One URL listing every node, primary first, with target_session_attrs=read-write.")
def url(file: Path, node: str | None, verbose: bool, log_format: str | None, every: bool) -> None:
    """Print a libpq URL for NODE (default: the primary), without the password.

    \b
    Example:  psql "$(pgtopo url cluster.yaml)"
              pgtopo url cluster.yaml --all   # clients that find the writer themselves
    """
    from pgtopo import connect, desired

    _setup(verbose, log_format)
    topo = _load(file)
    client, names = _client(), desired.names(topo)
    wanted = sorted(topo.nodes) if every else [connect.node_of(str(file), topo, node)]
    ports = {}
    for name in wanted:
        port = _published(client, names.container(name))
        if port is not None:
            ports[name] = port
        elif not every:
            raise connect.not_running(name, names.container(name))
    if every:
        if not ports:
            raise connect.not_running(topo.primary, names.container(topo.primary))
        click.echo(connect.read_write_url(ports, topo.primary))
    else:
        click.echo(connect.url(wanted[0], ports[wanted[0]]))


def _published(client: "docker.DockerClient", container: str) -> int | None:
    from pgtopo import docker_ops, labels
    from pgtopo.errors import DockerError

    try:
        return docker_ops.host_port(client, container, labels.PG_PORT)
    except DockerError:
        return None  # no such container


@cli.command(context_settings={"ignore_unknown_options": True})
@FILE
@click.argument("node", required=False)
@click.argument("psql_args", nargs=-1, type=click.UNPROCESSED)
def psql(file: Path, node: str | None, psql_args: tuple[str, ...]) -> None:
    """Open psql on NODE (default: the primary) as the superuser, inside its container.

    Arguments after `--` go to psql.

    \b
    Example:  pgtopo psql cluster.yaml
              pgtopo psql cluster.yaml replica -- -c 'SELECT pg_is_in_recovery()'
    """
    import os
    import shutil

    from pgtopo import connect, desired

    topo = _load(file)
    if node is not None and node.startswith("-"):
        psql_args, node = (node, *psql_args), None
    chosen = connect.node_of(str(file), topo, node)
    container = desired.names(topo).container(chosen)
    if _published(_client(), container) is None:
        raise connect.not_running(chosen, container)
    if shutil.which("docker") is None:
        from pgtopo.errors import DockerError

        raise DockerError("the docker command is not on PATH; pgtopo psql runs `docker exec`",
                          hint=f"or connect with: psql \"$(pgtopo url {file} {chosen})\"")
    argv = connect.psql_argv(container, psql_args, sys.stdin.isatty() and sys.stdout.isatty())
    sys.stdout.flush()
    os.execvp(argv[0], argv)


@cli.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script.

    \b
    Example:  pgtopo completion bash > /etc/bash_completion.d/pgtopo
    """
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    assert cls is not None
    click.echo(cls(cli, {}, "pgtopo", "_PGTOPO_COMPLETE").source())


@cli.command()
@FILE
@common
@click.option("--volumes", is_flag=True, help="Also delete the data volumes and the stored credentials (never a backup repository).")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation (needed when not on a terminal).")
def destroy(file: Path, verbose: bool, log_format: str | None, volumes: bool, yes: bool) -> None:
    """Remove the cluster's containers (and the network pgtopo created); keep volumes unless --volumes.

    \b
    Example:  pgtopo destroy cluster.yaml --yes
    """
    from pgtopo import destroy as teardown, render

    _setup(verbose, log_format)
    topo = _load(file)
    what = "containers, network" + (" AND DATA VOLUMES" if volumes else " (volumes are kept)")
    if not yes:
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            raise SafetyRefusal(f"destroy of cluster {topo.cluster} needs confirmation; nothing was removed",
                                hint="pass --yes when not on a terminal")
        if not click.confirm(f"Remove cluster {topo.cluster}: {what}?", default=False):
            raise SafetyRefusal("not confirmed; nothing was removed")
    removed = teardown.destroy(_client(), topo, volumes=volumes)
    out = render.console()
    for name in removed:
        out.print(f"[red]-[/] {render._escape(name)}")
    out.print(f"cluster {topo.cluster}: removed {len(removed)} object(s)" + ("" if volumes else "; volumes kept"))


@cli.command()
@FILE
@common
@click.option("--to", "node", required=True, help="The node that must become the primary.")
@click.option("-y", "--yes", is_flag=True, help="Carry out destructive actions without asking (needed in CI).")
@click.option("--lock-timeout", type=float, default=600.0, show_default=True)
@_allow_data_loss
@PULL
def switchover(file: Path, verbose: bool, log_format: str | None, node: str, yes: bool, lock_timeout: float,
               allow_data_loss: bool, retired_force: bool, pull: "PullPolicy") -> None:
    """Make NODE the primary: rewrite `primary:` in FILE (comments kept), show the plan, apply it.

    When apply refuses (a lagging or non-streaming candidate), the file is put back as it was.

    \b
    Example:  pgtopo switchover cluster.yaml --to replica
    """
    from pgtopo import edit, render
    from pgtopo.loader import parse_topology

    _setup(verbose, log_format)
    _retired(retired_force)
    before = _load(file, ask_server=True)  # before the file is rewritten
    original = _read(file)
    if before.primary == node:
        click.echo(f"{file}: {node} is already the primary in the file; applying it")
        updated = original
    else:
        change = edit.with_primary(file, original, node)
        _check_edit(file, before, parse_topology(change.text, str(file), _env()), node)
        updated = change.text
        file.write_text(updated)
        render.console().print(f"{file}: primary: {before.primary} → {node}", highlight=False)
        for line in edit.describe(change):
            render.console().print(line, highlight=False, markup=False)
    try:
        _run_apply(file, verbose, log_format, yes, lock_timeout, False, allow_data_loss, retired_force, pull,
                   switchover=True)
    except (SafetyRefusal, RolledBack, PullFailed, PoolerBusy) as exc:
        # Put the file back only when no promotion happened: a refusal before any change, a pull
        # that failed (before any change), a pooler that could not pause (before the switchover
        # started), or a switchover undone with the old primary taking writes again.
        if (isinstance(exc, (RolledBack, PullFailed, PoolerBusy)) or "nothing was changed" in exc.message) and updated != original:
            file.write_text(original)
            exc.message += f"\n{file} was put back as it was (primary: {before.primary})"
        raise


def _check_edit(file: Path, before: "Topology", after: "Topology", node: str) -> None:
    """The rewritten file must say what the old one said, but for `primary:` and the new primary's
    upstream; anything else means the in-place edit went wrong, and the file is not written."""
    expected = before.model_dump()
    expected["primary"] = node
    expected["nodes"][node]["upstream"] = None
    if after.model_dump() != expected:
        from pgtopo.errors import SpecError

        raise SpecError([f"{file}: cannot rewrite `primary:` in place without changing anything else; "
                         f"set `primary: {node}` by hand and run apply"])


def _read(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8")
    except OSError as exc:
        from pgtopo.errors import SpecError

        raise SpecError([f"{file}: cannot read: {exc.strerror}"]) from exc


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)


@cli.command()
@FILE
@common
@click.option("--type", "kind", type=click.Choice(["full", "incr"]), default="full", show_default=True,
              help="full: a complete copy; incr: what changed since the last backup (method pgbackrest only).")
@click.option("--if-due", is_flag=True, help="Only when backup.schedule says one is due (for cron or CI).")
@click.option("--lock-timeout", type=float, default=600.0, show_default=True,
              help="Seconds to wait for an apply or a backup of the same cluster.")
def backup(file: Path, verbose: bool, log_format: str | None, kind: str, if_due: bool, lock_timeout: float) -> None:
    """Take a base backup into the file's backup repository, then expire what retention drops.

    \b
    Example:  pgtopo backup cluster.yaml
              pgtopo backup cluster.yaml --if-due   # from cron: follows backup.schedule
    """
    from pgtopo import render
    from pgtopo.backup import document, listing, take

    _setup(verbose, log_format)
    topo = _load(file)
    listing.needs_backup_block(topo, str(file))
    if kind == "incr" and topo.backup is not None and topo.backup.method == "native":
        raise PgtopoError("--type incr: method native takes full backups only; nothing was done",
                          hint="run `pgtopo backup` without --type, or use method: pgbackrest")
    out = render.console()
    progress = render.Progress(out)
    events = take.Events(info=lambda m: out.print(m, markup=False), progress=progress.update)
    with progress:
        outcome = take.take(_client(), topo, lock_timeout, events, if_due=if_due, kind=kind)
    for line in document.outcome_lines(outcome):
        out.print(line, markup=False)


@cli.command()
@FILE
@common
@OUTPUT
def backups(file: Path, verbose: bool, log_format: str | None, output: str) -> None:
    """List the cluster's complete backups, oldest first, and the recoverable window.

    \b
    Example:  pgtopo backups cluster.yaml --output json
    """
    from pgtopo.backup import document, listing

    _setup(verbose, log_format)
    topo = _load(file)
    listing.needs_backup_block(topo, str(file))
    doc = listing.document(_client(), topo)
    click.echo(doc.to_json() if output == "json" else "\n".join(document.text_lines(doc)))


def _image_name(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from pgtopo.spec import IMAGE_REFERENCE

    if value is not None and not IMAGE_REFERENCE.fullmatch(value):
        raise click.BadParameter(f"{value!r} is not an image reference, [REGISTRY[:PORT]/]NAME[:TAG][@DIGEST]")
    return value


def _quantity(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from pgtopo.export.cnpg import QUANTITY

    if not QUANTITY.fullmatch(value):
        raise click.BadParameter(f"{value!r} is not a size as Kubernetes writes one, e.g. 10Gi or 500Mi")
    return value


@cli.command()
@FILE
@common
@click.option("--format", "fmt", type=click.Choice(["cnpg"]), required=True,
              help="cnpg: a CloudNativePG Cluster (and a Database per database of the file).")
@click.option("--image-name", callback=_image_name,
              help="The Cluster's image; default ghcr.io/cloudnative-pg/postgresql:MAJOR, MAJOR from the file's "
                   "image tag.")
@click.option("--bootstrap", type=click.Choice(["pg_basebackup", "initdb"]), default="pg_basebackup",
              show_default=True, help="pg_basebackup: clone the running primary; initdb: start empty.")
@click.option("--source-host", help="How the pods reach the primary (pg_basebackup); default its container name.")
@click.option("--storage-size", default="10Gi", show_default=True, callback=_quantity,
              help="Each instance's volume.")
@click.option("--output", "out_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the manifest to this file instead of stdout.")
def export(file: Path, verbose: bool, log_format: str | None, fmt: str, image_name: str | None, bootstrap: str,
           source_host: str | None, storage_size: str, out_file: Path | None) -> None:
    """Write the cluster as a Kubernetes manifest; never touches Docker.

    What the target cannot express is left out, each with a warning on stderr (docs/export.md).

    \b
    Example:  pgtopo export cluster.yaml --format cnpg --output cluster.cnpg.yaml
    """
    from pgtopo.export import cnpg, yaml_text

    _setup(verbose, log_format)
    if source_host is not None and bootstrap != "pg_basebackup":
        raise click.UsageError("--source-host goes with --bootstrap pg_basebackup")
    if out_file is not None and out_file.resolve() == file.resolve():
        raise click.UsageError("--output names the topology file itself")
    topo = _load(file)
    method = cnpg.PgBaseBackup(source_host) if bootstrap == "pg_basebackup" else cnpg.InitDb()
    documents, warnings = cnpg.cluster_manifest(topo, image_name, method, storage_size=storage_size, file=str(file))
    text = yaml_text.documents_text(documents)
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    if out_file is None:
        click.echo(text, nl=False)
        return
    try:
        out_file.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise PgtopoError(f"cannot write {out_file}: {exc.strerror}; nothing was written",
                          hint="name a file in a directory you can write to") from exc


@cli.command()
def schema() -> None:
    """Print the JSON Schema of the topology file.

    \b
    Example:  pgtopo schema > topology.schema.json
    """
    from pgtopo.schema import schema_text

    click.echo(schema_text(), nl=False)


class _Terminated(KeyboardInterrupt):
    """SIGTERM (a cancelled CI job): unwind like Ctrl-C, so the lock and jobs are released."""


def _terminated(signum: int, frame: object) -> None:
    raise _Terminated()


def main() -> NoReturn:
    """Entry point: run the CLI and turn every error into one message and an exit code."""
    import signal

    signal.signal(signal.SIGTERM, _terminated)
    try:
        cli.main(standalone_mode=False)
    except PgtopoError as exc:
        _fail(exc)
    except click.exceptions.Abort as exc:
        interrupt = exc.__cause__  # click turns Ctrl-C (and our SIGTERM) into Abort from it; a prompt's has none
        if isinstance(interrupt, KeyboardInterrupt):
            _interrupted(interrupt)
        click.echo("aborted", err=True)
        _exit(EXIT_CHANGES)
    except click.ClickException as exc:
        exc.show()
        _exit(EXIT_ERROR)
    except KeyboardInterrupt as exc:
        _interrupted(exc)
    except SystemExit as exc:
        _exit(exit_code(exc))
    except Exception as exc:  # a bug: say so plainly, keep the traceback for -v
        if "-v" in sys.argv or "--verbose" in sys.argv:
            raise
        click.echo(f"internal error (a bug in pgtopo, please report it): {type(exc).__name__}: {exc}", err=True)
        click.echo("hint: run again with -v for the traceback", err=True)
        _exit(EXIT_ERROR)
    _exit(EXIT_OK)


def exit_code(exc: BaseException) -> int:
    """The status main() exits with when a command raises `exc` (the history records it)."""
    match exc:
        case PgtopoError():
            return exc.exit_code
        case click.exceptions.Abort():  # Ctrl-C at a prompt, or a prompt that got no answer
            cause = exc.__cause__
            return exit_code(cause) if isinstance(cause, KeyboardInterrupt) else EXIT_CHANGES
        case KeyboardInterrupt():
            return 143 if isinstance(exc, _Terminated) else 130
        case SystemExit():
            return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else EXIT_ERROR)
        case _:
            return EXIT_ERROR


def _json_flag() -> bool:
    """`--log-format json` on the command line (an error can come before the options are read)."""
    args = sys.argv[1:]
    return "--log-format=json" in args or any(
        a == "--log-format" and args[i + 1:i + 2] == ["json"] for i, a in enumerate(args))


# What to do after an interrupted command that changes something; the others changed nothing.
AFTER_INTERRUPT = {
    "apply": "run apply again to finish what was started",
    "switchover": "run apply again to finish what was started",
    "destroy": "run destroy again to finish what was started",
    "backup": "the backup was not made complete; run `pgtopo backup` again (what it left is removed first)",
}


def interrupted_message(argv: list[str]) -> str:
    """What an interrupted `pgtopo ARGV` says: the command is the first argument that names one."""
    command = next((a for a in argv if a in cli.commands), None)
    after = AFTER_INTERRUPT.get(command or "")
    return f"interrupted; {after}" if after else "interrupted; nothing was changed"


def _interrupted(exc: KeyboardInterrupt) -> NoReturn:
    """Ctrl-C exits 130 and SIGTERM 143, as shells report them, so CI can tell a cancelled job from
    a refusal; the lock and helper containers were released as the stack unwound."""
    click.echo(interrupted_message(sys.argv[1:]), err=True)
    _exit(exit_code(exc))


def _exit(code: int) -> NoReturn:
    """Flush and leave without the interpreter's teardown (freeing modules we no longer need
    takes measurable time); everything pgtopo started has finished or been released by now."""
    import os

    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _fail(exc: PgtopoError) -> NoReturn:
    from pgtopo.errors import SpecError

    if _GLOBAL["log_format"] == "json" or _json_flag():
        import json

        problems = exc.problems if isinstance(exc, SpecError) else [exc.message]
        click.echo(json.dumps({"event": "error", "level": "error", "error": type(exc).__name__,
                               "message": exc.message, "problems": problems, "hint": exc.hint,
                               "exit_code": exc.exit_code}), err=True)
        _exit(exc.exit_code)
    if isinstance(exc, SpecError):
        for problem in exc.problems:
            click.echo(problem, err=True)
    else:
        click.echo(f"error: {exc.message}", err=True)
    if exc.hint:
        click.echo(f"hint: {exc.hint}", err=True)
    _exit(exc.exit_code)
