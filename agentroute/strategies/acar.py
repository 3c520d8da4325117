"""ACAR: σ-probe escalation. Cheap probes answer first; their disagreement decides which stronger models to add.

``ACAR(probes=[...], ladder=[...])`` runs a task in three moves, every call a routing point of the task's kernel
(reserved before, committed after, recorded):

1. **Probe.** The N ≥ 2 ``probes`` answer the task (in parallel; each reserved first). Their answers are extracted
   per task family (:mod:`agentroute.strategies._answers`: option letter, option number, number, normalised text).
2. **Measure σ** = (distinct answers − 1) / (N − 1): 0 when every probe agrees, 1 when all differ.
3. **Escalate upward only.** The first ``k`` tiers of ``ladder`` (cheapest-strong first) are added, ``k`` = how many
   of ``thresholds`` σ exceeds (default ``(0.0,)``: any disagreement adds the first ladder tier). The escalation is
   its own routing point, ``acar.escalate``: each level is offered needing the worst cases of its calls, so the
   budget masks the levels it cannot afford and ACAR takes the highest affordable level up to the one σ asks for
   (``truncated`` when that is lower). Its decision record's evidence carries ``probes``, ``answers``, ``sigma``,
   ``wanted`` and ``escalation`` (the tiers added).

The final answer is **by agreement**: every answer votes for its extracted answer, a probe with weight 1 and an
escalated tier with weight ``trust`` (default 1.5: one strong model outvotes one probe but not two that agree);
the heaviest group wins, ties going to the group with the strongest member, and the strongest member of the
winning group voices the answer. With no escalation, that is the probes' common answer voiced by the strongest probe.

:func:`select_probes` picks the probe set whose disagreement best predicts error on a training table (no calls: it
reads the table's recorded responses), as the benchmark does on its held-out split.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import numpy as np

from agentroute.budget import Spend
from agentroute.errors import ConfigError
from agentroute.routing import Candidate, Decision, Option
from agentroute.strategies._answers import extract, family_of, sigma, vote
from agentroute.strategies._driver import Answer, Caller, Outcome, messages_for

if TYPE_CHECKING:
    from agentroute.data.table import RoutingTable

ESCALATE = "acar.escalate"
PROBE = "acar.probe"
STRONG = "acar.strong"


@dataclass(frozen=True)
class ACAR:
    """σ-probe escalation (see the module docstring for every parameter's role)."""

    probes: Sequence[str]
    """N ≥ 2 cheap tiers that answer first."""
    ladder: Sequence[str]
    """Stronger tiers, in the order they are added (upward only)."""
    thresholds: Sequence[float] = (0.0,)
    """Add ``k`` ladder tiers when σ exceeds ``k`` of these (sorted ascending; at most one per ladder tier)."""
    trust: float = 1.5
    """Vote weight of an escalated tier (each probe weighs 1)."""
    system: str | None = None
    """An optional system message sent with the task."""
    name: str = "acar"

    def __post_init__(self) -> None:
        probes, ladder = tuple(self.probes), tuple(self.ladder)
        if len(probes) < 2:
            raise ConfigError(f"ACAR needs at least 2 probes (N >= 2), got {len(probes)}", name="probes",
                              hint="σ = (distinct answers - 1) / (N - 1) is only defined for N >= 2")
        if len(set(probes)) != len(probes) or set(probes) & set(ladder) or len(set(ladder)) != len(ladder):
            raise ConfigError("ACAR: a tier appears twice among probes and ladder", name="probes")
        if not ladder:
            raise ConfigError("ACAR needs at least one ladder tier to escalate to", name="ladder")
        th = tuple(float(t) for t in self.thresholds)
        if not th or len(th) > len(ladder) or list(th) != sorted(th) or not all(0.0 <= t < 1.0 for t in th):
            raise ConfigError(f"ACAR: thresholds must be 1 to {len(ladder)} ascending values in [0, 1), got {th}",
                              name="thresholds")
        if not self.trust > 0:
            raise ConfigError("ACAR: trust must be > 0", name="trust")
        object.__setattr__(self, "probes", probes)
        object.__setattr__(self, "ladder", ladder)
        object.__setattr__(self, "thresholds", th)

    @property
    def tiers(self) -> tuple[str, ...]:
        """Every tier ACAR may call: the probes, then the ladder."""
        return (*self.probes, *self.ladder)

    def level(self, s: float) -> int:
        """How many ladder tiers σ = ``s`` asks for."""
        return sum(s > t for t in self.thresholds)

    def final(self, answers: Sequence[str | None], escalated: int) -> int:
        """Index of the answer that wins the vote (the last ``escalated`` answers are ladder tiers, strongest last)."""
        n = len(answers)
        weights = [1.0] * (n - escalated) + [self.trust] * escalated
        ranks = list(range(n))  # probes are listed cheap to dear, then the ladder upward
        return vote(answers, weights, ranks)

    # -- one task through the kernel ------------------------------------------------------------------------------
    def run(self, caller: Caller, text: str | None = None) -> Outcome:
        """Run one task (``text``, default the router's task text) through ``caller``, under its router's budget."""
        task = caller.router.task
        text = task.text if text is None else text
        msgs = messages_for(text, self.system)
        fam = family_of(text, task.category)
        n = len(self.probes)
        taken = []
        for k, p in enumerate(self.probes, 1):
            c = caller.take(PROBE, p, reason=f"acar: probe {k}/{n}", evidence={"family": fam})
            if c is not None:
                taken.append(c)
        probe_answers = [a for a in caller.gather(taken, msgs) if a is not None]
        extracted = [extract(a.text, fam, text) for a in probe_answers]
        s = sigma(extracted) if len(extracted) >= 2 else 1.0
        wanted = self.level(s) if probe_answers else 0
        levels = [Option(Candidate("answer", "model", rank=0), free=True)]
        for k in range(1, len(self.ladder) + 1):
            worst = [caller.worst(t) for t in self.ladder[:k]]
            need = None if any(w is None for w in worst) else sum((w for w in worst if w is not None), Decimal(0))
            levels.append(Option(Candidate("+" + "+".join(self.ladder[:k]), "model", rank=k, cost_estimate=need),
                                 Spend(usd=need), Spend()))
        pending = caller.router.observe("model", ESCALATE, levels, extra={"sigma": s})
        offered = [k for k, o in enumerate(levels) if o.id in pending.options]
        got = max(k for k in offered if k <= wanted)
        if got < wanted:
            caller.refused.append(f"{ESCALATE}:{levels[wanted].id}: " + next(
                (m.reason for m in pending.observation.masked if m.id == levels[wanted].id), "not offered"))
        added = list(self.ladder[:got])
        evidence: dict[str, Any] = {"probes": [a.tier for a in probe_answers], "answers": extracted, "sigma": s,
                                    "family": fam, "wanted": list(self.ladder[:wanted]), "escalation": added}
        chosen = levels[got].id
        choice = caller.router.take(pending, Decision(
            chosen, {i: (1.0 if i == chosen else 0.0) for i in pending.options},
            reason=f"acar: sigma={s:.2f} -> {'answer' if not added else 'add ' + ', '.join(added)}",
            evidence=evidence))
        choice.close(feedback=False)
        strong: list[Answer] = []
        for t in added:
            c = caller.take(STRONG, t, reason=f"acar: escalate on sigma={s:.2f}")
            a = None if c is None else caller.call(c, msgs)
            if a is not None:
                strong.append(a)
        every = probe_answers + strong
        if not every:
            return caller.outcome(None, evidence)
        ex = extracted + [extract(a.text, fam, text) for a in strong]
        win = every[self.final(ex, len(strong))]
        return caller.outcome(win, {**evidence, "final": win.tier})

    def agent(self, tiers: Sequence[Any], provider: Any, *, key: str = "question", out: str = "answer") -> Any:
        """An agent function for :class:`~agentroute.AgentGraph`: runs ACAR on ``state[key]`` under the task's budget.

        ``tiers`` are the :class:`~agentroute.ModelTier` objects named in ``probes`` and ``ladder``; ``provider``
        serves them (pass the one the app is compiled with). Every call and the escalation are routing points of the
        running task (its ledger, its records); the answer goes to ``state[out]``, the evidence to
        ``state[out + "_acar"]``.
        """
        by_name = {t.name: t for t in tiers}
        missing = [t for t in self.tiers if t not in by_name]
        if missing:
            raise ConfigError(f"ACAR.agent: no tier named {missing[0]!r}", name=missing[0],
                              hint=f"tiers: {', '.join(by_name)}")

        def acar(state: Mapping[str, Any], ctx: Any) -> dict[str, Any]:
            o = self.run(Caller(ctx.router, by_name, provider), text=str(state[key]))
            return {out: o.text, f"{out}_acar": dict(o.evidence)}

        acar.__name__ = self.name
        return acar


def recorded_answers(table: RoutingTable, options: Sequence[str]) -> dict[str, list[str | None]]:
    """Every recorded answer of ``options`` on ``table``, extracted per task family (``option -> per query``)."""
    if not table.has_responses:
        raise ConfigError("ACAR's offline scores need a table with recorded responses", name="response")
    assert table.responses is not None
    fams = [family_of(t, c) for t, c in zip(table.texts, table.categories, strict=True)]
    out = {}
    for o in options:
        j = table.option_index(o)
        out[o] = [extract(str(table.responses[i, j] or ""), fams[i], table.texts[i]) for i in range(len(table))]
    return out


def offline_scores(acar: ACAR, table: RoutingTable,
                   answers: Mapping[str, Sequence[str | None]] | None = None) -> tuple[float, float, float]:
    """``(quality, cost, escalation avoided)`` of ``acar`` on ``table``'s recorded answers: no calls, no budget.

    The same σ, levels and vote as :meth:`ACAR.run`, with what each tier answered read from the table
    (``answers``: :func:`recorded_answers`, computed once for many candidates).
    """
    tiers = list(acar.tiers)
    ans = answers if answers is not None else recorded_answers(table, tiers)
    cols = [table.option_index(t) for t in tiers]
    n = len(acar.probes)
    q = np.empty(len(table))
    c = np.empty(len(table))
    avoided = 0
    for i in range(len(table)):
        row = [ans[t][i] for t in tiers]
        k = acar.level(sigma(row[:n]))
        avoided += k == 0
        used = list(range(n + k))
        win = acar.final([row[u] for u in used], k)
        q[i] = table.quality[i, cols[win]]
        c[i] = float(np.nansum(table.cost[i, [cols[u] for u in used]]))
    return float(q.mean()), float(c.mean()), avoided / max(1, len(table))


def select_probes(table: RoutingTable, pool: Sequence[str], ladder: Sequence[str], *, n: int = 2,
                  cost_weight: float | None = None, **kw: Any) -> ACAR:
    """The ACAR over ``n`` probes from ``pool`` that scores best on ``table`` (a *training* table).

    Score: mean quality − λ·mean cost, with λ (per USD) by default the quality gap between the first ladder tier
    and the best probe per USD of the ladder tier's mean cost (escalating on every task then breaks even).
    """
    if n < 2:
        raise ConfigError(f"ACAR needs at least 2 probes (N >= 2), got {n}", name="n")
    if len(pool) < n:
        raise ConfigError(f"ACAR: {n} probes asked for, the pool has {len(pool)}", name="n")
    if cost_weight is None:
        j = table.option_index(ladder[0])
        best = max(float(table.quality[:, table.option_index(p)].mean()) for p in pool)
        gap = max(0.0, float(table.quality[:, j].mean()) - best)
        cost_weight = gap / max(1e-12, float(np.nanmean(table.cost[:, j])))
    answers = recorded_answers(table, [*pool, *ladder])
    best_acar, best_score = None, -np.inf
    for combo in itertools.combinations(pool, n):
        cand = ACAR(probes=combo, ladder=ladder, **kw)
        q, c, _ = offline_scores(cand, table, answers)
        score = q - cost_weight * c
        if score > best_score:
            best_acar, best_score = cand, score
    assert best_acar is not None
    return best_acar


__all__ = ["ACAR", "ESCALATE", "PROBE", "STRONG", "offline_scores", "recorded_answers", "select_probes"]
