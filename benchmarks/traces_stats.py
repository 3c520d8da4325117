"""``agentroute traces stats`` at 1k, 10k and 100k tasks: aggregated in SQL (now) vs row by row in Python (before).

Fills a SQLite store (PostgreSQL with ``--db``) with synthetic finished tasks (three policies, two graphs, exact
spend strings, qualities, four decisions each, two of them model tiers), growing it to each size in turn, and
times :func:`agentroute.store.queries.stats` (median of ``--repeat`` runs, by policy) next to the aggregation it
replaced, which loaded every task row into Python. Target: 100k tasks under 200 ms.

    .venv/bin/python benchmarks/traces_stats.py                  # about two minutes, most of it filling the store
    .venv/bin/python benchmarks/traces_stats.py --sizes 1000 10000 --json out/stats.json
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from agentroute.store import SqlSpanExporter, get_engine
from agentroute.store.exporter import spend_parts
from agentroute.store.models import DecisionRow, TaskRow
from agentroute.store.queries import stats

POLICIES = ("rules", "cheapest", "learned:maskable_ppo")
GRAPHS = ("support", "research")
TIERS = ("small", "large")


def fill(exporter: SqlSpanExporter, n: int, rng: random.Random, chunk: int = 5000) -> None:
    """Add ``n`` finished tasks (and their decisions) in transactions of ``chunk`` tasks."""
    for start in range(0, n, chunk):
        tasks, decisions = [], []
        for _ in range(min(chunk, n - start)):
            tid = uuid.uuid4().hex
            policy, graph = rng.choice(POLICIES), rng.choice(GRAPHS)
            truncated = rng.random() < 0.2
            spent = str(Decimal(rng.randint(1, 4_000_000)) / Decimal(10**9))
            nano, atto, rest = spend_parts(spent)
            tasks.append({
                "task_id": tid, "trace_id": "", "graph": graph, "policy": policy, "policy_version": "1",
                "status": "truncated" if truncated else "completed", "truncated": truncated,
                "reason": "budget:usd" if truncated else "completed", "spent_usd": spent, "spent_usd_nano": nano,
                "spent_usd_atto": atto, "spent_usd_rest": rest, "quality": rng.random(), "steps": 2,
                "decisions": 4, "started_ns": time.time_ns(), "ended_ns": time.time_ns(),
            })  # fmt: skip
            for i in range(4):
                kind = "model" if i % 2 == 0 else "agent"
                decisions.append({
                    "task_id": tid, "idx": i, "kind": kind, "point": "a.model" if kind == "model" else "route:a",
                    "node": "a", "step": i // 2, "chosen": rng.choice(TIERS) if kind == "model" else "b",
                    "graph": graph, "policy": policy, "at_ns": 1,
                })  # fmt: skip
        exporter.write({"task": tasks, "decision": decisions})


def old_stats(engine: Any, by: str = "policy") -> list[dict[str, Any]]:
    """The aggregation ``traces stats`` used before: every task row loaded and summed in Python."""
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
            if t.spent_usd is None:
                g["spend_unknown"] += int(t.status != "running")
            else:
                g["spend"] += Decimal(t.spent_usd)
            if t.quality is not None:
                g["quality"].append(t.quality)
        rows = s.execute(select(col(DecisionRow.task_id), col(DecisionRow.chosen))
                         .where(col(DecisionRow.kind) == "model"))
        for task_id, chosen in rows:
            if task_id in key_of:
                groups[key_of[task_id]]["tiers"][chosen] += 1
    return [{by: k, "tasks": g["tasks"], "spend_usd": str(g["spend"])} for k, g in sorted(groups.items())]


def timed(fn: Any, repeat: int) -> tuple[float, float]:
    """Median wall and CPU seconds of ``repeat`` calls (CPU is what a loaded machine cannot inflate)."""
    wall, cpu = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu)


def main() -> None:
    """Fill, time, print (and optionally save) the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    ap.add_argument("--repeat", type=int, default=5, help="runs per measurement (the old way: fewer at 100k)")
    ap.add_argument("--db", default=None, help="a store URL (default: a temporary SQLite file)")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args()
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as d:
        url = args.db or f"sqlite:///{Path(d) / 'stats.db'}"
        exporter = SqlSpanExporter(url)
        engine = get_engine(url)
        have, rows = 0, []
        for size in sorted(args.sizes):
            fill(exporter, size - have, rng)
            have = size
            (new, new_cpu) = timed(lambda: stats(engine), args.repeat)
            (old, old_cpu) = timed(lambda: old_stats(engine), max(1, args.repeat if size <= 10_000 else 1))
            check = {g["policy"]: Decimal(g["spend_usd"]) for g in stats(engine)}
            assert check == {g["policy"]: Decimal(g["spend_usd"]) for g in old_stats(engine)}, "results differ"
            rows.append({"tasks": size, "sql_ms": new * 1e3, "sql_cpu_ms": new_cpu * 1e3, "python_ms": old * 1e3,
                         "python_cpu_ms": old_cpu * 1e3, "speedup": old / new})
            print(f"{size:>8} tasks: SQL {new * 1e3:8.1f} ms   row by row {old * 1e3:9.1f} ms", file=sys.stderr)
        exporter.shutdown()
    print(f"\n{'tasks':>8} {'SQL ms':>9} {'(CPU ms)':>9} {'Python ms':>10} {'(CPU ms)':>9} {'speedup':>8}")
    for r in rows:
        print(f"{r['tasks']:>8} {r['sql_ms']:>9.1f} {r['sql_cpu_ms']:>9.1f} {r['python_ms']:>10.1f} "
              f"{r['python_cpu_ms']:>9.1f} {r['speedup']:>8.1f}")
    biggest = rows[-1]
    verdict = "OK" if biggest["tasks"] < 100_000 or biggest["sql_ms"] < 200 else "OVER TARGET"
    print(f"target: 100k tasks under 200 ms (wall): {verdict}; wall times stretch with the machine's load, CPU "
          "times do not")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"rows": rows}, indent=2))


if __name__ == "__main__":
    main()
