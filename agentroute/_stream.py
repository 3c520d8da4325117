"""Step and decision events of a running task: what :meth:`App.stream` and :meth:`App.astream` yield.

A task streams the records the runtime already makes (the same ones its hooks get), as :class:`StreamEvent`s in the
order they happen: ``task_start``, then per step ``step_start``, its model ``call``s and ``decision``s, ``step_end``;
an agent choice's ``decision`` comes when its step settled (a decision is recorded with its outcome); the last event
is ``end``, carrying the :class:`~agentroute.records.RunResult`. The events come from the task's own hook, so the
app's hooks (tracing, metrics) are untouched. This module never runs a task.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from agentroute.errors import RunError
from agentroute.records import CallRecord, RunHooks, RunResult, StepEnd, StepStart, TaskStart
from agentroute.routing import DecisionRecord

EventKind = Literal["task_start", "step_start", "call", "decision", "step_end", "end"]


def _usd(v: Decimal | None) -> str | None:
    return None if v is None else str(v)


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One event of a streamed task: its ``kind``, the task, and the record it carries."""

    kind: EventKind
    task_id: str
    record: Any
    """A :class:`TaskStart`, :class:`StepStart`, :class:`CallRecord`, :class:`DecisionRecord`, :class:`StepEnd`,
    or (``end``) the :class:`RunResult`."""

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON values (what the server's SSE stream sends): the record's essentials, never message content."""
        r = self.record
        out: dict[str, Any] = {"event": self.kind, "task_id": self.task_id}
        if isinstance(r, TaskStart):
            out.update(graph=r.graph, policy=r.policy, limits=r.limits.as_dict())
        elif isinstance(r, StepStart):
            out.update(step=r.step, agent=r.agent)
        elif isinstance(r, CallRecord):
            out.update(step=r.step, agent=r.agent, tier=r.tier, model=r.model, attempt=r.attempt,
                       input_tokens=r.input_tokens, output_tokens=r.output_tokens, cost_usd=_usd(r.cost_usd),
                       error=r.error_type)
        elif isinstance(r, DecisionRecord):
            out.update(index=r.index, kind=r.kind, point=r.point, step=r.step, chosen=r.chosen, reason=r.reason,
                       candidates=[c.id for c in r.candidates], masked=[{"id": m.id, "reason": m.reason}
                                                                        for m in r.masked],
                       cost_usd=_usd(r.cost_usd), tokens=r.tokens)
        elif isinstance(r, StepEnd):
            out.update(step=r.step, agent=r.agent, cost_usd=_usd(r.cost_usd), tokens=r.tokens, error=r.error)
        elif isinstance(r, RunResult):
            out.update(reason=r.reason, truncated=r.truncated, steps=r.steps, spent=r.spent.as_dict(),
                       error=None if r.error is None else type(r.error).__name__)
        return out


class Emitter(RunHooks):
    """The task's own hook: turns its records into events for ``put`` (called on whichever thread runs the step)."""

    def __init__(self, put: Callable[[StreamEvent], None]) -> None:
        self.put = put

    def on_task_start(self, task: TaskStart) -> None:
        self.put(StreamEvent("task_start", task.task_id, task))

    def on_step_start(self, step: StepStart) -> None:
        self.put(StreamEvent("step_start", step.task_id, step))

    def on_model_call(self, call: CallRecord) -> None:
        self.put(StreamEvent("call", call.task_id, call))

    def on_decision(self, record: DecisionRecord) -> None:
        self.put(StreamEvent("decision", record.task_id, record))

    def on_step_end(self, step: StepEnd) -> None:
        self.put(StreamEvent("step_end", step.task_id, step))




def _ended(run: Callable[[], RunResult]) -> RunResult:
    try:
        return run()
    except RunError as e:  # a failed task still ends its stream with its result
        if not isinstance(e.result, RunResult):
            raise
        return e.result


def stream(start: Callable[[RunHooks], RunResult]) -> Iterator[StreamEvent]:
    """Run ``start(hook)`` on a thread of its own and yield its events, then ``end``."""
    q: queue.Queue[StreamEvent | BaseException] = queue.Queue()

    def work() -> None:
        try:
            res = _ended(lambda: start(Emitter(q.put)))
            q.put(StreamEvent("end", res.task_id, res))
        except BaseException as e:  # misuse (a ConfigError): raised in the caller's thread
            q.put(e)

    threading.Thread(target=work, name="agentroute-stream", daemon=True).start()
    while True:
        item = q.get()
        if isinstance(item, BaseException):
            raise item
        yield item
        if item.kind == "end":
            return


async def astream(start: Callable[[RunHooks], Awaitable[RunResult]]) -> AsyncIterator[StreamEvent]:
    """Run ``start(hook)`` as a task on this loop and yield its events (from any thread), then ``end``."""
    loop = asyncio.get_running_loop()
    q: asyncio.Queue[StreamEvent] = asyncio.Queue()

    def put(ev: StreamEvent) -> None:
        try:
            if asyncio.get_running_loop() is loop:
                q.put_nowait(ev)
                return
        except RuntimeError:
            pass
        loop.call_soon_threadsafe(q.put_nowait, ev)

    async def work() -> RunResult:
        try:
            return await start(Emitter(put))
        except RunError as e:
            if not isinstance(e.result, RunResult):
                raise
            return e.result

    task = asyncio.ensure_future(work())
    try:
        while True:
            getter = asyncio.ensure_future(q.get())
            await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
            if getter.done():
                yield getter.result()
                continue
            getter.cancel()
            while not q.empty():  # events put before the task finished
                yield q.get_nowait()
            res = task.result()  # raises the task's misuse error, if any
            yield StreamEvent("end", res.task_id, res)
            return
    finally:
        if not task.done():  # the consumer stopped early: the task is cancelled, and frees what it held
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


__all__ = ["Emitter", "EventKind", "StreamEvent", "astream", "stream"]
