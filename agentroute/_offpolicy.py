"""Off-policy estimates from logged decisions: inverse propensity scoring, self-normalised IPS, doubly robust.

:func:`ips_from_records` reads :class:`~agentroute.routing.DecisionRecord` s (a run's, or read back from the store).
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


__all__ = ["ips_estimate", "ips_from_records"]
