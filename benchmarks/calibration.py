"""Calibration benchmark: realised against target spend (or strong share) on the shared tables, offline and online.

For each table (``routerbench`` and ``llmrouter``: USD per query; ``routellm``: the share of queries sent to GPT-4, as
RouteLLM reports) and each target, on a seeded 80/20 split stratified by category:

- ``offline``: a router (``--router``, default linear) fitted on the train part, its λ calibrated on the train part
  (``calibrate``, what ``fit --target-spend`` does), then the held-out queries routed at that fixed λ;
- ``offline-cal``: the same, λ calibrated on a calibration split held out of the train part (25% of it; the router
  fitted on the rest), which removes the in-sample optimism of the first;
- ``replay-fixed:<router>``: the router with λ calibrated on the train part *without categories* (a replay shows
  none; calibrated with them, the linear router spends 4× its target on RouterBench in a replay), fixed, on a
  replayed stream of the held-out queries;
- ``online:<policy>``: the policy held to the target by ``TargetSpend`` / ``TargetShare`` on a replayed stream
  (the fitted router, starting from that λ, on the held-out queries; the bandit and the pheromone
  colony, started empty, on ``--stream`` queries of the whole table shuffled), the realised rate counted after the
  warm-up.

Reported per row: target, realised rate, relative error, within the tolerance (10%), mean quality, λ at the end.

    AGENTROUTE_DATA_DIR=../shared/data .venv/bin/python benchmarks/calibration.py --out bench_out/calibration
        [--tables routerbench,routellm] [--router linear] [--seed 0] [--stream 1000]

Writes ``OUT/calibration.json`` and ``OUT/calibration.png`` (realised against target, one panel per table, the
diagonal and the ±10% band).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from agentroute.data import load_builtin
from agentroute.features import HashingFeaturizer
from agentroute.policies import TargetShare, TargetSpend, calibrate, make_router
from agentroute.replay import make_policy, replay, summarize

TARGETS: dict[str, tuple[str, tuple[float, ...]]] = {
    "routerbench": ("spend", (0.0005, 0.001, 0.002)),
    "llmrouter": ("spend", (6e-5, 1e-4, 1.5e-4)),
    "routellm": ("strong_share", (0.2, 0.5, 0.8)),
}
"""Per table: what is targeted, and the targets (USD per query, or the share of queries sent to the strong model)."""
TOLERANCE = 0.1
WARMUP = 100
ONLINE = ("bandit", "pheromone")


def _fit(name: str, table: Any, seed: int) -> Any:
    return make_router(name, seed=seed, featurizer=HashingFeaturizer(512, seed=seed)).fit(table)


def _rate(kind: str, table: Any, idx: np.ndarray, strong: int) -> float:
    rows = np.arange(len(table))
    return float(table.cost[rows, idx].mean()) if kind == "spend" else float(np.mean(idx == strong))


def _row(method: str, target: float, realised: float, quality: float, lam: float, **extra: Any) -> dict[str, Any]:
    err = (realised - target) / target
    return {"method": method, "target": target, "realised": realised, "relative_error": err,
            "within_tolerance": bool(abs(err) <= TOLERANCE), "quality": quality, "cost_weight": lam, **extra}


def offline(router: Any, cal_table: Any, test: Any, kind: str, target: float, method: str) -> dict[str, Any]:
    """Calibrate on ``cal_table``, route ``test`` at that λ."""
    kw = {"spend": target} if kind == "spend" else {"strong_share": target}
    cal = calibrate(router, cal_table, **kw)
    idx, _ = router.predict_texts(test.texts, test.categories)
    strong = router.options.index(cal.strong) if cal.strong else -1
    q = float(test.quality[np.arange(len(test)), idx].mean())
    return _row(method, target, _rate(kind, test, np.asarray(idx), strong), q, cal.cost_weight,
                on_calibration=cal.achieved)


def online(policy: Any, stream: Any, kind: str, target: float, method: str, seed: int,
           limit: int | None = None) -> dict[str, Any]:
    """Replay ``stream`` (shuffled) with ``policy`` held to the target; the rate after the warm-up."""
    held = (TargetSpend(policy, usd_per_task=target, tolerance=TOLERANCE, warmup=WARMUP) if kind == "spend" else
            TargetShare(policy, strong_share=target, tolerance=TOLERANCE, warmup=WARMUP))
    res = replay(stream, held, order="shuffle", seed=seed, limit=limit)
    t = summarize(res, stream)["target"]
    q = float(res.quality[WARMUP:].mean())
    return _row(method, target, float(t["realised"]), q, float(t["cost_weight"]), steps=len(res.rows))


def fixed(router: Any, stream: Any, kind: str, target: float, method: str, seed: int) -> dict[str, Any]:
    """Replay ``stream`` (shuffled) with the router at its own λ, not held: the open-loop rate after the warm-up."""
    res = replay(stream, router, cost_weight=router.cost_weight, order="shuffle", seed=seed)
    x = res.cost if kind == "spend" else (res.chosen == int(np.nanmean(stream.cost, axis=0).argmax()))
    return _row(method, target, float(np.mean(x[WARMUP:])), float(res.quality[WARMUP:].mean()),
                router.cost_weight)


def run_table(name: str, router_name: str, seed: int, stream: int) -> dict[str, Any]:
    kind, targets = TARGETS[name]
    table = load_builtin(name)
    train, test = table.split(0.2, seed=seed)
    fit_part, cal_part = train.split(0.25, seed=seed + 1)
    t0 = time.perf_counter()
    router = _fit(router_name, train, seed)
    router_cal = _fit(router_name, fit_part, seed)
    rows: list[dict[str, Any]] = []
    for target in targets:
        for method, r, on in (("offline", router, train), ("offline-cal", router_cal, cal_part)):
            try:
                rows.append(offline(r, on, test, kind, target, method))
            except Exception as e:  # an unreachable target is reported, not fatal
                rows.append({"method": method, "target": target, "error": str(e).split(" (")[0]})
        # a replay shows no categories: calibrate for that regime (`fit --calibrate-no-categories`), replay the
        # held-out queries at that λ fixed (open loop), then held online starting from it
        calibrate(router, train, categories=False, **({"spend": target} if kind == "spend" else
                                                        {"strong_share": target}))
        rows.append(fixed(router, test, kind, target, f"replay-fixed:{router_name}", seed))
        rows.append(online(router, test, kind, target, f"online:{router_name}", seed))
        for pol in ONLINE:
            rows.append(online(make_policy(pol, table, seed=seed), table, kind, target, f"online:{pol}", seed,
                               limit=stream))
        for r in rows[-(4 + len(ONLINE)):]:
            if "error" in r:
                print(f"  {name} {r['method']:>18} target {r['target']:<8g} {r['error']}")
            else:
                print(f"  {name} {r['method']:>18} target {r['target']:<8g} realised {r['realised']:<10.5g} "
                      f"err {r['relative_error']:+.3f} {'ok ' if r['within_tolerance'] else 'OFF'} "
                      f"quality {r['quality']:.4f} λ {r['cost_weight']:.4g}")
    return {"kind": kind, "n_train": len(train), "n_test": len(test), "n_stream": min(stream, len(table)),
            "router": router_name, "seconds": round(time.perf_counter() - t0, 1), "rows": rows}


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 4.4), squeeze=False)
    markers = {"offline": "o", "offline-cal": "s"}
    for ax, (name, res) in zip(axes[0], results.items(), strict=True):
        ts = np.array(sorted({r["target"] for r in res["rows"]}))
        lo, hi = ts.min() * 0.7, ts.max() * 1.3
        grid = np.linspace(lo, hi, 50)
        ax.plot(grid, grid, color="0.3", lw=1, label="target")
        ax.fill_between(grid, grid * (1 - TOLERANCE), grid * (1 + TOLERANCE), color="0.85", label="±10%")
        for method in dict.fromkeys(r["method"] for r in res["rows"]):
            pts = [(r["target"], r["realised"]) for r in res["rows"] if r["method"] == method and "realised" in r]
            if pts:
                x, y = zip(*pts, strict=True)
                ax.scatter(x, y, marker=markers.get(method, "^"), label=method, s=28)
        unit = "USD per query" if res["kind"] == "spend" else "share to the strong model"
        ax.set_title(f"{name} ({res['n_test']} held out)")
        ax.set_xlabel(f"target ({unit})")
        ax.set_ylabel("realised")
        if res["kind"] == "spend":
            ax.set_xscale("log")
            ax.set_yscale("log")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="bench_out/calibration")
    ap.add_argument("--tables", default=",".join(TARGETS))
    ap.add_argument("--router", default="linear")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--stream", type=int, default=1000, help="queries of the online bandit/pheromone streams")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    for name in [t for t in args.tables.split(",") if t]:
        if name not in TARGETS:
            raise SystemExit(f"unknown table {name!r}; one of {', '.join(TARGETS)}")
        print(f"{name}:")
        results[name] = run_table(name, args.router, args.seed, args.stream)
    rows = [r for res in results.values() for r in res["rows"] if "realised" in r]
    summary = {m: {"rows": sum(r["method"] == m for r in rows),
                   "within_tolerance": sum(r["within_tolerance"] for r in rows if r["method"] == m),
                   "mean_abs_relative_error": float(np.mean([abs(r["relative_error"]) for r in rows
                                                             if r["method"] == m]))}
               for m in dict.fromkeys(r["method"] for r in rows)}
    for m, s in summary.items():
        print(f"{m:>18}: within ±10% in {s['within_tolerance']}/{s['rows']}, "
              f"mean |relative error| {s['mean_abs_relative_error']:.3f}")
    (out / "calibration.json").write_text(json.dumps({"seed": args.seed, "tolerance": TOLERANCE, "warmup": WARMUP,
                                                      "tables": results, "summary": summary}, indent=1))
    plot(results, out / "calibration.png")
    print(f"wrote {out / 'calibration.json'} and {out / 'calibration.png'}")


if __name__ == "__main__":
    main()
