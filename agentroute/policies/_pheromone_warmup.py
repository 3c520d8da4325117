"""Offline warm-up of a colony: a pheromone snapshot built from a routing table or from exported decisions.

A routing table gives full information (every option's outcome on every query), so each edge can start at the
mean deposit signal it would settle at online: ``τ = clamp(Q · mean_w(d))`` with the weighted visit count capped
(``1/ρ`` by default) so that live traffic still moves it. Exported decision records give only the path taken;
they are aggregated the same way, transitions included. The result is a snapshot in the export format, merged
into the live table by the policy. Nothing here touches a database or the serving path.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from agentroute.errors import ConfigError, DataError
from agentroute.policies._pheromone_store import EXPORT_FORMAT, EXPORT_VERSION, EdgeKey
from agentroute.policies._pheromone_worker import PheromoneUpdate

Colony = Any
"""A :class:`~agentroute.policies.pheromone.PheromonePolicy` (not imported: the policy imports this module)."""


def _field(r: Any, name: str, default: Any = None) -> Any:
    if isinstance(r, Mapping):
        return r.get(name, default)
    return getattr(r, name, default)


def _judged(policy: Colony, u: PheromoneUpdate) -> float:
    """The deposit signal the worker would use (0 when the gate says no)."""
    try:
        passed = bool(policy.worker.gate(u))
    except Exception:
        return 0.0
    if not passed:
        return 0.0
    d = float(policy._signal(u))
    return 0.0 if math.isnan(d) else min(1.0, max(0.0, d))


def warm_snapshot(
    policy: Colony,
    source: Any,
    *,
    point: str,
    cost_weight: float,
    cost_scale: float,
    visits_cap: float | None,
) -> dict[str, Any]:
    """A pheromone snapshot (export format) from a routing table or an iterable of decision records."""
    p = policy.params
    cap = visits_cap if visits_cap is not None else (1.0 / p.rho if p.rho > 0 else math.inf)
    if not cap > 0:
        raise ConfigError(f"warm_up: visits_cap must be > 0, got {visits_cap!r}", name="visits_cap")
    sums: dict[EdgeKey, list[float]] = {}

    def add(key: EdgeKey, w: float, d: float) -> None:
        acc = sums.get(key)
        if acc is None:
            acc = sums[key] = [0.0, 0.0]
        acc[0] += w * d
        acc[1] += w

    if hasattr(source, "quality") and hasattr(source, "options"):
        _from_table(policy, source, point, cost_weight, cost_scale, add)
    elif isinstance(source, Iterable) and not isinstance(source, str | bytes | Mapping):
        _from_records(policy, source, cost_weight, cost_scale, add)
    else:
        raise ConfigError(
            f"warm_up: cannot learn from a {type(source).__name__}",
            name="source",
            hint="pass a RoutingTable or a list of decision records",
        )
    edges = []
    for k, (sw, w) in sorted(sums.items()):
        if w <= 0:
            continue
        tau = min(p.tau_max, max(p.tau_min, p.q * sw / w))
        edges.append({"task_type": k[0], "point": k[1], "prev": k[2], "option": k[3], "tau": tau,
                      "visits": min(w, cap), "updates": 0})
    return {"format": EXPORT_FORMAT, "version": EXPORT_VERSION, "namespace": policy.table.namespace,
            "params": p.as_dict(), "edges": edges}


def _from_table(policy: Colony, table: Any, point: str, lam: float, scale: float, add: Any) -> None:
    quality, cost, options = table.quality, table.cost, list(table.options)
    texts, cats, qids = list(table.texts), list(table.categories), list(table.query_ids)
    for i in range(len(qids)):
        w, _ = policy.intent.weights(texts[i], category=cats[i])
        for j, opt in enumerate(options):
            qv = float(quality[i, j])
            if math.isnan(qv):
                continue
            cv = float(cost[i, j])
            u = PheromoneUpdate(str(qids[i]), point, opt, w, qv, None if math.isnan(cv) else cv, "", lam, scale)
            d = _judged(policy, u)
            for t, wt in w.items():
                add((t, point, "", opt), wt, d)


def _from_records(policy: Colony, records: Iterable[Any], lam: float, scale: float, add: Any) -> None:
    last: dict[str, str] = {}
    n = 0
    for r in records:
        n += 1
        task, pt, chosen = _field(r, "task_id"), _field(r, "point"), _field(r, "chosen")
        if not task or not pt or not chosen:
            raise DataError(f"decision record #{n} lacks task_id, point or chosen", name="records")
        prev = last.get(str(task), "")
        last[str(task)] = f"{pt}={chosen}"
        quality = _field(r, "quality")
        if quality is None:
            continue
        ev = _field(r, "evidence") or {}
        w = ev.get("weights") if isinstance(ev, Mapping) else None
        if not w:
            w, _ = policy.intent.weights("")
        cost = _field(r, "cost_usd")
        u = PheromoneUpdate(str(task), str(pt), str(chosen), dict(w), float(quality),
                            None if cost is None else float(cost), prev, lam, scale)
        d = _judged(policy, u)
        for t, wt in dict(w).items():
            add((str(t), str(pt), "", str(chosen)), float(wt), d)
            if prev:
                add((str(t), str(pt), prev, str(chosen)), float(wt), d)


__all__ = ["warm_snapshot"]
