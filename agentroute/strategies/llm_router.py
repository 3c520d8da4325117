"""A Router-R1-style LLM router: a model tier reads the candidates and the budget, names its choice, reads the answer.

``LLMPolicy(tier="router", descriptors=[...])`` runs a task in rounds (at most ``rounds``):

1. **Think** — the router tier is called (a routing point ``llm-router.think`` of the task: its worst case reserved
   first, its cost committed to the task) with the task, every candidate's description and worst-case price, the
   budget that remains and the answers so far. It must reply ``ROUTE <candidate>`` or ``FINISH``.
2. **Route** — the named candidate is taken at ``llm-router.route`` (every candidate offered, the unaffordable masked;
   the router's choice recorded with its reasoning as evidence) and called.
3. **Read** — its answer goes into the next round's prompt; ``FINISH`` (or the last round) ends the task with the
   latest answer.

An **unparseable** reply, one naming a candidate that is not offered, or a **late** one (slower than ``timeout``
seconds) falls back to a rule: in the first round the candidate with the best ``prior − cost_weight·price``
among the affordable, afterwards ``FINISH``. The fallback is recorded in the route decision's evidence
(``fallback``: why) and counted in the outcome. When the router's own call is unaffordable the rule decides too.

Offline, the router tier can be any provider that answers it (a scripted stand-in, :func:`stand_in`); the real path is
a normal LiteLLM call to a real model. A recorded replay holds no answers to router prompts.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from agentroute.errors import ConfigError
from agentroute.routing import Decision
from agentroute.strategies._answers import extract, family_of
from agentroute.strategies._driver import Answer, Caller, Outcome, messages_for
from agentroute.strategies.fanout import Descriptor

THINK = "llm-router.think"
ROUTE = "llm-router.route"
_ACTION = re.compile(r"\b(ROUTE|FINISH)\b[:\s]*([^\s`'\"]*)", re.I)
SYSTEM = ("You route a task to one of several models under a budget. Read the candidates (name | worst-case price "
          "per call in USD | description), the budget left and the answers so far. Reply with exactly one line: "
          "ROUTE <name> to ask that model, or FINISH to keep the latest answer.")


@dataclass
class LLMPolicy:
    """The LLM router (see the module docstring for every parameter's role)."""

    tier: str
    """The router model's tier."""
    descriptors: Sequence[Descriptor]
    rounds: int = 2
    timeout: float | None = None
    """Seconds a router reply may take before it counts as late (``None``: never late)."""
    cost_weight: float = 0.0
    """λ per USD of the fallback rule."""
    name: str = "llm-router"
    own_tiers: Sequence[Any] = ()
    """The router's :class:`~agentroute.ModelTier` (and any other tier only it calls), when not among the workers'."""
    own_provider: Any = None
    """The provider serving ``own_tiers`` (a stand-in offline), when it is not the workers' provider."""

    def __post_init__(self) -> None:
        if self.rounds < 1:
            raise ConfigError(f"LLMPolicy: rounds must be >= 1, got {self.rounds}", name="rounds")
        names = [d.tier for d in self.descriptors]
        if not names or len(set(names)) != len(names) or self.tier in names:
            raise ConfigError("LLMPolicy needs candidates with distinct tiers, the router tier not among them",
                              name="descriptors")

    @property
    def tiers(self) -> tuple[str, ...]:
        """The router's tier and every candidate's."""
        return (self.tier, *(d.tier for d in self.descriptors))

    def prompt(self, text: str, prices: Mapping[str, Decimal | None], remaining: Decimal | None,
               answers: Sequence[Answer]) -> list[dict[str, str]]:
        """The router's messages for one round."""
        lines = [f"- {d.tier} | {'unknown' if prices.get(d.tier) is None else f'{prices[d.tier]:.6f}'} | "
                 f"{d.description or f'expected accuracy {d.prior:.2f}'}" for d in self.descriptors]
        budget = "unlimited" if remaining is None else f"{remaining:.6f} USD"
        said = "\n".join(f"[{a.tier}] {a.text[:400]}" for a in answers) or "(none yet)"
        user = (f"Task:\n{text}\n\nCandidates:\n" + "\n".join(lines) + f"\n\nBudget left: {budget}\n"
                f"Answers so far:\n{said}\n\nYour action:")
        return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]

    def parse(self, reply: str, offered: Sequence[str]) -> tuple[str, str | None] | None:
        """``("route", name)``, ``("finish", None)`` or ``None`` when ``reply`` names no offered action."""
        m = _ACTION.search(reply)
        if m is None:
            return None
        if m.group(1).upper() == "FINISH":
            return "finish", None
        name = m.group(2).strip().rstrip(".,;")
        return ("route", name) if name in offered else None

    def rule(self, offered: Sequence[str], prices: Mapping[str, Decimal | None]) -> str:
        """The fallback's first-round pick: best ``prior − cost_weight·price`` among ``offered``."""
        prior = {d.tier: d.prior for d in self.descriptors}
        return max(offered, key=lambda t: prior[t] - self.cost_weight * float(prices.get(t) or 0))

    def run(self, caller: Caller, text: str | None = None) -> Outcome:
        """Route → read → route again or finish, under the task's budget (see the module docstring)."""
        task = caller.router.task
        text = task.text if text is None else text
        prices = {d.tier: caller.worst(d.tier) for d in self.descriptors}
        answers: list[Answer] = []
        fallbacks: list[str] = []
        rounds = 0
        for r in range(self.rounds):
            rounds = r + 1
            st = caller.router.snapshot()
            think = caller.take(THINK, self.tier, reason=f"llm-router: round {r + 1} asks the router")
            action, why = None, None
            if think is None:
                why = "router call unaffordable"
            else:
                t0 = time.monotonic()
                said = caller.call(think, self.prompt(text, prices, st.remaining.usd, answers))
                late = self.timeout is not None and time.monotonic() - t0 > self.timeout
                if said is None:
                    why = "router call failed"
                elif late:
                    why = f"late: over {self.timeout}s"
                else:
                    action = self.parse(said.text, [d.tier for d in self.descriptors])
                    if action is None:
                        why = f"unparseable: {said.text[:80]!r}"
            if action is None:
                fallbacks.append(f"round {r + 1}: {why}")
                if r > 0:
                    break  # the rule after the first round: keep the answer in hand
            elif action[0] == "finish":
                if answers:
                    break
                fallbacks.append(f"round {r + 1}: FINISH with no answer")
                action = None
            name = action[1] if action is not None else None
            options = [caller.option(d.tier, rank=k) for k, d in enumerate(self.descriptors)]
            pending = caller.router.observe("model", ROUTE, options)
            offered = list(pending.options)
            if not offered:
                caller.refused.append(f"{ROUTE}: " + "; ".join(m.reason for m in pending.observation.masked))
                break
            if name is not None and name not in offered:
                fallbacks.append(f"round {r + 1}: {name} is masked")
                name = None
            fallback = name is None
            if name is None:
                name = self.rule(offered, prices)
            choice = caller.router.take(pending, Decision(
                name, {i: float(i == name) for i in offered},
                reason=f"llm-router: round {r + 1} " + ("fallback rule" if fallback else "router's choice"),
                evidence={"round": r + 1, "fallback": fallbacks[-1] if fallback and fallbacks else None}))
            if choice.stop is not None:
                caller.refused.append(f"{ROUTE}:{name}: {choice.stop}")
                break
            a = caller.call(choice, messages_for(text))
            if a is not None:
                answers.append(a)
        evidence = {"rounds": rounds, "fallback": len(fallbacks), "fallbacks": fallbacks,
                    "route": [a.tier for a in answers]}
        return caller.outcome(answers[-1] if answers else None, evidence)


def stand_in(cost_weight: float = 0.0) -> Any:
    """A scripted stand-in for the router model (for offline runs): it reads the prompt like a careful reader would.

    Round 1: the candidate with the best ``accuracy − cost_weight·price`` from the candidate lines (accuracy from
    ``expected accuracy X`` in its description). Later rounds: ``FINISH`` when the latest answer states a
    well-formed answer for the task's family (an option letter, a number), else ``ROUTE`` the candidate with the
    best accuracy that the budget left affords. Returns a function for ``agentroute.testing.Scripted``.
    """
    line = re.compile(r"^- (\S+) \| (\S+) \| .*?expected accuracy ([0-9.]+)", re.M)

    def reply(tier: str, messages: list[Any]) -> str:
        user = str(messages[-1]["content"])
        task = user.split("\n\nCandidates:\n", 1)[0].removeprefix("Task:\n")
        cands = [(n, None if p == "unknown" else float(p), float(a)) for n, p, a in line.findall(user)]
        m = re.search(r"Budget left: ([0-9.]+) USD", user)
        left = float(m.group(1)) if m else float("inf")
        said = user.split("Answers so far:\n", 1)[1].rsplit("\n\nYour action:", 1)[0]
        if said == "(none yet)":
            best = max(cands, key=lambda c: c[2] - cost_weight * (c[1] or 0.0))
            return f"ROUTE {best[0]}"
        last = said.rsplit("\n[", 1)[-1].split("] ", 1)[-1]
        fam = family_of(task)
        if fam in ("letter", "number", "option") and extract(last, fam, task) is not None:
            return "FINISH"
        tried = set(re.findall(r"^\[([^\]]+)\]", said, re.M))
        fits = [c for c in cands if c[0] not in tried and (c[1] or 0.0) <= left]
        return f"ROUTE {max(fits, key=lambda c: c[2])[0]}" if fits else "FINISH"

    return reply


__all__ = ["ROUTE", "SYSTEM", "THINK", "LLMPolicy", "stand_in"]
