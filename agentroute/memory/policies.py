"""Memory tier policies: rules by question type, predictive baselines, and a served MLP (from PPO).

They are ordinary policies (:class:`~agentroute.routing.PolicyBase`, family ``memory``): they decide over
``obs.candidates`` of kind ``"memory"`` and never pick a masked tier (when their favourite is unaffordable they take
the strongest affordable tier below it, else the cheapest). At non-memory points they defer to ``fallback``
(cheapest by default), so one can be composed into a graph-wide policy. They save and load like every policy
(:func:`agentroute.policies.save_policy` / :func:`agentroute.policies.load_policy`: a JSON card and a ``.npz``);
fitted-Q lives in :mod:`agentroute.memory.fitted`.

Quality is ``mix * evidence_recall + (1 - mix) * answer_recall``; ``cost_weight`` (λ) is per USD: a policy scores a
tier path ``quality − λ · cost_usd`` (λ = 80 per USD is 0.2 of recall per 1,000 context tokens of gpt-4o).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from agentroute.errors import ConfigError, DataError
from agentroute.memory._pipeline import MODULE_NAMES
from agentroute.memory._state import TIERS
from agentroute.memory.evaluate import COMBOS, ComboTable
from agentroute.memory.features import (
    N_FEATURES,
    QUESTION_TYPES,
    observation_features,
    query_features,
    question_type,
    tiers_so_far,
)
from agentroute.policies import _card
from agentroute.policies._card import Arrays, Card, load_nested, nested_card, register
from agentroute.policies._cost import check_cost_weight
from agentroute.policies._nn import check_layers, forward
from agentroute.policies._ridge import Ridge
from agentroute.policies.baselines import Cheapest
from agentroute.routing import Decision, GraphSpec, Observation, PolicyBase


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


def _module(obs: Observation) -> str:
    return str(obs.extra.get("module", obs.point.rsplit(".", 1)[-1]))


class MemoryPolicy(PolicyBase):
    """Shared plumbing of the memory tier policies: defer at non-memory points; a card with the fallback in it."""

    family: ClassVar[str] = "memory"
    kind: ClassVar[str] = "memory"

    def __init__(self, fallback: PolicyBase | None = None) -> None:
        self.fallback = fallback or Cheapest()
        self.provenance: dict[str, Any] = {}
        """What the card said beyond the policy itself (retrieval, split, conversations, ...), kept on save."""

    def decide(self, obs: Observation) -> Decision:
        """Choose a tier at memory points; defer elsewhere."""
        if obs.kind != "memory":
            return self.fallback.decide(obs)
        return self._decide(obs)

    def _decide(self, obs: Observation) -> Decision:
        raise NotImplementedError

    def bind(self, spec: GraphSpec) -> None:
        """The fallback is checked against the graph (the memory tiers are fixed: low, mid, high)."""
        self.fallback.bind(spec)

    def to_card(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Card fields and arrays: the provenance, the family's own, and the fallback nested under ``fallback``."""
        fields, arrays = self._fields()
        fields = {**self.provenance, **fields}
        arrays = dict(arrays)
        if not isinstance(self.fallback, Cheapest):
            fields["fallback"] = nested_card(self.fallback, "fallback", arrays)
        return fields, arrays

    def _fields(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        raise NotImplementedError

    @classmethod
    def from_card(cls, card: Card, arrays: Arrays, **overrides: Any) -> MemoryPolicy:
        """Rebuild from a card (see :func:`agentroute.policies.load_policy`)."""
        policy = cls._from_fields(card, arrays, **overrides)
        policy.fallback = load_nested(card, "fallback", arrays, policy.fallback)
        own = set(policy._fields()[0]) | _RESERVED
        policy.provenance = {k: v for k, v in card.items() if k not in own}
        return policy

    @classmethod
    def _from_fields(cls, card: Card, arrays: Arrays, **overrides: Any) -> MemoryPolicy:
        raise NotImplementedError

    def card(self) -> dict[str, Any]:
        """The policy's card (what :func:`save_policy` writes beside the arrays)."""
        return _card.card_of(self)[0]


_MemoryPolicy = MemoryPolicy  # the earlier private name
_RESERVED = {"format", "family", "kind", "name", "version", "arrays", "weights", "policy", "cost_unit", "fallback",
             "layout", "meta"}


# -- rules -----------------------------------------------------------------------------------------------------
DEFAULT_RULES: Mapping[str, Mapping[str, str]] = {
    "temporal": {"retrieve": "high", "filter": "mid", "link": "low", "time": "high"},
    "inference": {"retrieve": "high", "filter": "mid", "link": "high", "time": "low"},
    "list": {"retrieve": "high", "filter": "mid", "link": "high", "time": "low"},
    "factual": {"retrieve": "mid", "filter": "mid", "link": "mid", "time": "low"},
}


@register("memory", "rule")
class MemoryRulePolicy(MemoryPolicy):
    """A tier per module for each question type (:func:`question_type`); :meth:`fit` picks them from data."""

    kind = "rule"
    name = "memory-rule"

    def __init__(self, rules: Mapping[str, Mapping[str, str]] | None = None, *, fallback: PolicyBase | None = None):
        super().__init__(fallback)
        if rules is not None and not isinstance(rules, Mapping):
            raise ConfigError("memory rules must map a question type to {module: tier}", name="rules")
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
        module = _module(obs)
        want = self.rules.get(qt, {}).get(module, "mid")
        return _pick(obs, want, f"{qt} question: {module}={want}", self.name)

    @classmethod
    def fit(cls, table: ComboTable, *, cost_weight: float, unit_usd: float | None = None,
            mix: float = 0.5) -> MemoryRulePolicy:
        """For each question type, the fixed combination with the best mean ``quality − λ·cost_usd`` (λ per USD).

        ``unit_usd`` is accepted for callers of the earlier API and ignored: λ is per USD now.
        """
        lam = check_cost_weight(cost_weight, infinite=False)
        types = np.asarray([question_type(q) for q in table.queries])
        score = quality(table.evidence, table.answer, mix) - lam * table.cost_usd
        rules: dict[str, dict[str, str]] = {}
        for qt in QUESTION_TYPES:
            rows = types == qt
            if not rows.any():
                rules[qt] = dict(DEFAULT_RULES[qt])
                continue
            best = int(np.argmax(score[rows].mean(axis=0)))
            rules[qt] = dict(zip(MODULE_NAMES, COMBOS[best], strict=True))
        return cls(rules)

    def _fields(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {"rules": self.rules}, {}

    @classmethod
    def _from_fields(cls, card: Card, arrays: Arrays, **overrides: Any) -> MemoryPolicy:
        rules = card.obj("rules")
        return cls({qt: rules.obj(qt).raw() for qt in rules})


# -- served MLP (trained with PPO) -----------------------------------------------------------------------------
@register("memory", "mlp")
class MLPPolicy(MemoryPolicy):
    """A small MLP over :func:`observation_features`, evaluated in numpy (no torch needed to serve).

    ``layers`` are ``(W, b)`` pairs with ``tanh`` between them, ``W`` as torch stores it, ``(out, in)``
    (``layout="in_out"`` for ``(in, out)``, the layout of :func:`agentroute.policies._nn.forward`, which runs it);
    the last layer gives one logit per tier.
    """

    kind = "mlp"
    name = "memory-mlp"

    def __init__(
        self,
        layers: Sequence[tuple[np.ndarray, np.ndarray]],
        *,
        meta: Mapping[str, Any] | None = None,
        fallback: PolicyBase | None = None,
        layout: str = "out_in",
    ) -> None:
        super().__init__(fallback)
        if layout not in ("in_out", "out_in"):
            raise ConfigError(f"layout={layout!r}: use 'in_out' or 'out_in'", name="layout")
        self.layers = [
            (np.ascontiguousarray(np.asarray(w, np.float32).T if layout == "out_in" else np.asarray(w, np.float32)),
             np.asarray(b, np.float32).reshape(-1))
            for w, b in layers
        ]
        try:
            check_layers(self.layers)
            ok = self.layers[0][0].shape[0] == N_FEATURES and self.layers[-1][0].shape[1] == len(TIERS)
        except ValueError:
            ok = False
        if not ok:
            raise DataError(
                f"MLP weights do not fit: need {N_FEATURES} inputs and {len(TIERS)} outputs",
                name="layers",
                hint="were they trained with another feature version?",
            )
        self.meta = dict(meta or {})
        self.version = str(self.meta.get("version", "1"))

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Tier logits for one feature vector."""
        return forward(self.layers, x, activation="tanh")

    def _decide(self, obs: Observation) -> Decision:
        z = self.logits(observation_features(obs)).astype(np.float64)
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

    def arrays(self) -> dict[str, np.ndarray]:
        """The weights as named arrays (``W`` as ``(in, out)``)."""
        out: dict[str, np.ndarray] = {}
        for j, (w, b) in enumerate(self.layers):
            out[f"w{j}"], out[f"b{j}"] = w, b
        return out

    def _fields(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta = dict(self.meta)
        if "cost_weight" in meta:
            meta["cost_unit"] = "usd"
        return {"n_features": N_FEATURES, "layers": [list(w.shape) for w, _ in self.layers], "activation": "tanh",
                "layout": "in_out", "meta": meta}, self.arrays()

    @classmethod
    def _from_fields(cls, card: Card, arrays: Arrays, **overrides: Any) -> MemoryPolicy:
        shapes = card.get("layers")
        if not isinstance(shapes, list) or not 1 <= len(shapes) <= 64:
            raise card.error("layers", "must list the shape of each layer")
        layout = card.text("layout", "out_in", choices=("in_out", "out_in"))  # earlier cards: torch's layout
        layers = [(arrays.get(f"w{j}", ndim=2), arrays.get(f"b{j}", ndim=1)) for j in range(len(shapes))]
        meta = card.obj("meta", None)
        if meta is not None:
            m = meta.raw()
        else:  # an earlier card kept the provenance at the top
            skip = {"format", "family", "kind", "name", "version", "policy", "layers", "weights", "arrays",
                    "n_features", "layout", "activation", "upgraded_from", "created", "cost_unit", "fallback"}
            m = {k: v for k, v in card.items() if k not in skip}
        return cls(layers, meta=m, layout=layout)


# -- predictive baselines --------------------------------------------------------------------------------------
def _query_x(query: str) -> np.ndarray:
    return np.concatenate([query_features(query), [1.0]]).astype(np.float32)


@register("memory", "ridge", "knn")
class PredictivePolicy(MemoryPolicy):
    """Predicts each fixed combination's quality and cost from the query, then follows the best consistent one.

    ``method="ridge"`` fits a ridge regression per combination; ``"knn"`` averages the ``k`` most similar training
    questions. At each module it keeps the combinations that agree with the tiers already chosen and whose tier for
    this module is affordable, and picks the one with the highest predicted ``quality − λ·cost_usd``. Costs are
    learned in units of ``unit_usd`` USD (1,000 context tokens of the answering model); λ is per USD.
    """

    name = "memory-predictive"

    def __init__(
        self,
        method: str,
        params: Mapping[str, np.ndarray],
        *,
        cost_weight: float,
        unit_usd: float = 1.0,
        k: int = 25,
        fallback: PolicyBase | None = None,
    ) -> None:
        super().__init__(fallback)
        if method not in ("ridge", "knn"):
            raise ConfigError(f"unknown predictive method {method!r}", name=method, hint="ridge or knn")
        self.method = method
        self.params = {k_: np.asarray(v) for k_, v in params.items()}
        self.cost_weight = check_cost_weight(cost_weight, infinite=False)
        if not unit_usd > 0:
            raise ConfigError(f"unit_usd={unit_usd!r} must be > 0", name="unit_usd")
        self.unit_usd = float(unit_usd)
        self.k = int(k)
        self.name = f"memory-{method}"

    @property
    def kind(self) -> str:  # type: ignore[override]
        """``ridge`` or ``knn``."""
        return self.method

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
        """Fit on a :class:`ComboTable` of training questions (``unit_usd``: the unit costs are learned in)."""
        x = np.stack([_query_x(q) for q in table.queries])
        qual = quality(table.evidence, table.answer, mix)
        cost = table.cost_usd / unit_usd
        if method == "ridge":  # the bias column is the intercept, not shrunk
            r = Ridge(x[:, :-1])
            params = {name: np.vstack([w, b[None, :]]) for name, (w, b) in
                      (("wq", r.weights(qual, alpha)), ("wc", r.weights(cost, alpha)))}
        else:
            params = {"x": x, "q": qual, "c": cost}
        return cls(method, params, cost_weight=cost_weight, unit_usd=unit_usd, k=k)

    def predict(self, query: str) -> tuple[np.ndarray, np.ndarray]:
        """Predicted quality and cost (in units of ``unit_usd``) of every combination."""
        x = _query_x(query)
        if self.method == "ridge":
            return x @ self.params["wq"], x @ self.params["wc"]
        xs = self.params["x"]
        sims = xs[:, :-1] @ x[:-1]
        nn = np.argsort(-sims, kind="stable")[: self.k]
        return self.params["q"][nn].mean(axis=0), self.params["c"][nn].mean(axis=0)

    def _decide(self, obs: Observation) -> Decision:
        module = _module(obs)
        m = MODULE_NAMES.index(module)
        done = tiers_so_far(obs)
        q, c = self.predict(str(obs.extra.get("query", obs.task.text)))
        score = q - self.cost_weight * self.unit_usd * c
        ids = set(obs.ids)
        best, best_s = None, -np.inf
        for j, combo in enumerate(COMBOS):
            if combo[m] not in ids or any(done.get(MODULE_NAMES[i]) not in (None, combo[i]) for i in range(m)):
                continue
            if score[j] > best_s:
                best, best_s = combo, float(score[j])
        want = best[m] if best is not None else min(obs.candidates, key=lambda cc: cc.rank).id
        return _pick(obs, want, f"{self.method}: best predicted combination {best}", self.name)

    def arrays(self) -> dict[str, np.ndarray]:
        """The fitted arrays."""
        return dict(self.params)

    def _fields(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {"method": self.method, "cost_unit": "usd", "cost_weight": self.cost_weight,
                "unit_usd": self.unit_usd, "k": self.k}, self.arrays()

    @classmethod
    def _from_fields(cls, card: Card, arrays: Arrays, *, cost_weight: float | None = None,
                     **overrides: Any) -> MemoryPolicy:
        method = card.text("kind", choices=("ridge", "knn"))
        n_combos, d = len(COMBOS), N_FEATURES_QUERY + 1
        if method == "ridge":
            params = {n: arrays.get(n, shape=(d, n_combos), dtype=np.float64) for n in ("wq", "wc")}
        else:
            params = {"x": arrays.get("x", shape=(None, d), dtype=np.float32)}
            n = len(params["x"])
            params.update({c: arrays.get(c, shape=(n, n_combos), dtype=np.float64) for c in ("q", "c")})
        lam = card.num("cost_weight", lo=0.0) if cost_weight is None else cost_weight
        unit = card.num("unit_usd", _card.LEGACY_MEMORY_UNIT_USD, lo=1e-12)
        return cls(method, params, cost_weight=lam, unit_usd=unit, k=card.whole("k", 25, lo=1))


N_FEATURES_QUERY = len(query_features(""))


# -- persistence -----------------------------------------------------------------------------------------------
def save_policy(policy: PolicyBase, path: str | Path, *, meta: Mapping[str, Any] | None = None) -> Path:
    """Write ``path`` (a ``.json`` card; a path without suffix gets one) and its ``.npz`` beside it.

    ``meta`` adds keys to the card (the command line records the retrieval the policy was fitted with). The same
    as :func:`agentroute.policies.save_policy`, kept here for the memory commands' path convention.
    """
    p = Path(path)
    if p.suffix != ".json":
        p = p.with_suffix(".json")
    return _card.save_policy(policy, p, meta=meta)


def load_policy(path: str | Path, **overrides: Any) -> Any:
    """Load a saved policy (:func:`agentroute.policies.load_policy`; a path without suffix means its ``.json``)."""
    p = Path(path)
    if p.suffix not in (".json", ".npz", ".yaml", ".yml"):
        p = p.with_suffix(".json")
    return _card.load_policy(p, **overrides)


__all__ = [
    "DEFAULT_RULES",
    "QUESTION_TYPES",
    "MLPPolicy",
    "MemoryPolicy",
    "MemoryRulePolicy",
    "PredictivePolicy",
    "load_policy",
    "quality",
    "question_type",
    "save_policy",
]
