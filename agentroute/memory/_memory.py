"""The :class:`Memory` an agent recalls from, driven module by module so that a router can choose each tier.

Three ways to use it:

* ``memory.recall(query)`` — the whole pipeline at one tier (``"mid"`` unless told), for scripts and examples;
* ``memory.recall_with(query, {"retrieve": "low", "filter": "mid", "link": "high", "time": "high"})`` — fixed tiers
  per module, used by evaluation and the environment;
* step by step, as the runtime does at its ``memory`` routing points: ``state = memory.start(query)``, then for each
  module ``memory.plan(module, query, state)`` (the tier options with worst-case tokens and USD to reserve),
  ``state = memory.run_module(module, tier, query, state, llm)``, and finally ``memory.finish(state)``.

A memory never decides what to spend and never touches a ledger: it reports costs, the caller enforces budgets.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from agentroute.errors import ConfigError
from agentroute.memory import _pipeline as pl
from agentroute.memory._bound import BoundMemory, MemoryContext
from agentroute.memory._data import Conversation, load_conversation
from agentroute.memory._index import embedding_function
from agentroute.memory._pipeline import MODULE_NAMES, MODULES, LLMCall, MemoryConfig
from agentroute.memory._state import TIERS, MemoryModule, Recall, RecallState, TierOption
from agentroute.memory._store import Store

Prices = tuple[Decimal, Decimal]


def _price(model: str) -> Prices | None:
    from agentroute.llm import price_of

    return price_of(model)


class Memory:
    """A conversation turned into a searchable memory whose every module is offered in low / mid / high tiers.

    Build one with :meth:`from_conversation`. ``prices`` overrides the USD per token used to price costs:
    ``{"context": (input, output), "call": (input, output)}``; by default they come from LiteLLM's price map for
    ``config.answer_model`` and ``config.call_model``. ``embed`` picks the vectors the mid and high tiers search:
    ``"hashing"`` (the default, offline hashed TF-IDF), ``"minilm"`` (all-MiniLM-L6-v2, the ``embeddings`` extra)
    or any function from texts to an ``(n, d)`` array; :attr:`retrieval` names the choice.
    """

    modules: tuple[MemoryModule, ...] = MODULES

    def __init__(
        self,
        conversation: Conversation,
        *,
        config: MemoryConfig | None = None,
        embed: Callable[[Sequence[str]], np.ndarray] | str | None = None,
        prices: Mapping[str, Prices | None] | None = None,
    ) -> None:
        if not isinstance(conversation, Conversation):
            raise ConfigError(
                f"Memory needs a Conversation, got {type(conversation).__name__}",
                name="conversation",
                hint="use Memory.from_conversation(...) for files, dicts and lists of turns",
            )
        if not conversation.turns:
            raise ConfigError(f"conversation {conversation.id!r} has no turns", name=conversation.id)
        self.config = config or MemoryConfig()
        self.conversation = conversation
        if isinstance(embed, str):
            self.retrieval = embed
            embed = embedding_function(embed)
        else:
            self.retrieval = "hashing" if embed is None else "custom"
        self.store = Store(conversation, embed=embed)
        self._prices: dict[str, Prices | None] = dict(prices) if prices is not None else {}

    @classmethod
    def from_conversation(
        cls,
        source: Conversation | str | os.PathLike[str] | Mapping[str, Any] | Iterable[Any],
        *,
        config: MemoryConfig | None = None,
        embed: Callable[[Sequence[str]], np.ndarray] | str | None = None,
        prices: Mapping[str, Prices | None] | None = None,
    ) -> Memory:
        """Build from a :class:`Conversation`, a LoCoMo JSON path or object, or a list of turns (strings or dicts)."""
        if isinstance(source, Conversation):
            conv = source
        elif isinstance(source, str | os.PathLike) and Path(source).suffix == ".json":
            conv = load_conversation(source)
        elif isinstance(source, Mapping):
            conv = Conversation.from_locomo(source)
        elif isinstance(source, str):
            raise ConfigError(
                f"{source!r} is neither a .json file nor a list of turns", name="source", hint="pass a list of strings"
            )
        elif isinstance(source, os.PathLike):
            raise ConfigError(f"{source} is not a .json conversation file", name=str(source))
        else:
            conv = Conversation.from_turns(source)
        return cls(conv, config=config, embed=embed, prices=prices)

    def __repr__(self) -> str:
        return f"Memory({self.conversation.id!r}, turns={self.store.n})"

    # -- prices ------------------------------------------------------------------------------------------------
    def prices(self, which: str) -> Prices | None:
        """USD per (input, output) token for ``"context"`` (answering model) or ``"call"`` (rerank model)."""
        if which not in self._prices:
            model = self.config.answer_model if which == "context" else self.config.call_model
            self._prices[which] = _price(model)
        return self._prices[which]

    def usd(self, context_tokens: int, call_input: int = 0, call_output: int = 0) -> Decimal | None:
        """Price of handing ``context_tokens`` to the agent plus a call of ``call_input``/``call_output`` tokens."""
        ctx = self.prices("context")
        total = Decimal(0)
        if context_tokens:
            if ctx is None:
                return None
            total += ctx[0] * context_tokens
        if call_input or call_output:
            call = self.prices("call")
            if call is None:
                return None
            total += call[0] * call_input + call[1] * call_output
        return total

    # -- step by step ------------------------------------------------------------------------------------------
    def start(self, query: str) -> RecallState:
        """The state before any module ran."""
        if not isinstance(query, str) or not query.strip():
            raise ConfigError("recall needs a non-empty query string", name="query")
        return RecallState(query=query, info=self.store.analyse(query))

    def plan(self, module: str, query: str, state: RecallState | None = None) -> list[TierOption]:
        """The tiers of ``module`` with their worst-case tokens and USD (tighter when ``state`` is given)."""
        self._check_module(module)
        out = []
        methods = next(m.methods for m in self.modules if m.name == module)
        for rank, tier in enumerate(TIERS):
            ctx, inp, outp = pl.worst_case(self.store, self.config, module, tier, state)
            desc: dict[str, Any] = {"module": module, "method": methods[tier], "memory": self.conversation.id}
            if inp:
                desc["model"] = self.config.call_model
                desc["max_tokens"] = outp
            desc["latency_s"] = 0.001 if not inp else 1.0
            out.append(TierOption(tier, rank, module, ctx, inp, outp, self.usd(max(ctx, 0), inp, outp), desc))
        return out

    def run_module(
        self, module: str, tier: str, query: str, state: RecallState | None = None, llm: LLMCall | None = None
    ) -> RecallState:
        """Run one module at one tier and return the new state (the old one is untouched)."""
        self._check_module(module)
        if tier not in TIERS:
            raise ConfigError(f"unknown memory tier {tier!r}", name=tier, hint=f"tiers: {', '.join(TIERS)}")
        if state is None:
            state = self.start(query)
        if module == "retrieve":
            new = pl.retrieve(self.store, self.config, tier, state)
        elif module == "filter":
            new = pl.filter_(self.store, self.config, tier, state, llm, self.prices("call"))
        elif module == "link":
            new = pl.link(self.store, self.config, tier, state)
        else:
            new = pl.timeline(self.store, self.config, tier, state)
        return new

    def finish(self, state: RecallState) -> Recall:
        """Render the context an agent reads, in conversation order, and total what it cost."""
        ids = sorted(set(state.selected) | set(state.added))
        text = "\n".join(self.store.render(i, state.stamp, state.notes) for i in ids)
        ctx_usd = self.usd(state.context_tokens)
        cost = None if ctx_usd is None or state.call_cost_usd is None else ctx_usd + state.call_cost_usd
        return Recall(
            query=state.query,
            ids=tuple(self.store.turns[i].dia_id for i in ids),
            text=text,
            context_tokens=state.context_tokens,
            call_input_tokens=state.call_input_tokens,
            call_output_tokens=state.call_output_tokens,
            cost_usd=cost,
            tiers=state.tiers,
            steps=state.steps,
        )

    def step_cost(self, state: RecallState) -> Decimal | None:
        """USD of the last module run on ``state`` (its context delta at the context price plus its call)."""
        if not state.steps:
            return Decimal(0)
        s = state.steps[-1]
        ctx = self.prices("context")
        if ctx is None or s.cost_usd is None:
            return None
        return ctx[0] * s.context_tokens + s.cost_usd

    # -- whole pipeline ----------------------------------------------------------------------------------------
    def recall_with(self, query: str, tiers: Mapping[str, str] | str, llm: LLMCall | None = None) -> Recall:
        """Run every module at the tier ``tiers`` names for it (one tier name applies to all)."""
        chosen = {m: tiers for m in MODULE_NAMES} if isinstance(tiers, str) else dict(tiers)
        unknown = set(chosen) - set(MODULE_NAMES)
        if unknown:
            raise ConfigError(f"unknown memory module(s) {sorted(unknown)}", hint=f"modules: {', '.join(MODULE_NAMES)}")
        state = self.start(query)
        for m in MODULE_NAMES:
            state = self.run_module(m, chosen.get(m, "low"), query, state, llm)
        return self.finish(state)

    def recall(self, query: str, tiers: Mapping[str, str] | str = "mid", llm: LLMCall | None = None) -> Recall:
        """The context for ``query``; inside an agent run, the runtime chooses the tiers instead."""
        return self.recall_with(query, tiers, llm)

    def bind(self, ctx: MemoryContext, llm: LLMCall | None = None) -> BoundMemory:
        """Bind this memory to one agent step (the runtime calls it for ``ctx.memory``): tiers become routing points.

        The high filter's model call goes through the task's model path (``ctx.complete``); pass ``llm`` to use a
        callable of yours instead (it must not charge anything: its cost is settled at the memory's routing point).
        """
        return BoundMemory(self, ctx, llm)

    def _check_module(self, module: str) -> None:
        if module not in MODULE_NAMES:
            raise ConfigError(
                f"unknown memory module {module!r}", name=module, hint=f"modules: {', '.join(MODULE_NAMES)}"
            )
