"""A state-aware predictive baseline: fitted Q-values per module, by backward induction over every tier path.

Offline, every question can be recalled along all 81 tier paths, so the value of each choice is known exactly:
:func:`collect` runs every prefix of the pipeline on every training question and keeps the feature vector the policy
would see at each module (the same :func:`~agentroute.memory.features.observation_features` the runtime and the
environment produce) together with the cost so far and the final quality and cost of each full path.
:meth:`FittedQPolicy.fit` then regresses, module by module from the last one back, the return of each tier
(``quality - cost_weight * cost still to pay``, following the fitted policy afterwards) on those features, with one
ridge regression per module and tier. Serving is a dot product per tier.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np

from agentroute.errors import ConfigError
from agentroute.memory._memory import Memory
from agentroute.memory._pipeline import MODULE_NAMES
from agentroute.memory._state import TIERS, RecallState
from agentroute.memory.evaluate import gradable, score
from agentroute.memory.features import HASH_DIM, N_FEATURES, observation_features
from agentroute.memory.policies import CARD_FORMAT, _MemoryPolicy, _pick, quality
from agentroute.memory.routing import budget_status, memory_observation
from agentroute.policies.base import BasePolicy
from agentroute.routing import Decision, Observation

_T = len(TIERS)


@dataclass(frozen=True, slots=True)
class Transitions:
    """Every prefix state of every question: ``features[m]`` has shape ``(questions * 3**m, N_FEATURES)``.

    Prefixes are numbered in base 3 (``index = sum(tier_j * 3**(m-1-j))``), so state ``p`` at module ``m`` leads
    with tier ``a`` to state ``3p + a`` at module ``m + 1``.
    """

    features: tuple[np.ndarray, ...]
    cost_so_far: tuple[np.ndarray, ...]
    """USD spent before each state, per module (shape ``(questions, 3**m)``)."""
    evidence: np.ndarray
    """``(questions, 81)`` evidence recall of each full path."""
    answer: np.ndarray
    cost: np.ndarray
    """``(questions, 81)`` USD of each full path."""
    unit_usd: float


def collect(memories: Sequence[Memory], progress: Callable[[int], None] | None = None) -> Transitions:
    """Run every prefix of every gradable question and keep what the policy sees and what each path earns."""
    n_mod = len(MODULE_NAMES)
    feats: list[list[np.ndarray]] = [[] for _ in range(n_mod)]
    spent: list[list[list[float]]] = [[] for _ in range(n_mod)]
    ev_rows, ans_rows, cost_rows = [], [], []
    free = budget_status(None, Decimal(0))
    for mem in memories:
        for _, q in gradable(mem.conversation.questions):
            level: list[RecallState] = [mem.start(q.question)]
            for m, module in enumerate(MODULE_NAMES):
                spent[m].append([_usd(mem, s) for s in level])
                nxt: list[RecallState] = []
                for s in level:
                    feats[m].append(observation_features(memory_observation(mem, module, s, budget=free)))
                    nxt.extend(mem.run_module(module, t, q.question, s) for t in TIERS)
                level = nxt
            recalls = [mem.finish(s) for s in level]
            scored = [score(q, r) for r in recalls]
            ev_rows.append([e for e, _ in scored])
            ans_rows.append([a for _, a in scored])
            cost_rows.append([float(r.cost_usd or 0) for r in recalls])
            if progress is not None:
                progress(1)
    if not ev_rows:
        raise ConfigError("no graded questions to learn from", name="memories")
    return Transitions(
        tuple(np.stack(f).astype(np.float32) for f in feats),
        tuple(np.asarray(s, dtype=np.float64) for s in spent),
        np.asarray(ev_rows),
        np.asarray(ans_rows),
        np.asarray(cost_rows),
        float(memories[0].usd(1000) or 1.0),
    )


def _usd(mem: Memory, state: RecallState) -> float:
    ctx = mem.usd(state.context_tokens)
    return float(ctx or 0) + float(state.call_cost_usd or 0)


class FittedQPolicy(_MemoryPolicy):
    """Picks the tier with the highest fitted gain in ``quality - cost_weight * cost`` at each module."""

    name = "memory-fitted-q"

    def __init__(
        self, weights: Mapping[str, np.ndarray], *, cost_weight: float, fallback: BasePolicy | None = None
    ) -> None:
        super().__init__(fallback)
        self.weights = {k: np.asarray(v, dtype=np.float32) for k, v in weights.items()}
        for m in MODULE_NAMES:
            w = self.weights.get(m)
            if w is None or w.shape != (N_FEATURES + 1, _T):
                raise ConfigError(f"fitted-q weights for {m!r} missing or of the wrong shape", name=m)
        self.cost_weight = float(cost_weight)

    @classmethod
    def fit(
        cls,
        data: Transitions,
        *,
        cost_weight: float,
        mix: float = 0.5,
        alpha: float = 10.0,
        query_words: bool = False,
    ) -> FittedQPolicy:
        """Backward induction from the last module, regressing each tier's gain over the best fixed path's tier.

        The best fixed combination (highest mean return on the training data) is the prior: at every module the
        policy predicts how much each other tier gains over that combination's tier, with ridge shrinkage towards
        no gain, so where the features say nothing it behaves exactly like the best fixed combination.
        """
        ret = quality(data.evidence, data.answer, mix) - cost_weight * data.cost / data.unit_usd
        n_q = ret.shape[0]
        best = int(np.argmax(ret.mean(axis=0)))
        prior = [(best // _T ** (len(MODULE_NAMES) - 1 - m)) % _T for m in range(len(MODULE_NAMES))]
        value = ret  # (questions, 3**M): the return of each full path under the policy fitted so far
        weights: dict[str, np.ndarray] = {}
        for m in range(len(MODULE_NAMES) - 1, -1, -1):
            n_s = _T**m
            x = data.features[m].reshape(n_q * n_s, N_FEATURES).copy()
            if not query_words:  # hashed words memorise the training conversations; cues and state generalise
                x[:, :HASH_DIM] = 0.0
            xb = np.concatenate([x, np.ones((x.shape[0], 1), np.float32)], axis=1).astype(np.float64)
            v = value.reshape(n_q * n_s, _T)
            gain = v - v[:, [prior[m]]]
            reg = alpha * np.eye(xb.shape[1])
            w = np.linalg.solve(xb.T @ xb + reg, xb.T @ gain)
            w[:, prior[m]] = 0.0
            weights[MODULE_NAMES[m]] = w.astype(np.float32)
            greedy = np.argmax(xb @ w, axis=1)
            value = v[np.arange(n_q * n_s), greedy].reshape(n_q, n_s)
        return cls(weights, cost_weight=cost_weight)

    def values(self, obs: Observation) -> np.ndarray:
        """Fitted gain of each tier over the prior's tier at this routing point."""
        module = str(obs.extra.get("module", obs.point.rsplit(".", 1)[-1]))
        x = np.concatenate([observation_features(obs), [1.0]]).astype(np.float32)
        return np.asarray(x @ self.weights[module], dtype=np.float64)

    def _decide(self, obs: Observation) -> Decision:
        v = self.values(obs)  # gains over the prior's tier, which scores 0
        ids = set(obs.ids)
        order = [j for j in np.argsort(-v, kind="stable") if TIERS[j] in ids]
        want = TIERS[order[0]] if order else min(obs.candidates, key=lambda c: c.rank).id
        d = _pick(obs, want, f"fitted-q: {want} has the best value {v[TIERS.index(want)]:.3f}", self.name)
        return Decision(d.chosen, d.probabilities, d.reason, scores={t: float(v[j]) for j, t in enumerate(TIERS)},
                        evidence=d.evidence)

    def card(self) -> dict[str, Any]:
        """What is saved beside the weights."""
        return {"format": CARD_FORMAT, "policy": "fitted-q", "cost_weight": self.cost_weight,
                "n_features": N_FEATURES}

    def arrays(self) -> dict[str, np.ndarray]:
        """Weights per module."""
        return dict(self.weights)
