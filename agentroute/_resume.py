"""Resuming a checkpointed task after a crash: what :meth:`App.resume` and :meth:`App.unfinished` read.

With a LangGraph checkpointer, the state saved after every finished step carries the runtime's own key
(:data:`~agentroute._loop.META`): the task's spend on its own ledger, its step and decision counts, its policy history
and its limits. Resuming reads the thread's latest checkpoint, rebuilds the task's ledger with that spend, numbers its
next step and decision after the saved ones (so the trace store's rows, keyed by task and index, are never written
twice), and lets LangGraph run the step that did not finish. Shared parents (a tenant's Redis or SQL ledger) already
hold what the finished steps committed; the holds of the interrupted step run out with their lease and are reclaimed.

What is not carried: the model calls of the interrupted step (they run again; what they spent stays on shared
ledgers) and the decision that chose it (its step is held again as by a fixed edge). This module never runs a task.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agentroute._loop import META, visible
from agentroute.budget import Budget
from agentroute.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Saved:
    """A task's latest checkpoint: its visible state, what it carried, and the steps still to run."""

    task_id: str
    state: dict[str, Any]
    carried: Mapping[str, Any]
    next: tuple[str, ...]

    @property
    def finished(self) -> bool:
        """True when nothing is left to run."""
        return not self.next

    @property
    def labels(self) -> dict[str, str]:
        """The labels the task was started with."""
        return dict(self.carried.get("labels") or {})

    def limits(self) -> Budget | None:
        """The task's own limits, as it was started with them (``None`` before its first step finished)."""
        lim = self.carried.get("limits")
        if not lim:
            return None
        return Budget(usd=lim.get("usd"), tokens=lim.get("tokens"), steps=lim.get("steps"),
                      seconds=lim.get("seconds"))


def checkpointer_of(graph: Any) -> Any:
    """The compiled LangGraph's checkpointer, or a :class:`ConfigError` saying how to give one."""
    saver = getattr(graph, "checkpointer", None)
    if saver is None or saver is False or saver is True:
        raise ConfigError("resuming needs a checkpointer, and this app was compiled without one",
                          name="checkpointer", hint="compile(..., checkpointer='sqlite:///runs.db') or "
                          "checkpointer=agentroute.store.SqlCheckpointer(url)")
    return saver


def read(graph: Any, task_id: str) -> Saved | None:
    """The latest checkpoint of ``task_id`` (``None``: the checkpointer holds none)."""
    checkpointer_of(graph)
    snap = graph.get_state({"configurable": {"thread_id": task_id}})
    if not snap.values and not snap.next:
        return None
    values = dict(snap.values) if isinstance(snap.values, Mapping) else {}
    return Saved(task_id, visible(values), dict(values.get(META) or {}), tuple(snap.next))


async def aread(graph: Any, task_id: str) -> Saved | None:
    """:func:`read` for event loops."""
    checkpointer_of(graph)
    snap = await graph.aget_state({"configurable": {"thread_id": task_id}})
    if not snap.values and not snap.next:
        return None
    values = dict(snap.values) if isinstance(snap.values, Mapping) else {}
    return Saved(task_id, visible(values), dict(values.get(META) or {}), tuple(snap.next))


def threads(saver: Any) -> list[str]:
    """Every task id the checkpointer holds, newest checkpoint first."""
    own = getattr(saver, "threads", None)
    if callable(own):
        return list(own())
    seen: dict[str, None] = {}
    for t in saver.list(None):
        seen.setdefault(str(t.config["configurable"]["thread_id"]), None)
    return list(seen)


def unfinished(graph: Any, labels: Mapping[str, str] | None = None) -> dict[str, dict[str, str]]:
    """Task id → labels of every checkpointed task with steps left whose labels include ``labels``."""
    out: dict[str, dict[str, str]] = {}
    for tid in threads(checkpointer_of(graph)):
        saved = read(graph, tid)
        if saved is None or saved.finished:
            continue
        if labels and any(saved.labels.get(k) != v for k, v in labels.items()):
            continue
        out[tid] = saved.labels
    return out


def must_resume(saved: Saved | None, task_id: str) -> Saved:
    """``saved``, or the :class:`ConfigError` that says why ``task_id`` cannot be resumed."""
    if saved is None:
        raise ConfigError(f"task {task_id!r} has no checkpoint to resume", name=task_id,
                          hint="resume a task id that ran with this checkpointer (app.unfinished() lists them)")
    if saved.finished:
        raise ConfigError(f"task {task_id!r} already finished; nothing to resume", name=task_id)
    return saved


def refuse_restart(saved: Saved | None, task_id: str) -> None:
    """A new run under the id of an unfinished task would start it over with a fresh budget: refuse it."""
    if saved is not None and not saved.finished:
        raise ConfigError(f"task {task_id!r} is unfinished in the checkpointer; running it again would start over "
                          "with a fresh budget", name=task_id,
                          hint=f"app.resume({task_id!r}) continues it from its last finished step")


def check_labels(labels: Mapping[str, Any] | None) -> dict[str, str]:
    """Labels as plain strings (they are saved with every checkpoint)."""
    if labels is None:
        return {}
    if not isinstance(labels, Mapping) or not all(isinstance(k, str) and isinstance(v, str)
                                                  for k, v in labels.items()):
        raise ConfigError("labels must be a dict of str to str", name="labels", hint='e.g. {"owner": "worker-1"}')
    return dict(labels)


__all__ = ["Saved", "aread", "check_labels", "checkpointer_of", "must_resume", "read", "refuse_restart",
           "threads", "unfinished"]
