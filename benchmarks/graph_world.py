"""The graph world: the best fixed path depends on the task's class and on λ, and a policy that reads the cue gains.

Every fixed path of ``agentroute.examples.world_graph`` (research or not, verify or not, a model tier per agent:
18 rule policies) runs the same support questions through the real runtime on ``providers.Simulated(seed)``.
Each task's hidden class comes from ``sim.task_class``. Per λ (per USD) the table prints the best path per class
and over all tasks, and the headroom a policy has over the best fixed path: the **class oracle** (each hidden class
on its own best path: no policy can see the class, so this is a ceiling) and the **cue ceiling** (each group a
policy *can* tell apart, cue word or not × long or not, on its own best path).

``--done-check`` is issue 14's Done criterion: for each λ it trains MaskablePPO on ``envs/world.yaml`` at that λ
(what ``agentroute train --scenario envs/world.yaml --cost-weight λ`` runs; ``--trainer bopo`` for BoPO; or takes
``--trained P1 P2`` or ``--policy-dir/world_<trainer>_l<λ>.npz``), then judges it with the code of
``agentroute eval --scenario`` beside all 18 fixed paths and the baselines (cheapest, strongest, random, bandit,
pheromone), on the scenario's tasks and on held-out questions, with a paired bootstrap 95% interval of the trained
policy's reward minus the best fixed path's (the best one *on the evaluation tasks*, which favours the fixed path)
and minus the best baseline's.

Run: ``python benchmarks/graph_world.py [--tasks 100] [--lambdas 0 20 30 40 60 80] [--seed 0] [--json out.json]``;
``--write-rules DIR`` writes the 18 paths as rule files (named like ``rl-wl-vs``: research large, writer large,
verifier small); ``--done-check [--lambdas 20 30] [--tasks 100] [--timesteps 16000] [--policy-dir DIR]`` (about
12 minutes of CPU: two trainings, then 2 x 100 tasks x 30 runs of a policy).
"""

from __future__ import annotations

import argparse
import itertools
import json
import pathlib
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from agentroute import Budget, providers
from agentroute.examples import support_tasks, world_graph
from agentroute.policies import RulePolicy

BUDGET = Budget(usd="0.02", tokens=6000, steps=6)
SCENARIO = pathlib.Path(__file__).resolve().parents[1] / "envs" / "world.yaml"
PATHS = (("writer",), ("writer", "verifier"), ("research", "writer"), ("research", "writer", "verifier"))
BASELINES = ("cheapest", "strongest", "random", "bandit", "pheromone")


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


def short_name(agents: Sequence[str], tiers: Sequence[str]) -> str:
    """``rl-wl-vs`` for research large, writer large, verifier small."""
    return "-".join(f"{a[0]}{t[0]}" for a, t in zip(agents, tiers, strict=True))


def fixed_path(agents: Sequence[str], tiers: Sequence[str]) -> tuple[str, RulePolicy]:
    """A rule policy that always takes ``agents`` with ``tiers`` (one per agent)."""
    d = rule_dict(agents, tiers)
    return d["name"], RulePolicy.from_dict(d)


def path_specs() -> list[tuple[str, dict[str, Any]]]:
    """The 18 fixed paths of the world graph: (short name, rule dict)."""
    return [(short_name(agents, tiers), rule_dict(agents, tiers)) for agents in PATHS
            for tiers in itertools.product(("small", "large"), repeat=len(agents))]


def all_paths() -> list[tuple[str, RulePolicy]]:
    """The 18 fixed paths of the world graph, as rule policies named by their long names."""
    return [(d["name"], RulePolicy.from_dict(d)) for _, d in path_specs()]


def write_rules(d: pathlib.Path) -> list[pathlib.Path]:
    """Write the 18 fixed paths as rule files into ``d``; return their paths."""
    import yaml

    d.mkdir(parents=True, exist_ok=True)
    out = []
    for name, rd in path_specs():
        p = d / f"{name}.yaml"
        p.write_text(yaml.safe_dump(rd, sort_keys=False), encoding="utf-8")
        out.append(p)
    return out


def headroom(args: argparse.Namespace) -> dict[str, Any]:
    """Every fixed path on the tasks; best path per class, over all, the class oracle and the cue ceiling per λ."""
    tasks = support_tasks(args.tasks, seed=args.seed)
    sim = providers.Simulated(seed=args.seed)
    texts = [t["question"] for t in tasks]
    classes = [sim.task_class(t) for t in texts]
    hints = ["+".join(("cue" if c else "plain", "long" if g else "short")) for c, g in map(sim.world.hint, texts)]
    t0 = time.perf_counter()
    runs: dict[str, list[tuple[float, float]]] = {}
    for name, rd in path_specs():
        app = world_graph().compile(RulePolicy.from_dict(rd), sim, budget=BUDGET)
        runs[name] = [(float(r.quality or 0.0), float(r.spent.usd or 0))
                      for r in (app.run({"question": t}) for t in texts)]
    groups = sorted(set(hints))
    print(f"{len(tasks)} tasks ({classes.count('hard')} hard) x {len(runs)} fixed paths in "
          f"{time.perf_counter() - t0:.0f}s; hard share per group: " +
          ", ".join(f"{g} {sum(c == 'hard' for c, h in zip(classes, hints, strict=True) if h == g)}/"
                    f"{hints.count(g)}" for g in groups))
    report: dict[str, Any] = {"tasks": len(tasks), "hard": classes.count("hard"), "seed": args.seed, "best": {},
                              "groups": {g: {"tasks": hints.count(g), "hard": sum(
                                  c == "hard" for c, h in zip(classes, hints, strict=True) if h == g)}
                                  for g in groups}}
    for lam in args.lambdas:
        def value(name: str, keep: Sequence[bool], lam: float = lam) -> float:
            sel = [q - lam * c for (q, c), k in zip(runs[name], keep, strict=True) if k]
            return sum(sel) / max(1, len(sel))

        def best_by(labels: Sequence[str]) -> tuple[float, dict[str, str]]:
            total, chosen = 0.0, {}
            for g in sorted(set(labels)):
                keep = [x == g for x in labels]
                b = max(runs, key=lambda n, keep=keep: value(n, keep))  # type: ignore[misc]
                chosen[g] = b
                total += value(b, keep) * sum(keep)
            return total / len(labels), chosen

        every = [True] * len(texts)
        best = max(runs, key=lambda n: value(n, every))
        oracle, per_class = best_by(classes)
        ceiling, per_hint = best_by(hints)
        row = {"fixed": {"path": best, "reward": value(best, every)}, "class_oracle": oracle, "cue_ceiling": ceiling,
               "per_class": {c: {"path": p, "reward": value(p, [k == c for k in classes])}
                             for c, p in per_class.items()}, "per_hint": per_hint}
        report["best"][f"{lam:g}"] = row
        print(f"λ={lam:<4g} best fixed {best} {row['fixed']['reward']:+.3f} | class oracle {oracle:+.3f} "
              f"({oracle - row['fixed']['reward']:+.3f}) | cue ceiling {ceiling:+.3f} "
              f"({ceiling - row['fixed']['reward']:+.3f}) | per class: " +
              ", ".join(f"{c} {v['path']} {v['reward']:+.3f}" for c, v in row["per_class"].items()) +
              " | per hint: " + ", ".join(f"{h} {p}" for h, p in per_hint.items()))
    report["paths"] = {n: {"quality": float(np.mean([q for q, _ in rs])),
                           "cost_usd": float(np.mean([c for _, c in rs])),
                           **{f"quality_{k}": float(np.mean([q for (q, _), c in zip(rs, classes, strict=True)
                                                             if c == k] or [0.0])) for k in ("easy", "hard")}}
                       for n, rs in runs.items()}
    return report


def paired_ci(a: Sequence[float], b: Sequence[float], *, n_boot: int = 2000, seed: int = 0) -> dict[str, float]:
    """Mean of ``a − b`` per task and its 95% percentile bootstrap interval (tasks resampled, pairs kept)."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    rng = np.random.default_rng(seed)
    boots = d[rng.integers(0, len(d), size=(n_boot, len(d)))].mean(axis=1)
    return {"diff": float(d.mean()), "ci_low": float(np.quantile(boots, 0.025)),
            "ci_high": float(np.quantile(boots, 0.975))}


def done_check(args: argparse.Namespace) -> dict[str, Any]:
    """Train (or load) one policy per λ, judge it against every fixed path and baseline, with paired intervals."""
    from agentroute.envs.scenario import load_scenario
    from agentroute.policies import load_policy
    from agentroute.scenario_eval import evaluate_env, format_rows, scenario_env
    from agentroute.training import fit_env_policy

    sc = load_scenario(SCENARIO)
    pdir = pathlib.Path(args.policy_dir)
    rules = write_rules(pdir / "fixed")
    if args.trained and len(args.trained) != len(args.lambdas):
        raise SystemExit(f"--trained: give one policy per λ ({len(args.lambdas)}), got {len(args.trained)}")
    trained: dict[str, Any] = {}
    for i, lam in enumerate(args.lambdas):
        path = pathlib.Path(args.trained[i]) if args.trained else pdir / f"world_{args.trainer}_l{lam:g}.npz"
        if not path.exists():
            t0 = time.perf_counter()
            kw = {k: v for k, v in sc.env_kwargs().items() if k not in ("cost_weight", "cost_weight_range")}
            algo = sc.train.get("algo", "maskable_ppo")
            if args.trainer == "bopo":  # what `agentroute train --scenario envs/world.yaml --bopo` runs
                from agentroute.bopo import fit_bopo

                fit_bopo(kw, cost_weight_usd=lam, algo=algo, total_timesteps=args.timesteps, seed=args.seed, out=path)
            else:  # what `agentroute train --scenario envs/world.yaml --cost-weight λ` runs
                fit_env_policy(sc.env_id, env_kwargs={**kw, "cost_weight": lam}, algo=algo,
                               total_timesteps=args.timesteps, seed=args.seed, out=path)
            print(f"trained {path} ({args.trainer}, {args.timesteps} steps at λ={lam:g}) in "
                  f"{time.perf_counter() - t0:.0f}s")
        trained[f"trained@{lam:g}"] = load_policy(str(path))
    report: dict[str, Any] = {"lambdas": list(args.lambdas), "tasks": args.tasks, "timesteps": args.timesteps}
    sets = {"scenario": None, "held-out": support_tasks(args.tasks, seed=args.seed + 1)}
    for label, tasks in sets.items():
        env = scenario_env(sc, **({} if tasks is None else {"tasks": tasks}))
        try:
            specs: dict[str, Any] = {**trained, **{p.stem: str(p) for p in rules}, **{b: b for b in BASELINES}}
            res = evaluate_env(env, specs, cost_weights=args.lambdas, tasks=args.tasks, seed=args.seed,
                               per_task=True)
        finally:
            env.close()
        print(f"-- {label} tasks ({res['tasks']}):")
        shown = {**res, "policies": {k: v for k, v in res["policies"].items()
                                     if k in trained or k in BASELINES}}
        rows: dict[str, Any] = {}
        for lam in args.lambdas:
            key = f"{lam:g}"
            pol = {n: r["by_cost_weight"][key] for n, r in res["policies"].items()}
            best_fixed = max((n for n in pol if n not in trained and n not in BASELINES),
                             key=lambda n: pol[n]["reward"])
            best_base = max(BASELINES, key=lambda n: pol[n]["reward"])
            me = pol[f"trained@{key}"]
            rows[key] = {
                "trained": {k: me[k] for k in ("reward", "quality", "cost_usd", "paths")},
                "best_fixed": {"name": best_fixed,
                               **{k: pol[best_fixed][k] for k in ("reward", "quality", "cost_usd")}},
                "best_baseline": {"name": best_base, "reward": pol[best_base]["reward"]},
                "vs_fixed": paired_ci(me["rewards"], pol[best_fixed]["rewards"], seed=args.seed),
                "vs_baseline": paired_ci(me["rewards"], pol[best_base]["rewards"], seed=args.seed),
                "baselines": {b: pol[b]["reward"] for b in BASELINES},
            }
            shown["policies"][f"fixed {best_fixed}"] = res["policies"][best_fixed]
        print("\n".join(format_rows(shown)))
        for key, r in rows.items():
            vf, vb = r["vs_fixed"], r["vs_baseline"]
            print(f"λ={key}: trained@{key} {r['trained']['reward']:+.4f} − best fixed {r['best_fixed']['name']} "
                  f"{r['best_fixed']['reward']:+.4f} = {vf['diff']:+.4f} [{vf['ci_low']:+.4f}, {vf['ci_high']:+.4f}]; "
                  f"− best baseline {r['best_baseline']['name']} = {vb['diff']:+.4f} "
                  f"[{vb['ci_low']:+.4f}, {vb['ci_high']:+.4f}]; paths {r['trained']['paths']}")
        report[label] = rows
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", type=int, default=100)
    ap.add_argument("--lambdas", type=float, nargs="+", default=None,
                    help="λ per USD (default 0 20 30 40 60 80; with --done-check 20 30)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    ap.add_argument("--write-rules", default=None, metavar="DIR",
                    help="Only write the 18 fixed paths as rule files into DIR (for `agentroute eval --scenario`).")
    ap.add_argument("--done-check", action="store_true",
                    help="Train (or load) a policy per λ and judge it against every fixed path and baseline.")
    ap.add_argument("--timesteps", type=int, default=16000, help="--done-check: PPO steps per λ")
    ap.add_argument("--trainer", choices=("ppo", "bopo"), default="ppo",
                    help="--done-check: train with plain MaskablePPO or BoPO (when --trained is not given)")
    ap.add_argument("--trained", nargs="+", default=None, metavar="POLICY",
                    help="--done-check: trained policies to judge, one per λ (else trained into --policy-dir)")
    ap.add_argument("--policy-dir", default="world-done",
                    help="--done-check: where trained policies and the 18 fixed rule files are written")
    args = ap.parse_args()
    if args.lambdas is None:
        args.lambdas = [20.0, 30.0] if args.done_check else [0.0, 20.0, 30.0, 40.0, 60.0, 80.0]
    if args.write_rules:
        print(f"wrote {len(write_rules(pathlib.Path(args.write_rules)))} rule files to {args.write_rules}")
        return
    report = done_check(args) if args.done_check else headroom(args)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=1)


if __name__ == "__main__":
    main()
