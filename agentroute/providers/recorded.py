"""A replay of what real models answered, registered with LiteLLM, so the real call path runs on recorded outputs.

``Recorded(table)`` holds a routing table with a ``response`` column (RouterBench keeps every model's answer, see
``agentroute data convert --format routerbench``). A tier's call on a recorded prompt returns what that model really
answered, with its token usage and its recorded USD cost; the grade the release gave that answer is the reply's
quality (:meth:`Recorded.quality_of`), and its recorded USD cost is :meth:`Recorded.cost_of`.

Which recording answers a call: the **last user message** of the call, stripped, is looked up among the table's
query texts (the first query with that text answers); the tier's ``model`` is the table option (or is mapped to one
with ``models={model: option}``). A prompt, a model or an answer the table does not hold is a
:class:`~agentroute.errors.NotRecorded` error naming it — a replay never invents an answer. Through LiteLLM that error
arrives as a non-retryable ``BadRequestError`` whose ``__cause__`` is the ``NotRecorded`` (the runtime then reports a
:class:`~agentroute.errors.ProviderError` that says so); :func:`agentroute.strategies` drivers re-raise it as is.

Tokens: usage reports the table's ``input_tokens`` and ``output_tokens`` (RouterBench's are estimated, ``ceil(chars /
4)``). An answer longer than the call's ``max_tokens`` is cut there (``finish_reason="length"``); its grade was given
to the whole answer, so a cut reply has no quality (``None``). Costs: the graph runtime prices a call at its tier's
per-token prices (:meth:`Recorded.tiers` sets them to the option's mean USD per recorded token); the exact recorded
USD of a reply is :meth:`cost_of`, which the strategies book. :meth:`worst_case` is the dearest recording of a model
(in a category, when given): no replayed call can cost more, so it is what the strategies reserve.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import threading
import weakref
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import numpy as np

from agentroute.errors import ConfigError, NotRecorded
from agentroute.llm import ModelTier, RawReply, ensure_litellm

if TYPE_CHECKING:
    from agentroute.data.table import RoutingTable

PROVIDER = "agentroute_rec"
_instances: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()
_ids = itertools.count(1)


def _short(text: str, n: int = 80) -> str:
    one = " ".join(text.split())
    return one if len(one) <= n else one[: n - 3] + "..."


def prompt_of(messages: Sequence[Mapping[str, Any]]) -> str:
    """The text a recording is looked up by: the last user message's content, stripped."""
    for m in reversed(messages):
        if m.get("role") == "user":
            return str(m.get("content") or "").strip()
    return ""


class Recorded:
    """Replays ``table``'s recorded answers behind LiteLLM (see the module docstring).

    ``models`` maps tier models to table options when their names differ. ``latency`` is the reported seconds of a
    call (``realtime=True`` sleeps for it).
    """

    name = "recorded"
    provider = PROVIDER

    def __init__(self, table: RoutingTable, *, models: Mapping[str, str] | None = None, latency: float = 0.0,
                 realtime: bool = False) -> None:
        if not getattr(table, "has_responses", False):
            raise ConfigError("Recorded(table) needs a table with a 'response' column (what each option answered)",
                              name="response",
                              hint="convert RouterBench with `agentroute data convert --format routerbench`, "
                                   "which keeps each model's response")
        self.table = table
        self.models = dict(models or {})
        for m, o in self.models.items():
            if o not in table.options:
                raise ConfigError(f"Recorded(models=...): {m!r} is mapped to {o!r}, which the table does not hold",
                                  name=o, hint=f"options: {', '.join(table.options)}")
        self.latency = float(latency)
        self.realtime = realtime
        self.id = f"rec{next(_ids)}"
        self.calls = 0
        self._index: dict[str, int] = {}
        for i, t in enumerate(table.texts):
            self._index.setdefault(str(t).strip(), i)
        self._lock = threading.Lock()
        self._replies: dict[str, tuple[float | None, Decimal | None]] = {}
        self._worst: dict[tuple[str, str | None], Decimal] = {}
        _instances[self.id] = self
        from agentroute.providers._handler import register

        register(PROVIDER, "rec", _instances)

    # -- what the replay holds ----------------------------------------------------------------------------------
    def option_of(self, model: str) -> str:
        """The table option answering for ``model`` (:class:`NotRecorded` when there is none)."""
        opt = self.models.get(model, model)
        if opt not in self.table.options:
            raise NotRecorded(f"Recorded: no recordings of model {model!r}", model=model,
                              hint=f"recorded options: {', '.join(self.table.options)}; map a tier's model to one "
                                   "with Recorded(table, models={model: option})")
        return opt

    def row_of(self, text: str, model: str = "") -> int:
        """The table row answering prompt ``text`` (:class:`NotRecorded` when none does)."""
        i = self._index.get(text.strip())
        if i is None:
            raise NotRecorded(f"Recorded: no recording of the prompt {_short(text)!r}", model=model,
                              prompt=_short(text),
                              hint="a replay answers only the table's query texts, sent as the last user message")
        return i

    def worst_case(self, model: str, category: str | None = None) -> Decimal | None:
        """The dearest recorded cost of ``model`` (among ``category``'s queries when it has any); ``None`` unknown."""
        key = (self.option_of(model), category)
        hit = self._worst.get(key)
        if hit is None:
            j = self.table.option_index(key[0])
            col = self.table.cost[:, j]
            if category is not None:
                rows = np.asarray([c == category for c in self.table.categories])
                if rows.any():
                    col = col[rows]
            known = col[~np.isnan(col)]
            if known.size == 0 or np.isnan(col).any():
                return None
            hit = self._worst[key] = Decimal(repr(float(known.max())))
        return hit

    def tiers(self, options: Sequence[str] | None = None) -> list[ModelTier]:
        """``ModelTier`` objects for ``options`` (default: all), priced at their mean USD per recorded token.

        Each tier's ``max_tokens`` is its longest recorded answer, so a replay through these tiers is never cut.
        """
        t = self.table
        out = []
        for name in options if options is not None else t.options:
            j = t.option_index(name)
            tok = t.input_tokens[:, j] + np.nan_to_num(t.output_tokens[:, j])
            cost = t.cost[:, j]
            ok = ~np.isnan(cost)
            p = Decimal(repr(float(cost[ok].sum() / max(tok[ok].sum(), 1.0)))) if ok.any() else None
            longest = np.nanmax(t.output_tokens[:, j]) if not np.isnan(t.output_tokens[:, j]).all() else 512
            out.append(ModelTier(name, model=name, input_cost_per_token=p, output_cost_per_token=p,
                                 max_tokens=max(16, math.ceil(float(longest)))))
        return out

    # -- Provider protocol ----------------------------------------------------------------------------------------
    def bind(self, tiers: Sequence[ModelTier]) -> None:
        """Check that every tier's model is recorded (a :class:`NotRecorded` at compile time otherwise)."""
        for tier in tiers:
            self.option_of(tier.model)

    def kwargs_for(self, tier: ModelTier) -> dict[str, Any]:
        """Route the call to this replay through LiteLLM's custom-provider path."""
        return {"model": f"{PROVIDER}/{tier.model}", "api_base": f"rec://{self.id}", "api_key": "rec", **tier.params}

    def provider_name(self, tier: ModelTier) -> str:
        """Reported as ``gen_ai.provider.name``."""
        return PROVIDER

    def quality_of(self, reply: RawReply) -> float | None:
        """The grade the release gave this recorded answer (``None`` for a cut answer); read once."""
        return self._take(reply)[0]

    def cost_of(self, reply: RawReply) -> Decimal | None:
        """The recorded USD cost of the call that produced ``reply`` (``None`` when the table has none)."""
        rid = getattr(reply.response, "id", None)
        with self._lock:
            got = self._replies.get(rid) if rid else None
        return None if got is None else got[1]

    def _take(self, reply: RawReply) -> tuple[float | None, Decimal | None]:
        rid = getattr(reply.response, "id", None)
        with self._lock:
            got = self._replies.pop(rid, None) if rid else None
        return (None, None) if got is None else got

    # -- the replay -------------------------------------------------------------------------------------------------
    def lookup(self, model: str, messages: Sequence[Mapping[str, Any]]) -> tuple[int, int, str]:
        """``(row, column, answer)`` that replays ``model`` on ``messages`` (:class:`NotRecorded` otherwise)."""
        opt = self.option_of(model)
        text = prompt_of(messages)
        i = self.row_of(text, model)
        j = self.table.option_index(opt)
        answer = self.table.response(i, opt)
        if answer is None:
            raise NotRecorded(f"Recorded: {opt!r} has no recorded answer to {_short(text)!r}", model=model,
                              prompt=_short(text))
        return i, j, answer

    def respond(self, model: str, messages: Sequence[Mapping[str, Any]],
                optional_params: Mapping[str, Any]) -> tuple[Any, float]:
        """Build LiteLLM's ``ModelResponse`` for one call: the recorded answer, usage and cost."""
        litellm = ensure_litellm()
        i, j, answer = self.lookup(model, messages)
        t = self.table
        n_in = int(t.input_tokens[i, j])
        out = t.output_tokens[i, j]
        n_out = max(1, math.ceil(len(answer) / 4)) if np.isnan(out) else int(out)
        max_tokens = optional_params.get("max_tokens") or optional_params.get("max_completion_tokens")
        finish = "stop"
        quality: float | None = float(t.quality[i, j])
        if max_tokens is not None and n_out > int(max_tokens):
            n_out = int(max_tokens)
            answer, finish, quality = answer[: 4 * n_out], "length", None
        cost = None if np.isnan(t.cost[i, j]) else Decimal(repr(float(t.cost[i, j])))
        with self._lock:
            self.calls += 1
            key = f"{self.id}|{self.calls}|{model}|{i}".encode()
            rid = f"rec-{hashlib.blake2b(key, digest_size=8).hexdigest()}"
            self._replies[rid] = (quality, cost)
        resp = litellm.ModelResponse(
            id=rid, model=model,
            choices=[{"index": 0, "finish_reason": finish, "message": {"role": "assistant", "content": answer}}],
            usage={"prompt_tokens": n_in, "completion_tokens": n_out, "total_tokens": n_in + n_out},
        )
        return resp, self.latency


__all__ = ["PROVIDER", "Recorded", "prompt_of"]
