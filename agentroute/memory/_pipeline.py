"""The modules of a recall and their tiers: retrieve -> filter -> link -> time, each in low / mid / high.

* **retrieve** — low: BM25 over turns, k=5; mid: vector retrieval with a keyword boost, read in context (shares of
  the nearby turns' scores and a session prior, ``Store.in_context``), k=8; high: mid plus feedback terms from the
  best turns and entity- and time-aware boosts, k=12.
* **filter** — low: keep the retrieval order; mid: local re-scoring of a 2k pool, dropping weak turns (no model
  call); high: a model call reads a 3k pool, each turn shown with the one before, and keeps the useful ones.
* **link** — low: nothing; mid: the other half of each top-4 exchange (the reply to a question, else the question
  it answers); high: both neighbours of the top 4 and turns naming the query's entities.
* **time** — low: nothing; mid: each turn stamped with its session date; high: dates, and relative times resolved
  (``yesterday = 7 May 2023``).

Every function here is pure: it takes a state and returns a new one. Costs are counted, never estimated after the
fact: context tokens are the (approximate) tokens of the lines handed over, and the rerank call counts the tokens of
the very prompt it sends (or would send, when no model is attached: then a deterministic stand-in ranks, and its
tokens are priced as if the call had been made, so offline evaluation sees the real cost structure).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np

from agentroute.errors import ConfigError
from agentroute.memory._state import MemoryModule, QueryInfo, RecallState, StepSpend
from agentroute.memory._store import NOTES_MAX_TOKENS, Store, maxnorm, top
from agentroute.memory._text import approx_tokens

LLMCall = Callable[[Sequence[Mapping[str, str]], int], tuple[str, int, int, Decimal | None]]
"""``llm(messages, max_tokens) -> (text, input_tokens, output_tokens, cost_usd)``: a model call the runtime charges."""

MODULES: tuple[MemoryModule, ...] = (
    MemoryModule(
        "retrieve",
        "Select the turns that go into the context.",
        {
            "low": "bm25",
            "mid": "vector+keyword",
            "high": "vector+keyword+expansion",
        },
    ),
    MemoryModule(
        "filter",
        "Re-rank a wider pool of candidates and keep the best.",
        {"low": "none", "mid": "local-rescore", "high": "model-rerank"},
    ),
    MemoryModule(
        "link",
        "Add the conversation around the selected turns, and turns naming the query's entities.",
        {"low": "none", "mid": "exchange-partner", "high": "neighbours+entity-links"},
    ),
    MemoryModule(
        "time",
        "Put the selected turns on the timeline.",
        {"low": "none", "mid": "session-dates", "high": "session-dates+resolved-relative-times"},
    ),
)
MODULE_NAMES: tuple[str, ...] = tuple(m.name for m in MODULES)


@dataclass(frozen=True, slots=True)
class MemoryConfig:
    """Sizes of each tier and the models memory costs are priced with.

    ``answer_model`` prices the context handed to the answering agent (its input price); ``call_model`` prices (and,
    in the runtime, names the tier of) the rerank call. Both are looked up in LiteLLM's price map.
    """

    k: tuple[int, int, int] = (5, 8, 12)
    """Turns retrieved by the low, mid and high tiers."""
    pool: int = 48
    """Candidates kept in the state for the rerank module."""
    filter_pool: tuple[int, int] = (2, 3)
    """Pool the mid and high rerank read, as multiples of the number of selected turns."""
    link_neighbours: tuple[int, int] = (4, 4)
    """Selected turns whose neighbours the mid and high link tiers add."""
    entity_links: int = 3
    """Turns naming the query's entities that the high link tier adds."""
    answer_model: str = "gpt-4o"
    call_model: str = "gpt-4o-mini"
    filter_keep: float = 0.5
    """The filter drops candidates scoring under this share of the best one."""
    filter_min: int = 3
    """...but always keeps this many."""
    filter_overhead_tokens: int = 60
    """Instruction tokens of the rerank prompt (counted from the prompt; this bounds it in the worst case)."""

    def __post_init__(self) -> None:
        if not (0 < self.k[0] <= self.k[1] <= self.k[2]):
            raise ConfigError(f"MemoryConfig.k={self.k} must be positive and non-decreasing", name="k")
        if self.pool < self.k[2] * max(self.filter_pool):
            raise ConfigError(
                f"MemoryConfig.pool={self.pool} is smaller than the largest rerank pool "
                f"({self.k[2]} x {max(self.filter_pool)})",
                name="pool",
            )


_RANK = {"low": 0, "mid": 1, "high": 2}


def _spend(state: RecallState, module: str, tier: str, ctx_before: int, t0: float, **call: Any) -> tuple[StepSpend]:
    return (
        StepSpend(
            module,
            tier,
            state.context_tokens - ctx_before,
            int(call.get("inp", 0)),
            int(call.get("out", 0)),
            call.get("cost", Decimal(0)),
            time.perf_counter() - t0,
        ),
    )


def context_tokens(store: Store, ids: Sequence[int], stamp: bool, notes: bool) -> int:
    """Approximate tokens of the context made of turns ``ids``."""
    return sum(store.line_cost(i, stamp, notes) for i in ids)


def retrieve(store: Store, cfg: MemoryConfig, tier: str, state: RecallState) -> RecallState:
    """Rank the turns and select the top k of the tier."""
    t0 = time.perf_counter()
    info = state.info
    if tier == "low":
        scores = store.keyword(info)
    elif tier == "mid":
        scores = store.hybrid(info)
    else:
        scores = store.expanded(info)
    k = cfg.k[_RANK[tier]]
    pool = top(scores, cfg.pool)
    if tier == "low":
        pool = [i for i in pool if scores[i] > 0] or pool
    norm = maxnorm(scores)
    selected = tuple(pool[:k])
    before = state.context_tokens
    new = state.evolve(
        pool=tuple(pool),
        pool_scores=tuple(float(norm[i]) for i in pool),
        selected=selected,
        context_tokens=context_tokens(store, selected + state.added, state.stamp, state.notes),
    )
    return new.evolve(steps=state.steps + _spend(new, "retrieve", tier, before, t0))


def _local_scores(
    store: Store, info: QueryInfo, cands: Sequence[int], base: Mapping[int, float], window: bool
) -> list[float]:
    out = []
    ents = set(info.entities)
    for i in cands:
        win = store.neighbours(i, 1, 1) if window else ()
        s = base.get(i, 0.0) + 0.6 * store.coverage(i, info, win)
        if window:
            s += 0.3 * store.coverage(i, info)
        if ents and ents & store.entity_sets[i]:
            s += 0.2
        if info.temporal and store.time_cue[i]:
            s += 0.15
        if len(info.speakers) == 1 and store.speaker_of[i] == info.speakers[0]:
            s += 0.1
        out.append(s)
    return out


_SYSTEM = (
    "You select the turns of a conversation that help answer a question. Reply with the ids of the useful turns, "
    "at most {k}, most useful first, separated by commas, and nothing else."
)


def _keep(cands: Sequence[int], scores: Sequence[float], k: int, cfg: MemoryConfig) -> list[int]:
    """The best ``k`` candidates, dropping those scoring under ``cfg.filter_keep`` of the best (keeping a few)."""
    order = sorted(range(len(cands)), key=lambda j: (-scores[j], j))[:k]
    if not order:
        return []
    bar = cfg.filter_keep * scores[order[0]]
    return [cands[j] for n, j in enumerate(order) if n < cfg.filter_min or scores[j] >= bar]
_ID = re.compile(r"D\d+:\d+")


def filter_messages(store: Store, state: RecallState, cands: Sequence[int], k: int) -> list[dict[str, str]]:
    """The prompt of the high rerank: the question and each candidate with the turn before it."""
    lines = []
    for i in cands:
        prev = store.neighbours(i, 1, 0)
        ctx = f" (after: {store.turns[prev[0]].speaker}: {store.turns[prev[0]].text[:160]})" if prev else ""
        lines.append(f"{store.lines[i]}{ctx}")
    user = f"Question: {state.query}\n\nTurns:\n" + "\n".join(lines)
    return [{"role": "system", "content": _SYSTEM.format(k=k)}, {"role": "user", "content": user}]


def filter_(
    store: Store,
    cfg: MemoryConfig,
    tier: str,
    state: RecallState,
    llm: LLMCall | None,
    call_prices: tuple[Decimal, Decimal] | None,
) -> RecallState:
    """Re-score a wider pool and keep the relevant turns (at most as many as were selected)."""
    t0 = time.perf_counter()
    before = state.context_tokens
    k = len(state.selected)
    if tier == "low" or k == 0:
        return state.evolve(steps=state.steps + _spend(state, "filter", tier, before, t0))
    m = cfg.filter_pool[_RANK[tier] - 1] * k
    cands = list(state.pool[:m])
    base = dict(zip(state.pool, state.pool_scores, strict=False))
    call: dict[str, Any] = {}
    if tier == "mid":
        scores = _local_scores(store, state.info, cands, base, window=False)
        chosen = _keep(cands, scores, k, cfg)
    else:
        msgs = filter_messages(store, state, cands, k)
        max_out = 6 * k + 8
        scores = _local_scores(store, state.info, cands, base, window=True)
        stand_in = _keep(cands, scores, k, cfg)
        if llm is not None:
            text, inp, out, cost = llm(msgs, max_out)
            picked = [store.by_id[d] for d in dict.fromkeys(_ID.findall(text)) if d in store.by_id]
            picked = [i for i in picked if i in set(cands)][:k]
            chosen = picked + [i for i in stand_in if i not in picked][: max(0, cfg.filter_min - len(picked))]
        else:
            chosen = stand_in
            text = ", ".join(store.turns[i].dia_id for i in chosen)
            inp = sum(approx_tokens(mm["content"]) + 4 for mm in msgs)
            out = approx_tokens(text)
            cost = None if call_prices is None else call_prices[0] * inp + call_prices[1] * out
        call = {"inp": inp, "out": out, "cost": cost}
    selected = tuple(chosen)
    new = state.evolve(
        selected=selected,
        context_tokens=context_tokens(store, selected + state.added, state.stamp, state.notes),
    )
    if call:
        prev_cost = new.call_cost_usd
        cost = call["cost"]
        new = new.evolve(
            call_input_tokens=new.call_input_tokens + call["inp"],
            call_output_tokens=new.call_output_tokens + call["out"],
            call_cost_usd=None if prev_cost is None or cost is None else prev_cost + Decimal(cost),
        )
    return new.evolve(steps=state.steps + _spend(new, "filter", tier, before, t0, **call))


def link(store: Store, cfg: MemoryConfig, tier: str, state: RecallState) -> RecallState:
    """Add the turns around the selected ones, and (high) turns that name the query's entities."""
    t0 = time.perf_counter()
    before = state.context_tokens
    if tier == "low":
        return state.evolve(steps=state.steps + _spend(state, "link", tier, before, t0))
    have = set(state.selected) | set(state.added)
    added = list(state.added)

    def add(i: int) -> None:
        if i not in have:
            have.add(i)
            added.append(i)

    if tier == "mid":
        # The other half of each exchange: the reply to a selected turn that asks, else the turn it answers.
        for i in state.selected[: cfg.link_neighbours[0]]:
            for j in store.neighbours(i, 0, 1) if store.asks[i] else store.neighbours(i, 1, 0):
                add(j)
    else:
        for i in state.selected[: cfg.link_neighbours[1]]:
            for j in store.neighbours(i, 1, 1):
                add(j)
        if state.info.entities:
            ents = set(state.info.entities)
            linked = [i for i in state.pool if ents & store.entity_sets[i] and i not in have]
            for i in linked[: cfg.entity_links]:
                add(i)
    new = state.evolve(
        added=tuple(added),
        context_tokens=context_tokens(store, state.selected + tuple(added), state.stamp, state.notes),
    )
    return new.evolve(steps=state.steps + _spend(new, "link", tier, before, t0))


def timeline(store: Store, cfg: MemoryConfig, tier: str, state: RecallState) -> RecallState:
    """Stamp every turn with its session date (mid), and resolve relative times to dates (high)."""
    t0 = time.perf_counter()
    before = state.context_tokens
    if tier == "low":
        return state.evolve(steps=state.steps + _spend(state, "time", tier, before, t0))
    notes = tier == "high" or state.notes
    new = state.evolve(
        stamp=True,
        notes=notes,
        context_tokens=context_tokens(store, state.selected + state.added, True, notes),
    )
    return new.evolve(steps=state.steps + _spend(new, "time", tier, before, t0))


def worst_case(
    store: Store, cfg: MemoryConfig, module: str, tier: str, state: RecallState | None
) -> tuple[int, int, int]:
    """``(context, call input, call output)`` tokens a tier may spend at most, given ``state`` when known."""
    mx = store.max_line_tokens
    stamp_notes = int(store.stamp_tokens.max()) + NOTES_MAX_TOKENS + 1 if store.n else 0
    per = mx + (stamp_notes if state is not None and state.stamp else 0)
    if module == "retrieve":
        return cfg.k[_RANK[tier]] * per, 0, 0
    k = len(state.selected) if state is not None and state.selected else cfg.k[2]
    ctx_now = state.context_tokens if state is not None else 0
    if module == "filter":
        if tier == "low":
            return 0, 0, 0
        grow = max(0, (k + len(state.added if state else ())) * per - ctx_now)
        if tier == "mid":
            return grow, 0, 0
        m = cfg.filter_pool[1] * k
        q = approx_tokens(state.query) if state is not None else 64
        inp = cfg.filter_overhead_tokens + q + m * (mx + 45)
        if state is not None and state.pool:
            cands = list(state.pool[:m])
            inp = sum(approx_tokens(x["content"]) + 4 for x in filter_messages(store, state, cands, k))
        return grow, inp, 6 * k + 8
    if module == "link":
        if tier == "low":
            return 0, 0, 0
        extra = cfg.link_neighbours[0] if tier == "mid" else 2 * cfg.link_neighbours[1] + cfg.entity_links
        return extra * per, 0, 0
    if module == "time":
        if tier == "low":
            return 0, 0, 0
        n_lines = len(state.selected) + len(state.added) if state is not None and state.selected else (
            cfg.k[2] + 2 * cfg.link_neighbours[1] + cfg.entity_links
        )
        stamp = int(store.stamp_tokens.max()) if store.n else 0
        return n_lines * (stamp + (NOTES_MAX_TOKENS + 1 if tier == "high" else 0)), 0, 0
    raise ConfigError(f"unknown memory module {module!r}", name=module, hint=f"modules: {', '.join(MODULE_NAMES)}")


def state_features(store: Store, state: RecallState) -> dict[str, float]:
    """Facts about a recall so far that a policy may use (all in [0, 1]); see ``features.STATE_KEYS``."""
    s = np.asarray(state.pool_scores[:12], dtype=np.float32) if state.pool_scores else np.zeros(1, np.float32)
    top1 = float(s[0]) if s.size else 0.0
    second = float(s[1]) if s.size > 1 else 0.0
    tail = float(s[min(len(s) - 1, 7)]) if s.size else 0.0
    head = state.selected[:3]
    ents = set(state.info.entities)
    cov, strength, ties, agree = store.probe(state.info)
    return {
        "retrieved": 1.0 if state.pool else 0.0,
        "top_score": min(1.0, top1),
        "margin": max(0.0, min(1.0, top1 - second)),
        "flatness": max(0.0, min(1.0, tail / top1)) if top1 > 0 else 0.0,
        "context_k": min(1.0, len(state.selected) / 12.0),
        "top_coverage": store.coverage(head[0], state.info) if head else 0.0,
        "top_asks": sum(1.0 for i in head if store.asks[i]) / 3.0,
        "entity_hit": 1.0 if ents and any(ents & store.entity_sets[i] for i in head) else 0.0,
        "probe_coverage": cov,
        "probe_strength": strength,
        "probe_ties": ties,
        "probe_agree": agree,
    }
