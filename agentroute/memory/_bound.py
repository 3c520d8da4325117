"""A memory bound to one agent step: every module's tier is a routing point of the task (``ctx.route``).

``ctx.memory.recall(query)`` runs the pipeline module by module. At each module the runtime masks the tiers the
budget cannot afford, asks the task's policy (``kind="memory"``, point ``<agent>.memory.<module>``), reserves the
chosen tier's worst case (USD and tokens), and after the module ran this class settles what it really spent. A
module that shortened the context (the filter) settles 0, never a negative amount, so the ledger stays conservative.

The high filter's model call goes through ``llm`` when one is given (``Memory.bind(ctx, llm=...)``); the callable
must not charge the ledger itself, its cost is settled here. Without one, a deterministic stand-in ranks, and its
tokens are settled at the call model's price, exactly as evaluation and the environment count them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from agentroute.budget import Spend
from agentroute.memory._pipeline import MODULE_NAMES, LLMCall
from agentroute.memory._state import Recall

if TYPE_CHECKING:
    from agentroute.memory._memory import Memory


class BoundMemory:
    """What ``ctx.memory`` is inside an agent: :meth:`recall` with tiers chosen by the task's policy."""

    __slots__ = ("_ctx", "_llm", "memory")

    def __init__(self, memory: Memory, ctx: Any, llm: LLMCall | None = None) -> None:
        self.memory = memory
        self._ctx = ctx
        self._llm = llm

    def recall(self, query: str) -> Recall:
        """The context for ``query``; each module's tier is decided, reserved and settled by the runtime."""
        from agentroute.memory.routing import observation_extra

        mem, ctx = self.memory, self._ctx
        state = mem.start(query)
        agent = getattr(getattr(ctx, "agent", None), "name", "agent")
        for module in MODULE_NAMES:
            options = mem.plan(module, query, state)
            choice = ctx.route(
                "memory",
                f"{agent}.memory.{module}",
                [o.candidate() for o in options],
                extra=observation_extra(mem, module, state),
            )
            try:
                state = mem.run_module(module, choice.chosen, query, state, self._llm)
            except Exception as e:
                choice.fail(f"{type(e).__name__}: {str(e)[:200]}")
                raise
            step = state.steps[-1]
            usd = mem.step_cost(state)
            tokens = max(0, step.context_tokens) + step.call_input_tokens + step.call_output_tokens
            choice.settle(Spend(usd=None if usd is None else max(usd, Decimal(0)), tokens=tokens))
        return mem.finish(state)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.memory, name)

    def __repr__(self) -> str:
        return f"BoundMemory({self.memory!r})"
