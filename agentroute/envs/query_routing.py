"""``agentroute/QueryRouting-v0``: one routing decision per query over a routing table of real outcomes.

Each step shows the features of one query (and, when it varies, the price weight λ) and takes the index of an
option; the reward is what that option really did on that query, priced by the reward mode (:mod:`.rewards`).
**λ (``cost_weight``) is per USD**: costs reach the reward in USD. ``cost_unit="scale"`` divides them by the table's
cost scale instead (:func:`~agentroute.envs.rewards.cost_scale`, the mean USD cost of its priciest option), so λ reads
the same on every table (what the PPO trainer uses). ``budgetmem`` and ``boundary`` normalise costs themselves, so for
them λ has no unit. With ``cost_weight_range=(a, b)`` λ is drawn uniformly per episode and appended to the
observation, so one policy serves the whole price range.

The environment is built for speed (≥ 20,000 steps per second per core without a policy): features are computed
once into a float32 matrix, outcomes are held as Python lists, and random query indices and λ values are drawn in
batches. It never calls a model and never touches the runtime.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from agentroute.data import RoutingTable, load_builtin
from agentroute.envs.rewards import Boundary, Reward, TradeoffReward, cost_scale, difficulty, make_reward
from agentroute.errors import ConfigError, DataError

_BATCH = 4096
FEATURE_BOUND = 100.0
"""Features are clipped to [-FEATURE_BOUND, FEATURE_BOUND] so the observation space is bounded (never reached by
the built-in featurizers, whose values are O(1)); a learned policy applies the same clip when it serves."""


def resolve_table(table: RoutingTable | str | Path | None, builtin: str | None) -> RoutingTable:
    """A :class:`RoutingTable` from a table, a path, or the name of a built-in release (exactly one)."""
    if table is not None and builtin is not None:
        raise ConfigError("pass either table= or builtin=, not both", name="builtin")
    if isinstance(table, RoutingTable):
        return table
    if isinstance(table, str | Path):
        return RoutingTable.read(table)
    if builtin is not None:
        return load_builtin(builtin)
    raise ConfigError(
        "QueryRouting needs a routing table", name="table", hint="pass table=RoutingTable|path or builtin='routerbench'"
    )


def boundary_options(table: RoutingTable) -> tuple[int, int]:
    """Columns of the always-cheapest (lowest mean cost) and always-strongest (highest mean quality) options."""
    cost = np.where(np.isnan(table.cost), np.inf, table.cost)
    return int(np.argmin(cost.mean(axis=0))), int(np.argmax(table.quality.mean(axis=0)))


def table_features(table: RoutingTable, featurizer: Any = None) -> tuple[np.ndarray, Any]:
    """The float32 feature matrix of ``table`` and the (fitted) featurizer that made it.

    With no featurizer, agentroute's offline default (:class:`agentroute.features.HashingFeaturizer`, projected to
    64 dimensions) is used; a featurizer that is not fitted yet is fitted on this table's queries.
    """
    if featurizer is None:
        from agentroute.features import HashingFeaturizer

        featurizer = HashingFeaturizer(n_components=min(64, max(1, len(table) - 1)))
    try:
        featurizer.dim  # noqa: B018 - raises ConfigError before fit
    except ConfigError:
        featurizer.fit(table.texts, table.categories)
    x = np.ascontiguousarray(featurizer.transform(table.texts, table.categories), dtype=np.float32)
    return x, featurizer


class QueryRoutingEnv(gym.Env[np.ndarray, np.int64]):
    """Route queries of a routing table; see the module docstring.

    Arguments: ``table`` (a :class:`RoutingTable` or a path) or ``builtin`` (a shared release name); ``features``
    (a precomputed ``(n_queries, dim)`` matrix) or ``featurizer`` (fitted here if it is not yet; the offline
    default otherwise);
    ``cost_weight`` (a fixed λ, per USD unless ``cost_unit="scale"``) or ``cost_weight_range`` (λ drawn per
    episode: ``uniform``, or ``square`` =
    ``a + (b − a)·u²`` for more episodes at low λ, by ``cost_weight_sampling``); ``observe_cost_weight`` (append λ
    to the observation; default: only when λ varies); ``reward`` (``tradeoff``, ``budgetmem``, ``boundary`` or a
    :class:`Reward`); ``queries_per_episode``; ``order`` (``random`` with replacement, or ``sequential``).
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 - gymnasium's convention

    def __init__(
        self,
        table: RoutingTable | str | Path | None = None,
        *,
        builtin: str | None = None,
        features: np.ndarray | None = None,
        featurizer: Any = None,
        cost_weight: float | None = None,
        cost_weight_range: Sequence[float] | None = None,
        observe_cost_weight: bool | None = None,
        cost_weight_sampling: str = "uniform",
        reward: str | Reward | dict[str, Any] = "tradeoff",
        reward_kwargs: dict[str, Any] | None = None,
        baseline: str = "none",
        queries_per_episode: int = 1,
        order: str = "random",
        render_mode: str | None = None,
        cost_unit: str = "usd",
    ) -> None:
        if cost_unit not in ("usd", "scale"):
            raise ConfigError(f"cost_unit={cost_unit!r}: use 'usd' (λ per USD) or 'scale' (per cost scale)",
                              name="cost_unit")
        self.table = resolve_table(table, builtin)
        n, k = len(self.table), self.table.n_options
        if n == 0 or k == 0:
            raise DataError("QueryRouting needs a table with at least one query and one option", name="table")
        if np.isnan(self.table.cost).any():
            bad = [o for j, o in enumerate(self.table.options) if np.isnan(self.table.cost[:, j]).any()]
            raise DataError(
                f"QueryRouting: unknown costs for options {bad}",
                name="cost_usd",
                hint="convert the table with --prices PRICES.json so every option has a cost",
            )
        if cost_weight is not None and cost_weight_range is not None:
            raise ConfigError("pass cost_weight or cost_weight_range, not both", name="cost_weight")
        if cost_weight_range is None:
            lam = 0.1 if cost_weight is None else float(cost_weight)
            self.cost_weight_range = (lam, lam)
        else:
            lo, hi = (float(v) for v in cost_weight_range)
            if not (0.0 <= lo <= hi) or not np.isfinite(hi):
                raise ConfigError(f"cost_weight_range=({lo}, {hi}) must satisfy 0 <= a <= b", name="cost_weight_range")
            self.cost_weight_range = (lo, hi)
        if cost_weight_sampling not in ("uniform", "square"):
            raise ConfigError(
                f"cost_weight_sampling={cost_weight_sampling!r}: use 'uniform' or 'square'", name="cost_weight_sampling"
            )
        self.cost_weight_sampling = cost_weight_sampling
        varies = self.cost_weight_range[0] != self.cost_weight_range[1]
        self.observe_cost_weight = varies if observe_cost_weight is None else bool(observe_cost_weight)
        if queries_per_episode < 1:
            raise ConfigError(f"queries_per_episode={queries_per_episode} must be >= 1", name="queries_per_episode")
        if order not in ("random", "sequential"):
            raise ConfigError(f"order={order!r}: use 'random' or 'sequential'", name="order")
        if render_mode is not None:
            raise ConfigError("QueryRouting has no render modes", name="render_mode")
        self.render_mode = render_mode
        self.queries_per_episode = int(queries_per_episode)
        self.order = order
        self.reward_fn = make_reward(reward, **(reward_kwargs or {}))
        self._fast = type(self.reward_fn) is TradeoffReward
        if baseline not in ("none", "mean"):
            raise ConfigError(f"baseline={baseline!r}: use 'none' or 'mean'", name="baseline")
        if baseline == "mean" and not self._fast:
            raise ConfigError("baseline='mean' applies to the tradeoff reward only", name="baseline")
        self.baseline = baseline

        if features is None:
            x, self.featurizer = table_features(self.table, featurizer)
        else:
            x, self.featurizer = np.ascontiguousarray(features, dtype=np.float32), featurizer
            if x.ndim != 2 or x.shape[0] != n:
                raise ConfigError(f"features has shape {x.shape}, expected ({n}, dim)", name="features")
        self.feature_dim = int(x.shape[1])
        extra = 1 if self.observe_cost_weight else 0
        self._x = np.zeros((n, self.feature_dim + extra), dtype=np.float32)
        np.clip(x, -FEATURE_BOUND, FEATURE_BOUND, out=self._x[:, : self.feature_dim])
        self._x.flags.writeable = False

        self.cost_scale = cost_scale(self.table.cost)
        self.cost_unit = cost_unit
        self.cost_unit_usd = 1.0 if cost_unit == "usd" else self.cost_scale
        """USD per unit of cost in rewards: 1 (λ per USD) unless ``cost_unit="scale"``."""
        cn = self.table.cost / self.cost_unit_usd
        self._q: list[list[float]] = self.table.quality.tolist()
        self._c: list[list[float]] = cn.tolist()
        self._usd: list[list[float]] = self.table.cost.tolist()
        # per query, the mean over options of quality and of cost: the counterfactual baseline (see `baseline`)
        self._bq: list[float] = self.table.quality.mean(axis=1).tolist()
        self._bc: list[float] = cn.mean(axis=1).tolist()
        self._use_baseline = baseline == "mean"
        self.options = list(self.table.options)
        self.cheapest, self.strongest = boundary_options(self.table)
        self._bounds: list[Boundary] | None = None
        self._difficulty: list[str] | None = None
        if self.reward_fn.needs_boundaries:
            lo, hi = self.cheapest, self.strongest
            self._bounds = [Boundary(q[lo], c[lo], q[hi], c[hi]) for q, c in zip(self._q, self._c, strict=True)]
            succ = float(getattr(self.reward_fn, "success", 0.5))
            self._difficulty = [difficulty(b, succ) for b in self._bounds]

        low = np.full(self.feature_dim + extra, -FEATURE_BOUND, dtype=np.float32)
        high = np.full(self.feature_dim + extra, FEATURE_BOUND, dtype=np.float32)
        if extra:
            low[-1], high[-1] = self.cost_weight_range
        self.observation_space = spaces.Box(low, high, dtype=np.float32)
        self.action_space = spaces.Discrete(k)
        self._mask = np.ones(k, dtype=bool)
        self._n = n
        self._i = 0
        self._t = 0
        self._lam = self.cost_weight_range[0]
        self._seq = 0
        self._idx: list[int] = []
        self._lams: list[float] = []

    # ------------------------------------------------------------------ sampling (batched)

    def _next_index(self) -> int:
        if self.order == "sequential":
            i = self._seq
            self._seq = (self._seq + 1) % self._n
            return i
        if not self._idx:
            self._idx = self.np_random.integers(0, self._n, size=_BATCH).tolist()
        return self._idx.pop()

    def _next_lam(self) -> float:
        lo, hi = self.cost_weight_range
        if lo == hi:
            return lo
        if not self._lams:
            u = self.np_random.uniform(0.0, 1.0, size=_BATCH)
            if self.cost_weight_sampling == "square":  # more episodes at low λ, where choices change most
                u *= u
            self._lams = (lo + (hi - lo) * u).tolist()
        return self._lams.pop()

    def _obs(self) -> np.ndarray:
        obs: np.ndarray = self._x[self._i].copy()
        if self.observe_cost_weight:
            obs[-1] = self._lam
        return obs

    # ------------------------------------------------------------------ gymnasium API

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode: draw λ (when it varies) and the first query.

        ``options`` may pin ``cost_weight`` (λ) and ``query_index`` for evaluation.
        """
        super().reset(seed=seed)
        if seed is not None:  # a fresh reproducible stream: forget batched draws and reward statistics
            self._idx, self._lams, self._seq = [], [], 0
            self.reward_fn.reset()
        self._t = 0
        opts = options or {}
        self._lam = float(opts["cost_weight"]) if "cost_weight" in opts else self._next_lam()
        self._i = int(opts["query_index"]) % self._n if "query_index" in opts else self._next_index()
        return self._obs(), {"query_id": self.table.query_ids[self._i], "cost_weight": self._lam}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Route the current query to option ``action``; reward its real outcome."""
        i, a, lam = self._i, int(action), self._lam
        q = self._q[i][a]
        c = self._c[i][a]
        if self._fast:
            r = q - lam * c
            if self._use_baseline:
                r -= self._bq[i] - lam * self._bc[i]
        else:
            r = self.reward_fn(q, c, lam, self._bounds[i] if self._bounds is not None else None)
        info: dict[str, Any] = {
            "query_id": self.table.query_ids[i],
            "option": self.options[a],
            "quality": q,
            "cost_usd": self._usd[i][a],
            "cost_weight": lam,
        }
        if self._difficulty is not None:
            info["difficulty"] = self._difficulty[i]
        self._t += 1
        terminated = self._t >= self.queries_per_episode
        if not terminated:
            self._i = self._next_index()
        return self._obs(), r, terminated, False, info

    def action_masks(self) -> np.ndarray:
        """Every option is always available in a routing table (for MaskablePPO)."""
        return self._mask.copy()

    def describe(self) -> dict[str, Any]:
        """What a trained policy's card records about this environment."""
        return {
            "env": "agentroute/QueryRouting-v0",
            "options": list(self.options),
            "option_costs_usd": [float(v) for v in self.table.cost.mean(axis=0)],
            "cost_scale_usd": self.cost_scale,
            "cost_weight_range": list(self.cost_weight_range),
            "cost_weight_unit": "usd" if self.cost_unit == "usd" else "cost_scale",
            "cost_weight_sampling": self.cost_weight_sampling,
            "observe_cost_weight": self.observe_cost_weight,
            "feature_dim": self.feature_dim,
            "reward": self.reward_fn.to_dict(),
            "queries": len(self.table),
            "table": dict(self.table.meta),
        }


__all__ = ["FEATURE_BOUND", "QueryRoutingEnv", "boundary_options", "resolve_table", "table_features"]
