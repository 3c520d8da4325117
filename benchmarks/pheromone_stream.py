"""Pheromone routing on real streams: reward against the best single option and the bandit, drift, latency, updates.

For every table (routerbench, llmrouter, routellm from ../shared/data) and cost weight λ, each policy is replayed
prequentially over a shuffled stream (``agentroute.replay``: bandit feedback, reward = quality − λ·cost/cost_scale)
for several seeds. We report the mean reward after the first ``--warmup`` queries as a ratio to the best single
option in hindsight (same queries), side by side with the LinUCB bandit and the fixed baselines; then a drift
scenario (outcomes permuted among the options from query ``--drift-at`` on) with the steps until the rolling mean
is back within 10% of the new best option. Then the decision latency (10 candidates, 3 task types, in process,
``time.perf_counter_ns`` over many calls) and the updates one background worker applies per second (in memory, a
SQLite file, and PostgreSQL when reachable).

Writes ``pheromone_stream.png`` (curves) and ``pheromone_stream.json`` (every figure) under ``--out``
(default ``bench_out/pheromone``).

Many options, heavy-tailed costs (``--many``): streams of 500 queries at λ = 0.3 per USD, reward = quality −
λ·cost_usd, each seed a fresh stream and policy seed: ``synthetic`` (24 options, prices log-uniform over $0.03–$3,
0/1 outcomes, 6 task types mixed ∝ 1/(t+1)^1.3; :func:`agentroute.data.streams.many_option_stream`) with prices
only and ``synthetic+desc`` with the options' noisy public descriptors; ``routerbench`` and ``llmrouter`` with
their costs mapped onto $0.03–$3 per task (:func:`agentroute.data.streams.heavy_tailed`: the shared tables have
11 and 9 options, no table there has 20+); ``synthetic-drift`` (1,000 queries, outcomes permuted at 500). Per
stream: the pheromone policy (default settings), the LinUCB bandit, random, the best single option in hindsight,
first vs second half. Writes ``pheromone_many.json``.
Run: python benchmarks/pheromone_stream.py [--quick] [--tables routerbench,llmrouter] [--seeds 3]
     python benchmarks/pheromone_stream.py --many synthetic,synthetic+desc --seeds 5
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import socket
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from agentroute.budget import Budget, BudgetStatus, Spend
from agentroute.data import load_builtin
from agentroute.policies._pheromone_worker import PheromoneUpdate, UpdateWorker
from agentroute.policies.pheromone import PheromonePolicy
from agentroute.replay import make_policy, outcome_matrix, replay, summarize
from agentroute.routing import Candidate, Feedback, Observation, TaskInfo

POLICIES = ("pheromone", "bandit", "random", "cheapest", "strongest")
PG_URL = os.environ.get("AGENTROUTE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def rolling(x: np.ndarray, w: int) -> np.ndarray:
    if len(x) < w:
        return np.array([])
    c = np.cumsum(np.insert(x, 0, 0.0))
    out: np.ndarray = (c[w:] - c[:-w]) / w
    return out


def stream_runs(name: str, lams: list[float], seeds: int, warmup: int, drift_at: int | None,
                window: int) -> dict[str, Any]:
    table = load_builtin(name)
    n = len(table)
    drift = drift_at if drift_at is not None else n // 2
    out: dict[str, Any] = {"queries": n, "options": table.options, "cost_scale": table.cost_scale(), "lambda": {}}
    for lam in lams:
        usd = lam / table.cost_scale()  # λ is given in cost-scale units here; replay takes it per USD
        rec: dict[str, Any] = {"stationary": {}, "drift": {}, "curves": {}, "drift_curves": {}}
        for pol in POLICIES:
            sums, curves = [], []
            for s in range(seeds):
                t0 = time.perf_counter()
                res = replay(table, make_policy(pol, table, seed=s, cost_weight=usd), cost_weight=usd,
                             order="shuffle", seed=s)
                sm = summarize(res, table, warmup=warmup, window=window)
                sm["seconds"] = round(time.perf_counter() - t0, 2)
                sums.append(sm)
                curves.append(rolling(res.reward, window))
                if pol == POLICIES[0] and s == 0:
                    full = outcome_matrix(table, res.rows, None, None, usd)
                    rec["curves"]["best single (hindsight)"] = [float(full[warmup:].mean(axis=0).max())]
                    rec["curves"]["oracle (per query)"] = [float(full.max(axis=1).mean())]
            rec["stationary"][pol] = {
                "ratio_to_best": [round(x["ratio_to_best"], 4) for x in sums],
                "mean_ratio": round(float(np.mean([x["ratio_to_best"] for x in sums])), 4),
                "mean_reward_after_warmup": round(float(np.mean([x["mean_reward_after_warmup"] for x in sums])), 4),
                "best_single_after_warmup": round(float(np.mean([x["best_single_after_warmup"] for x in sums])), 4),
                "best_single_option": sums[0]["best_single_option"],
                "seconds_per_run": round(float(np.mean([x["seconds"] for x in sums])), 2),
            }
            rec["curves"][pol] = np.mean(curves, axis=0).tolist()
            print(f"{name} λ={lam} {pol}: ratio {rec['stationary'][pol]['mean_ratio']:.3f} "
                  f"{rec['stationary'][pol]['ratio_to_best']}", flush=True)
        for pol in ("pheromone", "bandit"):
            sums, curves = [], []
            for s in range(seeds):
                res = replay(table, make_policy(pol, table, seed=s, cost_weight=usd), cost_weight=usd,
                             order="shuffle", seed=s, drift_at=drift)
                sums.append(summarize(res, table, warmup=warmup, window=window))
                curves.append(rolling(res.reward, window))
            rec["drift"][pol] = {
                "drift_at": drift,
                "recovery_steps": [x["recovery_steps"] for x in sums],
                "ratio_after_recovery": [round(x["ratio_after_recovery"], 4) for x in sums],
                "mean_ratio_after_recovery": round(float(np.mean([x["ratio_after_recovery"] for x in sums])), 4),
                "ratio_before_drift": [round(x["ratio_to_best"], 4) for x in sums],
            }
            rec["drift_curves"][pol] = np.mean(curves, axis=0).tolist()
            print(f"{name} λ={lam} drift {pol}: recovery {rec['drift'][pol]['recovery_steps']} ratio after "
                  f"{rec['drift'][pol]['mean_ratio_after_recovery']:.3f}", flush=True)
        out["lambda"][str(lam)] = rec
    return out


MANY_LAMBDA = 0.3
"""λ per USD of the many-option streams (per-task costs from cents to several dollars)."""
MANY_STREAMS = ("synthetic", "synthetic+desc", "routerbench", "llmrouter", "synthetic-drift")


def many_table(stream: str, seed: int, n: int = 500) -> Any:
    """The table of one many-option stream for one seed (a fresh synthetic stream or a fresh subset)."""
    from agentroute.data.streams import heavy_tailed, many_option_stream

    if stream.startswith("synthetic"):
        return many_option_stream(2 * n if stream == "synthetic-drift" else n, seed=seed)
    table = heavy_tailed(load_builtin(stream))
    return table.subset(np.random.default_rng(100 + seed).permutation(len(table))[:n])


def many_runs(stream: str, seeds: int) -> dict[str, Any]:
    """Pheromone, bandit and random on one many-option stream over ``seeds`` seeds (see the module docstring)."""
    lam = MANY_LAMBDA
    drift = stream == "synthetic-drift"
    policies: list[tuple[str, str, dict[str, Any]]] = [("pheromone", "pheromone", {}), ("bandit", "bandit", {})]
    if not drift:
        policies.append(("random", "random", {}))
    if stream in ("routerbench", "llmrouter"):  # "auto" reads the pooled estimate here (price gap): the levels too
        policies.insert(1, ("pheromone (levels)", "pheromone", {"estimate": "level"}))
    rec: dict[str, Any] = {"lambda_per_usd": lam, "seeds": seeds, "policies": {}}
    for label, name, kw in policies:
        rows = []
        for s in range(seeds):
            table = many_table(stream, s)
            args = dict(kw)
            if name == "pheromone" and stream == "synthetic+desc":
                args["descriptors"] = table.meta["descriptors"]
            t0 = time.perf_counter()
            res = replay(table, make_policy(name, table, seed=s, cost_weight=lam, **args), cost_weight=lam,
                         order="shuffle", seed=s, drift_at=len(table) // 2 if drift else None)
            full = outcome_matrix(table, res.rows, res.drift_at, res.permutation, lam)
            r, half = res.reward, len(res.reward) // 2
            row: dict[str, Any] = {"seconds": round(time.perf_counter() - t0, 1), "options": table.n_options,
                                   "queries": len(table)}
            if drift:
                sm = summarize(res, table, warmup=100, window=50)
                row.update(ratio_before_drift=sm["ratio_to_best"], recovery_steps=sm["recovery_steps"],
                           ratio_after_recovery=sm["ratio_after_recovery"])
            else:
                best = float(full.mean(axis=0).max())
                row.update(mean_reward=float(r.mean()), best_single=best, ratio=float(r.mean()) / best,
                           first_half=float(r[:half].mean()) / best, second_half=float(r[half:].mean()) / best,
                           options_second_half=len(set(res.chosen[half:].tolist())),
                           best_single_option=table.options[int(full.mean(axis=0).argmax())])
            rows.append(row)
        keys = [k for k, v in rows[0].items() if isinstance(v, float)]
        agg = {k: round(float(np.mean([x[k] for x in rows if x[k] is not None])), 4) for k in keys}
        agg["per_seed"] = [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in x.items()} for x in rows]
        if not drift:
            agg["min_ratio"] = round(min(x["ratio"] for x in rows), 4)
        else:
            agg["recovery_steps"] = [x["recovery_steps"] for x in rows]
        rec["policies"][label] = agg
        print(f"{stream} {label}: " + ", ".join(f"{k} {v}" for k, v in agg.items() if k != "per_seed"), flush=True)
    if not drift:
        ph, ba = rec["policies"]["pheromone"]["ratio"], rec["policies"]["bandit"]["ratio"]
        rec["targets"] = {"pheromone_ge_bandit": ph >= ba, "pheromone_ge_0.9_best_single": ph >= 0.9}
    return rec


def _latency_setup(cls: Any, asynchronous: bool) -> tuple[Any, list[Observation]]:
    pol = cls(task_types=["math", "code", "chat"], seed=0, asynchronous=asynchronous)
    cands = tuple(Candidate(f"m{i}", "model", rank=i, cost_estimate=Decimal(str(0.0005 * (i + 1))),
                            latency_estimate=0.2 + 0.1 * i) for i in range(10))
    budget = BudgetStatus(limits=Budget(), spent=Spend(), remaining=Budget())
    intent = {"math": 0.6, "code": 0.3, "chat": 0.1}
    observations = [Observation(TaskInfo(f"t{i}", intent=intent), "model", "model", "n", 0, (), budget, cands,
                                extra={"cost_weight": 0.5, "cost_scale": 0.005}) for i in range(256)]
    rng = np.random.default_rng(0)
    for i in range(3000):  # learn a little first: every option and type has edges
        o = observations[i % 256]
        d = pol.decide(o)
        pol.feedback(Feedback(o, d, Decimal("0.001"), 0, 0.3, quality=float(rng.random() < 0.7)))
    return pol, observations


def decision_latency(calls: int, *, asynchronous: bool = False, baseline: str | None = None) -> dict[str, Any]:
    """decide() with 10 candidates and 3 task types (a mixed intent), after some learning.

    Each decision's feedback follows it (untimed), as in serving. ``asynchronous=False``: the feedback is
    applied at once, so every decision reads a table that moved since the previous one (the worst case for the
    policy's caches). ``asynchronous=True``: the background worker applies it in batches, in the same process
    (it shares the GIL). Timing: ``time.perf_counter_ns`` around each call after warm-up, the garbage
    collector running as normal; ``gc.collect()`` and ``gc.freeze()`` before the timed loop move the set-up's
    objects out of the collector's way, as a server would after start-up. ``baseline``: the module of another
    ``PheromonePolicy`` (e.g. a copy of an older version on ``PYTHONPATH``) timed side by side, block by block.
    """
    import importlib

    classes: list[tuple[str, Any]] = [("current", PheromonePolicy)]
    if baseline:
        classes.append(("baseline", importlib.import_module(baseline).PheromonePolicy))
    setups = {label: _latency_setup(cls, asynchronous) for label, cls in classes}
    rng = np.random.default_rng(1)
    qual = (rng.random(calls) < 0.7).astype(float).tolist()
    cost = Decimal("0.001")
    clock = time.perf_counter_ns
    times = {label: np.empty(calls, dtype=np.int64) for label in setups}
    blocks = 10
    per = calls // blocks
    gc.collect()
    gc.freeze()
    for b in range(blocks):  # interleaved blocks, alternating order: both see the same machine
        order = list(setups.items()) if b % 2 == 0 else list(reversed(setups.items()))
        for label, (pol, observations) in order:
            buf = times[label]
            for i in range(b * per, (b + 1) * per):
                o = observations[i & 255]
                t0 = clock()
                d = pol.decide(o)
                buf[i] = clock() - t0
                pol.feedback(Feedback(o, d, cost, 0, 0.3, quality=qual[i]))
    gc.unfreeze()
    for pol, _ in setups.values():
        pol.close()
    from agentroute.routing import Decision

    ref = np.empty(20_000, dtype=np.int64)
    for i in range(len(ref)):  # a reference operation, to compare machines: building one Decision
        t0 = clock()
        Decision("a", {"a": 1.0})
        ref[i] = clock() - t0

    def figures(t: np.ndarray) -> dict[str, Any]:
        t = t[: per * blocks]
        return {
            "p50_us": round(float(np.percentile(t, 50)) / 1000.0, 2),
            "p99_us": round(float(np.percentile(t, 99)) / 1000.0, 2),
            "p999_us": round(float(np.percentile(t, 99.9)) / 1000.0, 2),
            "mean_us": round(float(t.mean()) / 1000.0, 2),
            "p99_us_per_block": [round(float(np.percentile(x, 99)) / 1000.0, 2) for x in np.array_split(t, blocks)],
        }

    out: dict[str, Any] = {
        "calls": per * blocks,
        "candidates": 10,
        "task_types": 3,
        "asynchronous_worker": asynchronous,
        **figures(times["current"]),
        "reference_decision_ctor_p50_us": round(float(np.percentile(ref, 50)) / 1000.0, 3),
    }
    if baseline:
        out["baseline"] = {"module": baseline, **figures(times["baseline"])}
    if asynchronous:
        return out
    # the classifier path: w(q) for a fresh query text (not cached), measured apart
    table = load_builtin("routerbench")
    clf = PheromonePolicy(seed=0).fit_intent(table.texts, table.categories)
    texts = table.texts[:300]
    t_clf = []
    for txt in texts:
        t0 = clock()
        clf.intent.weights(txt)
        t_clf.append(clock() - t0)
    out["intent_classifier_uncached_p50_us"] = round(float(np.percentile(t_clf, 50)) / 1000.0, 1)
    out["note"] = "w(q) is computed once per task and cached; the uncached classifier cost is listed apart"
    return out


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def worker_throughput(n: int) -> dict[str, Any]:
    """Outcomes applied per second by one background worker (3 task types each: 3 edge updates per outcome)."""
    from agentroute.policies._pheromone_open import open_table

    def signal(u: PheromoneUpdate) -> float:
        return 0.0 if u.quality is None else u.quality

    rng = np.random.default_rng(0)
    ups = [PheromoneUpdate(f"t{i}", "model", f"m{int(rng.integers(10))}", {"math": 0.6, "code": 0.3, "chat": 0.1},
                           float(rng.random()), 0.001) for i in range(n)]
    out: dict[str, Any] = {}
    tmp = tempfile.mkdtemp(prefix="pher-bench-")
    targets: list[tuple[str, Any]] = [("memory", None), ("sqlite", f"sqlite:///{Path(tmp) / 'bench.db'}")]
    if _reachable("127.0.0.1", 5432):
        targets.append(("postgresql", PG_URL))
    for label, url in targets:
        ns = f"bench-{int(time.time() * 1000)}"
        table = open_table(url, namespace=ns, memory=url is None, record_events=True)
        count = n if url is None else min(n, 20_000)
        w = UpdateWorker(table, signal, buffer_size=count + 1, batch_size=256)
        t0 = time.perf_counter()
        for u in ups[:count]:
            w.submit(u)
        submit_s = time.perf_counter() - t0
        w.flush(timeout=600)
        total = time.perf_counter() - t0
        w.close()
        out[label] = {"outcomes": count, "outcomes_per_s": round(count / total), "edge_updates_per_s":
                      round(w.counts["edge_updates"] / total), "submit_us_mean": round(submit_s / count * 1e6, 2),
                      "dropped": w.counts["dropped"], "errors": w.counts["errors"]}
        if url is not None:
            table.clear()
        print(f"worker {label}: {out[label]}", flush=True)
    return out


def plot(results: dict[str, Any], path: Path, warmup: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(t, lam) for t, r in results["tables"].items() for lam in r["lambda"]]
    fig, axes = plt.subplots(len(panels), 2, figsize=(13, 3.2 * len(panels)), squeeze=False)
    colors = {"pheromone": "tab:red", "bandit": "tab:blue", "random": "tab:gray", "cheapest": "tab:green",
              "strongest": "tab:purple"}
    for row, (t, lam) in enumerate(panels):
        rec = results["tables"][t]["lambda"][lam]
        ax = axes[row, 0]
        for pol, c in colors.items():
            y = rec["curves"].get(pol)
            if y:
                ax.plot(np.arange(len(y)) + results["window"], y, color=c, lw=1.4 if pol in ("pheromone", "bandit")
                        else 0.8, label=pol)
        ax.axhline(rec["curves"]["best single (hindsight)"][0], color="black", ls="--", lw=1, label="best single")
        ax.axhline(0.9 * rec["curves"]["best single (hindsight)"][0], color="black", ls=":", lw=0.8,
                   label="90% of best single")
        ax.axvline(warmup, color="k", lw=0.5, alpha=0.4)
        ax.set_title(f"{t}, λ={lam}: rolling mean reward ({results['window']} queries)", fontsize=9)
        ax.legend(fontsize=7, ncol=3)
        ax = axes[row, 1]
        for pol in ("pheromone", "bandit"):
            y = rec["drift_curves"].get(pol)
            if y:
                ax.plot(np.arange(len(y)) + results["window"], y, color=colors[pol], label=pol)
        ax.axvline(rec["drift"]["pheromone"]["drift_at"], color="k", ls="--", lw=1, label="drift")
        ax.set_title(f"{t}, λ={lam}: outcomes permuted at query {rec['drift']['pheromone']['drift_at']}",
                     fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tables", default="routerbench,llmrouter,routellm")
    ap.add_argument("--cost-weights", default="0,0.5")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--window", type=int, default=100)
    ap.add_argument("--drift-at", type=int, default=None, help="default: half of each stream")
    ap.add_argument("--calls", type=int, default=200_000, help="decide() calls timed for the latency figure")
    ap.add_argument("--updates", type=int, default=50_000, help="outcomes for the worker throughput figure")
    ap.add_argument("--baseline", default=None,
                    help="module of another PheromonePolicy to time side by side (e.g. a copy of an older version)")
    ap.add_argument("--quick", action="store_true", help="routerbench only, 1 seed, fewer timed calls")
    ap.add_argument("--only-latency", action="store_true",
                    help="only the latency and worker figures (to pheromone_latency.json)")
    ap.add_argument("--many", default=None,
                    help=f"only the many-option streams, comma-separated from {','.join(MANY_STREAMS)} (or 'all')")
    ap.add_argument("--out", default="bench_out/pheromone")
    a = ap.parse_args()
    if a.many:
        streams = MANY_STREAMS if a.many == "all" else tuple(a.many.split(","))
        bad = [x for x in streams if x not in MANY_STREAMS]
        if bad:
            ap.error(f"unknown stream(s) {bad}: use {','.join(MANY_STREAMS)}")
        dest = Path(a.out)
        dest.mkdir(parents=True, exist_ok=True)
        path = dest / "pheromone_many.json"
        old = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        for x in streams:
            old[x] = many_runs(x, a.seeds)
            path.write_text(json.dumps(old, indent=1), encoding="utf-8")
        print(f"wrote {path}")
        return
    if a.quick:
        a.tables, a.seeds, a.calls, a.updates = "routerbench", 1, 50_000, 10_000
    lams = [float(x) for x in a.cost_weights.split(",")]
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    results: dict[str, Any] = {"warmup": a.warmup, "window": a.window, "seeds": a.seeds, "tables": {}}
    results["latency"] = decision_latency(a.calls, baseline=a.baseline)
    print(f"decision latency: {results['latency']}", flush=True)
    results["latency_async_worker"] = decision_latency(a.calls // 2, asynchronous=True, baseline=a.baseline)
    print(f"decision latency with the worker running: {results['latency_async_worker']}", flush=True)
    results["worker"] = worker_throughput(a.updates)
    if a.only_latency:
        (out / "pheromone_latency.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
        print(f"wrote {out / 'pheromone_latency.json'}")
        return
    for name in a.tables.split(","):
        results["tables"][name] = stream_runs(name, lams, a.seeds, a.warmup, a.drift_at, a.window)
    results["seconds"] = round(time.time() - t0, 1)
    plot(results, out / "pheromone_stream.png", a.warmup)
    slim = json.loads(json.dumps(results))
    for r in slim["tables"].values():
        for rec in r["lambda"].values():
            rec.pop("curves"), rec.pop("drift_curves")  # the PNG holds the curves; the JSON holds the figures
    (out / "pheromone_stream.json").write_text(json.dumps(slim, indent=1), encoding="utf-8")
    print(f"wrote {out / 'pheromone_stream.png'} and {out / 'pheromone_stream.json'} in {results['seconds']} s")


if __name__ == "__main__":
    main()
