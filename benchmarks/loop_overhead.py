"""The routing loop's own cost per step, side by side with the same graph in plain LangGraph.

Both graphs have the same no-op agents in a chain of routing points (a_i -> [a_{i+1}, END]); agentroute adds, per
step: observe, mask, decide (a trivial policy), reserve the step, commit it, record the decision. Tracing is off.
A second pair measures the overhead around a model call (count tokens, price, mask, decide, reserve, commit,
record) with the LiteLLM call itself replaced by an instant stub, so only agentroute's own work is timed.

Tasks of both variants are interleaved so machine noise hits both alike. Per-step times are per task (task time /
steps); we report the median and p99 over tasks and the ratio. Run: python benchmarks/loop_overhead.py [--tasks N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import agentroute as ar
from agentroute import llm


def plain_langgraph(n: int) -> Any:
    from langgraph.graph import END, START, StateGraph

    g: Any = StateGraph(dict)
    for i in range(n):
        g.add_node(f"a{i}", lambda s: s)
    g.add_edge(START, "a0")
    for i in range(n - 1):
        nxt = f"a{i + 1}"
        g.add_conditional_edges(f"a{i}", (lambda nx: (lambda s: nx))(nxt), {nxt: nxt, END: END})
    g.add_edge(f"a{n - 1}", END)
    return g.compile()


def routed(n: int, *, call: bool = False) -> ar.App:
    g = ar.AgentGraph("bench")
    tiers = [ar.ModelTier("small", model="openai/gpt-4o-mini"), ar.ModelTier("large", model="openai/gpt-4o")]
    for i in range(n):
        if call:
            g.add_agent(f"a{i}", lambda s, ctx: (ctx.complete([{"role": "user", "content": "hi"}], max_tokens=8),
                                                  {})[1], tiers=tiers)
        else:
            g.add_agent(f"a{i}", lambda s, ctx: {})
    g.start("a0")
    for i in range(n - 1):
        g.route(f"a{i}", to=[f"a{i + 1}", ar.END])
    return g.compile(policy=ar.policies.DeclaredDefault(), provider=ar.providers.Simulated())


def per_step(fn: Any, steps: int) -> float:
    t0 = time.perf_counter_ns()
    fn()
    return (time.perf_counter_ns() - t0) / steps / 1000.0


def summary(xs: list[float]) -> dict[str, float]:
    xs = sorted(xs)
    return {"median_us": statistics.median(xs), "p99_us": xs[min(len(xs) - 1, int(0.99 * len(xs)))]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=300)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--out", default=None, help="write the figures as JSON here")
    args = ap.parse_args()
    n = args.steps
    plain, ours, ours_call = plain_langgraph(n), routed(n), routed(n, call=True)
    budget = ar.Budget(usd="1", tokens=10**6, steps=n + 1)
    reply = llm.RawReply("ok", 9, 2, "stub", "stop", None)
    llm_complete = llm.complete
    llm.complete = lambda kwargs: reply  # the LiteLLM call itself is not ours to time here
    llm.count_tokens("openai/gpt-4o-mini", [{"role": "user", "content": "hi"}])  # warm LiteLLM's tokenizer
    try:
        for _ in range(20):  # warm-up
            plain.invoke({"q": 1})
            ours.run({"q": 1}, budget=budget)
            ours_call.run({"q": 1}, budget=budget)
        a: list[float] = []
        b: list[float] = []
        c: list[float] = []
        for _ in range(args.tasks):
            a.append(per_step(lambda: plain.invoke({"q": 1}), n))
            b.append(per_step(lambda: ours.run({"q": 1}, budget=budget), n))
            c.append(per_step(lambda: ours_call.run({"q": 1}, budget=budget), n))
    finally:
        llm.complete = llm_complete
    sa, sb, sc = summary(a), summary(b), summary(c)
    res = {
        "plain_langgraph": sa, "agentroute": sb, "agentroute_with_model_call": sc,
        "added_per_step_us": {"median": sb["median_us"] - sa["median_us"], "p99": sb["p99_us"] - sa["p99_us"]},
        "added_per_model_call_us": {"median": sc["median_us"] - sb["median_us"]},
        "ratio_median": sb["median_us"] / sa["median_us"],
        "targets": {"added_median_us": 100, "added_p99_us": 300},
    }
    print(f"plain LangGraph        median {sa['median_us']:8.1f} us/step   p99 {sa['p99_us']:8.1f}")
    print(f"agentroute loop        median {sb['median_us']:8.1f} us/step   p99 {sb['p99_us']:8.1f}")
    print(f"  + a model call/step  median {sc['median_us']:8.1f} us/step   p99 {sc['p99_us']:8.1f}")
    print(f"added by the loop: median {res['added_per_step_us']['median']:.1f} us, "
          f"p99 {res['added_per_step_us']['p99']:.1f} us per step (ratio {res['ratio_median']:.2f}x); "
          f"around a model call: {res['added_per_model_call_us']['median']:.1f} us")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
