"""The primary's new settings proven before it is the first node to restart with them.  Pure.

Called by plan.py (is a proof needed, and the action that makes it) and execute.py (what the
proof's job printed).  A restart with settings no server starts with (`shared_buffers: 900GB`, a
library `shared_preload_libraries` names that the image lacks) takes its node down until
rollback.py puts it back.  Restarts run replicas first, so a replica's restart proves the settings
before the primary's, except when no replica restarts on the primary's settings before it: the
primary lowers a standby-sensitive setting (it goes first: standby_settings.py), no replica
restarts at all (a cluster of one, a change under the primary's own `parameters:`), or the
replicas restarted first run other node settings.  Then the plan starts with `prove-settings`: a
throw-away server of the file's image (desired.proof_job: initdb in the job's own file system,
no network, no volume, pgtopo's server defaults) is started with the primary's new
postgresql.auto.conf, and apply stops there, before any node is configured or restarted, when it
does not start, quoting the server's own reason.

What it cannot prove: memory the host has at the moment of the real restart, and a value only
the primary's data refuses.  rollback.py still covers those.
"""

from __future__ import annotations

from pgtopo import desired
from pgtopo.actions import Action, Kind, Phase, Wave
from pgtopo.spec import Topology

STARTED = "pgtopo-proof: started"
REFUSED = "pgtopo-proof: refused"
WAVE = Wave(Phase.BUILD, 0)  # before any node's own actions (rank 1 + depth): nothing is touched yet


def prove_first(topo: Topology, actions: list[Action]) -> list[Action]:
    """`actions` (waves ordered), with `prove-settings` of the primary first when the primary
    restarts before any replica has restarted on the same settings."""
    primary = topo.primary
    restarts = [a for a in actions if a.kind is Kind.RESTART]
    mine = next((a for a in restarts if a.node == primary), None)
    if mine is None:
        return actions
    settings = desired.settings(topo, primary)
    provers = [a.node for a in restarts if a.wave < mine.wave and desired.settings(topo, a.node) == settings]
    if provers:
        return actions
    before = [a.node for a in restarts if a.wave < mine.wave]
    if before:
        why = f"the replicas restarted before it ({', '.join(before)}) run other settings"
    elif len(restarts) > 1:
        why = "it restarts first"
    else:
        why = "no replica restarts on them"
    proof = Action(Kind.PROVE_SETTINGS, primary,
                   f"{why}: a throw-away server of the image is started with its new settings first, and apply "
                   "stops here, before any node is changed, if it does not start", wave=WAVE)
    return [proof, *actions]


def verdict(output: str) -> tuple[bool, str] | None:
    """(True, "") when the proof's server started; (False, its log) when it did not; None when
    the job printed neither (it failed before it could try)."""
    if STARTED in output:
        return True, ""
    if REFUSED in output:
        return False, output.split(REFUSED, 1)[1].strip()
    return None


def message(node: str, fatal: str) -> str:
    return (f"{node}: a server does not start with the file's settings: {fatal}\n"
            f"(a throw-away server of the image, started with {node}'s new settings before {node} would "
            f"restart; {node} was not touched, and no node was configured with them)")


HINT = "fix that setting in the file, check it with `pgtopo diff`, then apply again"
