"""The one routing point: observe → mask (with reasons) → decide → reserve → execute/settle → feedback → record.

Every place where agentroute asks a policy to choose goes through :class:`TaskRouter`: the runtime's agent choice,
model tier (with its retries, fallbacks and cascades), memory tiers (recall, second looks, cascades), a user's
``ctx.route``, the memory environment, the offline memory evaluation, ``evaluation.sweep`` and ``replay``. A driver is
thin: it turns what it knows into :class:`Option` s (a candidate with the worst case it *needs* to be offered and the
amount it *holds* once chosen), executes the chosen option, and settles what it really spent. The kernel does the
rest, the same way for all of them.

Design (the decisions that make the drivers agree):

- **One snapshot per routing point.** :meth:`TaskRouter.observe` reads the ledger once (:meth:`Ledger.snapshot`);
  masking, the observation and the record's ``budget_before`` all use it.
- **Masking is generic** over every dimension of :class:`~agentroute.budget.Budget`, in a fixed order (steps,
  seconds, usd, tokens), with one family of reasons: ``budget:<dim>: needs <x>, <y> left`` (``budget:seconds: no
  time left`` once the task's time is up). A driver may also block an option for its own reason (``tried: ...``,
  ``failed: ...``, ``not offered ...``); such reasons never start with ``budget:``. An option marked ``free`` (the
  ``__end__`` of an agent point) needs nothing and is never masked.
- **Need and hold.** ``need`` is what must fit for the option to be offered; ``hold`` is what is reserved when it is
  chosen (by default the need). An agent needs its cheapest minimal model call but holds only its step; a memory tier
  whose model step goes through the task's model path needs that call but does not hold it (the model path reserves it
  itself). An unknown USD amount (``None``) is never masked on and reserves nothing; the ledger then records the
  spend as unknown (its known part is kept), and under a USD limit the commit is a violation (``unknown cost``).
- **Decide.** The policy (wrapped once in :class:`~agentroute.routing._policy.Policy`, which fills in every optional
  capability) must choose an offered candidate, else :class:`~agentroute.errors.PolicyError`. Its decision time counts
  against the task's ``seconds`` limit: a decision that ends past it is refused with ``budget:seconds``. When no
  candidate is left the point is *exhausted*: :attr:`Choice.stop` holds the reason (``budget:usd``, ...) and the
  driver ends the task, the cascade or the episode. A point with a ``default`` (the agent point's ``__end__``) takes
  it without asking when nothing else is affordable.
- **Reserve, then settle on one path.** :meth:`Choice.reserve` holds the amount on the ledger (all parents
  atomically) or marks the choice refused; :meth:`Choice.commit` books what was really spent and frees the rest, and
  :meth:`Choice.release` frees it all. Settlement follows :meth:`Reservation.commit`'s one rule: a negative amount (a
  module that shortened the context) is booked as 0, so budget is never given back; an unknown cost is booked as the
  reservation's worst case (never 0); an amount past the reservation is charged in full and recorded as a
  :class:`~agentroute.budget.Violation` on the ledger (the runtime then ends the task as ``overrun``). A choice may
  reserve more than once (a model tier's retries), each reservation settled before the next.
- **Feedback and record** happen once, in :meth:`Choice.close`: the :class:`~agentroute.routing.DecisionRecord`
  (index = the order of the decision, so a record written after its step keeps its place) goes to the recorder, and
  the :class:`~agentroute.routing.Feedback` to the policy. Drivers that only evaluate a frozen policy turn both off.
- **Shadows** (``shadows=``) are asked right after the policy, on the same observation, and never acted on: their
  would-be choices and probabilities go into the record (:attr:`~agentroute.routing.DecisionRecord.shadow`).
- **History** (``(point, chosen)`` pairs) is appended when a decision is taken, so later points of the task see it.

Point names are the drivers' business but follow one scheme everywhere, serving, training and evaluation alike:
``route:<agent>`` (agent choice), ``<agent>.model`` (model tier), ``<agent>.memory.<module>`` and
``<agent>.memory.look<n>.<module>`` (memory tiers; offline drivers take the agent's name as an argument),
``<agent>.memory.<module>.model`` (memory's own model step) and ``<node>.<name>`` for ``ctx.route`` and table drivers.

This module imports only the budget, the errors and the routing vocabulary: no runtime, LangGraph or LiteLLM.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from agentroute.budget import ZERO, Budget, BudgetStatus, Ledger, Reservation, Spend
from agentroute.errors import ConfigError, PolicyError, Unaffordable
from agentroute.routing._policy import Policy, shadow_decisions
from agentroute.routing._types import Candidate, Decision, Feedback, Kind, Masked, Observation, TaskInfo
from agentroute.routing.policy import TaskOutcome
from agentroute.routing.record import DecisionRecord


@dataclass(frozen=True, slots=True)
class Option:
    """One candidate as a driver offers it: what it needs to be offered and what it holds once chosen."""

    candidate: Candidate
    need: Spend = field(default_factory=Spend)
    """The worst case that must fit in what is left for the option to be offered (``usd=None``: unknown price)."""
    hold: Spend | None = None
    """What is reserved when it is chosen; ``None`` = :attr:`need`."""
    blocked: str | None = None
    """A reason, not the budget's, to mask it anyway (``"tried: ..."``, ``"failed: ..."``)."""
    free: bool = False
    """Needs nothing at all (``__end__``): never masked, even when the task's time is up."""

    @property
    def id(self) -> str:
        """The candidate's id."""
        return self.candidate.id

    @property
    def held(self) -> Spend:
        """What choosing it reserves."""
        return self.need if self.hold is None else self.hold


def option(candidate: Candidate) -> Option:
    """A candidate as an option that needs and holds its ``cost_estimate`` (USD) and ``descriptor["tokens"]``."""
    tokens = int(candidate.descriptor.get("tokens", 0) or 0)
    return Option(candidate, Spend(usd=candidate.cost_estimate, tokens=tokens))


def _usd(d: Decimal) -> str:
    return format(d.normalize(), "f") if d else "0"


def mask_reason(need: Spend, remaining: Budget) -> str | None:
    """Why ``need`` does not fit in ``remaining`` (``budget:<dim>: ...``), or ``None`` when it fits."""
    rem = remaining
    if rem.steps is not None and need.steps > rem.steps:
        return f"budget:steps: needs {need.steps} step(s), {rem.steps} left"
    if rem.seconds is not None:
        if rem.seconds <= 0:
            return "budget:seconds: no time left"
        if need.seconds > rem.seconds:
            return f"budget:seconds: needs {need.seconds:.3f}s, {rem.seconds:.3f}s left"
    if rem.usd is not None and need.usd is not None and need.usd > rem.usd:
        return f"budget:usd: needs ${_usd(need.usd)}, ${_usd(rem.usd)} left"
    if rem.tokens is not None and need.tokens > rem.tokens:
        return f"budget:tokens: needs {need.tokens} tokens, {rem.tokens} left"
    return None


def reason_key(reason: str) -> str:
    """``"budget:usd: needs ..."`` -> ``"budget:usd"`` (what a truncated run reports)."""
    return ":".join(reason.split(":", 2)[:2])


class _Sum:
    """The default of :meth:`Choice.close`'s ``cost``: what the commits added up to."""


SUM = _Sum()


class Exhausted(BaseException):
    """A driver's signal that a routing point had nothing affordable: whoever drives the task must stop.

    Never an error a user sees: the runtime turns it into a truncated run (``reason`` is what the run reports, e.g.
    ``"budget:usd"``), a memory cascade into "keep the answer in hand", an offline driver into a truncated recall or
    episode. It derives from ``BaseException`` so that an agent's ``except Exception`` cannot swallow it.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class Recorder(Protocol):
    """Where a router's records go (the runtime forwards them to its hooks)."""

    def on_decision(self, record: DecisionRecord) -> None:
        """A decision was settled."""
        ...

    def on_ledger(self, op: str, what: str, amount: Spend) -> None:
        """A reservation was made (``op="reserve"``), committed or released."""
        ...


@dataclass(slots=True)
class Pending:
    """A routing point observed and masked, waiting for its decision (:meth:`TaskRouter.decide` or ``take``)."""

    observation: Observation
    options: dict[str, Option]
    """The offered options, by id."""
    default: str | None = None

    @property
    def empty(self) -> bool:
        """True when nothing is offered."""
        return not self.observation.candidates

    @property
    def exhausted(self) -> str:
        """The reason key of the first budget mask (``"budget"`` when none says more)."""
        for m in self.observation.masked:
            if m.reason.startswith("budget:"):
                return reason_key(m.reason)
        return "budget"


class Choice:
    """A decision taken at a routing point: reserve, run the option, then :meth:`settle` (or :meth:`fail`) it.

    ``chosen`` is ``None`` when nothing was affordable; ``stop`` then (or when the reservation was refused) holds the
    reason key the driver ends with (``"budget:usd"``, ...).
    """

    __slots__ = ("_held", "_router", "closed", "cost_usd", "decision", "forced", "index", "observation", "option",
                 "refused", "started", "stop", "tokens", "what")

    def __init__(self, router: TaskRouter, observation: Observation, decision: Decision | None,
                 option: Option | None, index: int, *, what: str = "", forced: bool = False) -> None:
        self._router = router
        self.observation = observation
        self.decision = decision
        self.option = option
        self.index = index
        self.what = what
        self.forced = forced
        self.stop: str | None = None
        self.refused: str | None = None
        """The dimension a reservation was refused on, if one was."""
        self.closed = False
        self.cost_usd: Decimal | None = ZERO
        self.tokens = 0
        self.started = time.monotonic()
        self._held: Reservation | None = None

    @property
    def chosen(self) -> str | None:
        """The id chosen (``None``: nothing was affordable)."""
        return None if self.decision is None else self.decision.chosen

    @property
    def router(self) -> TaskRouter:
        """The task's router this choice was taken by."""
        return self._router

    @property
    def held(self) -> bool:
        """True while a reservation of this choice is held."""
        return self._held is not None

    # -- the ledger moves ------------------------------------------------------------------------------------------
    def reserve(self, amount: Spend | None = None) -> bool:
        """Hold ``amount`` (default: the option's hold); ``False`` (and :attr:`refused` set) when it does not fit."""
        if self._held is not None:
            raise ConfigError(f"{self.what}: a reservation is already held; settle it first", name=self.what)
        want = amount if amount is not None else (self.option.held if self.option is not None else Spend())
        try:
            self._held = self._router.reserve(want, self.what)
        except Unaffordable as e:
            self.refused = e.dimension
            return False
        return True

    def commit(self, actual: Spend) -> Spend:
        """Book what the held reservation really spent and free the rest; return what was booked.

        Negatives are booked as 0 and an unknown cost as the reservation's worst case (see
        :meth:`~agentroute.budget.Reservation.commit`).
        """
        held = self._held
        if held is None:
            raise ConfigError(f"{self.what}: nothing is held to commit", name=self.what,
                              hint="reserve() before running the option")
        self._held = None
        booked = self._router.commit(held, actual)
        self.cost_usd = None if self.cost_usd is None or booked.usd is None else self.cost_usd + booked.usd
        self.tokens += booked.tokens
        return booked

    def release(self) -> None:
        """Free the held reservation, if any (the option spent nothing)."""
        held, self._held = self._held, None
        if held is not None:
            self._router.release(held)

    # -- closing -------------------------------------------------------------------------------------------------
    def close(self, *, quality: float | None = None, ok: bool = True, error: str | None = None,
              cost: Decimal | _Sum | None = SUM, tokens: int | None = None, latency: float | None = None,
              feedback: bool = True) -> DecisionRecord | None:
        """Record the decision and give the policy its feedback, once. Frees what is still held.

        ``cost``/``tokens`` override what the commits added up to (an agent's decision is charged its whole step).
        """
        if self.closed or self.decision is None:
            return None
        self.closed = True
        self.release()
        spent_usd = self.cost_usd if isinstance(cost, _Sum) else cost
        spent_tokens = self.tokens if tokens is None else tokens
        r = self._router
        rec = r.write(self, spent_usd, spent_tokens, quality) if r.records_on else None
        if feedback and r.learn and r.policy is not None and r.policy.learns and not self.forced:
            lat = time.monotonic() - self.started if latency is None else latency
            r.policy.feedback(Feedback(self.observation, self.decision, spent_usd, spent_tokens, lat, quality, ok,
                                       error))
        return rec

    def settle(self, actual: Spend | None = None, *, quality: float | None = None) -> None:
        """Commit what the option really cost (``None`` = nothing) and close: record and feedback."""
        if self.closed:
            return
        if self._held is not None:
            self.commit(actual if actual is not None else Spend())
        self.close(quality=quality)

    def fail(self, error: str) -> None:
        """Release the reservation (the option failed before spending) and close with ``ok=False``."""
        if self.closed:
            return
        self.release()
        self.close(ok=False, error=error)

    def __repr__(self) -> str:
        return f"Choice({self.observation.point!r}, chosen={self.chosen!r}, stop={self.stop!r})"


class TaskRouter:
    """The routing kernel of one task: its ledger, its policy, what it knows of the task, history and records.

    ``node`` and ``step`` are the driver's position (the runtime moves them as agents run). ``record=False`` writes
    no :class:`DecisionRecord`; ``learn=False`` gives the policy no feedback and no end-of-task credit (evaluation of
    a frozen policy). ``shadows`` are asked at every decision the policy takes, on the same observation, and only
    recorded (:attr:`DecisionRecord.shadow`).
    """

    __slots__ = ("_count", "_decided", "_shadowed", "history", "learn", "ledger", "node", "policy", "recorder",
                 "records", "records_on", "shadows", "step", "task")

    def __init__(self, ledger: Ledger, policy: Any, task: TaskInfo, *, recorder: Recorder | None = None,
                 node: str = "", step: int = 0, record: bool = True, learn: bool = True,
                 shadows: Sequence[Any] = ()) -> None:
        self.ledger = ledger
        self.policy: Policy | None = None if policy is None else policy if isinstance(policy, Policy) \
            else Policy(policy)
        self.task = task
        self.recorder = recorder
        self.node = node
        self.step = step
        self.records_on = record
        self.learn = learn
        self.history: list[tuple[str, str]] = []
        self.records: list[DecisionRecord] = []
        self._count = 0
        self._decided: dict[int, int] = {}
        self.shadows = tuple(p if isinstance(p, Policy) else Policy(p) for p in shadows)
        self._shadowed: dict[int, dict[str, dict[str, Any]]] = {}

    # -- ledger moves, each one told to the recorder --------------------------------------------------------------
    def reserve(self, amount: Spend, what: str) -> Reservation:
        """Reserve on the ledger (raises :class:`~agentroute.errors.Unaffordable`).

        An unknown USD amount (``usd=None``: no price, or no USD limit to hold against) reserves no USD, and the
        reservation keeps ``None`` so what is spent is booked as is, with no reservation to compare it to.
        """
        if amount.usd is None:
            r = self.ledger.reserve(Spend(ZERO, amount.tokens, amount.steps, 0.0), what=what)
            r.amount = Spend(None, amount.tokens, amount.steps, 0.0)
        else:
            r = self.ledger.reserve(amount, what=what)
        if self.recorder is not None:
            self.recorder.on_ledger("reserve", what, amount)
        return r

    def commit(self, r: Reservation, actual: Spend) -> Spend:
        """Book what a reservation's step really spent (by :meth:`Reservation.commit`'s rule); the rest is freed.

        Returns what was booked: negatives as 0, an unknown cost as the reservation's worst case.
        """
        if r.settled:
            return r.booked if r.booked is not None else Spend()
        booked = r.commit(actual)
        if self.recorder is not None:
            self.recorder.on_ledger("commit", r.what, booked)
        return booked

    def release(self, r: Reservation) -> None:
        """Free a reservation whose step spent nothing."""
        if r.settled:
            return
        r.release()
        if self.recorder is not None:
            self.recorder.on_ledger("release", r.what, r.amount)

    # -- observe and mask ---------------------------------------------------------------------------------------
    def snapshot(self) -> BudgetStatus:
        """The budget as one routing point sees it (one read of every ledger)."""
        return self.ledger.snapshot()

    def observe(self, kind: Kind, point: str, options: Sequence[Option], *, extra: Mapping[str, Any] | None = None,
                default: str | None = None, status: BudgetStatus | None = None) -> Pending:
        """Mask ``options`` against one budget snapshot (``status``, when the driver already took it)."""
        st = status if status is not None else self.ledger.snapshot()
        rem = st.remaining
        cands: list[Candidate] = []
        masked: list[Masked] = []
        offered: dict[str, Option] = {}
        for o in options:
            why = o.blocked if o.blocked is not None else None if o.free else mask_reason(o.need, rem)
            if why is None:
                cands.append(o.candidate)
                offered[o.candidate.id] = o
            else:
                masked.append(Masked(o.candidate.id, why))
        obs = Observation(task=self.task, kind=kind, point=point, node=self.node, step=self.step,
                          history=tuple(self.history), budget=st, candidates=tuple(cands), masked=tuple(masked),
                          extra=extra if extra is not None else {})
        return Pending(obs, offered, default)

    # -- decide --------------------------------------------------------------------------------------------------
    def decide(self, pending: Pending, *, reserve: bool = True, what: str | None = None) -> Choice:
        """Ask the policy (or take the default when nothing else is affordable), then reserve (see the module doc)."""
        obs = pending.observation
        dflt = pending.default
        if pending.empty or (dflt is not None and obs.ids == (dflt,) and obs.masked):
            if dflt is None:
                choice = Choice(self, obs, None, None, -1, what=what or "")
                choice.stop = pending.exhausted
                return choice
            probs = {dflt: 1.0} if obs.candidates else {}
            forced = self.take(pending, Decision(dflt, probs, reason="forced: nothing else affordable"),
                               reserve=False, what=what, forced=True)
            forced.stop = pending.exhausted
            return forced
        if self.policy is None:
            raise ConfigError("this router has no policy: take() a decision made elsewhere", name="policy")
        d = self.policy.decide(obs)
        decided_ns = time.time_ns()
        choice = self.take(pending, d, reserve=False, what=what, decided_ns=decided_ns)
        if self.shadows:
            self._shadowed[choice.index] = shadow_decisions(self.shadows, obs)
        lim = self.ledger.limits.seconds
        if lim is not None and self.ledger.elapsed() >= lim:  # the decision itself used up the task's time
            choice.refused = "seconds"
            choice.stop = "budget:seconds"
            choice.close(ok=False, error="budget:seconds: no time left after the decision")
            return choice
        if reserve and not choice.reserve():
            choice.stop = f"budget:{choice.refused}"
            choice.close(ok=False, error=f"budget:{choice.refused}: reservation refused")
        return choice

    def take(self, pending: Pending, decision: Decision, *, reserve: bool = True, what: str | None = None,
             forced: bool = False, decided_ns: int | None = None) -> Choice:
        """Take ``decision`` (made by the policy, an environment's action, or forced) at an observed point."""
        obs = pending.observation
        chosen = getattr(decision, "chosen", None)
        opt = pending.options.get(chosen) if isinstance(chosen, str) else None
        if opt is None and not (forced and chosen == pending.default):
            name = self.policy.name if self.policy is not None else "policy"
            m = next((m for m in obs.masked if m.id == chosen), None)
            why = f"it was masked ({m.reason})" if m else "it is not a candidate"
            raise PolicyError(f"policy {name!r} chose {chosen!r} at {obs.point}, but {why}; "
                              f"candidates were {list(obs.ids)}", policy=name, chosen=chosen)
        choice = Choice(self, obs, decision, opt, self._count,
                        what=what or f"{obs.kind}:{obs.point}:{decision.chosen}", forced=forced)
        self._count += 1
        self.history.append((obs.point, decision.chosen))
        self._decided[choice.index] = decided_ns if decided_ns is not None else time.time_ns()
        if reserve and opt is not None and not choice.reserve():
            choice.stop = f"budget:{choice.refused}"
            choice.close(ok=False, error=f"budget:{choice.refused}: reservation refused")
        return choice

    def route(self, kind: Kind, point: str, options: Sequence[Option], *, extra: Mapping[str, Any] | None = None,
              default: str | None = None, reserve: bool = True, what: str | None = None) -> Choice:
        """Observe, mask, decide and reserve in one call."""
        return self.decide(self.observe(kind, point, options, extra=extra, default=default), reserve=reserve,
                           what=what)

    def accepts(self, choice: Choice, reply: Any) -> bool:
        """Whether the policy accepts a model reply for ``choice`` (cascades); ``True`` without a policy."""
        if self.policy is None or choice.decision is None:
            return True
        return self.policy.accept(choice.observation, choice.decision, reply)

    # -- records ---------------------------------------------------------------------------------------------------
    def write(self, choice: Choice, cost: Decimal | None, tokens: int, quality: float | None) -> DecisionRecord:
        """The decision record of a closed choice (``budget_after`` read now), told to the recorder."""
        obs, d = choice.observation, choice.decision
        assert d is not None
        hold = None if choice.forced or choice.option is None else choice.option.held
        name = self.policy.name if self.policy is not None else "env"
        version = self.policy.version if self.policy is not None else "0"
        rec = DecisionRecord(
            task_id=self.task.id, index=choice.index, kind=obs.kind, point=obs.point, node=obs.node, step=obs.step,
            chosen=d.chosen, probabilities=dict(d.probabilities), scores=dict(d.scores), reason=d.reason,
            policy=name, policy_version=version, explored=d.explored, candidates=obs.candidates,
            masked=obs.masked, budget_before=obs.budget.remaining.as_dict(),
            budget_after=self.ledger.remaining().as_dict(), reservation=None if hold is None else hold.as_dict(),
            cost_usd=cost, tokens=tokens, quality=quality, evidence=dict(d.evidence),
            decided_ns=self._decided.pop(choice.index, 0), shadow=self._shadowed.pop(choice.index, {}),
        )
        self.records.append(rec)
        if self.recorder is not None:
            self.recorder.on_decision(rec)
        return rec

    def decisions(self) -> list[DecisionRecord]:
        """Every record written so far, in the order the decisions were taken."""
        return sorted(self.records, key=lambda r: r.index)

    def end_task(self, outcome: TaskOutcome) -> None:
        """Hand the task's end to the policy's ``on_task_end`` (once per task; nothing when not learning)."""
        if self.learn and self.policy is not None:
            self.policy.on_task_end(outcome)


__all__ = ["Choice", "Exhausted", "Option", "Pending", "Recorder", "TaskRouter", "mask_reason", "option", "reason_key"]
