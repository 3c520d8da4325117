"""Reading the trace store: recent tasks, one task's full tree, decision records, and statistics.

Everything here is read-only and opens the store with ``create=False``: pointing ``agentroute traces`` at the
wrong database never creates tables in it. Errors a user can fix raise
:class:`~agentroute.store.engine.StoreError`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation, localcontext
from typing import Any

from sqlalchemy import Engine, false, func, or_, select
from sqlmodel import Session, col

from agentroute.routing import DecisionRecord
from agentroute.store.engine import StoreError, get_engine, sqlite_path
from agentroute.store.models import CallRow, DecisionRow, LedgerRow, StepRow, TaskRow, table
from agentroute.store.schema import ensure_schema


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
) -> Iterator[DecisionRecord]:
    """Every stored decision as the :class:`DecisionRecord` the run recorded, oldest task first.

    Each record's :attr:`~DecisionRecord.task` holds what the store knows of its task: ``graph``, ``features``
    (numeric task features), ``text`` (the task input, only when content was captured), ``status``, ``quality``,
    ``spent_usd`` (exact string), ``truncated`` and ``reason``. The input of off-policy evaluation
    (:func:`agentroute.evaluation.ips_from_records` reads these records as they are) and of exports.
    """
    d_cols = [c for c in table(DecisionRow).c if c.name not in ("id", "graph")]
    t = table(TaskRow).c
    task_cols = (t.graph, t.features, t.input, t.status, t.quality, t.spent_usd, t.truncated, t.reason)
    stmt = (
        select(*d_cols, *task_cols)
        .join_from(table(DecisionRow), table(TaskRow), t.task_id == table(DecisionRow).c.task_id)
        .order_by(t.started_ns, table(DecisionRow).c.task_id, table(DecisionRow).c.idx)
        .execution_options(yield_per=batch)
    )
    if policy:
        stmt = stmt.where(policy_filter(t.policy, policy))
    if graph:
        stmt = stmt.where(t.graph == graph)
    n = len(d_cols)
    names = [c.name for c in d_cols]
    with engine.connect() as conn:
        for r in conn.execute(stmt):
            g, features, text, status, quality, spent, truncated, reason = r[n:]
            task = {"graph": g, "features": features or {}, "text": text, "status": status, "quality": quality,
                    "spent_usd": spent, "truncated": bool(truncated), "reason": reason}
            yield DecisionRecord.from_row(dict(zip(names, r[:n], strict=True)), task)


def stats(engine: Engine, *, by: str = "policy") -> list[dict[str, Any]]:
    """Per policy (or graph): tasks, outcomes, spend, quality, budget-exhaustion rate and model-tier mix.

    Aggregated by the database over covering indexes (two grouped scans), never row by row in Python: spend is
    summed exactly from its integer parts (nano- and atto-USD); a group holding a spend with digits below 1e-18
    USD is summed from its exact strings instead.
    """
    if by not in ("policy", "graph"):
        raise StoreError(f"cannot group by {by!r}", name="--by", hint="use policy or graph")
    stmt, tiers_stmt = _stats_statements(by)
    acc: dict[str, list[Any]] = {}
    with engine.connect() as conn:
        # one row per (group, status, truncated, reason): few rows, folded here
        for g, status, truncated, reason, n, priced, nano, atto, rest, qsum, qn in conn.execute(stmt):
            a = acc.setdefault(g, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0.0, 0])
            n, priced = int(n), int(priced)
            a[0] += n
            if status == "running":
                a[3] += n
            else:
                a[{"completed": 1, "truncated": 2, "overrun": 2}.get(status, 4)] += n  # an overrun stopped early
                a[5] += n if truncated and (reason or "").startswith("budget") else 0
                a[6] += priced
            a[7] += int(nano or 0) * 10**9 + int(atto or 0)  # atto-USD: an exact Python int
            a[8] += int(rest or 0)
            a[9] += float(qsum or 0.0)
            a[10] += int(qn)
        groups: dict[str, dict[str, Any]] = {}
        for g, (n, done, trunc, running, err, exhausted, priced, atto, rest, qsum, qn) in acc.items():
            fin = n - running
            with localcontext() as ctx:
                ctx.prec = 60  # exact: the sum is never rounded
                spend = _exact(conn, by, g) if rest else Decimal(atto).scaleb(-18)
                total = format(spend.normalize(), "f") if spend else "0"
            groups[g] = {
                by: g,
                "tasks": n,
                "completed": done,
                "truncated": trunc,
                "error": err,
                "running": running,
                "spend_usd": total,
                "mean_spend_usd": str(spend / priced) if priced > 0 else None,
                "mean_quality": qsum / qn if qn else None,
                "exhaustion_rate": exhausted / fin if fin else None,
                "tier_mix": {},
            }
        tiers: dict[str, dict[str, int]] = {}
        for g, chosen, n in conn.execute(tiers_stmt):
            tiers.setdefault(g, {})[chosen] = int(n)
    for g, mix in tiers.items():
        if g in groups:
            n_model = sum(mix.values())
            groups[g]["tier_mix"] = {k: v / n_model for k, v in sorted(mix.items())}
    return [groups[k] for k in sorted(groups)]


def _stats_statements(by: str) -> list[Any]:
    """The two grouped scans of :func:`stats`: tasks (outcomes, spend, quality), and the model-tier mix."""
    t = table(TaskRow).c
    key = t[by]
    # grouped along the covering index's own order (key, status, truncated, reason): a streaming scan, no sort
    tasks = select(
        key, t.status, t.truncated, t.reason,
        func.count(),
        func.count(t.spent_usd_nano),
        func.sum(t.spent_usd_nano),
        func.sum(t.spent_usd_atto),
        func.count(func.nullif(t.spent_usd_rest, false())),
        func.sum(t.quality),
        func.count(t.quality),
    ).group_by(key, t.status, t.truncated, t.reason)  # fmt: skip
    d = table(DecisionRow).c
    tiers = select(d[by], d.chosen, func.count()).where(d.kind == "model").group_by(d[by], d.chosen)
    return [tasks, tiers]


def _exact(conn: Any, by: str, group: str) -> Decimal:
    t = table(TaskRow).c
    total = Decimal(0)
    for (v,) in conn.execute(select(t.spent_usd).where(t[by] == group, t.spent_usd.is_not(None))):
        total += dec(v) or 0  # the caller's context is exact enough
    return total


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
