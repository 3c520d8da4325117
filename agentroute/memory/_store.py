"""What a memory builds once from its conversation, and the scorers its tiers search with.

:class:`Store` holds the turns, the rendered line of each turn, its approximate token count, its entities and time
cues, and the :class:`~agentroute.memory._index.TurnIndex`. Per-turn extras that only some queries need (resolved
time phrases) are computed on first use and cached, so building stays well under a second for 700 turns.

The mid and high scorers read each turn in context (:meth:`Store.in_context`): nearby turns of its session lend it a
share of their scores and its session a prior, with the weights of :data:`CONTEXT_WEIGHTS` and
:data:`SESSION_WEIGHT`. The low tier's BM25 (:meth:`Store.keyword`) is left plain.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np

from agentroute.memory._data import Conversation, Turn
from agentroute.memory._index import TurnIndex
from agentroute.memory._state import QueryInfo
from agentroute.memory._text import approx_tokens, entities, fmt_day, has_time_cue, terms, time_notes

_TEMPORAL_Q = re.compile(
    r"^\s*when\b|\bhow long\b|\b(what|which|in what) (year|month|date|day|time)\b"
    r"|\bhow many (years|months|weeks|days)\b"
    r"|\bsince when\b|\bhow old\b",
    re.I,
)
CONTEXT_WEIGHTS = ((1, 0.5, 0.25), (2, 0.2, 0.1))
"""``(distance, share of the turn before, share of the turn after)``: what the mid and high searches add to a turn's
score from the turns around it in the same session.

An answer rarely repeats the question's words, but the turn before it (the question asked) often does: smoothing
the scores along the conversation ranks such answers higher. Tuned on the training conversations only (evidence
recall at k = 5, 8, 12); the low tier keeps plain BM25.
"""
SESSION_WEIGHT = 0.4
"""Weight of the session prior: the mean of a session's three best scores (max-normalised), added to its turns, so
that turns of the session a question is about outrank stray matches elsewhere (tuned on the training split)."""
NOTES_MAX_TOKENS = 26
"""Resolved time notes of one turn are cut to this many (approximate) tokens, so worst cases stay bounded."""


class Store:
    """Turns of one conversation with their search indexes and per-turn facts."""

    def __init__(self, conversation: Conversation, *, embed: Callable[[Sequence[str]], np.ndarray] | None = None):
        self.conversation = conversation
        self.turns: tuple[Turn, ...] = conversation.turns
        self.n = len(self.turns)
        self.embed = embed
        self.by_id = {t.dia_id: i for i, t in enumerate(self.turns)}
        self.lines = [
            f"[{t.dia_id}] {t.speaker}: {t.text}" if t.speaker else f"[{t.dia_id}] {t.text}" for t in self.turns
        ]
        self.line_tokens = np.fromiter((approx_tokens(s) + 1 for s in self.lines), dtype=np.int32, count=self.n)
        self.max_line_tokens = int(self.line_tokens.max()) if self.n else 0
        self.stamps = [f"({fmt_day(t.date)})" if t.date else "" for t in self.turns]
        self.stamp_tokens = np.fromiter((approx_tokens(s) + 1 if s else 0 for s in self.stamps), np.int32, self.n)
        self.speakers = {s.lower(): s for s in conversation.speakers}
        for t in self.turns:
            if t.speaker:
                self.speakers.setdefault(t.speaker.lower(), t.speaker)
        self.speaker_of = [t.speaker.lower() for t in self.turns]
        self.entity_sets = [frozenset(entities(t.text)) for t in self.turns]
        self.asks = np.fromiter((t.text.rstrip().endswith("?") for t in self.turns), dtype=bool, count=self.n)
        self.time_cue = np.fromiter((has_time_cue(t.text) for t in self.turns), dtype=bool, count=self.n)
        sessions = np.fromiter((t.session for t in self.turns), dtype=np.int64, count=self.n)
        # _same[d][i]: turn i + d is in turn i's session (for the shifts of ``in_context``).
        self._same = {d: (sessions[d:] == sessions[:-d]).astype(np.float32) for d, _, _ in CONTEXT_WEIGHTS}
        # Sessions as contiguous groups: the group of each turn, where each group starts, how many it reads.
        starts = np.r_[0, np.flatnonzero(np.diff(sessions)) + 1].astype(np.int64)
        self._group = np.repeat(np.arange(starts.size), np.diff(np.r_[starts, self.n]))
        self._group_start = starts
        self._group_top = np.minimum(np.diff(np.r_[starts, self.n]), 3).astype(np.float32)
        self.index = TurnIndex([f"{t.speaker} {t.text}" for t in self.turns], embed=embed)
        self._notes: dict[int, str] = {}
        self._costs: dict[tuple[int, bool, bool], int] = {}
        self._kw: tuple[tuple[str, ...], np.ndarray] = ((), np.zeros(self.n, dtype=np.float32))
        self._probe: tuple[str | None, tuple[float, float, float, float]] = (None, (0.0, 0.0, 0.0, 0.0))

    # -- per-turn extras -----------------------------------------------------------------------------------------
    def notes(self, i: int) -> str:
        """Relative time phrases of turn ``i`` resolved against its session date, or ``""``."""
        got = self._notes.get(i)
        if got is None:
            t = self.turns[i]
            found = time_notes(t.text, t.date)
            got = f"[{'; '.join(found)}]" if found else ""
            if approx_tokens(got) > NOTES_MAX_TOKENS:
                got = got[: 4 * NOTES_MAX_TOKENS - 4].rsplit(";", 1)[0] + "]"
            self._notes[i] = got
        return got

    def line_cost(self, i: int, stamp: bool, notes: bool) -> int:
        """Approximate tokens of turn ``i``'s rendered line (with or without date stamp and time notes) + newline."""
        if not stamp and not notes:
            return int(self.line_tokens[i])
        key = (i, stamp, notes)
        c = self._costs.get(key)
        if c is None:
            c = self._costs[key] = approx_tokens(self.render(i, stamp, notes)) + 1
        return c

    def render(self, i: int, stamp: bool, notes: bool) -> str:
        """Turn ``i``'s line as the agent reads it."""
        line = self.lines[i]
        if stamp and self.stamps[i]:
            line = f"{line} {self.stamps[i]}"
        if notes:
            n = self.notes(i)
            if n:
                line = f"{line} {n}"
        return line

    def neighbours(self, i: int, before: int = 1, after: int = 0) -> list[int]:
        """Turns around ``i`` in the same session."""
        s = self.turns[i].session
        out = [j for j in range(i - before, i) if j >= 0 and self.turns[j].session == s]
        out += [j for j in range(i + 1, i + 1 + after) if j < self.n and self.turns[j].session == s]
        return out

    # -- queries -------------------------------------------------------------------------------------------------
    def analyse(self, query: str) -> QueryInfo:
        """Read a query once: terms, entities other than the speakers, speakers named, temporal or not."""
        ents = entities(query)
        spk = tuple(dict.fromkeys(e for e in ents if e in self.speakers))
        others = tuple(dict.fromkeys(e for e in ents if e not in self.speakers))
        return QueryInfo(query, tuple(terms(query)), others, spk, bool(_TEMPORAL_Q.search(query)))

    def probe(self, info: QueryInfo) -> tuple[float, float, float, float]:
        """A free probe of the memory (no tokens spent): how clearly the query matches a few turns.

        ``(coverage of the best BM25 turn, its score over the score of a turn holding every query term once, share
        of the top 10 whose coverage is within 0.2 of the best, overlap of the BM25 and vector top 5)``: a clear
        match that both searches agree on suggests cheap tiers will do. Computed when a policy first asks for it
        (a recall at fixed tiers never pays for it) and kept for the query's other modules.
        """
        cached = self._probe  # one read: another thread may swap the cache between two
        if cached[0] == info.text:
            return cached[1]
        got = self._compute_probe(info)
        self._probe = (info.text, got)
        return got

    def _compute_probe(self, info: QueryInfo) -> tuple[float, float, float, float]:
        if not info.terms:
            return (0.0, 0.0, 0.0, 0.0)
        bm = self.keyword(info)
        best = top(bm, 10)
        covs = [self.coverage(i, info) for i in best]
        ideal = sum(self.index.idf(t) for t in dict.fromkeys(info.terms))
        strength = min(1.0, float(bm[best[0]]) / ideal) if best and ideal > 0 else 0.0
        ties = sum(1 for c in covs if c >= covs[0] - 0.2) / 10.0 if covs else 0.0
        agree = len(set(best[:5]) & set(top(self.index.cosine(info.text, self.embed), 5))) / 5.0
        return (covs[0] if covs else 0.0, strength, ties, agree)

    def keyword(self, info: QueryInfo) -> np.ndarray:
        """BM25 scores of every turn (the last query's are kept: the probe and the low tier share them)."""
        kw = self._kw
        if kw[0] != info.terms:
            kw = self._kw = (info.terms, self.index.bm25(info.terms))
        return kw[1]

    def in_context(self, scores: np.ndarray) -> np.ndarray:
        """``scores`` read in context: plus shares of the nearby turns' scores and the session prior."""
        out = np.array(scores, dtype=np.float32)
        for d, before, after in CONTEXT_WEIGHTS:
            if self.n <= d:
                continue
            same = self._same[d]
            out[d:] += before * scores[:-d] * same
            out[:-d] += after * scores[d:] * same
        if SESSION_WEIGHT and self._group_start.size > 1:
            # Mean of each session's three best scores: sort by (session, -score), keep the first three of each.
            order = np.lexsort((-scores, self._group))
            g = self._group[order]
            head = (np.arange(self.n) - self._group_start[g]) < 3
            best = np.bincount(g[head], weights=scores[order][head], minlength=self._group_start.size)
            prior = (best / self._group_top)[self._group].astype(np.float32)
            out += SESSION_WEIGHT * _maxnorm(prior)
        return out

    def hybrid(self, info: QueryInfo, *, bm: np.ndarray | None = None, context: bool = True) -> np.ndarray:
        """Vector similarity with a keyword boost (the mean of max-normalised cosine and BM25), read in context."""
        bm = self.keyword(info) if bm is None else bm
        cos = self.index.cosine(info.text, self.embed)
        score = 0.5 * _maxnorm(cos) + 0.5 * _maxnorm(bm)
        return self.in_context(score) if context else score

    def expanded(self, info: QueryInfo) -> np.ndarray:
        """Hybrid scores of an expanded query: feedback terms from the best turns, entity and time awareness."""
        bm = self.keyword(info)
        base = self.hybrid(info, bm=bm, context=False)
        top = _top(base, 3)
        qset = set(info.terms)
        extra: dict[str, float] = {}
        for rank, i in enumerate(top):
            for t in self.index.term_sets[i]:
                if t in qset or len(t) < 3:
                    continue
                df = self.index.df(t)
                if 1 < df <= max(3, self.n // 50):
                    extra[t] = max(extra.get(t, 0.0), 1.0 / (rank + 1))
        fb_terms = sorted(extra, key=lambda t: (-extra[t], t))[:6]
        if fb_terms:
            fb = self.index.bm25(fb_terms, [0.3 * extra[t] for t in fb_terms])
            score = 0.5 * _maxnorm(self.index.cosine(info.text, self.embed)) + 0.5 * _maxnorm(bm + fb)
        else:
            score = base
        boost = np.ones(self.n, dtype=np.float32)
        if info.entities:
            ents = set(info.entities)
            boost += np.fromiter((0.25 if ents & s else 0.0 for s in self.entity_sets), np.float32, self.n)
        if info.temporal:
            boost += 0.15 * self.time_cue
        if len(info.speakers) == 1:
            who = info.speakers[0]
            boost += np.fromiter((0.1 if s == who else 0.0 for s in self.speaker_of), np.float32, self.n)
        return self.in_context(np.asarray(score * boost, dtype=np.float32))

    def coverage(self, i: int, info: QueryInfo, window: Sequence[int] = ()) -> float:
        """Share of the query's distinct terms found in turn ``i`` (and the turns of ``window``)."""
        q = set(info.terms)
        if not q:
            return 0.0
        have = set(self.index.term_sets[i])
        for j in window:
            have |= self.index.term_sets[j]
        return len(q & have) / len(q)


def _maxnorm(x: np.ndarray) -> np.ndarray:
    m = float(x.max()) if x.size else 0.0
    return x / m if m > 0 else x


def _top(scores: np.ndarray, k: int) -> list[int]:
    """Indices of the ``k`` best scores, best first, ties to the earlier turn (deterministic)."""
    k = min(k, scores.size)
    if k <= 0:
        return []
    part = np.argpartition(-scores, k - 1)[:k] if k < scores.size else np.arange(scores.size)
    return sorted(part.tolist(), key=lambda i: (-float(scores[i]), i))


top = _top
maxnorm = _maxnorm
