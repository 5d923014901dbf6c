"""One way to wait for something: ask until it answers or a deadline passes, and the intervals.

Called by pg_ops.py (a server that answers, streams, replays, promotes, drops a slot, applies a
reload), reconcile.py (every replica streams), lock.py (the lock another apply holds) and
destroy.py (a network the engine still counts an endpoint on); nodes.py and switch.py pick the
intervals pg_ops waits with.  Pure: the clock and the sleep are parameters, so tests pass fakes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# How often a wait asks, by what a late answer costs (a question costs one query or API call).
SWITCHOVER = 0.01  # a switchover's candidate replaying the old primary's last WAL, and a promotion:
#                    writes are down until it is noticed (pg_promote(wait => true) itself checks every 100 ms)
SERVER = 0.05  # a server that starts, streams, replays, lets go of a slot or applies a reload: apply
#                goes on at once, at the cost of a query on a connection to a server already up
DOCKER = 0.2  # a retry against the engine (a lock another apply holds, a network's lingering endpoint):
#               nobody waits on the moment it succeeds, and each try is a container create or a removal
PROGRESS = 1.0  # a backup job tethered to pgtopo (backup.take): inspect its container, then show how far the
#                 copy got; progress reads well at this pace
JOB_END = 0.25  # how often that job is asked whether it ended (its end is a backup's last step: seen sooner)

# How long the wait on a server that may never come is given before its container is looked at
# (nodes.py): a crash loop or an exited container ends the wait early instead of at its deadline.
CONTAINER_CHECK = 2.0  # a server that starts: inspect its container
UPSTREAM_CHECK = 5.0  # a replica that starts to stream: is its upstream frozen (docker pause)?

# Not a sleep: a job (initdb, clone, rewind...) is awaited by Docker's own wait, which blocks in the
# engine; each call is bounded by this so the job's progress is asked between calls (docker_ops._wait).
JOB_POLL = 30.0


def wait_until(check: Callable[[], T | None], deadline: float, interval: float, *,
               clock: Callable[[], float] = time.monotonic,
               sleep: Callable[[float], object] = time.sleep) -> T | None:
    """Call `check` until it returns something other than None, and return that; None once the
    monotonic `deadline` has passed after a call.  `check` is always called at least once (a
    deadline already past still gets one answer), and a sleep never runs past the deadline, so
    the last call comes at it.  Errors `check` raises go to the caller."""
    while True:
        value = check()
        if value is not None:
            return value
        remaining = deadline - clock()
        if remaining <= 0:
            return None
        sleep(min(interval, remaining))
