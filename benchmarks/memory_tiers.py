"""Memory tiers on LoCoMo: routed memory against every fixed tier combination, on held-out conversations.

Trains on the six training conversations (26, 30, 41, 42, 43, 44) and measures on the two held out (47, 48):

* the 81 fixed combinations (a tier for each of retrieve, filter, link, time), all-low / all-mid / all-high among them;
* routed memory: fitted-Q (state-aware, by backward induction; quality = mix of evidence and answer recall, and an
  evidence-only variant), the rule policy fitted by question type, the ridge predictive baseline, and PPO trained in
  MemoryTier-v0 (from scratch with BudgetMem's reward, and warm-started from the fitted-Q teacher with the tradeoff
  reward), each swept over the cost weight lambda;
* ceilings that are not policies (tiers picked with the held-out questions' own outcomes): one combination per
  question category, one per question, and a two-step cascade whose verifier says whether the first, cheaper
  context holds everything the second would add (perfect, right 90% or 80% of the time);
* the targets: the cost at which the routed frontier reaches all-high's evidence recall (as a share of all-high's
  cost), its evidence recall at 60% of all-high's cost and at all-low's cost, and the time to build a memory for the
  longest conversation and to recall at the low tier.

The routed frontier joins the non-dominated routed points by straight lines (a mix of two policies, question by
question, reaches any point between them). Costs: context tokens at gpt-4o's input price plus the filter call at
gpt-4o-mini's prices (LiteLLM's price map); tokens are approximate (4 characters a token).

    .venv/bin/python benchmarks/memory_tiers.py --out runs/memory_tiers           # add --quick to skip PPO
    .venv/bin/python benchmarks/memory_tiers.py --quick --embed minilm            # MiniLM vectors (embeddings extra)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from agentroute.memory import Memory, load_conversations
from agentroute.memory._data import split
from agentroute.memory.evaluate import combo_table, run_policy, summarise
from agentroute.memory.frontier import (
    LAMBDAS,
    TrainingData,
    cascade_ceilings,
    ceilings,
    fit_family,
    fixed_points,
    targets,
)
from agentroute.memory.plots import frontier_plot
from agentroute.memory.policies import MemoryRulePolicy


def timings(conversations: list[Any]) -> dict[str, Any]:
    conv = max(conversations, key=lambda c: len(c.turns))
    builds = []
    for _ in range(5):
        t0 = time.perf_counter()
        mem = Memory(conv)
        builds.append(time.perf_counter() - t0)
    mem.usd(1)  # load prices once, outside the timings
    queries = [q.question for q in conv.questions[:200]]
    out: dict[str, Any] = {"conversation": conv.id, "turns": len(conv.turns),
                           "build_s_median": statistics.median(builds), "build_s_min": min(builds)}
    for tier in ("low", "mid", "high"):
        for q in queries[:20]:
            mem.recall_with(q, tier)
        ts = []
        for q in queries:
            t0 = time.perf_counter()
            mem.recall_with(q, tier)
            ts.append(time.perf_counter() - t0)
        out[f"recall_{tier}_ms_median"] = 1000 * statistics.median(ts)
        out[f"recall_{tier}_ms_p90"] = 1000 * float(np.percentile(ts, 90))
    # What a router's first look adds (the free probe of its features), paid once per routed recall.
    ts = []
    for q in queries:
        info = mem.store.analyse(q)
        t0 = time.perf_counter()
        mem.store.probe(info)
        ts.append(time.perf_counter() - t0)
    out["probe_ms_median"] = 1000 * statistics.median(ts)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="runs/memory_tiers")
    ap.add_argument("--conversations", default=None)
    ap.add_argument("--embed", choices=("hashing", "minilm"), default="hashing",
                    help="vectors of the mid and high tiers (minilm needs the embeddings extra)")
    ap.add_argument("--ppo-timesteps", type=int, default=30_000, help="0 skips PPO")
    ap.add_argument("--ppo-lambdas", default="40,120", help="λ per USD (40 = 0.1 per 1,000 gpt-4o context tokens)")
    ap.add_argument("--quick", action="store_true",
                    help="skip PPO and every family but fitted-q (evidence only), the one the targets are read from")
    args = ap.parse_args()
    if args.quick:
        args.ppo_timesteps = 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()

    convs = load_conversations(args.conversations)
    train, test = split(convs)
    res: dict[str, Any] = {"train": [c.id for c in train], "test": [c.id for c in test], "retrieval": args.embed}
    res["timing"] = timings(convs)
    log = lambda msg: print(f"[{time.perf_counter() - t_start:6.0f}s] {msg}", file=sys.stderr, flush=True)  # noqa: E731
    log(f"timing: {res['timing']}")

    mtr = [Memory(c, embed=args.embed) for c in train]
    mte = [Memory(c, embed=args.embed) for c in test]
    t_test = combo_table(mte)
    fixed = fixed_points(t_test)
    refs = {f"all-{n}": t_test.mean((n,) * 4) for n in ("low", "mid", "high")}
    log(f"fixed combinations measured on {len(t_test.keys)} held-out questions")
    data = TrainingData(mtr)
    log(f"training data: {len(data.table.keys)} questions; {len(data.transitions.groups)} with every tier path")

    curves: dict[str, list[dict[str, Any]]] = {}

    def measure(family: str, lam: float, policy: Any) -> None:
        s = summarise(run_policy(mte, policy))
        curves.setdefault(family, []).append({"cost_weight": lam, **s["overall"], "tier_mix": s["tier_mix"],
                                              "per_category": s["per_category"]})

    for lam in LAMBDAS:
        measure("fitted-q (evidence only)", lam, fit_family("fitted-q", data, lam, mix=1.0))
        if args.quick:
            continue
        measure("fitted-q", lam, fit_family("fitted-q", data, lam, mix=0.5))
        measure("rule (fitted by question type)", lam, fit_family("rule", data, lam, mix=0.5))
        measure("ridge", lam, fit_family("ridge", data, lam, mix=0.5))
    measure("rule (default)", float("nan"), MemoryRulePolicy())
    log("fitted policies measured")
    if args.ppo_timesteps > 0:
        from agentroute.training import fit_memory_ppo as fit_ppo

        for lam in (float(x) for x in args.ppo_lambdas.split(",")):
            measure("ppo (budgetmem reward)", lam, fit_ppo(mtr, cost_weight=lam, timesteps=args.ppo_timesteps))
            teacher = fit_family("fitted-q", data, lam, mix=1.0)
            measure("ppo warm-started from fitted-q (tradeoff reward, evidence only)", lam,
                    fit_ppo(mtr, cost_weight=lam, timesteps=args.ppo_timesteps, reward="tradeoff", mix=1.0,
                            warm_start=teacher))
            log(f"ppo lambda={lam} measured")

    hi, lo = refs["all-high"], refs["all-low"]
    result_targets: dict[str, Any] = {family: targets(pts, refs, fixed) for family, pts in curves.items()}
    references = {"best fixed combination": fixed, **ceilings(t_test, hi["cost_usd"]), **cascade_ceilings(t_test)}
    for name, pts in references.items():
        result_targets[name] = {k: v for k, v in targets(pts, refs).items() if not k.startswith("fixed")}
    res.update(reference=refs, fixed=fixed, routed=curves, targets=result_targets,
               seconds=time.perf_counter() - t_start)
    (out / "results.json").write_text(json.dumps(res, indent=2, default=str) + "\n")
    frontier_plot(out / "frontier.png", {}, refs, fixed,
                  {k: v for k, v in curves.items() if len(v) > 1},
                  title=f"Held-out LoCoMo ({', '.join(res['test'])}): evidence recall against cost")

    tm = res["timing"]
    print(f"memory build, {tm['turns']}-turn conversation: {tm['build_s_median'] * 1000:.0f} ms (median of 5)")
    print(f"recall latency (median): low {tm['recall_low_ms_median'] * 1000:.0f} us, "
          f"mid {tm['recall_mid_ms_median'] * 1000:.0f} us, high {tm['recall_high_ms_median'] * 1000:.0f} us; "
          f"a routed recall adds the probe of its features once: {tm['probe_ms_median'] * 1000:.0f} us")
    for n, r in refs.items():
        print(f"{n:8s}: evidence {r['evidence_recall']:.3f}  answer {r['answer_recall']:.3f}  "
              f"${r['cost_usd'] * 1e6:7.1f}e-6  {r['cost_tokens']:.0f} tokens")
    for family, t in result_targets.items():
        reach = t["cost_share_to_reach_all_high_recall"]
        at60 = t["recall_at_60pct_of_all_high_cost"]
        at_low = t["recall_at_all_low_cost"]
        reaches = ("never reaches all-high recall" if reach is None
                   else f"reaches all-high recall at {reach:.0%} of its cost")
        print(f"{family:40s} {reaches}; "
              f"at 60%: {'-' if at60 is None else f'{at60:.3f}'}; at all-low cost: "
              f"{'-' if at_low is None else f'{at_low:.3f}'} (all-low {lo['evidence_recall']:.3f})")
    print(f"wrote {out / 'results.json'} and {out / 'frontier.png'} in {res['seconds']:.0f} s")


if __name__ == "__main__":
    main()
