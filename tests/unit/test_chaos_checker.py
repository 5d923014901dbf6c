"""The chaos harness's checker and choices, with hand-built samples (no Docker, no Postgres)."""

from __future__ import annotations

import pytest

from tests.chaos.checker import Ack, LossAllowance, Objects, Probe, Sweep, leftovers, lost_writes, orphans, two_writers
from tests.chaos.choices import draw, pick
from tests.chaos.ops import topology_change
from tests.chaos.topology import Topo


def writer(node: str, conn: int = 1, t: float = 10.0) -> Probe:
    """Answered false before the barrier at t and again after it, on one connection."""
    return Probe(node, conn, t - 0.02, t - 0.01, False, t + 0.01, t + 0.02, False)


def standby(node: str, t: float = 10.0) -> Probe:
    return Probe(node, 7, t - 0.02, t - 0.01, True)


def sweep(number: int, *probes: Probe, t: float = 10.0) -> Sweep:
    return Sweep(number, t, probes)


def test_one_writer_and_standbys_is_fine() -> None:
    assert two_writers([sweep(1, writer("primary"), standby("replica"), standby("replica2"))]) == []


def test_two_writers_in_one_sweep_is_a_violation() -> None:
    found = two_writers([sweep(1, writer("primary"), writer("replica", conn=2), standby("replica2"))])
    assert len(found) == 1 and found[0].invariant == "one-writer"
    assert "primary and replica both accepted writes" in found[0].message


def test_consecutive_sweeps_with_the_same_two_writers_are_reported_once() -> None:
    sweeps = [sweep(n, writer("primary", t=n), writer("replica", conn=2, t=n), t=n) for n in range(1, 6)]
    found = two_writers(sweeps)
    assert len(found) == 1 and "4 sweep(s) after it" in found[0].message


@pytest.mark.parametrize("old", [
    # a handover: the old primary answered false before the barrier, then its connection ended
    Probe("primary", 1, 9.98, 9.99, False, 10.01, 10.3, None),
    # ... or it was already shut down: no answer at all in this sweep
    None,
    # ... or it came back as a standby
    Probe("primary", 3, 9.98, 9.99, True),
])
def test_a_handover_inside_a_sweep_is_not_two_writers(old: Probe | None) -> None:
    new = writer("replica", conn=2)
    probes = (new,) if old is None else (old, new)
    assert two_writers([Sweep(1, 10.0, probes)]) == []


def test_answers_on_a_new_connection_prove_nothing() -> None:
    reconnected = Probe("primary", 1, 9.98, 9.99, False, None, None, None)  # the monitor drops a 2nd answer
    assert two_writers([sweep(1, reconnected, writer("replica", conn=2))]) == []


def test_a_second_answer_sent_before_the_barrier_proves_nothing() -> None:
    early = Probe("primary", 1, 9.97, 9.98, False, 9.985, 9.99, False)
    assert not early.writer_at(10.0)


def acks(*ids: int, node: str = "primary", at: float = 5.0) -> list[Ack]:
    return [Ack(i, node, at) for i in ids]


def test_every_acknowledged_row_present_is_fine() -> None:
    assert lost_writes(acks(1, 2, 3), {1, 2, 3, 4}) == []  # 4: committed but never acknowledged


def test_a_lost_acknowledged_row_is_a_violation() -> None:
    found = lost_writes(acks(1, 2, 3, 5, 6) + acks(9, node="replica", at=7.0), {1, 3})
    assert len(found) == 1 and found[0].invariant == "lost-write"
    assert "4 acknowledged row(s) missing" in found[0].message
    assert "3 acknowledged by primary (ids 2, 5-6)" in found[0].message
    assert "1 acknowledged by replica (ids 9)" in found[0].message


def test_a_lossy_step_allows_losing_rows_acknowledged_before_it() -> None:
    allowed = [LossAllowance("apply --allow-data-loss", until=6.0)]
    assert lost_writes(acks(1, 2, at=5.0), set(), allowed) == []
    late = lost_writes(acks(1, at=5.0) + acks(2, at=8.0), set(), allowed)
    assert len(late) == 1 and "ids 2" in late[0].message


def test_objects_of_the_file_only_is_fine() -> None:
    found = Objects(frozenset({"c-primary", "c-replica"}), frozenset({"c-primary-data", "c-replica-data",
                                                                        "c-pgtopo-state", "c-old-data"}),
                    frozenset({"c-net"}))
    assert orphans(found, {"primary", "replica"}, {"old"}, "c", "c-net") == []


def test_leftover_lock_or_job_containers_are_orphans() -> None:
    found = Objects(frozenset({"c-primary", "c-pgtopo-lock", "c-replica-clone"}),
                    frozenset({"c-primary-data", "c-pgtopo-state", "c-stray-data"}), frozenset({"c-net"}))
    messages = [v.message for v in orphans(found, {"primary"}, set(), "c", "c-net")]
    assert messages == ["containers nobody asked for: c-pgtopo-lock, c-replica-clone",
                        "volumes nobody asked for: c-stray-data"]
    assert leftovers(found) and leftovers(Objects()) == []


def test_the_same_seed_draws_the_same_choices() -> None:
    first = [draw(7, n) for n in range(1, 30)]
    assert first == [draw(7, n) for n in range(1, 30)]
    assert first != [draw(8, n) for n in range(1, 30)]
    assert all(c.fault != "engine-restart" for c in first)  # off unless asked
    assert not any(c.lossy for c in first)  # off unless asked
    assert draw(7, 3) == first[2]  # a round's choice does not depend on the rounds before it


def test_a_full_disk_comes_only_with_an_add_replica_and_changes_no_other_choice() -> None:
    choices = [draw(seed, n) for seed in range(1, 40) for n in range(1, 30)]
    full = [c for c in choices if c.disk_full]
    assert full and all(c.op == "change" and c.change == "add-replica" for c in full)
    assert len(full) < len([c for c in choices if c.change == "add-replica" and c.op == "change"]) / 2
    assert draw(8, 3).disk_full and draw(8, 3).describe().endswith("fault=none disk-full")
    # the draws that existed before the full disk are unchanged (seed 8 round 3, as drawn then)
    assert (draw(8, 3).fault_target, draw(8, 3).fault_delay) == (0.06942889560980325, 0.349)


def test_every_topology_change_gives_a_valid_file() -> None:
    from pgtopo.loader import parse_topology

    topo = Topo("c", "img", "primary", {"primary": None, "replica": None, "replica2": None})
    for n in range(1, 200):
        choice = draw(3, n)
        topo, _ = topology_change(choice, topo)
        if n % 7 == 0:
            topo = topo.with_primary(pick(choice.target, topo.replicas()))
        parse_topology(topo.render(), "chaos.yaml", {})
        assert 2 <= len(topo.nodes()) <= 4


@pytest.mark.parametrize("spec", ["any:1", "first:2:preferred", "any:2:required"])
def test_a_synchronous_run_keeps_enough_replicas_streaming_from_the_primary(spec: str) -> None:
    from pgtopo.loader import parse_topology
    from tests.chaos.ops import keep_standbys
    from tests.chaos.topology import Synchronous

    sync = Synchronous.parse(spec)
    for seed in (3, 8):
        topo = Topo("c", "img", "primary", {"primary": None, "replica": None, "replica2": None})
        for n in range(1, 80):
            choice = draw(seed, n)
            topo, _ = topology_change(choice, topo, sync.number)
            if n % 7 == 0:  # a new primary: a replica naming the old one can end up cascaded (see write)
                topo, _ = keep_standbys(topo.with_primary(pick(choice.target, topo.replicas())), sync.number)
            parsed = parse_topology(topo.render(sync.render()), "chaos.yaml", {})
            assert parsed.synchronous is not None and parsed.synchronous.number == sync.number
            assert len(topo.eligible()) >= sync.number and 2 <= len(topo.nodes()) <= 4


def test_the_synchronous_option_reads_method_number_and_durability() -> None:
    from tests.chaos.topology import Synchronous

    assert Synchronous.parse("any:1").render() == "synchronous: {method: any, number: 1, durability: required}"
    assert Synchronous.parse("FIRST:2:preferred").describe() == "first:2:preferred"
    for bad in ("any", "any:0", "some:1", "any:1:maybe", "any:x"):
        with pytest.raises(ValueError):
            Synchronous.parse(bad)


DISCARD_REFUSAL = ("{node}: a {kind} would discard 312 bytes of WAL on timeline 1 that no other node holds (it ends "
                   "at 0/3000148). If {node}'s writes must survive, name it as the primary in the file (primary: "
                   "{node}); to discard them, apply with --allow-data-loss")


def test_only_refusals_all_of_a_discarded_tail_are_answered_with_the_flag() -> None:
    from tests.chaos.harness import discards

    one = DISCARD_REFUSAL.format(node="primary", kind="rewind")
    two = DISCARD_REFUSAL.format(node="replica2", kind="re-clone")
    assert discards(f"error: refusing to apply; nothing was changed:\n  {one}\n  {two}\nhint: x\n") == [
        ("primary", "rewind", "312 bytes of WAL"), ("replica2", "re-clone", "312 bytes of WAL")]
    assert discards(f"error: refusing to go on after 2 action(s) above; the cluster is where they left it:\n  {one}")
    other = ("replica: cannot tell whether it holds WAL primary lacks (x), so primary is not made the primary. "
             "Start it; or apply with --allow-data-loss to promote primary anyway")
    assert discards(f"error: refusing to apply; nothing was changed:\n  {one}\n  {other}\n") == []
    assert discards("error: refusing to apply; nothing was changed:\n  " + one.replace(" --allow-data-loss", "")) == []
    assert discards(one) == []  # not in a refusal
