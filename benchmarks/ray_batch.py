"""Throughput of ``app.batch(..., backend="ray")`` against the number of Ray workers, on this machine.

Every configuration runs the same ``--tasks`` tasks of the README's support graph (the ``Simulated`` provider, so
no network; with ``--realtime`` each call also sleeps for its simulated latency, as a real provider would make it
wait) on one shared budget in Redis, large enough not to run out, so the figure is what the workers add, not where
the budget stops. ``local`` is the same batch in this process (``backend="local"``) for comparison. Rounds
alternate between configurations so machine noise hits them alike; each figure is the median over rounds of tasks per
second of wall time, Ray's actor start-up included (a batch starts its workers and stops them). After every batch
the ledger is checked: nothing left reserved, and what it counts equals what the tasks spent.

    .venv/bin/python benchmarks/ray_batch.py                                  # about a minute on 2 cores
    .venv/bin/python benchmarks/ray_batch.py --tasks 400 --workers 1,2,4 --json out/ray.json --plot out/ray.png
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ["OTEL_TRACES_EXPORTER"] = "none"


def make_app(seed: int = 0, realtime: bool = False) -> Any:
    import agentroute as ar
    from agentroute.examples import support_graph

    return support_graph().compile(policy=ar.policies.Strongest(),
                                   provider=ar.providers.Simulated(seed=seed, realtime=realtime))


def one_batch(app: Any, inputs: list[dict[str, Any]], redis_url: str, workers: int | None, realtime: bool,
              concurrency: int) -> float:
    import agentroute as ar
    from agentroute.ledgers import RedisLedger

    name = f"bench-ray-{uuid.uuid4().hex[:8]}"
    team = ar.SharedBudget(ar.Budget(usd="1000"), backend=RedisLedger(redis_url, name=name))
    t0 = time.perf_counter()
    if workers is None:
        results = app.batch(inputs, budget=team, concurrency=concurrency)
    else:
        results = app.batch(inputs, budget=team, concurrency=concurrency, backend="ray", workers=workers,
                            factory=functools.partial(make_app, 0, realtime))
    wall = time.perf_counter() - t0
    backend = RedisLedger(redis_url, name=name)
    spent, reserved = backend.totals()
    backend.reset(spend=True)
    assert len(results) == len(inputs) and reserved.usd == 0
    assert abs(spent.usd - sum(r.spent.usd for r in results)) < Decimal("1e-8") * len(results)
    return len(inputs) / wall


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", type=int, default=120)
    p.add_argument("--workers", default="1,2", help="comma-separated worker counts (Ray actors)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--concurrency", type=int, default=8, help="tasks at once per worker (and in 'local')")
    p.add_argument("--realtime", action="store_true", help="calls sleep for their simulated latency")
    p.add_argument("--redis", default=os.environ.get("AGENTROUTE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    p.add_argument("--json", type=Path)
    p.add_argument("--plot", type=Path, help="write the figure (PNG; needs matplotlib, the learn extra)")
    a = p.parse_args(argv)
    import ray

    from agentroute.examples import support_tasks

    counts = [int(x) for x in a.workers.split(",")]
    ray.init(num_cpus=max(counts), include_dashboard=False, log_to_driver=False)
    app = make_app(0, a.realtime)
    inputs = [{"question": t["question"]} for t in support_tasks(a.tasks, 0)]
    configs: list[tuple[str, int | None]] = [("local", None)] + [(f"ray x{n}", n) for n in counts]
    rates: dict[str, list[float]] = {label: [] for label, _ in configs}
    try:
        for _ in range(a.rounds):
            for label, n in configs:
                rates[label].append(one_batch(app, inputs, a.redis, n, a.realtime, a.concurrency))
    finally:
        ray.shutdown()
    out = {"tasks": a.tasks, "rounds": a.rounds, "concurrency": a.concurrency, "realtime": a.realtime,
           "cpus": os.cpu_count(), "tasks_per_s": {k: round(statistics.median(v), 1) for k, v in rates.items()}}
    base = out["tasks_per_s"][f"ray x{counts[0]}"]
    out["speedup_vs_first_ray"] = {k: round(v / base, 2) for k, v in out["tasks_per_s"].items()}
    print(f"{'config':<10} {'tasks/s':>9} {'vs ray x' + str(counts[0]):>10}")
    for k, v in out["tasks_per_s"].items():
        print(f"{k:<10} {v:>9.1f} {out['speedup_vs_first_ray'][k]:>9.2f}x")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(out, indent=2))
    if a.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3.2))
        ax.plot(counts, [out["tasks_per_s"][f"ray x{n}"] for n in counts], "o-", label="backend='ray'")
        ax.axhline(out["tasks_per_s"]["local"], ls="--", color="grey", label="backend='local' (one process)")
        ax.set_xlabel("Ray workers")
        ax.set_ylabel("tasks / s")
        ax.set_xticks(counts)
        ax.set_title(f"{a.tasks} tasks, one Redis budget, {os.cpu_count()} CPUs")
        ax.legend()
        fig.tight_layout()
        a.plot.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(a.plot, dpi=120)
    return out


if __name__ == "__main__":
    main()
