"""N sequential durable LangGraph steps with no body: one node that loops
N times, each superstep checkpointed by SqliteSaver with durability "sync"
(the checkpoint is written before the next step starts). Prints the
seconds the run took (imports and setup excluded)."""
import sqlite3
import subprocess
import sys
import time

import llm_call
from typing import TypedDict

from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph

n = int(sys.argv[1])
db = sys.argv[2]
body = sys.argv[3] if len(sys.argv) > 3 else "noop"


class State(TypedDict):
    i: int


def step(state: State) -> State:
    if body == "true":
        subprocess.run(["true"], check=True)
    elif body == "http":
        llm_call.ask(state["i"])
    return {"i": state["i"] + 1}


def more(state: State) -> str:
    return "step" if state["i"] < n else END


g = StateGraph(State)
g.add_node("step", step)
g.add_edge(START, "step")
g.add_conditional_edges("step", more)
saver = SqliteSaver(sqlite3.connect(db, check_same_thread=False))
app = g.compile(checkpointer=saver)
cfg = {"configurable": {"thread_id": "bench"}, "recursion_limit": n + 10}
t = time.perf_counter()
app.invoke({"i": 0}, cfg, durability="sync")
print(f"{time.perf_counter() - t:.6f}")
