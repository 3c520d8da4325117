"""A task that a test kills with SIGKILL mid-way and then resumes: run as ``python resume_worker.py DIR TASK_ID``.

Three agents in a row (triage → expert by a routing point → final), each one model call through LiteLLM's offline
path, on a shared SQL ledger, traced into the store and checkpointed, all in ``DIR/run.db``. Every agent execution
appends its name to ``DIR/runs.log``. In a subprocess, ``expert`` flushes the traces, writes ``DIR/in-expert`` and
waits to be killed (before its model call, so what the shared ledger holds is exactly what finished steps spent).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import agentroute as ar

TIERS = [ar.ModelTier("small", model="openai/gpt-4o-mini"), ar.ModelTier("large", model="openai/gpt-4o")]
LEASE = 1.0


def build(folder: Path, *, crash: bool) -> tuple[Any, Any, Any]:
    """The app, its shared budget and its tracing, all on ``folder/run.db``."""
    from agentroute.ledgers import SqlLedger
    from agentroute.store import SqlCheckpointer
    from agentroute.telemetry import configure_tracing

    url = f"sqlite:///{folder / 'run.db'}"
    log = folder / "runs.log"
    tracing = configure_tracing(store_url=url)
    holder: dict[str, Any] = {}
    graph = ar.AgentGraph("resumable")

    def ran(name: str) -> None:
        with log.open("a") as f:
            f.write(f"{name} {os.getpid()}\n")

    @graph.agent(tiers=TIERS)
    def triage(state: dict[str, Any], ctx: Any) -> dict[str, Any]:
        ran("triage")
        return {"draft": ctx.complete([{"role": "user", "content": state["input"]}], max_tokens=64).text}

    @graph.agent(tiers=TIERS)
    def expert(state: dict[str, Any], ctx: Any) -> dict[str, Any]:
        ran("expert")
        if crash:
            holder["app"].flush()  # the finished step's rows reach the store before the kill
            (folder / "in-expert").write_text(str(os.getpid()))
            time.sleep(120)  # killed here
        return {"answer": ctx.complete([{"role": "user", "content": state["draft"]}], max_tokens=64).text}

    @graph.agent(tiers=TIERS)
    def final(state: dict[str, Any], ctx: Any) -> dict[str, Any]:
        ran("final")
        return {"output": ctx.complete([{"role": "user", "content": state["answer"]}], max_tokens=32).text}

    graph.start("triage")
    graph.route("triage", to=["expert", ar.END])
    graph.edge("expert", "final")
    team = ar.SharedBudget(ar.Budget(usd="1.00"), per_task=ar.Budget(usd="0.50", steps=6),
                           backend=SqlLedger(url, name="team", lease=LEASE), name="team")
    app = graph.compile(ar.policies.Strongest(), ar.providers.Simulated(seed=3), budget=team,
                        hooks=tracing.hooks, checkpointer=SqlCheckpointer(url))
    holder["app"] = app
    return app, team, tracing


if __name__ == "__main__":
    folder, task_id = Path(sys.argv[1]), sys.argv[2]
    app, team, _ = build(folder, crash=True)
    app.run({"input": "Why is the sky blue?"}, task_id=task_id, labels={"owner": "worker-a"})
