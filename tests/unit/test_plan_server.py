"""What the planner asks of a running server, word for word as `diff` shows it: the replication
role and the cluster's identity, passwords, settings and restarts on the primary; repointing a
standby and its slot; and the note for a node left as it is.  Pure, like test_plan.py."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pgtopo import rollback
from pgtopo.actions import Kind, Phase, Wave
from pgtopo.observed import DataFacts, NodeFacts, WalReceiver
from pgtopo.pgcontrol import SHUT_DOWN_IN_RECOVERY
from pgtopo.plan import plan

from .test_plan import SYSID, T, container, converged, pg_primary, pg_replica, topo, volume

PRIMARY_WAVE, REPLICA_WAVE = Wave(Phase.BUILD, 1), Wave(Phase.BUILD, 2)
STANDBY = converged(T).node("replica")


def acted(obs, t=T) -> list[tuple[str, Kind, str, Wave]]:
    p = plan(t, obs)
    assert not p.refusals
    return [(a.node, a.kind, a.reason, a.wave) for a in p.actions]


def test_a_cluster_as_the_file_says_gets_a_note_per_node() -> None:
    p = plan(T, converged(T))
    assert p.actions == ()
    assert p.notes == ("primary: in sync (primary, timeline 1)", "replica: in sync (replica of primary, timeline 1)",
                       "replica2: in sync (replica of replica, timeline 1)")


@pytest.mark.parametrize(("error", "shown"), [("cannot connect", "cannot connect"), (None, "server not observed")])
def test_a_node_whose_server_does_not_answer_gets_a_note_saying_why(error: str | None, shown: str) -> None:
    silent = NodeFacts("replica2", container=container(T, "replica2"), volume=volume(T, "replica2"),
                       data=DataFacts(True, SYSID, state=SHUT_DOWN_IN_RECOVERY, checkpoint=0x1000000, timeline=1),
                       pg_error=error)
    p = plan(T, converged(T, replica2=silent))
    assert p.actions == () and f"replica2: no change planned ({shown})" in p.notes


def test_a_missing_replication_role_is_created_and_the_identity_recorded_with_it() -> None:
    primary = replace(converged(T).node("primary"), pg=pg_primary(T, replication_roles=()))
    missing = "replication role repuser is missing"
    assert acted(converged(T, primary=primary)) == [("primary", Kind.CREATE_ROLE, missing, PRIMARY_WAVE)]
    unrecorded = replace(converged(T, primary=primary), system_identifier=None)
    assert acted(unrecorded) == [("primary", Kind.CREATE_ROLE, f"{missing}; record the cluster's identity ({SYSID}) too",
                                  PRIMARY_WAVE)]


def test_an_unrecorded_identity_is_recorded_from_the_primary() -> None:
    assert acted(replace(converged(T), system_identifier=None)) == [
        ("primary", Kind.RECORD_IDENTITY, "the state volume records no system identifier (an apply stopped between "
         f"initdb and recording it, or a state made again): record {SYSID}, which every clone and rewind source is "
         "checked against", PRIMARY_WAVE)]


@pytest.mark.parametrize(("drift", "fields"), [
    (("replication_password",), "auth.replication_password in the file differs"),
    (("superuser_password", "replication_password"),
     "auth.superuser_password and auth.replication_password in the file differ"),
])
def test_a_password_changed_in_the_file_says_which_and_what_is_done(drift: tuple[str, ...], fields: str) -> None:
    assert acted(replace(converged(T), password_drift=drift)) == [
        ("primary", Kind.SET_PASSWORD, f"{fields} from the one in use: ALTER ROLE on the primary, then keep it in the "
         "state volume", PRIMARY_WAVE)]


def test_settings_changed_and_removed_are_named_and_the_restart_lists_what_needs_it() -> None:
    t = topo(parameters={"work_mem": "16MB"}, nodes={"primary": {}})
    base = converged(t).node("primary")
    primary = replace(base, pg=pg_primary(t, auto_conf={**base.pg.auto_conf, "work_mem": "8MB",
                                                        "shared_buffers": "1GB"},
                                          pending_restart=("max_connections",)))
    p = plan(t, converged(t, primary=primary))
    configure = next(a for a in p.actions if a.kind is Kind.CONFIGURE)
    assert configure.reason == "ALTER SYSTEM work_mem=16MB, reset shared_buffers"
    restart = next(a for a in p.actions if a.kind is Kind.RESTART)
    assert restart.reason == f"max_connections, shared_buffers only apply after a restart; {rollback.PROMISE}"


def standby_with(**auto: str | None) -> NodeFacts:
    conf = {k: v for k, v in {**STANDBY.pg.auto_conf, **auto}.items() if v is not None}
    return replace(STANDBY, pg=pg_replica(T, "replica", auto_conf=conf))


DIFFER = "primary_conninfo / primary_slot_name differ from the file"


@pytest.mark.parametrize("facts", [
    pytest.param(standby_with(primary_slot_name="pgtopo_other"), id="another slot"),
    pytest.param(standby_with(primary_conninfo=None), id="no primary_conninfo"),
    pytest.param(replace(standby_with(primary_conninfo=None), pg=replace(standby_with(primary_conninfo=None).pg,
                                                                          receiver=None)),
                 id="no primary_conninfo and no WAL receiver"),
    pytest.param(standby_with(primary_conninfo="host='pg-primary"), id="not a connection string"),
])
def test_a_standby_whose_replication_settings_are_not_the_file_s_is_repointed(facts: NodeFacts) -> None:
    [repoint] = plan(T, converged(T, replica=facts)).actions
    assert (repoint.node, repoint.kind, repoint.reason, repoint.wave, repoint.upstream, repoint.slot) == (
        "replica", Kind.REPOINT, DIFFER, REPLICA_WAVE, "primary", "pgtopo_replica")


def test_a_standby_streaming_from_another_node_says_from_which() -> None:
    elsewhere = replace(standby_with(primary_conninfo="host=pg-replica2 user=repuser"),
                        pg=replace(standby_with(primary_conninfo="host=pg-replica2 user=repuser").pg,
                                   receiver=WalReceiver("streaming", "replica2", "pgtopo_replica")))
    [repoint] = plan(T, converged(T, replica=elsewhere)).actions
    assert repoint.reason == "streams from replica2; the file says primary"


def test_a_standby_streaming_from_the_right_node_with_other_settings_says_they_differ() -> None:
    [repoint] = plan(T, converged(T, replica=standby_with(primary_slot_name="pgtopo_other"))).actions
    assert repoint.reason == DIFFER  # its receiver streams from primary, as the file says


def test_a_missing_slot_is_created_on_the_upstream_in_the_standby_s_wave() -> None:
    primary = replace(converged(T).node("primary"), pg=pg_primary(T, slots=()))
    [create] = plan(T, converged(T, primary=primary)).actions
    assert (create.node, create.kind, create.reason, create.wave, create.upstream, create.slot) == (
        "replica", Kind.CREATE_SLOT, "slot pgtopo_replica is missing on primary", REPLICA_WAVE, "primary",
        "pgtopo_replica")


def test_a_promoted_primary_drops_the_replication_settings_it_kept_from_being_a_standby() -> None:
    base = converged(T).node("primary")
    kept = replace(base, pg=pg_primary(T, auto_conf={**base.pg.auto_conf, "primary_conninfo": "host=pg-replica",
                                                     "primary_slot_name": "pgtopo_primary"}))
    [reset] = plan(T, converged(T, primary=kept)).actions
    assert (reset.kind, reset.wave, reset.settings) == (Kind.CONFIGURE, PRIMARY_WAVE,
                                                        (("primary_conninfo", None), ("primary_slot_name", None)))
    assert reset.reason == ("ALTER SYSTEM RESET primary_conninfo, primary_slot_name: left from when it was a standby; "
                            "the primary streams from no one (a reload, no restart)")
