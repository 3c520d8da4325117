"""The routing loop's own cost per step, paired with the same graph in plain LangGraph.

Both graphs have the same no-op agents in a chain of routing points (a_i -> [a_{i+1}, END]); agentroute adds, per
step: observe, mask, decide (a trivial policy), reserve the step, commit it, record the decision. Tracing is off.
A second agentroute graph makes one model call per step (count tokens, price, mask, decide, reserve, commit,
record) with the LiteLLM call itself replaced by an instant stub, so only agentroute's own work is timed. Every
call sends a **new text** (the task's own question plus the step), so token counting is measured, never a cache hit.

Tasks of the three variants run back to back, task by task, so machine noise hits them alike; each task gives a
per-step time (task time / steps) for each variant, and the figures are the median and the p99 of the *paired
differences* (agentroute's step minus plain LangGraph's step of the same round), not a difference of percentiles.

``--compare DIR`` measures another checkout (for example ``main``) side by side in the same run: both trees run this
same script in worker processes, in alternating rounds, and the report puts their figures next to each other with
the ratio of each to plain LangGraph. Run: ``python benchmarks/loop_overhead.py [--tasks N] [--compare ../main]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def _graphs(n: int) -> tuple[Any, Any, Any]:
    from langgraph.graph import END, START, StateGraph

    import agentroute as ar

    g: Any = StateGraph(dict)
    for i in range(n):
        g.add_node(f"a{i}", lambda s: s)
    g.add_edge(START, "a0")
    for i in range(n - 1):
        nxt = f"a{i + 1}"
        g.add_conditional_edges(f"a{i}", (lambda nx: (lambda s: nx))(nxt), {nxt: nxt, END: END})
    g.add_edge(f"a{n - 1}", END)
    plain = g.compile()

    def routed(call: bool) -> Any:
        ag = ar.AgentGraph("bench")
        tiers = [ar.ModelTier("small", model="openai/gpt-4o-mini"), ar.ModelTier("large", model="openai/gpt-4o")]
        for i in range(n):
            if call:
                def agent(s: dict[str, Any], ctx: Any, i: int = i) -> dict[str, Any]:
                    ctx.complete([{"role": "user", "content": f"{s['q']} (step {i})"}], max_tokens=8)
                    return {}

                ag.add_agent(f"a{i}", agent, tiers=tiers)
            else:
                ag.add_agent(f"a{i}", lambda s, ctx: {})
        ag.start("a0")
        for i in range(n - 1):
            ag.route(f"a{i}", to=[f"a{i + 1}", ar.END])
        return ag.compile(policy=ar.policies.DeclaredDefault(), provider=ar.providers.Simulated())

    return plain, routed(False), routed(True)


def _per_step(fn: Any, steps: int) -> float:
    t0 = time.perf_counter_ns()
    fn()
    return (time.perf_counter_ns() - t0) / steps / 1000.0


def worker(tasks: int, steps: int, warmup: int, seed: str) -> dict[str, list[float]]:
    """Time ``tasks`` rounds of the three variants with this interpreter's agentroute; per-step µs of each."""
    import agentroute as ar
    from agentroute import llm

    plain, ours, ours_call = _graphs(steps)
    budget = ar.Budget(usd="1", tokens=10**6, steps=steps + 1)  # limits apply: tokens are counted
    reply = llm.RawReply("ok", 9, 2, "stub", "stop", None)
    llm.complete = lambda kwargs: reply  # the LiteLLM call itself is not ours to time here
    llm.count_tokens("openai/gpt-4o-mini", [{"role": "user", "content": "warm the tokenizer"}])
    out: dict[str, list[float]] = {"plain": [], "loop": [], "call": []}
    for k in range(warmup + tasks):
        q = f"question {seed}-{k}: how do I reset my password on the second device?"  # new text every task
        a = _per_step(lambda q=q: plain.invoke({"q": q}), steps)
        b = _per_step(lambda q=q: ours.run({"q": q}, budget=budget), steps)
        c = _per_step(lambda q=q: ours_call.run({"q": q}, budget=budget), steps)
        if k >= warmup:
            out["plain"].append(a)
            out["loop"].append(b)
            out["call"].append(c)
    return out


def _pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(p * len(s)))]


def summary(r: dict[str, list[float]]) -> dict[str, Any]:
    """Medians of each variant, and median/p99 of the paired per-step differences."""
    d_loop = [b - a for a, b in zip(r["plain"], r["loop"], strict=True)]
    d_call = [c - b for b, c in zip(r["loop"], r["call"], strict=True)]
    plain = statistics.median(r["plain"])
    return {
        "tasks": len(d_loop),
        "plain_langgraph_median_us": plain,
        "agentroute_median_us": statistics.median(r["loop"]),
        "agentroute_with_model_call_median_us": statistics.median(r["call"]),
        "added_per_step_us": {"median": statistics.median(d_loop), "p99": _pct(d_loop, 0.99)},
        "added_per_model_call_us": {"median": statistics.median(d_call), "p99": _pct(d_call, 0.99)},
        "ratio_to_plain_median": statistics.median(r["loop"]) / plain,
        "ratio_to_plain_with_call_median": statistics.median(r["call"]) / plain,
    }


def _run_worker(tree: str, tasks: int, steps: int, warmup: int, seed: str) -> dict[str, list[float]]:
    env = {**os.environ, "PYTHONPATH": tree}
    cmd = [sys.executable, __file__, "--worker", "--tasks", str(tasks), "--steps", str(steps), "--warmup",
           str(warmup), "--seed", seed]
    done = subprocess.run(cmd, env=env, cwd=tree, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _print(name: str, s: dict[str, Any]) -> None:
    print(f"{name:>8}: plain LangGraph {s['plain_langgraph_median_us']:7.1f} us/step | agentroute "
          f"{s['agentroute_median_us']:7.1f} ({s['ratio_to_plain_median']:.2f}x) | with a model call "
          f"{s['agentroute_with_model_call_median_us']:7.1f} ({s['ratio_to_plain_with_call_median']:.2f}x)")
    print(f"{'':>10}added per step (paired): median {s['added_per_step_us']['median']:.1f} us, "
          f"p99 {s['added_per_step_us']['p99']:.1f} us; per model call: median "
          f"{s['added_per_model_call_us']['median']:.1f} us, p99 {s['added_per_model_call_us']['p99']:.1f} us")


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--tasks", type=int, default=300)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=4, help="alternations between the trees with --compare")
    ap.add_argument("--compare", default=None, metavar="DIR", help="another checkout to measure side by side")
    ap.add_argument("--out", default=None, help="write the figures as JSON here")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--seed", default="s", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.tasks, args.steps, args.warmup, args.seed)))
        return
    here = str(Path(__file__).resolve().parents[1])
    trees = {"branch": here} if args.compare is None else {"other": str(Path(args.compare).resolve()), "branch": here}
    per_round = max(1, args.tasks // args.rounds)
    got: dict[str, dict[str, list[float]]] = {k: {"plain": [], "loop": [], "call": []} for k in trees}
    for r in range(args.rounds):
        for name, tree in (trees.items() if r % 2 == 0 else reversed(trees.items())):
            part = _run_worker(tree, per_round, args.steps, args.warmup, f"{name}{r}")
            for key, xs in part.items():
                got[name][key].extend(xs)
    res = {name: summary(r) for name, r in got.items()}
    for name, s in res.items():
        _print(name, s)
    if args.compare is not None:
        o, b = res["other"], res["branch"]
        step = b["added_per_step_us"]["median"] / max(o["added_per_step_us"]["median"], 1e-9)
        call = b["agentroute_with_model_call_median_us"] / o["agentroute_with_model_call_median_us"]
        print(f"branch / other, added per step (paired median): {step:.2f}; with a model call: {call:.2f}")
    if args.out:
        Path(args.out).write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
