"""The queries of a routing table, routed one at a time through the kernel: what ``evaluation`` and ``replay`` share.

A routing table has one routing point per query (which model answers), named ``model``. Both table drivers offer the
same candidates (:func:`candidates_of`: the table's options ranked by mean cost, priced at their mean known cost,
``None`` when no cost of the option is known, ``descriptor["model"]`` the option's name) and go through the same
:class:`~agentroute.routing.TaskRouter` (an unlimited :class:`~agentroute.budget.Ledger` per query), so a policy sees
the same observation in a sweep as in a replay, and as in a graph run.

λ (``cost_weight``) is **per USD** in both drivers. A policy reads it from ``obs.extra`` (:func:`lambda_extra`) in
the unit it prices costs in, so whatever its own ``cost_scale``, it trades quality against cost per USD.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import numpy as np

from agentroute.budget import Budget, Ledger, Spend
from agentroute.routing import Candidate, Choice, Option, Policy, TaskInfo, TaskOutcome, TaskRouter

if TYPE_CHECKING:
    from agentroute.data.table import RoutingTable

POINT = "model"
"""The one routing point of a table's query."""


def candidates_of(table: RoutingTable) -> tuple[Candidate, ...]:
    """The table's options as model candidates, ranked by mean known cost (cheapest first; unknown ones last).

    ``cost_estimate`` is the option's mean known USD cost (``None`` when none is known, never 0);
    ``descriptor["model"]`` is its name.
    """
    costs = table.cost
    means = []
    for j in range(costs.shape[1]):
        col = costs[:, j]
        known = col[~np.isnan(col)]
        means.append(float(known.mean()) if known.size else math.nan)
    order = sorted(range(len(means)), key=lambda j: (math.isnan(means[j]), means[j], table.options[j]))
    rank = {j: r for r, j in enumerate(order)}
    return tuple(
        Candidate(
            id=table.options[j],
            kind="model",
            rank=rank[j],
            cost_estimate=None if math.isnan(means[j]) else Decimal(repr(means[j])),
            descriptor={"model": table.options[j]},
        )
        for j in order
    )


def lambda_extra(cost_weight: float, policy: Any = None) -> dict[str, float]:
    """What a table driver tells ``policy`` of λ (``cost_weight``, **per USD**) in ``obs.extra``.

    Policies price ``quality − λ·cost/cost_scale``; a policy that carries its own ``cost_scale`` (the unit it was
    fitted in) is handed λ in that unit (``λ·cost_scale``, with its ``cost_scale``), so it prices costs per USD
    exactly; any other policy gets ``cost_scale`` 1.0: costs in USD.
    """
    scale = getattr(policy.unwrapped if isinstance(policy, Policy) else policy, "cost_scale", None)
    s = float(scale) if isinstance(scale, int | float) and scale > 0 else 1.0
    return {"cost_weight": float(cost_weight) * s, "cost_scale": s}


class TableRouter:
    """Routes the queries of ``table`` one at a time (see the module docstring).

    ``learn=False`` evaluates a frozen policy (no feedback, no end-of-task credit); ``reveal_category`` shows the
    query's category to the policy (an evaluation may; a replay of a stream does not).
    """

    def __init__(self, table: RoutingTable, policy: Any, *, extra: Mapping[str, Any], point: str = POINT,
                 node: str = "table", learn: bool = True, reveal_category: bool = False) -> None:
        self.table = table
        self.policy = Policy(policy)
        # a mean is no worst case: the query's real cost is booked as it is, against no USD held
        self.options = tuple(Option(c, Spend(usd=c.cost_estimate), Spend(usd=None)) for c in candidates_of(table))
        self.column = {o: j for j, o in enumerate(table.options)}
        self.extra = dict(extra)
        self.point = point
        self.node = node
        self.learn = learn
        self.reveal_category = reveal_category

    def decide(self, i: int) -> Choice:
        """Route query ``i``: the choice holds its option's (unlimited) reservation until :meth:`settle`."""
        t = self.table
        task = TaskInfo(id=str(t.query_ids[i]), text=str(t.texts[i]),
                        category=t.categories[i] if self.reveal_category else None)
        router = TaskRouter(Ledger(Budget()), self.policy, task, node=self.node, record=False, learn=self.learn)
        return router.route("model", self.point, self.options, extra=self.extra)

    def column_of(self, choice: Choice) -> int:
        """The table column of the option chosen."""
        return self.column[str(choice.chosen)]

    def settle(self, choice: Choice, quality: float, cost: float) -> None:
        """Book the chosen option's outcome (an unknown cost, NaN in the table, stays unknown) and end the task."""
        usd = None if math.isnan(cost) else Decimal(repr(cost))
        choice.commit(Spend(usd=usd))
        choice.close(quality=quality, latency=0.0)
        if self.learn:  # the per-query router's task ends here
            choice.router.end_task(TaskOutcome(choice.router.task.id, quality, usd, 0, True, False, "completed"))


__all__ = ["POINT", "TableRouter", "candidates_of", "lambda_extra"]
