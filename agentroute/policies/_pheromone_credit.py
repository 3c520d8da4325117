"""Credit of a pheromone colony: the paths of tasks in flight and the outcomes queued for the worker.

A mixin of :class:`~agentroute.policies.pheromone.PheromonePolicy`: ``feedback`` credits a decision at once when it
carries a quality, ``end_task``/``on_task_end`` credit the rest of a task's path with its outcome, and no decision is
credited twice. Nothing here moves the table: outcomes go to the update worker (or are applied at once when the
colony is synchronous). It also keeps the in-flight counts (the η ``load`` term) and, when the colony observes
latency (``observe_latency=True``), the measured latencies.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from typing import Any

from agentroute.policies._pheromone_math import Path, Step
from agentroute.policies._pheromone_worker import PheromoneUpdate, UpdateWorker
from agentroute.routing import Feedback, Observation, TaskOutcome

MAX_TASKS = 50_000
"""The most tasks whose paths (or cached task-type mixtures) a colony keeps."""


class ColonyCredit:
    """The credit half of the colony (see the module docstring)."""

    _paths: dict[str, Path]
    _inflight: dict[str, int]
    _latency: dict[str, float]
    _lat_version: int
    observe_latency: bool
    asynchronous: bool
    worker: UpdateWorker

    def task_weights(self, obs: Observation) -> tuple[dict[str, float], str]:
        raise NotImplementedError

    def _lam_scale(self, extra: Mapping[str, Any]) -> tuple[float, float]:
        raise NotImplementedError

    def _remember(self, tid: str, point: str, cid: str, prev: str, w: dict[str, float], lam: float,
                  sc: float) -> None:
        paths = self._paths
        path = paths.get(tid)
        if path is None:
            if len(paths) >= MAX_TASKS:  # tasks whose end never came: forget the oldest
                self._release(paths.pop(next(iter(paths))).steps)
            path = paths[tid] = Path([])
        path.steps.append(Step(point, prev, cid, w, lam, sc))
        inflight = self._inflight
        inflight[cid] = inflight.get(cid, 0) + 1

    def _release(self, steps: Iterable[Step]) -> None:
        for s in steps:
            if not s.fed:
                s.fed = True
                n = self._inflight.get(s.option, 0) - 1
                if n > 0:
                    self._inflight[s.option] = n
                else:
                    self._inflight.pop(s.option, None)

    # ------------------------------------------------------------------ learning

    def feedback(self, fb: Feedback) -> None:
        """Queue the decision's outcome (never blocks). Without a quality it waits for :meth:`end_task`."""
        obs, chosen = fb.observation, fb.decision.chosen
        path = self._paths.get(obs.task.id)
        steps = path.steps if path is not None else []
        step = next((s for s in reversed(steps) if s.point == obs.point and s.option == chosen and not s.fed), None)
        if step is None:  # a decision this process did not make (e.g. replayed records): learn it all the same
            w, _ = self.task_weights(obs)
            prev = f"{obs.history[-1][0]}={obs.history[-1][1]}" if obs.history else ""
            step = Step(obs.point, prev, chosen, w, *self._lam_scale(obs.extra or {}))
        else:
            self._release([step])
        cost = fb.cost_usd
        if cost is None:
            cand = obs.candidate(chosen)
            cost = cand.cost_estimate if cand is not None else None
        step.cost = None if cost is None else float(cost)
        if path is not None and step.cost is not None:
            path.cost += step.cost
        if self.observe_latency and fb.latency and fb.latency > 0:  # opt-in: a measured latency is not repeatable
            old = self._latency.get(chosen)
            new = fb.latency if old is None else 0.8 * old + 0.2 * fb.latency
            if old is None or abs(new - old) > 0.02 * old:  # η-latency is refreshed when a latency moved > 2%
                self._latency[chosen] = new
                self._lat_version += 1
        quality = fb.quality if fb.ok else 0.0
        if quality is None:
            return
        step.credited = True
        if path is not None and step in steps:
            steps.remove(step)  # credited: the path keeps only what end_task may still credit
        self._submit(obs.task.id, step, quality, step.cost, ok=fb.ok, kind="step")

    def end_task(self, task_id: str, quality: float, cost: float | None = None, *, ok: bool = True) -> int:
        """Deposit a task-level outcome along every decision of the task not yet credited; return how many.

        ``cost`` is the task's total USD (default: the sum of its decisions' costs).
        """
        path = self._paths.pop(task_id, None)
        if path is None:
            return 0
        self._release(path.steps)
        total = path.cost if cost is None else float(cost)
        n = 0
        for s in path.steps:
            if not s.credited:
                s.credited = True
                self._submit(task_id, s, float(quality), total, ok=ok, kind="path")
                n += 1
        return n

    def on_task_end(self, outcome: TaskOutcome) -> None:
        """Credit the task's path with its outcome (the runtime calls this once per task).

        A task without a quality only releases its path; a task that raised counts as a failure (its path
        evaporates, nothing is deposited).
        """
        cost = None if outcome.cost_usd is None else float(outcome.cost_usd)
        if not outcome.ok:
            self.end_task(outcome.task_id, 0.0, cost, ok=False)
        elif outcome.quality is not None:
            self.end_task(outcome.task_id, float(outcome.quality), cost)
        else:
            self.forget_task(outcome.task_id)

    def task_hook(self) -> Any:
        """Deprecated: a run hook forwarding each finished task to :meth:`on_task_end`.

        The runtime now calls ``policy.on_task_end`` itself; this alias stays for one release.
        """
        from agentroute.policies._pheromone_card import TaskEndHook

        warnings.warn("PheromonePolicy.task_hook() is deprecated: the runtime calls policy.on_task_end itself",
                      DeprecationWarning, stacklevel=2)
        return TaskEndHook(self)

    def forget_task(self, task_id: str) -> None:
        """Drop a task's pending path without learning from it (its outcome will never be known)."""
        path = self._paths.pop(task_id, None)
        if path is not None:
            self._release(path.steps)

    def _submit(self, task_id: str, s: Step, quality: float, cost: float | None, *, ok: bool, kind: str) -> None:
        u = PheromoneUpdate(task_id, s.point, s.option, s.weights, quality, cost, s.prev, s.cost_weight,
                            s.cost_scale, ok, kind)
        if self.asynchronous:
            self.worker.submit(u)
        else:
            self.worker.process([u])


__all__ = ["MAX_TASKS", "ColonyCredit"]
