"""Runs the same sequential durable steps on lev, DBOS (SQLite) and
LangGraph (SqliteSaver, durability "sync") on this machine, in this run,
and prints per-step times and ratios as a Markdown table.

Each engine is timed from its first step to its durable end (imports,
launch and workflow loading left out for all three; lev's end is when its
process exited, the run's end committed), at two sizes; the per-step cost
is the difference divided by the difference in steps, so fixed costs drop
out. The median of `ROUNDS` rounds is reported.

Usage (through scripts/bench-peers): python compare.py LEV_BINARY STEPS
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

LEV = sys.argv[1]
STEPS = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
SMALL = max(STEPS // 10, 10)
ROUNDS = 3
HERE = os.path.dirname(os.path.abspath(__file__))
PY = sys.executable


def lev_workflow(dirname, n, body):
    """A chain of n steps: agent steps on the scripted provider (`noop`) or
    shell steps running `true` (`true`)."""
    lines = ["version: 1", "kind: workflow", "id: chain", "name: Chain", "steps:"]
    for i in range(n):
        if body == "noop":
            lines += [f"  s{i}:", "    type: agent", "    mode: ask", f'    prompt: "step {i}"']
        else:
            lines += [f"  s{i}:", "    type: shell", "    run: \"true\""]
        if i:
            lines.append(f"    needs: [s{i - 1}]")
    path = os.path.join(dirname, f"chain{n}{body}.yaml")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(dirname, f"chain{n}{body}.cassette.yaml"), "w") as f:
        f.write("replies:\n  - text: done\n    repeat: true\n")
    return path


def lev_seconds(n, body):
    with tempfile.TemporaryDirectory(dir=os.environ.get("LEV_BENCH_DIR")) as d:
        wf = lev_workflow(d, n, body)
        data = os.path.join(d, "data")
        env = dict(os.environ, LEV_PROVIDER="")
        out = subprocess.run(
            [LEV, "--data-dir", data, "run", wf, "--headless", "--workspace", d],
            capture_output=True, text=True, env=env, check=True,
        )
        # The end is when lev exited: its run's end is durable by then.
        # (`run_finished`'s own time is taken before its commit, and lev
        # starts a step while the step before it is still being synced.)
        exited = time.time()
        run = out.stdout.split()[1]
        export = subprocess.run(
            [LEV, "--data-dir", data, "export", run],
            capture_output=True, text=True, check=True,
        )
        entries = [json.loads(l) for l in export.stdout.splitlines() if l.strip()]
        kinds = [(e["kind"], e["at_ms"]) for e in entries if e.get("type") == "entry"]
        first = min(at for kind, at in kinds if kind == "step_started")
        return exited - first / 1000.0


def python_seconds(script, n, body):
    with tempfile.TemporaryDirectory(dir=os.environ.get("LEV_BENCH_DIR")) as d:
        out = subprocess.run(
            [PY, os.path.join(HERE, script), str(n), os.path.join(d, "db.sqlite"), body],
            capture_output=True, text=True, check=True,
        )
        return float(out.stdout.strip().splitlines()[-1])


def per_step(measure):
    rounds = []
    for _ in range(ROUNDS):
        small, large = measure(SMALL), measure(STEPS)
        rounds.append((large - small) / (STEPS - SMALL))
    return statistics.median(rounds)


def main():
    rows = []
    for body, what in (("noop", "no body (lev: agent step on the scripted provider)"), ("true", "a `true` subprocess")):
        lev = per_step(lambda n: lev_seconds(n, body))
        dbos = per_step(lambda n: python_seconds("dbos_steps.py", n, body))
        graph = per_step(lambda n: python_seconds("langgraph_steps.py", n, body))
        rows.append((what, lev, dbos, graph))
    print(f"Sequential durable steps, {SMALL} and {STEPS} per run, median of {ROUNDS} rounds, {time.strftime('%Y-%m-%d')}:\n")
    print("| step | lev | DBOS 3.4 (SQLite) | LangGraph (SqliteSaver, sync) | DBOS / lev | LangGraph / lev |")
    print("| --- | --- | --- | --- | --- | --- |")
    for what, lev, dbos, graph in rows:
        ms = lambda s: f"{s * 1000:.3f} ms"
        print(f"| {what} | {ms(lev)} | {ms(dbos)} | {ms(graph)} | {dbos / lev:.2f}× | {graph / lev:.2f}× |")


main()
