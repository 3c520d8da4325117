"""A state-aware predictive baseline: fitted Q-values per module, by backward induction over every tier path.

Offline, every question can be recalled along all 81 tier paths, so the value of each choice is known exactly:
:func:`collect` runs every prefix of the pipeline on every training question and keeps the feature vector the policy
would see at each module (the same :func:`~agentroute.memory.features.observation_features` the runtime and the
environment produce) together with the cost so far and the final quality and cost of each full path.
:meth:`FittedQPolicy.fit` then regresses, module by module from the last one back, the return of each tier
(``quality − λ · USD still to pay``, λ per USD, following the fitted policy afterwards) on those features, with one
ridge regression per module and tier (:class:`agentroute.policies._ridge.Ridge`). Serving is a dot product per tier.

How far the regressions may move away from the best fixed combination is the ridge shrinkage ``alpha``; by default
it is chosen by leave-one-conversation-out cross-validation on the training data (:data:`ALPHAS`), scoring each
candidate by the return its greedy policy earns on the conversation left out. Features that describe the training
conversations but not new ones then get shrunk away instead of being followed on held-out data.
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
from agentroute.memory.policies import MemoryPolicy, _module, _pick, quality
from agentroute.memory.routing import budget_status, memory_observation
from agentroute.policies._card import Arrays, Card, register
from agentroute.policies._cost import check_cost_weight
from agentroute.policies._ridge import Ridge
from agentroute.routing import Decision, Observation, PolicyBase

_T = len(TIERS)
ALPHAS: tuple[float, ...] = (10.0, 100.0, 1_000.0, 10_000.0)
"""Ridge shrinkage values :meth:`FittedQPolicy.fit` chooses from by cross-validation."""


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
    groups: np.ndarray
    """Index of each question's conversation (the folds of the cross-validation)."""


def collect(memories: Sequence[Memory], progress: Callable[[int], None] | None = None) -> Transitions:
    """Run every prefix of every gradable question and keep what the policy sees and what each path earns."""
    n_mod = len(MODULE_NAMES)
    feats: list[list[np.ndarray]] = [[] for _ in range(n_mod)]
    spent: list[list[list[float]]] = [[] for _ in range(n_mod)]
    ev_rows, ans_rows, cost_rows, groups = [], [], [], []
    free = budget_status(None, Decimal(0))
    for g, mem in enumerate(memories):
        for _, q in gradable(mem.conversation.questions):
            groups.append(g)
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
        np.asarray(groups, dtype=np.int64),
    )


def _usd(mem: Memory, state: RecallState) -> float:
    ctx = mem.usd(state.context_tokens)
    return float(ctx or 0) + float(state.call_cost_usd or 0)


@register("memory", "fitted-q")
class FittedQPolicy(MemoryPolicy):
    """Picks the tier with the highest fitted gain in ``quality − λ·cost_usd`` at each module (λ per USD)."""

    kind = "fitted-q"
    name = "memory-fitted-q"

    def __init__(
        self,
        weights: Mapping[str, np.ndarray],
        *,
        cost_weight: float,
        alpha: float | None = None,
        cv: Mapping[str, float] | None = None,
        fallback: PolicyBase | None = None,
    ) -> None:
        super().__init__(fallback)
        self.weights = {k: np.asarray(v, dtype=np.float32) for k, v in weights.items()}
        for m in MODULE_NAMES:
            w = self.weights.get(m)
            if w is None or w.shape != (N_FEATURES + 1, _T) or not np.isfinite(w).all():
                raise ConfigError(f"fitted-q weights for {m!r} missing or of the wrong shape", name=m)
        self.cost_weight = check_cost_weight(cost_weight, infinite=False)
        """λ per USD the weights were fitted at (serving reads the weights only)."""
        self.alpha = alpha
        self.cv = dict(cv or {})

    @classmethod
    def fit(
        cls,
        data: Transitions,
        *,
        cost_weight: float,
        mix: float = 0.5,
        alpha: float | None = None,
        alphas: Sequence[float] = ALPHAS,
        query_words: bool = False,
    ) -> FittedQPolicy:
        """Backward induction from the last module, regressing each tier's gain over the best fixed path's tier.

        The best fixed combination (highest mean return on the training data) is the prior: at every module the
        policy predicts how much each other tier gains over that combination's tier, with ridge shrinkage towards
        no gain, so where the features say nothing it behaves exactly like the best fixed combination.
        ``alpha=None`` picks the shrinkage from ``alphas`` by leave-one-conversation-out cross-validation (with one
        conversation only, the middle of ``alphas``); the choice and every fold's score go on the card.
        """
        if alpha is not None and alpha <= 0:
            raise ConfigError(f"alpha must be positive, got {alpha}", name="alpha")
        if alpha is None and (not alphas or min(alphas) <= 0):
            raise ConfigError(f"alphas must be positive values, got {tuple(alphas)}", name="alphas")
        ret = quality(data.evidence, data.answer, mix) - check_cost_weight(cost_weight, infinite=False) * data.cost
        x = _design(data, query_words)
        cv: dict[str, float] = {}
        if alpha is None:
            folds = np.unique(data.groups)
            if folds.size < 2:
                alpha = float(sorted(alphas)[len(alphas) // 2])
            else:
                for a in alphas:
                    got = []
                    for g in folds:
                        train, held = data.groups != g, data.groups == g
                        w = _backward(x, ret, train, float(a))
                        got.append(_greedy_return(x, ret, held, w))
                    cv[f"{a:g}"] = float(np.mean(got))
                alpha = float(max(alphas, key=lambda a: (cv[f"{a:g}"], a)))
        weights = _backward(x, ret, np.ones(ret.shape[0], dtype=bool), float(alpha))
        return cls(weights, cost_weight=cost_weight, alpha=float(alpha), cv=cv)

    def values(self, obs: Observation) -> np.ndarray:
        """Fitted gain of each tier over the prior's tier at this routing point."""
        module = _module(obs)
        x = np.concatenate([observation_features(obs), [1.0]]).astype(np.float32)
        return np.asarray(x @ self.weights[module], dtype=np.float64)

    def _decide(self, obs: Observation) -> Decision:
        v = self.values(obs)  # gains over the prior's tier, which scores 0
        ids = set(obs.ids)
        order = [j for j in np.argsort(-v, kind="stable") if TIERS[j] in ids]
        want = TIERS[order[0]] if order else min(obs.candidates, key=lambda c: c.rank).id
        gains = ", ".join(f"{t} {v[j]:+.3f}" for j, t in enumerate(TIERS))
        d = _pick(obs, want, f"fitted-q: {want}; predicted gain over the base path's tier: {gains}", self.name)
        return Decision(d.chosen, d.probabilities, d.reason, scores={t: float(v[j]) for j, t in enumerate(TIERS)},
                        evidence=d.evidence)

    def state_choices(self, data: Transitions) -> list[np.ndarray]:
        """Per module, the tier this policy picks at every recorded prefix state (shape ``(questions, 3**m)``)."""
        x = _design(data, query_words=True)  # every feature, as at serving time
        return [np.argmax(x[m] @ self.weights[mod].astype(np.float64), axis=2) for m, mod in enumerate(MODULE_NAMES)]

    def _fields(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        card: dict[str, Any] = {"cost_unit": "usd", "cost_weight": self.cost_weight, "n_features": N_FEATURES}
        if self.alpha is not None:
            card["alpha"] = self.alpha
        if self.cv:
            card["cv_return_by_alpha"] = self.cv
        return card, dict(self.weights)

    @classmethod
    def _from_fields(cls, card: Card, arrays: Arrays, *, cost_weight: float | None = None,
                     **overrides: Any) -> MemoryPolicy:
        if card.whole("n_features", N_FEATURES, lo=0) != N_FEATURES:
            raise card.error("n_features", f"is {card['n_features']}, this build's features are {N_FEATURES}",
                             hint="refit it: `agentroute memory fit --policy fitted-q`")
        weights = {m: arrays.get(m, shape=(N_FEATURES + 1, _T)) for m in MODULE_NAMES}
        cv = card.obj("cv_return_by_alpha", None)
        return cls(weights, cost_weight=card.num("cost_weight", lo=0.0) if cost_weight is None else cost_weight,
                   alpha=card.num("alpha", None, lo=0.0), cv={k: cv.num(k) for k in cv} if cv is not None else None)


def _design(data: Transitions, query_words: bool) -> list[np.ndarray]:
    """Per module, the features of every prefix state with a bias column: shape ``(questions, 3**m, F + 1)``."""
    n_q = data.evidence.shape[0]
    out = []
    for m in range(len(MODULE_NAMES)):
        x = data.features[m].reshape(n_q, _T**m, N_FEATURES).astype(np.float64)
        if not query_words:  # hashed words memorise the training conversations; cues and state generalise
            x[:, :, :HASH_DIM] = 0.0
        out.append(np.concatenate([x, np.ones((*x.shape[:2], 1))], axis=2))
    return out


def _backward(x: Sequence[np.ndarray], ret: np.ndarray, rows: np.ndarray, alpha: float) -> dict[str, np.ndarray]:
    """Fitted-Q weights from the questions ``rows`` (a boolean mask), by backward induction."""
    r = ret[rows]
    n_q = r.shape[0]
    best = int(np.argmax(r.mean(axis=0)))
    prior = [(best // _T ** (len(MODULE_NAMES) - 1 - m)) % _T for m in range(len(MODULE_NAMES))]
    value = r  # (questions, 3**M): the return of each full path under the policy fitted so far
    weights: dict[str, np.ndarray] = {}
    for m in range(len(MODULE_NAMES) - 1, -1, -1):
        n_s = _T**m
        xb = x[m][rows].reshape(n_q * n_s, -1)
        v = value.reshape(n_q * n_s, _T)
        gain = v - v[:, [prior[m]]]
        w, _ = Ridge(xb, intercept=False).weights(gain, alpha)  # the bias column is in x: shrunk like the rest
        w[:, prior[m]] = 0.0
        weights[MODULE_NAMES[m]] = w.astype(np.float32)
        greedy = np.argmax(xb @ w, axis=1)
        value = v[np.arange(n_q * n_s), greedy].reshape(n_q, n_s)
    return weights


def _greedy_return(
    x: Sequence[np.ndarray], ret: np.ndarray, rows: np.ndarray, weights: Mapping[str, np.ndarray]
) -> float:
    """Mean return of the greedy policy of ``weights`` on the questions ``rows``, walking the recorded paths."""
    q = np.flatnonzero(rows)
    state = np.zeros(q.size, dtype=np.int64)
    for m, module in enumerate(MODULE_NAMES):
        v = x[m][q, state] @ weights[module].astype(np.float64)
        state = _T * state + np.argmax(v, axis=1)
    return float(ret[q, state].mean())
