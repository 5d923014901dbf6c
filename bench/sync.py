"""Section s of `make bench`: what synchronous replicas cost on a 1+2 cluster.  Commit latency with
pgbench (asynchronous, `synchronous: {method: any, number: 1}`, `{method: first, number: 1}`, the
file changed and applied between runs: a reload), and a switchover under a client inserting a row
every 10 ms, asynchronous beside `any 1`."""

from __future__ import annotations

import os
import re
import statistics
import time
from pathlib import Path

import psycopg

from harness import BENCH_LABEL, CLUSTER_LABEL, BenchError, Cluster, Settings, cluster, pgtopo, progress, sh
from pooler import Client, free_port
from report import Row, Section, Target, steps

NODES = ("primary", "replica", "replica2")
MODES = {"async": "", "any 1": "{method: any, number: 1}", "first 1": "{method: first, number: 1}"}
SWITCH_MODES = ("async", "any 1")
CLIENTS, THREADS = 4, 2
SCRIPT = "INSERT INTO bench_commits DEFAULT VALUES;"


def pgbench_seconds(s: Settings) -> int:
    """$PGTOPO_BENCH_SYNC_SECONDS, else 20 (5 with --quick)."""
    return int(os.environ.get("PGTOPO_BENCH_SYNC_SECONDS") or (5 if s.quick else 20))


class Writer(Client):
    """pooler.Client on this section's table, keeping every acknowledged id."""

    def __init__(self, dsn: str) -> None:
        super().__init__(dsn)
        self.ids: list[int] = []

    def write(self, conn: psycopg.Connection) -> None:
        row = conn.execute("INSERT INTO bench_sync_writes DEFAULT VALUES RETURNING id").fetchone()
        assert row is not None
        self.ids.append(row[0])


def _topology(c: Cluster, image: str, primary: str, ports: dict[str, int], mode: str) -> str:
    nodes = "".join(f"  {node}: {{port: {port}}}\n" for node, port in ports.items())
    block = f"synchronous: {MODES[mode]}\n" if MODES[mode] else ""
    return f"version: 1\ncluster: {c.name}\nimage: {image}\nprimary: {primary}\n{block}nodes:\n{nodes}"


def _rule(c: Cluster, primary: str, mode: str) -> str:
    """Until both standbys stream and show the mode (all async, or one sync or quorum): the primary's
    synchronous_standby_names and their sync_state."""
    sql = ("SELECT application_name || ' ' || sync_state FROM pg_stat_replication WHERE state = 'streaming' "
           "ORDER BY 1")
    deadline = time.monotonic() + 60
    while True:
        states = c.psql(primary, sql).splitlines()
        kinds = [line.rsplit(" ", 1)[1] for line in states]
        if len(states) == 2 and (all(k == "async" for k in kinds) if mode == "async"
                                 else any(k in ("sync", "quorum") for k in kinds)):
            rule = c.psql(primary, "SHOW synchronous_standby_names") or "''"
            return f"{rule} | {', '.join(states)}"
        if time.monotonic() > deadline:
            raise BenchError(f"{mode}: the primary shows standbys {states} 60 s after apply")
        time.sleep(0.1)


def _pgbench(c: Cluster, image: str, primary: str, seconds: int) -> tuple[float, float]:
    """pgbench from the image in its own container on the cluster network (PGPASSFILE from the state
    volume), as tests/integration/test_switchover.py::pgbench_through does: (TPS, latency average ms)."""
    script = (f"printf '{SCRIPT}\\n' > /tmp/commits.sql && exec pgbench -h {c.container(primary)} -U postgres -n "
              f"-f /tmp/commits.sql -c {CLIENTS} -j {THREADS} -T {seconds} postgres")
    out = sh("docker", "run", "--rm", "--pull", "never", "--label", f"{CLUSTER_LABEL}={c.name}", "--label",
             f"{BENCH_LABEL}=1", "--network", f"{c.name}-net", "-u", "postgres", "-v",
             f"{c.name}-pgtopo-state:/run/pgtopo:ro", "-e", "PGPASSFILE=/run/pgtopo/pgpass", image,
             "sh", "-c", script, timeout=seconds + 120)
    tps = re.search(r"^tps = ([\d.]+)", out, re.M)
    latency = re.search(r"^latency average = ([\d.]+) ms", out, re.M)
    if not tps or not latency:
        raise BenchError(f"no tps or latency average in pgbench's output:\n{out[-1500:]}")
    return float(tps.group(1)), float(latency.group(1))


def _settle(client: Writer) -> None:
    """Until the client writes again (20 acknowledgements after the step)."""
    mark = len(client.acks)
    deadline = time.monotonic() + 60
    while len(client.acks) < mark + 20:
        if time.monotonic() > deadline:
            raise BenchError("the client got no acknowledgement within 60 s: "
                             + (client.errors[-1][1] if client.errors else "no error"))
        time.sleep(0.05)


def _missing(port: int, password: str, ids: list[int]) -> int:
    sql = ("SELECT count(*) FROM unnest(%s::bigint[]) AS a(id) "
           "WHERE NOT EXISTS (SELECT 1 FROM bench_sync_writes w WHERE w.id = a.id)")
    with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres", password=password,
                         autocommit=True, connect_timeout=3) as conn:
        return conn.execute(sql, (ids,)).fetchone()[0]


def sync_section(s: Settings, workdir: Path) -> Section:
    seconds = pgbench_seconds(s)
    sec = Section("s", "Synchronous replicas on 1+2: commit latency (pgbench) and a switchover under writes")
    tps: dict[str, list[float]] = {m: [] for m in MODES}
    latency: dict[str, list[float]] = {m: [] for m in MODES}
    rules: dict[str, str] = {}
    actions: set[str] = set()
    gaps: dict[str, list[float]] = {m: [] for m in SWITCH_MODES}
    errors: dict[str, list[float]] = {m: [] for m in SWITCH_MODES}
    said: dict[str, list[float]] = {m: [] for m in SWITCH_MODES}
    walls: dict[str, list[float]] = {m: [] for m in SWITCH_MODES}
    rss: dict[str, list[float]] = {m: [] for m in SWITCH_MODES}
    lost: dict[str, list[float]] = {m: [] for m in SWITCH_MODES}
    with cluster(workdir, s.image, NODES[1:]) as c:
        ports = {node: free_port() for node in NODES}
        state = {"primary": "primary"}

        def apply(mode: str, change: bool = True) -> None:
            c.path.write_text(_topology(c, s.image, state["primary"], ports, mode))
            run = pgtopo("apply", str(c.path), "--yes", "--log-format", "json").check()
            if change:  # what a change of the synchronous block alone does
                actions.update(f"{st.kind} ({st.node or 'cluster'})" for st in steps(run))
            rules.setdefault(mode, _rule(c, state["primary"], mode))  # as first seen, on the first primary

        apply("async", change=False)
        c.psql("primary", "CREATE TABLE bench_commits (id bigserial PRIMARY KEY, at timestamptz DEFAULT now()); "
                          "CREATE TABLE bench_sync_writes (id bigserial PRIMARY KEY)")
        _pgbench(c, s.image, "primary", min(5, seconds))  # warm-up, not counted
        for rep in range(s.reps):
            for mode in MODES:
                apply(mode)
                t, lat = _pgbench(c, s.image, "primary", seconds)
                tps[mode].append(t)
                latency[mode].append(lat)
                progress(f"s  rep {rep + 1}/{s.reps} pgbench {mode}: {t:.0f} tps, latency {lat:.2f} ms")
        password = c.password()
        hosts = ",".join("127.0.0.1" for _ in ports)
        client = Writer(f"host={hosts} port={','.join(str(p) for p in ports.values())} dbname=postgres user=postgres "
                        f"password={password} target_session_attrs=read-write connect_timeout=2")
        client.start()
        try:
            _settle(client)
            for rep in range(s.reps):
                for mode in SWITCH_MODES:
                    apply(mode)
                    _settle(client)
                    old = state["primary"]
                    new = "replica" if old == "primary" else "primary"
                    start = time.monotonic()
                    run = pgtopo("switchover", str(c.path), "--to", new, "--log-format", "json").check()
                    end = time.monotonic()
                    state["primary"] = new
                    _settle(client)
                    gap, failed = client.window(start, end)
                    printed = re.search(r"write downtime ([\d.]+) s", run.out)
                    gaps[mode].append(gap)
                    errors[mode].append(float(failed))
                    walls[mode].append(run.seconds)
                    rss[mode].append(run.rss_mb)
                    if printed:
                        said[mode].append(float(printed.group(1)))
                    lost[mode].append(float(_missing(ports[new], password, list(client.ids))))
                    progress(f"s  rep {rep + 1}/{s.reps} switchover {mode} {old} → {new}: longest wait {gap:.2f} s, "
                             f"{failed} errors, pgtopo says {printed.group(1) if printed else '?'} s, "
                             f"command {run.seconds:.2f} s, acknowledged rows missing {lost[mode][-1]:.0f}")
        finally:
            client.stop()
        acked = len(client.ids)
    return _rows(sec, seconds, tps, latency, rules, actions, (gaps, errors, said, walls, rss, lost), acked)


def _rows(sec: Section, seconds: int, tps: dict[str, list[float]], latency: dict[str, list[float]],
          rules: dict[str, str], actions: set[str], switch: tuple[dict[str, list[float]], ...], acked: int) -> Section:
    gaps, errors, said, walls, rss, lost = switch
    for mode in MODES:
        sec.rows += [Row(f"pgbench {mode}: TPS", tps[mode], "tps"),
                     Row(f"pgbench {mode}: latency average", [x * 1000 for x in latency[mode]], "µs")]
    for mode in list(MODES)[1:]:
        sec.rows += [
            Row(f"pgbench {mode} / async: TPS", [a / b for a, b in zip(tps[mode], tps["async"], strict=True)], "×"),
            Row(f"pgbench {mode} / async: latency average",
                [a / b for a, b in zip(latency[mode], latency["async"], strict=True)], "×"),
        ]
    for mode in SWITCH_MODES:
        sec.rows += [
            Row(f"switchover {mode}: longest wait for an acknowledgement", gaps[mode], "s"),
            Row(f"switchover {mode}: errors seen by the client", errors[mode], "errors"),
            Row(f"switchover {mode}: write downtime as printed by pgtopo (shutdown → promoted)", said[mode], "s"),
            Row(f"switchover {mode}: `pgtopo switchover` wall time", walls[mode], "s", rss_mb=rss[mode]),
            Row(f"switchover {mode}: acknowledged rows missing on the new primary", lost[mode], "rows",
                Target("==", 0, "max")),
        ]
    medians = "; ".join(f"{m} {statistics.median(latency[m]):.2f} ms" for m in MODES)
    sec.notes.append(
        "One 1+2 cluster (fixed node ports). pgbench from the image in a container on the cluster network, "
        f"`-n -c {CLIENTS} -j {THREADS} -T {seconds}`, the script `{SCRIPT}`, against the primary; once a "
        f"{min(5, seconds)} s warm-up, then per repetition async, `any 1`, `first 1` in turn, the file's "
        f"`synchronous:` block changed and `pgtopo apply` run before each (median latency average: {medians}). "
        "What the primary showed (synchronous_standby_names | standbys' sync_state): "
        + "; ".join(f"{m}: `{rules[m]}`" for m in MODES)
        + ". Actions of those applies: " + (", ".join(sorted(actions)) or "none") + ".")
    sec.notes.append(
        "Switchover: a client inserts a row every 10 ms through a libpq multi-host DSN over the three nodes' ports "
        "with target_session_attrs=read-write, reconnecting after an error; per repetition async, then `any 1` "
        "(applied under the client), each one switchover back and forth between primary and replica. Longest wait: "
        "the longest gap between acknowledgements that overlaps the command; errors: those raised while it ran; "
        f"missing: acknowledged ids not on the new primary ({acked} acknowledged in all).")
    return sec
