"""The graph world's best fixed path depends on the task's difficulty class and on λ (issue 14, item 1).

Every fixed path of ``agentroute.examples.world_graph`` (research or not, verify or not, a model tier per agent:
18 rule policies) runs the same support questions through the real runtime on ``providers.Simulated(seed)``.
Each task's hidden class comes from ``sim.task_class``; the table prints, per λ (per USD) and class, the best path
and its reward (mean quality − λ·cost per task), beside the best path over all tasks.

Run: ``python benchmarks/graph_world.py [--tasks 120] [--lambdas 0 10 30 100 300] [--seed 0] [--json out.json]``;
``--write-rules DIR`` writes the 18 paths as rule files instead (named like ``rl-wl-vs``: research large, writer
large, verifier small), to judge them beside other policies with ``agentroute eval --scenario``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from collections.abc import Sequence
from typing import Any

from agentroute import Budget, providers
from agentroute.examples import support_tasks, world_graph
from agentroute.policies import RulePolicy

BUDGET = Budget(usd="0.02", tokens=6000, steps=6)


def rule_dict(agents: Sequence[str], tiers: Sequence[str]) -> dict[str, Any]:
    """The rule file (as a dict) that always takes ``agents`` with ``tiers`` (one per agent)."""
    rules: list[dict[str, Any]] = [
        {"name": "start", "when": {"kind": "agent", "node": "intake"},
         "choose": "research" if "research" in agents else "writer"},
        {"name": "check", "when": {"kind": "agent", "node": "writer"},
         "choose": "verifier" if "verifier" in agents else "END"},
    ]
    rules += [{"name": f"tier-{a}", "when": {"kind": "model", "node": a}, "choose": t}
              for a, t in zip(agents, tiers, strict=True)]
    name = ">".join(f"{a}:{t}" for a, t in zip(agents, tiers, strict=True))
    return {"name": name, "rules": rules, "default": {"agent": "END", "model": "small"}}


def fixed_path(agents: Sequence[str], tiers: Sequence[str]) -> tuple[str, RulePolicy]:
    """A rule policy that always takes ``agents`` with ``tiers`` (one per agent)."""
    d = rule_dict(agents, tiers)
    return d["name"], RulePolicy.from_dict(d)


PATHS = (("writer",), ("writer", "verifier"), ("research", "writer"), ("research", "writer", "verifier"))


def all_paths() -> list[tuple[str, RulePolicy]]:
    """The 18 fixed paths of the world graph."""
    out = []
    for agents in PATHS:
        for tiers in itertools.product(("small", "large"), repeat=len(agents)):
            out.append(fixed_path(agents, tiers))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", type=int, default=120)
    ap.add_argument("--lambdas", type=float, nargs="+", default=[0.0, 10.0, 30.0, 100.0, 300.0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    ap.add_argument("--write-rules", default=None, metavar="DIR",
                    help="Only write the 18 fixed paths as rule files into DIR (for `agentroute eval --scenario`).")
    args = ap.parse_args()
    if args.write_rules:
        import pathlib

        import yaml

        d = pathlib.Path(args.write_rules)
        d.mkdir(parents=True, exist_ok=True)
        for agents in PATHS:
            for tiers in itertools.product(("small", "large"), repeat=len(agents)):
                rd = rule_dict(agents, tiers)
                fname = "-".join(f"{a[0]}{t[0]}" for a, t in zip(agents, tiers, strict=True))  # e.g. rl-wl-vs
                (d / f"{fname}.yaml").write_text(yaml.safe_dump(rd, sort_keys=False), encoding="utf-8")
        print(f"wrote 18 rule files to {d}")
        return
    tasks = support_tasks(args.tasks, seed=args.seed)
    sim = providers.Simulated(seed=args.seed)
    classes = [sim.task_class(t["question"]) for t in tasks]
    t0 = time.perf_counter()
    runs: dict[str, list[tuple[str, float, float]]] = {}
    for name, policy in all_paths():
        app = world_graph().compile(policy, sim, budget=BUDGET)
        runs[name] = [(c, float(r.quality or 0.0), float(r.spent.usd or 0))
                      for c, r in zip(classes, (app.run({"question": t["question"]}) for t in tasks), strict=True)]
    print(f"{len(tasks)} tasks ({classes.count('hard')} hard) x {len(runs)} fixed paths in "
          f"{time.perf_counter() - t0:.0f}s")
    report: dict[str, Any] = {"tasks": len(tasks), "hard": classes.count("hard"), "seed": args.seed, "best": {}}
    for lam in args.lambdas:
        row = {}
        for cls in ("easy", "hard", "all"):
            def value(rs: list[tuple[str, float, float]], cls: str = cls, lam: float = lam) -> float:
                sel = [q - lam * c for k, q, c in rs if cls in ("all", k)]
                return sum(sel) / max(1, len(sel))

            best = max(runs, key=lambda n: value(runs[n]))
            row[cls] = {"path": best, "reward": value(runs[best])}
        report["best"][f"{lam:g}"] = row
        print(f"λ={lam:<5g} " + "  ".join(f"{k}: {v['path']} ({v['reward']:+.3f})" for k, v in row.items()))
    report["paths"] = {n: {"quality": sum(q for _, q, _ in rs) / len(rs), "cost_usd": sum(c for *_, c in rs) / len(rs)}
                       for n, rs in runs.items()}
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=1)


if __name__ == "__main__":
    main()
