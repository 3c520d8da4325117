"""The routed frontier of memory tiers: a policy family swept over lambda, against every fixed tier combination.

A routed policy is one point of cost and evidence recall; sweeping its cost weight lambda traces a curve. The
frontier joins the curve's non-dominated points by straight lines: mixing two policies question by question reaches
any point between them. From it come the figures the memory issue asks about: the cost at which routed memory
reaches all-high's evidence recall, its recall at a share of all-high's cost and at all-low's cost, and how many of
the 81 fixed combinations it matches or beats at their own cost.

References that are not policies (they read the held-out outcomes) bound what routing could give:
:func:`ceilings` routes by the true question category, or by each question's own best combination, and
:func:`cascade_ceilings` asks what a second look would buy: recall cheaply, let a verifier of a given accuracy say
whether that context is enough, and recall again at dearer tiers when it is not.

Policies are fitted on one set of conversations and measured on another (``agentroute memory frontier`` uses the
train / test split of :func:`agentroute.memory._data.split`); :func:`sweep` does both for one family.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from agentroute.errors import ConfigError
from agentroute.memory._memory import Memory
from agentroute.memory.evaluate import COMBOS, ComboTable, combo_table, run_policy, summarise

LAMBDAS: tuple[float, ...] = (0.0, 8.0, 20.0, 40.0, 60.0, 80.0, 100.0, 120.0, 160.0, 200.0, 240.0, 280.0, 320.0,
                               400.0, 600.0, 800.0, 2000.0)
"""The cost weights (λ per USD) a family is swept over by default: recall given up per USD. The earlier sweep in
units of 1,000 gpt-4o context tokens ($0.0025), 0 to 5, times 400."""
FAMILIES: tuple[str, ...] = ("fitted-q", "rule", "ridge", "knn")
"""Policy families :func:`sweep` can fit per lambda."""

Point = tuple[float, float]


def front(points: Sequence[Mapping[str, Any]]) -> list[Point]:
    """Non-dominated ``(cost_usd, evidence_recall)`` points, cheapest first (cost and recall strictly rising)."""
    pts = sorted((float(p["cost_usd"]), -float(p["evidence_recall"])) for p in points)  # best first at equal cost
    out: list[Point] = []
    for c, neg_e in pts:
        if not out or (-neg_e > out[-1][1] and c > out[-1][0]):
            out.append((c, -neg_e))
    return out


def recall_at(frontier: Sequence[Point], cost: float) -> float | None:
    """Recall of ``frontier`` at ``cost``: linear between points, flat past the last, ``None`` before the first."""
    if not frontier or cost < frontier[0][0]:
        return None
    for (c0, e0), (c1, e1) in itertools.pairwise(frontier):
        if c0 <= cost <= c1:
            return e0 + (e1 - e0) * ((cost - c0) / (c1 - c0)) if c1 > c0 else e1  # fraction first: no underflow
    return frontier[-1][1]


def cost_to_reach(frontier: Sequence[Point], target: float) -> float | None:
    """The least cost at which ``frontier`` reaches ``target`` recall (``None`` if it never does)."""
    prev: Point | None = None
    for c, e in frontier:
        if e >= target:
            if prev is None:
                return c
            c0, e0 = prev
            return c0 + (c - c0) * ((target - e0) / (e - e0))
        prev = (c, e)
    return None


def targets(
    points: Sequence[Mapping[str, Any]],
    references: Mapping[str, Mapping[str, Any]],
    fixed: Sequence[Mapping[str, Any]] = (),
    share: float = 0.6,
) -> dict[str, Any]:
    """Where a curve stands against ``references`` (``"all-high"``, ``"all-low"``) and the fixed combinations."""
    hi, lo = references["all-high"], references["all-low"]
    f = front(points)
    reach = cost_to_reach(f, hi["evidence_recall"])
    at_share = recall_at(f, share * hi["cost_usd"])
    at_low = recall_at(f, lo["cost_usd"])
    matched = [c for c in fixed if (r := recall_at(f, c["cost_usd"])) is not None and r >= c["evidence_recall"]]
    pct = f"{round(100 * share)}pct"
    return {
        "cost_share_to_reach_all_high_recall": None if reach is None else reach / hi["cost_usd"],
        f"recall_at_{pct}_of_all_high_cost": at_share,
        f"recall_share_of_all_high_at_{pct}": None if at_share is None else at_share / hi["evidence_recall"],
        "recall_at_all_low_cost": at_low,
        "beats_all_low_at_its_cost": at_low is not None and at_low > lo["evidence_recall"],
        "fixed_combinations_matched_or_beaten": len(matched) if fixed else None,
        "fixed_combinations_missed": [list(c["tiers"]) for c in fixed if c not in matched] if fixed else None,
    }


def ceilings(table: ComboTable, unit_usd: float) -> dict[str, list[dict[str, float]]]:
    """Two references that are not policies: tiers picked with the measured questions' own outcomes.

    ``category oracle``: one fixed combination per question category (a label a router does not see), the best on
    those questions at each lambda: the most that routing by question type could give. ``question oracle``: the best
    combination for each question.
    """
    n = len(table.keys)
    rows = np.arange(n)
    groups = [np.flatnonzero(table.categories == g) for g in sorted(set(table.categories.tolist()))]
    out: dict[str, list[dict[str, float]]] = {"category oracle (ceiling)": [], "question oracle (ceiling)": []}
    for lam in (0.0, *np.geomspace(1e-3, 1e4, 200)):
        util = table.evidence - lam * table.cost_usd / unit_usd
        j = util.argmax(axis=1)
        q_cost, q_ev = float(table.cost_usd[rows, j].mean()), float(table.evidence[rows, j].mean())
        out["question oracle (ceiling)"].append({"cost_usd": q_cost, "evidence_recall": q_ev})
        ev = cost = 0.0
        for idx in groups:
            k = int(util[idx].mean(axis=0).argmax())
            ev += float(table.evidence[idx, k].sum())
            cost += float(table.cost_usd[idx, k].sum())
        out["category oracle (ceiling)"].append({"cost_usd": cost / n, "evidence_recall": ev / n})
    return out


VERIFIER_ACCURACIES: tuple[float, ...] = (1.0, 0.9, 0.8)
"""Accuracies of the verifier :func:`cascade_ceilings` assumes by default."""


def cascade_ceilings(
    table: ComboTable, accuracies: Sequence[float] = VERIFIER_ACCURACIES
) -> dict[str, list[dict[str, float]]]:
    """What a two-step memory cascade would reach with a verifier of each accuracy (expected values, not a policy).

    A cascade recalls at one fixed combination, asks a verifier whether that context already holds every gold turn
    the second, dearer combination would find, and recalls again with the second when the verifier says no; the
    answering agent then reads both contexts, so an escalated question pays for both. The verifier is right with
    probability ``accuracy`` on every question; it stands for the answering model judging its own context, which
    no offline signal here reproduces (it reads the held-out outcomes). Every pair of the 81 combinations, the
    cheaper on average first, is a point; the result keeps each accuracy's non-dominated points.
    """
    for q in accuracies:
        if not 0.5 <= q <= 1.0:
            raise ConfigError(f"verifier accuracy {q} is outside [0.5, 1]", name="accuracies",
                              hint="0.5 is a coin toss, 1.0 a perfect verifier")
    ev, usd = table.evidence, table.cost_usd
    order = np.argsort(usd.mean(axis=0), kind="stable")
    out: dict[str, list[dict[str, float]]] = {}
    for q in accuracies:
        pts: list[dict[str, float]] = []
        for a, b in itertools.combinations(order.tolist(), 2):  # a: the cheaper first look, b: the second
            enough = ev[:, a] >= ev[:, b]
            escalate = np.where(enough, 1.0 - q, q)
            pts.append({
                "evidence_recall": float((ev[:, a] + escalate * (ev[:, b] - ev[:, a])).mean()),
                "cost_usd": float((usd[:, a] + escalate * usd[:, b]).mean()),
            })
        name = "cascade, perfect verifier (ceiling)" if q == 1.0 else f"cascade, {q:.0%}-accurate verifier (ceiling)"
        out[name] = [{"cost_usd": c, "evidence_recall": e} for c, e in front(pts)]
    return out


@dataclass
class TrainingData:
    """What the families fit from, built on first use: the fitted-Q transitions and the fixed-combination table."""

    memories: Sequence[Memory]
    progress: Callable[[int], None] | None = None
    _transitions: Any = None
    _table: ComboTable | None = None

    @property
    def unit_usd(self) -> float:
        """USD of 1,000 context tokens of the answering model: the unit the predictive baselines learn costs in."""
        return float(self.memories[0].usd(1000) or 1.0)

    @property
    def transitions(self) -> Any:
        """Every prefix state of every question (:func:`agentroute.memory.fitted.collect`), for fitted-q."""
        if self._transitions is None:
            from agentroute.memory.fitted import collect

            self._transitions = collect(self.memories, progress=self.progress)
        return self._transitions

    @property
    def table(self) -> ComboTable:
        """Every question x every fixed combination, for the rule and predictive families."""
        if self._table is None:
            self._table = combo_table(self.memories, progress=self.progress)
        return self._table


def fit_family(family: str, data: TrainingData, cost_weight: float, *, mix: float = 1.0) -> Any:
    """One policy of ``family`` fitted on ``data`` at ``cost_weight`` (λ per USD)."""
    from agentroute.memory.fitted import FittedQPolicy
    from agentroute.memory.policies import MemoryRulePolicy, PredictivePolicy

    if family == "fitted-q":
        return FittedQPolicy.fit(data.transitions, cost_weight=cost_weight, mix=mix)
    if family == "rule":
        return MemoryRulePolicy.fit(data.table, cost_weight=cost_weight, mix=mix)
    if family in ("ridge", "knn"):
        return PredictivePolicy.fit(data.table, method=family, cost_weight=cost_weight, unit_usd=data.unit_usd,
                                    mix=mix)
    raise ConfigError(f"unknown memory policy family {family!r}", name=family, hint=f"one of {', '.join(FAMILIES)}")


def sweep(
    family: str,
    data: TrainingData,
    test: Sequence[Memory],
    cost_weights: Sequence[float] = LAMBDAS,
    *,
    mix: float = 1.0,
    on_point: Callable[[float], None] | None = None,
) -> list[dict[str, Any]]:
    """Fit ``family`` at each cost weight on ``data`` and measure it on ``test``: one point per cost weight."""
    if family not in FAMILIES:
        raise ConfigError(f"unknown memory policy family {family!r}", name=family, hint=f"one of {', '.join(FAMILIES)}")
    if not cost_weights or any(not np.isfinite(w) or w < 0 for w in cost_weights):
        raise ConfigError(f"cost weights must be finite and >= 0, got {list(cost_weights)}", name="cost_weights")
    points = []
    for lam in cost_weights:
        s = summarise(run_policy(test, fit_family(family, data, float(lam), mix=mix)))
        points.append({"cost_weight": float(lam), **s["overall"], "tier_mix": s["tier_mix"],
                       "per_category": s["per_category"]})
        if on_point is not None:
            on_point(float(lam))
    return points


def fixed_points(table: ComboTable) -> list[dict[str, Any]]:
    """Every fixed combination's mean outcome, with its tiers."""
    return [{"tiers": list(c), **table.mean(c)} for c in COMBOS]
