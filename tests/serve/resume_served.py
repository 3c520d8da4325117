"""A served three-step graph, checkpointed in ``$AGENTROUTE_TEST_CHECKPOINTS``; with ``$AGENTROUTE_TEST_CRASH`` set,
its second step flushes the traces, writes the task id to that file and waits to be killed (with SIGKILL)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from serve_helpers import TIERS

import agentroute as ar

graph = ar.AgentGraph("steps")


@graph.agent(tiers=TIERS)
async def triage(state: dict[str, Any], ctx: Any) -> dict[str, Any]:
    return {"draft": (await ctx.acomplete([{"role": "user", "content": state["input"]}], max_tokens=64)).text}


@graph.agent(tiers=TIERS)
async def expert(state: dict[str, Any], ctx: Any) -> dict[str, Any]:
    marker = os.environ.get("AGENTROUTE_TEST_CRASH")
    if marker:
        # the finished step's trace rows leave the export queue first: a real crash loses what is still queued
        SERVED["steps"].flush()
        Path(marker).write_text(ctx.task_id)
        await asyncio.sleep(300)  # killed here
    return {"answer": (await ctx.acomplete([{"role": "user", "content": state["draft"]}], max_tokens=64)).text}


@graph.agent(tiers=TIERS)
async def final(state: dict[str, Any], ctx: Any) -> dict[str, Any]:
    return {"output": (await ctx.acomplete([{"role": "user", "content": state["answer"]}], max_tokens=32)).text}


graph.start("triage")
graph.route("triage", to=["expert", ar.END])
graph.edge("expert", "final")
SERVED = {"steps": graph.compile(ar.policies.Strongest(), ar.providers.Simulated(seed=0),
                                 checkpointer=f"sqlite:///{os.environ['AGENTROUTE_TEST_CHECKPOINTS']}")}
