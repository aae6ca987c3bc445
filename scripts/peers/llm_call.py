"""The work of one step with an HTTP body, the same for DBOS and LangGraph
as lev's agent step: one chat completion from the loopback model server
that compare.py runs (`LEV_PEERS_LLM`), its reply read whole."""
import json
import os
import urllib.request

URL = os.environ.get("LEV_PEERS_LLM", "http://127.0.0.1:9/v1") + "/chat/completions"


def ask(i: int) -> str:
    body = json.dumps({
        "model": "bench-model",
        "messages": [{"role": "user", "content": f"step {i}"}],
    }).encode()
    req = urllib.request.Request(URL, data=body, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req) as resp:
        return json.load(resp)["choices"][0]["message"]["content"]
