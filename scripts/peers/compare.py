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
import http.server
import json
import shutil
import threading
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


class Model(http.server.BaseHTTPRequestHandler):
    """A loopback OpenAI-compatible chat server, the same for all three:
    a streamed reply (lev asks with `stream: true`) or a whole one."""
    protocol_version = "HTTP/1.1"
    # Headers and body go out as two writes: without this, Nagle's
    # algorithm holds the body for the client's delayed ACK (40 ms).
    disable_nagle_algorithm = True

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        if body.get("stream"):
            chunks = [
                {"choices": [{"index": 0, "delta": {"role": "assistant", "content": "done"}, "finish_reason": None}]},
                {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
                {"choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11}},
            ]
            out = "".join(
                "data: " + json.dumps(dict(c, id="c1", object="chat.completion.chunk", model="bench-model")) + "\n\n"
                for c in chunks
            ) + "data: [DONE]\n\n"
            kind = "text/event-stream"
        else:
            out = json.dumps({
                "id": "c1", "object": "chat.completion", "model": "bench-model",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "done"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11},
            })
            kind = "application/json"
        data = out.encode()
        self.send_response(200)
        self.send_header("content-type", kind)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def serve_model():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Model)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/v1"


MODEL_URL = serve_model()
os.environ["LEV_PEERS_LLM"] = MODEL_URL


def lev_workflow(dirname, n, body):
    """A chain of n steps: agent steps on the scripted provider (`noop`) or
    on the loopback model server (`http`), or shell steps running `true`
    (`true`)."""
    lines = ["version: 1", "kind: workflow", "id: chain", "name: Chain", "steps:"]
    for i in range(n):
        if body in ("noop", "http"):
            lines += [f"  s{i}:", "    type: agent", "    mode: ask", f'    prompt: "step {i}"']
        else:
            lines += [f"  s{i}:", "    type: shell", "    run: \"true\""]
        if i:
            lines.append(f"    needs: [s{i - 1}]")
    path = os.path.join(dirname, f"chain{n}{body}.yaml")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    if body != "http":
        with open(os.path.join(dirname, f"chain{n}{body}.cassette.yaml"), "w") as f:
            f.write("replies:\n  - text: done\n    repeat: true\n")
    return path


def lev_seconds(n, body):
    with tempfile.TemporaryDirectory(dir=os.environ.get("LEV_BENCH_DIR")) as d:
        wf = lev_workflow(d, n, body)
        data = os.path.join(d, "data")
        env = dict(os.environ, LEV_PROVIDER="")
        if body == "http":
            env.update(LEV_PROVIDER="openai", OPENAI_API_KEY="bench", OPENAI_BASE_URL=MODEL_URL, LEV_MODEL="bench-model")
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


def spawn_seconds(n):
    """A process spawned and reaped n times with nothing around it: the
    floor of any step that runs one. `os.posix_spawn` and `waitpid` of
    `true`, the thinnest way Python has (close to the C calls; the peers'
    `subprocess.run` costs more, lev's shell step spawns `sh`)."""
    exe = shutil.which("true")
    t = time.perf_counter()
    for _ in range(n):
        os.waitpid(os.posix_spawn(exe, [exe], os.environ), 0)
    return time.perf_counter() - t


def main():
    rows = []
    for body, what in (
        ("noop", "no body (lev: agent step on the scripted provider)"),
        ("http", "one chat completion from a loopback model server (lev: agent step)"),
        ("true", "a `true` subprocess"),
    ):
        lev = per_step(lambda n: lev_seconds(n, body))
        dbos = per_step(lambda n: python_seconds("dbos_steps.py", n, body))
        graph = per_step(lambda n: python_seconds("langgraph_steps.py", n, body))
        rows.append((what, lev, dbos, graph))
    print(f"Sequential durable steps, {SMALL} and {STEPS} per run, median of {ROUNDS} rounds, {time.strftime('%Y-%m-%d')}:\n")
    print("| step | lev | DBOS 3.4 (SQLite) | LangGraph (SqliteSaver, sync) | DBOS / lev | LangGraph / lev |")
    print("| --- | --- | --- | --- | --- | --- |")
    ms = lambda s: f"{s * 1000:.3f} ms"
    for what, lev, dbos, graph in rows:
        print(f"| {what} | {ms(lev)} | {ms(dbos)} | {ms(graph)} | {dbos / lev:.2f}× | {graph / lev:.2f}× |")
    # A step that runs a process costs at least the process: when the
    # process alone takes more than a fifth of DBOS's step (a third of
    # LangGraph's), the goals (5× DBOS, 3× LangGraph) ask for a step below it.
    floor = per_step(spawn_seconds)
    lev, dbos, graph = next((l, d, g) for what, l, d, g in rows if "subprocess" in what)
    print(f"\nA process alone (`true` spawned and reaped, no engine; same run): {ms(floor)} a step.\n")
    print("| | lev | DBOS | LangGraph |")
    print("| --- | --- | --- | --- |")
    print(f"| a `true` subprocess step, above the process alone | {ms(lev - floor)} | {ms(dbos - floor)} | {ms(graph - floor)} |")
    print(f"| lev's whole step for 5× DBOS / 3× LangGraph | — | {ms(dbos / 5)} | {ms(graph / 3)} |")


main()
