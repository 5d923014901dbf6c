"""What puts a cluster back when a restart's server does not start with the file's settings.  Pure.

Called by reconcile.py when a restart of a plan fails with ServerDidNotStart (Docker restarted
the server, or its container exited: `shared_buffers: 900GB`).  Restarts run one node a wave,
replicas first, so that is the first node restarted, and every later wave is skipped.  The steps:

* `restore-conf` on that node: stop it, put back the postgresql.auto.conf it ran with before this
  apply (PgFacts.working_conf, observed before the plan's ALTER SYSTEM), start it, and wait until
  it streams again;
* `configure` on every node this plan configured but did not restart: ALTER SYSTEM back to the
  values it runs with (the change would stop its server at its next restart, whoever makes it);
* nodes already restarted on the new settings keep them: their servers run with them;
* the synchronous rule this plan set (a reload, no restart) is kept everywhere, on the failed node
  too: it never stops a server from starting, and putting the primary's back alone would leave it
  acknowledging commits with fewer standbys than its standbys' rule says (synchronous.quorum).

Then apply fails with the setting and the server's own FATAL line (`message`).  The next apply,
with the file unchanged, plans the same change and fails the same way; with the file fixed, it
converges.
"""

from __future__ import annotations

from collections.abc import Sequence

from pgtopo import desired, synchronous
from pgtopo.actions import Action, Kind, Phase, Wave
from pgtopo.observed import Observed
from pgtopo.spec import Topology

# How a restart's reason promises this (plan.py), so `diff` says it before apply does it.
PROMISE = ("if its server does not start with them, apply stops there, puts it back on the settings it runs with "
           "now (restore-conf) and takes the change back out of the nodes not restarted yet")
WAVE = Wave(Phase.RESTART)  # where the steps are shown: they run at once, outside the plan's waves
KEPT = (synchronous.SETTING,)  # set by this apply and kept by a rollback (see above)


def steps(topo: Topology, obs: Observed, done: Sequence[Action], failed: Action, fatal: str) -> tuple[Action, ...]:
    """The actions that put the cluster back after `failed` (a restart) did not start its server;
    `done`: the actions of the same plan carried out before it.  () when `failed` is no restart
    of a node observed running (nothing known to put back)."""
    pg = obs.node(failed.node).pg
    if failed.kind is not Kind.RESTART or pg is None:
        return ()
    kept = {name: value for a in done if a.kind is Kind.CONFIGURE and a.node == failed.node
            for name, value in a.settings if name in KEPT}
    conf = {k: v for k, v in pg.working_conf.items() if k not in kept}
    conf.update({k: v for k, v in kept.items() if v is not None})
    restore = Action(Kind.RESTORE_CONF, failed.node,
                     f"its server did not start with {changed_settings(topo, obs, done, failed.node)} ({fatal}): "
                     "stop it, put back the postgresql.auto.conf it ran with before this apply, start it",
                     wave=WAVE, settings=tuple(conf.items()))
    return (restore, *undo_configures(obs, done, failed.node))


def undo_configures(obs: Observed, done: Sequence[Action], failed: str) -> list[Action]:
    """ALTER SYSTEM back to what they run with, on the nodes `done` configured but did not restart."""
    restarted = {a.node for a in done if a.kind is Kind.RESTART}
    out = []
    for a in done:
        pg = obs.node(a.node).pg
        if a.kind is not Kind.CONFIGURE or a.node == failed or a.node in restarted or pg is None:
            continue
        working = pg.working_conf
        back = tuple((name, working.get(name)) for name, _ in a.settings if name not in KEPT)
        if not back:
            continue
        names = ", ".join(f"{k}={v}" if v is not None else f"reset {k}" for k, v in back)
        out.append(Action(Kind.CONFIGURE, a.node, f"ALTER SYSTEM {names}: back to the values it runs with; "
                          f"{failed}'s server did not start with this apply's, and its next restart would not either",
                          wave=WAVE, settings=back))
    return out


def restart_settings(obs: Observed, done: Sequence[Action], node: str) -> list[str]:
    """The settings a restart of `node` was to apply: those of this plan's configure that take a
    restart, and those already waiting for one."""
    pg = obs.node(node).pg
    if pg is None:
        return []
    names = set(pg.pending_restart)
    names |= {k for a in done if a.kind is Kind.CONFIGURE and a.node == node for k, _ in a.settings
              if k in pg.restart_settings}
    return sorted(names)


def changed_settings(topo: Topology, obs: Observed, done: Sequence[Action], node: str) -> str:
    """`shared_buffers = 900GB`, as the file sets them."""
    want = desired.settings(topo, node)
    listed = [f"{k} = {want[k]}" if k in want else f"{k} reset" for k in restart_settings(obs, done, node)]
    return ", ".join(listed) or "the file's settings"


def hint(topo: Topology, obs: Observed, done: Sequence[Action], failed: Action) -> str:
    names = " and ".join(restart_settings(obs, done, failed.node)) or "the settings"
    container = desired.names(topo).container(failed.node)
    return (f"fix {names} in the file and apply again (`docker logs {container}` has the server's whole "
            "message); applied unchanged, the file fails the same way")


def message(topo: Topology, obs: Observed, done: Sequence[Action], failed: Action, fatal: str,
            undone: Sequence[Action], trouble: str | None) -> str:
    """What apply says when it stops: the setting, the server's own words, and what was put back."""
    node = failed.node
    head = f"{node}: its server did not start with {changed_settings(topo, obs, done, node)} from the file:\n  {fatal}"
    others = sorted({a.node for a in undone if a.kind is Kind.CONFIGURE})
    taken = (f"; it took the change back out of {', '.join(others)} (configured, not restarted yet)" if others else "")
    if trouble is not None:
        return (f"{head}\napply stopped there and tried to put {node} back on the settings it ran with before"
                f"{taken}, but putting {node} back failed too:\n{trouble}")
    restarted = sorted({a.node for a in done if a.kind is Kind.RESTART and a.node != node})
    kept = (f"{', '.join(restarted)}, restarted before it, run with the new settings and keep them" if restarted
            else "no other node was restarted")
    return (f"{head}\napply stopped there and put {node} back on the settings it ran with before (it runs again)"
            f"{taken}; {kept}")
