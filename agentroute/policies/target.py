"""Hold any policy to a target: ``TargetSpend(policy, usd_per_task=...)`` or ``TargetShare(policy, strong_share=...)``.

What it owns: the cost weight λ (per USD) the wrapped policy decides with. Every decision is handed to the wrapped
policy with ``obs.extra["cost_weight"]`` set to the wrapper's current λ (in the unit the policy prices costs in, as
the table drivers do), and λ is moved after each unit of evidence so the realised rate meets the target:

- :class:`TargetSpend` — the USD spent per task (read from each task's end, ``on_task_end``), e.g. $0.002 a query;
- :class:`TargetShare` — the share of model decisions that go to the strong option (RouteLLM's cost measure), read at
  each decision.

The controller is dual ascent on the target's constraint, in log λ (λ spans orders of magnitude and stays positive):
``log λ ← log λ + η·(x/target − 1)``, ``x`` the task's spend (or 1 when the strong option was chosen, else 0). Raising
λ makes cost dearer, so spend (and the strong share) falls. log λ is the integral of the relative error, so over any
stretch of ``m`` units after the warm-up, where η is constant, ``mean(x)/target − 1 = Δlog λ / (η·m)``: as long as λ
settles, the realised rate converges to the target, whatever the policy and the stream (the property the tests
check). During the first ``warmup`` units η is larger (``η·√(warmup/(t+1))``) to travel from the starting λ fast,
and divided by the error's typical size when that is below 1 (costs that differ by 2× give errors of ±0.3, and λ must
still travel; the size is learnt during the warm-up and frozen after it, which keeps η constant there); one
move is capped at ``max_move`` in log λ, the rest carried to the next units (one dear task among cheap ones does not
swing λ by orders of magnitude), and log λ stays within ``span`` of its start (no wind-up against an infeasible
target: the realised rate then stays off, and the report says so).

It never changes what the wrapped policy learns: feedback goes through with the observation the policy decided on
(λ included), task ends as they are. A wrapped policy with a ``follow_cost_weight()`` method is told once, when
wrapped, that its λ will move (the pheromone colony then prices at each decision instead of learning rewards at
past λs, which lagged the controller and wound it up). It offers no ``predict_outcomes``: an evaluation sweep
routes through ``decide``. Without task ends (learning off) a spend target's λ stays where it is; a share target
needs none.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, ClassVar

from agentroute.errors import ConfigError
from agentroute.policies._card import Arrays, Card, load_nested, nested_card, register
from agentroute.routing import (
    Candidate,
    Decision,
    Feedback,
    GraphSpec,
    Observation,
    PolicyBase,
    TaskOutcome,
    implements,
)

if TYPE_CHECKING:
    import numpy as np

DEFAULT_TOLERANCE = 0.1
"""Within 10% of the target (relative) counts as held."""
DEFAULT_WARMUP = 100
"""Units (tasks, or model decisions for a share) before the realised rate is judged."""
DEFAULT_STEP = 0.1
"""η after the warm-up: log λ moves by 10% of the relative error per unit."""
_MIN_RMS = 0.05  # the error's size is never taken below this (costs that barely differ would make η explode)
_REMEMBER = 4096  # observations awaiting their feedback (a driver that never feeds back does not grow this)


@dataclasses.dataclass
class Controller:
    """Dual ascent on ``mean(x) = target`` in log λ (see the module doc); the wrapper's state, saved on its card."""

    target: float
    step: float = DEFAULT_STEP
    warmup: int = DEFAULT_WARMUP
    max_move: float = 0.5
    span: float = 20.0
    log_lam: float | None = None
    """log λ per USD; ``None`` until the first decision sets the start."""
    origin: float = 0.0
    carry: float = 0.0
    t: int = 0
    """Units seen."""
    total: float = 0.0
    after: int = 0
    """Units seen after the warm-up."""
    total_after: float = 0.0
    sq: float = 0.0
    """Running mean of the squared relative error during the warm-up (its root scales η; frozen after)."""

    def start(self, lam: float) -> None:
        """Begin at λ (per USD, > 0)."""
        self.log_lam = self.origin = math.log(lam)

    @property
    def cost_weight(self) -> float:
        """λ per USD now (0.0 before the start)."""
        return 0.0 if self.log_lam is None else math.exp(self.log_lam)

    def gain(self) -> float:
        """η of the next unit: ``step`` over the error's typical size (when below 1), boosted while warming up."""
        size = min(max(math.sqrt(self.sq), _MIN_RMS), 1.0)
        return self.step * max(1.0, math.sqrt(self.warmup / (self.t + 1))) / size

    def update(self, x: float) -> None:
        """Count one unit with value ``x`` (a task's USD, or 1/0 for strong/not) and move λ."""
        err = x / self.target - 1.0 if self.target > 0 else (1.0 if x > 0 else -1.0)
        if self.t >= self.warmup:
            self.after += 1
            self.total_after += x
        else:  # learn the error's size while warming up: recent units count most (λ is still travelling)
            a = max(1.0 / (self.t + 1), 4.0 / max(self.warmup, 1))
            self.sq += a * (err * err - self.sq)
        self.total += x
        eta = self.gain()
        self.t += 1
        if self.log_lam is None:
            return
        self.carry += eta * err
        move = max(-self.max_move, min(self.max_move, self.carry))
        self.carry -= move
        lo, hi = self.origin - self.span, self.origin + self.span
        new = self.log_lam + move
        if not lo <= new <= hi:  # pinned at a bound: drop what is carried (no wind-up)
            new, self.carry = min(hi, max(lo, new)), 0.0
        self.log_lam = new

    @property
    def realised(self) -> float | None:
        """Mean ``x`` after the warm-up (``None`` until a unit after it)."""
        return self.total_after / self.after if self.after else None

    @property
    def realised_all(self) -> float | None:
        """Mean ``x`` over every unit."""
        return self.total / self.t if self.t else None


def _names(c: Candidate) -> set[Any]:
    """What a candidate answers to: its id, and the model (or option) it names."""
    return {c.id, c.descriptor.get("model"), c.descriptor.get("option")}


def _check(name: str, value: Any, *, lo: float, hi: float = math.inf, lo_open: bool = True) -> float:
    try:
        f = float(value)
    except (TypeError, ValueError):
        f = math.nan
    ok = not isinstance(value, bool) and math.isfinite(f) and (f > lo if lo_open else f >= lo) and f <= hi
    if not ok:
        rng = f"({lo:g}, {hi:g}]" if lo_open else f"[{lo:g}, {hi:g}]"
        raise ConfigError(f"{name}={value!r} must be a number in {rng}", name=name)
    return f


class _Target(PolicyBase):
    """What both targets share: the wrapped policy, the controller, λ handed down, feedback passed through."""

    family: ClassVar[str] = "target"
    kind: ClassVar[str] = ""
    unit: ClassVar[str] = ""

    def __init__(self, policy: Any, *, target: float, tolerance: float, warmup: int, step: float,
                 start: float | None) -> None:
        if not callable(getattr(policy, "decide", None)):
            raise ConfigError(f"{type(self).__name__} needs a policy with decide(obs), got {type(policy).__name__}",
                              name="policy")
        if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
            raise ConfigError(f"warmup={warmup!r} must be a whole number >= 0", name="warmup")
        self.policy = policy
        follow = getattr(policy, "follow_cost_weight", None)
        if callable(follow):  # a learner that can price at each decision follows the moving λ at once
            follow()
        self.tolerance = _check("tolerance", tolerance, lo=0.0, hi=10.0)
        self.control = Controller(target, step=_check("step", step, lo=0.0, hi=5.0), warmup=warmup)
        if start is not None:
            self.control.start(_check("start", start, lo=0.0, hi=1e300))
        elif (own := self._own()) is not None:
            self.control.start(own)
        self.name = f"target:{getattr(policy, 'name', type(policy).__name__)}"
        self.version = str(getattr(policy, "version", "1"))
        self._seen: OrderedDict[int, tuple[Observation, Observation]] = OrderedDict()
        self._lock = threading.Lock()

    # -- λ -----------------------------------------------------------------------------------------------
    @property
    def target(self) -> float:
        """The target rate (USD per task, or the strong share)."""
        return self.control.target

    @property
    def cost_weight(self) -> float:
        """The λ per USD the wrapped policy decides with now."""
        return self.control.cost_weight

    def _own(self) -> float | None:
        """The wrapped policy's own λ per USD, when it has a positive finite one."""
        own = getattr(self.policy, "cost_weight", None)
        if isinstance(own, int | float) and not isinstance(own, bool) and 0 < own < math.inf:
            return float(own)
        return None

    def _start(self, obs: Observation) -> float:
        """The starting λ: the wrapped policy's own when positive, else 0.1 per USD of the dearest candidate."""
        own = self._own()
        if own is not None:
            return own
        dear = max((float(c.cost_estimate) for c in obs.candidates if c.cost_estimate is not None), default=0.0)
        return 0.1 / dear if dear > 0 else 1.0

    def _scale(self) -> float:
        scale = getattr(self.policy, "cost_scale", None)
        return float(scale) if isinstance(scale, int | float) and not isinstance(scale, bool) and scale > 0 else 1.0

    def within(self) -> bool | None:
        """Whether the realised rate after the warm-up is within the tolerance (``None`` before it ends)."""
        r = self.control.realised
        return None if r is None else abs(r - self.target) <= self.tolerance * self.target

    def status(self) -> dict[str, Any]:
        """Target, tolerance, λ now and the realised rates (what a replay reports)."""
        c = self.control
        return {"kind": self.kind, "target": self.target, "unit": self.unit, "tolerance": self.tolerance,
                "warmup": c.warmup, "units": c.t, "cost_weight": c.cost_weight, "realised": c.realised,
                "realised_all": c.realised_all, "within_tolerance": self.within(), "held": "online"}

    # -- the contract --------------------------------------------------------------------------------------
    def decide(self, obs: Observation) -> Decision:
        """The wrapped policy's decision at the current λ; the target and λ are written into reason and evidence."""
        with self._lock:
            if self.control.log_lam is None:
                self.control.start(self._start(obs))
            lam = self.control.cost_weight
        s = self._scale()
        seen = dataclasses.replace(obs, extra={**obs.extra, "cost_weight": lam * s, "cost_scale": s})
        d = self.policy.decide(seen)
        with self._lock:
            self._seen[id(obs)] = (obs, seen)
            while len(self._seen) > _REMEMBER:
                self._seen.popitem(last=False)
            self._observe(obs, d)
            info = {"kind": self.kind, "target": self.target, "cost_weight": lam, "units": self.control.t,
                    "realised": self.control.realised_all}
        return Decision(d.chosen, d.probabilities, reason=f"{self._label()} at λ={lam:.4g}/USD: {d.reason}",
                        scores=d.scores, explored=d.explored, evidence={**d.evidence, "target": info})

    def _observe(self, obs: Observation, d: Decision) -> None:
        """A decision was made (a share target counts it here)."""

    def _label(self) -> str:
        raise NotImplementedError

    def feedback(self, fb: Feedback) -> None:
        """Pass the outcome on with the observation the wrapped policy decided on."""
        with self._lock:
            pair = self._seen.pop(id(fb.observation), None)
        if pair is not None and pair[0] is fb.observation:
            fb = dataclasses.replace(fb, observation=pair[1])
        if implements(self.policy, "feedback"):
            self.policy.feedback(fb)

    def on_task_end(self, outcome: TaskOutcome) -> None:
        """Pass the task's end on (a spend target counts it first)."""
        if implements(self.policy, "on_task_end"):
            self.policy.on_task_end(outcome)

    def bind(self, spec: GraphSpec) -> None:
        """The wrapped policy must fit the graph."""
        if implements(self.policy, "bind"):
            self.policy.bind(spec)

    def accept(self, obs: Observation, decision: Decision, reply: Any) -> bool:
        """The wrapped policy judges the reply (a cascade keeps escalating)."""
        return bool(self.policy.accept(obs, decision, reply)) if implements(self.policy, "accept") else True

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Flush the wrapped policy's pending updates, when it has any."""
        fn = getattr(self.policy, "flush", None)
        return bool(fn(timeout)) if callable(fn) else True

    def close(self) -> None:
        """Close the wrapped policy, when it holds resources."""
        fn = getattr(self.policy, "close", None)
        if callable(fn):
            fn()

    # -- saving --------------------------------------------------------------------------------------------
    def _extra_card(self) -> dict[str, Any]:
        return {}

    def to_card(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """The target, the controller's state and the wrapped policy's card."""
        arrays: dict[str, np.ndarray] = {}
        state = {k: v for k, v in dataclasses.asdict(self.control).items() if k != "target"}
        return {"target": self.target, "tolerance": self.tolerance, **self._extra_card(), "control": state,
                "policy": nested_card(self.policy, "policy", arrays)}, arrays

    def _restore(self, card: Card) -> None:
        st = card.obj("control")
        c = self.control
        c.max_move, c.span = st.num("max_move", lo=0.0), st.num("span", lo=0.0)
        c.log_lam = None if st.raw().get("log_lam") is None else st.num("log_lam", lo=-1e6, hi=1e6)
        c.origin, c.carry = st.num("origin", lo=-1e6, hi=1e6), st.num("carry", lo=-1e6, hi=1e6)
        c.t, c.after = st.whole("t", lo=0, hi=2**62), st.whole("after", lo=0, hi=2**62)
        c.total, c.total_after = st.num("total", lo=0.0), st.num("total_after", lo=0.0)
        c.sq = st.num("sq", 0.0, lo=0.0)


@register("target", "spend")
class TargetSpend(_Target):
    """``policy`` held to ``usd_per_task`` USD per task within ``tolerance`` (relative) after ``warmup`` tasks."""

    kind = "spend"
    unit = "usd_per_task"

    def __init__(self, policy: Any, *, usd_per_task: float, tolerance: float = DEFAULT_TOLERANCE,
                 warmup: int = DEFAULT_WARMUP, step: float = DEFAULT_STEP, start: float | None = None) -> None:
        target = _check("usd_per_task", usd_per_task, lo=0.0, hi=1e9)
        super().__init__(policy, target=target, tolerance=tolerance, warmup=warmup, step=step, start=start)

    def _label(self) -> str:
        return f"target ${self.target:.4g}/task"

    def on_task_end(self, outcome: TaskOutcome) -> None:
        """Count the task's spend (an unknown cost is skipped: it says nothing about the rate) and move λ."""
        if outcome.cost_usd is not None:
            with self._lock:
                self.control.update(float(outcome.cost_usd))
        super().on_task_end(outcome)

    @classmethod
    def from_card(cls, card: Card, arrays: Arrays) -> TargetSpend:
        """Restore the wrapped policy, the target and the controller."""
        st = card.obj("control")
        p = cls(load_nested(card, "policy", arrays), usd_per_task=card.num("target", lo=0.0),
                tolerance=card.num("tolerance", lo=0.0), warmup=st.whole("warmup", lo=0, hi=2**62),
                step=st.num("step", lo=0.0))
        p._restore(card)
        return p


@register("target", "strong_share")
class TargetShare(_Target):
    """``policy`` held to sending ``strong_share`` of its model decisions to ``strong`` (default: the dearest).

    ``strong`` is an option's id (or the model a candidate names); left ``None``, the dearest candidate of the
    first model decision (cheapest first, so the last) is the strong one, kept from then on. A decision counts as
    strong when it takes the strong option or a candidate ranked dearer than it (so the share falls as λ grows even
    when the strong option is not the dearest); when the strong option is not offered, only itself would count.
    """

    kind = "strong_share"
    unit = "share"

    def __init__(self, policy: Any, *, strong_share: float, strong: str | None = None,
                 tolerance: float = DEFAULT_TOLERANCE, warmup: int = DEFAULT_WARMUP, step: float = DEFAULT_STEP,
                 start: float | None = None) -> None:
        target = _check("strong_share", strong_share, lo=0.0, hi=1.0)
        if target >= 1.0:
            raise ConfigError("strong_share=1 needs no calibration: route everything to the strong option",
                              name="strong_share", hint="use a share in (0, 1)")
        super().__init__(policy, target=target, tolerance=tolerance, warmup=warmup, step=step, start=start)
        if strong is not None and (not isinstance(strong, str) or not strong):
            raise ConfigError(f"strong={strong!r} must be an option's name", name="strong")
        self.strong = strong

    def _label(self) -> str:
        return f"target {self.target:.3g} to {self.strong or 'the strong option'}"

    def _observe(self, obs: Observation, d: Decision) -> None:
        if obs.kind != "model" or not obs.candidates:
            return
        if self.strong is None:
            self.strong = max(obs.candidates, key=lambda c: c.rank).id
        cand = obs.candidate(d.chosen)
        strong = next((c for c in obs.candidates if self.strong in _names(c)), None)
        hit = cand is not None and (self.strong in _names(cand) or (strong is not None and cand.rank > strong.rank))
        self.control.update(1.0 if hit else 0.0)

    def status(self) -> dict[str, Any]:  # noqa: D102
        return {**super().status(), "strong": self.strong}

    def _extra_card(self) -> dict[str, Any]:
        return {"strong": self.strong}

    @classmethod
    def from_card(cls, card: Card, arrays: Arrays) -> TargetShare:
        """Restore the wrapped policy, the target, the strong option and the controller."""
        st = card.obj("control")
        strong = card.raw().get("strong")
        p = cls(load_nested(card, "policy", arrays), strong_share=card.num("target", lo=0.0, hi=1.0),
                strong=None if strong is None else card.text("strong"), tolerance=card.num("tolerance", lo=0.0),
                warmup=st.whole("warmup", lo=0, hi=2**62), step=st.num("step", lo=0.0))
        p._restore(card)
        return p


def target_of(policy: Any) -> dict[str, Any] | None:
    """The target status of a policy held to one (:class:`TargetSpend`, :class:`TargetShare`), else ``None``."""
    return policy.status() if isinstance(policy, _Target) else None


__all__ = [
    "DEFAULT_STEP",
    "DEFAULT_TOLERANCE",
    "DEFAULT_WARMUP",
    "Controller",
    "TargetShare",
    "TargetSpend",
    "target_of",
]
