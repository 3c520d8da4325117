"""Intent: the task-type mixture w(q) that tells the colony which pheromone specialists to consult.

A query's weights come, in this order, from: the task's own ``intent`` (the caller already knows), its declared
``category`` when that is one of the task types (a one-hot), a classifier fitted on labelled queries (softmax
regression over :class:`agentroute.features.HashingFeaturizer` features; the categories of a routing table serve
as labels), keyword/regex rules (run on RE2, in linear time and case-insensitive, like rule files), and finally the
uniform mixture. A single task type is the degenerate case: it always gets weight 1. The classifier answers only
when it is confident enough (``min_confidence``); otherwise the rules, if one matches, win.

numpy-only; fitting is full-batch gradient descent (no scikit-learn). Saved as JSON (no pickle).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from agentroute.errors import ConfigError
from agentroute.policies.rules import _search, compile_regex

DEFAULT_TYPE = "default"


def _normalise(w: Mapping[str, float], *, floor: float = 0.01) -> dict[str, float]:
    """Drop weights below ``floor`` of the total (they cost time and teach nothing) and renormalise."""
    total = sum(v for v in w.values() if v > 0)
    if total <= 0 or not math.isfinite(total):
        return {}
    kept = {k: v / total for k, v in w.items() if v > 0 and v / total >= floor}
    s = sum(kept.values())
    return {k: v / s for k, v in kept.items()}


class IntentModel:
    """Task-type weights ``w(q)`` over ``task_types``: declared intent, category, classifier, rules, uniform.

    ``rules`` maps a task type to regular expressions (matched case-insensitively); the weight of a type is the
    share of the matching patterns. ``min_confidence`` is the top classifier probability below which matching
    rules take over. ``temperature`` > 1 flattens the classifier's mixture, < 1 sharpens it.
    """

    def __init__(
        self,
        task_types: Sequence[str] | None = None,
        *,
        rules: Mapping[str, Sequence[str]] | None = None,
        min_confidence: float = 0.0,
        temperature: float = 1.0,
    ) -> None:
        types = [str(t) for t in (task_types or [])]
        if len(set(types)) != len(types):
            raise ConfigError(f"task_types has duplicates: {types}", name="task_types")
        if not 0.0 <= float(min_confidence) <= 1.0:
            raise ConfigError(f"min_confidence must be in [0, 1], got {min_confidence!r}", name="min_confidence")
        if not float(temperature) > 0:
            raise ConfigError(f"temperature must be > 0, got {temperature!r}", name="temperature")
        self.task_types = types
        self.min_confidence = float(min_confidence)
        self.temperature = float(temperature)
        self.rules: dict[str, list[Any]] = {}  # compiled RE2 patterns: linear time on any text
        for t, pats in (rules or {}).items():
            if isinstance(pats, str):
                pats = [pats]
            try:
                self.rules[str(t)] = [compile_regex(str(p)) for p in pats]
            except ValueError as e:
                raise ConfigError(f"intent rule for {t!r} is not a usable regex: {e}", name=str(t)) from None
            if str(t) not in self.task_types:
                self.task_types.append(str(t))
        self.featurizer: Any = None
        self.coef: np.ndarray | None = None
        self.bias: np.ndarray | None = None
        self.classes: list[str] = []

    # ------------------------------------------------------------------ fitting

    def fit(
        self,
        texts: Sequence[str],
        labels: Sequence[str | None],
        *,
        epochs: int = 120,
        l2: float = 1e-4,
        lr: float = 8.0,
        n_features: int = 1024,
    ) -> IntentModel:
        """Fit the classifier on labelled queries (rows whose label is ``None`` are skipped)."""
        from agentroute.features import HashingFeaturizer

        pairs = [(str(t), str(c)) for t, c in zip(texts, labels, strict=True) if c is not None]
        if not pairs:
            raise ConfigError("IntentModel.fit: no labelled queries", name="labels")
        classes = sorted({c for _, c in pairs})
        for c in classes:
            if c not in self.task_types:
                self.task_types.append(c)
        self.classes = classes
        if len(classes) == 1:
            return self
        feat = HashingFeaturizer(n_features, use_category=False)
        x = self._x(feat.fit([t for t, _ in pairs]), [t for t, _ in pairs]).astype(np.float32)
        y = np.array([classes.index(c) for _, c in pairs])
        n, k = len(y), len(classes)
        onehot = np.eye(k, dtype=np.float32)[y]
        coef = np.zeros((x.shape[1], k), dtype=np.float32)
        bias = np.log(onehot.mean(axis=0) + 1e-9).astype(np.float32)
        vel_c, vel_b = np.zeros_like(coef), np.zeros_like(bias)
        for _ in range(epochs):  # gradient descent with momentum on the mean cross-entropy
            z = x @ coef + bias
            z -= z.max(axis=1, keepdims=True)
            p = np.exp(z)
            p /= p.sum(axis=1, keepdims=True)
            g = (p - onehot) / n
            vel_c = 0.9 * vel_c - lr * (x.T @ g + l2 * coef)
            vel_b = 0.9 * vel_b - lr * g.sum(axis=0)
            coef += vel_c
            bias += vel_b
        self.featurizer, self.coef, self.bias = feat, coef.astype(np.float64), bias.astype(np.float64)
        return self

    @staticmethod
    def _x(feat: Any, texts: Sequence[str]) -> np.ndarray:
        """The unit-norm TF-IDF block only: the length column would let the classifier sort queries by size."""
        out: np.ndarray = feat.transform(list(texts))[:, : feat.n_features].astype(np.float64)
        return out

    @property
    def fitted(self) -> bool:
        """True when a classifier over two or more classes was fitted."""
        return self.coef is not None

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Classifier probabilities, ``(len(texts), len(classes))``."""
        if self.coef is None or self.bias is None:
            raise ConfigError("IntentModel is not fitted", name="intent", hint="call fit(texts, labels)")
        x = self._x(self.featurizer, list(texts))
        z = (x @ self.coef + self.bias) / self.temperature
        z -= z.max(axis=1, keepdims=True)
        p: np.ndarray = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        return p

    # ------------------------------------------------------------------ w(q)

    def batch_weights(
        self, texts: Sequence[str], categories: Sequence[str | None] | None = None
    ) -> list[tuple[dict[str, float], str]]:
        """:meth:`weights` of many queries at once (one classifier pass for all of them)."""
        cats = list(categories) if categories is not None else [None] * len(texts)
        out: list[tuple[dict[str, float], str] | None] = [None] * len(texts)
        todo = []
        for i, (t, c) in enumerate(zip(texts, cats, strict=True)):
            if (c is not None and c in self.task_types) or len(self.task_types) <= 1 or self.coef is None or not t:
                out[i] = self.weights(t, category=c)
            else:
                todo.append(i)
        if todo:
            probs = self.predict_proba([texts[i] for i in todo])
            for i, p in zip(todo, probs, strict=True):
                if float(p.max()) >= self.min_confidence or not self.rules:
                    w = _normalise(dict(zip(self.classes, p.tolist(), strict=True)))
                    out[i] = (w, "classifier") if w else self.weights("", category=None)
                else:
                    out[i] = self.weights(texts[i])
        return [o for o in out if o is not None]

    def rule_weights(self, text: str) -> dict[str, float]:
        """Weights from the keyword/regex rules (empty when none matches)."""
        hits = {t: sum(1 for p in pats if _search(p, text) is not None) for t, pats in self.rules.items()}
        return _normalise({t: float(h) for t, h in hits.items() if h})

    def weights(
        self, text: str = "", *, category: str | None = None, intent: Mapping[str, float] | None = None
    ) -> tuple[dict[str, float], str]:
        """``(w(q), source)``: the mixture and where it came from (intent, category, classifier, rules, ...)."""
        if intent:
            w = _normalise({str(k): float(v) for k, v in intent.items()})
            if w:
                return w, "intent"
        if category is not None and category in self.task_types:
            return {category: 1.0}, "category"
        if len(self.task_types) <= 1:
            return {self.task_types[0] if self.task_types else DEFAULT_TYPE: 1.0}, "single"
        if self.coef is not None and text:
            p = self.predict_proba([text])[0]
            if float(p.max()) >= self.min_confidence or not self.rules:
                w = _normalise(dict(zip(self.classes, p.tolist(), strict=True)))
                if w:
                    return w, "classifier"
        if self.rules and text:
            w = self.rule_weights(text)
            if w:
                return w, "rules"
        if len(self.classes) == 1:
            return {self.classes[0]: 1.0}, "single"
        u = 1.0 / len(self.task_types)
        return {t: u for t in self.task_types}, "uniform"

    # ------------------------------------------------------------------ persistence

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe state (featurizer, weights, rules)."""
        from agentroute.features import encode_array

        return {
            "kind": "intent",
            "version": 1,
            "task_types": list(self.task_types),
            "rules": {t: [p.pattern for p in pats] for t, pats in self.rules.items()},
            "min_confidence": self.min_confidence,
            "temperature": self.temperature,
            "classes": list(self.classes),
            "featurizer": self.featurizer.to_dict() if self.featurizer is not None else None,
            "coef": encode_array(self.coef) if self.coef is not None else None,
            "bias": encode_array(self.bias) if self.bias is not None else None,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> IntentModel:
        """Restore an :class:`IntentModel` saved with :meth:`to_dict`."""
        from agentroute.features import HashingFeaturizer, decode_array

        if d.get("kind") != "intent" or d.get("version") != 1:
            raise ConfigError("not a saved IntentModel (kind 'intent', version 1)", name="intent")
        m = cls(d["task_types"], rules=d.get("rules") or {}, min_confidence=d["min_confidence"],
                temperature=d["temperature"])
        m.classes = list(d.get("classes") or [])
        if d.get("coef") is not None:
            m.featurizer = HashingFeaturizer.from_dict(d["featurizer"])
            m.coef = decode_array(d["coef"]).astype(np.float64)
            m.bias = decode_array(d["bias"]).astype(np.float64)
        return m


__all__ = ["DEFAULT_TYPE", "IntentModel"]
