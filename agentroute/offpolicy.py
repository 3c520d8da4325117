"""Judge and train policies from logged decisions: off-policy evaluation, fitting from logs, promotion.

The input is the decision records a run wrote (:class:`~agentroute.routing.DecisionRecord`, read back from the
store or from ``agentroute traces export``): per decision the offered candidates, the logging policy's
probability of each, the choice, its cost; per task its quality and spend. Nothing is re-run.

* :func:`evaluate_logged` estimates what a *target* policy would have earned per task — reward
  ``quality − λ·cost_usd`` — with per-decision IPS, weighted IPS and doubly robust estimators, 95% intervals
  (bootstrap over tasks; for DR the variance over tasks and over the logging policy's actions) and the effective
  sample size. The target is asked at every logged decision on the observation rebuilt from the
  record (task features and text, position, budget left, the task's earlier choices, the offered candidates); a
  shadow recorded beside the decisions (``shadow:NAME``) is read from the records instead.
* :func:`fit_logged` fits a :class:`~agentroute.policies.logged.LoggedQPolicy` from the same records.
* :func:`promote` says whether a candidate beats a baseline with confidence.

Rewards arrive where they are settled: each model call's cost at the decision that chose its tier (memory or
agent decisions' own cost in tasks without model decisions), and the task's quality, with whatever spend is left
over, at its last decision. A reward is never charged to a decision taken before what it depends on, which
per-decision importance weighting needs (:func:`decision_costs`). Errors a user can fix are
:class:`~agentroute.errors.ConfigError` (one line, with the fix).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from agentroute._offpolicy import DEFAULT_CLIP, bootstrap_mean, dr_within_variance, sequential_estimates
from agentroute.budget import Budget, BudgetStatus, Spend
from agentroute.errors import AgentRouteError, ConfigError
from agentroute.routing import DecisionRecord, GraphSpec, Observation, TaskInfo
from agentroute.routing._policy import Policy

SHADOW_PREFIX = "shadow:"
LOW_ESS = 10.0
"""Below this effective sample size (or 5% of the tasks) an estimate carries a warning."""
IPS_RELIABLE = 0.25
"""Below this share of the tasks as effective sample size, IPS intervals under-cover (docs/learning.md, OPE)."""
ESTIMATOR = ("per-decision importance weights, cumulative weight capped at clip; ips and snips: percentile bootstrap "
             "over tasks; dr: fitted Q evaluation of the target (ridge per point and option, cross-fitted over 2 "
             "folds of tasks), normal interval with the variance over tasks and over the logging policy's actions")
_NAMED = ("cheapest", "strongest", "random")


# -- reading logs ----------------------------------------------------------------------------------------------------
def read_logged(source: str | Path, *, policy: str | None = None, graph: str | None = None) -> list[DecisionRecord]:
    """Decision records from a store URL (``sqlite:///runs.db``, ``postgresql://...``) or an export file.

    Export files are what ``agentroute traces export`` writes (``.jsonl`` or ``.parquet``). ``policy`` and
    ``graph`` filter a store's tasks as ``traces export`` does.
    """
    src = str(source)
    p = Path(src)
    if "://" in src:
        from agentroute.store.queries import decision_records, open_store

        return list(decision_records(open_store(src), policy=policy, graph=graph))
    if not p.is_file():
        raise ConfigError(f"--logged {src}: no such file, and not a store URL", name="--logged",
                          hint="give a store URL (sqlite:///runs.db) or a file of `agentroute traces export`")
    if p.suffix == ".parquet":
        rows = _parquet_rows(p)
    else:
        rows = []
        with p.open(encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except ValueError:
                        raise ConfigError(f"{p}:{n}: not a JSON line", name="--logged",
                                          hint="give a file written by `agentroute traces export`") from None
    out: list[DecisionRecord] = []
    for n, row in enumerate(rows, 1):
        try:
            rec = DecisionRecord.from_dict(row)
        except (KeyError, TypeError, ValueError) as e:
            raise ConfigError(f"{p}: row {n} is not a decision record ({type(e).__name__}: {e})", name="--logged",
                              hint="give a file written by `agentroute traces export`") from None
        if (policy is None or rec.policy == policy) and (graph is None or rec.task.get("graph") == graph):
            out.append(rec)
    return out


def _parquet_rows(p: Path) -> list[dict[str, Any]]:
    from agentroute._telemetry_render import _JSON_COLUMNS

    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigError("reading a Parquet export needs pyarrow", name="--logged",
                          hint="pip install pyarrow, or export with --format jsonl") from None
    rows: list[dict[str, Any]] = pq.read_table(p).to_pylist()
    for row in rows:
        for k in _JSON_COLUMNS:
            if isinstance(row.get(k), str):
                row[k] = json.loads(row[k])
    return rows


def records_of(results: Iterable[Any], categories: Sequence[str | None] | None = None) -> list[DecisionRecord]:
    """The decision records of finished runs (``app.run`` results), each given its task's outcome.

    A live record knows nothing of its task; this attaches what the store would: the task's quality, spend, input
    (its final state) and category (``categories[i]`` of ``results[i]``, as the run was given it).
    """
    import dataclasses

    out: list[DecisionRecord] = []
    for i, res in enumerate(results):
        cat = categories[i] if categories is not None else None
        task = {"quality": res.quality, "spent_usd": None if res.spent.usd is None else str(res.spent.usd),
                "text": dict(res.state), "features": {} if cat is None else {"category": cat},
                "truncated": bool(res.truncated), "reason": res.reason}
        out.extend(dataclasses.replace(d, task=task) for d in res.decisions)
    return out


def group_tasks(records: Iterable[DecisionRecord]) -> dict[str, list[DecisionRecord]]:
    """Records by task (in the order tasks first appear), each task's in decision order."""
    tasks: dict[str, list[DecisionRecord]] = {}
    for r in records:
        tasks.setdefault(r.task_id, []).append(r)
    for recs in tasks.values():
        recs.sort(key=lambda r: r.index)
    return tasks


def graph_spec(records: Iterable[DecisionRecord]) -> GraphSpec:
    """The options the logs offered, as the :class:`GraphSpec` a target policy is bound to."""
    agents: set[str] = set()
    tiers: set[str] = set()
    memory: set[str] = set()
    points: dict[str, set[str]] = {}
    models: dict[str, str] = {}
    graph = ""
    for r in records:
        graph = graph or str(r.task.get("graph") or "")
        ids = {c.id for c in r.candidates} | {m.id for m in r.masked}
        if r.kind == "agent":
            agents |= ids - {"__end__"}
            agents.add(r.node)
            points.setdefault(r.point, set()).update(ids)
        elif r.kind == "model":
            tiers |= ids
            for c in r.candidates:
                if isinstance(c.descriptor.get("model"), str):
                    models[c.id] = c.descriptor["model"]
        else:
            memory |= ids
    return GraphSpec(graph or "logged", sorted(agents), sorted(tiers), sorted(memory) or ("low", "mid", "high"),
                     points={p: sorted(v) for p, v in points.items()}, models=models)


def load_target(spec: str | Any, *, seed: int = 0) -> Any:
    """A target policy from its ``--policy`` spec (a policy object is taken as it is).

    ``cheapest``, ``strongest``, ``random``, ``fixed:ID``, a rules YAML, a saved policy (card or directory), or
    ``shadow:NAME`` (a shadow's recorded choices).
    """
    if not isinstance(spec, str):
        return spec
    from agentroute import policies

    if spec.startswith(SHADOW_PREFIX):
        return spec
    if spec == "random":
        return policies.Random(seed=seed)
    if spec == "cheapest":
        return policies.Cheapest()
    if spec == "strongest":
        return policies.Strongest()
    if spec.startswith("fixed:") and len(spec) > 6:
        return policies.Fixed(spec[6:])
    p = Path(spec)
    if p.suffix in (".yaml", ".yml") and p.is_file():
        return policies.RulePolicy.from_file(p)
    if p.exists() or p.with_suffix(".json").exists():
        return policies.load_policy(p)
    raise ConfigError(f"unknown policy {spec!r}", name="--policy",
                      hint=f"use {', '.join(_NAMED)}, fixed:ID, shadow:NAME, a rules YAML or a saved policy")


def _limits(first: DecisionRecord) -> Budget:
    b = first.budget_before
    try:
        return Budget(usd=b.get("usd"), tokens=b.get("tokens"), steps=b.get("steps"), seconds=b.get("seconds"))
    except (AgentRouteError, TypeError, ValueError):
        return Budget()


def _budget(d: Mapping[str, Any], limits: Budget) -> BudgetStatus:
    try:
        rem = Budget(usd=d.get("usd"), tokens=d.get("tokens"), steps=d.get("steps"), seconds=d.get("seconds"))
    except (AgentRouteError, TypeError, ValueError):
        rem = Budget()
    spent = Spend(usd=(limits.usd - rem.usd) if limits.usd is not None and rem.usd is not None else Decimal(0),
                  tokens=(limits.tokens or 0) - (rem.tokens or 0) if limits.tokens is not None else 0,
                  steps=(limits.steps or 0) - (rem.steps or 0) if limits.steps is not None else 0)
    return BudgetStatus(limits=limits, spent=spent, remaining=rem)


_TEXT_KEYS = ("question", "query", "input", "text", "prompt", "task")  # the runtime's order


def _text(inputs: Any) -> str:
    """The task text policies read, from the stored inputs (as the runtime picks it, ``text_key`` aside)."""
    if isinstance(inputs, str):
        return inputs
    if not isinstance(inputs, Mapping):
        return ""
    for k in _TEXT_KEYS:
        if isinstance(inputs.get(k), str):
            return str(inputs[k])
    return next((v for v in inputs.values() if isinstance(v, str)), "")


def observations(task: Sequence[DecisionRecord]) -> list[Observation]:
    """The observation each decision of one task was made on, rebuilt from its records.

    The task's text is there when content was captured; its budget limits are what its first decision had left.
    Point-specific extras (a model call's token counts) are not recorded, so a target reading them sees none.
    """
    if not task:
        return []
    info = task[0].task
    feats = dict(info.get("features") or {})
    cat = feats.get("category")
    ti = TaskInfo(id=task[0].task_id, text=_text(info.get("text")), category=None if cat is None else str(cat),
                  features=feats)
    limits = _limits(task[0])
    out: list[Observation] = []
    history: list[tuple[str, str]] = []
    for r in task:
        out.append(Observation(task=ti, kind=r.kind, point=r.point, node=r.node, step=r.step,
                               history=tuple(history), budget=_budget(r.budget_before, limits),
                               candidates=r.candidates, masked=r.masked))
        history.append((r.point, r.chosen))
    return out


# -- rewards ---------------------------------------------------------------------------------------------------------
def _f(x: Any) -> float | None:
    try:
        return None if x is None else float(x)
    except (TypeError, ValueError):
        return None


def task_quality(task: Sequence[DecisionRecord]) -> float | None:
    """The task's quality (the store's), else the last quality one of its decisions recorded."""
    q = _f(task[0].task.get("quality")) if task else None
    if q is not None:
        return q
    return next((r.quality for r in reversed(task) if r.quality is not None), None)


def decision_costs(task: Sequence[DecisionRecord]) -> list[float]:
    """USD each decision of a task is charged with (see the module doc); they add up to the task's spend.

    A cost must be charged to a decision taken once it was settled, never earlier: an agent's step (charged to the
    decision that chose the agent) holds model calls decided after it, so model decisions carry their own calls'
    cost, memory decisions theirs in a task without model decisions, agent decisions theirs only where nothing
    else was decided; whatever spend is left (fixed steps, calls decided elsewhere) goes to the last decision.
    """
    kinds = {r.kind for r in task}
    leaf = "model" if "model" in kinds else "memory" if "memory" in kinds else "agent"
    costs = [float(r.cost_usd or 0) if r.kind == leaf else 0.0 for r in task]
    spent = _f(task[0].task.get("spent_usd")) if task else None
    if spent is not None and costs:
        costs[-1] += spent - sum(costs)
    return costs


def _shadow_name(target: Any) -> str | None:
    return target[len(SHADOW_PREFIX):] if isinstance(target, str) and target.startswith(SHADOW_PREFIX) else None


def _target_probs(target: Policy | str, obs: Observation, rec: DecisionRecord) -> dict[str, float]:
    ids = [c.id for c in rec.candidates]
    if rec.reason.startswith("forced:"):  # nothing else was affordable: any policy takes the same default
        return {i: float(rec.probabilities.get(i, 0.0)) for i in ids}
    if isinstance(target, str):
        sh = rec.shadow.get(target)
        if sh is None:
            raise ConfigError(f"decision {rec.point} of task {rec.task_id} has no shadow {target!r}",
                              name="--policy", hint=f"shadows recorded there: {', '.join(rec.shadow) or 'none'}")
        probs = dict(sh.get("probabilities") or {})
        chosen = str(sh.get("chosen", ""))
        if not probs and chosen:
            probs = {chosen: 1.0}
    else:
        d = target.decide(obs)
        probs = dict(d.probabilities) if d.probabilities else {d.chosen: 1.0}
        chosen = d.chosen
    if chosen not in ids:
        raise ConfigError(f"policy {getattr(target, 'name', target)!r} chose {chosen!r} at {rec.point}, which the "
                          f"log never offered there (offered: {', '.join(ids)})", name="--policy",
                          hint="evaluate a policy over the options the logged graph has")
    total = sum(max(float(probs.get(i, 0.0)), 0.0) for i in ids)
    if total <= 0:
        return {i: float(i == chosen) for i in ids}
    return {i: max(float(probs.get(i, 0.0)), 0.0) / total for i in ids}


def _check_logs(tasks: Mapping[str, Sequence[DecisionRecord]]) -> None:
    if not tasks:
        raise ConfigError("the log holds no decision", name="--logged",
                          hint="run tasks with tracing to a store (configure_tracing(store_url=...)) first")
    if not any(sum(r.probabilities.values()) > 0 for recs in tasks.values() for r in recs):
        raise ConfigError("the log holds no propensities: its decisions were recorded without probabilities",
                          name="--logged", hint="log under a policy that records its probabilities "
                                                "(e.g. EpsilonGreedy or random)")


# -- evaluation ------------------------------------------------------------------------------------------------------
class _Prepared:
    """Logged tasks as padded arrays plus everything a reward model needs (one pass over the records)."""

    def __init__(self, tasks: Mapping[str, Sequence[DecisionRecord]], target: Policy | str) -> None:
        self.tasks = [t for t in tasks.values() if task_quality(t) is not None]
        self.skipped = len(tasks) - len(self.tasks)
        if not self.tasks:
            raise ConfigError("no logged task has a quality: nothing to evaluate", name="--logged",
                              hint="log tasks with a scorer or a simulated provider, so each has a quality")
        n, width = len(self.tasks), max(len(t) for t in self.tasks)
        self.mask = np.zeros((n, width), dtype=bool)
        self.ratios = np.ones((n, width))
        self.cost = np.zeros((n, width))
        self.quality = np.zeros(n)
        self.obs: list[Observation] = []
        self.rows: list[tuple[int, int]] = []
        self.tprobs: list[dict[str, float]] = []
        self.records: list[DecisionRecord] = []
        uncovered: list[str] = []
        for i, task in enumerate(self.tasks):
            self.quality[i] = task_quality(task) or 0.0
            costs = decision_costs(task)
            for t, (rec, obs) in enumerate(zip(task, observations(task), strict=True)):
                tp = _target_probs(target, obs, rec)
                lp = rec.probabilities
                bad = [a for a, p in tp.items() if p > 0 and float(lp.get(a, 0.0)) <= 0]
                if bad:
                    uncovered.append(f"{rec.point} of task {rec.task_id} ({', '.join(bad)})")
                    continue
                self.mask[i, t] = True
                self.ratios[i, t] = tp.get(rec.chosen, 0.0) / float(lp[rec.chosen])
                self.cost[i, t] = costs[t]
                self.obs.append(obs)
                self.rows.append((i, t))
                self.tprobs.append(tp)
                self.records.append(rec)
        if uncovered:
            raise ConfigError(
                f"the logged propensities do not cover the target: at {len(uncovered)} decision(s) it may choose an "
                f"option the log never could (first: {uncovered[0]})", name="--policy",
                hint="log under an exploring policy (EpsilonGreedy) so every offered option has a propensity > 0")

    def rewards(self, cost_weight: float) -> np.ndarray:
        r = -cost_weight * self.cost
        for i in range(len(self.tasks)):
            last = int(np.flatnonzero(self.mask[i])[-1]) if self.mask[i].any() else 0
            r[i, last] += self.quality[i]
        return np.where(self.mask, r, 0.0)

    def to_come(self) -> tuple[np.ndarray, np.ndarray]:
        """Per decision row: the task's quality and the cost still to come (this decision's included)."""
        c = np.where(self.mask, self.cost, 0.0)
        rest = np.flip(np.cumsum(np.flip(c, axis=1), axis=1), axis=1)
        q = np.array([self.quality[i] for i, _ in self.rows])
        cost = np.array([rest[i, t] for i, t in self.rows])
        return q, cost


def _reward_model(prep: _Prepared, cost_weight: float, *, alpha: float, folds: int = 2,
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """q̂ (reward to come after the logged choice, the target acting from then on) and v̂ (the target's expectation).

    Fitted Q evaluation (:func:`~agentroute.policies.logged.fitted_q`), cross-fitted over folds of tasks. Regressing
    the logged reward to come would estimate the logging policy's continuation instead, the wrong control
    variate for the doubly robust estimator (and a biased direct estimate).
    """
    from agentroute.policies.logged import ObsFeatures, RewardModel, fitted_q, target_values

    feats = ObsFeatures.learn(prep.obs)
    x = np.array([feats.vector(o) for o in prep.obs]) if prep.obs else np.zeros((0, feats.width))
    keys = [RewardModel.key(r.point, r.chosen) for r in prep.records]
    rows = len(prep.rows)
    last = {i: j for j, (i, _) in enumerate(prep.rows)}  # each task's last row: where its quality arrives
    own = (np.array([prep.quality[i] if last[i] == j else 0.0 for j, (i, _) in enumerate(prep.rows)]),
           np.array([prep.cost[i, t] for i, t in prep.rows]))
    nxt = np.array([j + 1 if j + 1 < rows and prep.rows[j + 1][0] == i else -1 for j, (i, _) in enumerate(prep.rows)],
                   dtype=np.int64)
    pair_row = np.array([j for j, r in enumerate(prep.records) for _ in r.candidates], dtype=np.int64)
    pair_key = [RewardModel.key(r.point, c.id) for r in prep.records for c in r.candidates]
    pair_p = np.array([prep.tprobs[j][c.id] for j, r in enumerate(prep.records) for c in r.candidates])
    task_of = np.array([i for i, _ in prep.rows], dtype=np.int64)
    fold = np.random.default_rng(seed).integers(0, folds, len(prep.tasks))[task_of] if len(prep.tasks) > folds \
        else np.zeros(rows, dtype=np.int64)
    passes = int(prep.mask.sum(axis=1).max()) - 1 if rows else 0
    q_hat = np.zeros((len(prep.tasks), prep.mask.shape[1]))
    v_hat = np.zeros_like(q_hat)
    for f in np.unique(fold):
        train = np.flatnonzero(fold != f) if (fold != f).any() else np.arange(rows)
        model = fitted_q(x, keys, prep.to_come(), own, nxt, (pair_row, pair_key, pair_p), train, passes=passes,
                         alpha=alpha)
        held = np.flatnonzero(fold == f)
        sel = np.isin(pair_row, held)
        vq, vc = target_values(model, x, pair_row[sel], [k for k, s in zip(pair_key, sel, strict=True) if s],
                               pair_p[sel], rows)
        lq, lc = model.predict(x[held], [keys[j] for j in held])
        for k, j in enumerate(held):
            i, t = prep.rows[j]
            q_hat[i, t] = float(lq[k] - cost_weight * lc[k])
            v_hat[i, t] = float(vq[j] - cost_weight * vc[j])
    return q_hat, v_hat


def _dr_within(prep: _Prepared, rewards: np.ndarray, q_hat: np.ndarray, v_hat: np.ndarray,
               clip: float | None, *, alpha: float) -> np.ndarray:
    """Each task's variance of its DR corrections over the logging policy's actions (:func:`dr_within_variance`).

    The second moment to come after each (point, option) is fitted backwards like the target's value
    (:func:`~agentroute.policies.logged.fitted_q`): a decision's squared residual plus, at the next decision,
    ``Σ_a π(a)²/μ(a)`` times the moment after ``a``; it is read at each task's first decision for every offered option.
    """
    from agentroute.policies.logged import ObsFeatures, RewardModel, fitted_q

    feats = ObsFeatures.learn(prep.obs)
    x = np.array([feats.vector(o) for o in prep.obs]) if prep.obs else np.zeros((0, feats.width))
    rows, n = len(prep.rows), len(prep.tasks)
    nxt = np.array([j + 1 if j + 1 < rows and prep.rows[j + 1][0] == i else -1 for j, (i, _) in enumerate(prep.rows)],
                   dtype=np.int64)
    pair_row = np.array([j for j, r in enumerate(prep.records) for _ in r.candidates], dtype=np.int64)
    pair_key = [RewardModel.key(r.point, c.id) for r in prep.records for c in r.candidates]
    pi = np.array([prep.tprobs[j][c.id] for j, r in enumerate(prep.records) for c in r.candidates])
    mu = np.array([float(r.probabilities.get(c.id, 0.0)) for r in prep.records for c in r.candidates])
    v_next = np.hstack([v_hat[:, 1:], np.zeros((n, 1))])
    d2 = np.array([(rewards[i, t] + v_next[i, t] - q_hat[i, t]) ** 2 for i, t in prep.rows])
    zero = np.zeros(rows)
    model = fitted_q(x, [RewardModel.key(r.point, r.chosen) for r in prep.records], (d2, zero), (d2, zero), nxt,
                     (pair_row, pair_key, np.divide(pi * pi, mu, out=np.zeros_like(pi), where=mu > 0)),
                     np.arange(rows), passes=int(prep.mask.sum(axis=1).max()) - 1 if rows else 0, alpha=alpha)
    first = np.flatnonzero(np.array([t == 0 for _, t in prep.rows], dtype=bool)[pair_row])
    moment, _ = model.predict(x[pair_row[first]], [pair_key[k] for k in first])
    task = np.array([i for i, _ in prep.rows], dtype=np.int64)
    return dr_within_variance(n, task[pair_row[first]], mu[first], pi[first], moment, clip=clip)


def evaluate_logged(
    records: Iterable[DecisionRecord],
    policy: Any,
    *,
    cost_weight: float = 0.0,
    clip: float | None = DEFAULT_CLIP,
    n_boot: int = 1000,
    level: float = 0.95,
    alpha: float = 1.0,
    seed: int = 0,
) -> dict[str, Any]:
    """Off-policy value of ``policy`` on logged ``records``: mean per-task reward ``quality − λ·cost_usd``.

    Returns ``ips``, ``snips`` and ``dr``, each ``{value, ci_low, ci_high}`` at ``level`` (ips and snips: percentile
    bootstrap over tasks; dr: normal, its variance that of the tasks' starting values plus that of the weighted
    corrections over every option the logging policy could have taken, see :func:`_dr_within`), ``ess``, ``logged``
    (the logging policy's own mean reward, with its interval), counts, ``clip`` and the share of decision weights it
    capped. ``policy`` is anything :func:`load_target` takes. Raises
    :class:`ConfigError` on an empty log, a log without propensities, a policy naming options the log lacks, or
    propensities that do not cover the policy's choices.
    """
    from agentroute.policies._cost import check_cost_weight

    lam = check_cost_weight(cost_weight, name="--cost-weight", infinite=False)
    tasks = group_tasks(records)
    _check_logs(tasks)
    target = load_target(policy, seed=seed)
    bound: Policy | str
    if _shadow_name(target) is not None:
        bound = str(_shadow_name(target))
        name = str(target)
    else:
        bound = target if isinstance(target, Policy) else Policy(target)
        bound.bind(graph_spec(r for t in tasks.values() for r in t))
        name = bound.name
    prep = _Prepared(tasks, bound)
    rewards = prep.rewards(lam)
    q_hat, v_hat = _reward_model(prep, lam, alpha=alpha, seed=seed)
    out = sequential_estimates(rewards, prep.ratios, prep.mask, q_hat, v_hat, clip=clip, n_boot=n_boot,
                               level=level, seed=seed, dr_within=_dr_within(prep, rewards, q_hat, v_hat, clip,
                                                                        alpha=alpha))
    logged = bootstrap_mean(rewards.sum(axis=1), n_boot=n_boot, level=level, seed=seed)
    policies_seen = sorted({r.policy for t in prep.tasks for r in t})
    notes = []
    if out["ess"] < max(LOW_ESS, 0.05 * out["tasks"]):
        notes.append(f"effective sample size {out['ess']:.1f} of {out['tasks']} tasks: the target seldom does what the "
                     "log did, so its intervals rest on few tasks (IPS worst); log more tasks or explore more")
    if out["ess"] < IPS_RELIABLE * out["tasks"]:
        notes.append(f"ips interval unreliable: effective sample size {out['ess']:.1f} is under "
                     f"{IPS_RELIABLE:.0%} of the {out['tasks']} tasks, so the rare heavy weights that carry IPS are "
                     "mostly missing from the log and its bootstrap interval is too narrow; read dr (or snips)")
    if out["clipped_share"] > 0.05:
        notes.append(f"{out['clipped_share']:.0%} of the decision weights hit the clip ({clip}): "
                     "the estimates lean low")
    return {"policy": name, "cost_weight": lam, **out, "logged": {**logged, "policies": policies_seen},
            "skipped_tasks": prep.skipped, "warnings": notes, "estimator": ESTIMATOR}


# -- learning from logs ----------------------------------------------------------------------------------------------
FIT_NAMES = ("q-linear", "q-linear-iw")
"""``q-linear``: a reward model fitted on the logs, greedy at λ; ``q-linear-iw``: the same, each decision
weighted by ``1 / propensity`` (options the logging policy seldom took count as much as its favourites)."""


def fit_logged(records: Iterable[DecisionRecord], name: str = "q-linear", *, cost_weight: float = 0.0,
               alpha: float = 1.0, clip: float = DEFAULT_CLIP) -> Any:
    """A :class:`~agentroute.policies.logged.LoggedQPolicy` fitted on logged records (features read from them)."""
    from agentroute.policies._cost import check_cost_weight
    from agentroute.policies.logged import LoggedQPolicy, ObsFeatures, RewardModel

    if name not in FIT_NAMES:
        raise ConfigError(f"unknown policy {name!r} to fit from logs", name="--policy",
                          hint=f"use {' or '.join(FIT_NAMES)}")
    lam = check_cost_weight(cost_weight, name="--cost-weight", infinite=False)
    tasks = group_tasks(records)
    _check_logs(tasks)
    obs: list[Observation] = []
    keys: list[str] = []
    q: list[float] = []
    c: list[float] = []
    w: list[float] = []
    kept = 0
    for task in tasks.values():
        quality = task_quality(task)
        if quality is None:
            continue
        kept += 1
        costs = decision_costs(task)
        rest = np.flip(np.cumsum(np.flip(np.asarray(costs))))
        for t, (rec, o) in enumerate(zip(task, observations(task), strict=True)):
            p = float(rec.propensity)
            if p <= 0 or rec.reason.startswith("forced:"):
                continue
            obs.append(o)
            keys.append(RewardModel.key(rec.point, rec.chosen))
            q.append(quality)
            c.append(float(rest[t]))
            w.append(min(1.0 / p, clip) if name == "q-linear-iw" else 1.0)
    if not obs:
        raise ConfigError("no logged decision has a quality and a propensity: nothing to fit on", name="--logged",
                          hint="log tasks with a scorer or a simulated provider under a policy that records "
                               "its probabilities")
    feats = ObsFeatures.learn(obs)
    x = np.array([feats.vector(o) for o in obs])
    model = RewardModel.fit(x, keys, np.asarray(q), np.asarray(c), np.asarray(w), alpha=alpha)
    return LoggedQPolicy(feats, model, cost_weight=lam, name=f"logged:{name}",
                         meta={"tasks": kept, "decisions": len(obs), "fit": name, "alpha": alpha})


# -- promotion -------------------------------------------------------------------------------------------------------
def promote(records: Iterable[DecisionRecord], candidate: Any, baseline: Any = "logged", *,
            cost_weight: float = 0.0, clip: float | None = DEFAULT_CLIP, n_boot: int = 1000, level: float = 0.95,
            seed: int = 0) -> dict[str, Any]:
    """Whether ``candidate`` beats ``baseline`` with confidence (its DR interval's lower end above their value).

    ``baseline="logged"`` is the policy that wrote the log, valued by its own mean reward; any other baseline is
    valued off-policy too (its ``dr`` value).
    """
    recs = list(records)
    cand = evaluate_logged(recs, candidate, cost_weight=cost_weight, clip=clip, n_boot=n_boot, level=level,
                           seed=seed)
    if isinstance(baseline, str) and baseline == "logged":
        base_value = cand["logged"]["value"]
        base = {"policy": "logged (" + ", ".join(cand["logged"]["policies"]) + ")", **cand["logged"]}
    else:
        b = evaluate_logged(recs, baseline, cost_weight=cost_weight, clip=clip, n_boot=n_boot, level=level,
                            seed=seed)
        base_value = b["dr"]["value"]
        base = {"policy": b["policy"], **b["dr"]}
    lower = cand["dr"]["ci_low"]
    return {"promote": bool(lower > base_value), "candidate": {"policy": cand["policy"], **cand["dr"],
                                                               "ess": cand["ess"]},
            "baseline": base, "baseline_value": base_value, "margin": lower - base_value,
            "cost_weight": cand["cost_weight"], "level": level, "tasks": cand["tasks"], "warnings": cand["warnings"]}


__all__ = ["FIT_NAMES", "SHADOW_PREFIX", "evaluate_logged", "fit_logged", "graph_spec", "group_tasks",
           "load_target", "observations", "promote", "read_logged", "records_of"]
