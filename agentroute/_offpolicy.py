"""Off-policy estimates from logged decisions: inverse propensity scoring, self-normalised IPS, doubly robust.

:func:`ips_estimate` is the one-decision form (a bandit: one choice per task); :func:`ips_from_records` reads
:class:`~agentroute.routing.DecisionRecord` s into it. :func:`sequential_estimates` is the form for tasks of several
decisions (per-decision importance weights, clipped, with bootstrap intervals over tasks); :mod:`agentroute.offpolicy`
turns logs and a target policy into its arrays. This module is numbers only: no policy, store or record parsing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from agentroute.errors import ConfigError


def ips_estimate(
    rewards: Sequence[float] | np.ndarray,
    propensities: Sequence[float] | np.ndarray,
    target_probs: Sequence[float] | np.ndarray,
    *,
    reward_hat_logged: Sequence[float] | np.ndarray | None = None,
    reward_hat_target: Sequence[float] | np.ndarray | None = None,
    clip: float | None = None,
) -> dict[str, float]:
    """Off-policy value of a target policy from logged decisions.

    ``rewards[i]`` was observed after the logging policy chose action ``a_i`` with probability
    ``propensities[i]``; ``target_probs[i]`` is the target policy's probability of that same ``a_i``. Returns
    ``ips`` (mean of ``w·r`` with ``w = target/propensity``), ``snips`` (self-normalised: ``Σ w·r / Σ w``), the
    effective sample size ``ess = (Σ w)² / Σ w²`` and ``n``. With a reward model — ``reward_hat_logged[i]`` its
    prediction for ``a_i``, ``reward_hat_target[i]`` its expectation under the target policy — also ``dr``
    (doubly robust: ``mean(r̂_target + w·(r − r̂_logged))``). ``clip`` caps the weights.
    """
    r = np.asarray(rewards, dtype=np.float64)
    p = np.asarray(propensities, dtype=np.float64)
    t = np.asarray(target_probs, dtype=np.float64)
    if not (r.shape == p.shape == t.shape) or r.ndim != 1:
        raise ConfigError("ips_estimate: rewards, propensities and target_probs must be 1-D of one length")
    if len(r) == 0:
        raise ConfigError("ips_estimate: no logged decisions", name="rewards")
    if (p <= 0).any() or (p > 1).any():
        raise ConfigError("ips_estimate: propensities must be in (0, 1]", name="propensities")
    if (t < 0).any() or (t > 1).any():
        raise ConfigError("ips_estimate: target_probs must be in [0, 1]", name="target_probs")
    w = t / p
    if clip is not None:
        w = np.minimum(w, clip)
    out = {
        "n": float(len(r)),
        "ips": float(np.mean(w * r)),
        "snips": float(np.sum(w * r) / np.sum(w)) if w.sum() > 0 else float("nan"),
        "ess": float(w.sum() ** 2 / np.sum(w * w)) if np.sum(w * w) > 0 else 0.0,
    }
    if reward_hat_logged is not None and reward_hat_target is not None:
        rl = np.asarray(reward_hat_logged, dtype=np.float64)
        rt = np.asarray(reward_hat_target, dtype=np.float64)
        out["dr"] = float(np.mean(rt + w * (r - rl)))
    return out


def ips_from_records(records: Sequence[Any], target: Any, *, reward: str = "quality") -> dict[str, float]:
    """:func:`ips_estimate` over :class:`~agentroute.routing.DecisionRecord` rows that carry a ``quality``.

    ``target(record) -> Mapping[str, float]`` gives the target policy's probabilities over the record's candidates.
    """
    rows = [r for r in records if getattr(r, reward, None) is not None]
    if not rows:
        raise ConfigError(f"no record carries a {reward!r}", name=reward)
    rewards = [float(getattr(r, reward)) for r in rows]
    props = [float(r.propensity) for r in rows]
    tprobs = [float(target(r).get(r.chosen, 0.0)) for r in rows]
    return ips_estimate(rewards, props, tprobs)


DEFAULT_CLIP = 50.0
"""The cap on a task's cumulative importance weight ``Π_{k≤t} π(a_k|s_k) / μ(a_k|s_k)`` (clipping bounds the
variance at the price of a downward bias on tasks the target follows far more often than the log did)."""


def dr_within_variance(
    n_tasks: int,
    pair_task: np.ndarray,
    pair_mu: np.ndarray,
    pair_pi: np.ndarray,
    pair_moment: np.ndarray,
    *,
    clip: float | None = DEFAULT_CLIP,
) -> np.ndarray:
    """Each task's variance of its doubly robust corrections given its first state, over the logging policy's actions.

    Pair ``k`` is one option offered at the first decision of task ``pair_task[k]``: the logging policy's probability
    ``pair_mu[k]``, the target's ``pair_pi[k]`` and ``pair_moment[k]``, the expected square of the corrections to come
    once that option is taken (``E[δ_t² + Σ_{a'} π(a')²/μ(a')·(…)]`` down the task, ``δ`` the temporal-difference
    residual ``r_t + v̂(s_{t+1}) − q̂(s_t, a_t)``). Then ``Σ_a μ(a)·min(π(a)/μ(a), clip)²·moment(a)``: the variance of
    ``Σ_t w_t δ_t`` when each ``δ`` has mean zero. It is summed over every offered option with its known propensity,
    not over the choices the log happened to make, so a heavy weight the sample never drew still counts.
    """
    mu = np.asarray(pair_mu, dtype=np.float64)
    ok = mu > 0
    w = np.zeros_like(mu)
    w[ok] = np.asarray(pair_pi, dtype=np.float64)[ok] / mu[ok]
    if clip is not None:
        w = np.minimum(w, clip)
    per_pair = np.where(ok, mu * w * w * np.maximum(np.asarray(pair_moment, dtype=np.float64), 0.0), 0.0)
    return np.bincount(np.asarray(pair_task, dtype=np.int64), weights=per_pair, minlength=n_tasks)


def _cumulative(ratios: np.ndarray, mask: np.ndarray, clip: float | None) -> np.ndarray:
    w = np.cumprod(np.where(mask, ratios, 1.0), axis=1)
    return w if clip is None else np.minimum(w, clip)


def _point(r: np.ndarray, w: np.ndarray, q: np.ndarray, v: np.ndarray, m: np.ndarray) -> tuple[float, float, float]:
    """(ips, snips, dr) of padded per-task arrays (see :func:`sequential_estimates`)."""
    n = len(r)
    wr = w * r
    ips = float(wr.sum() / n)
    den = w.sum(axis=0)
    snips = float(np.sum(np.divide(wr.sum(axis=0), den, out=np.zeros_like(den), where=den > 0)))
    prev = np.hstack([np.ones((n, 1)), w[:, :-1]])
    dr = float(np.sum(np.where(m, w * (r - q) + prev * v, 0.0)) / n)
    return ips, snips, dr


def sequential_estimates(
    rewards: np.ndarray,
    ratios: np.ndarray,
    mask: np.ndarray,
    q_logged: np.ndarray | None = None,
    v_target: np.ndarray | None = None,
    *,
    clip: float | None = DEFAULT_CLIP,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    dr_within: np.ndarray | None = None,
) -> dict[str, Any]:
    """Per-decision IPS, weighted IPS and doubly robust values of a target policy, with bootstrap intervals.

    Arrays are ``(tasks, decisions)``, a task's decisions in order and padded past its end (``mask`` false there).
    ``rewards[i, t]`` is what decision ``t`` of task ``i`` earned (a task's value is the sum of its row);
    ``ratios[i, t] = π(a_t|s_t) / μ(a_t|s_t)``. The cumulative weight ``w_t = min(Π_{k≤t} ratio_k, clip)`` weighs
    reward ``t`` (per-decision importance sampling). ``snips`` normalises each decision's weights by their sum
    over tasks (per-decision weighted IS); ``dr`` adds the reward model's control variate:
    ``Σ_t w_t (r_t − q̂(s_t, a_t)) + w_{t−1} v̂(s_t)``, with ``q̂`` the predicted reward to come after the logged
    choice and ``v̂`` its expectation under the target (without a model, ``dr`` equals ``ips``). Intervals of
    ``ips`` and ``snips`` are percentile bootstraps over tasks (``n_boot`` resamples); so is ``dr``'s unless
    ``dr_within`` (each task's variance of its corrections given its first state, :func:`dr_within_variance`) is given:
    then it is normal with the law of total variance, ``(Var_tasks v̂(s_0) + mean dr_within) / n``, the variance of
    the tasks' starting values plus that of the importance-weighted corrections over the actions the logging
    policy could have taken. ``ess`` is the effective number of tasks, ``(Σ w)² / Σ w²`` of each task's final
    weight.
    """
    r = np.asarray(rewards, dtype=np.float64)
    rho = np.asarray(ratios, dtype=np.float64)
    m = np.asarray(mask, dtype=bool)
    if r.ndim != 2 or r.shape != rho.shape or r.shape != m.shape:
        raise ConfigError("sequential_estimates: rewards, ratios and mask must be 2-D of one shape")
    n = len(r)
    if n == 0:
        raise ConfigError("sequential_estimates: no logged task", name="rewards")
    if (rho[m] < 0).any() or not np.isfinite(rho[m]).all():
        raise ConfigError("sequential_estimates: ratios must be finite and >= 0", name="ratios")
    if clip is not None and not clip > 0:
        raise ConfigError(f"clip={clip!r} must be > 0", name="clip")
    q = np.zeros_like(r) if q_logged is None else np.asarray(q_logged, dtype=np.float64)
    v = np.zeros_like(r) if v_target is None else np.asarray(v_target, dtype=np.float64)
    r, q, v = np.where(m, r, 0.0), np.where(m, q, 0.0), np.where(m, v, 0.0)
    w = _cumulative(rho, m, clip)
    raw = _cumulative(rho, m, None)
    est = _point(r, w, q, v, m)
    boots = np.empty((max(n_boot, 0), 3))
    rng = np.random.default_rng(seed)
    for b in range(len(boots)):
        idx = rng.integers(0, n, n)
        boots[b] = _point(r[idx], w[idx], q[idx], v[idx], m[idx])
    lo_q, hi_q = (1 - level) / 2 * 100, (1 + level) / 2 * 100
    out: dict[str, Any] = {}
    for j, name in enumerate(("ips", "snips", "dr")):
        lo, hi = (np.percentile(boots[:, j], [lo_q, hi_q]) if len(boots) else (np.nan, np.nan))
        out[name] = {"value": est[j], "ci_low": float(lo), "ci_high": float(hi)}
    if dr_within is not None:
        within = np.asarray(dr_within, dtype=np.float64)
        if within.shape != (n,) or (within < 0).any() or not np.isfinite(within).all():
            raise ConfigError("sequential_estimates: dr_within must hold one finite variance >= 0 per task",
                              name="dr_within")
        between = float(np.var(v[:, 0], ddof=1)) if n > 1 and v.shape[1] else 0.0
        half = float(_normal_quantile((1 + level) / 2) * np.sqrt((between + float(within.mean())) / n))
        out["dr"] = {"value": est[2], "ci_low": est[2] - half, "ci_high": est[2] + half}
    final = w[:, -1] if w.shape[1] else np.ones(n)
    sq = float(np.sum(final * final))
    out["ess"] = float(final.sum() ** 2 / sq) if sq > 0 else 0.0
    out["tasks"] = n
    out["decisions"] = int(m.sum())
    out["clip"] = clip
    out["clipped_share"] = float(np.mean(raw[m] > w[m])) if m.any() else 0.0
    out["level"] = level
    out["bootstrap"] = int(n_boot)
    return out


def _normal_quantile(p: float) -> float:
    """The standard normal quantile (``statistics.NormalDist``: no SciPy needed)."""
    from statistics import NormalDist

    return float(NormalDist().inv_cdf(p))


def bootstrap_mean(values: Sequence[float] | np.ndarray, *, n_boot: int = 1000, level: float = 0.95,
                   seed: int = 0) -> dict[str, float]:
    """``{value, ci_low, ci_high}`` of a plain mean (the logged policy's own value), percentile bootstrap."""
    x = np.asarray(values, dtype=np.float64)
    if len(x) == 0:
        raise ConfigError("bootstrap_mean: no values", name="values")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), (max(n_boot, 1), len(x)))].mean(axis=1)
    lo, hi = np.percentile(means, [(1 - level) / 2 * 100, (1 + level) / 2 * 100])
    return {"value": float(x.mean()), "ci_low": float(lo), "ci_high": float(hi)}


__all__ = ["DEFAULT_CLIP", "bootstrap_mean", "dr_within_variance", "ips_estimate", "ips_from_records",
           "sequential_estimates"]
