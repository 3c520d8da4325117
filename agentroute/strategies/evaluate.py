"""Strategies evaluated on a recorded table: every query a task under its own budget, every call a recorded replay.

:func:`run_strategy` drives one strategy over a table's queries: each query is a task with a fresh ledger (``budget``
USD, or unlimited) and its own :class:`~agentroute.routing.TaskRouter`; the strategy's calls go to a
:class:`~agentroute.providers.Recorded` replay of the table, so its quality is the grade the release gave the answer
it finally returned (0 when it returned none, or a cut one) and its cost the recorded USD of every call it made.
:func:`evaluate_strategies` runs several and adds what every report needs: the single models (their table means,
which is what a replay of each returns), the zero-router hull (mixtures of single models) and each strategy's
distance above it at its own cost. Decision records are kept (``Report.records``) for off-policy evaluation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import numpy as np

from agentroute.budget import Budget, Ledger
from agentroute.errors import ConfigError
from agentroute.policies._frontier import hull_value, upper_hull
from agentroute.routing import DecisionRecord, TaskInfo, TaskRouter
from agentroute.strategies._driver import ByModel, Caller, Outcome

if TYPE_CHECKING:
    from agentroute.data.table import RoutingTable


class Single:
    """One model answers every task (the baseline each strategy is compared to)."""

    def __init__(self, tier: str) -> None:
        self.tier = tier
        self.name = tier
        self.tiers = (tier,)

    def run(self, caller: Caller) -> Outcome:
        """Call the tier once, if the budget allows it."""
        c = caller.take("single", self.tier, reason=f"single model {self.tier}")
        a = None if c is None else caller.call(c, [{"role": "user", "content": caller.router.task.text}])
        return caller.outcome(a)


@dataclass
class Report:
    """What one strategy did over a table: per-query outcomes, and the decision records of every task."""

    name: str
    outcomes: list[Outcome]
    records: list[DecisionRecord] = field(default_factory=list)
    budget_usd: Decimal | None = None
    overspent: int = 0
    """Tasks whose spend went past their budget (must be 0)."""

    def summary(self) -> dict[str, Any]:
        """Means per query (``quality``, ``cost_usd``, ``calls``), truncation and what the evidence counts."""
        q = [0.0 if o.quality is None else float(o.quality) for o in self.outcomes]
        c = [0.0 if o.cost_usd is None else float(o.cost_usd) for o in self.outcomes]
        n = max(1, len(self.outcomes))
        out: dict[str, Any] = {
            "quality": float(np.mean(q)) if q else 0.0,
            "cost_usd": float(np.mean(c)) if c else 0.0,
            "calls": sum(o.calls for o in self.outcomes) / n,
            "truncated": sum(o.truncated for o in self.outcomes) / n,
            "no_answer": sum(o.text is None for o in self.outcomes) / n,
            "cost_unknown": sum(o.cost_usd is None for o in self.outcomes),
            "overspent": self.overspent,
            "budget_usd": None if self.budget_usd is None else float(self.budget_usd),
            "n_queries": len(self.outcomes),
        }
        esc = [o.evidence.get("escalation") for o in self.outcomes if "escalation" in o.evidence]
        if esc:
            out["escalation_avoided"] = sum(not e for e in esc) / len(esc)
            out["sigma_mean"] = float(np.mean([o.evidence["sigma"] for o in self.outcomes if "sigma" in o.evidence]))
        for key in ("cache_hit", "wrong_hit", "fallback", "rounds", "set_size"):
            vals = [o.evidence[key] for o in self.outcomes if key in o.evidence]
            if vals:
                out[key] = float(np.mean([float(v) for v in vals]))
        return out


def run_strategy(strategy: Any, table: RoutingTable, *, provider: Any = None, tiers: Mapping[str, Any] | None = None,
                 budget_usd: Decimal | str | float | None = None, reveal_category: bool = True,
                 stream: Sequence[Any] | None = None,
                 on_task: Callable[[int, Outcome], None] | None = None) -> Report:
    """Run ``strategy`` on every query of ``table`` (see the module docstring).

    ``provider`` defaults to ``Recorded(table)``; ``tiers`` to one tier per table option. ``reveal_category`` gives
    each task its category (the answer family and the replay's worst case per category read it). ``stream`` (a list
    of :class:`~agentroute.strategies.cache.StreamItem`) runs a cached strategy over a stream with repeats instead of
    the table's rows; a strategy with a ``stream`` attribute (``Cached``) builds its own with
    :func:`~agentroute.strategies.cache.repeat_stream`.
    """
    if provider is None:
        from agentroute.providers import Recorded

        if not table.has_responses:
            raise ConfigError(f"strategy {getattr(strategy, 'name', strategy)!r} needs recorded responses, and "
                              "this table has no 'response' column", name="response",
                              hint="convert RouterBench with `agentroute data convert --format routerbench`, which "
                                   "keeps each model's answer")
        provider = Recorded(table)
    if tiers is None:
        tiers = {t.name: t for t in provider.tiers()}
    own = list(getattr(strategy, "own_tiers", ()) or ())
    if own:  # a strategy's own model (the LLM router's) beside the recorded workers
        tiers = {**tiers, **{t.name: t for t in own}}
        mine = getattr(strategy, "own_provider", None)
        if mine is not None:
            provider = ByModel({t.model: mine for t in own}, provider)
    for t in getattr(strategy, "tiers", ()):
        if t not in tiers:
            raise ConfigError(f"strategy {strategy.name!r} calls tier {t!r}, which is not offered", name=t,
                              hint=f"tiers: {', '.join(tiers)}")
    limit = None if budget_usd is None else Decimal(str(budget_usd))
    rep = Report(str(getattr(strategy, "name", strategy)), [], budget_usd=limit)
    if stream is None and getattr(strategy, "stream", None) is not None:
        from agentroute.strategies.cache import repeat_stream

        stream = repeat_stream(table, **strategy.stream)
    items = stream if stream is not None else range(len(table))
    for k, item in enumerate(items):
        i = item if isinstance(item, int) else item.row
        qid = str(table.query_ids[i])
        task = TaskInfo(id=qid if stream is None else f"{qid}@{k}", text=str(table.texts[i]),
                        category=table.categories[i] if reveal_category else None)
        ledger = Ledger(Budget(usd=limit))
        router = TaskRouter(ledger, None, task, node="strategy")
        caller = Caller(router, tiers, provider)
        # on a stream: the query as sent (maybe a paraphrase); a miss asks the recorded prompt it stands for
        o = strategy.run(caller) if stream is None else strategy.run(caller, item.text, source=qid, now=item.at)
        spent = ledger.spent.usd
        if limit is not None and spent is not None and spent > limit:
            rep.overspent += 1
        rep.outcomes.append(o)
        rep.records.extend(router.decisions())
        if on_task is not None:
            on_task(k, o)
    return rep


def evaluate_strategies(table: RoutingTable, strategies: Sequence[Any], *, budget_usd: Any = None,
                        provider: Any = None) -> dict[str, Any]:
    """Metrics of every strategy on ``table`` beside the single models and their zero-router hull (JSON-safe)."""
    if not table.has_cost:
        raise ConfigError("strategy evaluation needs every cost of the table", name="cost_usd",
                          hint="add prices first (--prices PRICES.json)")
    q_opt, c_opt = table.quality.mean(axis=0), table.cost.mean(axis=0)
    hull = upper_hull(c_opt, q_opt)
    best = int(np.lexsort((c_opt, -q_opt))[0])
    out: dict[str, Any] = {
        "table": {"n_queries": len(table), "options": list(table.options)},
        "single_options": {o: {"cost": float(c_opt[j]), "quality": float(q_opt[j])}
                           for j, o in enumerate(table.options)},
        "best_single": {"option": table.options[best], "cost": float(c_opt[best]), "quality": float(q_opt[best])},
        "zero_router": {"hull": [[float(c), float(q)] for c, q in hull]},
        "strategies": {},
    }
    reports: dict[str, Report] = {}
    for s in strategies:
        rep = run_strategy(s, table, provider=provider, budget_usd=budget_usd)
        reports[rep.name] = rep
        m = rep.summary()
        m["hull_quality_at_cost"] = hull_value(hull, m["cost_usd"])
        m["above_hull"] = m["quality"] - m["hull_quality_at_cost"]
        out["strategies"][rep.name] = m
    out["_reports"] = reports
    return out


def plot_strategies(result: Mapping[str, Any], path: Any, *, title: str = "") -> None:
    """The cost–quality plot: every single model, the zero-router hull, and each strategy's point."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5))
    for o, v in result["single_options"].items():
        ax.scatter(v["cost"], v["quality"], marker="s", color="grey", s=22, zorder=3)
        ax.annotate(o.split("/")[-1], (v["cost"], v["quality"]), xytext=(4, 2), textcoords="offset points",
                    fontsize=6, color="dimgrey")
    h = np.asarray(result["zero_router"]["hull"])
    if len(h) > 1:
        xs = np.vstack([np.linspace(h[i], h[i + 1], 24, endpoint=False) for i in range(len(h) - 1)] + [h[-1:]])
        ax.plot(xs[:, 0], xs[:, 1], "--", color="grey", label="zero router (single-model hull)")
    markers = "o^vD*Ph"
    for k, (name, m) in enumerate(result["strategies"].items()):
        ax.scatter(m["cost_usd"], m["quality"], marker=markers[k % len(markers)], s=60, zorder=4,
                   label=f"{name}: {m['quality']:.3f} at ${m['cost_usd']:.5f}")
    ax.set_xscale("log")
    ax.set_xlabel("mean cost per query (USD, log scale)")
    ax.set_ylabel("mean quality")
    ax.set_title(title or "strategies on recorded answers")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


__all__ = ["Report", "Single", "evaluate_strategies", "plot_strategies", "run_strategy"]
