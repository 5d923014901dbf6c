"""The refusals of plan(), word for word where they tell the user what to do: objects pgtopo did
not make, a primary without data while other nodes hold the cluster's (and which node to name
instead), a state volume without the passwords, data of a newer major, an upgrade from a standby,
and a copy whose loss cannot be counted.  Pure, like test_plan.py."""

from __future__ import annotations

from dataclasses import replace

from pgtopo.observed import DataFacts, NodeFacts, Observed
from pgtopo.pgcontrol import SHUT_DOWN, SHUT_DOWN_IN_RECOVERY
from pgtopo.plan import plan

from .test_plan import OTHER, SYSID, T, container, converged, kinds, volume
from .test_plan_wal_gone import not_open, observed
from .test_upgrade_plan import T18, on17

NO_DATA = NodeFacts("primary", volume=volume(T, "primary"), data=DataFacts(False))


def kept(node: str, end: int | None, sysid: int = SYSID) -> NodeFacts:
    """A stopped standby's volume, no container; its WAL read up to `end` (None: not read)."""
    return NodeFacts(node, volume=volume(T, node), data=DataFacts(
        True, sysid, state=SHUT_DOWN_IN_RECOVERY, checkpoint=0x1000000, timeline=1, fenced=True, wal_end=end,
        wal_timeline=1 if end is not None else None))


def only_refusal(t, obs: Observed) -> str:
    p = plan(t, obs)
    assert p.actions == ()
    [refusal] = p.refusals
    return refusal


def test_an_object_pgtopo_did_not_make_is_never_touched() -> None:
    assert only_refusal(T, Observed(cluster="pg", foreign=("container pg-primary",))) == (
        "container pg-primary exists but was not made by pgtopo for cluster 'pg' (no pgtopo labels); pgtopo never "
        "touches it: rename or remove it, or choose another cluster name")


def test_a_primary_without_data_names_the_most_advanced_holder_to_make_the_primary() -> None:
    obs = converged(T, primary=NO_DATA, replica=kept("replica", 0x3000000), replica2=kept("replica2", 0x4000000))
    assert only_refusal(T, obs) == (
        "primary: the primary has no data but replica, replica2 still hold this cluster's data; pgtopo never initdbs "
        "a new primary while the cluster's data exists. Make one of them the primary in the file (primary: replica2) "
        "and apply again")


def test_another_cluster_s_data_is_never_the_one_to_make_the_primary() -> None:
    obs = converged(T, primary=NO_DATA, replica=kept("replica", 0x9000000, sysid=OTHER),
                    replica2=kept("replica2", 0x4000000))
    assert "(primary: replica2)" in only_refusal(T, obs)


def test_when_no_copy_is_known_the_most_advanced_the_first_holder_is_named() -> None:
    obs = converged(T, primary=NO_DATA, replica=kept("replica", None),
                    replica2=NodeFacts("replica2", volume=volume(T, "replica2"), data=DataFacts(False)))
    assert only_refusal(T, obs).endswith("Make one of them the primary in the file (primary: replica) and apply again")


def test_a_state_volume_without_the_passwords_is_refused_while_data_exists() -> None:
    assert only_refusal(T, replace(converged(T), credentials=False)) == (
        "the state volume pg-pgtopo-state holds no credentials while primary, replica, replica2 hold this cluster's "
        "data; new passwords would lock pgtopo out of it. Restore pg-pgtopo-state, or set auth.superuser_password and "
        "auth.replication_password in the file to the passwords in use, and apply again")


def on18(*nodes: str) -> Observed:
    """A 17 cluster (the file's image: 17) of which `nodes` run PostgreSQL 18."""
    obs = replace(converged(T), image_major=17)
    return replace(obs, nodes={n: replace(f, pg=replace(f.pg, server_version=180001)) if n in nodes else f
                               for n, f in obs.nodes.items()})


def test_data_of_a_newer_major_names_the_nodes_that_hold_it() -> None:
    assert only_refusal(T, on18("replica2")) == (
        "image: pgtopo-local/postgres:17 is PostgreSQL 17, and replica2 holds data of PostgreSQL 18: a server never "
        "starts on data of a newer major, and pgtopo never downgrades. Put back an image of PostgreSQL 18 in the file "
        "and apply again")
    assert "and replica, replica2 hold data of PostgreSQL 18:" in only_refusal(T, on18("replica", "replica2"))


def stopped_on17(fenced: bool) -> NodeFacts:
    """The primary stopped on data of PostgreSQL 17, its container of the old image kept."""
    data = DataFacts(True, SYSID, state=SHUT_DOWN_IN_RECOVERY if fenced else SHUT_DOWN, checkpoint=0x3000000,
                     timeline=1, wal_end=0x4000000, wal_timeline=1, major=17, fenced=fenced)
    return replace(on17().node("primary"), pg=None, data=data,
                   container=replace(container(T, "primary", "exited"), image_id="sha256:old17"))


def test_a_stopped_primary_of_an_older_major_is_upgraded() -> None:
    p = plan(T18, on17(primary=stopped_on17(fenced=False)))
    assert p.refusals == ()
    assert kinds(p)[0] == ("primary", "major-upgrade")


def test_an_upgrade_never_starts_from_data_that_holds_standby_signal() -> None:
    assert only_refusal(T18, on17(primary=stopped_on17(fenced=True))) == (
        "primary is a standby (its data holds standby.signal): an upgrade starts from a primary. Put back the image "
        "of PostgreSQL 17 in the file and apply, then change image: again")


def test_a_copy_whose_wal_end_is_unknown_says_the_amount_it_discards_is_unknown() -> None:
    refusal = only_refusal(T, observed(not_open(end=None)))
    assert refusal.startswith("replica: a re-clone would discard an unknown amount of WAL on timeline 1 that no other "
                              "node holds ("), refusal
    assert refusal.endswith("If replica's writes must survive, name it as the primary in the file (primary: replica); "
                            "to discard them, apply with --allow-data-loss")
    allowed = plan(T, observed(not_open(end=None)), allow_data_loss=True)
    reclone = next(a for a in allowed.actions if a.node == "replica")
    assert reclone.reason.endswith("; discards an unknown amount of WAL on timeline 1 that primary does not have")
    assert reclone.destructive and reclone.data_loss
