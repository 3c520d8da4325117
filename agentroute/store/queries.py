"""Reading the trace store: recent tasks, one task's full tree, decision records for training, and statistics.

Everything here is read-only and opens the store with ``create=False``: pointing ``agentroute traces`` at the
wrong database never creates tables in it. Errors a user can fix raise
:class:`~agentroute.store.engine.StoreError`.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Engine, func, or_, select
from sqlmodel import Session, col

from agentroute.store.engine import StoreError, ensure_schema, get_engine, sqlite_path
from agentroute.store.models import CallRow, DecisionRow, LedgerRow, StepRow, TaskRow


def open_store(url: str | None = None) -> Engine:
    """An engine on an existing trace store; :class:`StoreError` when there is none, or it cannot be used."""
    path = sqlite_path(url)
    if path is not None and not path.exists():
        raise StoreError(
            f"no trace database at {path}",
            name="--db",
            hint="run a task with tracing on first, or pass --db / set AGENTROUTE_DATABASE_URL",
        )
    engine = get_engine(url)
    ensure_schema(engine, create=False)
    return engine


def dec(value: str | None) -> Decimal | None:
    """A stored money string as ``Decimal`` (``None`` stays ``None``)."""
    if value is None:
        return None
    try:
        return Decimal(value)
    except InvalidOperation:
        return None


def policy_filter(column: Any, policy: str) -> Any:
    """``policy`` itself or a policy of that family: ``learned`` matches ``learned`` and ``learned:maskable_ppo``."""
    family = policy.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + ":%"
    return or_(col(column) == policy, col(column).like(family, escape="\\"))


def list_tasks(
    engine: Engine,
    *,
    limit: int = 20,
    graph: str | None = None,
    policy: str | None = None,
    status: str | None = None,
) -> list[TaskRow]:
    """The most recent tasks first."""
    stmt = select(TaskRow).order_by(col(TaskRow.started_ns).desc()).limit(limit)
    if graph:
        stmt = stmt.where(col(TaskRow.graph) == graph)
    if policy:
        stmt = stmt.where(policy_filter(TaskRow.policy, policy))
    if status:
        stmt = stmt.where(col(TaskRow.status) == status)
    with Session(engine) as s:
        return list(s.scalars(stmt))


@dataclass
class TaskTree:
    """One task with everything recorded under it, in time order."""

    task: TaskRow
    steps: list[StepRow] = field(default_factory=list)
    decisions: list[DecisionRow] = field(default_factory=list)
    calls: list[CallRow] = field(default_factory=list)
    ledger: list[LedgerRow] = field(default_factory=list)

    def decisions_at(self, step: int, *, agent_choice: bool) -> list[DecisionRow]:
        """Decisions inside step ``step`` (``agent_choice=False``) or agent choices at ``step``."""
        return [d for d in self.decisions if d.step == step and (d.kind == "agent") == agent_choice]

    def calls_at(self, step: int) -> list[CallRow]:
        """Model-call attempts made inside step ``step``."""
        return [c for c in self.calls if c.step == step]


def find_task(engine: Engine, task_id: str) -> TaskRow:
    """The task ``task_id`` (a unique prefix is enough); :class:`StoreError` when unknown or ambiguous."""
    with Session(engine) as s:
        row = s.get(TaskRow, task_id)
        if row is not None:
            return row
        like = task_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        stmt = select(TaskRow).where(col(TaskRow.task_id).like(like, escape="\\")).limit(2)
        matches = list(s.scalars(stmt))
    where = engine.url.render_as_string(hide_password=True)
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise StoreError(f"task id {task_id!r} is ambiguous in {where}", name=task_id, hint="give more of it")
    raise StoreError(f"no task {task_id!r} in {where}", name=task_id, hint="see `agentroute traces list`")


def task_tree(engine: Engine, task_id: str) -> TaskTree:
    """A task and all its rows."""
    task = find_task(engine, task_id)
    tid = task.task_id
    with Session(engine) as s:

        def rows(model: Any, order: Any) -> list[Any]:
            return list(s.scalars(select(model).where(model.task_id == tid).order_by(order)))

        return TaskTree(
            task=task,
            steps=rows(StepRow, col(StepRow.step)),
            decisions=rows(DecisionRow, col(DecisionRow.idx)),
            calls=rows(CallRow, col(CallRow.started_ns)),
            ledger=rows(LedgerRow, col(LedgerRow.at_ns)),
        )


def count_decisions(engine: Engine, *, policy: str | None = None, graph: str | None = None) -> int:
    """How many decision rows :func:`decision_records` would yield."""
    stmt = select(func.count()).select_from(DecisionRow)
    if policy or graph:
        stmt = stmt.join(TaskRow, col(TaskRow.task_id) == col(DecisionRow.task_id))
        if policy:
            stmt = stmt.where(policy_filter(TaskRow.policy, policy))
        if graph:
            stmt = stmt.where(col(TaskRow.graph) == graph)
    with engine.connect() as conn:
        return int(conn.execute(stmt).scalar_one())


def decision_records(
    engine: Engine, *, policy: str | None = None, graph: str | None = None, batch: int = 1000
) -> Iterator[dict[str, Any]]:
    """One plain row per decision, with its task's features and outcome: the input of off-policy evaluation.

    Fields: task and decision ids, point and position, ``features`` (numeric task features), ``text`` (the
    task input, only when content was captured), ``candidates`` / ``probabilities`` / ``scores`` / ``masked``,
    ``chosen``, ``propensity``, ``explored``, ``reason``, policy name/version/weights hash, ``cost_usd``
    (exact string) and ``tokens`` of the decision, its ``quality`` when known, and the task outcome
    (``task_status``, ``task_quality``, ``task_spent_usd``, ``truncated``, ``task_reason``). Budget snapshots
    come as mappings.
    """
    stmt = (
        select(DecisionRow, TaskRow)
        .join(TaskRow, col(TaskRow.task_id) == col(DecisionRow.task_id))
        .order_by(col(TaskRow.started_ns), col(DecisionRow.task_id), col(DecisionRow.idx))
        .execution_options(yield_per=batch)
    )
    if policy:
        stmt = stmt.where(policy_filter(TaskRow.policy, policy))
    if graph:
        stmt = stmt.where(col(TaskRow.graph) == graph)
    with Session(engine) as s:
        for d, t in s.execute(stmt):
            yield {
                "task_id": d.task_id,
                "decision": d.idx,
                "graph": t.graph,
                "kind": d.kind,
                "point": d.point,
                "node": d.node,
                "step": d.step,
                "features": t.features or {},
                "text": t.input,
                "candidates": list(d.candidates or []),
                "probabilities": list(d.probabilities or []),
                "scores": d.scores or {},
                "masked": d.masked or [],
                "chosen": d.chosen,
                "propensity": d.propensity,
                "explored": d.explored,
                "reason": d.reason,
                "policy": d.policy,
                "policy_version": d.policy_version,
                "weights_hash": d.weights_hash,
                "cost_usd": d.cost_usd,
                "tokens": d.tokens,
                "quality": d.quality,
                "budget_before": d.budget_before,
                "reservation": d.reservation,
                "budget_after": d.budget_after,
                "task_status": t.status,
                "task_quality": t.quality,
                "task_spent_usd": t.spent_usd,
                "truncated": t.truncated,
                "task_reason": t.reason,
                "at_ns": d.at_ns,
            }


def stats(engine: Engine, *, by: str = "policy") -> list[dict[str, Any]]:
    """Per policy (or graph): tasks, outcomes, spend, quality, budget-exhaustion rate and model-tier mix."""
    if by not in ("policy", "graph"):
        raise StoreError(f"cannot group by {by!r}", name="--by", hint="use policy or graph")
    groups: dict[str, dict[str, Any]] = defaultdict(lambda: {
        "tasks": 0, "completed": 0, "truncated": 0, "error": 0, "running": 0, "exhausted": 0,
        "spend": Decimal(0), "spend_unknown": 0, "quality": [], "tiers": Counter(),
    })  # fmt: skip
    key_of: dict[str, str] = {}
    with Session(engine) as s:
        for t in s.scalars(select(TaskRow)):
            key = t.policy if by == "policy" else t.graph
            key_of[t.task_id] = key
            g = groups[key]
            g["tasks"] += 1
            g[t.status if t.status in ("completed", "truncated", "error", "running") else "error"] += 1
            if t.truncated and (t.reason or "").startswith("budget"):
                g["exhausted"] += 1
            spent = dec(t.spent_usd)
            if spent is None:
                g["spend_unknown"] += int(t.status != "running")
            else:
                g["spend"] += spent
            if t.quality is not None:
                g["quality"].append(t.quality)
        model_choices = s.execute(
            select(col(DecisionRow.task_id), col(DecisionRow.chosen)).where(col(DecisionRow.kind) == "model")
        )
        for task_id, chosen in model_choices:
            if task_id in key_of:
                groups[key_of[task_id]]["tiers"][chosen] += 1
    out = []
    for key in sorted(groups):
        g = groups[key]
        finished = g["tasks"] - g["running"]
        priced = finished - g["spend_unknown"]
        tiers: Counter[str] = g["tiers"]
        total_tiers = sum(tiers.values())
        out.append({
            by: key,
            "tasks": g["tasks"],
            "completed": g["completed"],
            "truncated": g["truncated"],
            "error": g["error"],
            "running": g["running"],
            "spend_usd": str(g["spend"]),
            "mean_spend_usd": str(g["spend"] / priced) if priced > 0 else None,
            "mean_quality": sum(g["quality"]) / len(g["quality"]) if g["quality"] else None,
            "exhaustion_rate": g["exhausted"] / finished if finished else None,
            "tier_mix": {k: v / total_tiers for k, v in sorted(tiers.items())} if total_tiers else {},
        })  # fmt: skip
    return out


__all__ = [
    "TaskTree",
    "count_decisions",
    "dec",
    "decision_records",
    "find_task",
    "list_tasks",
    "open_store",
    "stats",
    "task_tree",
]
