"""Rendering stored traces for people (a rich tree of one task) and for programs (JSONL / Parquet exports).

Used by ``agentroute traces``; kept apart so the command module stays thin and these stay testable without a
CLI. Imports rich and pyarrow inside the functions that need them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.tree import Tree

    from agentroute.routing import DecisionRecord
    from agentroute.store.models import DecisionRow, StepRow
    from agentroute.store.queries import TaskTree


def _usd(v: Any, digits: int = 6) -> str:
    return "?" if v is None else f"${Decimal(str(v)):.{digits}f}"


def _left(task: Any, spent_usd: Decimal | None, tokens: int, steps: int) -> str:
    parts = []
    if task.limit_usd is not None:
        parts.append("?" if spent_usd is None else _usd(Decimal(task.limit_usd) - spent_usd))
    if task.limit_tokens is not None:
        parts.append(f"{task.limit_tokens - tokens} tokens")
    if task.limit_steps is not None:
        parts.append(f"{task.limit_steps - steps} steps")
    return ", ".join(parts) if parts else "unlimited"


def _decision(node: Tree, d: DecisionRow) -> None:
    explored = " [yellow](explored)[/]" if d.explored else ""
    head = node.add(
        f"[bold cyan]route {d.kind}[/] [dim]{d.point}[/] → [bold green]{d.chosen}[/] "
        f"p={d.propensity:.2f}{explored}  [italic]{d.reason}[/]"
    )
    details = {c.get("id"): c for c in (d.candidate_details or []) if isinstance(c, Mapping)}
    scores = d.scores or {}
    for cid, p in zip(d.candidates or [], d.probabilities or [], strict=False):
        c = details.get(cid, {})
        score = f" score={scores[cid]:.3f}" if cid in scores else ""
        cost = f" ≤{_usd(c['cost_estimate'])}" if c.get("cost_estimate") is not None else ""
        mark = " [green]◀ chosen[/]" if cid == d.chosen else ""
        head.add(f"{cid}  p={float(p):.2f}{score}{cost}{mark}")
    for m in d.masked or []:
        head.add(f"[dim]{m.get('id')}  masked: {m.get('reason')}[/]")
    policy = f"{d.policy} v{d.policy_version}" + (f" weights {d.weights_hash[:12]}" if d.weights_hash else "")
    cost = "" if d.cost_usd is None else f", cost {_usd(d.cost_usd)}"
    quality = "-" if d.quality is None else f"{d.quality:.3f}"
    head.add(f"[dim]policy {policy}{cost}, quality {quality}[/]")


def render_tree(tree: TaskTree) -> Tree:
    """One task as a rich ``Tree``: agent choices, then each step with decisions, calls and budget left."""
    from rich.tree import Tree

    t = tree.task
    status = {"running": "[yellow]running (unfinished)[/]", "error": "[red]error[/]"}.get(t.status, t.status)
    spent = "?" if t.spent_usd is None and t.ended_ns else _usd(t.spent_usd)
    limits = ", ".join(x for x in (
        f"${t.limit_usd}" if t.limit_usd else "", f"{t.limit_tokens} tokens" if t.limit_tokens else "",
        f"{t.limit_steps} steps" if t.limit_steps else "") if x) or "unlimited"  # fmt: skip
    root = Tree(
        f"[bold]task {t.task_id}[/] · graph {t.graph} · policy {t.policy} v{t.policy_version} · {status}"
        f"{' (' + t.reason + ')' if t.reason and t.reason != 'completed' else ''}\n"
        f"spent {spent if t.ended_ns else '-'}, {t.spent_tokens or 0} tokens, "
        f"{t.steps or len(tree.steps)} steps "
        f"of {limits}; quality {'-' if t.quality is None else f'{t.quality:.3f}'}"
    )
    cum_usd: Decimal | None = Decimal(0)
    cum_tokens = 0
    seen_steps = {s.step for s in tree.steps}
    last = max([*seen_steps, *(d.step for d in tree.decisions)], default=-1)
    steps_by_index: dict[int, StepRow] = {s.step: s for s in tree.steps}
    for i in range(last + 1):
        for d in tree.decisions_at(i, agent_choice=True):
            _decision(root, d)
        s = steps_by_index.get(i)
        if s is None:
            continue
        cost = None if s.cost_usd is None else Decimal(s.cost_usd)
        cum_usd = None if cum_usd is None or cost is None else cum_usd + cost
        cum_tokens += s.tokens
        err = f" [red]{s.error_type}[/]" if s.error_type else ""
        ms = (s.ended_ns - s.started_ns) / 1e6
        node = root.add(
            f"[bold]step {i}[/] · {s.agent} · {_usd(s.cost_usd)} · {s.tokens} tokens · {ms:.0f} ms{err} · "
            f"left: {_left(t, cum_usd, cum_tokens, i + 1)}"
        )
        for d in tree.decisions_at(i, agent_choice=False):
            _decision(node, d)
        for c in tree.calls_at(i):
            tag = " fallback" if c.fallback else ""
            err = f" [red]{c.error_type}[/]" if c.error_type else ""
            node.add(
                f"[magenta]chat {c.model}[/] tier {c.tier} · attempt {c.attempt}{tag} · "
                f"in {c.input_tokens} / "
                f"out {c.output_tokens} (max {c.max_tokens}) · {_usd(c.cost_usd)}{err}"
            )
    for d in tree.decisions:  # decisions at positions past the last step (a final choice of END)
        if d.step > last:
            _decision(root, d)
    if t.error:
        root.add(f"[red]{t.error_type}: {t.error}[/]")
    return root


_SCALARS = (
    ("task_id", "string"), ("index", "int64"), ("kind", "string"), ("point", "string"), ("node", "string"),
    ("step", "int64"), ("chosen", "string"), ("propensity", "float64"), ("reason", "string"), ("policy", "string"),
    ("policy_version", "string"), ("explored", "bool_"), ("cost_usd", "string"), ("tokens", "int64"),
    ("quality", "float64"), ("decided_ns", "int64"),
)  # fmt: skip
_JSON_COLUMNS = ("probabilities", "scores", "candidates", "masked", "budget_before", "budget_after", "reservation",
                 "evidence", "task", "shadow")


def _parquet_schema() -> Any:
    import pyarrow as pa

    return pa.schema([(k, getattr(pa, t)()) for k, t in _SCALARS] + [(k, pa.string()) for k in _JSON_COLUMNS])


def write_export(
    records: Iterable[DecisionRecord],
    out: str | os.PathLike[str],
    fmt: str,
    *,
    total: int | None = None,
    progress: bool = False,
    chunk: int = 5000,
) -> int:
    """Write decision records to ``out`` as ``jsonl`` or ``parquet``, atomically; return how many.

    A row is :meth:`DecisionRecord.to_dict` (read it back with :meth:`DecisionRecord.from_dict`); in Parquet the
    structured columns (probabilities, candidates, budgets, evidence, task, ...) are JSON strings.
    """
    rows = (r.to_dict() for r in records)
    path = Path(out)
    tmp = path.with_name(path.name + ".part")
    bar: Any = None
    if progress:
        from rich.progress import Progress

        bar = Progress(transient=True)
        bar.start()
        job = bar.add_task("exporting decisions", total=total)
    n = 0
    try:
        if fmt == "jsonl":
            with tmp.open("w", encoding="utf-8") as f:
                for row in rows:
                    f.write(json.dumps(row, default=str, ensure_ascii=False) + "\n")
                    n += 1
                    if bar is not None and n % 500 == 0:
                        bar.update(job, completed=n)
        elif fmt == "parquet":
            try:
                import pyarrow as pa
                import pyarrow.parquet as pq
            except ImportError:
                from agentroute.errors import ConfigError

                raise ConfigError("Parquet export needs pyarrow", name="--format",
                                  hint="pip install pyarrow (or agentroute[learn]), or use --format jsonl") from None

            schema = _parquet_schema()
            with pq.ParquetWriter(tmp, schema) as writer:
                buf: list[dict[str, Any]] = []
                for row in rows:
                    buf.append({k: (None if row.get(k) is None else json.dumps(row[k], default=str))
                                if k in _JSON_COLUMNS else row.get(k) for k in schema.names})
                    n += 1
                    if len(buf) >= chunk:
                        writer.write_table(pa.Table.from_pylist(buf, schema=schema))
                        buf.clear()
                        if bar is not None:
                            bar.update(job, completed=n)
                if buf or n == 0:
                    writer.write_table(pa.Table.from_pylist(buf, schema=schema))
        else:
            raise ValueError(f"unknown export format {fmt!r}")
        os.replace(tmp, path)
    finally:
        if bar is not None:
            bar.stop()
        if tmp.exists():
            tmp.unlink()
    return n


__all__ = ["render_tree", "write_export"]
