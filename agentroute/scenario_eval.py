"""Judge any policy on a graph: run it through the real runtime on a scenario's tasks and report what it bought.

:func:`evaluate_scenario` takes a ``GraphRouting-v0`` scenario (its graph, tasks, provider and budget) and policies
given as objects or as specs (:func:`resolve_policy`: a rule file, a saved policy, a baseline name, ``pheromone``
or ``bandit``) and runs every task with ``app.run`` (one task after the other, so online learners learn in order).
Per policy and per λ (``cost_weight``, **per USD**): mean ``quality`` (a task without one counts 0), mean
``cost_usd``, ``reward`` = quality − λ·cost_usd, ``truncated_rate`` (share of tasks cut off by their budget),
``violations`` (tasks that spent past a limit: must be 0) and ``paths`` (share of each agent path: the agents that
called a model, in order, joined by ``>``). A policy whose choices depend on λ (it has ``with_cost_weight``, or
it is built from a name) runs once per λ; the others run once and are scored at every λ.

It never trains anything; it imports matplotlib only in :func:`plot_scenario`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from agentroute.errors import ConfigError

BASELINES = ("cheapest", "strongest", "random", "default")
"""Baseline policies by name: always the cheapest candidate, always the strongest, uniform, the graph's default."""
ONLINE = ("pheromone", "bandit")
"""Policies that start knowing nothing and learn online during the evaluation."""
GRAPH_ENV = "agentroute/GraphRouting-v0"


def _names_hint() -> str:
    return f"a rule file (.yaml), a saved policy (.json/.npz), or one of {', '.join(BASELINES + ONLINE)}"


def _check_spec(spec: Any) -> None:
    """A ConfigError for a policy name that is neither built in nor a file (before any work is done)."""
    if isinstance(spec, str) and spec not in BASELINES + ONLINE and not Path(spec).exists() \
            and not Path(spec + ".json").exists():
        raise ConfigError(f"unknown policy {spec!r}: no such file or policy name", name=spec, hint=_names_hint())


def resolve_policy(spec: str, *, cost_weight: float, texts: Sequence[str], categories: Sequence[str | None],
                   tiers: Sequence[str], seed: int = 0) -> Any:
    """The policy that ``spec`` names, at λ ``cost_weight`` (per USD) where it takes one."""
    from agentroute import policies

    if spec in BASELINES:
        return {"cheapest": policies.Cheapest, "strongest": policies.Strongest,
                "default": policies.DeclaredDefault}.get(spec, lambda: policies.Random(seed=seed))()
    if spec == "pheromone":
        from agentroute.policies.pheromone import PheromonePolicy

        # applied in order (no background worker) and no measured latency: two runs give the same figures
        return PheromonePolicy(seed=seed, cost_weight=cost_weight, asynchronous=False)
    if spec == "bandit":
        from agentroute.features import HashingFeaturizer
        from agentroute.policies.bandit import LinUCBPolicy

        feat = HashingFeaturizer(n_components=min(32, max(1, len(texts) - 1))).fit(list(texts), list(categories))
        return LinUCBPolicy.empty(list(tiers), feat, cost_weight=cost_weight, seed=seed)
    _check_spec(spec)
    from agentroute.policies import load_policy

    pol = load_policy(spec)
    with_cw = getattr(pol, "with_cost_weight", None)
    return with_cw(cost_weight) if callable(with_cw) else pol


def _label(spec: Any, taken: Mapping[str, Any]) -> str:
    if isinstance(spec, str):
        p = Path(spec)
        label = p.stem if p.suffix else p.name
    else:
        label = str(getattr(spec, "name", type(spec).__name__))
    while label in taken:
        label += "'"
    return label


def path_of(result: Any) -> str:
    """The agents of a finished task that called a model, in order (repeats folded), joined by ``>``."""
    agents: list[str] = []
    for call in result.calls:
        if not agents or agents[-1] != call.agent:
            agents.append(call.agent)
    return ">".join(agents) or "(none)"


def _violation(result: Any) -> bool:
    s, lim = result.spent, result.limits
    return bool((lim.usd is not None and s.usd is not None and s.usd > lim.usd)
                or (lim.tokens is not None and s.tokens > lim.tokens)
                or (lim.steps is not None and s.steps > lim.steps))


def summarize(results: Sequence[Any], cost_weight: float, *, per_task: bool = False) -> dict[str, Any]:
    """The figures of one policy's run results at λ ``cost_weight`` (per USD); see the module docstring.

    ``per_task`` adds ``rewards``: each task's quality − λ·cost_usd, in task order (for paired confidence intervals).
    """
    n = max(1, len(results))
    quality = sum(float(r.quality or 0.0) for r in results) / n
    cost = sum(float(r.spent.usd or Decimal(0)) for r in results) / n
    paths = Counter(path_of(r) for r in results)
    out: dict[str, Any] = {
        "quality": quality,
        "cost_usd": cost,
        "reward": quality - cost_weight * cost,
        "truncated_rate": sum(bool(r.truncated and str(r.reason).startswith("budget")) for r in results) / n,
        "violations": sum(_violation(r) for r in results),
        "errors": sum(r.error is not None for r in results),
        "paths": {p: c / n for p, c in sorted(paths.items(), key=lambda kv: (-kv[1], kv[0]))},
        "tasks": len(results),
    }
    if per_task:
        out["rewards"] = [float(r.quality or 0.0) - cost_weight * float(r.spent.usd or Decimal(0)) for r in results]
    return out


def scenario_env(scenario: Any, **overrides: Any) -> Any:
    """The ``GraphRouting-v0`` environment of a scenario (a path or a loaded one): its graph, tasks and provider."""
    from agentroute.envs.graph_routing import GraphRoutingEnv
    from agentroute.envs.scenario import Scenario, load_scenario

    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    if sc.env_id != GRAPH_ENV:
        raise ConfigError(f"{sc.source}: env {sc.env_id!r} is not a graph; eval --scenario runs {GRAPH_ENV} "
                          "scenarios", name=sc.env_id, hint="e.g. envs/world.yaml")
    kw = sc.env_kwargs()
    if "tasks" in kw and not kw["tasks"]:
        raise ConfigError(f"{sc.source}: the scenario has no tasks (options.tasks is empty)", name="tasks",
                          hint="list tasks under options.tasks, or leave it out for the graph's example tasks")
    for key in ("cost_weight", "cost_weight_range", "reward", "reward_kwargs"):
        kw.pop(key, None)
    kw.setdefault("cost_scale_usd", 1.0)  # nothing here is scaled: skip the env's estimate
    return GraphRoutingEnv(**{**kw, **overrides})


def evaluate_scenario(scenario: Any, policies: Sequence[Any], *, cost_weights: Sequence[float] = (0.0,),
                      tasks: int | None = None, seed: int = 0, progress: bool = False, backend: str = "local",
                      workers: int | None = None) -> dict[str, Any]:
    """Run each policy on the scenario's first ``tasks`` tasks at each λ; the figures per policy (module docstring).

    ``policies`` holds specs (strings, :func:`resolve_policy`) or policy objects. ``result["policies"][name]``
    holds the figures at the first λ and ``by_cost_weight`` every λ. ``backend="ray"`` runs each policy at each λ
    it runs at on a Ray worker (``workers`` of them; each run keeps its tasks in order on one worker, so the
    figures are those of ``"local"``); the tasks' budgets are the scenario's, per task.
    """
    if not policies:
        raise ConfigError("give at least one policy", name="policy", hint=_names_hint())
    if backend not in ("local", "ray"):
        raise ConfigError(f"backend={backend!r}: use 'local' (this process) or 'ray'", name="backend")
    for spec in policies:  # a misspelt name is refused before the scenario's graph and provider are built
        _check_spec(spec)
    from agentroute.envs.scenario import Scenario, load_scenario

    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    env = scenario_env(sc)
    try:
        run = None
        if backend == "ray":
            from agentroute._ray import ray_map

            def run(units: list[_Unit], n: int) -> list[dict[str, Any]]:
                return ray_map(_unit_on_worker, [(sc, n, seed, u) for u in units], workers=workers)
        elif workers is not None:
            raise ConfigError("workers= only applies to backend='ray'", name="workers")
        result = _evaluate(env, policies, cost_weights=cost_weights, tasks=tasks, seed=seed, progress=progress,
                           run=run)
    finally:
        env.close()
    return {"scenario": getattr(scenario, "source", str(scenario)), **result}


_Unit = tuple[str, Any, float, list[float]]
"""One run: (label, policy spec or object, the λ it runs at, the λs its results are scored at)."""


def evaluate_env(env: Any, policies: Sequence[Any] | Mapping[str, Any], *, cost_weights: Sequence[float] = (0.0,),
                 tasks: int | None = None, seed: int = 0, progress: bool = False,
                 per_task: bool = False) -> dict[str, Any]:
    """:func:`evaluate_scenario` on a built ``GraphRoutingEnv`` (its graph, tasks, provider and budget).

    ``policies`` may also map the names to report to their specs or objects; ``per_task`` keeps each task's reward
    (:func:`summarize`).
    """
    return _evaluate(env, policies, cost_weights=cost_weights, tasks=tasks, seed=seed, progress=progress, run=None,
                     per_task=per_task)


def _evaluate(env: Any, policies: Sequence[Any] | Mapping[str, Any], *, cost_weights: Sequence[float],
              tasks: int | None, seed: int, progress: bool, run: Any, per_task: bool = False) -> dict[str, Any]:
    """The runs each policy needs (:data:`_Unit`), done here one after the other or by ``run(units, n)``."""
    lams = [float(x) for x in cost_weights] or [0.0]
    if any(x < 0 for x in lams):
        raise ConfigError(f"cost weights must be >= 0, got {lams}", name="cost_weight")
    n = len(env.tasks) if tasks is None else min(int(tasks), len(env.tasks))
    if n < 1:
        raise ConfigError(f"--tasks {tasks}: need at least one task", name="tasks")
    labels: dict[str, Any] = {}
    units: list[_Unit] = []
    named = list(policies.items()) if isinstance(policies, Mapping) else [(None, p) for p in policies]
    for given, spec in named:
        label = _label(spec, labels) if given is None else str(given)
        labels[label] = spec
        if _depends_on_lambda(env, spec, n, lams[0], seed):  # runs once per λ
            units += [(label, spec, lam, [lam]) for lam in lams]
        else:  # runs once, scored at every λ
            units.append((label, spec, lams[0], lams))
    figures = (run(units, n) if run is not None
               else [_run_unit(env, n, seed, u, progress, per_task) for u in units])
    out: dict[str, Any] = {label: {} for label in labels}
    for (label, *_), per_lam in zip(units, figures, strict=True):
        out[label].update(per_lam)
    for label, per_lam in out.items():
        ordered = {f"{lam:g}": per_lam[f"{lam:g}"] for lam in lams}
        out[label] = {**ordered[f"{lams[0]:g}"], "by_cost_weight": ordered}
    return {"tasks": n, "cost_weight": lams[0], "cost_weights": lams, "cost_weight_unit": "per USD",
            "budget": env.budget.as_dict(), "policies": out}


def _context(env: Any, n: int) -> tuple[list[dict[str, Any]], list[Any], list[str], list[str]]:
    inputs = [dict(t) for t in env.tasks[:n]]
    texts = [str(t.get(env.text_key, "")) for t in inputs]
    return inputs, list(env.categories[:n]), texts, [t.name for t in env.graph.tiers()]


def _policy_at(env: Any, spec: Any, n: int, lam: float, seed: int) -> tuple[Any, bool]:
    """The policy ``spec`` gives at λ ``lam``, and whether its choices depend on λ."""
    if isinstance(spec, str):
        _, cats, texts, tiers = _context(env, n)
        pol = resolve_policy(spec, cost_weight=lam, texts=texts, categories=cats, tiers=tiers, seed=seed)
        return pol, spec in ONLINE or callable(getattr(pol, "with_cost_weight", None))
    with_cw = getattr(spec, "with_cost_weight", None)
    return (with_cw(lam), True) if callable(with_cw) else (spec, False)


def _depends_on_lambda(env: Any, spec: Any, n: int, lam: float, seed: int) -> bool:
    if not isinstance(spec, str):
        return callable(getattr(spec, "with_cost_weight", None))
    return _policy_at(env, spec, n, lam, seed)[1]


def _run_unit(env: Any, n: int, seed: int, unit: _Unit, progress: bool = False,
              per_task: bool = False) -> dict[str, Any]:
    """Run one policy at one λ over the first ``n`` tasks, in order; its figures at each λ it is scored at."""
    label, spec, lam, score_at = unit
    inputs, cats, _, _ = _context(env, n)
    pol, _ = _policy_at(env, spec, n, lam, seed)
    app = env.graph.compile(pol, env.provider, budget=env.budget, text_key=env.text_key)
    results = [app.run(dict(t), budget=env.budget, category=c, task_id=f"eval-{label}-{i}")
               for i, (t, c) in enumerate(_bar(list(zip(inputs, cats, strict=True)), progress, label))]
    return {f"{x:g}": summarize(results, x, per_task=per_task) for x in score_at}


_worker_envs: dict[str, Any] = {}
"""In a Ray worker: the environment built for each scenario, so a worker builds it once."""


def _unit_on_worker(job: tuple[Any, int, int, _Unit]) -> dict[str, Any]:
    sc, n, seed, unit = job
    key = repr(sc)
    if key not in _worker_envs:
        _worker_envs[key] = scenario_env(sc)
    return _run_unit(_worker_envs[key], n, seed, unit)


def _bar(items: list[Any], progress: bool, desc: str) -> Any:
    from agentroute._progress import bar

    return bar(items, desc=desc, quiet=not progress)


def plot_scenario(result: Mapping[str, Any], path: str | Path, *, title: str = "") -> None:
    """Two panels: each policy's (cost, quality) at every λ, and its reward over λ (lines where λ-blind)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    lams = [float(x) for x in result["cost_weights"]]
    grid = np.linspace(0.0, max(lams) * 1.5 if max(lams) > 0 else 1.0, 50)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    for name, rec in result["policies"].items():
        pts = [(v["cost_usd"], v["quality"]) for v in rec["by_cost_weight"].values()]
        xs, ys = zip(*pts, strict=True)
        line = left.plot(xs, ys, marker="o", label=name)[0]
        distinct = len({(round(x, 12), round(y, 12)) for x, y in pts}) > 1
        if distinct:  # its choices change with λ: the reward at each λ it ran
            right.plot(lams, [v["reward"] for v in rec["by_cost_weight"].values()], marker="o", color=line.get_color(),
                       label=name)
        else:
            right.plot(grid, pts[0][1] - grid * pts[0][0], color=line.get_color(), label=name)
    for lam in lams:
        right.axvline(lam, color="grey", lw=0.5, ls=":")
    left.set_xlabel("mean cost per task (USD)")
    left.set_ylabel("mean quality")
    right.set_xlabel("λ (quality per USD)")
    right.set_ylabel("reward = quality − λ·cost")
    left.legend(fontsize=7)
    fig.suptitle(title or str(result.get("scenario", "")), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_scenario_report(result: Mapping[str, Any], out: str | Path) -> tuple[Path, Path]:
    """Write ``DIR/metrics.json`` and ``DIR/frontier.png``; return their paths."""
    import json

    d = Path(out)
    d.mkdir(parents=True, exist_ok=True)
    mpath, png = d / "metrics.json", d / "frontier.png"
    mpath.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    plot_scenario(result, png)
    return mpath, png


def format_rows(result: Mapping[str, Any]) -> list[str]:
    """One line per policy and λ: reward, quality, cost, truncations, violations and the commonest path."""
    lines = []
    for lam in result["cost_weights"]:
        key = f"{float(lam):g}"
        lines.append(f"λ={key} per USD ({result['tasks']} tasks):")
        rows = [(name, rec["by_cost_weight"][key]) for name, rec in result["policies"].items()]
        for name, m in sorted(rows, key=lambda r: -r[1]["reward"]):
            top = next(iter(m["paths"].items()), ("-", 0.0))
            lines.append(f"  {name:<22} reward {m['reward']:+.4f}  quality {m['quality']:.3f}  "
                         f"cost ${m['cost_usd']:.5f}  truncated {m['truncated_rate']:.0%}  "
                         f"violations {m['violations']}  top path {top[0]} ({top[1]:.0%})")
    return lines


__all__ = ["BASELINES", "ONLINE", "evaluate_env", "evaluate_scenario", "format_rows", "path_of", "plot_scenario",
           "resolve_policy", "scenario_env", "summarize", "write_scenario_report"]
