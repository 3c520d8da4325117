"""Prequential (online) evaluation of a routing policy over a stream built from a routing table.

For each query in turn the policy decides among the table's options, sees *only* the outcome of the option it
chose (bandit feedback, through ``policy.feedback``), and the next query comes. Every query goes through the one
routing point (:class:`~agentroute.table_routing.TableRouter`: the kernel, the candidates of
:func:`~agentroute.table_routing.candidates_of`, the same observation a sweep and a graph run give). **λ
(``cost_weight``) is per USD**: the reward is ``quality − λ·cost_usd`` (``cost_unit="scale"`` reads λ in the
table's cost scale instead: the mean USD cost of its priciest option, as before). A drift scenario permutes the
options' outcomes among the options from step ``drift_at`` on, to show recovery.

The results file is a stable contract: ``step,query_id,option,quality,cost_usd`` (one row per step; an unknown
cost is an empty field). This module never imports the runtime; the policy is the only thing under test.
"""

from __future__ import annotations

import csv
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from agentroute.errors import ConfigError, DataError
from agentroute.policies.target import target_of
from agentroute.routing import Feedback, Observation, RouterPolicy
from agentroute.table_routing import TableRouter, candidates_of, lambda_extra

if TYPE_CHECKING:
    from agentroute.data.table import RoutingTable

RESULT_COLUMNS = ("step", "query_id", "option", "quality", "cost_usd")
POLICY_NAMES = ("pheromone", "bandit", "random", "cheapest", "strongest")
ORDERS = ("given", "shuffle")
COST_UNITS = ("usd", "scale")


@dataclass
class ReplayResult:
    """What a replay produced: per step the query (row of the table), the option taken and its outcome."""

    policy: str
    query_ids: list[str]
    rows: np.ndarray
    """Table row of each step's query, ``(n_steps,)``."""
    chosen: np.ndarray
    """Option index the policy took at each step."""
    quality: np.ndarray
    cost: np.ndarray
    """USD of each step (NaN where the table does not know it)."""
    options: list[str]
    cost_weight: float
    """λ per USD."""
    cost_scale: float
    """The table's cost scale (the mean USD cost of its priciest option), for reference."""
    drift_at: int | None = None
    permutation: list[int] | None = None
    """After the drift, option ``j`` yields the table's outcomes of option ``permutation[j]``."""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def reward(self) -> np.ndarray:
        """``quality − λ·cost`` per step, λ per USD (unknown costs count as 0)."""
        c = np.nan_to_num(self.cost, nan=0.0)
        out: np.ndarray = self.quality - self.cost_weight * c
        return out

    def write_csv(self, path: str | Path) -> Path:
        """Write ``step,query_id,option,quality,cost_usd`` (the stable results format)."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        with p.open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(RESULT_COLUMNS)
            for s in range(len(self.rows)):
                c = float(self.cost[s])
                w.writerow([s, self.query_ids[s], self.options[int(self.chosen[s])], repr(float(self.quality[s])),
                            "" if math.isnan(c) else repr(c)])
        return p


def outcome_matrix(table: RoutingTable, rows: np.ndarray, drift_at: int | None, perm: Sequence[int] | None,
                   cost_weight: float, cost_unit_usd: float = 1.0) -> np.ndarray:
    """Reward ``quality − λ·cost/cost_unit_usd`` of every option at every step, drift applied.

    Shape ``(n_steps, n_options)``; λ is per USD unless ``cost_unit_usd`` says otherwise.
    """
    q = table.quality[rows]
    c = np.nan_to_num(table.cost[rows], nan=0.0)
    r: np.ndarray = q - cost_weight * c / cost_unit_usd
    if drift_at is not None and perm is not None:
        r[drift_at:] = r[drift_at:][:, list(perm)]
    return r


def derangement(k: int, rng: np.random.Generator) -> list[int]:
    """A random permutation of ``range(k)`` that moves every option (the identity when ``k < 2``)."""
    if k < 2:
        return list(range(k))
    while True:
        p = rng.permutation(k)
        if not np.any(p == np.arange(k)):
            return [int(x) for x in p]


def replay(
    table: RoutingTable,
    policy: RouterPolicy,
    *,
    cost_weight: float = 0.0,
    order: str = "given",
    seed: int = 0,
    drift_at: int | None = None,
    point: str = "model",
    limit: int | None = None,
    progress: bool = False,
    cost_unit: str = "usd",
) -> ReplayResult:
    """Run ``policy`` over the table's queries, one at a time, with bandit feedback; see the module docstring.

    ``cost_weight`` is λ per USD (``cost_unit="scale"``: in units of the table's cost scale).
    """
    if order not in ORDERS:
        raise ConfigError(f"replay: order must be one of {ORDERS}, got {order!r}", name="order")
    if not (isinstance(cost_weight, int | float) and math.isfinite(cost_weight) and cost_weight >= 0):
        raise ConfigError(f"replay: cost weight must be a number >= 0, got {cost_weight!r}", name="cost_weight")
    if cost_unit not in COST_UNITS:
        raise ConfigError(f"replay: cost_unit must be one of {COST_UNITS}, got {cost_unit!r}", name="cost_unit")
    n = len(table)
    if n == 0:
        raise DataError("replay: the table has no queries", name="table")
    rng = np.random.default_rng(seed)
    rows = np.arange(n) if order == "given" else rng.permutation(n)
    if limit is not None:
        rows = rows[: max(0, int(limit))]
    steps = len(rows)
    perm: list[int] | None = None
    if drift_at is not None:
        if not 0 <= drift_at < steps:
            raise ConfigError(f"replay: drift_at={drift_at} must be in [0, {steps})", name="drift_at")
        perm = derangement(table.n_options, np.random.default_rng(seed + 1))
    scale = float(table.cost_scale())
    lam = float(cost_weight) / (scale if cost_unit == "scale" else 1.0)
    driver = TableRouter(table, policy, extra=lambda_extra(lam, policy), point=point, node="replay")
    chosen = np.zeros(steps, dtype=np.int64)
    quality = np.zeros(steps)
    cost = np.zeros(steps)
    qids: list[str] = []
    it: Any = range(steps)
    if progress and sys.stderr.isatty():
        from tqdm import tqdm

        it = tqdm(it, desc=f"replay {driver.policy.name}", unit="q")
    for s in it:
        i = int(rows[s])
        qids.append(str(table.query_ids[i]))
        choice = driver.decide(i)
        j = driver.column_of(choice)
        src = perm[j] if perm is not None and drift_at is not None and s >= drift_at else j
        qv, cv = float(table.quality[i, src]), float(table.cost[i, src])
        chosen[s], quality[s], cost[s] = j, qv, cv
        driver.settle(choice, qv, cv)
    flush = getattr(policy, "flush", None)
    if callable(flush):
        flush()
    meta: dict[str, Any] = {"order": order, "seed": seed, "cost_weight_unit": "usd"}
    held = target_of(policy)
    if held is not None:  # held to a target: what it was told and where its λ ended
        meta["target"] = held
    return ReplayResult(driver.policy.name, qids, rows, chosen, quality, cost, list(table.options), lam, scale,
                        drift_at, perm, meta)


def target_summary(res: ReplayResult) -> dict[str, Any] | None:
    """Target, tolerance and the realised rate of the replay itself; ``None`` when no target held the policy.

    The rates are read from the replay's own steps (the cost of each step, or whether it took the strong option),
    not from the controller's counts; λ is where the controller ended.
    """
    info = res.meta.get("target")
    if not isinstance(info, dict):
        return None
    w = min(int(info["warmup"]), len(res.rows))
    if info["kind"] == "spend":
        x = np.nan_to_num(res.cost, nan=0.0)
    else:
        strong = info.get("strong")
        x = (res.chosen == res.options.index(strong)).astype(np.float64) if strong in res.options else \
            np.zeros(len(res.rows))
    after = float(x[w:].mean()) if len(x) > w else None
    target, tol = float(info["target"]), float(info["tolerance"])
    return {**info, "steps_after_warmup": len(x) - w, "realised": after,
            "realised_all": float(x.mean()) if len(x) else None,
            "relative_error": None if after is None or target == 0 else (after - target) / target,
            "within_tolerance": None if after is None else abs(after - target) <= tol * target}


def summarize(res: ReplayResult, table: RoutingTable, *, warmup: int = 300, window: int = 100) -> dict[str, Any]:
    """Mean reward after ``warmup`` steps against the best single option in hindsight (per drift segment).

    After a drift: the steps until the rolling mean (``window``) is back within 10% of the new best.
    """
    r = res.reward
    full = outcome_matrix(table, res.rows, res.drift_at, res.permutation, res.cost_weight)
    end = len(r) if res.drift_at is None else res.drift_at
    lo = min(warmup, max(end - 1, 0))
    seg_best = float(full[lo:end].mean(axis=0).max()) if end > lo else math.nan
    out: dict[str, Any] = {
        "policy": res.policy,
        "steps": len(r),
        "mean_reward": float(r.mean()),
        "mean_reward_after_warmup": float(r[lo:end].mean()) if end > lo else math.nan,
        "best_single_after_warmup": seg_best,
        "best_single_option": res.options[int(full[lo:end].mean(axis=0).argmax())] if end > lo else None,
        "ratio_to_best": float(r[lo:end].mean() / seg_best) if end > lo and seg_best > 0 else math.nan,
        "mean_quality": float(res.quality.mean()),
        "mean_cost_usd": float(np.nanmean(res.cost)) if not np.all(np.isnan(res.cost)) else math.nan,
    }
    target = target_summary(res)
    if target is not None:
        out["target"] = target
    if res.drift_at is not None:
        post = full[res.drift_at:]
        best_post = float(post.mean(axis=0).max())
        rp = r[res.drift_at:]
        roll = np.convolve(rp, np.ones(window) / window, mode="valid") if len(rp) >= window else np.array([])
        hit = np.flatnonzero(roll >= 0.9 * best_post) if best_post > 0 else np.array([])
        out.update({
            "drift_at": res.drift_at,
            "best_single_after_drift": best_post,
            "recovery_steps": int(hit[0] + window) if hit.size else None,
            "mean_reward_after_recovery": float(rp[warmup:].mean()) if len(rp) > warmup else math.nan,
            "ratio_after_recovery": float(rp[warmup:].mean() / best_post) if len(rp) > warmup and best_post > 0
            else math.nan,
        })
    return out


def make_policy(name: str, table: RoutingTable, *, seed: int = 0, cost_weight: float = 0.0, **kw: Any) -> Any:
    """A policy for ``agentroute replay --policy NAME``: a built-in name or the path of a fitted policy file.

    ``cost_weight`` is λ per USD (each policy gets it in the unit it prices costs in). ``pheromone`` gets its task
    types and intent classifier from the table's categories (labels only, never outcomes); ``bandit`` is
    :class:`agentroute.policies.bandit.LinUCBPolicy` when installed, else a small built-in LinUCB on the same
    hashed features.
    """
    from agentroute.policies.baselines import Cheapest, Random, Strongest

    scale = float(table.cost_scale())
    if name == "pheromone":
        from agentroute.policies.pheromone import PheromonePolicy

        pol = PheromonePolicy(seed=seed, cost_weight=cost_weight, cost_scale=scale, asynchronous=False, **kw)
        labels = [c for c in table.categories]
        if any(c is not None for c in labels):
            pol.fit_intent(table.texts, labels)
            pol.prime_intent(table.query_ids, table.texts)
        return pol
    if name == "bandit":
        return _bandit(table, seed=seed, cost_weight=cost_weight)
    if name == "random":
        return Random(seed)
    if name == "cheapest":
        return Cheapest()
    if name == "strongest":
        return Strongest()
    p = Path(name)
    if p.exists() or p.with_suffix(".json").exists():
        from agentroute.policies import load_policy

        return load_policy(p, cost_weight=cost_weight)  # policies take λ per USD, as replay does
    raise ConfigError(f"unknown replay policy {name!r}", name=name,
                      hint=f"use one of {', '.join(POLICY_NAMES)} or the path of a fitted policy")


def _bandit(table: RoutingTable, *, seed: int, cost_weight: float) -> Any:
    """A bandit starting empty; ``cost_weight`` is λ per USD."""
    try:
        from agentroute.policies.bandit import LinUCBPolicy
    except ImportError:
        return MiniLinUCB.for_table(table, seed=seed, cost_weight=cost_weight)
    from agentroute.features import HashingFeaturizer

    # Start empty: fitting the bandit on the table would replay the very outcomes the stream is about to reveal.
    # Its featurizer sees the texts only (IDF and projection; no labels, no outcomes).
    feat = HashingFeaturizer(1024, n_components=48, seed=seed, use_category=False).fit(list(table.texts))
    return LinUCBPolicy.empty(list(table.options), feat, cost_weight=cost_weight, seed=seed,
                              cost_scale=table.cost_scale())


class MiniLinUCB:
    """Disjoint LinUCB (Li et al. 2010) on hashed text features projected to ``dim`` directions.

    The stand-in ``bandit`` of replays when :mod:`agentroute.policies.bandit` is not installed. Its featurizer is
    fitted on the stream's texts only (IDF and projection: no labels, no outcomes). Deterministic.
    """

    name = "bandit"
    version = "mini-linucb-1"

    def __init__(self, options: Sequence[str], features: dict[str, np.ndarray], *, alpha: float = 1.0,
                 ridge: float = 1.0, cost_weight: float = 0.0, cost_scale: float = 1.0) -> None:
        self.options = list(options)
        self.features = features
        self.alpha, self.cost_weight, self.cost_scale = float(alpha), float(cost_weight), float(cost_scale)
        d = len(next(iter(features.values()))) if features else 1
        self.a_inv = {o: np.eye(d) / ridge for o in self.options}
        self.b = {o: np.zeros(d) for o in self.options}

    @classmethod
    def for_table(cls, table: RoutingTable, *, seed: int = 0, cost_weight: float = 0.0, dim: int = 32,
                  alpha: float = 1.0) -> MiniLinUCB:
        """Featurize the table's texts once (unsupervised) and start with no knowledge of the options.

        ``cost_weight`` is λ per USD (kept in the table's cost-scale units, the unit this bandit scores in).
        """
        from agentroute.features import HashingFeaturizer

        texts = [str(t) for t in table.texts]
        feat = HashingFeaturizer(2048, n_components=min(dim, max(1, len(texts) - 1)), use_category=False, seed=seed)
        x = feat.fit(texts).transform(texts).astype(np.float64)
        x = np.hstack([x, np.ones((len(texts), 1))])
        features = {str(q): x[i] for i, q in enumerate(table.query_ids)}
        scale = table.cost_scale()
        return cls(table.options, features, alpha=alpha, cost_weight=cost_weight * scale, cost_scale=scale)

    def decide(self, obs: Observation) -> Any:
        """The candidate with the highest upper confidence bound on its reward."""
        from agentroute.routing import Decision, one_hot

        x = self.features[obs.task.id]
        best, best_u = obs.candidates[0].id, -math.inf
        for c in obs.candidates:
            if c.id not in self.a_inv:
                continue
            ai = self.a_inv[c.id]
            ax = ai @ x
            u = float((ai @ self.b[c.id]) @ x + self.alpha * math.sqrt(max(float(x @ ax), 0.0)))
            if u > best_u:
                best, best_u = c.id, u
        return Decision(best, one_hot(obs, best), reason=f"linucb: {best} (ucb={best_u:.3f})")

    def feedback(self, fb: Feedback) -> None:
        """Sherman–Morrison update of the chosen option with reward ``quality − λ·cost/scale``."""
        o = fb.decision.chosen
        if o not in self.a_inv or fb.quality is None:
            return
        x = self.features[fb.observation.task.id]
        c = float(fb.cost_usd) if fb.cost_usd is not None else 0.0
        lam = float(fb.observation.extra.get("cost_weight", self.cost_weight))
        scale = float(fb.observation.extra.get("cost_scale", self.cost_scale))
        r = fb.quality - lam * c / scale
        ai = self.a_inv[o]
        ax = ai @ x
        self.a_inv[o] = ai - np.outer(ax, ax) / (1.0 + float(x @ ax))
        self.b[o] = self.b[o] + r * x


__all__ = [
    "ORDERS",
    "POLICY_NAMES",
    "RESULT_COLUMNS",
    "MiniLinUCB",
    "ReplayResult",
    "candidates_of",
    "derangement",
    "make_policy",
    "outcome_matrix",
    "replay",
    "summarize",
    "target_summary",
]
