"""Which node that does not run gets its postgresql.auto.conf rewritten from the file before it
starts (`rewrite-conf`, a job on its stopped volume), and why.  Pure.

Called by plan.py for each node whose data is kept.  A node is rewritten when:

* Docker restarts its container over and over: its server does not start on that file (a setting
  it cannot start with, such as `shared_buffers: 900GB`).  The primary too: promotion.py has
  refused, or fenced first, any other node that accepts writes, and a node the file calls a
  replica that last ran as a primary is fenced before it starts (plan._fence_first);
* it is a replica whose pg_control records hot-standby values above the file's
  (standby_settings.held_for_replay): those are held until it has replayed its primary's change;
* its server is stopped (or has no container) and the postgresql.auto.conf on its volume would
  start it on other settings than the file's: the container of a node whose first start failed is
  removed (execute._bootstrap), and a node started on a file that cannot start it would only
  crash-loop.

The primary's hot-standby values the file raises above its running standbys' are held where its
pg_control says (standby_settings.held_for_standbys): raising goes standbys first.
"""

from __future__ import annotations

from pgtopo import desired
from pgtopo.actions import Action, Kind, Wave
from pgtopo.observed import NodeFacts, Observed
from pgtopo.spec import Topology
from pgtopo.standby_settings import held_for_replay, held_for_standbys


def crash_looping(facts: NodeFacts) -> bool:
    """Docker restarts its container over and over: its server does not start on its data."""
    return facts.pg is None and facts.has_data and facts.container is not None and facts.container.crash_looping


def rewrite_conf(topo: Topology, obs: Observed, facts: NodeFacts, wave: Wave) -> Action | None:
    """The rewrite-conf action for a node whose data is kept, or None."""
    held = held_for_replay(topo, facts)
    if held:
        values = ", ".join(f"{k} {v}" for k, v in held.items())
        return Action(Kind.REWRITE_CONF, facts.name, f"its pg_control records {values} (its primary's, as of the "
                      "last parameter change it replayed) and it would not start with the file's lower values: stop "
                      "it, rewrite postgresql.auto.conf from the file with those held until it has replayed the "
                      "change (a later round lowers them)", wave=wave, settings=tuple(held.items()))
    keep = held_for_standbys(topo, obs, facts)
    kept = ("; " + ", ".join(f"{k} held at {v}" for k, v in keep.items()) + " (its running standbys have less: "
            "a later round raises it after them)") if keep else ""
    primary = "; it is the file's primary and no other node accepts writes" if facts.name == topo.primary else ""
    if crash_looping(facts):
        return Action(Kind.REWRITE_CONF, facts.name, f"Docker restarts it over and over (its server does not "
                      f"start){primary}: stop it, rewrite postgresql.auto.conf from the file{kept}", wave=wave,
                      settings=tuple(keep.items()))
    drift = conf_drift(topo, facts, keep)
    if drift:
        return Action(Kind.REWRITE_CONF, facts.name, f"its server is not running and the postgresql.auto.conf on "
                      f"its volume would start it with {drift}: rewrite it from the file before it starts{kept}",
                      wave=wave, settings=tuple(keep.items()))
    return None


def conf_drift(topo: Topology, facts: NodeFacts, keep: dict[str, str]) -> str:
    """How the postgresql.auto.conf on the volume of a node whose server is down differs from the
    file's settings (replication settings aside: apply repoints a running standby); "" when it does
    not, or when that file was not read."""
    c, data = facts.container, facts.data
    if facts.pg is not None or data is None or data.auto_conf is None or (c is not None and c.running):
        return ""
    want = {**desired.settings(topo, facts.name), **keep}
    have = {k: v for k, v in data.auto_conf.items() if k not in desired.REPLICATION_KEYS}
    changes = [f"{k} {have.get(k, '(unset)')} (the file: {want.get(k, 'unset')})"
               for k in sorted(set(want) | set(have)) if have.get(k) != want.get(k)]
    return ", ".join(changes)
