"""lev on PostgreSQL beside lev on redb, and beside DBOS on the same
PostgreSQL server, on this machine, in this run (issue 17). Prints
Markdown tables.

1. Durable step overhead, one run: a sequential chain of cheap durable
   steps run by `lev run --headless`, on redb and with `--journal` on
   PostgreSQL, and the same sequential no-op steps of scripts/peers'
   DBOS workload with DBOS's system database on the same PostgreSQL
   server. As scripts/peers/compare.py does: each engine timed from its
   first step to its durable end at two sizes, the per-step cost the
   difference over the difference in steps (fixed costs drop out),
   median of `ROUNDS` rounds.
2. Throughput with workers: K runs of a chain of M steps submitted with
   `lev run --detach`, then 1, 2 and 4 `lev worker`s started together;
   the time from their start until every run's row says `succeeded`.
   Beside them, the same K runs run one after another by `lev run
   --headless` on redb and on PostgreSQL, and the K chains as one run of
   one process on redb (`limits.max_parallel` = a worker's slots).
3. One run's steps on several workers (`lev run --spread`): a chain of
   `true` shell steps as one spread run (each step a step run) beside
   the same chain as a whole run, both by one worker (what a step run
   costs); and a fan-out of steps that wait (`sleep`, standing in for a
   model's reply) as one spread run executed by 1, 2 and 4 workers,
   beside the same run executed whole by one worker.

Usage (through scripts/bench-pg):
    python pg_compare.py LEV_BINARY POSTGRES STEPS RUNS RUN_STEPS
POSTGRES is a conninfo or URL of the server (any database on it: this
makes databases of its own there, `lev_bench_*` and `dbos_bench`).
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

LEV = sys.argv[1]
SERVER = sys.argv[2]
STEPS = int(sys.argv[3])
SMALL = max(STEPS // 10, 10)
RUNS = int(sys.argv[4])
RUN_STEPS = int(sys.argv[5])
WORKERS = (1, 2, 4)
SLOTS = 4
ROUNDS = 3
HERE = os.path.dirname(os.path.abspath(__file__))
PY = sys.executable
TMP = os.environ.get("LEV_BENCH_DIR")


def db_url(name):
    """The server's conninfo pointed at database `name` (what `lev
    --journal` and psycopg take)."""
    return make_conninfo(SERVER, dbname=name)


def fresh_db(name):
    """A new empty database `name` on the server (dropped first if left
    over from an earlier run); its conninfo."""
    with psycopg.connect(db_url("postgres"), autocommit=True) as c:
        c.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        c.execute(f"CREATE DATABASE {name}")
    return db_url(name)


def drop_db(name):
    with psycopg.connect(db_url("postgres"), autocommit=True) as c:
        c.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def sqlalchemy_url(conninfo):
    """A conninfo as the SQLAlchemy URL DBOS takes (a Unix socket's
    directory as the `host` query parameter)."""
    from sqlalchemy.engine import URL
    d = conninfo_to_dict(conninfo)
    host, query = d.get("host"), {}
    if host and host.startswith("/"):
        query["host"], host = host, None
    url = URL.create(
        "postgresql", username=d.get("user"), password=d.get("password"),
        host=host, port=int(d["port"]) if d.get("port") else None,
        database=d["dbname"], query=query,
    )
    return url.render_as_string(hide_password=False)


def lev_workflow(dirname, n, body, chains=1):
    """`chains` chains of n steps each: agent steps on the scripted
    provider (`noop`) or shell steps running `true` (`true`), as
    scripts/peers/compare.py writes them; with several chains, as many
    run at once as a worker has slots."""
    lines = ["version: 1", "kind: workflow", "id: chain", "name: Chain"]
    if chains > 1:
        lines += ["limits:", f"  max_parallel: {SLOTS}"]
    lines.append("steps:")
    for c in range(chains):
        for i in range(n):
            name = f"c{c}s{i}" if chains > 1 else f"s{i}"
            if body == "noop":
                lines += [f"  {name}:", "    type: agent", "    mode: ask", f'    prompt: "step {i}"']
            else:
                lines += [f"  {name}:", "    type: shell", "    run: \"true\""]
            if i:
                before = f"c{c}s{i - 1}" if chains > 1 else f"s{i - 1}"
                lines.append(f"    needs: [{before}]")
    path = os.path.join(dirname, f"chain{n}x{chains}{body}.yaml")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(dirname, f"chain{n}x{chains}{body}.cassette.yaml"), "w") as f:
        f.write("replies:\n  - text: done\n    repeat: true\n")
    return path


def lev(args, journal=None, **kw):
    """`lev` with `args`, on the redb journal of the data dir in `args`
    or on the PostgreSQL database `journal`."""
    env = dict(os.environ, LEV_PROVIDER="")
    env.pop("LEV_JOURNAL", None)
    if journal:
        env["LEV_JOURNAL"] = journal
    return subprocess.run([LEV] + args, capture_output=True, text=True, env=env, check=True, **kw)


def lev_seconds(n, body, journal):
    """One chain of n steps by `lev run --headless`: from its first
    step's start to lev's exit, the run's end durable by then."""
    with tempfile.TemporaryDirectory(dir=TMP) as d:
        wf = lev_workflow(d, n, body)
        data = os.path.join(d, "data")
        out = lev(["--data-dir", data, "run", wf, "--headless", "--workspace", d], journal)
        exited = time.time()
        run = out.stdout.split()[1]
        export = lev(["--data-dir", data, "export", run], journal)
        entries = [json.loads(l) for l in export.stdout.splitlines() if l.strip()]
        first = min(e["at_ms"] for e in entries
                    if e.get("type") == "entry" and e["kind"] == "step_started")
        return exited - first / 1000.0


def dbos_seconds(n, body, url):
    """scripts/peers/dbos_steps.py on the system database `url`."""
    out = subprocess.run(
        [PY, os.path.join(HERE, "dbos_steps.py"), str(n), url, body],
        capture_output=True, text=True, check=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def wal_syncs():
    """How many times the server has synced its WAL to disk so far
    (`pg_stat_wal`, the whole server: every commit that waits for its WAL
    flush, and the WAL writer's own flushes). A backend reports its
    figures when it exits: read once the processes measured are gone."""
    time.sleep(0.2)
    with psycopg.connect(db_url("postgres"), autocommit=True) as c:
        try:
            return c.execute("SELECT wal_sync FROM pg_stat_wal").fetchone()[0]
        except psycopg.Error:
            return None  # before PostgreSQL 14


def per_step(measures):
    """Per-step seconds of each measure, rounds alternating between them
    so that all see the same machine load, and the server's WAL fsyncs
    per step during the longer run: medians of `ROUNDS`."""
    rounds = {name: [] for name in measures}
    syncs = {name: [] for name in measures}
    for _ in range(ROUNDS):
        for name, measure in measures.items():
            small = measure(SMALL)
            before = wal_syncs()
            large = measure(STEPS)
            after = wal_syncs()
            syncs[name].append(None if before is None else (after - before) / STEPS)
            rounds[name].append((large - small) / (STEPS - SMALL))
    med = lambda xs: None if None in xs else statistics.median(xs)
    return {name: (statistics.median(r), med(syncs[name])) for name, r in rounds.items()}


def server_costs(url, n=400):
    """The server's round trip (`SELECT 1`) and a one-row INSERT
    committed on its own (the WAL flushed: fsync on the server), p50, from
    a psycopg connection over the same socket."""
    with psycopg.connect(url, autocommit=True) as c:
        c.execute("CREATE TABLE IF NOT EXISTS bench_commit (i bigint, v bytea)")
        trips, commits = [], []
        value = b"x" * 256
        for i in range(n):
            t = time.perf_counter()
            c.execute("SELECT 1").fetchone()
            trips.append(time.perf_counter() - t)
            t = time.perf_counter()
            c.execute("INSERT INTO bench_commit VALUES (%s, %s)", (i, value))
            commits.append(time.perf_counter() - t)
        c.execute("DROP TABLE bench_commit")
        settings = {
            k: c.execute(f"SHOW {k}").fetchone()[0]
            for k in ("server_version", "fsync", "synchronous_commit", "wal_sync_method")
        }
    return statistics.median(trips), statistics.median(commits), settings


# -- Throughput with workers ------------------------------------------------


def submit(journal, wf, data, k):
    """k runs of `wf` handed to workers (`lev run --detach`)."""
    for _ in range(k):
        lev(["--data-dir", data, "run", wf, "--detach"], journal)


def counts(conn):
    row = conn.execute(
        "SELECT count(*) FILTER (WHERE status = 'succeeded'),"
        " count(*) FILTER (WHERE status NOT IN ('running', 'succeeded'))"
        " FROM lev_runs").fetchone()
    return row[0], row[1]


def stop(worker):
    """Stops a worker as a service manager would (SIGTERM), again until it
    exits: a SIGTERM that arrives while the worker is claiming a run or
    hearing that one ended, not waiting, goes unnoticed (lev 0.1.0)."""
    for _ in range(40):
        worker.terminate()
        try:
            worker.wait(timeout=0.5)
            return
        except subprocess.TimeoutExpired:
            pass
    worker.kill()
    worker.wait()


def workers_until(journal, d, env, workers, slots, finished):
    """Starts `workers` `lev worker`s of `slots` slots on `journal`
    together (each a data dir of its own under `d`, their output in
    `d/workers.log`) and polls `finished(conn)` every 10 ms until it says
    so: the seconds from their start. The workers are stopped whatever
    happens; one that exits early fails the measure, with their output."""
    with open(os.path.join(d, "workers.log"), "w") as log, \
            psycopg.connect(journal, autocommit=True) as conn:
        start = time.perf_counter()
        procs = [
            subprocess.Popen(
                [LEV, "--data-dir", os.path.join(d, f"worker{i}"), "worker",
                 "--slots", str(slots), "--yes", "--workspace", d],
                env=env, stdout=log, stderr=subprocess.STDOUT,
            )
            for i in range(workers)
        ]
        try:
            while not finished(conn):
                if any(p.poll() is not None for p in procs):
                    raise RuntimeError("a worker exited")
                time.sleep(0.01)
            return time.perf_counter() - start
        except RuntimeError:
            log.flush()
            print(open(log.name).read(), file=sys.stderr)
            raise
        finally:
            for p in procs:
                stop(p)


def workers_seconds(workers, body):
    """K submitted runs executed by `workers` `lev worker`s started
    together: seconds from their start until every run's row says
    `succeeded`, the seconds the K submissions took, and the server's WAL
    fsyncs from the workers' start until they exited."""
    name = f"lev_bench_w{workers}"
    journal = fresh_db(name)
    try:
        with tempfile.TemporaryDirectory(dir=TMP) as d:
            wf = lev_workflow(d, RUN_STEPS, body)
            cassette = wf[: -len(".yaml")] + ".cassette.yaml"
            t = time.perf_counter()
            submit(journal, wf, os.path.join(d, "data"), RUNS)
            submitting = time.perf_counter() - t
            env = dict(os.environ, LEV_PROVIDER="", LEV_CASSETTE=cassette, LEV_JOURNAL=journal)
            with psycopg.connect(journal, autocommit=True) as conn:
                assert counts(conn) == (0, 0)

            def finished(conn):
                done, bad = counts(conn)
                if bad:
                    raise RuntimeError(f"{bad} run(s) did not succeed")
                return done == RUNS

            before = wal_syncs()
            took = workers_until(journal, d, env, workers, SLOTS, finished)
            after = wal_syncs()
            return took, submitting, None if before is None else after - before
    finally:
        drop_db(name)


def sequential_seconds(body, journal):
    """The K runs one after another, each by `lev run --headless` (a
    process each), on redb (`journal` None) or PostgreSQL; and the
    server's WAL fsyncs meanwhile."""
    with tempfile.TemporaryDirectory(dir=TMP) as d:
        wf = lev_workflow(d, RUN_STEPS, body)
        data = os.path.join(d, "data")
        before = wal_syncs() if journal else None
        start = time.perf_counter()
        for _ in range(RUNS):
            lev(["--data-dir", data, "run", wf, "--headless", "--workspace", d], journal)
        took = time.perf_counter() - start
        after = wal_syncs() if journal else None
        return took, None, None if before is None else after - before


def one_run_seconds(body):
    """The K chains as one run of one `lev run --headless` on redb, as
    many steps at a time as a worker has slots."""
    with tempfile.TemporaryDirectory(dir=TMP) as d:
        wf = lev_workflow(d, RUN_STEPS, body, chains=RUNS)
        data = os.path.join(d, "data")
        start = time.perf_counter()
        lev(["--data-dir", data, "run", wf, "--headless", "--workspace", d])
        return time.perf_counter() - start, None, None


# -- One run's steps on several workers (`--spread`) -------------------------

SPREAD_CHAIN = 40
SPREAD_FAN = 16
SPREAD_WAIT = 0.5


def spread_workflow(dirname, kind, parallel):
    """`chain`: SPREAD_CHAIN `true` steps one after another; `fan`:
    SPREAD_FAN steps side by side, each waiting SPREAD_WAIT seconds, and
    a step that needs them all; at most `parallel` steps at once."""
    lines = ["version: 1", "kind: workflow", f"id: {kind}", f"name: {kind}",
             "limits:", f"  max_parallel: {parallel}", "steps:"]
    if kind == "chain":
        for i in range(SPREAD_CHAIN):
            lines += [f"  s{i}:", "    type: shell", '    run: "true"', "    idempotent: true"]
            if i:
                lines.append(f"    needs: [s{i - 1}]")
    else:
        for i in range(SPREAD_FAN):
            lines += [f"  s{i}:", "    type: shell", f'    run: "sleep {SPREAD_WAIT}"',
                      "    idempotent: true"]
        lines += ["  join:", "    type: shell", '    run: "true"',
                  f"    needs: [{', '.join(f's{i}' for i in range(SPREAD_FAN))}]"]
    path = os.path.join(dirname, f"{kind}.yaml")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def spread_seconds(kind, spread, workers, slots):
    """One run of `kind` handed to `workers` workers of `slots` slots,
    spread or whole: seconds from the workers' start until the run's row
    says `succeeded`."""
    name = "lev_bench_spread"
    journal = fresh_db(name)
    try:
        with tempfile.TemporaryDirectory(dir=TMP) as d:
            # A whole run does at most a worker's slots' worth at once
            # (what one machine is taken to manage); a spread run's steps
            # go to every worker's slots.
            wf = spread_workflow(d, kind, SPREAD_FAN if spread else slots)
            args = ["--data-dir", os.path.join(d, "data"), "run", wf, "--detach", "--workspace", d]
            run = lev(args + (["--spread"] if spread else []), journal).stdout.strip()
            env = dict(os.environ, LEV_PROVIDER="", LEV_JOURNAL=journal)

            def finished(conn):
                status = conn.execute(
                    "SELECT status FROM lev_runs WHERE id = %s", (run,)).fetchone()[0]
                if status not in ("running", "succeeded"):
                    raise RuntimeError(f"run {run} {status}")
                return status == "succeeded"

            return workers_until(journal, d, env, workers, slots, finished), None, None
    finally:
        drop_db(name)


def spread_tables():
    print(f"One run's steps on several workers (`--spread`): from the workers' start until the run "
          f"succeeded; median of {ROUNDS} rounds, each measuring every line in turn:\n")
    print("| run | how | time | per step | vs whole by 1 worker |")
    print("| --- | --- | --- | --- | --- |")
    chain = medians({
        "whole, 1 worker": lambda: spread_seconds("chain", False, 1, 1),
        "spread (a step run each), 1 worker × 1 slot": lambda: spread_seconds("chain", True, 1, 1),
    })
    rows = list(chain.items())
    base = rows[0][1][0]
    for how, (took, _, _) in rows:
        print(f"| a chain of {SPREAD_CHAIN} `true` shell steps | {how} | {took:.2f} s "
              f"| {took / SPREAD_CHAIN * 1000:.1f} ms | {base / took:.2f}× |")
    measures = {"whole, 1 worker (2 steps at once: `max_parallel: 2`)": lambda: spread_seconds("fan", False, 1, 2)}
    for w in WORKERS:
        measures[f"spread, {w} worker{'s' if w > 1 else ''} × 2 slots"] = (
            lambda w=w: spread_seconds("fan", True, w, 2))
    rows = list(medians(measures).items())
    base = rows[0][1][0]
    for how, (took, _, _) in rows:
        print(f"| {SPREAD_FAN} steps side by side, each `sleep {SPREAD_WAIT}`, then one | {how} "
              f"| {took:.2f} s | — | {base / took:.2f}× |")
    print()


def medians(measures):
    """`ROUNDS` rounds of every measure in turn (so that all see the same
    machine load); for each, the median time and the medians of what
    else it returns (submission time, WAL fsyncs), if any."""
    got = {how: [] for how in measures}
    for _ in range(ROUNDS):
        for how, measure in measures.items():
            got[how].append(measure())
    med = lambda xs: None if None in xs else statistics.median(xs)
    return {how: tuple(med([g[i] for g in r]) for i in range(3)) for how, r in got.items()}


BODIES = {
    "noop": "no body (lev: agent step on the scripted provider)",
    "true": "a `true` subprocess (lev: shell step)",
}


def main():
    date = time.strftime("%Y-%m-%d")
    probe = fresh_db("lev_bench_probe")
    trip, commit, settings = server_costs(probe)
    drop_db("lev_bench_probe")
    print(
        f"PostgreSQL {settings['server_version'].split()[0]} (fsync {settings['fsync']}, synchronous_commit "
        f"{settings['synchronous_commit']}, wal_sync_method {settings['wal_sync_method']}), "
        f"{os.cpu_count()} cores, {date}. From psycopg on the same socket, p50: a round trip "
        f"(`SELECT 1`) {trip * 1000:.3f} ms, a one-row INSERT committed {commit * 1000:.3f} ms.\n"
    )

    lev_pg = fresh_db("lev_bench_steps")
    drop_db("dbos_bench")  # DBOS makes its system database itself
    dbos_pg = sqlalchemy_url(db_url("dbos_bench"))
    rows = []
    for body, what in BODIES.items():
        got = per_step({
            "redb": lambda n: lev_seconds(n, body, None),
            "pg": lambda n: lev_seconds(n, body, lev_pg),
            "dbos": lambda n: dbos_seconds(n, body, dbos_pg),
        })
        rows.append((what, got["redb"][0], got["pg"], got["dbos"]))
    drop_db("lev_bench_steps")
    drop_db("dbos_bench")
    print(f"Durable step overhead: one sequential chain, {SMALL} and {STEPS} steps per run, "
          f"median of {ROUNDS} rounds (WAL fsyncs per step: during the {STEPS}-step run):\n")
    print("| step | lev, redb | lev, PostgreSQL | DBOS 3.4, same PostgreSQL | lev PG / lev redb | DBOS PG / lev PG |")
    print("| --- | --- | --- | --- | --- | --- |")
    ms = lambda s: f"{s * 1000:.3f} ms"
    fsyncs = lambda n: "" if n is None else f" ({n:.2f} fsyncs)"
    for what, redb, (pg, pg_syncs), (dbos, dbos_syncs) in rows:
        print(f"| {what} | {ms(redb)} | {ms(pg)}{fsyncs(pg_syncs)} | {ms(dbos)}{fsyncs(dbos_syncs)} "
              f"| {pg / redb:.2f}× | {dbos / pg:.2f}× |")
    print()

    steps = RUNS * RUN_STEPS
    print(f"Throughput: K = {RUNS} runs of a chain of M = {RUN_STEPS} steps, {steps} steps in all; "
          f"workers from their start until every run succeeded (the K `lev run --detach` before them "
          f"not counted); median of {ROUNDS} rounds, each measuring every line in turn:\n")
    print("| step | how | time | steps/s | WAL fsyncs per step | vs redb one after another | vs 1 worker |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    cores = os.cpu_count() or 1
    seq = fresh_db("lev_bench_seq")
    for body, what in BODIES.items():
        short = what.split(" (")[0]
        measures = {
            "redb, one after another (`lev run --headless` × K)":
                lambda: sequential_seconds(body, None),
            f"redb, one process: the K chains as one run (`max_parallel: {SLOTS}`)":
                lambda: one_run_seconds(body),
            "PostgreSQL, one after another (`lev run --headless` × K)":
                lambda: sequential_seconds(body, seq),
        }
        for w in WORKERS:
            note = f" (more workers than the {cores} cores)" if w > cores else ""
            how = f"PostgreSQL, {w} `lev worker`{'s' if w > 1 else ''} × {SLOTS} slots{note}"
            measures[how] = lambda w=w: workers_seconds(w, body)
        results = list(medians(measures).items())
        base = results[0][1][0]
        one = results[3][1][0]
        for how, (took, submitting, syncs) in results:
            sub = f" (+ {submitting:.2f} s to submit)" if submitting is not None else ""
            fs = f"{syncs / steps:.2f}" if syncs is not None else "—"
            vs_one = f"{one / took:.2f}×" if submitting is not None else "—"
            print(f"| {short} | {how} | {took:.2f} s{sub} | {steps / took:.0f} | {fs} | {base / took:.2f}× | {vs_one} |")
    drop_db("lev_bench_seq")
    print()
    spread_tables()

main()
