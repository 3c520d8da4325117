"""Memory tiers as routing points: the observation a policy sees at each module, and a small loop that drives them.

The runtime asks its policy at every module of a recall (``kind="memory"``). This module builds the same
:class:`~agentroute.routing.Observation` for evaluation and for :class:`~agentroute.envs.memory_tier.MemoryTierEnv`,
so a policy trained offline is served unchanged: the candidates are the module's tiers (``rank`` 0/1/2,
``cost_estimate`` the worst-case USD), unaffordable tiers are masked with the reason, and ``extra`` carries the query,
the module and facts about the recall so far (:func:`observation_extra`).

:func:`route` is the offline loop (no runtime, no ledger): it keeps a local budget, masks, asks the policy, runs the
module and tracks spend. It must stay in step with the runtime's loop; it never charges anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from agentroute.budget import Budget, BudgetStatus, Spend
from agentroute.errors import PolicyError
from agentroute.memory._memory import Memory
from agentroute.memory._pipeline import MODULE_NAMES, LLMCall, state_features
from agentroute.memory._state import Recall, RecallState, TierOption
from agentroute.routing import Candidate, Decision, Masked, Observation, RouterPolicy, TaskInfo


def observation_extra(memory: Memory, module: str, state: RecallState) -> dict[str, Any]:
    """What a memory routing point tells a policy beyond the candidates: query, module, state facts."""
    info = state.info
    return {
        "query": state.query,
        "module": module,
        "module_index": MODULE_NAMES.index(module),
        "n_modules": len(MODULE_NAMES),
        "temporal": info.temporal,
        "entities": len(info.entities),
        "speakers": len(info.speakers),
        "tiers_so_far": dict(state.tiers),
        **state_features(memory.store, state),
    }


def split_affordable(
    options: Sequence[TierOption], remaining_usd: Decimal | None
) -> tuple[tuple[Candidate, ...], tuple[Masked, ...]]:
    """Candidates whose worst case fits ``remaining_usd`` (all when unlimited), and the masked rest with reasons."""
    ok: list[Candidate] = []
    masked: list[Masked] = []
    for o in options:
        if remaining_usd is not None and o.cost_usd is not None and o.cost_usd > remaining_usd:
            masked.append(Masked(o.id, f"worst case ${o.cost_usd:.6f} exceeds ${remaining_usd:.6f} left"))
        else:
            ok.append(o.candidate())
    return tuple(ok), tuple(masked)


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
) -> Observation:
    """The observation of one memory routing point (candidates cheapest first, unaffordable ones masked)."""
    options = memory.plan(module, state.query, state)
    cands, masked = split_affordable(options, budget.remaining.usd)
    history = tuple((f"memory.{m}", t) for m, t in state.tiers.items())
    return Observation(
        task=TaskInfo(id=task_id, text=state.query, category=category),
        kind="memory",
        point=f"memory.{module}",
        node="memory",
        step=0,
        history=history,
        budget=budget,
        candidates=cands,
        masked=masked,
        extra=observation_extra(memory, module, state),
    )


@dataclass(frozen=True, slots=True)
class Routed:
    """What :func:`route` returns: the recall, each decision, and whether the budget cut the pipeline short."""

    recall: Recall
    decisions: tuple[Decision, ...]
    truncated: bool = False


def route(
    memory: Memory,
    query: str,
    policy: RouterPolicy,
    *,
    budget_usd: Decimal | float | str | None = None,
    task_id: str = "memory",
    llm: LLMCall | None = None,
) -> tuple[Recall, Routed]:
    """Recall ``query`` with ``policy`` choosing every module's tier; modules the budget cannot afford end it."""
    limit = None if budget_usd is None else Decimal(str(budget_usd))
    spent = Decimal(0)
    state = memory.start(query)
    decisions: list[Decision] = []
    truncated = False
    for module in MODULE_NAMES:
        obs = memory_observation(memory, module, state, budget=budget_status(limit, spent), task_id=task_id)
        if not obs.candidates:
            truncated = True
            break
        d = policy.decide(obs)
        if obs.candidate(d.chosen) is None:
            raise PolicyError(
                f"policy {policy.name!r} chose {d.chosen!r} at {obs.point}, which is not an affordable candidate",
                policy=policy.name,
                chosen=d.chosen,
            )
        decisions.append(d)
        state = memory.run_module(module, d.chosen, query, state, llm)
        step = memory.step_cost(state)
        spent += step if step is not None else Decimal(0)
    recall = memory.finish(state)
    return recall, Routed(recall, tuple(decisions), truncated)
