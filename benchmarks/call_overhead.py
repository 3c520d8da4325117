"""The hot path: what a routed model call costs against the plain LiteLLM call a user would write instead.

Every variant makes the same LiteLLM call (``openai/gpt-4o-mini``, a new text each call so token counting is never a
cache hit, LiteLLM's own ``mock_response`` so no network is involved, the same keyword arguments: :data:`SAME`) and
is timed in CPU seconds of this process's main thread (LiteLLM runs a mocked call's own work on its worker threads,
the same for every variant):

- ``plain``: ``await litellm.acompletion(...)``;
- ``plain in LangGraph``: the same calls made by a one-node plain LangGraph graph (``CALLS`` per task, as the routed
  agent makes them): what running inside a LangGraph node costs by itself (LangGraph's per-task and per-await work),
  so that the routed figures can be read against both (agentroute's own share is ``routed`` less this);
- ``routed``: ``ctx.acomplete(...)`` inside an agentroute agent with two tiers under a USD + token budget: tokens
  counted, tiers priced and masked, the policy decides, the worst case is reserved, the spend settled, the decision
  recorded (``CALLS`` calls per task, so the figure is per call, not per graph run);
- ``routed, no limit``: the same under a steps-only budget (no token counting: rough estimates only);
- ``routed + tracing``: the same with the SQL trace store on (SQLite), the CPU of the task's own thread only
  (span building and export run on their own threads: their CPU is reported apart).

Then throughput: ``N`` concurrent tasks (100 and 1,000), each a two-agent graph with one model call per agent, in plain
LangGraph + LiteLLM (nodes call ``litellm.acompletion``, a conditional edge picks the next node) against the same graph
in agentroute (a routing point between the agents, a model routing point per call, a USD budget per task).

Rounds alternate between variants so machine noise hits them alike; figures are medians over rounds and the ratios
are taken round by round (then the median), never a ratio of separately measured medians. The heap that imports
leave is frozen after the warm-up (:func:`_freeze_heap`), so a full collection of it does not land on one variant.

    .venv/bin/python benchmarks/call_overhead.py                      # about two minutes
    .venv/bin/python benchmarks/call_overhead.py --rounds 3 --calls 200 --concurrency 100 --json out/calls.json
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ["OTEL_TRACES_EXPORTER"] = "none"

MODEL = "openai/gpt-4o-mini"
MOCK = "A short mocked answer of a few words."
SAME = {"mock_response": MOCK, "num_retries": 0, "max_retries": 0, "timeout": 60.0}
"""What agentroute passes LiteLLM besides the model, messages and ``max_tokens`` (retries off, so every attempt is
its own; the tier's timeout): the plain calls pass the same, so both make the same LiteLLM call."""
_counter = itertools.count()


def _text() -> str:
    n = next(_counter)
    return f"Question {n}: what does order #{n * 7919 % 100003} cost, and when does it ship to {n % 97} Elm St?"


def _routed_app(calls: int, hooks: list[Any] | None = None) -> Any:
    import agentroute as ar

    tiers = [ar.ModelTier("small", model=MODEL, params={"mock_response": MOCK}),
             ar.ModelTier("large", model="openai/gpt-4o", params={"mock_response": MOCK})]
    g = ar.AgentGraph("calls")

    async def agent(state: dict[str, Any], ctx: Any) -> dict[str, Any]:
        for _ in range(calls):
            await ctx.acomplete([{"role": "user", "content": _text()}], max_tokens=64)
        return {}

    g.add_agent("a", agent, tiers=tiers)
    g.start("a")
    return g.compile(policy=ar.policies.Cheapest(), hooks=hooks or [])


def _freeze_heap() -> None:
    """Move what imports and warm-up left on the heap out of the collector's sight (``gc.freeze``).

    LiteLLM and LangGraph leave ~450k objects behind; a full collection walks them all (~170 ms here) and lands on
    whichever variant happens to be running, a third of a round. Frozen, each variant still pays for collecting
    its own garbage, no more.
    """
    gc.collect()
    gc.freeze()


async def _plain_calls(n: int) -> None:
    import litellm

    for _ in range(n):
        await litellm.acompletion(model=MODEL, messages=[{"role": "user", "content": _text()}], max_tokens=64, **SAME)


def _plain_node_graph(calls: int) -> Any:
    import litellm
    from langgraph.graph import END, START, StateGraph

    async def node(state: dict[str, Any]) -> dict[str, Any]:
        for _ in range(calls):
            await litellm.acompletion(model=MODEL, messages=[{"role": "user", "content": _text()}], max_tokens=64,
                                      **SAME)
        return {"n": 1}

    g: Any = StateGraph(dict)
    g.add_node("a", node)
    g.add_edge(START, "a")
    g.add_edge("a", END)
    return g.compile()


async def per_call(rounds: int, calls: int, tasks: int) -> dict[str, Any]:
    """CPU seconds per call of each variant, and the round-by-round ratios to ``plain``."""
    import agentroute as ar
    from agentroute.store.exporter import SqlSpanExporter, SqlSpanProcessor
    from agentroute.telemetry import configure_tracing

    metered = ar.Budget(usd="100", tokens=10**9, steps=10**6)
    unmetered = ar.Budget(steps=10**6)
    tmp = Path(tempfile.mkdtemp(prefix="ar-calls-"))
    tracing = configure_tracing(exporters="none")
    tracing.provider.add_span_processor(
        SqlSpanProcessor(SqlSpanExporter(f"sqlite:///{tmp / 'calls.db'}"), max_queue_size=65_536,
                         schedule_delay_millis=200))
    apps = {"routed": _routed_app(calls // tasks), "routed, no limit": _routed_app(calls // tasks),
            "routed + tracing": _routed_app(calls // tasks, hooks=list(tracing.hooks))}
    budgets = {"routed": metered, "routed, no limit": unmetered, "routed + tracing": metered}
    in_graph = _plain_node_graph(calls // tasks)

    async def run_variant(name: str) -> float:
        c0 = time.thread_time()
        if name == "plain":
            await _plain_calls(calls)
        elif name == "plain in LangGraph":
            for _ in range(tasks):
                await in_graph.ainvoke({"n": 0})
        else:
            for _ in range(tasks):
                r = await apps[name].arun({"q": "x"}, budget=budgets[name])
                if r.error is not None:
                    raise RuntimeError(f"{name}: {r.error}")
        return (time.thread_time() - c0) / calls

    names = ["plain", "plain in LangGraph", *apps]
    for name in names:  # warm up every path (imports, LiteLLM's first-call setup, encoders)
        await run_variant(name)
    _freeze_heap()
    samples: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            samples[name].append(await run_variant(name))
    tracing.flush()
    spans_cpu = sum(getattr(h, "cpu", 0.0) for h in tracing.hooks)
    tracing.shutdown()
    out: dict[str, Any] = {}
    for name in names:
        ratios = [s / p for s, p in zip(samples[name], samples["plain"], strict=True)]
        lg = [s - g for s, g in zip(samples[name], samples["plain in LangGraph"], strict=True)]
        out[name] = {"cpu_us": statistics.median(samples[name]) * 1e6, "ratio_to_plain": statistics.median(ratios),
                     "over_langgraph_us": statistics.median(lg) * 1e6}
    out["routed + tracing"]["ratio_to_routed"] = statistics.median(
        [t / r for t, r in zip(samples["routed + tracing"], samples["routed"], strict=True)])
    out["routed + tracing"]["span_thread_cpu_us_per_call"] = spans_cpu * 1e6 / (calls * (rounds + 1))
    return out


def _plain_graph() -> Any:
    import litellm
    from langgraph.graph import END, START, StateGraph

    async def node(state: dict[str, Any]) -> dict[str, Any]:
        await litellm.acompletion(model=MODEL, messages=[{"role": "user", "content": _text()}], max_tokens=64, **SAME)
        return {"n": state.get("n", 0) + 1}

    g: Any = StateGraph(dict)
    g.add_node("a", node)
    g.add_node("b", node)
    g.add_edge(START, "a")
    g.add_conditional_edges("a", lambda s: "b", {"b": "b", END: END})
    g.add_edge("b", END)
    return g.compile()


def _routed_graph() -> Any:
    import agentroute as ar

    tiers = [ar.ModelTier("small", model=MODEL, params={"mock_response": MOCK}),
             ar.ModelTier("large", model="openai/gpt-4o", params={"mock_response": MOCK})]
    g = ar.AgentGraph("throughput")

    async def node(state: dict[str, Any], ctx: Any) -> dict[str, Any]:
        await ctx.acomplete([{"role": "user", "content": _text()}], max_tokens=64)
        return {"n": state.get("n", 0) + 1}

    g.add_agent("a", node, tiers=tiers)
    g.add_agent("b", node, tiers=tiers)
    g.start("a")
    g.route("a", to=["b", ar.END])
    return g.compile(policy=ar.policies.RulePolicy.from_dict(
        {"name": "a-then-b", "rules": [], "default": {"agent": "b", "model": "small"}}))


async def throughput(rounds: int, concurrency: list[int]) -> dict[str, Any]:
    """Tasks per second at each concurrency, plain LangGraph + LiteLLM against agentroute, and the ratio."""
    import agentroute as ar

    plain, routed = _plain_graph(), _routed_graph()
    budget = ar.Budget(usd="1", tokens=100_000, steps=10)

    async def wave(name: str, n: int) -> float:
        t0 = time.perf_counter()
        if name == "plain":
            await asyncio.gather(*(plain.ainvoke({"n": 0}) for _ in range(n)))
        else:
            results = await asyncio.gather(*(routed.arun({"n": 0}, budget=budget) for _ in range(n)))
            bad = [r.error for r in results if r.error is not None]
            if bad:
                raise RuntimeError(f"agentroute: {len(bad)} tasks failed: {bad[0]}")
        return n / (time.perf_counter() - t0)

    out: dict[str, Any] = {}
    await wave("plain", 10)
    await wave("routed", 10)
    _freeze_heap()
    for n in concurrency:
        tp: dict[str, list[float]] = {"plain": [], "routed": []}
        for r in range(rounds):
            for name in (("plain", "routed") if r % 2 == 0 else ("routed", "plain")):
                tp[name].append(await wave(name, n))
        out[str(n)] = {
            "plain_tasks_per_s": statistics.median(tp["plain"]),
            "routed_tasks_per_s": statistics.median(tp["routed"]),
            "ratio": statistics.median([a / b for a, b in zip(tp["routed"], tp["plain"], strict=True)]),
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--calls", type=int, default=400, help="calls per variant per round")
    ap.add_argument("--calls-per-task", type=int, default=10)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[100, 1000])
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    tasks = max(1, args.calls // args.calls_per_task)
    calls = tasks * args.calls_per_task

    async def both() -> dict[str, Any]:
        return {"per_call": await per_call(args.rounds, calls, tasks),
                "throughput": await throughput(max(1, args.rounds // 2 + 1), args.concurrency)}

    res = asyncio.run(both())
    print(f"CPU per call (median of {args.rounds} rounds of {calls} calls; ratios taken round by round)")
    print(f"  {'variant':<20} {'µs/call':>9} {'× plain':>8} {'µs over plain in LangGraph':>27}")
    for name, r in res["per_call"].items():
        print(f"  {name:<20} {r['cpu_us']:>9.0f} {r['ratio_to_plain']:>8.2f} {r['over_langgraph_us']:>+27.0f}")
    t = res["per_call"]["routed + tracing"]
    print(f"  tracing adds {100 * (t['ratio_to_routed'] - 1):+.0f}% on the task's thread "
          f"(+{t['span_thread_cpu_us_per_call']:.0f} µs/call on the span thread)")
    print("Throughput, two agents, one call each (tasks/s)")
    print(f"  {'concurrent':>10} {'plain':>9} {'agentroute':>11} {'ratio':>6}")
    for n, r in res["throughput"].items():
        print(f"  {n:>10} {r['plain_tasks_per_s']:>9.0f} {r['routed_tasks_per_s']:>11.0f} {r['ratio']:>6.2f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(res, indent=2))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
