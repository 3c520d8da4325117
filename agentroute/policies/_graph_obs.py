"""How a routing point of a graph becomes a fixed-size observation: the encoding shared by the env and serving.

:class:`GraphObsSpec` fixes the layout for one compiled graph: the action vocabulary (every agent, ``__end__``,
every model tier, every memory tier: one discrete action each), the agents (for the current-agent one-hot), the
query feature size, the budget dimensions, and the cost scale. :meth:`GraphObsSpec.encode` turns an
:class:`~agentroute.routing.Observation` into a dict of float32 arrays, and :meth:`GraphObsSpec.mask` says which
actions are affordable candidates right now. ``GraphRouting-v0`` and a served :class:`LearnedPolicy` call the same
two methods, so training and serving cannot drift apart.

numpy only: a served policy imports this without Gymnasium or torch (:meth:`GraphObsSpec.spaces` imports Gymnasium
inside). It lives with the policies because a served policy needs it; :mod:`agentroute.envs.graph_obs` re-exports it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from agentroute.budget import DIMENSIONS
from agentroute.routing import KINDS, Observation

FEATURE_BOUND = 100.0
CANDIDATE_FEATURES = ("present", "rank", "cost", "affordability")
"""Per action slot (flattened slot-major into ``candidates``): 1 when it is a candidate now; its rank among the
candidates (0 cheapest, 1 strongest); its worst-case cost estimate in cost-scale units (capped at 10); that cost as a
share of the USD left (capped at 1)."""
END = "__end__"


def _f(x: Any) -> float | None:
    return None if x is None else float(x)


@dataclass(frozen=True)
class GraphObsSpec:
    """The observation layout of one graph (see the module docstring)."""

    actions: tuple[str, ...]
    agents: tuple[str, ...]
    feature_dim: int
    cost_scale_usd: float
    max_steps: int = 16
    observe_cost_weight: bool = False
    cost_weight_range: tuple[float, float] = (0.0, 0.0)

    @classmethod
    def for_app(cls, app: Any, *, feature_dim: int, cost_scale_usd: float, **kw: Any) -> GraphObsSpec:
        """The layout of a compiled :class:`~agentroute.runtime.App`."""
        spec = app.spec
        seen: dict[str, None] = {}
        for a in (*spec.agents, END, *spec.tiers, *spec.memory_tiers):
            seen.setdefault(a, None)
        return cls(tuple(seen), tuple(spec.agents), int(feature_dim), float(cost_scale_usd), **kw)

    @property
    def keys(self) -> tuple[str, ...]:
        """Observation keys in Gymnasium's (sorted) order, the order a flattened network input follows."""
        base = ["agent", "budget", "candidates", "kind", "query", "step"]
        if self.observe_cost_weight:
            base.append("cost_weight")
        return tuple(sorted(base))

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Shape of each observation entry."""
        out: dict[str, tuple[int, ...]] = {
            "agent": (len(self.agents),),
            "budget": (len(DIMENSIONS),),
            "candidates": (len(self.actions) * len(CANDIDATE_FEATURES),),
            "kind": (len(KINDS),),
            "query": (self.feature_dim,),
            "step": (1,),
        }
        if self.observe_cost_weight:
            out["cost_weight"] = (1,)
        return out

    def spaces(self) -> Any:
        """The Gymnasium ``Dict`` observation space (imports Gymnasium)."""
        from gymnasium import spaces

        lo, hi = self.cost_weight_range
        bounds = {"query": (-FEATURE_BOUND, FEATURE_BOUND), "candidates": (0.0, 10.0), "cost_weight": (lo, hi)}
        return spaces.Dict(
            {
                k: spaces.Box(*bounds.get(k, (0.0, 1.0)), shape=s, dtype=np.float32)
                for k, s in self.shapes().items()
            }
        )

    def zeros(self) -> dict[str, np.ndarray]:
        """An all-zero observation (the shape of every entry)."""
        return {k: np.zeros(s, dtype=np.float32) for k, s in self.shapes().items()}

    # ------------------------------------------------------------------ encoding

    def mask(self, obs: Observation) -> np.ndarray:
        """Which actions are affordable candidates at this routing point."""
        m = np.zeros(len(self.actions), dtype=bool)
        index = self._index
        for c in obs.candidates:
            j = index.get(c.id)
            if j is not None:
                m[j] = True
        return m

    @property
    def _index(self) -> dict[str, int]:
        return self.__dict__["_index_cache"]  # type: ignore[no-any-return]

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index_cache", {a: i for i, a in enumerate(self.actions)})

    def encode(self, obs: Observation, features: np.ndarray, cost_weight: float = 0.0) -> dict[str, np.ndarray]:
        """The observation dict of one routing point, given the task's query ``features``."""
        out = self.zeros()
        np.clip(np.asarray(features, dtype=np.float32).reshape(-1), -FEATURE_BOUND, FEATURE_BOUND, out=out["query"])
        if obs.node in self.agents:
            out["agent"][self.agents.index(obs.node)] = 1.0
        out["kind"][KINDS.index(obs.kind)] = 1.0
        out["step"][0] = min(1.0, obs.step / max(1, self.max_steps))
        st = obs.budget
        for i, dim in enumerate(DIMENSIONS):
            limit, left = getattr(st.limits, dim), getattr(st.remaining, dim)
            lim, rem = _f(limit), _f(left)
            if lim is None or rem is None:
                out["budget"][i] = 1.0
            else:
                out["budget"][i] = min(1.0, max(0.0, rem / lim)) if lim > 0 else 0.0
        usd_left = _f(st.remaining.usd)
        cands = out["candidates"].reshape(len(self.actions), len(CANDIDATE_FEATURES))
        top = max((c.rank for c in obs.candidates), default=0)
        bottom = min((c.rank for c in obs.candidates), default=0)
        span = max(1, top - bottom)
        index = self._index
        for c in obs.candidates:
            j = index.get(c.id)
            if j is None:
                continue
            cost = _f(c.cost_estimate)
            cands[j, 0] = 1.0
            cands[j, 1] = (c.rank - bottom) / span
            if cost is not None:
                cands[j, 2] = min(10.0, cost / self.cost_scale_usd)
                if usd_left is not None:
                    cands[j, 3] = 1.0 if usd_left <= 0 else min(1.0, cost / usd_left)
        if self.observe_cost_weight:
            out["cost_weight"][0] = cost_weight
        return out

    def flatten(self, encoded: Mapping[str, np.ndarray], out: np.ndarray | None = None) -> np.ndarray:
        """One network input row: the entries flattened in :attr:`keys` order (as stable-baselines3 does)."""
        parts = [encoded[k].reshape(-1) for k in self.keys]
        if out is None:
            return np.concatenate(parts).astype(np.float32, copy=False)
        np.concatenate(parts, out=out)
        return out

    @property
    def input_dim(self) -> int:
        """Length of a flattened observation."""
        return int(sum(int(np.prod(s)) for s in self.shapes().values()))

    # ------------------------------------------------------------------ persistence

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form, for a policy card."""
        return {
            "actions": list(self.actions),
            "agents": list(self.agents),
            "feature_dim": self.feature_dim,
            "cost_scale_usd": self.cost_scale_usd,
            "max_steps": self.max_steps,
            "observe_cost_weight": self.observe_cost_weight,
            "cost_weight_range": list(self.cost_weight_range),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GraphObsSpec:
        """Inverse of :meth:`to_dict`."""
        lo, hi = (float(v) for v in d.get("cost_weight_range", (0.0, 0.0)))
        return cls(
            tuple(str(a) for a in d["actions"]),
            tuple(str(a) for a in d["agents"]),
            int(d["feature_dim"]),
            float(d["cost_scale_usd"]),
            int(d.get("max_steps", 16)),
            bool(d.get("observe_cost_weight", False)),
            (lo, hi),
        )


def action_ids(spec: GraphObsSpec, mask: np.ndarray) -> Sequence[str]:
    """The action ids a mask allows."""
    return [a for a, ok in zip(spec.actions, mask, strict=True) if ok]


__all__ = ["CANDIDATE_FEATURES", "FEATURE_BOUND", "GraphObsSpec", "action_ids"]
