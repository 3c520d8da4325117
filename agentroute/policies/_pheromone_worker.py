"""Quality-gated, asynchronous pheromone updates: a bounded buffer and the background worker that drains it.

Serving only ever calls :meth:`UpdateWorker.submit`, a non-blocking put: when the buffer is full the outcome is
*dropped and counted*, never waited for. A daemon thread drains the buffer in batches, asks the gate about each
outcome (a threshold on the quality signal, or any callable judge, run here and never on the serving path), turns
it into edge updates (deposit for a pass, evaporation only for a fail, nothing for an outcome with no quality
signal) and applies the batch to the table in one go. Every outcome handled becomes an event: counted, kept in a
bounded recent log, passed to hooks (tracing), and stored by a durable table.

It must never raise into the caller of ``submit`` and never block it.
"""

from __future__ import annotations

import atexit
import logging
import math
import queue
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agentroute.errors import ConfigError
from agentroute.policies._pheromone_store import EdgeUpdate, PheromoneTable, edge_updates

log = logging.getLogger("agentroute.pheromone")


@dataclass(frozen=True, slots=True)
class PheromoneUpdate:
    """One outcome waiting to be learned: where the colony went, for which task types, and how it went.

    ``prev`` is the transition this decision followed (``"<point>=<choice>"`` of the task's previous decision,
    ``""`` for the first). ``cost_usd`` is what the step (or the whole path, for ``kind="path"``) cost.
    """

    task_id: str
    point: str
    option: str
    weights: Mapping[str, float]
    quality: float | None
    cost_usd: float | None = None
    prev: str = ""
    cost_weight: float = 0.0
    cost_scale: float = 1.0
    ok: bool = True
    kind: str = "step"
    created: float = field(default_factory=time.time)


Gate = Callable[[PheromoneUpdate], bool]
"""A judge: ``True`` lets the outcome deposit pheromone, ``False`` leaves the path to evaporation only."""

Signal = Callable[[PheromoneUpdate], float]
"""The deposit signal of an outcome that passed the gate, in [0, 1]."""


class QualityGate:
    """The default judge: pass when the step succeeded and its quality is at least ``threshold``."""

    def __init__(self, threshold: float = 0.0) -> None:
        if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0.0 <= threshold <= 1.0:
            raise ConfigError(f"gate threshold must be a number in [0, 1], got {threshold!r}", name="gate")
        self.threshold = float(threshold)

    def __call__(self, u: PheromoneUpdate) -> bool:
        """Whether ``u`` may deposit."""
        return u.ok and u.quality is not None and u.quality >= self.threshold

    def __repr__(self) -> str:
        return f"QualityGate({self.threshold})"


def make_gate(gate: float | Gate | None) -> Gate:
    """A gate from a threshold, a callable judge, or ``None`` (threshold 0: every success with a quality)."""
    if gate is None:
        return QualityGate(0.0)
    if callable(gate):
        return gate
    return QualityGate(gate)


class UpdateWorker:
    """Bounded buffer + background thread applying gated updates to a :class:`PheromoneTable`."""

    def __init__(
        self,
        table: PheromoneTable,
        signal: Signal,
        *,
        gate: float | Gate | None = None,
        buffer_size: int = 10_000,
        batch_size: int = 256,
        refresh_s: float = 2.0,
        recent: int = 1000,
    ) -> None:
        if isinstance(buffer_size, bool) or not isinstance(buffer_size, int) or buffer_size < 1:
            raise ConfigError(f"buffer_size must be a whole number >= 1, got {buffer_size!r}", name="buffer_size")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size must be a whole number >= 1, got {batch_size!r}", name="batch_size")
        if not isinstance(refresh_s, int | float) or not refresh_s > 0:
            raise ConfigError(f"refresh_s must be a number of seconds > 0, got {refresh_s!r}", name="refresh_s")
        self.table = table
        self.signal = signal
        self.gate = make_gate(gate)
        self.buffer_size = buffer_size
        self.batch_size = batch_size
        self.refresh_s = float(refresh_s)
        self.hooks: list[Callable[[Mapping[str, Any]], None]] = []
        self.recent: deque[dict[str, Any]] = deque(maxlen=recent)
        self._q: queue.Queue[PheromoneUpdate] = queue.Queue(maxsize=buffer_size)
        self._cond = threading.Condition()
        self._pending = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._last_refresh = time.monotonic()
        self.counts = {"submitted": 0, "dropped": 0, "applied": 0, "gated": 0, "discarded": 0, "errors": 0,
                       "batches": 0, "edge_updates": 0}
        self.last_error: str | None = None

    # ------------------------------------------------------------------ serving side

    def submit(self, u: PheromoneUpdate) -> bool:
        """Queue ``u`` without blocking; ``False`` (and a count) when the buffer is full or the worker closed."""
        with self._cond:  # one short lock: exact counters even with many serving threads
            if self._stop.is_set():
                self.counts["dropped"] += 1
                return False
            try:
                self._q.put_nowait(u)
            except queue.Full:
                self.counts["dropped"] += 1
                return False
            self._pending += 1
            self.counts["submitted"] += 1
        if self._thread is None:
            self._start()
        return True

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is not None:
                return
            t = threading.Thread(target=self._run, name="agentroute-pheromone", daemon=True)
            self._thread = t
            t.start()
            ref = weakref.ref(self)
            atexit.register(_close_at_exit, ref)

    # ------------------------------------------------------------------ worker side

    def _run(self) -> None:
        while not self._stop.is_set() or not self._q.empty():
            try:
                first = self._q.get(timeout=0.05)
            except queue.Empty:
                self._maybe_refresh()
                continue
            batch = [first]
            while len(batch) < self.batch_size:
                try:
                    batch.append(self._q.get_nowait())
                except queue.Empty:
                    break
            try:
                self.process(batch)
            finally:
                with self._cond:
                    self._pending -= len(batch)
                    self._cond.notify_all()

    def _maybe_refresh(self) -> None:
        if not self.table.durable or time.monotonic() - self._last_refresh < self.refresh_s:
            return
        self._last_refresh = time.monotonic()
        try:
            self.table.refresh()
        except Exception as e:  # a flaky database must not kill the worker
            self.counts["errors"] += 1
            self.last_error = f"refresh: {e!r}"
            log.warning("pheromone refresh failed: %r", e)

    def process(self, batch: Sequence[PheromoneUpdate]) -> None:
        """Gate, convert and apply a batch now (the worker thread calls this; so does synchronous mode)."""
        ups: list[EdgeUpdate] = []
        events: list[dict[str, Any]] = []
        for u in batch:
            outcome, reason, d = self._judge(u)
            if outcome != "discarded":
                ups.extend(edge_updates(u.weights, u.point, u.prev, u.option, d))
            events.append(
                {"ts": time.time(), "task_id": u.task_id, "point": u.point, "option": u.option, "prev": u.prev,
                 "outcome": outcome, "reason": reason, "quality": u.quality, "cost_usd": u.cost_usd,
                 "signal": d, "weights": dict(u.weights), "kind": u.kind}
            )
        try:
            self.table.apply(ups, events=events)
        except Exception as e:
            self.counts["errors"] += 1
            self.last_error = f"apply: {e!r}"
            log.warning("pheromone update batch of %d failed: %r", len(batch), e)
            return
        self.counts["batches"] += 1
        self.counts["edge_updates"] += len(ups)
        self._maybe_refresh()  # a durable table: see what the other processes learned (every refresh_s)
        for ev in events:
            self.counts[ev["outcome"]] += 1
            self.recent.append(ev)
            for h in list(self.hooks):
                try:
                    h(ev)
                except Exception as e:  # a hook must never break learning
                    log.warning("pheromone event hook %r failed: %r", h, e)

    def _judge(self, u: PheromoneUpdate) -> tuple[str, str, float]:
        if u.ok and u.quality is None:
            return "discarded", "no quality signal", 0.0
        try:
            passed = bool(self.gate(u))
        except Exception as e:
            self.counts["errors"] += 1
            self.last_error = f"gate: {e!r}"
            return "discarded", f"gate raised {type(e).__name__}", 0.0
        if not passed:
            return "gated", f"failed gate {self.gate!r}", 0.0
        d = float(self.signal(u))
        if math.isnan(d):
            return "discarded", "signal is NaN", 0.0
        return "applied", "passed gate", min(1.0, max(0.0, d))

    # ------------------------------------------------------------------ control

    @property
    def pending(self) -> int:
        """Outcomes submitted and not yet applied."""
        return self._pending

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Wait until every submitted outcome is applied; ``False`` if ``timeout`` passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._pending > 0:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(timeout=left if left is not None else 0.5)
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Apply what is buffered (up to ``timeout``), then stop the thread. Later submits are dropped."""
        self.flush(timeout)
        self._stop.set()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout)

    def stats(self) -> dict[str, Any]:
        """Counters (submitted, dropped, applied, gated, discarded, errors, batches), buffer fill and last error."""
        return {**self.counts, "pending": self._pending, "buffer_size": self.buffer_size,
                "last_error": self.last_error}


def _close_at_exit(ref: weakref.ReferenceType[UpdateWorker]) -> None:
    w = ref()
    if w is not None:
        w.close(timeout=2.0)


__all__ = ["Gate", "PheromoneUpdate", "QualityGate", "Signal", "UpdateWorker", "make_gate"]
