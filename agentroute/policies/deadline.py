"""A deadline on any policy's decision: ``WithDeadline(policy, micros=..., fallback=...)``.

What it owns: the wall-clock bound on one ``decide``. The wrapped policy decides on a worker thread of its own; the
caller waits at most ``micros`` microseconds. A decision that arrives in time is returned as it is. One that does not
is *abandoned*: the caller gets the fallback's decision (the graph's declared default unless told otherwise), the miss
is counted (:attr:`WithDeadline.misses`) and written into the decision's reason and evidence
(``{"deadline": {"missed": True, "micros": ..., "misses": ...}}``), so the decision record says why the wrapped
policy did not choose.

Semantics of an abandoned decision (Python cannot stop a thread): the slow ``decide`` runs on to its end on the
worker thread and its result is thrown away. Until it ends the worker is busy, and every later ``decide`` goes
straight to the fallback (also a miss, reason ``still deciding``): the wrapped policy never runs two calls at once,
so a policy that is not thread-safe stays safe. Feedback and task ends of the wrapped policy's own decisions are
queued on the same worker, in order, after any call still running (they never block the caller); a failure there is
raised at the next call. Decisions the fallback made are fed back to the fallback. ``bind`` and ``accept`` run on
the caller's thread. The worker is a daemon thread: a decision stuck for ever does not keep the process alive.

It never offers ``predict_outcomes``: an evaluation sweep routes through ``decide``, deadline included.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from agentroute.errors import ConfigError
from agentroute.policies._card import Arrays, Card, load_nested, nested_card, register
from agentroute.policies.baselines import DeclaredDefault
from agentroute.routing import Decision, Feedback, GraphSpec, Observation, PolicyBase, TaskOutcome, implements

if TYPE_CHECKING:
    import numpy as np

MAX_MICROS = 3_600_000_000
"""The longest deadline accepted (an hour): a larger one is a unit mistake, not a deadline."""
_STOP = object()


class _Job:
    """One call for the worker: the function, and (for a decision) where its answer goes."""

    __slots__ = ("done", "error", "fn", "result")

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None


class _Worker:
    """A daemon thread that runs the wrapped policy's calls one at a time, in the order they were given."""

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._busy = threading.Lock()
        self.failure: BaseException | None = None
        """The first exception of a queued call nobody waited for (feedback, a task end)."""
        self._thread = threading.Thread(target=self._run, name=f"agentroute-deadline:{name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is _STOP:
                return
            with self._busy:
                try:
                    job.result = job.fn()
                except BaseException as e:  # handed to whoever waits, or kept for the next call
                    job.error = e
                finally:
                    job.done.set()

    def submit(self, fn: Callable[[], Any]) -> _Job:
        job = _Job(fn)
        self._jobs.put(job)
        return job

    def stop(self) -> None:
        self._jobs.put(_STOP)


@register("deadline", "deadline")
class WithDeadline(PolicyBase):
    """``policy``'s decision when it comes within ``micros`` microseconds, else ``fallback``'s (see the module doc)."""

    family = "deadline"
    kind = "deadline"

    def __init__(self, policy: Any, *, micros: int, fallback: PolicyBase | None = None) -> None:
        if isinstance(micros, bool) or not isinstance(micros, int) or not 1 <= micros <= MAX_MICROS:
            raise ConfigError(f"WithDeadline micros={micros!r} must be a whole number of microseconds in "
                              f"[1, {MAX_MICROS}]", name="micros", hint="e.g. micros=2_000 for 2 ms")
        if not callable(getattr(policy, "decide", None)):
            raise ConfigError(f"WithDeadline needs a policy with decide(obs), got {type(policy).__name__}",
                              name="policy")
        self.policy = policy
        self.fallback: PolicyBase = fallback if fallback is not None else DeclaredDefault()
        self.micros = micros
        self.name = f"deadline:{getattr(policy, 'name', type(policy).__name__)}"
        self.version = str(getattr(policy, "version", "1"))
        self.misses = 0
        """Decisions the wrapped policy did not make in time (the fallback's, including those while it was busy)."""
        self.decisions = 0
        """Every decision asked of this wrapper."""
        self._worker: _Worker | None = None
        self._pending: _Job | None = None
        self._lock = threading.Lock()

    # -- the deadline ----------------------------------------------------------------------------------------
    def _ensure_worker(self) -> _Worker:
        if self._worker is None:
            self._worker = _Worker(self.name)
        return self._worker

    def _raise_queued_failure(self) -> None:
        w = self._worker
        if w is not None and w.failure is not None:
            err, w.failure = w.failure, None
            raise RuntimeError(f"{self.name}: a queued call of the wrapped policy failed: {err!r}") from err

    def decide(self, obs: Observation) -> Decision:
        """The wrapped policy's decision if it comes in time; else the fallback's, with the miss recorded."""
        with self._lock:
            self._raise_queued_failure()
            self.decisions += 1
            worker = self._ensure_worker()
            if self._pending is not None and not self._pending.done.is_set():
                return self._missed(obs, "still deciding an abandoned decision")
            self._pending = job = worker.submit(lambda: self.policy.decide(obs))
            if not job.done.wait(self.micros / 1e6):
                return self._missed(obs, f"no decision within {self.micros} µs")
            self._pending = None
            if job.error is not None:
                raise job.error
            d: Decision = job.result
            return Decision(d.chosen, d.probabilities, reason=d.reason, scores=d.scores, explored=d.explored,
                            evidence={**d.evidence, "deadline": {"missed": False, "micros": self.micros,
                                                                 "misses": self.misses}})

    def _missed(self, obs: Observation, why: str) -> Decision:
        self.misses += 1
        d = self.fallback.decide(obs)
        who = getattr(self.policy, "name", type(self.policy).__name__)
        reason = (f"deadline missed ({why}; miss {self.misses} of {self.decisions}): {who} abandoned, "
                  f"fallback {d.reason}")
        return Decision(d.chosen, d.probabilities, reason=reason, scores=d.scores, explored=d.explored,
                        evidence={**d.evidence, "deadline": {"missed": True, "micros": self.micros,
                                                             "misses": self.misses}})

    @property
    def miss_rate(self) -> float:
        """Misses per decision so far (0.0 before the first)."""
        return self.misses / self.decisions if self.decisions else 0.0

    def close(self) -> None:
        """Stop the worker once it has finished what it was given (a later call starts a new one)."""
        with self._lock:
            if self._worker is not None:
                self._worker.stop()
                self._worker = None
                self._pending = None

    # -- the rest of the contract ----------------------------------------------------------------------------
    @staticmethod
    def _missed_decision(d: Decision) -> bool:
        info = d.evidence.get("deadline")
        return bool(info.get("missed")) if isinstance(info, dict) else False

    def bind(self, spec: GraphSpec) -> None:
        """Both the wrapped policy and the fallback must fit the graph."""
        if implements(self.policy, "bind"):
            self.policy.bind(spec)
        self.fallback.bind(spec)

    def feedback(self, fb: Feedback) -> None:
        """The fallback learns from its own decisions; the wrapped policy's are queued on its worker."""
        if self._missed_decision(fb.decision):
            self.fallback.feedback(fb)
            return
        if implements(self.policy, "feedback"):
            self._raise_queued_failure()
            self._queue(lambda: self.policy.feedback(fb))

    def on_task_end(self, outcome: TaskOutcome) -> None:
        """Queued on the worker for the wrapped policy; the fallback is told too."""
        self.fallback.on_task_end(outcome)
        if implements(self.policy, "on_task_end"):
            self._raise_queued_failure()
            self._queue(lambda: self.policy.on_task_end(outcome))

    def accept(self, obs: Observation, decision: Decision, reply: Any) -> bool:
        """Whoever decided judges the reply (a wrapped cascade keeps escalating)."""
        if self._missed_decision(decision):
            return self.fallback.accept(obs, decision, reply)
        if implements(self.policy, "accept"):
            return bool(self.policy.accept(obs, decision, reply))
        return True

    def _queue(self, fn: Callable[[], None]) -> None:
        worker = self._ensure_worker()

        def run() -> None:
            try:
                fn()
            except Exception as e:
                if worker.failure is None:
                    worker.failure = e

        worker.submit(run)

    # -- saving ----------------------------------------------------------------------------------------------
    def to_card(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """The deadline, the miss count, and both policies' cards."""
        arrays: dict[str, np.ndarray] = {}
        return {"micros": self.micros, "misses": self.misses, "decisions": self.decisions,
                "policy": nested_card(self.policy, "policy", arrays),
                "fallback": nested_card(self.fallback, "fallback", arrays)}, arrays

    @classmethod
    def from_card(cls, card: Card, arrays: Arrays) -> WithDeadline:
        """Restore both policies, the deadline and the counts."""
        p = cls(load_nested(card, "policy", arrays), micros=card.whole("micros", lo=1, hi=MAX_MICROS),
                fallback=load_nested(card, "fallback", arrays, None))
        p.misses = card.whole("misses", 0, lo=0, hi=2**62)
        p.decisions = card.whole("decisions", 0, lo=0, hi=2**62)
        return p


__all__ = ["MAX_MICROS", "WithDeadline"]
