"""Which major an image runs and a data directory holds, from what observation reads."""

from __future__ import annotations

from pgtopo import majors


def test_an_image_s_major_from_its_environment() -> None:
    official = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/lib/postgresql/18/bin",
                "GOSU_VERSION=1.17", "PG_MAJOR=18", "PG_VERSION=18.1-1.pgdg13+2",
                "PGDATA=/var/lib/postgresql/18/docker")
    assert majors.of_image_env(official) == 18
    alpine = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "PG_MAJOR=17", "PG_VERSION=17.6")
    assert majors.of_image_env(alpine) == 17
    debian = ("PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/bin", "PGDATA=/var/lib/postgresql/data")
    assert majors.of_image_env(debian) == 15  # pgtopo's own images: no PG_MAJOR, the server's directory on PATH
    assert majors.of_image_env(("PATH=/usr/bin", "PG_MAJOR=")) is None
    assert majors.of_image_env(()) is None


def test_a_major_from_postgres_v_a_pg_version_file_and_a_server_version() -> None:
    assert majors.of_version_output("postgres (PostgreSQL) 18.1 (Debian 18.1-1)\n") == 18
    assert majors.of_version_output("sh: 1: postgres: not found\n") is None
    assert majors.of_pg_version_file(b"17\n") == 17
    assert majors.of_pg_version_file(b"9.6\n") == 9
    assert majors.of_pg_version_file(b"") is None and majors.of_pg_version_file(None) is None
    assert majors.of_server_version(180001) == 18 and majors.of_server_version(130022) == 13


def test_an_environment_value_holding_an_equals_sign_is_read_whole() -> None:
    """Docker keeps `KEY=VALUE` with the value as given: options such as `--auth=scram-sha-256`
    hold `=` too, and neither they nor a PATH with one must hide the major."""
    env = ("POSTGRES_INITDB_ARGS=--auth=scram-sha-256 --data-checksums", "PATH=/opt/a=b/bin:/usr/lib/postgresql/16/bin")
    assert majors.of_image_env(env) == 16
    assert majors.of_image_env((*env, "PG_MAJOR=17")) == 17


def test_a_pg_version_file_that_is_not_text_gives_no_major() -> None:
    """A damaged volume's PG_VERSION: no major, and no error either (observation goes on)."""
    assert majors.of_pg_version_file(b"\xff\xfe1\x00") is None
