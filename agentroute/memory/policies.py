"""Policies for memory routing points: rules by question type, predictive baselines, and a served MLP (from PPO).

All are plain :class:`~agentroute.policies.base.BasePolicy` objects: they decide over ``obs.candidates`` of kind
``"memory"`` and never pick a masked tier (when their favourite is unaffordable they take the strongest affordable
tier below it, else the cheapest). At non-memory points they defer to ``fallback`` (cheapest by default), so one can
be composed into a graph-wide policy.

Quality is ``mix * evidence_recall + (1 - mix) * answer_recall``; cost is in *units* of 1,000 context tokens at the
answering model's input price, so ``cost_weight`` (lambda) reads as "recall given up per 1,000 tokens' worth".
Saved policies are a JSON card plus, for weights, a ``.npz`` of plain arrays (loaded with ``allow_pickle=False``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agentroute.errors import ConfigError, DataError
from agentroute.memory._pipeline import MODULE_NAMES
from agentroute.memory._state import TIERS
from agentroute.memory.evaluate import COMBOS, ComboTable
from agentroute.memory.features import N_FEATURES, observation_features, query_features, tiers_so_far
from agentroute.policies.base import BasePolicy
from agentroute.policies.baselines import Cheapest
from agentroute.routing import Decision, Observation

CARD_FORMAT = "agentroute-memory-policy/1"
QUESTION_TYPES = ("temporal", "inference", "list", "factual")
_TYPE_PATTERNS = (
    (
        "temporal",
        re.compile(
            r"^\s*when\b|\bhow long\b|\b(what|which) (year|month|date|day)\b|\bhow many (years|months|weeks|days)\b"
            r"|\bago\b",
            re.I,
        ),
    ),
    ("inference", re.compile(r"\b(would|could|might|likely|probably|considered|what might|why)\b", re.I)),
    (
        "list",
        re.compile(
            r"\b(what|which) (are|were|kinds?|types?|activities|things|books|events|ways)\b"
            r"|\bboth\b|\bin common\b|\bhow many\b|\ball\b",
            re.I,
        ),
    ),
)


def question_type(query: str) -> str:
    """``temporal``, ``inference``, ``list`` or ``factual``, from the wording of the question."""
    for name, pat in _TYPE_PATTERNS:
        if pat.search(query):
            return name
    return "factual"


def quality(evidence: np.ndarray | float, answer: np.ndarray | float, mix: float = 0.5) -> Any:
    """The quality a policy optimises: ``mix * evidence + (1 - mix) * answer``."""
    return mix * evidence + (1.0 - mix) * answer


def _pick(obs: Observation, want: str, why: str, policy: str) -> Decision:
    """``want`` if affordable, else the strongest affordable tier below it, else the cheapest."""
    ids = obs.ids
    chosen = want if want in ids else None
    if chosen is None:
        below = [c for c in obs.candidates if c.rank < TIERS.index(want)] if want in TIERS else []
        chosen = max(below, key=lambda c: c.rank).id if below else min(obs.candidates, key=lambda c: c.rank).id
        why = f"{why}; {want} unaffordable, took {chosen}"
    return Decision(chosen, {i: 1.0 if i == chosen else 0.0 for i in ids}, reason=why, evidence={"policy": policy})


class _MemoryPolicy(BasePolicy):
    """Shared plumbing: defer at non-memory points; persistence through a JSON card."""

    kind = "memory"

    def __init__(self, fallback: BasePolicy | None = None) -> None:
        self.fallback = fallback or Cheapest()

    def decide(self, obs: Observation) -> Decision:
        """Choose a tier at memory points; defer elsewhere."""
        if obs.kind != "memory":
            return self.fallback.decide(obs)
        return self._decide(obs)

    def _decide(self, obs: Observation) -> Decision:
        raise NotImplementedError

    def card(self) -> dict[str, Any]:
        """What :func:`save_policy` writes (weights go to the ``.npz`` beside it)."""
        raise NotImplementedError


# -- rules -----------------------------------------------------------------------------------------------------
DEFAULT_RULES: Mapping[str, Mapping[str, str]] = {
    "temporal": {"retrieve": "high", "filter": "mid", "link": "low", "time": "high"},
    "inference": {"retrieve": "high", "filter": "mid", "link": "high", "time": "low"},
    "list": {"retrieve": "high", "filter": "mid", "link": "high", "time": "low"},
    "factual": {"retrieve": "mid", "filter": "mid", "link": "mid", "time": "low"},
}


class MemoryRulePolicy(_MemoryPolicy):
    """A tier per module for each question type (:func:`question_type`); :meth:`fit` picks them from data."""

    name = "memory-rule"

    def __init__(self, rules: Mapping[str, Mapping[str, str]] | None = None, *, fallback: BasePolicy | None = None):
        super().__init__(fallback)
        rules = {k: dict(v) for k, v in (rules or DEFAULT_RULES).items()}
        for qt, per in rules.items():
            if qt not in QUESTION_TYPES:
                raise ConfigError(f"rule for unknown question type {qt!r}", name=qt, hint=f"types: {QUESTION_TYPES}")
            for m, t in per.items():
                if m not in MODULE_NAMES or t not in TIERS:
                    raise ConfigError(f"rule {qt}: {m}={t!r} is not a module and tier", name=f"{qt}.{m}")
        self.rules = rules

    def _decide(self, obs: Observation) -> Decision:
        query = str(obs.extra.get("query", obs.task.text))
        qt = question_type(query)
        module = str(obs.extra.get("module", obs.point.rsplit(".", 1)[-1]))
        want = self.rules.get(qt, {}).get(module, "mid")
        return _pick(obs, want, f"{qt} question: {module}={want}", self.name)

    @classmethod
    def fit(cls, table: ComboTable, *, cost_weight: float, unit_usd: float, mix: float = 0.5) -> MemoryRulePolicy:
        """For each question type, the fixed combination with the best mean ``quality - cost_weight * cost``."""
        types = np.asarray([question_type(q) for q in table.queries])
        score = quality(table.evidence, table.answer, mix) - cost_weight * table.cost_usd / unit_usd
        rules: dict[str, dict[str, str]] = {}
        for qt in QUESTION_TYPES:
            rows = types == qt
            if not rows.any():
                rules[qt] = dict(DEFAULT_RULES[qt])
                continue
            best = int(np.argmax(score[rows].mean(axis=0)))
            rules[qt] = dict(zip(MODULE_NAMES, COMBOS[best], strict=True))
        return cls(rules)

    def card(self) -> dict[str, Any]:
        """Rules as JSON."""
        return {"format": CARD_FORMAT, "policy": "rule", "rules": self.rules}


# -- served MLP (trained with PPO) -----------------------------------------------------------------------------
class MLPPolicy(_MemoryPolicy):
    """A small MLP over :func:`observation_features`, evaluated in numpy (no torch needed to serve).

    ``layers`` are ``(weight, bias)`` pairs with ``tanh`` between them; the last layer gives one logit per tier.
    """

    name = "memory-mlp"

    def __init__(
        self,
        layers: Sequence[tuple[np.ndarray, np.ndarray]],
        *,
        meta: Mapping[str, Any] | None = None,
        fallback: BasePolicy | None = None,
    ) -> None:
        super().__init__(fallback)
        self.layers = [(np.asarray(w, np.float32), np.asarray(b, np.float32)) for w, b in layers]
        if not self.layers or self.layers[0][0].shape[1] != N_FEATURES or self.layers[-1][0].shape[0] != len(TIERS):
            raise DataError(
                f"MLP weights do not fit: need {N_FEATURES} inputs and {len(TIERS)} outputs",
                name="layers",
                hint="were they trained with another feature version?",
            )
        self.meta = dict(meta or {})
        self.version = str(self.meta.get("version", "1"))

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Tier logits for one feature vector."""
        h = x
        for j, (w, b) in enumerate(self.layers):
            h = w @ h + b
            if j < len(self.layers) - 1:
                h = np.tanh(h)
        return h

    def _decide(self, obs: Observation) -> Decision:
        z = self.logits(observation_features(obs))
        ids = obs.ids
        allowed = np.asarray([t in ids for t in TIERS])
        z = np.where(allowed, z, -np.inf)
        p = np.exp(z - z.max())
        p /= p.sum()
        j = int(np.argmax(p))
        probs = {t: float(p[i]) for i, t in enumerate(TIERS) if allowed[i]}
        probs = {t: v / sum(probs.values()) for t, v in probs.items()}
        return Decision(
            TIERS[j],
            probs,
            reason=f"mlp: {TIERS[j]} (p={p[j]:.2f})",
            scores={t: float(z[i]) for i, t in enumerate(TIERS)},
        )

    def card(self) -> dict[str, Any]:
        """Architecture and provenance as JSON (weights go to the ``.npz``)."""
        return {
            "format": CARD_FORMAT,
            "policy": "mlp",
            "n_features": N_FEATURES,
            "layers": [list(w.shape) for w, _ in self.layers],
            "activation": "tanh",
            **self.meta,
        }

    def arrays(self) -> dict[str, np.ndarray]:
        """The weights as named arrays."""
        out: dict[str, np.ndarray] = {}
        for j, (w, b) in enumerate(self.layers):
            out[f"w{j}"], out[f"b{j}"] = w, b
        return out


# -- predictive baselines --------------------------------------------------------------------------------------
def _query_x(query: str) -> np.ndarray:
    return np.concatenate([query_features(query), [1.0]]).astype(np.float32)


class PredictivePolicy(_MemoryPolicy):
    """Predicts each fixed combination's quality and cost from the query, then follows the best consistent one.

    ``method="ridge"`` fits a ridge regression per combination; ``"knn"`` averages the ``k`` most similar training
    questions. At each module it keeps the combinations that agree with the tiers already chosen and whose tier for
    this module is affordable, and picks the one with the highest predicted ``quality - cost_weight * cost``.
    """

    name = "memory-predictive"

    def __init__(
        self,
        method: str,
        params: Mapping[str, np.ndarray],
        *,
        cost_weight: float,
        k: int = 25,
        fallback: BasePolicy | None = None,
    ) -> None:
        super().__init__(fallback)
        if method not in ("ridge", "knn"):
            raise ConfigError(f"unknown predictive method {method!r}", name=method, hint="ridge or knn")
        self.method = method
        self.params = {k_: np.asarray(v) for k_, v in params.items()}
        self.cost_weight = float(cost_weight)
        self.k = k
        self.name = f"memory-{method}"

    @classmethod
    def fit(
        cls,
        table: ComboTable,
        *,
        method: str = "ridge",
        cost_weight: float,
        unit_usd: float,
        mix: float = 0.5,
        alpha: float = 1.0,
        k: int = 25,
    ) -> PredictivePolicy:
        """Fit on a :class:`ComboTable` of training questions."""
        x = np.stack([_query_x(q) for q in table.queries])
        qual = quality(table.evidence, table.answer, mix)
        cost = table.cost_usd / unit_usd
        if method == "ridge":
            reg = alpha * np.eye(x.shape[1])
            reg[-1, -1] = 0.0
            a = x.T @ x + reg
            params = {"wq": np.linalg.solve(a, x.T @ qual), "wc": np.linalg.solve(a, x.T @ cost)}
        else:
            params = {"x": x, "q": qual, "c": cost}
        return cls(method, params, cost_weight=cost_weight, k=k)

    def predict(self, query: str) -> tuple[np.ndarray, np.ndarray]:
        """Predicted quality and cost (units) of every combination."""
        x = _query_x(query)
        if self.method == "ridge":
            return x @ self.params["wq"], x @ self.params["wc"]
        xs = self.params["x"]
        sims = xs[:, :-1] @ x[:-1]
        nn = np.argsort(-sims, kind="stable")[: self.k]
        return self.params["q"][nn].mean(axis=0), self.params["c"][nn].mean(axis=0)

    def _decide(self, obs: Observation) -> Decision:
        module = str(obs.extra.get("module", obs.point.rsplit(".", 1)[-1]))
        m = MODULE_NAMES.index(module)
        done = tiers_so_far(obs)
        q, c = self.predict(str(obs.extra.get("query", obs.task.text)))
        score = q - self.cost_weight * c
        ids = set(obs.ids)
        best, best_s = None, -np.inf
        for j, combo in enumerate(COMBOS):
            if combo[m] not in ids or any(done.get(MODULE_NAMES[i]) not in (None, combo[i]) for i in range(m)):
                continue
            if score[j] > best_s:
                best, best_s = combo, float(score[j])
        want = best[m] if best is not None else min(obs.candidates, key=lambda cc: cc.rank).id
        return _pick(obs, want, f"{self.method}: best predicted combination {best}", self.name)

    def card(self) -> dict[str, Any]:
        """Method and weights' names as JSON."""
        return {"format": CARD_FORMAT, "policy": self.method, "cost_weight": self.cost_weight, "k": self.k}

    def arrays(self) -> dict[str, np.ndarray]:
        """The fitted arrays."""
        return dict(self.params)


# -- persistence -----------------------------------------------------------------------------------------------
def save_policy(policy: BasePolicy, path: str | Path, *, meta: Mapping[str, Any] | None = None) -> Path:
    """Write ``path`` (a ``.json`` card) and, for weighted policies, ``path`` with suffix ``.npz``.

    ``meta`` adds keys to the card (the command line records the retrieval the policy was fitted with).
    """
    p = Path(path)
    if p.suffix != ".json":
        p = p.with_suffix(".json")
    if not isinstance(policy, _MemoryPolicy):
        raise ConfigError(f"cannot save {policy!r}: only memory policies are saved here", name=policy.name)
    p.parent.mkdir(parents=True, exist_ok=True)
    card = {**policy.card(), **(meta or {})}
    arrays = getattr(policy, "arrays", None)
    if arrays is not None:
        np.savez(p.with_suffix(".npz"), **arrays())
        card["weights"] = p.with_suffix(".npz").name
    p.write_text(json.dumps(card, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return p


def load_policy(path: str | Path) -> BasePolicy:
    """Load what :func:`save_policy` wrote."""
    p = Path(path)
    if p.suffix != ".json":
        p = p.with_suffix(".json")
    try:
        card = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"no policy card at {p}", name=str(p), hint="train one with `agentroute memory fit`"
        ) from None
    if not isinstance(card, dict) or card.get("format") != CARD_FORMAT:
        raise DataError(f"{p} is not a memory policy card ({CARD_FORMAT})", name=str(p))
    kind = card.get("policy")
    if kind == "rule":
        return MemoryRulePolicy(card["rules"])
    weights = p.with_suffix(".npz")
    try:
        with np.load(weights, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise DataError(f"{p}: its weights {weights.name} are missing", name=str(weights)) from None
    if kind == "mlp":
        n = len(card["layers"])
        meta = {k: v for k, v in card.items() if k not in ("format", "policy", "layers", "weights", "n_features")}
        return MLPPolicy([(arrays[f"w{j}"], arrays[f"b{j}"]) for j in range(n)], meta=meta)
    if kind in ("ridge", "knn"):
        return PredictivePolicy(kind, arrays, cost_weight=float(card["cost_weight"]), k=int(card.get("k", 25)))
    if kind == "fitted-q":
        from agentroute.memory.fitted import FittedQPolicy

        alpha = card.get("alpha")
        return FittedQPolicy(arrays, cost_weight=float(card["cost_weight"]),
                             alpha=None if alpha is None else float(alpha), cv=card.get("cv_return_by_alpha"))
    raise DataError(f"{p}: unknown policy kind {kind!r}", name=str(p))
