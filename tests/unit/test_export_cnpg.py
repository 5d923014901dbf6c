"""`pgtopo export --format cnpg`: each mapping from the file to CloudNativePG's Cluster and Database,
the warnings for what CloudNativePG cannot say, the documents checked against CloudNativePG's own
CRD schemas (tests/data/cnpg/, strict: an unknown field fails), their YAML as kubectl (YAML 1.1)
reads it, and the real CLI with no Docker engine."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from ruamel.yaml import YAML

from pgtopo.errors import SpecError
from pgtopo.export import cnpg, yaml_text
from pgtopo.loader import parse_topology
from pgtopo.spec import Topology

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "tests/data/cnpg"

RICH = """\
version: 1
cluster: shop
image: postgres:17
primary: main
auth: {replication_user: streamer}
parameters:
  max_connections: 200
  shared_buffers: 256MB
  hot_standby_feedback: true
  jit: false
  random_page_cost: 1.1
  default_transaction_isolation: read committed
  log_destination: stderr
  shared_preload_libraries: "pg_stat_statements, auto_explain"
  pg_stat_statements.max: 10000
synchronous: {method: any, number: 1}
nodes:
  main: {port: 5432}
  standby: {parameters: {work_mem: 16MB}}
  far: {upstream: standby, delay: 1h}
roles:
  app: {password: {env: APP_PASSWORD}, connection_limit: 50}
  report_reader: {password: {file: reader.txt}, in_roles: [pg_read_all_data], valid_until: "2030-01-01"}
  owners: {login: false, createdb: true, inherit: false}
databases:
  appdb: {owner: app}
  legacy_db: {owner: owners, encoding: LATIN1, locale: C}
pooler: {image: pgtopo-local/pgbouncer:1, read_only: {port: 6433}}
backup: {repository: {volume: shop-backup}, schedule: "0 3 * * *"}
"""

MINIMAL = """\
version: 1
cluster: pg
image: postgres:18
primary: a
nodes: {a: {}, b: {}}
"""


def topology(text: str, **changes: Any) -> Topology:
    """The topology of `text`, with top-level keys replaced by `changes` (as YAML flow text)."""
    lines, dropping = [], False
    for line in text.splitlines():
        if not line.startswith(" "):
            dropping = line.split(":")[0] in changes
        if not dropping:
            lines.append(line)
    lines += [f"{key}: {value}" for key, value in changes.items()]
    return parse_topology("\n".join(lines) + "\n", "cluster.yaml", {})


def export(topo: Topology, bootstrap: cnpg.Bootstrap | None = None,
           image_name: str | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    return cnpg.cluster_manifest(topo, image_name, bootstrap or cnpg.PgBaseBackup(), file="cluster.yaml")


def spec_of(topo: Topology, bootstrap: cnpg.Bootstrap | None = None) -> dict[str, Any]:
    return export(topo, bootstrap)[0][0]["spec"]


def subjects(warnings: list[str]) -> list[str]:
    """What each warning is about: the file's key before its first colon."""
    return [warning.split(": ", 1)[0] for warning in warnings]


# --- CloudNativePG's schemas, strict ---------------------------------------------------------------

def _closed(schema: Any) -> Any:
    """`schema` with every object that lists its properties closed to others: the API server drops
    (or, with kubectl's strict field validation, refuses) a field it does not know, so a misspelt
    one must fail here."""
    if isinstance(schema, list):
        return [_closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    closed = {key: _closed(value) if key != "properties" else {name: _closed(sub) for name, sub in value.items()}
              for key, value in schema.items()}
    if "properties" in closed and "additionalProperties" not in closed and \
            not closed.get("x-kubernetes-preserve-unknown-fields"):
        closed["additionalProperties"] = False
    return closed


FORMATS = jsonschema.FormatChecker(formats=())


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    """RFC 3339, as Kubernetes reads it: a date, a time and an offset."""
    return not isinstance(value, str) or ("T" in value and datetime.fromisoformat(value).tzinfo is not None)


@FORMATS.checks("int32")
def _int32(value: object) -> bool:
    return not isinstance(value, int) or -(2**31) <= value < 2**31


@FORMATS.checks("int64")
def _int64(value: object) -> bool:
    return not isinstance(value, int) or -(2**63) <= value < 2**63


@FORMATS.checks("int-or-string")
def _int_or_string(value: object) -> bool:
    return isinstance(value, (int, str))


@cache
def validator(kind: str) -> jsonschema.Draft4Validator:
    """CloudNativePG's openAPIV3Schema of `kind` (clusters, databases); x-kubernetes-* keys are
    keywords jsonschema does not know, so it passes over them (CEL rules are not evaluated)."""
    schema = json.loads((SCHEMAS / f"{kind}.v1.schema.json").read_text())
    return jsonschema.Draft4Validator(_closed(schema), format_checker=FORMATS)


def schema_errors(document: dict[str, Any]) -> list[str]:
    kind = {"Cluster": "clusters", "Database": "databases"}[document["kind"]]
    found = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator(kind).iter_errors(document)]
    name = document["metadata"]["name"]
    if not (len(name) <= 63 and name[0].isalnum() and name[-1].isalnum()
            and all(c.isdigit() or c.islower() or c == "-" for c in name)):
        found.append(f"metadata.name: {name!r} is not a Kubernetes object name")
    return found


# --- the rich file and the minimal one -------------------------------------------------------------

def test_a_rich_file_exports_to_documents_cloudnativepg_accepts_with_its_warnings() -> None:
    documents, warnings = export(topology(RICH))
    assert [d["kind"] for d in documents] == ["Cluster", "Database", "Database"]
    for document in documents:
        assert schema_errors(document) == [], document["kind"]
    assert subjects(warnings) == [
        "nodes.standby.parameters", "nodes.far.upstream", "nodes.far.delay", "nodes",
        "parameters.log_destination", "roles.app.password", "roles.report_reader.password", "pooler", "backup",
        "--bootstrap pg_basebackup"]
    text = "\n".join(warnings)
    for needed in ("(work_mem)", "far streams from standby", "1h delay", "main 5432", "shop-rw",
                   "Secret shop-app ", "Secret shop-report-reader ", "poolMode transaction", "type ro",
                   "Secret shop-replication", "streamer", "shop-main:5432"):
        assert needed in text, needed


@pytest.mark.parametrize("bootstrap, expected", [(cnpg.InitDb(), []),
                                                 (cnpg.PgBaseBackup(), ["--bootstrap pg_basebackup"])])
def test_a_minimal_file_exports_without_warnings_but_the_secret_a_clone_needs(
        bootstrap: cnpg.Bootstrap, expected: list[str]) -> None:
    documents, warnings = export(topology(MINIMAL), bootstrap)
    assert subjects(warnings) == expected
    assert [d["kind"] for d in documents] == ["Cluster"]
    assert schema_errors(documents[0]) == []
    assert set(documents[0]["spec"]) == {"instances", "imageName", "bootstrap", "storage"} | (
        {"externalClusters"} if expected else set())


def test_the_schemas_have_teeth() -> None:
    """A misspelt field, a wrong type and a missing required field each fail validation."""
    cluster = export(topology(RICH))[0][0]
    for change in (lambda s: s["managed"]["roles"][0].update(passwordSecrets={"name": "x"}),
                   lambda s: s.update(instances="3"),
                   lambda s: s["postgresql"]["synchronous"].pop("number"),
                   lambda s: s["managed"]["roles"][1].update(validUntil="2030-01-01")):
        broken = copy.deepcopy(cluster)
        change(broken["spec"])
        assert schema_errors(broken) != []


# --- each field ------------------------------------------------------------------------------------

def test_instances_are_the_nodes_and_the_name_the_cluster() -> None:
    cluster = export(topology(RICH))[0][0]
    assert (cluster["apiVersion"], cluster["kind"], cluster["metadata"]) == (
        "postgresql.cnpg.io/v1", "Cluster", {"name": "shop"})
    assert cluster["spec"]["instances"] == 3
    assert spec_of(topology(MINIMAL))["instances"] == 2
    assert cluster["spec"]["storage"] == {"size": "10Gi"}
    assert cnpg.cluster_manifest(topology(MINIMAL), None, cnpg.InitDb(), storage_size="50Gi")[0][0]["spec"][
        "storage"] == {"size": "50Gi"}


@pytest.mark.parametrize("image, expected", [("postgres:17", "ghcr.io/cloudnative-pg/postgresql:17"),
                                             ("pgtopo-local/postgres:18", "ghcr.io/cloudnative-pg/postgresql:18"),
                                             ("registry:5000/pg/postgres:15.4-bookworm",
                                              "ghcr.io/cloudnative-pg/postgresql:15")])
def test_the_image_is_cloudnativepgs_of_the_files_major(image: str, expected: str) -> None:
    assert spec_of(topology(MINIMAL, image=image))["imageName"] == expected


@pytest.mark.parametrize("image", ["postgres:latest", "postgres", "postgres@sha256:" + "a" * 64])
def test_an_image_naming_no_major_needs_image_name(image: str) -> None:
    topo = topology(MINIMAL, image=image)
    with pytest.raises(SpecError) as caught:
        export(topo)
    assert caught.value.problems == [f"cluster.yaml: image {image} names no PostgreSQL major in its tag, so the "
                                     "CloudNativePG image cannot be chosen from it"]
    assert caught.value.hint is not None and "--image-name" in caught.value.hint
    assert spec_of_image(topo, "example.org/pg:16") == "example.org/pg:16"


def spec_of_image(topo: Topology, image_name: str) -> str:
    image: str = export(topo, image_name=image_name)[0][0]["spec"]["imageName"]
    return image


def test_parameters_are_text_as_postgresql_writes_them() -> None:
    postgresql = spec_of(topology(RICH))["postgresql"]
    assert postgresql["parameters"] == {
        "max_connections": "200", "shared_buffers": "256MB", "hot_standby_feedback": "on", "jit": "off",
        "random_page_cost": "1.1", "default_transaction_isolation": "read committed",
        "pg_stat_statements.max": "10000"}
    assert postgresql["shared_preload_libraries"] == ["pg_stat_statements", "auto_explain"]


@pytest.mark.parametrize("name, value", [("log_destination", "csvlog"), ("logging_collector", "on"),
                                         ("ssl", "on"), ("temp_tablespaces", "fast"),
                                         ("restart_after_crash", "off"), ("jit_provider", "llvmjit")])
def test_a_parameter_cloudnativepg_fixes_is_left_out_with_a_warning_naming_it(name: str, value: str) -> None:
    documents, warnings = export(topology(MINIMAL, parameters=f"{{{name}: {value}, work_mem: 8MB}}"), cnpg.InitDb())
    assert documents[0]["spec"]["postgresql"]["parameters"] == {"work_mem": "8MB"}
    assert subjects(warnings) == [f"parameters.{name}"]
    assert "CloudNativePG" in warnings[0]


def test_cloudnativepgs_list_of_fixed_parameters_is_whole() -> None:
    """pkg/postgres/configuration.go of 1.30 lists 65; shared_preload_libraries has a field of its own."""
    assert len(cnpg.FIXED_PARAMETERS) == 64 and "shared_preload_libraries" not in cnpg.FIXED_PARAMETERS
    assert {"listen_addresses", "port", "hot_standby", "archive_command", "primary_conninfo",
            "synchronous_standby_names", "recovery_min_apply_delay"} <= set(cnpg.FIXED_PARAMETERS)


@pytest.mark.parametrize("parameters, nodes, left_out", [
    ("{wal_level: minimal, work_mem: 8MB}", "{a: {}, b: {}}", ["parameters.wal_level"]),
    ("{wal_log_hints: false, work_mem: 8MB}", "{a: {}, b: {}}", ["parameters.wal_log_hints"]),
    ("{wal_log_hints: false, work_mem: 8MB}", "{a: {}}", []),
    ("{wal_level: logical, work_mem: 8MB}", "{a: {}, b: {}}", []),
])
def test_values_cloudnativepg_refuses_beside_replicas_are_left_out(parameters: str, nodes: str,
                                                                  left_out: list[str]) -> None:
    documents, warnings = export(topology(MINIMAL, parameters=parameters, nodes=nodes), cnpg.InitDb())
    assert subjects(warnings) == left_out
    kept = documents[0]["spec"]["postgresql"]["parameters"]
    assert "work_mem" in kept and all(key.split(".")[1] not in kept for key in left_out)


@pytest.mark.parametrize("block, expected", [
    ("{method: any, number: 1}", {"method": "any", "number": 1, "dataDurability": "required"}),
    ("{method: first, number: 2, durability: preferred}", {"method": "first", "number": 2,
                                                           "dataDurability": "preferred"}),
])
def test_synchronous_maps_to_its_cloudnativepg_block(block: str, expected: dict[str, Any]) -> None:
    topo = topology(MINIMAL, synchronous=block, nodes="{a: {}, b: {}, c: {}}")
    documents, warnings = export(topo, cnpg.InitDb())
    assert documents[0]["spec"]["postgresql"]["synchronous"] == expected
    assert warnings == [] and schema_errors(documents[0]) == []


def test_no_synchronous_block_no_synchronous_field() -> None:
    assert "postgresql" not in spec_of(topology(MINIMAL))


def test_what_a_node_says_about_synchronous_replication_is_a_warning() -> None:
    topo = topology(MINIMAL, synchronous="{method: first, number: 1}",
                    nodes="{a: {}, b: {sync_priority: 1}, c: {sync: false}}")
    assert subjects(export(topo, cnpg.InitDb())[1]) == ["nodes.b.sync_priority", "nodes.c.sync"]


def test_roles_keep_what_the_file_says() -> None:
    roles = spec_of(topology(RICH))["managed"]["roles"]
    assert roles == [
        {"name": "app", "login": True, "connectionLimit": 50, "passwordSecret": {"name": "shop-app"}},
        {"name": "report_reader", "login": True, "validUntil": "2030-01-01T00:00:00+00:00",
         "inRoles": ["pg_read_all_data"], "passwordSecret": {"name": "shop-report-reader"}},
        {"name": "owners", "login": False, "createdb": True, "inherit": False},
    ]


@pytest.mark.parametrize("name", ["streaming_replica", "cnpg_monitor"])
def test_a_role_cloudnativepg_keeps_for_itself_is_left_out(name: str) -> None:
    documents, warnings = export(topology(MINIMAL, roles=f"{{{name}: {{}}, app: {{}}}}"), cnpg.InitDb())
    assert documents[0]["spec"]["managed"]["roles"] == [{"name": "app", "login": True}]
    assert subjects(warnings) == [f"roles.{name}"]


def test_databases_are_database_documents() -> None:
    databases = export(topology(RICH))[0][1:]
    assert databases == [
        {"apiVersion": "postgresql.cnpg.io/v1", "kind": "Database", "metadata": {"name": "shop-appdb"},
         "spec": {"cluster": {"name": "shop"}, "name": "appdb", "owner": "app"}},
        {"apiVersion": "postgresql.cnpg.io/v1", "kind": "Database", "metadata": {"name": "shop-legacy-db"},
         "spec": {"cluster": {"name": "shop"}, "name": "legacy_db", "owner": "owners", "encoding": "LATIN1",
                  "locale": "C", "template": "template0"}},
    ]


def test_pg_basebackup_clones_the_files_primary() -> None:
    spec = spec_of(topology(RICH))
    assert spec["bootstrap"] == {"pg_basebackup": {"source": "shop"}}
    assert spec["externalClusters"] == [{
        "name": "shop",
        "connectionParameters": {"host": "shop-main", "port": "5432", "user": "streamer", "dbname": "postgres",
                                 "sslmode": "prefer"},
        "password": {"name": "shop-replication", "key": "password"},
    }]
    other = spec_of(topology(RICH), cnpg.PgBaseBackup("db.example.org"))
    assert other["externalClusters"][0]["connectionParameters"]["host"] == "db.example.org"


def test_initdb_starts_empty_without_an_external_cluster() -> None:
    spec = spec_of(topology(RICH), cnpg.InitDb())
    assert spec["bootstrap"] == {"initdb": {}} and "externalClusters" not in spec


def test_a_restore_block_of_the_file_is_a_warning() -> None:
    topo = topology(MINIMAL, bootstrap="{restore: {from: {cluster: old, repository: {volume: old-backup}}}}")
    assert subjects(export(topo, cnpg.InitDb())[1]) == ["bootstrap"]


# --- the YAML text ---------------------------------------------------------------------------------

def test_the_yaml_reads_back_the_same_as_kubectl_reads_it() -> None:
    """YAML 1.1 (kubectl's) reads `on`, `off`, `yes` and 0777 as other things: they are quoted."""
    topo = topology(MINIMAL, parameters="{jit: false, work_mem: 8MB}", roles="{'yes': {}, 'on': {}}")
    documents = export(topo)[0]
    documents[0]["spec"]["postgresql"]["parameters"]["x.mode"] = "0777"
    text = yaml_text.documents_text(documents)
    reader = YAML(typ="safe")
    reader.version = (1, 1)
    assert list(reader.load_all(text)) == documents
    assert text.count("\n---\n") == len(documents) - 1
    assert "jit: 'off'" in text and "- name: 'yes'" in text


# --- the real command ------------------------------------------------------------------------------

def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """`python -m pgtopo ARGS` with no Docker engine to reach: export must not need one."""
    env = {**os.environ, "DOCKER_HOST": "unix:///nonexistent.sock"}
    return subprocess.run([sys.executable, "-m", "pgtopo", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=60)


def test_the_command_writes_the_manifest_and_warns_on_stderr(tmp_path: Path) -> None:
    path = tmp_path / "cluster.yaml"
    path.write_text(RICH)
    done = run("export", path, "--format", "cnpg")
    assert done.returncode == 0, done.stderr
    assert [d["kind"] for d in YAML(typ="safe").load_all(done.stdout)] == ["Cluster", "Database", "Database"]
    lines = done.stderr.splitlines()
    assert len(lines) == 10 and all(line.startswith("warning: ") for line in lines)

    out = tmp_path / "shop.cnpg.yaml"
    done = run("export", path, "--format", "cnpg", "--bootstrap", "initdb", "--storage-size", "20Gi", "--output", out)
    assert done.returncode == 0 and done.stdout == "", done.stderr
    cluster = next(YAML(typ="safe").load_all(out.read_text()))
    assert cluster["spec"]["bootstrap"] == {"initdb": {}} and cluster["spec"]["storage"] == {"size": "20Gi"}


def test_an_image_naming_no_major_is_an_error_with_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "cluster.yaml"
    path.write_text(MINIMAL.replace("postgres:18", "postgres:latest"))
    done = run("export", path, "--format", "cnpg")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [
        f"{path}: image postgres:latest names no PostgreSQL major in its tag, so the CloudNativePG image cannot be "
        "chosen from it",
        "hint: pass --image-name with the major the file's image runs, e.g. --image-name "
        "ghcr.io/cloudnative-pg/postgresql:18"]
    done = run("export", path, "--format", "cnpg", "--image-name", "ghcr.io/cloudnative-pg/postgresql:18",
               "--bootstrap", "initdb")
    assert done.returncode == 0 and done.stderr == "", done.stderr


@pytest.mark.parametrize("args, message", [
    (("--storage-size", "ten"), "is not a size"),
    (("--image-name", "Not An Image"), "is not an image reference"),
    (("--bootstrap", "initdb", "--source-host", "db"), "--source-host goes with --bootstrap pg_basebackup"),
    ((), "Missing option '--format'"),
])
def test_bad_options_are_usage_errors(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    path = tmp_path / "cluster.yaml"
    path.write_text(MINIMAL)
    done = run("export", path, *(("--format", "cnpg") if args else ()), *args)
    assert done.returncode == 2 and message in done.stderr, done.stderr


def test_the_export_module_does_no_io() -> None:
    """Importing it (and what it imports) loads neither docker nor psycopg."""
    code = ("import sys, pgtopo.export.cnpg, pgtopo.export.yaml_text; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('docker', 'psycopg', 'requests')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stderr


@pytest.mark.parametrize("changes, said", [
    ({"roles": "{app: {password: {env: A}}, app_: {password: {env: B}}}"},
     "cluster.yaml: role app and role app_ would both need the Secret pg-app"),
    ({"roles": "{replication: {password: {env: A}}}"},
     "cluster.yaml: role replication and the replication user would both need the Secret pg-replication"),
    ({"roles": "{app: {}}", "databases": "{shop: {owner: app}, shop_: {owner: app}}"},
     "cluster.yaml: database shop and database shop_ would both need the Database pg-shop"),
    ({"cluster": "pg-"}, "cluster.yaml: cluster name 'pg-' ends in '-', which a Kubernetes name cannot"),
])
def test_names_kubernetes_cannot_take_are_refused_with_what_clashes(changes: dict[str, str], said: str) -> None:
    with pytest.raises(SpecError) as caught:
        export(topology(MINIMAL, **changes))
    assert caught.value.problems == [said], caught.value.problems
    assert "rename one of them in the file" in (caught.value.hint or "")


def test_the_same_roles_without_passwords_need_no_secret_and_export() -> None:
    export(topology(MINIMAL, roles="{app: {}, app_: {}}"))
