"""Hot-standby settings (standby_settings.py), the cases test_plan_standby_settings.py leaves open:
several settings lowered or raised at once (the words of each reason and refusal), the exact
waves of restarts and late copies, a node deferred only because its upstream is, and which nodes
`held_for_replay` and `held_for_standbys` hold.
"""

from __future__ import annotations

from dataclasses import replace

from pgtopo.actions import Kind, Phase, Wave
from pgtopo.observed import DataFacts, NodeFacts
from pgtopo.plan import plan
from pgtopo.standby_settings import held_for_replay, held_for_standbys

from .test_plan import SYSID, container, topo, volume
from .test_plan_standby_settings import BEFORE, CASCADE, TODAY, running

TWO_LOWERED = {"max_connections": 50, "max_worker_processes": 4}
LOWERS = "max_connections 100 → 50, max_worker_processes 8 → 4"


def test_a_primary_lowering_two_settings_names_both_in_every_reason() -> None:
    p = plan(topo(nodes=CASCADE, parameters=TWO_LOWERED), running(BEFORE, TODAY))
    restarts = {a.node: a.reason for a in p.actions if a.kind is Kind.RESTART}
    assert restarts["primary"].endswith(
        f"; the primary first: it lowers {LOWERS}, which a standby may only follow once it has replayed the "
        "primary's parameter change")
    assert restarts["replica2"].endswith(
        f"; it lowers {LOWERS}: after its upstream, and only once it has replayed primary's WAL past primary's "
        "parameter change (started earlier, a standby refuses to run)")


def test_a_copy_made_after_the_restarts_says_which_lowered_settings_it_waits_for() -> None:
    t = topo(nodes={**CASCADE, "replica3": {}}, parameters=TWO_LOWERED)
    p = plan(t, running(BEFORE, TODAY))
    reasons = {(a.node, a.kind): a.reason for a in p.actions}
    assert reasons["replica3", Kind.CLONE].endswith(
        f"; after the restarts: primary lowers {LOWERS}, and a copy taken before that would keep the higher "
        "values, which its server would refuse to start below")
    assert reasons["replica3", Kind.CREATE_VOLUME] == "no data volume"  # only the copy says why it waits


def test_lowering_two_and_raising_two_is_refused_naming_all_four_word_for_word() -> None:
    t = topo(nodes=CASCADE, parameters={**TWO_LOWERED, "max_wal_senders": 60, "max_locks_per_transaction": 128})
    assert plan(t, running(BEFORE, TODAY)).refusals == (
        f"primary: the file lowers {LOWERS} and raises max_wal_senders 40 → 60, max_locks_per_transaction 64 → 128 "
        "in one apply; a standby can follow a lowering only after its primary restarts and a raise only before, so "
        "no order works. Apply the raise first (keep max_connections: 100, max_worker_processes: 8 in the file), "
        "then the lowering",)


def restart_waves(parameters: dict[str, int]) -> list[tuple[str, Wave]]:
    p = plan(topo(nodes=CASCADE, parameters=parameters), running(BEFORE, TODAY))
    return [(a.node, a.wave) for a in p.actions if a.kind is Kind.RESTART]


def test_restarts_take_the_restart_waves_from_rank_0_one_node_each_in_both_directions() -> None:
    raising = restart_waves({"max_connections": 150})
    lowering = restart_waves({"max_connections": 50})
    assert raising == [("replica2", Wave(Phase.RESTART, 0)), ("replica", Wave(Phase.RESTART, 1)),
                       ("primary", Wave(Phase.RESTART, 2))]
    assert lowering == [("primary", Wave(Phase.RESTART, 0)), ("replica", Wave(Phase.RESTART, 1)),
                        ("replica2", Wave(Phase.RESTART, 2))]
    assert [wave.number for _, wave in lowering] == [2_000_000, 2_000_001, 2_000_002]  # as a plan document says


# replica4 ran from the primary; the file puts it under replica3, new: cloned after the restarts
MOVED_BEFORE = topo(nodes={"primary": {}, "replica": {}, "replica4": {}})
MOVED = topo(nodes={"primary": {}, "replica": {}, "replica3": {}, "replica4": {"upstream": "replica3"}},
             parameters={"max_connections": 50})


def test_a_standby_under_a_copy_made_late_is_repointed_after_that_copy_in_its_own_wave() -> None:
    p = plan(MOVED, running(MOVED_BEFORE, TODAY))
    waves = {(a.node, a.kind): a.wave for a in p.actions}
    assert waves["replica3", Kind.CLONE] == Wave(Phase.JOIN, 2)  # 1 + its depth
    assert waves["replica4", Kind.REPOINT] == Wave(Phase.JOIN, 3)
    repoint = next(a for a in p.actions if a.kind is Kind.REPOINT)
    assert "after the restarts" not in repoint.reason  # no copy of its own: its reason is unchanged


def test_a_running_standby_rolled_onto_a_new_container_keeps_its_place_in_the_roll_when_deferred() -> None:
    observed = running(MOVED_BEFORE, TODAY)
    stale = NodeFacts("replica4", container=container(MOVED_BEFORE, "replica4", hash_="an-older-configuration"),
                      volume=volume(MOVED_BEFORE, "replica4"), pg=observed.node("replica4").pg)
    observed = replace(observed, nodes={**observed.nodes, "replica4": stale})
    p = plan(MOVED, observed)
    waves = {(a.node, a.kind): a.wave for a in p.actions}
    assert waves["replica4", Kind.RECREATE].phase is Phase.ROLL
    assert waves["replica4", Kind.REPOINT] == Wave(Phase.JOIN, 3)


def down(node: str, recorded: dict[str, int] | None, limits_read: bool = True) -> NodeFacts:
    """A node whose server does not run; `recorded`: the hot-standby values its pg_control holds
    (None: its volume was not read)."""
    data = None if recorded is None else DataFacts(
        has_pgdata=True, system_identifier=SYSID, state=2, limits={**TODAY, **recorded} if limits_read else {})
    return NodeFacts(node, container=container(BEFORE, node, state="exited"), volume=volume(BEFORE, node), data=data)


LOW = topo(nodes=CASCADE, parameters={"max_connections": 50})
HIGH = topo(nodes=CASCADE, parameters={"max_connections": 150})


def test_only_a_replica_is_held_at_what_its_pg_control_records() -> None:
    assert held_for_replay(LOW, down("replica", {})) == {"max_connections": "100"}
    assert held_for_replay(LOW, down("primary", {})) == {}  # the primary is the one that lowers
    assert held_for_replay(LOW, down("replica", None)) == {}  # nothing read off its volume
    assert held_for_replay(LOW, down("replica", {}, limits_read=False)) == {}


def test_only_the_file_s_primary_is_held_below_its_running_standbys() -> None:
    observed = running(BEFORE, TODAY)
    assert held_for_standbys(HIGH, observed, down("primary", {})) == {"max_connections": "100"}
    assert held_for_standbys(HIGH, observed, down("replica", {})) == {}  # a replica is raised before them anyway
    assert held_for_standbys(HIGH, observed, down("primary", None)) == {}
    assert held_for_standbys(HIGH, observed, down("primary", {}, limits_read=False)) == {}
