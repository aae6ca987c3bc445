"""N sequential durable DBOS steps with no body, on DBOS's SQLite system
database (its default when no Postgres is configured), or on PostgreSQL
when the database argument is a URL (scripts/bench-pg). Prints the seconds
the workflow took (launch and imports excluded)."""
import os
import subprocess
import sys
import time

import llm_call

from dbos import DBOS, DBOSConfig

n = int(sys.argv[1])
db = sys.argv[2]
body = sys.argv[3] if len(sys.argv) > 3 else "noop"
config: DBOSConfig = {
    "name": "bench",
    "system_database_url": db if "://" in db else f"sqlite:///{db}",
    "log_level": "WARNING",
}
DBOS(config=config)


@DBOS.step()
def noop(i: int) -> int:
    if body == "true":
        subprocess.run(["true"], check=True)
    elif body == "http":
        llm_call.ask(i)
    return i


@DBOS.workflow()
def chain(n: int) -> int:
    total = 0
    for i in range(n):
        total += noop(i)
    return total


DBOS.launch()
t = time.perf_counter()
chain(n)
took = time.perf_counter() - t
DBOS.destroy()
print(f"{took:.6f}", flush=True)
os._exit(0)
