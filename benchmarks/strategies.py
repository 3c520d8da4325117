"""Multi-model strategies on RouterBench's recorded answers, on a split held out from the shared train files.

The RouterBench train files (converted in memory, with every model's recorded response) are split like
``agentroute data split routerbench --test-size 0.2 --seed 0``; every choice a strategy makes once (ACAR's probes,
the fan-out's descriptors, the cache's thresholds, the LLM router stand-in's view of the candidates) is fitted on the
train part, and every strategy then answers the held-out part through the kernel, its calls replayed from what the
models really answered (quality = the release's grade of the answer returned; cost = the recorded USD of every call).

Reported (``OUT/strategies.json``, ``OUT/frontier.png``):

- ACAR (two probes chosen on train, and three): quality and cost beside GPT-4 (ratios), its distance above the
  single models' zero-router hull at its own cost, the best single cheaper model, and how often it avoided
  escalation (the ACAR paper reports 54% of tasks);
- fan-out + refine and the LLM router: against the best single model and the best table router (agentroute's fitted
  routers, swept over λ on the same split) at equal cost (each router's hull at the strategy's cost);
- the semantic cache (ACAR behind it) on a stream of the test queries with 20% repeats (half paraphrased): hit rate,
  wrong hits, cost saved;
- every strategy under a per-task budget: spend never past it (counted), the share of tasks truncated;
- off-policy evaluation from the traces: a fan-out logging with Plackett–Luce sampling (τ = 0.05) estimates, by
  IPS over its pick records, the value of the greedy pick, which is then run for real.

    .venv/bin/python benchmarks/strategies.py --out bench_out/strategies [--limit 200] [--budget 0.002]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from agentroute._offpolicy import ips_from_records
from agentroute.data import load_builtin
from agentroute.data.split import split_table
from agentroute.evaluation import evaluate
from agentroute.policies import make_router
from agentroute.policies._frontier import hull_value, upper_hull
from agentroute.strategies import registry, run_strategy
from agentroute.strategies.evaluate import evaluate_strategies, plot_strategies
from agentroute.strategies.fanout import FanOut, descriptors_from_table

ROUTERS = ("knn", "linear", "prior")


def table_routers(train: Any, test: Any, seed: int) -> dict[str, np.ndarray]:
    """The hull (cost, quality) of each fitted table router swept over λ on ``test``."""
    fitted = {}
    for name in ROUTERS:
        pol = make_router(name, seed=seed)
        pol.fit(train)
        fitted[name] = pol
    res = evaluate(test, fitted)
    return {name: np.asarray(rec["hull"]) for name, rec in res["policies"].items()}


def best_router_at(hulls: dict[str, np.ndarray], cost: float) -> tuple[str, float]:
    """The table router whose hull is highest at ``cost``, and that quality."""
    vals = {n: hull_value(h, cost) for n, h in hulls.items() if len(h)}
    name = max(vals, key=lambda n: vals[n])
    return name, vals[name]


def ope_check(train: Any, test: Any, seed: int) -> dict[str, float]:
    """IPS from a sampled fan-out's pick records vs the greedy pick's real value (k = 1)."""
    descs = descriptors_from_table(train)
    logging = FanOut(descs, k=1, temperature=0.05, seed=seed, name="logging").fit(train.texts)
    greedy = FanOut(descs, k=1, name="greedy").fit(train.texts)
    logged = run_strategy(logging, test)
    picks = [r for r in logged.records if r.point == "fanout.pick0"]

    def target(rec: Any) -> dict[str, float]:
        top = max(rec.scores, key=lambda c: rec.scores[c])
        return {top: 1.0}

    est = ips_from_records(picks, target)
    real = run_strategy(greedy, test).summary()["quality"]
    return {"ips": est["ips"], "snips": est["snips"], "greedy_real": real,
            "logging_quality": logged.summary()["quality"]}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="bench_out/strategies")
    ap.add_argument("--test-size", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=None, help="evaluate on the first N held-out queries only")
    ap.add_argument("--budget", type=float, default=0.002, help="per-task USD budget of the budgeted runs")
    ap.add_argument("--budget-limit", type=int, default=120, help="queries of the budgeted runs")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    table = load_builtin("routerbench")
    train, test = split_table(table, args.test_size, args.seed)
    if args.limit:
        test = test.subset(range(min(args.limit, len(test))))
    names = ["acar", "acar-3", "fanout", "llm-router", "cache"]
    strategies = registry.build(names, test, train)
    result = evaluate_strategies(test, strategies)
    result.pop("_reports")
    hulls = table_routers(train, test, args.seed)
    singles = result["single_options"]
    strong, _ = registry.strong_and_pool(train)
    gpt4 = singles[strong]
    c_opt = np.asarray([v["cost"] for v in singles.values()])
    q_opt = np.asarray([v["quality"] for v in singles.values()])
    hull = upper_hull(c_opt, q_opt)
    report: dict[str, Any] = {"split": {"train": len(train), "test": len(test), "seed": args.seed},
                              "strong": {"option": strong, **gpt4}, "strategies": {}}
    for s in strategies:
        m = result["strategies"][s.name]
        cheaper = {o: v for o, v in singles.items() if v["cost"] <= m["cost_usd"]}
        best_cheaper = max(cheaper.items(), key=lambda kv: kv[1]["quality"]) if cheaper else None
        rname, rq = best_router_at(hulls, m["cost_usd"])
        rec = {**m, "config": registry.describe(s),
               "vs_strong": {"quality_ratio": m["quality"] / gpt4["quality"],
                             "cost_ratio": m["cost_usd"] / gpt4["cost"]},
               "hull_at_cost": hull_value(hull, m["cost_usd"]),
               "best_single_at_most_its_cost": None if best_cheaper is None else
               {"option": best_cheaper[0], **best_cheaper[1]},
               "best_table_router_at_cost": {"router": rname, "quality": rq, "delta": m["quality"] - rq}}
        report["strategies"][s.name] = rec
    # every strategy under a budget: never past it, truncation reported
    small = test.subset(range(min(args.budget_limit, len(test))))
    budgeted = {}
    for s in registry.build(names, small, train):
        rep = run_strategy(s, small, budget_usd=args.budget)
        summ = rep.summary()
        budgeted[s.name] = {"budget_usd": args.budget, "overspent": rep.overspent, "truncated": summ["truncated"],
                            "quality": summ["quality"], "cost_usd": summ["cost_usd"],
                            "max_task_cost": max(float(o.cost_usd or 0) for o in rep.outcomes)}
    report["budgeted"] = budgeted
    report["ope"] = ope_check(train, small, args.seed)
    report["seconds"] = time.perf_counter() - t0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "strategies.json").write_text(json.dumps(report, indent=1, default=float) + "\n", encoding="utf-8")
    plot_strategies(result, out / "frontier.png", title=f"RouterBench held-out split: {len(test)} queries")
    _print(report)
    return report


def _print(r: dict[str, Any]) -> None:
    s = r["strong"]
    print(f"held-out RouterBench: {r['split']['test']} queries (train {r['split']['train']}); "
          f"{s['option']}: quality {s['quality']:.3f} at ${s['cost']:.5f}")
    print(f"{'strategy':12} {'quality':>8} {'cost $':>9} {'q/strong':>9} {'c/strong':>9} {'vs hull':>8} "
          f"{'vs router':>10}  notes")
    for name, m in r["strategies"].items():
        notes = []
        if "escalation_avoided" in m:
            notes.append(f"escalation avoided {m['escalation_avoided']:.0%}")
        if "cache_hit" in m:
            notes.append(f"hits {m['cache_hit']:.0%}, wrong hits {m['wrong_hit']:.1%}")
        if "fallback" in m:
            notes.append(f"fallbacks {m['fallback']:.2f}/task")
        b = m["best_single_at_most_its_cost"]
        if b:
            notes.append(f"best single at <= its cost: {b['option'].split('/')[-1]} {b['quality']:.3f}")
        tr = m["best_table_router_at_cost"]
        print(f"{name:12} {m['quality']:8.3f} {m['cost_usd']:9.5f} {m['vs_strong']['quality_ratio']:9.3f} "
              f"{m['vs_strong']['cost_ratio']:9.3f} {m['above_hull']:+8.3f} {tr['delta']:+10.3f}  "
              f"{'; '.join(notes)} (router: {tr['router']})")
    print("under a budget (USD per task):")
    for name, b in r["budgeted"].items():
        print(f"  {name:12} budget {b['budget_usd']}: overspent {b['overspent']}, truncated {b['truncated']:.0%}, "
              f"max task cost {b['max_task_cost']:.5f}, quality {b['quality']:.3f}")
    o = r["ope"]
    print(f"off-policy: IPS {o['ips']:.3f} / SNIPS {o['snips']:.3f} of the greedy pick from sampled logs; "
          f"run for real: {o['greedy_real']:.3f}")
    print(f"{r['seconds']:.0f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
