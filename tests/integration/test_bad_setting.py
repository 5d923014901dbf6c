"""A setting a server cannot start with: the wait for it ends as soon as Docker restarts it (not
after two minutes), with the server's own message; the primary is left alone; putting the file
back heals the node."""

from __future__ import annotations

import time

from .conftest import IMAGE, PAIR, pgtopo, psql


def test_a_crash_looping_replica_is_reported_at_once_and_healed_from_the_file(make_cluster) -> None:
    c = make_cluster(IMAGE)
    c.write(PAIR)
    assert pgtopo("apply", str(c.path)).code == 0

    c.write("primary: primary\nnodes:\n  primary: {}\n  replica: {parameters: {shared_buffers: 900GB}}\n")
    started = time.monotonic()
    failed = pgtopo("apply", str(c.path), "--yes")
    took = time.monotonic() - started
    assert failed.code == 2, failed
    assert "replica: the server did not come up (its server stopped and Docker restarted it" in failed.err, failed
    assert "shared memory" in failed.err, failed  # the server's own words
    assert "Traceback" not in failed.err
    assert took < 60, f"apply took {took:.0f} s to notice the crash loop"
    assert psql(c.container("primary"), "SHOW shared_buffers") == "128MB"  # untouched

    c.write(PAIR)
    healed = pgtopo("apply", str(c.path), "--yes")
    assert healed.code == 0, (healed.out, healed.err)
    assert psql(c.container("replica"), "SELECT pg_is_in_recovery()") == "t"
    assert pgtopo("diff", str(c.path)).code == 0
