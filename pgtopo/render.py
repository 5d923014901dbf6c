"""Plans, progress and status for people (rich; plain when not a terminal or with NO_COLOR).
The status and history tables are drawn from their documents, so they show what the JSON says.

Called by the CLI only.  Rich is imported when something is printed, not when pgtopo starts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pgtopo.actions import Action, Plan
from pgtopo.documents import BackupStatus, NodeStatus, PoolerStatus, StatusDocument, SynchronousStatus
from pgtopo.spec import Topology

if TYPE_CHECKING:
    from datetime import datetime

    from rich.console import Console

    from pgtopo.history import HistoryDocument, HistoryEntry

STYLE = {"+": "green", "~": "yellow", "-": "red", "!": "bold red"}


def console(stderr: bool = False) -> "Console":
    """A console that colours only a terminal, and never with NO_COLOR set (no bold either)."""
    import os

    from rich.console import Console

    plain = bool(os.environ.get("NO_COLOR"))
    return Console(stderr=stderr, highlight=False, soft_wrap=True, color_system=None if plain else "auto")


def symbol(action: Action) -> str:
    return "!" if action.destructive else action.kind.symbol


def action_line(action: Action) -> str:
    sym = symbol(action)
    return f"[{STYLE[sym]}]{sym}[/] {action.kind.value:<14} {_escape(action.reason)}"


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def print_done(out: "Console", action: Action, seconds: float, note: str | None) -> None:
    """One line per finished action: `+ clone  <reason>  replica · 0.70 s`, and its note if any."""
    out.print(f"{action_line(action)}  [dim]{action.node or 'cluster'} · {seconds:.2f} s[/]")
    if note:
        out.print(f"  [yellow]note:[/] {_escape(note)}")


def print_plan(out: "Console", topo: Topology, p: Plan) -> None:
    """The plan grouped by node, in the order apply will run it."""
    for warning in p.warnings:
        out.print(f"[yellow]warning:[/] {_escape(warning)}")
    if p.refusals:
        out.print("[bold red]apply would refuse; nothing would be changed:[/]")
        for refusal in p.refusals:
            out.print(f"  [red]✗[/] {_escape(refusal)}")
        return
    if not p.actions:
        out.print(f"cluster {topo.cluster}: in sync with the file, nothing to do")
        for note in p.notes:
            out.print(f"  {_escape(note)}")
        return
    groups: dict[str, list[Action]] = {}
    for action in p.actions:
        groups.setdefault(action.node or f"cluster {topo.cluster}", []).append(action)
    for node, actions in groups.items():
        out.print(f"[bold]{_escape(node)}[/]")
        for action in actions:
            out.print(f"  {action_line(action)}")
            if action.pause_pooler:
                out.print(f"  [{STYLE['~']}]~[/] pooler         pause around the {action.kind.value}, then point it "
                          f"at {_escape(topo.primary)} and resume")
    counts = f"{len(p.actions)} action(s)"
    if p.destructive:
        counts += f", [bold red]{len(p.destructive)} destructive (!)[/]"
    if p.data_loss:
        counts += f", [bold red]{len(p.data_loss)} discarding WAL no other node holds (--allow-data-loss)[/]"
    out.print(f"plan: {counts}")


def print_status(out: "Console", doc: StatusDocument) -> None:
    """The status table, drawn from the status document (what `status --output json` prints)."""
    from rich.table import Table

    table = Table(title=f"cluster {doc.cluster}", title_justify="left", box=None, pad_edge=False)
    checked = doc.in_sync is not None
    columns = ("node", "container", "port", "role", "upstream", "replication", "lag (bytes)", "timeline")
    for column in columns + (("drift",) if checked else ()):
        table.add_column(column, justify="right" if column in ("port", "lag (bytes)", "timeline") else "left")
    for node in doc.nodes:
        drift = [", ".join(node.drift or ()) or "-"] if checked else []
        table.add_row(*(_escape(cell) for cell in status_cells(node) + drift))
    out.print(table)
    if doc.pooler is not None:
        out.print(_escape(pooler_line(doc.pooler)), highlight=False)
    if doc.read_pooler is not None:
        out.print(_escape(pooler_line(doc.read_pooler, "pooler (read-only)")), highlight=False)
    if doc.synchronous is not None:
        out.print(_escape(synchronous_line(doc.synchronous)), highlight=False)
    if doc.backup is not None:
        out.print(_escape(backup_line(doc.backup)), highlight=False)
    for problem in doc.problems:
        out.print(f"[red]problem:[/] {_escape(problem)}")
    if checked:
        for refusal in doc.refusals:
            out.print(f"refused: {_escape(refusal)}")
        out.print("in sync with the file" if doc.in_sync else
                  "differs from the file: `pgtopo diff` shows what apply would do")


def pooler_line(pooler: PoolerStatus, what: str = "pooler") -> str:
    """`pooler 127.0.0.1:6432 → primary · running · 12 clients, 2 server connections`."""
    where = pooler.endpoint or "no port"
    if pooler.container is None:
        state = "missing"
    elif pooler.paused is None:
        state = f"{pooler.container}, {pooler.error or 'its console does not answer'}"
    else:
        state = f"{pooler.container}{', PAUSED' if pooler.paused else ''} · {pooler.clients} clients, " \
                f"{pooler.servers} server connections"
    target = f" → {pooler.points_at}" if pooler.points_at else ""
    drift = f" · drift: {', '.join(pooler.drift)}" if pooler.drift else ""
    extra = "" if pooler.in_file else " (not in file)"
    return f"{what} {where}{target} · {state}{extra}{drift}"


def synchronous_line(sync: SynchronousStatus) -> str:
    """`synchronous ANY 1 ("primary", "replica") · durability required` (and what the primary runs
    with, when that differs)."""
    if sync.rule is None:
        return f"synchronous: none in the file, but the primary runs with {sync.in_effect}"
    line = f"synchronous {sync.rule} · durability {sync.durability}"
    if sync.in_effect is None:
        line += " · the primary does not answer"
    elif sync.in_effect != sync.rule:
        line += f" · the primary runs with {sync.in_effect or 'none (asynchronous)'}"
    return line


def backup_line(backup: BackupStatus) -> str:
    """`backup native → volume pg-backup · archived 000000010000000000000003 at …, 0 failed`, or
    what goes wrong with archiving."""
    line = f"backup {backup.method} → {backup.repository}"
    arch = backup.archiving
    if arch is None:
        return f"{line} · archiving: the primary does not answer"
    if arch.archive_mode == "off":
        return f"{line} · archiving off on {arch.node} (archive_mode off): apply turns it on"
    done = (f"archived {arch.last_archived_wal} at {_moment(arch.last_archived_time)}" if arch.last_archived_wal
            else "nothing archived yet")
    newest = (f"newest backup {arch.newest_backup}, ended {_age(arch.newest_backup_end)} ago" if arch.newest_backup
              else "no backup yet")
    if arch.failing:
        return (f"{line} · archiving FAILS on {arch.node}: {arch.last_failed_wal} at {_moment(arch.last_failed_time)}"
                f" ({arch.failed_count} failed; {done}) · {newest}")
    failed = f", last failure {arch.last_failed_wal} at {_moment(arch.last_failed_time)}" if arch.last_failed_wal else ""
    return f"{line} · {done} ({arch.archived_count} archived, {arch.failed_count} failed{failed}) · {newest}"


def _age(when: "datetime | None", now: "datetime | None" = None) -> str:
    """How long ago, in the largest unit that fits: 40 s, 12 min, 5 h, 3 d."""
    if when is None:
        return "?"
    from datetime import UTC, datetime

    seconds = max(0, int(((now or datetime.now(UTC)) - when).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= 2 * size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def _moment(when: "datetime | None") -> str:
    return "-" if when is None else when.isoformat(timespec="seconds")


def status_cells(node: NodeStatus) -> list[str]:
    """node, container, host port, role, upstream, replication, lag, timeline: as the table shows
    them.  A server that does not answer shows why (its error, or whether its volume has data)."""
    container = node.container or "missing"
    if not node.in_file:
        container += " (not in file)"
    port = "-" if node.host_port is None else str(node.host_port)
    if node.role is None:
        reason = node.error or ("has data" if node.has_data else "no data")
        return [node.name, container, port, "-", "-", reason, "-", "-"]
    replication = "-" if node.replication is None else node.replication
    if node.sync_state not in (None, "async"):
        replication += f" ({node.sync_state})"
    if node.delay is not None:
        replication += f", delay {node.delay}"
    return [node.name, container, port, node.role, node.upstream or "-", replication,
            "-" if node.lag_bytes is None else str(node.lag_bytes), str(node.timeline or "-")]


def print_history(out: "Console", doc: "HistoryDocument") -> None:
    """The history table, drawn from the history document (what `history --output json` prints),
    then the first line of the error of each run that failed (the JSON has all of it)."""
    from rich.table import Table

    if not doc.entries:
        out.print(f"cluster {_escape(doc.cluster)}: no apply recorded yet (an apply is recorded once it changes "
                  "something)")
        return
    table = Table(title=f"cluster {doc.cluster}", title_justify="left", box=None, pad_edge=False)
    for column in ("#", "started (UTC)", "command", "result", "took", "actions", "by"):
        table.add_column(column, justify="right" if column in ("#", "took") else "left",
                         no_wrap=column not in ("actions", "by"))
    for entry in doc.entries:
        table.add_row(*(_escape(cell) for cell in history_cells(entry)))
    out.print(table)
    for entry in doc.entries:
        if entry.result.error:
            first, _, more = entry.result.error.partition("\n")
            out.print(f"#{entry.number}: {_escape(first)}" + (" (…)" if more else ""))


MAX_LISTED = 4  # actions named in a history row; the rest are counted


def history_cells(entry: "HistoryEntry") -> list[str]:
    """number, start, command, result, duration, actions, who: as the history table shows them."""
    result = "ok" if entry.result.exit_code == 0 else f"failed (exit {entry.result.exit_code})"
    named = [f"{a.kind.value} {a.node or 'cluster'}" + ("" if a.seconds is not None else " (unfinished)")
             for a in entry.actions[:MAX_LISTED]]
    more = len(entry.actions) - MAX_LISTED + entry.actions_omitted
    if more > 0:
        named.append(f"+{more} more")
    who = entry.origin
    by = "@".join(part for part in (who.user, who.host) if part) or "-"
    by += "".join(f", {name}={value}" for name, value in list(who.ci.items())[:1])
    return [str(entry.number), entry.started_at.strftime("%Y-%m-%d %H:%M:%S"), entry.command, result,
            f"{entry.seconds:.1f} s", ", ".join(named), f"{by}, pgtopo {who.pgtopo_version}"]


class Progress:
    """Live progress of long work (clones, waits): one updating line per node on a terminal,
    a plain line every 2 s per node otherwise.  Thread-safe: actions report from worker threads."""

    PLAIN_EVERY = 2.0

    def __init__(self, out: "Console") -> None:
        self.out = out
        self.lines: dict[str, str] = {}
        self.last: dict[str, float] = {}
        self.live: Any = None  # rich.live.Live while on a terminal
        self.lock = threading.Lock()

    def __enter__(self) -> "Progress":
        if self.out.is_terminal:
            from rich.live import Live
            from rich.text import Text

            self.live = Live(Text(""), console=self.out, transient=True, refresh_per_second=8)
            self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.stop()

    def update(self, node: str, text: str) -> None:
        if not text:
            self.clear(node)
            return
        with self.lock:
            self.lines[node] = text
            if self.live is not None:
                self._refresh()
            elif time.monotonic() - self.last.get(node, 0.0) >= self.PLAIN_EVERY:
                self.last[node] = time.monotonic()
                self.out.print(f"{_escape(node or 'cluster')}: {_escape(text)}")

    def clear(self, node: str) -> None:
        with self.lock:
            self.lines.pop(node, None)
            if self.live is not None:
                self._refresh()

    def _refresh(self) -> None:
        from rich.text import Text

        assert self.live is not None
        self.live.update(Text("\n".join(f"… {n or 'cluster'}: {t}" for n, t in sorted(self.lines.items())), style="dim"))


def watch_status(out: "Console", status: "Callable[[], StatusDocument]", sleep: "Callable[[float], None]",
                 every: float = 2.0) -> None:
    """Refresh the status table every `every` seconds until interrupted (Ctrl-C)."""
    while True:
        doc = status()
        if out.is_terminal:
            out.clear()
        out.print(f"[dim]{time.strftime('%H:%M:%S')} · every {every:.0f} s · Ctrl-C to stop[/]")
        print_status(out, doc)
        sleep(every)
