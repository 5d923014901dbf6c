"""backup.method pgbackrest, its pure parts: the commands and configuration pgtopo gives
pgBackRest, what it reads back from `pgbackrest info` (tests/data/pgbackrest-info.json is what
pgBackRest 2.55 printed for a full and an incremental backup of a pair), the certificates of a
backup, and the restore's listing and job."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import NameOID

from pgtopo import labels as L, render
from pgtopo.backup import archiving, layout, pgbackrest, restore, restore_plan, tls
from pgtopo.backup.spec import FullRetention, Restore, WindowRetention
from tests.unit.test_backup_restore_plan import restored
from tests.unit.test_job_scripts import shellcheck

INFO = (Path(__file__).resolve().parents[1] / "data" / "pgbackrest-info.json").read_text()


def test_every_node_archives_with_pgbackrest_and_makes_the_stanza_when_it_is_missing() -> None:
    settings = layout.archive_settings("pg", "pgbackrest")
    command = settings["archive_command"]
    push, _, fallback = command.partition(" || ")
    assert push.startswith("pgbackrest --no-config --stanza=pg --repo1-path=/var/lib/pgtopo-backup/pg/pgbackrest ")
    assert push.endswith("archive-push %p") and '--pg1-path="$PWD"' in push
    assert fallback.startswith("{ pgbackrest ") and "stanza-create && " + push in fallback
    assert settings["archive_mode"] == "on"
    assert "cp %p" in layout.archive_settings("pg")["archive_command"]  # native stays native
    subprocess.run(["sh", "-n", "-c", command.replace("%p", "x")], check=True)


@pytest.mark.parametrize(("retention", "lines"), [
    (FullRetention(full=3), ["repo1-retention-full=3", "repo1-retention-full-type=count"]),
    (WindowRetention(window="14d"), ["repo1-retention-full=14", "repo1-retention-full-type=time"]),
    (WindowRetention(window="36h"), ["repo1-retention-full=2", "repo1-retention-full-type=time"]),  # rounded up
    (WindowRetention(window="1h"), ["repo1-retention-full=1", "repo1-retention-full-type=time"]),
])
def test_retention_is_never_shorter_than_the_file_asks(retention, lines) -> None:
    assert pgbackrest.retention_lines(retention) == lines


def test_a_backup_job_reaches_the_primary_first_and_copies_from_the_standby() -> None:
    text = pgbackrest.job_config("pg", "/r", [("pg-primary", "primary"), ("pg-replica", "replica")], standby=True,
                                 retention=FullRetention(full=2), annotations={"source": "replica"})
    lines = text.splitlines()
    assert "backup-standby=y" in lines and "[pg]" in lines and "repo1-path=/r/pg/pgbackrest" in lines
    assert lines.index("pg1-host=pg-primary") < lines.index("pg2-host=pg-replica")
    assert f"pg2-path={L.PGDATA}" in lines and "pg2-host-type=tls" in lines
    assert "annotation=pgtopo-source=replica" in lines
    assert "pg1-host-config=/dev/null" in lines  # never the image's own pgbackrest.conf, whoever owns it
    alone = pgbackrest.job_config("pg", "/r", [("pg-primary", "primary")], standby=False,
                                  retention=FullRetention(full=2), annotations={})
    assert "backup-standby=n" in alone.splitlines() and "pg2-host" not in alone


def test_the_servers_admit_only_this_backups_client_for_this_stanza() -> None:
    argv = pgbackrest.server_argv("pg", tls.CLIENT_NAME)
    assert argv[-1] == "server" and f"--tls-server-auth={tls.CLIENT_NAME}=pg" in argv
    assert f"--tls-server-ca-file={pgbackrest.TLS_DIR}/ca.crt" in argv


@pytest.mark.parametrize("name", ["SERVER_SCRIPT", "LISTENING", "BACKUP_SCRIPT", "LIST_SCRIPT"])
def test_the_scripts_are_posix_sh(name: str) -> None:
    found = shellcheck(getattr(pgbackrest, name))
    assert found.returncode == 0, f"{name}:\n{found.stdout}"


def test_info_reads_into_records_with_what_the_annotations_say() -> None:
    full, incr = pgbackrest.records(INFO, "brt")
    assert (full.label, full.type, full.method, full.source, full.backup_from) == (
        "20261202-105829F", "full", "pgbackrest", "replica", "standby")
    assert (full.start_lsn, full.stop_lsn, full.start_wal, full.timeline) == (
        "0/5000028", "0/5000158", "000000010000000000000005", 1)
    assert full.system_identifier == "7714659249625301012" and full.server_major == 17
    assert full.size_bytes == 4504443 and full.start_time == datetime(2026, 12, 2, 10, 58, 29, tzinfo=UTC)
    assert incr.type == "incr" and incr.label.startswith(full.label + "_")
    assert pgbackrest.archive_range(INFO, "brt") == ("000000010000000000000001", "00000001000000000000000B")
    assert pgbackrest.records(INFO, "other") == []


def test_a_backup_pgbackrest_marks_as_in_error_is_not_listed_and_garbage_is_said() -> None:
    doc = json.loads(INFO)
    doc[0]["backup"][1]["error"] = True
    assert [r.label for r in pgbackrest.records(json.dumps(doc), "brt")] == ["20261202-105829F"]
    with pytest.raises(pgbackrest.InfoError, match="no JSON"):
        pgbackrest.records("ERROR: [055]", "brt")
    del doc[0]["backup"][0]["lsn"]
    with pytest.raises(pgbackrest.InfoError, match="20261202-105829F"):
        pgbackrest.records(json.dumps(doc), "brt")


@pytest.mark.parametrize(("printed", "version"), [
    ("pgBackRest 2.55.1\n", (2, 55)), ("pgBackRest 2.45", (2, 45)), ("none", None), ("", None),
    ("pgBackRest x.y", None)])
def test_the_version_an_image_prints(printed: str, version) -> None:
    assert pgbackrest.parse_version(printed) == version


def test_a_backups_certificates_chain_to_its_own_authority() -> None:
    creds = tls.make(["pg-primary", "pg-replica"], "pg")
    ca = x509.load_pem_x509_certificate(creds.ca)
    server = x509.load_pem_x509_certificate(creds.server_cert)
    client = x509.load_pem_x509_certificate(creds.client_cert)
    server.verify_directly_issued_by(ca)
    client.verify_directly_issued_by(ca)
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["pg-primary", "pg-replica"]
    assert client.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == tls.CLIENT_NAME
    assert b"PRIVATE KEY" in creds.server_key and b"PRIVATE KEY" in creds.client_key
    other = tls.make(["pg-primary"], "pg")  # another backup: another authority
    with pytest.raises((ValueError, InvalidSignature)):
        x509.load_pem_x509_certificate(other.server_cert).verify_directly_issued_by(ca)


def restore_from(backup: str = "latest", target: dict | None = None) -> Restore:
    return Restore.model_validate({"from": {"cluster": "brt", "repository": {"volume": "v"}}, "backup": backup,
                                   **({"target": target} if target else {})})


def test_the_restore_listing_holds_both_methods_and_chooses_by_when_they_ended() -> None:
    native = json.dumps({"label": "20261202T100000Z", "stop_time": "2026-12-02T10:00:05Z", "timeline": 1,
                         "system_identifier": "7714659249625301012"})
    output = f"{restore.MANIFEST_BEGIN} 20261202T100000Z\n{native}\npgtopo-info {' '.join(INFO.split())}\n"
    found = restore.parse_listing(output, "brt")
    assert [(b.label, b.method) for b in found] == [("20261202T100000Z", "native"), ("20261202-105829F", "pgbackrest"),
                                                    ("20261202-105829F_20261202-105841I", "pgbackrest")]
    assert restore_plan.choose(found, restore_from()).label == "20261202-105829F_20261202-105841I"
    early = restore_from(target={"time": "2026-12-02T10:30:00Z"})
    assert restore_plan.choose(found, early).label == "20261202T100000Z"


def test_a_pgbackrest_restore_copies_with_pgbackrest_and_recovers_with_archive_get() -> None:
    t = restored()
    r = t.bootstrap.restore if t.bootstrap else None
    assert r is not None
    argv = restore.restore_job(t, "primary", r, "20261202-105829F", "pgbackrest").command
    method = argv.index("pgbackrest")  # the script's seventh argument, then pgBackRest's command line
    copy = argv[method + 1:]
    assert copy[0] == "pgbackrest" and copy[-1] == "restore", copy
    assert "--set=20261202-105829F" in copy and f"--pg1-path={L.PGDATA}.tmp" in copy and "--stanza=pg" in copy
    assert f"--repo1-path={layout.SOURCE_MOUNT}/pg/pgbackrest" in copy and "--no-config" in copy
    assert f"--spool-path={pgbackrest.SPOOL}" in copy  # not the image's spool, another uid's in some images
    conf = restore.recovery_conf(r, "pgbackrest")
    assert "archive-get %f" in conf and "recovery_target_action = 'promote'" in conf and "cp " not in conf
    assert restore.restore_job(t, "primary", r, "20261201T030000Z").command[-1] == "native"


BACKUP_INFO = (Path(__file__).resolve().parents[1] / "data" / "pgbackrest-backup.info").read_text()


def test_status_names_the_newest_backup_of_either_method() -> None:
    """The primary reads the newest native record and pgBackRest's backup.info (what pgBackRest
    2.60 wrote after one full backup); the later end wins."""
    assert archiving.newest_backup(None, BACKUP_INFO) == (
        "20261202-115856F", datetime(2026, 12, 2, 11, 58, 59, tzinfo=UTC))
    record = json.dumps({"label": "20261203T030000Z", "stop_time": "2026-12-03T03:00:04Z"})
    assert archiving.newest_backup(record, BACKUP_INFO) == ("20261203T030000Z",
                                                             datetime(2026, 12, 3, 3, 0, 4, tzinfo=UTC))
    assert archiving.newest_backup(None, None) is None
    assert archiving.newest_backup("not json", "[backup:current]\nx=not json\n") is None
    assert archiving.newest_backup(None, BACKUP_INFO.replace("[backup:current]", "[backup:other]")) is None


def test_the_status_line_says_how_old_the_newest_backup_is() -> None:
    now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    assert [render._age(now - timedelta(seconds=s), now) for s in (40, 119, 720, 5 * 3600, 3 * 86400)] == [
        "40 s", "119 s", "12 min", "5 h", "3 d"]


def test_pgbackrest_backups_an_image_cannot_restore_are_said_so() -> None:
    """The listing job's image has no pgbackrest, and the repository holds pgBackRest's backups of
    the source: not "no backup", but which image lacks what."""
    with pytest.raises(restore.NoPgbackrest):
        restore.parse_listing(f"{restore.NO_PGBACKREST}\n", "brt")
    native = json.dumps({"label": "20261202T100000Z", "stop_time": "2026-12-02T10:00:05Z"})
    found = restore.parse_listing(f"{restore.MANIFEST_BEGIN} 20261202T100000Z\n{native}\n{restore.NO_PGBACKREST}\n",
                                  "brt")  # native backups there too: those can be restored
    assert [b.label for b in found] == ["20261202T100000Z"]
