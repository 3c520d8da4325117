"""Quality and cost of memory tiers on graded conversations, measured with no model.

* **evidence recall** — the share of a question's gold turns (``evidence`` dia_ids) found in the recalled context;
* **answer recall** — 1 when the gold answer (``adversarial_answer`` for category 5) appears in the recalled text
  after :func:`~agentroute.memory._text.normalise_answer` (case, punctuation, articles and date formats);
* **cost** — USD and tokens of the recall (context handed over plus the memory's own calls), means per question.

:func:`combo_table` runs every fixed tier combination (3 modules x 3 tiers = 27) on every question, sharing the
work of common prefixes; :func:`run_policy` lets a :class:`~agentroute.routing.RouterPolicy` choose tiers module by
module exactly as the runtime would; :func:`summarise` turns per-question outcomes into the ``metrics.json`` layout.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np

from agentroute.memory._data import CATEGORIES, Question
from agentroute.memory._memory import Memory
from agentroute.memory._pipeline import MODULE_NAMES
from agentroute.memory._state import TIERS, Recall, RecallState
from agentroute.memory._text import normalise_answer
from agentroute.routing import RouterPolicy

COMBOS: tuple[tuple[str, ...], ...] = tuple(itertools.product(TIERS, repeat=len(MODULE_NAMES)))
"""Every fixed assignment of a tier to each module, in the order of ``MODULE_NAMES``."""
METRIC_KEYS = ("evidence_recall", "answer_recall", "cost_usd", "cost_tokens")


def gradable(questions: Iterable[Question]) -> list[tuple[int, Question]]:
    """Questions with at least one gold evidence turn, with their index in the conversation."""
    return [(i, q) for i, q in enumerate(questions) if q.evidence]


def score(question: Question, recall: Recall) -> tuple[float, float]:
    """``(evidence recall, answer recall)`` of one recall."""
    got = set(recall.ids)
    ev = sum(1 for e in question.evidence if e in got) / len(question.evidence) if question.evidence else 0.0
    gold = _norm(question.answer)
    ans = 1.0 if gold and any(gold in _norm(line) for line in recall.text.split("\n")) else 0.0
    return ev, ans


# Lines repeat across tiers and questions: normalise each once. Answers are matched within one turn's line.
_norm = functools.lru_cache(maxsize=131072)(normalise_answer)


@dataclass(frozen=True, slots=True)
class Outcome:
    """One question answered from memory: where it came from, its quality, its cost and the tiers used."""

    conversation: str
    index: int
    category: int
    evidence_recall: float
    answer_recall: float
    cost_usd: float
    cost_tokens: int
    tiers: Mapping[str, str]


def outcome(memory: Memory, index: int, question: Question, recall: Recall) -> Outcome:
    """Grade a recall."""
    ev, ans = score(question, recall)
    cost = float(recall.cost_usd) if recall.cost_usd is not None else float("nan")
    return Outcome(memory.conversation.id, index, question.category, ev, ans, cost, recall.tokens, dict(recall.tiers))


@dataclass(frozen=True, slots=True)
class ComboTable:
    """Every question x every fixed combination: arrays of shape ``(questions, 27)``."""

    keys: tuple[tuple[str, int], ...]
    """``(conversation id, question index)`` of each row."""
    queries: tuple[str, ...]
    categories: np.ndarray
    evidence: np.ndarray
    answer: np.ndarray
    cost_usd: np.ndarray
    tokens: np.ndarray

    def mean(self, combo: Sequence[str]) -> dict[str, float]:
        """Mean quality and cost of one fixed combination."""
        j = COMBOS.index(tuple(combo))
        return {
            "evidence_recall": float(self.evidence[:, j].mean()),
            "answer_recall": float(self.answer[:, j].mean()),
            "cost_usd": float(self.cost_usd[:, j].mean()),
            "cost_tokens": float(self.tokens[:, j].mean()),
        }


def combo_table(memories: Sequence[Memory], progress: Callable[[int], None] | None = None) -> ComboTable:
    """Run all 27 combinations on every gradable question, sharing the states of common prefixes."""
    keys, queries, cats, ev, ans, usd, tok = [], [], [], [], [], [], []
    for mem in memories:
        for qi, q in gradable(mem.conversation.questions):
            states: dict[tuple[str, ...], RecallState] = {(): mem.start(q.question)}
            for depth, module in enumerate(MODULE_NAMES):
                for prefix in [p for p in states if len(p) == depth]:
                    for tier in TIERS:
                        states[(*prefix, tier)] = mem.run_module(module, tier, q.question, states[prefix])
            row = [outcome(mem, qi, q, mem.finish(states[c])) for c in COMBOS]
            keys.append((mem.conversation.id, qi))
            queries.append(q.question)
            cats.append(q.category)
            ev.append([o.evidence_recall for o in row])
            ans.append([o.answer_recall for o in row])
            usd.append([o.cost_usd for o in row])
            tok.append([o.cost_tokens for o in row])
            if progress is not None:
                progress(1)
    return ComboTable(
        tuple(keys),
        tuple(queries),
        np.asarray(cats, dtype=np.int64),
        np.asarray(ev, dtype=np.float64).reshape(-1, len(COMBOS)),
        np.asarray(ans, dtype=np.float64).reshape(-1, len(COMBOS)),
        np.asarray(usd, dtype=np.float64).reshape(-1, len(COMBOS)),
        np.asarray(tok, dtype=np.float64).reshape(-1, len(COMBOS)),
    )


def run_policy(
    memories: Sequence[Memory],
    policy: RouterPolicy,
    *,
    budget_usd: Decimal | float | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[Outcome]:
    """Let ``policy`` choose each module's tier for every gradable question (as the runtime's loop would)."""
    from agentroute.memory.routing import route

    out = []
    for mem in memories:
        for qi, q in gradable(mem.conversation.questions):
            recall, _ = route(mem, q.question, policy, budget_usd=budget_usd, task_id=f"{mem.conversation.id}:{qi}")
            out.append(outcome(mem, qi, q, recall))
            if progress is not None:
                progress(1)
    return out


def fixed_outcomes(table: ComboTable, combo: Sequence[str]) -> list[Outcome]:
    """The outcomes of one fixed combination, read from a :class:`ComboTable`."""
    j = COMBOS.index(tuple(combo))
    tiers = dict(zip(MODULE_NAMES, combo, strict=True))
    return [
        Outcome(k[0], k[1], int(c), float(e), float(a), float(u), int(t), tiers)
        for k, c, e, a, u, t in zip(
            table.keys, table.categories, table.evidence[:, j], table.answer[:, j], table.cost_usd[:, j],
            table.tokens[:, j], strict=True,
        )
    ]


def _means(rows: Sequence[Outcome]) -> dict[str, Any]:
    if not rows:
        return {k: None for k in METRIC_KEYS} | {"n": 0}
    return {
        "evidence_recall": float(np.mean([r.evidence_recall for r in rows])),
        "answer_recall": float(np.mean([r.answer_recall for r in rows])),
        "cost_usd": float(np.mean([r.cost_usd for r in rows])),
        "cost_tokens": float(np.mean([r.cost_tokens for r in rows])),
        "n": len(rows),
    }


def tier_mix(rows: Sequence[Outcome]) -> dict[str, dict[str, float]]:
    """Per module, the share of questions that used each tier."""
    mix: dict[str, dict[str, float]] = {}
    for m in MODULE_NAMES:
        counts = {t: 0 for t in TIERS}
        for r in rows:
            t = r.tiers.get(m)
            if t in counts:
                counts[t] += 1
        n = max(1, sum(counts.values()))
        mix[m] = {t: c / n for t, c in counts.items()}
    return mix


def summarise(rows: Sequence[Outcome], **extra: Any) -> dict[str, Any]:
    """The ``metrics.json`` layout: ``overall`` and ``per_category`` means, and the tier mix per module."""
    per_cat = {
        name: _means([r for r in rows if r.category == c]) for c, name in CATEGORIES.items()
    }
    return {"overall": _means(rows), "per_category": per_cat, "tier_mix": tier_mix(rows), **extra}
