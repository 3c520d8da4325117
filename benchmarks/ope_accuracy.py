"""Off-policy evaluation checked against the truth: log, estimate, then run the target for real.

The README's support graph (triage drafts; the policy sends the task to the expert or ends it; each agent picks a
small or large model) runs on the offline simulated world. Per seed, ``--tasks`` support questions are logged under
an exploring policy (the shipped rules, ε-greedy) and :func:`agentroute.offpolicy.evaluate_logged` estimates each
target's mean per-task reward ``quality − λ·cost_usd`` with IPS, weighted IPS and doubly robust 95% intervals. The
truth is the target's value on the task stream: it is run for real on ``--truth-tasks`` fresh questions (a finite
sample of the stream: its standard error is printed). With ``--same`` each target also runs on the logged tasks
themselves (its value on those tasks, which leaves out the sampling of tasks). Reported per target and estimator:
coverage (share of seeds whose interval holds the truth), mean interval width, bias and RMSE, the mean effective
sample size and how often the API warned that IPS is unreliable; pairs under 90% coverage are listed.

    .venv/bin/python benchmarks/ope_accuracy.py --out bench_out/ope [--seeds 40] [--tasks 100] [--same]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from agentroute import Budget, policies, providers
from agentroute.examples import support_graph, support_rules, support_tasks
from agentroute.offpolicy import evaluate_logged, records_of
from agentroute.policies.explore import EpsilonGreedy

BUDGET = Budget(usd="0.01")
TARGETS = {
    "rules": support_rules,
    "cheapest": policies.Cheapest,
    "fixed:large": lambda: policies.Fixed("large"),
}


def run(policy: Any, tasks: list[dict[str, Any]], world_seed: int) -> list[Any]:
    """Run ``tasks`` under ``policy`` in the simulated world ``world_seed``."""
    app = support_graph().compile(policy=policy, provider=providers.Simulated(seed=world_seed))
    return [app.run({"question": t["question"]}, budget=BUDGET, category=t["category"]) for t in tasks]


def true_value(results: list[Any], lam: float) -> float:
    """Mean per-task reward of runs made for real."""
    return float(np.mean([(r.quality or 0.0) - lam * float(r.spent.usd or 0) for r in results]))


def _row(acc: dict[str, list[float]], k: str, e: dict[str, float], truth: float, same: float | None) -> None:
    acc.setdefault(f"{k}_covered", []).append(float(e["ci_low"] <= truth <= e["ci_high"]))
    if same is not None:
        acc.setdefault(f"{k}_covered_same", []).append(float(e["ci_low"] <= same <= e["ci_high"]))
    acc.setdefault(f"{k}_width", []).append(e["ci_high"] - e["ci_low"])
    acc.setdefault(f"{k}_bias", []).append(e["value"] - truth)
    acc.setdefault(f"{k}_sq_error", []).append((e["value"] - truth) ** 2)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="bench_out/ope")
    ap.add_argument("--seeds", type=int, default=40)
    ap.add_argument("--tasks", type=int, default=100, help="logged tasks per seed")
    ap.add_argument("--truth-tasks", type=int, default=3000,
                    help="fresh tasks the truth is measured on (its standard error adds misses: keep it small)")
    ap.add_argument("--same", action="store_true", help="also run each target on the logged tasks (slower)")
    ap.add_argument("--epsilon", type=float, default=0.3)
    ap.add_argument("--cost-weight", type=float, default=100.0, help="λ per USD")
    ap.add_argument("--bootstrap", type=int, default=500)
    ap.add_argument("--world-seed", type=int, default=0)
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    truth_tasks = support_tasks(a.truth_tasks, seed=10_000)
    fresh = {name: [(r.quality or 0.0) - a.cost_weight * float(r.spent.usd or 0)
                    for r in run(make(), truth_tasks, a.world_seed)] for name, make in TARGETS.items()}
    truth = {name: float(np.mean(v)) for name, v in fresh.items()}
    truth_se = {name: float(np.std(v, ddof=1) / np.sqrt(len(v))) for name, v in fresh.items()}
    rows: dict[str, dict[str, list[float]]] = {n: {} for n in TARGETS}
    for seed in range(a.seeds):
        tasks = support_tasks(a.tasks, seed=seed)
        logger = EpsilonGreedy(support_rules(), a.epsilon, seed=seed)
        logged = records_of(run(logger, tasks, a.world_seed), [t["category"] for t in tasks])
        for name, make in TARGETS.items():
            est = evaluate_logged(logged, make(), cost_weight=a.cost_weight, n_boot=a.bootstrap, seed=seed)
            same = true_value(run(make(), tasks, a.world_seed), a.cost_weight) if a.same else None
            acc = rows[name]
            for k in ("ips", "snips", "dr"):
                _row(acc, k, est[k], truth[name], same)
            acc.setdefault("ess", []).append(est["ess"])
            acc.setdefault("ips_warned", []).append(float(any(w.startswith("ips ") for w in est["warnings"])))
    report: dict[str, Any] = {
        "seeds": a.seeds, "tasks_per_seed": a.tasks, "truth_tasks": a.truth_tasks, "epsilon": a.epsilon,
        "cost_weight": a.cost_weight, "clip": 50.0, "bootstrap": a.bootstrap, "targets": {}, "below_90": [],
        "seconds": round(time.perf_counter() - t0, 1),
    }
    print(f"{a.seeds} seeds x {a.tasks} logged tasks (ε = {a.epsilon}), λ = {a.cost_weight} per USD; truth on "
          f"{a.truth_tasks} fresh tasks")
    print(f"{'target':12} {'truth':>15}  " + "  ".join(f"{k:>32}" for k in ("ips", "snips", "dr"))
          + "    ess  ips warned")
    for name, acc in rows.items():
        t = {k: float(np.mean(v)) for k, v in acc.items()}
        for k in ("ips", "snips", "dr"):
            t[f"{k}_rmse"] = float(np.sqrt(t.pop(f"{k}_sq_error")))
            if t[f"{k}_covered"] < 0.9:
                report["below_90"].append(f"{name} {k}")
        report["targets"][name] = {"true_value": truth[name], "true_value_se": truth_se[name], **t}
        cells = "  ".join(f"cov {t[k + '_covered']:4.0%} width {t[k + '_width']:.3f} bias {t[k + '_bias']:+.3f}"
                          for k in ("ips", "snips", "dr"))
        print(f"{name:12} {truth[name]:7.4f}±{truth_se[name]:.4f}  {cells}  {t['ess']:5.1f}  {t['ips_warned']:4.0%}")
    if a.same:
        for name, acc in rows.items():
            print(f"  on the logged tasks themselves, {name}: " + ", ".join(
                f"{k} {np.mean(acc[k + '_covered_same']):.0%}" for k in ("ips", "snips", "dr")))
    print("under 90% coverage: " + (", ".join(report["below_90"]) or "none"))
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "ope_accuracy.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out / 'ope_accuracy.json'} in {report['seconds']} s")
    return report


if __name__ == "__main__":
    main(sys.argv[1:])
