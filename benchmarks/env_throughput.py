"""Environment and learned-policy speed: the figures issue 4 asks for, from one run.

1. QueryRouting-v0 steps per second without a policy (random actions drawn up front), on one core: the bare env
   and the same env behind ``gym.make``'s checker wrappers. Target: >= 20,000 per core.
2. GraphRouting-v0 steps per second (each step is a routing point answered through the real runtime, with model
   calls going to the simulated provider through LiteLLM): the support example graph.
3. PPO training time to plateau on a routing table: PPO (λ range "auto") on a train split; every ``--eval-every``
   steps the actor is exported and scored on a held-out split (mean over λ in [0, 1] of quality − λ·cost/scale);
   at the end, the held-out AIQ against the zero router and the oracle (``agentroute.evaluation``).
   The plateau is the first evaluation that reaches the late level (mean of the last half of the evaluations, less
   one standard deviation of them); its time counts PPO only (not featurizing, building envs, or evaluating).
4. Exported policy decision latency: ``LearnedPolicy.act`` on one input row (numpy matmuls on preallocated buffers;
   target <= 50 µs), and a full ``decide(Observation)`` with the task's features cached and uncached.

Run: ``python benchmarks/env_throughput.py [--table routerbench] [--timesteps 100000] [--json out.json]``. Torch
runs on one thread (the networks are tiny). Without the shared data folder it uses a synthetic table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from decimal import Decimal
from typing import Any

import numpy as np

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def _table(name: str) -> Any:
    from agentroute.data import load_builtin
    from agentroute.errors import DataError

    try:
        return load_builtin(name), name
    except DataError:
        sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "envs"))
        from envs_helpers import synthetic_table

        return synthetic_table(2000), "synthetic"


def query_steps(table: Any, n: int) -> dict[str, float]:
    import gymnasium as gym

    import agentroute.envs  # noqa: F401
    from agentroute.envs.query_routing import QueryRoutingEnv, table_features
    from agentroute.features import HashingFeaturizer

    x, _ = table_features(table, HashingFeaturizer(n_components=64))
    out = {}
    for label, env in (
        ("bare", QueryRoutingEnv(table, features=x, cost_weight_range=(0, 1))),
        ("gym.make", gym.make("agentroute/QueryRouting-v0", table=table, features=x, cost_weight_range=(0, 1))),
    ):
        actions = np.random.default_rng(0).integers(0, table.n_options, size=n).tolist()
        env.reset(seed=0)
        best = 0.0
        for _ in range(3):
            t = time.perf_counter()
            for a in actions:
                _, _, term, _, _ = env.step(a)
                if term:
                    env.reset()
            best = max(best, n / (time.perf_counter() - t))
        out[label] = best
    return out


def graph_steps(n: int) -> dict[str, float]:
    from agentroute.envs.graph_routing import GraphRoutingEnv

    t = time.perf_counter()
    env = GraphRoutingEnv(cost_weight_range=(0, 1))
    init = time.perf_counter() - t
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    for _ in range(20):  # warm up LiteLLM's first-call paths
        _, _, term, trunc, _ = env.step(int(rng.choice(np.flatnonzero(env.action_masks()))))
        if term or trunc:
            env.reset()
    steps = episodes = 0
    t = time.perf_counter()
    while steps < n:
        _, _, term, trunc, _ = env.step(int(rng.choice(np.flatnonzero(env.action_masks()))))
        steps += 1
        if term or trunc:
            episodes += 1
            env.reset()
    dt = time.perf_counter() - t
    env.close()
    return {"steps_per_s": steps / dt, "episodes_per_s": episodes / dt, "init_s": init}


def ppo_plateau(table: Any, timesteps: int, eval_every: int, seed: int) -> tuple[dict[str, Any], Any]:
    from stable_baselines3.common.callbacks import BaseCallback

    from agentroute.envs.rewards import cost_scale
    from agentroute.features import HashingFeaturizer
    from agentroute.policies import _sb3

    train, test = table.split(0.2, seed=seed)
    feat = HashingFeaturizer(n_components=64).fit(train.texts, train.categories)
    xt = feat.transform(test.texts, test.categories)
    scale = cost_scale(train.cost)
    lams = np.linspace(0.0, 1.0, 11)
    rows = np.arange(len(test))
    best_single = float(np.mean([(test.quality - lam * test.cost / scale).mean(0).max() for lam in lams]))
    oracle = float(np.mean([(test.quality - lam * test.cost / scale).max(1).mean() for lam in lams]))
    curve: list[tuple[int, float, float]] = []
    t0 = time.perf_counter()
    eval_s = [0.0]

    class Eval(BaseCallback):
        def _on_training_start(self) -> None:
            nonlocal t0
            t0 = time.perf_counter()  # the clock starts with PPO itself, after featurizing and building envs

        def _on_step(self) -> bool:
            if self.num_timesteps % eval_every < self.training_env.num_envs:
                te = time.perf_counter()
                pol = _sb3.export_model(self.model, {"options": list(train.options), "obs": {"kind": "query"},
                                                     "observe_cost_weight": True,
                                                     "cost_weight_range": self.training_env.get_attr(
                                                         "cost_weight_range")[0]})
                score = 0.0
                for lam in lams:
                    ch, _ = pol.predict(xt, lam / scale)  # λ per cost unit; a policy takes it per USD
                    score += float((test.quality[rows, ch] - lam * test.cost[rows, ch] / scale).mean())
                curve.append((self.num_timesteps, te - t0 - eval_s[0], score / len(lams)))
                eval_s[0] += time.perf_counter() - te
            return True

    t = time.perf_counter()
    from agentroute.training import fit_query_policy

    policy = fit_query_policy(train, feat, seed=seed, total_timesteps=timesteps, callbacks=[Eval()])
    total = time.perf_counter() - t
    scores = [s for _, _, s in curve]
    first, best = scores[0], max(scores)
    tail = np.asarray(scores[len(scores) // 2 :])
    level = float(tail.mean() - tail.std())  # the plateau: the late level, less its evaluation noise
    plateau = next(c for c in curve if c[2] >= level)
    aiq: dict[str, Any] = {}
    try:
        from agentroute.evaluation import evaluate

        rep = evaluate(test, {"ppo": policy})
        aiq = {"aiq": rep["policies"]["ppo"]["aiq"], "aiq_zero": rep["zero_router"]["aiq"],
               "aiq_oracle": rep["oracle"]["aiq"], "aiq_gap_closed": rep["policies"]["ppo"]["gap_closed"]}
    except ImportError:  # evaluation is optional here
        pass
    return {
        **aiq,
        "cost_weight_range": list(policy.cost_weight_range),
        "timesteps": timesteps,
        "train_s_total": total,
        "plateau_level": level,
        "plateau_timesteps": plateau[0],
        "plateau_s": plateau[1],
        "eval_s": eval_s[0],
        "score_first": first,
        "score_best": best,
        "score_final": scores[-1],
        "best_single_option": best_single,
        "oracle": oracle,
        "gap_closed": (scores[-1] - best_single) / (oracle - best_single),
        "curve": curve,
    }, (policy, test)


def latency(policy: Any, test: Any) -> dict[str, float]:
    import agentroute as ar
    from agentroute.budget import BudgetStatus, Ledger

    x = policy.inputs(policy.featurizer.transform(test.texts[:1], test.categories[:1]))[0].copy()

    def per_call(fn: Any, n: int) -> float:
        for _ in range(200):
            fn()
        runs = []
        for _ in range(5):
            t = time.perf_counter_ns()
            for _ in range(n):
                fn()
            runs.append((time.perf_counter_ns() - t) / n / 1000)
        return statistics.median(runs)

    cands = tuple(
        ar.Candidate(o, "model", rank=i, cost_estimate=Decimal("0.001")) for i, o in enumerate(policy.options)
    )
    status = BudgetStatus.of(Ledger(ar.Budget(usd="1")))

    def obs(text: str) -> ar.Observation:
        return ar.Observation(ar.TaskInfo("t", text, test.categories[0]), "model", "a.model", "a", 0, (), status,
                              cands)

    cached = obs(test.texts[0])
    texts = (f"{t} #{k}" for k, t in enumerate(test.texts * 50))  # a new text each call: never in the cache
    return {
        "act_us": per_call(lambda: policy.act(x), 20_000),
        "decide_cached_features_us": per_call(lambda: policy.decide(cached), 5_000),
        "decide_featurize_us": per_call(lambda: policy.decide(obs(next(texts))), 300),
        "input_dim": float(policy.input_dim),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--table", default="routerbench", choices=["routerbench", "llmrouter", "routellm"])
    ap.add_argument("--query-steps", type=int, default=200_000)
    ap.add_argument("--graph-steps", type=int, default=600)
    ap.add_argument("--timesteps", type=int, default=100_000)
    ap.add_argument("--eval-every", type=int, default=5_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="also write the figures here")
    args = ap.parse_args()

    table, name = _table(args.table)
    res: dict[str, Any] = {"table": name, "queries": len(table), "options": table.n_options}
    q = query_steps(table, args.query_steps)
    print(f"QueryRouting-v0 ({name}, {len(table)} queries, {table.n_options} options), no policy, 1 core:")
    print(f"  bare env   {q['bare']:>10,.0f} steps/s   (target >= 20,000)")
    print(f"  gym.make   {q['gym.make']:>10,.0f} steps/s   (with the env-checker and order wrappers)")
    g = graph_steps(args.graph_steps)
    print("GraphRouting-v0 (support graph, real runtime, simulated provider through LiteLLM):")
    print(f"  {g['steps_per_s']:,.0f} steps/s, {g['episodes_per_s']:,.0f} tasks/s (init {g['init_s']:.1f} s)")
    p, (policy, test) = ppo_plateau(table, args.timesteps, args.eval_every, args.seed)
    lo, hi = policy.cost_weight_range
    print(f"PPO on {name} (train split, λ drawn from [{lo:g}, {hi:.3g}] ('auto'), 8 envs, 1 torch thread):")
    print(f"  plateau after {p['plateau_timesteps']:,} steps, {p['plateau_s']:.1f} s of training "
          f"(total {p['timesteps']:,} steps in {p['train_s_total'] - p['eval_s']:.1f} s, evaluations excluded)")
    print(f"  held-out score (mean over λ of quality − λ·cost): first {p['score_first']:.4f}, best "
          f"{p['score_best']:.4f}, final {p['score_final']:.4f}; best single option {p['best_single_option']:.4f}, "
          f"oracle {p['oracle']:.4f}; gap closed {p['gap_closed']:.1%}")
    if p.get("aiq") is not None:
        print(f"  held-out AIQ {p['aiq']:.4f}; zero router {p['aiq_zero']:.4f}, oracle {p['aiq_oracle']:.4f} "
              f"(gap closed {p['aiq_gap_closed']:.1%})")
    lat = latency(policy, test)
    print(f"Exported policy ({int(lat['input_dim'])} inputs, 64-64 tanh):")
    print(f"  act(x) on one row       {lat['act_us']:7.1f} µs   (target <= 50 µs)")
    print(f"  decide(obs), cached     {lat['decide_cached_features_us']:7.1f} µs")
    print(f"  decide(obs), featurize  {lat['decide_featurize_us']:7.1f} µs")
    res.update(query=q, graph=g, ppo=p, latency=lat)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(res, fh, indent=1)


if __name__ == "__main__":
    main()
