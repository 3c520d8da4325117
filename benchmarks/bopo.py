"""Boundary-guided training (BoPO) against plain PPO at equal timesteps, under a strict per-task budget (issue 14, 6).

Both train MaskablePPO in ``agentroute/GraphRouting-v0`` on the graph world (``agentroute.examples.world_graph``,
support questions of seed 0) with the same per-task budget, the same timesteps and the same seed: plain PPO on the
trade-off reward (quality − λ·USD), BoPO on the boundary reward after its boundary rollouts and cloned warm start
(:func:`agentroute.bopo.fit_bopo`; its extra rollouts are reported, PPO's timesteps do not count them). Both are
then judged, with the baselines, on held-out questions (seed 1) under the same budget, by the figures of
``agentroute eval --scenario`` at the same λ (per USD).

Run: ``python benchmarks/bopo.py [--train-tasks 120] [--test-tasks 60] [--timesteps 3000] [--cost-weight 30]
[--usd 0.004] [--seed 0] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from agentroute import Budget
from agentroute.bopo import fit_bopo
from agentroute.envs.graph_routing import GraphRoutingEnv
from agentroute.examples import support_tasks, world_graph
from agentroute.scenario_eval import evaluate_env, format_rows
from agentroute.training import fit_env_policy


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train-tasks", type=int, default=120)
    ap.add_argument("--test-tasks", type=int, default=60)
    ap.add_argument("--timesteps", type=int, default=3000)
    ap.add_argument("--cost-weight", type=float, default=30.0, help="λ per USD")
    ap.add_argument("--usd", default="0.004", help="the strict budget per task, USD")
    ap.add_argument("--explore", type=int, default=4, help="random rollouts per task beside the two boundaries")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    budget = Budget(usd=args.usd, tokens=6000, steps=6)
    train = support_tasks(args.train_tasks, seed=0)
    test = support_tasks(args.test_tasks, seed=1)
    base: dict[str, Any] = {"graph": world_graph(), "tasks": train, "budget": budget}
    t0 = time.perf_counter()
    bopo = fit_bopo(base, cost_weight_usd=args.cost_weight, total_timesteps=args.timesteps, seed=args.seed,
                    explore=args.explore)
    t_bopo = time.perf_counter() - t0
    t0 = time.perf_counter()
    ppo = fit_env_policy("agentroute/GraphRouting-v0", env_kwargs={**base, "cost_weight": args.cost_weight},
                         algo="maskable_ppo", total_timesteps=args.timesteps, seed=args.seed)
    t_ppo = time.perf_counter() - t0
    env = GraphRoutingEnv(world_graph(), tasks=test, budget=budget, cost_scale_usd=1.0)
    try:
        result = evaluate_env(env, {"bopo": bopo, "ppo": ppo, "cheapest": "cheapest", "strongest": "strongest",
                                    "random": "random"}, cost_weights=[args.cost_weight], seed=args.seed)
    finally:
        env.close()
    report = bopo.card["bopo"]
    print(f"budget ${args.usd} per task; {args.timesteps} PPO timesteps each; λ={args.cost_weight:g} per USD")
    print(f"BoPO: {t_bopo:.0f}s, {report['rollouts']} extra rollouts, classes {report['classes']}, clone accuracy "
          f"{report['clone_accuracy']:.2f}, cloned trajectories: quality {report['cloned_quality']:.3f} at "
          f"${report['cloned_cost_usd']:.5f}; boundary λ {report['boundary_cost_weight']:.3f}")
    print(f"PPO: {t_ppo:.0f}s")
    print("\n".join(format_rows(result)))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"args": vars(args), "bopo": report, "seconds": {"bopo": t_bopo, "ppo": t_ppo},
                       "eval": result}, fh, indent=1)


if __name__ == "__main__":
    main()
