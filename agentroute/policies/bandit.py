"""Contextual bandits that learn to route online, from the feedback of the decisions they make.

:class:`LinUCBPolicy` (disjoint LinUCB) and :class:`ThompsonPolicy` (linear Thompson sampling) keep, per option, a
ridge model of quality and one of cost on the query features (plus a bias): ``A = ridge·I + Σ x xᵀ`` (kept as its
inverse, updated by Sherman–Morrison), ``b_q = Σ quality·x`` and ``b_c = Σ (cost/cost_scale)·x`` (costs are learned
in cost units of ``cost_scale`` USD). A decision takes ``argmax θ_q·x − λ·cost_scale·θ_c·x + α·√(xᵀA⁻¹x)`` (LinUCB)
or samples ``θ_q ~ N(θ_q, α²A⁻¹)`` (Thompson), λ per USD. Because quality and cost are learned apart, λ can change
per decision (``obs.extra["cost_weight"]``, per USD).

Learning: ``feedback(fb)`` uses ``fb.quality`` and ``fb.cost_usd`` of the chosen option (a step without a quality
teaches nothing); ``update(x_features, option, reward, cost=None)`` is the same for callers that hold features
(a scalar ``reward`` already net of cost works too: leave ``cost`` out). ``fit(table)`` warm-starts by replaying the
table *with bandit feedback* (only the chosen option's outcome is revealed), λ drawn per step log-uniformly from
``cost_weight_range`` (per cost unit of the table, not per USD) so the models serve the whole price range;
``LinUCBPolicy.empty(options, featurizer)`` (or ``ThompsonPolicy.empty``) instead starts with no knowledge, for
purely online use. Features should be short (≤ 512): the default is hashed n-grams projected to 48 dimensions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Self

import numpy as np

from agentroute.errors import ConfigError
from agentroute.features import Featurizer, HashingFeaturizer
from agentroute.policies._card import Arrays, Card, np_rng_from, np_rng_state
from agentroute.policies._cost import decision_cost_weight
from agentroute.policies._table import CostModel, TableRouter
from agentroute.routing import Decision, Feedback, Observation, one_hot

if TYPE_CHECKING:
    from agentroute.data.table import RoutingTable

MAX_DIM = 512


class LinUCBPolicy(TableRouter):
    """Disjoint LinUCB over ``options`` with exploration ``alpha``; see the module docstring.

    ``LinUCBPolicy(options, featurizer, alpha, cost_weight, seed)``: ``options`` may be left ``None`` until
    ``fit``; ``featurizer`` must be fitted before ``decide`` (``fit`` fits the default one); ``cost_scale`` is the
    USD unit costs are divided by (``fit`` takes the table's).
    """

    family = "bandit"
    kind = "linucb"

    def __init__(
        self,
        options: Sequence[str] | None = None,
        featurizer: Featurizer | None = None,
        alpha: float = 0.5,
        cost_weight: float | None = None,
        seed: int = 0,
        *,
        ridge: float = 1.0,
        cost_scale: float = 1.0,
        cost_weight_range: tuple[float, float] = (0.01, 10.0),
    ) -> None:
        super().__init__(featurizer=featurizer, cost_weight=cost_weight, seed=seed)
        if alpha < 0 or ridge <= 0:
            raise ConfigError(f"{self.kind}: alpha must be >= 0 and ridge > 0", name="alpha")
        self.alpha, self.ridge = float(alpha), float(ridge)
        self.cost_scale = float(cost_scale)
        self.cost_weight_range = (float(cost_weight_range[0]), float(cost_weight_range[1]))
        self.options = list(options) if options is not None else []
        self.a_inv = np.zeros((0, 0, 0))
        self.b_q = np.zeros((0, 0))
        self.b_c = np.zeros((0, 0))
        self.counts = np.zeros(0)
        self.use_cost_model = False
        self._rng = np.random.default_rng(seed)
        self._last: tuple[int, np.ndarray] | None = None

    @classmethod
    def for_table(cls, **kw: Any) -> LinUCBPolicy:
        """An unfitted bandit whose options come from the table given to ``fit``."""
        return cls(None, **kw)

    @classmethod
    def empty(cls, options: Sequence[str], featurizer: Featurizer, **kw: Any) -> Self:
        """A bandit that knows nothing yet, ready to ``decide`` and learn online from ``feedback``.

        Every option starts from the priors (quality a coin flip, cost one cost unit, ridge ``A = ridge·I``), so
        nothing is learnt from any outcome before the stream reveals it. ``featurizer`` must already be fitted
        (its ``dim`` sizes the models; fitting it on texts alone uses no outcomes); ``kw`` are the constructor's
        other arguments (``alpha``, ``cost_weight``, ``seed``, ``ridge``, ``cost_scale``, ...).
        """
        opts = [str(o) for o in options]
        if not opts or len(set(opts)) != len(opts):
            raise ConfigError(f"{cls.kind}: options must be distinct and non-empty, got {opts!r}", name="options")
        try:
            dim = int(featurizer.dim)
        except ConfigError as e:
            raise ConfigError(f"{cls.kind}: the featurizer must be fitted before empty()", name="featurizer",
                              hint="fit it on the query texts first") from e
        pol = cls(opts, featurizer, **kw)
        pol._ensure(dim + 1)
        return pol

    # ------------------------------------------------------------------ state

    def _ensure(self, d: int) -> None:
        k = len(self.options)
        if k == 0:
            raise ConfigError(f"{self.kind}: no options", name="options", hint="pass options or fit(table)")
        if self.a_inv.shape != (k, d, d):
            if d - 1 > MAX_DIM:
                raise ConfigError(
                    f"{self.kind}: {d - 1} features are too many for a linear bandit (at most {MAX_DIM})",
                    name="featurizer",
                    hint="use HashingFeaturizer(n_components=48) or another short featurizer",
                )
            self.a_inv = np.repeat(np.eye(d)[None] / self.ridge, k, axis=0)
            self.b_q = np.zeros((k, d))
            self.b_c = np.zeros((k, d))
            self.b_q[:, -1] = self.ridge * 0.5  # prior: an untried option is a coin flip
            self.b_c[:, -1] = self.ridge * 1.0  # pessimistic prior: an untried option costs one cost unit
            self.counts = np.zeros(k)

    def _x(self, x_features: np.ndarray) -> np.ndarray:
        x = np.asarray(x_features, dtype=np.float64).reshape(-1)
        return np.concatenate([x, [1.0]])

    def _heads(self, x: np.ndarray, cost: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(quality mean, cost in cost-scale units, uncertainty width) per option for one input.

        ``cost`` (cost-scale units) is the known price of each option when a table's cost model gave one;
        otherwise the learned cost head answers.
        """
        ax = self.a_inv @ x  # (k, d)
        theta_q = np.einsum("kij,kj->ki", self.a_inv, self.b_q)
        width = np.sqrt(np.maximum(ax @ x, 0.0))
        if cost is None:
            theta_c = np.einsum("kij,kj->ki", self.a_inv, self.b_c)
            cost = np.maximum(theta_c @ x, 0.0)
        return theta_q @ x, cost, width

    def _known_cost(self, texts: Sequence[str]) -> np.ndarray | None:
        if not self.use_cost_model or self.cost_model is None:
            return None
        out: np.ndarray = self.cost_model.predict(texts) / self.cost_scale
        return out

    def _explore_scores(self, x: np.ndarray, lam: float, cost: np.ndarray | None = None) -> np.ndarray:
        q, c, width = self._heads(x, cost)
        lam_c = lam * c if math.isfinite(lam) else c * 1e9
        out: np.ndarray = q - lam_c + self.alpha * width
        return out

    def update(self, x_features: np.ndarray, option: str | int, reward: float, cost: float | None = None) -> None:
        """Learn from one outcome: features (without bias), the option taken, its quality (or net reward), cost USD."""
        j = option if isinstance(option, int) else self._col.get(option)
        if j is None or not 0 <= j < len(self.options):
            raise ConfigError(f"{self.kind}: unknown option {option!r}", name=str(option), hint=f"{self.options}")
        x = self._x(x_features)
        self._ensure(len(x))
        ax = self.a_inv[j] @ x
        self.a_inv[j] -= np.outer(ax, ax) / (1.0 + x @ ax)
        self.b_q[j] += float(reward) * x
        if cost is not None:
            self.b_c[j] += float(cost) / self.cost_scale * x
        self.counts[j] += 1

    # ------------------------------------------------------------------ fit (bandit-feedback replay)

    def fit(self, table: RoutingTable) -> LinUCBPolicy:
        """Warm-start by replaying ``table`` once with bandit feedback (see the module docstring)."""
        if self.featurizer is None:
            self.featurizer = HashingFeaturizer(1024, n_components=48, seed=self.seed)
        super().fit(table)
        return self

    def _fit(self, x: np.ndarray, table: RoutingTable) -> dict[str, Any]:
        self.a_inv = np.zeros((0, 0, 0))
        self._ensure(x.shape[1] + 1)
        self.use_cost_model = True  # prices are known from the table: only quality is learned from feedback
        known = self._known_cost(table.texts)
        assert known is not None
        rng = np.random.default_rng(self.seed)
        lo, hi = (max(v, 1e-6) for v in self.cost_weight_range)
        total_reward, total_best = 0.0, 0.0
        for i in rng.permutation(len(table)):
            lam = float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
            xi = self._x(x[i])
            j = int(np.argmax(self._pick_scores(xi, lam, known[i])))
            q, c = float(table.quality[i, j]), float(table.cost[i, j])
            self.update(x[i], j, q, c)
            net = table.quality[i] - lam * table.cost[i] / self.cost_scale
            total_reward += q - lam * c / self.cost_scale
            total_best += float(net.max())
        n = max(len(table), 1)
        return {
            "replay_mean_reward": round(total_reward / n, 5),
            "replay_mean_oracle_reward": round(total_best / n, 5),
            "replay_counts": {o: int(v) for o, v in zip(self.options, self.counts, strict=True)},
            "cost_weight_range": list(self.cost_weight_range),
        }

    def _pick_scores(self, x: np.ndarray, lam: float, cost: np.ndarray | None = None) -> np.ndarray:
        return self._explore_scores(x, lam, cost)

    # ------------------------------------------------------------------ prediction

    def _check(self) -> None:
        if self.a_inv.size == 0:  # a fresh bandit starts from its priors once it knows the feature length
            try:
                dim = int(self.featurizer.dim) if self.featurizer is not None else None
            except ConfigError:
                dim = None
            if dim is None or not self.options:
                raise ConfigError(
                    f"{self.kind} cannot decide yet: it needs options and a fitted featurizer",
                    name=self.kind,
                    hint="pass both to the constructor, or fit(table)",
                )
            self._ensure(dim + 1)

    def predict_outcomes(
        self, texts: Sequence[str], categories: Sequence[str | None] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Greedy (no exploration) quality and USD cost per option, ``(n, n_options)`` each."""
        self._check()
        x = self.features(texts, categories).astype(np.float64)
        xb = np.hstack([x, np.ones((len(x), 1))])
        theta_q = np.einsum("kij,kj->ki", self.a_inv, self.b_q)
        q = np.clip(xb @ theta_q.T, 0.0, 1.0)
        known = self._known_cost(texts)
        if known is not None:
            return q, known * self.cost_scale
        theta_c = np.einsum("kij,kj->ki", self.a_inv, self.b_c)
        return q, np.maximum(xb @ theta_c.T, 0.0) * self.cost_scale

    def decide(self, obs: Observation) -> Decision:
        """Explore-or-exploit among the candidates it knows (its fitted options)."""
        self._check()
        known = [(c, j) for c in obs.candidates if (j := self._match(c)) is not None]
        if not known or obs.kind != "model":
            return self._defer(obs, "no candidate is a fitted option")
        lam_usd = decision_cost_weight(obs, self.cost_weight)
        lam = lam_usd * self.cost_scale  # the heads learn costs in cost units
        assert self.featurizer is not None
        x = self._x(self.featurizer.transform([obs.task.text], [obs.task.category])[0])
        self._last = (id(obs), x)
        cols = np.asarray([j for _, j in known])
        kc = self._known_cost([obs.task.text])
        cost = None if kc is None else kc[0]
        scores = self._pick_scores(x, lam, cost)[cols]
        pick = int(np.argmax(scores))
        chosen = known[pick][0].id
        q, c, width = self._heads(x, cost)
        greedy = int(np.argmax((q - lam * c)[cols]))
        probs = self._probabilities(x, lam, cost, cols, pick, obs, [cand.id for cand, _ in known])
        return Decision(
            chosen,
            probs,
            reason=f"{self.kind} at λ={lam_usd:g}/USD: {chosen} (E[q]={q[cols[pick]]:.2f}, ±{width[cols[pick]]:.2f})",
            scores={cand.id: float(s) for (cand, _), s in zip(known, scores, strict=True)},
            explored=pick != greedy,
            evidence={"n_updates": {o: int(v) for o, v in zip(self.options, self.counts, strict=True)}},
        )

    def _probabilities(
        self,
        x: np.ndarray,
        lam: float,
        cost: np.ndarray | None,
        cols: np.ndarray,
        pick: int,
        obs: Observation,
        ids: list[str],
    ) -> dict[str, float]:
        return one_hot(obs, ids[pick])

    def feedback(self, fb: Feedback) -> None:
        """Learn from the chosen option's quality and cost (skipped when the step has no quality)."""
        if fb.quality is None:
            return
        cand = fb.observation.candidate(fb.decision.chosen)
        j = self._match(cand) if cand is not None else self._col.get(fb.decision.chosen)
        if j is None:
            return
        if self._last is not None and self._last[0] == id(fb.observation):
            x = self._last[1][:-1]
        else:
            assert self.featurizer is not None
            x = self.featurizer.transform([fb.observation.task.text], [fb.observation.task.category])[0]
        self.update(x, j, float(fb.quality), None if fb.cost_usd is None else float(fb.cost_usd))

    # ------------------------------------------------------------------ persistence

    def to_card(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Card and arrays; a bandit that learned online only saves a zero cost model (it is not used)."""
        self._check()
        if self.cost_model is None:
            self.cost_model = CostModel(np.zeros((len(self.options), 2)))
        return super().to_card()

    def _params(self) -> dict[str, Any]:
        return {
            "alpha": self.alpha,
            "ridge": self.ridge,
            "cost_scale": self.cost_scale,
            "cost_weight_range": list(self.cost_weight_range),
            "use_cost_model": self.use_cost_model,
            "rng": np_rng_state(self._rng),
        }

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"a_inv": self.a_inv, "b_q": self.b_q, "b_c": self.b_c, "counts": self.counts}

    def _restore(self, arrays: Arrays, params: Card) -> None:
        self.alpha, self.ridge = params.num("alpha", lo=0.0), params.num("ridge", lo=1e-300)
        self.cost_scale = params.num("cost_scale", lo=1e-300)
        lo, hi = params.nums("cost_weight_range", length=2, lo=0.0)
        self.cost_weight_range = (lo, hi)
        k = len(self.options)
        self.b_q = arrays.get("b_q", shape=(k, None), dtype=np.float64)
        d = self.b_q.shape[1]
        if self.featurizer is not None and d != self.featurizer.dim + 1:
            raise params.error("alpha", f"the saved models have {d - 1} features, the featurizer {self.featurizer.dim}")
        self.a_inv = arrays.get("a_inv", shape=(k, d, d), dtype=np.float64)
        self.b_c = arrays.get("b_c", shape=(k, d), dtype=np.float64)
        self.counts = arrays.get("counts", shape=(k,), dtype=np.float64)
        self.use_cost_model = params.flag("use_cost_model", False)
        self._rng = np_rng_from(params, "rng", self.seed)
        self._last = None


class ThompsonPolicy(LinUCBPolicy):
    """Linear Thompson sampling: draws ``θ_q ~ N(θ_q, alpha²·A⁻¹)`` per option and takes the best sampled score.

    Its decisions carry Monte-Carlo propensities (``n_prob_samples`` extra draws) for off-policy evaluation.
    """

    kind = "thompson"

    def __init__(self, *args: Any, n_prob_samples: int = 64, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.n_prob_samples = int(n_prob_samples)

    def _params(self) -> dict[str, Any]:
        return {**super()._params(), "n_prob_samples": self.n_prob_samples}

    def _restore(self, arrays: Arrays, params: Card) -> None:
        super()._restore(arrays, params)
        self.n_prob_samples = params.whole("n_prob_samples", 64, lo=1, hi=1_000_000)

    def _sample_scores(self, x: np.ndarray, lam: float, n: int, cost: np.ndarray | None = None) -> np.ndarray:
        q, c, width = self._heads(x, cost)
        lam_c = lam * c if math.isfinite(lam) else c * 1e9
        # x·θ with θ ~ N(θ̂, α²A⁻¹) is normal with mean x·θ̂ and sd α·√(xᵀA⁻¹x)
        z = self._rng.standard_normal((n, len(q)))
        out: np.ndarray = (q - lam_c)[None, :] + self.alpha * width[None, :] * z
        return out

    def _pick_scores(self, x: np.ndarray, lam: float, cost: np.ndarray | None = None) -> np.ndarray:
        out: np.ndarray = self._sample_scores(x, lam, 1, cost)[0]
        return out

    def _probabilities(
        self,
        x: np.ndarray,
        lam: float,
        cost: np.ndarray | None,
        cols: np.ndarray,
        pick: int,
        obs: Observation,
        ids: list[str],
    ) -> dict[str, float]:
        draws = self._sample_scores(x, lam, self.n_prob_samples, cost)[:, cols].argmax(axis=1)
        freq = np.bincount(draws, minlength=len(cols)).astype(np.float64) + 0.5  # smoothed: never 0
        freq /= freq.sum()
        out = {c.id: 0.0 for c in obs.candidates}
        out.update({i: float(p) for i, p in zip(ids, freq, strict=True)})
        return out


__all__ = ["MAX_DIM", "LinUCBPolicy", "ThompsonPolicy"]
