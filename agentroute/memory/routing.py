"""Memory tiers routed offline, through the same kernel as a graph run: :func:`route` and :func:`memory_observation`.

Offline evaluation (:func:`agentroute.memory.evaluate.run_policy`) and the fitting code recall with no graph. They
still go through the task's one routing point: :func:`route` gives the recall a real
:class:`~agentroute.budget.Ledger` (a USD limit, or none) and a :class:`~agentroute.routing.TaskRouter`, and lets
:class:`~agentroute.memory._bound.BoundMemory` drive the modules exactly as it does inside a graph: the same options,
masks and reasons, reservations, settlement (a shrunk context books 0), feedback and point names
(``<agent>.memory.<module>``; ``agent`` names the agent the policy will serve, ``"answer"`` by default). Only the
model step differs: offline it is the deterministic stand-in (or the ``llm`` you pass), settled at the memory's
routing point.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from agentroute.budget import Budget, BudgetStatus, Ledger, Spend
from agentroute.memory._bound import (
    BoundMemory,
    memory_point,
    module_options,
    observation_extra,
    offered_tiers,
)
from agentroute.memory._memory import Memory
from agentroute.memory._pipeline import MODULE_NAMES, LLMCall
from agentroute.memory._state import TIERS, Recall, RecallState
from agentroute.routing import Decision, DecisionRecord, Observation, TaskInfo, TaskOutcome, TaskRouter

DEFAULT_AGENT = "answer"
"""The agent name offline drivers use in point names unless told (the docs' memory agent is ``answer``)."""


class OfflineContext:
    """The :class:`~agentroute.memory._bound.MemoryContext` of a recall with no graph: a router and an agent name."""

    __slots__ = ("_llm", "_node", "_router")

    def __init__(self, router: TaskRouter, node: str = DEFAULT_AGENT, llm: LLMCall | None = None) -> None:
        self._router = router
        self._node = node
        self._llm = llm
        router.node = node

    @property
    def node(self) -> str:
        """The agent the recall is made for."""
        return self._node

    @property
    def router(self) -> TaskRouter:
        """The recall's routing kernel."""
        return self._router

    def model_call(self, point: str) -> LLMCall | None:
        """No model path offline: the stand-in (or the ``llm`` given) runs, settled at the memory's point."""
        return None


def budget_status(limit_usd: Decimal | None, spent_usd: Decimal) -> BudgetStatus:
    """A :class:`~agentroute.budget.BudgetStatus` for a USD-only budget (``None`` = unlimited)."""
    limits = Budget(usd=limit_usd)
    remaining = Budget(usd=None if limit_usd is None else max(Decimal(0), limit_usd - spent_usd))
    return BudgetStatus(limits=limits, spent=Spend(usd=spent_usd), remaining=remaining)


def memory_observation(
    memory: Memory,
    module: str,
    state: RecallState,
    *,
    budget: BudgetStatus,
    task_id: str = "memory",
    category: str | None = None,
    agent: str = DEFAULT_AGENT,
) -> Observation:
    """The observation the kernel makes at one memory routing point, for ``budget`` (masked, cheapest first)."""
    router = TaskRouter(Ledger(budget.limits), None, TaskInfo(id=task_id, text=state.query, category=category),
                        node=agent, record=False)
    router.history = [(memory_point(agent, m), t) for m, t in state.tiers.items()]
    pending = router.observe("memory", memory_point(agent, module), module_options(memory, module, state),
                             extra=observation_extra(memory, module, state), status=budget)
    return pending.observation


@dataclass(frozen=True, slots=True)
class Routed:
    """What :func:`route` returns: the recall, each decision, and whether the budget cut the pipeline short."""

    recall: Recall
    decisions: tuple[Decision, ...]
    truncated: bool = False
    records: tuple[DecisionRecord, ...] = ()
    spent: Spend | None = None
    """What the recall's ledger booked (a shrunk context books 0, so it may exceed ``recall.cost_usd``)."""


def route(
    memory: Memory,
    query: str,
    policy: Any,
    *,
    budget_usd: Decimal | float | str | None = None,
    task_id: str = "memory",
    llm: LLMCall | None = None,
    agent: str = DEFAULT_AGENT,
    category: str | None = None,
) -> tuple[Recall, Routed]:
    """Recall ``query`` with ``policy`` choosing every module's tier, on a real ledger.

    A module nothing is affordable for ends the recall (truncated, with what was recalled so far).
    """
    limit = None if budget_usd is None else Decimal(str(budget_usd))
    ledger = Ledger(Budget(usd=limit))
    router = TaskRouter(ledger, policy, TaskInfo(id=task_id, text=query, category=category))
    bound = BoundMemory(memory, OfflineContext(router, agent, llm), llm)
    state, stop = bound.run(query, offered_tiers(None))
    recall = memory.finish(state)
    records = tuple(router.decisions())
    spent = ledger.spent
    router.end_task(TaskOutcome(task_id, None, spent.usd, spent.tokens, True, stop is not None,
                                stop or "completed", records))
    decisions = tuple(_decision(r) for r in records)
    return recall, Routed(recall, decisions, stop is not None, records, spent)


def _decision(r: DecisionRecord) -> Decision:
    return Decision(r.chosen, dict(r.probabilities), r.reason, dict(r.scores), r.explored, dict(r.evidence))


__all__ = [
    "DEFAULT_AGENT",
    "MODULE_NAMES",
    "TIERS",
    "OfflineContext",
    "Routed",
    "budget_status",
    "memory_observation",
    "memory_point",
    "module_options",
    "observation_extra",
    "route",
]
