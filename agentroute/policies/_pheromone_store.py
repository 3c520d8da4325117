"""The pheromone table: one level τ per (task type, routing point, previous choice, option), and its update rule.

This module owns the *learning arithmetic* of the colony and the in-process table. The arithmetic is the
Ant-Colony-System form of the max–min ant system, applied edge by edge along the path a task took::

    τ ← clamp((1 − s)·τ + s·Q·d, τ_min, τ_max),   s = w_t · max(ρ, 1 / (n0 + n + w_t))

where ``d`` in [0, 1] is the deposit signal of the outcome (0 for an outcome that failed the quality gate, so the
edge only evaporates), ``w_t`` the task-type weight of the query, and ``n`` the edge's weighted visit count. The
``1 / (n0 + n)`` warm-start term averages the first visits of a new edge (with τ0 as ``n0`` pseudo-visits) instead of
forgetting them at rate ρ; after ``1/ρ`` visits the edge forgets at the constant rate ρ, which is what lets the
colony follow drift. Each edge also keeps a fast level (rate ``drift_rate``): when it parts from τ by more than
``drift_threshold`` the option has changed, and the edge jumps to the fast level with its visit count restarted, so
a small ρ (precise levels in a stable world) does not make the colony slow to notice a change. A decay schedule
pulls every edge back towards τ0 every ``decay_every`` applied updates, so stale traffic cannot dominate.

The same arithmetic runs in the SQL table (``_pheromone_sql``) as single atomic ``UPDATE`` statements, so many
processes can learn together without losing an update. Reads (``level``) never touch a database: decisions read
the in-process mirror. This module must stay import-light (no SQLAlchemy, no numpy): the policy imports it.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from agentroute.errors import ConfigError, DataError

EdgeKey = tuple[str, str, str, str]
"""``(task_type, point, prev, option)``; ``prev`` is ``""`` for the option itself, ``"<point>=<choice>"`` for the
transition from the previous decision of the same task."""

EXPORT_FORMAT = "agentroute.pheromones"
EXPORT_VERSION = 1
MAX_EDGES = 5_000_000
"""The most edges a snapshot may hold (a bound on untrusted input, far above a real colony)."""
MAX_KEY_CHARS = 1_000
"""The longest task type, point, previous choice or option name a snapshot may hold."""
MAX_COUNT = 2**53
"""The largest update or reset count read from a snapshot (exact as a float, fits every database's integer)."""
MAX_VISITS = 1e15


def _check_unit(name: str, value: float, *, lo: float, hi: float, open_lo: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"pheromone {name} must be a number, got {type(value).__name__}", name=name)
    try:
        v = float(value)
    except OverflowError:
        raise ConfigError(f"pheromone {name} is too large", name=name) from None
    bad = math.isnan(v) or v > hi or (v <= lo if open_lo else v < lo)
    if bad:
        bound = f"({lo}, {hi}]" if open_lo else f"[{lo}, {hi}]"
        raise ConfigError(f"pheromone {name}={value!r} is out of range", name=name, hint=f"use a value in {bound}")
    return v


@dataclass(frozen=True, slots=True)
class PheromoneParams:
    """The parameters of the update rule, shared by every process that writes one table.

    Defaults were tuned on prequential replays of the RouterBench stream (see ``docs/pheromone.md``).
    """

    rho: float = 0.02
    """Evaporation ρ in [0, 1]: the constant forgetting rate of an edge once it has ``1/ρ`` visits (0 = never
    forget: the level is the running mean of the deposits)."""
    q: float = 1.0
    """Deposit scale Q > 0: an edge settles at ``Q · E[d]`` (clamped), so with ``tau_max = 1`` keep ``Q = 1``."""
    tau_min: float = 0.01
    """Lower bound τ_min > 0 (max–min ant system): no option ever starves."""
    tau_max: float = 1.0
    """Upper bound τ_max > τ_min."""
    tau0: float | None = None
    """Level of an edge never visited; ``None`` = ``tau_max`` (optimistic, so every option is tried early)."""
    prior_visits: float = 1.0
    """How many visits τ0 counts for on a new edge (> 0): the first deposits are averaged with τ0 as if it had been
    seen ``prior_visits`` times, so a larger value keeps new edges optimistic (explored) for longer."""
    drift_threshold: float | None = 0.3
    """Change detection per edge: each edge also keeps a *fast* level (rate ``drift_rate``); when the two differ by
    more than this, the edge jumps to the fast level and its visit count restarts at ``1/drift_rate``, so a changed
    option is re-learnt in tens of visits instead of ``1/ρ``. ``None`` switches it off."""
    drift_rate: float = 0.1
    """Rate of the fast level in (0, 1] (its memory is about ``1/drift_rate`` visits)."""
    reopen: float = 0.5
    """When change detection fires on an edge, every *other* option at that routing point (same task type) moves
    this share in [0, 1] back towards τ0, visit count included: a change in one option is a hint that the others
    may have changed too, so the colony re-explores the point. 0 = only the changed edge restarts."""
    decay: float = 0.0
    """Decay schedule: the share in [0, 1) of each edge's distance to τ0 (and of its visit count) removed every
    ``decay_every`` applied updates. 0 = off; 0.02–0.1 for traffic that drifts."""
    decay_every: int = 200
    """Applied updates between two decay steps (counted over the whole table, all processes together)."""

    def __post_init__(self) -> None:
        _check_unit("rho", self.rho, lo=0.0, hi=1.0)
        _check_unit("q", self.q, lo=0.0, hi=1e6, open_lo=True)
        _check_unit("tau_min", self.tau_min, lo=0.0, hi=1e6, open_lo=True)
        _check_unit("tau_max", self.tau_max, lo=0.0, hi=1e6, open_lo=True)
        if self.tau_max <= self.tau_min:
            raise ConfigError(
                f"pheromone tau_max={self.tau_max} must be above tau_min={self.tau_min}",
                name="tau_max",
                hint="e.g. tau_min=0.01, tau_max=1.0",
            )
        if self.tau0 is not None:
            _check_unit("tau0", self.tau0, lo=self.tau_min, hi=self.tau_max)
        _check_unit("prior_visits", self.prior_visits, lo=0.0, hi=1e6, open_lo=True)
        if self.drift_threshold is not None:
            _check_unit("drift_threshold", self.drift_threshold, lo=0.0, hi=1e6, open_lo=True)
        _check_unit("drift_rate", self.drift_rate, lo=0.0, hi=1.0, open_lo=True)
        _check_unit("reopen", self.reopen, lo=0.0, hi=1.0)
        _check_unit("decay", self.decay, lo=0.0, hi=0.999999)
        if isinstance(self.decay_every, bool) or not isinstance(self.decay_every, int) or self.decay_every < 1:
            raise ConfigError(
                f"pheromone decay_every={self.decay_every!r} must be a whole number >= 1", name="decay_every"
            )

    @property
    def initial(self) -> float:
        """τ0: the level of an unvisited edge."""
        return self.tau_max if self.tau0 is None else float(self.tau0)

    def step(self, visits: float, weight: float) -> float:
        """The step size ``s`` of one update of weight ``weight`` on an edge with ``visits`` visits."""
        return weight * max(self.rho, 1.0 / (self.prior_visits + visits + weight))

    def update(self, e: EdgeState, weight: float, signal: float) -> tuple[float, float, float, bool]:
        """``(tau, visits, fast, reset)`` of an edge after one update (see the module docstring)."""
        y = self.q * signal
        base = self.prior_visits + e.visits + weight
        lo, hi = self.tau_min, self.tau_max
        tau = min(hi, max(lo, e.tau + (y - e.tau) * weight * max(self.rho, 1.0 / base)))
        fast = min(hi, max(lo, e.fast + (y - e.fast) * weight * max(self.drift_rate, 1.0 / base)))
        if self.drift_threshold is not None and abs(fast - tau) > self.drift_threshold:
            return fast, min(e.visits + weight, 1.0 / self.drift_rate), fast, True
        return tau, e.visits + weight, fast, False

    def as_dict(self) -> dict[str, Any]:
        """Plain values for exports and spans."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class EdgeUpdate:
    """One edge to move: ``weight`` = the task type's weight, ``signal`` = the deposit signal in [0, 1]."""

    key: EdgeKey
    weight: float
    signal: float


@dataclass(slots=True)
class EdgeState:
    """What the table knows of one edge: level, weighted visits, counters, and the fast level of change detection."""

    tau: float
    visits: float = 0.0
    updates: int = 0
    version: int = 0
    updated_at: float = 0.0
    fast: float = math.nan
    """The fast level (NaN on creation means: the same as ``tau``)."""
    resets: int = 0
    """How many times change detection restarted this edge."""

    def __post_init__(self) -> None:
        if math.isnan(self.fast):
            self.fast = self.tau


class PheromoneTable:
    """The in-process pheromone table (also the read mirror of the SQL table).

    ``level`` is the read path of every decision: two dict look-ups, no lock, no I/O. ``apply`` moves a batch of
    edges under a lock and runs the decay schedule. Thread-safe: one writer lock, lock-free readers.
    """

    durable = False

    def __init__(self, params: PheromoneParams | None = None, *, namespace: str = "default") -> None:
        if not isinstance(namespace, str) or not namespace:
            raise ConfigError("pheromone namespace must be a non-empty string", name="namespace")
        self.params = params or PheromoneParams()
        self.namespace = namespace
        self._lock = threading.Lock()
        self._levels: dict[tuple[str, str, str], dict[str, float]] = {}
        self._bonus: dict[tuple[str, str, str], dict[str, float]] = {}
        self._edges: dict[EdgeKey, EdgeState] = {}
        self.total_updates = 0
        self.decays = 0
        self.version = 0
        """Bumped by every write to the levels: readers may cache what they derived from them until it moves."""

    # ------------------------------------------------------------------ reads (hot path)

    def levels(self, task_type: str, point: str, prev: str = "") -> Mapping[str, float] | None:
        """Levels of the options at ``point`` (after ``prev``) for ``task_type``; ``None`` when none was visited."""
        return self._levels.get((task_type, point, prev))

    def bonus(self, task_type: str, point: str, prev: str = "") -> Mapping[str, float] | None:
        """``1/√(1 + visits)`` of the options at ``point`` (after ``prev``) for ``task_type`` (1 = never visited)."""
        return self._bonus.get((task_type, point, prev))

    def level(self, key: EdgeKey) -> float:
        """τ of one edge (τ0 when never visited)."""
        lv = self._levels.get((key[0], key[1], key[2]))
        if lv is None:
            return self.params.initial
        return lv.get(key[3], self.params.initial)

    def edges(self) -> dict[EdgeKey, EdgeState]:
        """A copy of every edge's state."""
        with self._lock:
            return {k: EdgeState(e.tau, e.visits, e.updates, e.version, e.updated_at, e.fast, e.resets)
                    for k, e in self._edges.items()}

    def task_types(self) -> list[str]:
        """Task types that have at least one edge."""
        return sorted({k[0] for k in list(self._edges)})

    # ------------------------------------------------------------------ writes

    def _set(self, key: EdgeKey, state: EdgeState) -> None:
        self._edges[key] = state
        group = (key[0], key[1], key[2])
        lv = self._levels.get(group)
        if lv is None:
            lv = self._levels[group] = {}
            self._bonus[group] = {}
        lv[key[3]] = state.tau
        self._bonus[group][key[3]] = 1.0 / math.sqrt(1.0 + max(state.visits, 0.0))
        self.version += 1

    def apply(self, updates: Sequence[EdgeUpdate], *, events: Sequence[Mapping[str, Any]] = ()) -> int:
        """Apply a batch of edge updates (in order); return how many were applied. ``events`` are recorded."""
        p = self.params
        now = time.time()
        with self._lock:
            changed: list[EdgeKey] = []
            for u in updates:
                e = self._edges.get(u.key)
                if e is None:
                    e = EdgeState(p.initial)
                tau, visits, fast, reset = p.update(e, u.weight, u.signal)
                self._set(u.key, EdgeState(tau, visits, e.updates + 1, e.version + 1, now, fast, e.resets + reset))
                if reset and u.key not in changed:  # once per batch, as the SQL table does
                    changed.append(u.key)
            if changed and p.reopen > 0:
                self._reopen_locked(changed)
            self._count(len(updates))
        self._record(events)
        return len(updates)

    def _count(self, n: int) -> None:
        """Advance the update counter and run the decay schedule (caller holds the lock)."""
        before = self.total_updates
        self.total_updates += n
        periods = self.total_updates // self.params.decay_every - before // self.params.decay_every
        if periods > 0 and self.params.decay > 0:
            self._decay_locked(periods)

    def _reopen_locked(self, changed: Sequence[EdgeKey]) -> None:
        """Pull the other options of each changed edge's point (and task type) back towards τ0."""
        r = self.params.reopen
        t0 = self.params.initial
        for key in changed:
            for k, e in list(self._edges.items()):
                if k[0] == key[0] and k[1] == key[1] and k[3] != key[3]:
                    self._set(k, EdgeState(t0 + (e.tau - t0) * (1 - r), e.visits * (1 - r), e.updates,
                                           e.version + 1, e.updated_at, t0 + (e.fast - t0) * (1 - r), e.resets))

    def _decay_locked(self, periods: int) -> None:
        f = (1.0 - self.params.decay) ** periods
        t0 = self.params.initial
        for k, e in list(self._edges.items()):
            self._set(k, EdgeState(t0 + (e.tau - t0) * f, e.visits * f, e.updates, e.version + 1, e.updated_at,
                                   t0 + (e.fast - t0) * f, e.resets))
        self.decays += periods

    def decay_now(self, periods: int = 1) -> None:
        """Apply ``periods`` decay steps at once (e.g. when a drift is known to have happened)."""
        if self.params.decay <= 0:
            raise ConfigError("decay_now needs a table with decay > 0", name="decay")
        with self._lock:
            self._decay_locked(periods)

    def _record(self, events: Sequence[Mapping[str, Any]]) -> None:
        """Keep update events (the SQL table stores them; in process they go to the worker's log only)."""

    def refresh(self) -> None:
        """Reload from the backing store (no-op in process)."""

    def close(self) -> None:
        """Release resources (no-op in process)."""

    def clear(self) -> None:
        """Forget every edge of this namespace."""
        with self._lock:
            self._levels = {}
            self._bonus = {}
            self._edges = {}
            self.version += 1
            self.total_updates = 0
            self.decays = 0

    # ------------------------------------------------------------------ snapshot / restore

    def export(self) -> dict[str, Any]:
        """A JSON-safe snapshot: format, version, namespace, params, counters and every edge."""
        edges = [
            {
                "task_type": k[0],
                "point": k[1],
                "prev": k[2],
                "option": k[3],
                "tau": e.tau,
                "visits": e.visits,
                "updates": e.updates,
                "fast": e.fast,
                "resets": e.resets,
            }
            for k, e in sorted(self.edges().items())
        ]
        return {
            "format": EXPORT_FORMAT,
            "version": EXPORT_VERSION,
            "namespace": self.namespace,
            "params": self.params.as_dict(),
            "total_updates": self.total_updates,
            "edges": edges,
        }

    def restore(self, snapshot: Mapping[str, Any], *, mode: str = "replace") -> int:
        """Load a snapshot made by :meth:`export`; ``mode`` = ``replace`` (drop what is here) or ``merge``.

        ``merge`` keeps edges only here, and for an edge in both takes the visit-weighted mean level and the
        summed visits. Returns the number of edges loaded.
        """
        rows = parse_snapshot(snapshot)
        if mode not in ("replace", "merge"):
            raise ConfigError(f"restore mode must be 'replace' or 'merge', got {mode!r}", name="mode")
        merged = merge_rows(self.edges() if mode == "merge" else {}, rows, self.params)
        self._store_rows(merged, replace=True)
        return len(rows)

    def _store_rows(self, rows: Mapping[EdgeKey, EdgeState], *, replace: bool) -> None:
        with self._lock:
            if replace:
                self._levels = {}
                self._bonus = {}
                self._edges = {}
                self.version += 1
            for k, e in rows.items():
                self._set(k, e)


def parse_snapshot(snapshot: Mapping[str, Any], *, source: str = "pheromone snapshot") -> dict[EdgeKey, EdgeState]:
    """Validate an exported snapshot and return its edges.

    Untrusted input: anything wrong raises :class:`DataError` naming ``source`` and the field (at most
    :data:`MAX_EDGES` edges, names of at most :data:`MAX_KEY_CHARS` characters, finite levels in ``(0, 1e6]``,
    visits in ``[0, 1e15]``, counts in ``[0, 2**53]``).
    """
    if not isinstance(snapshot, Mapping) or snapshot.get("format") != EXPORT_FORMAT:
        raise DataError(
            f"{source}: not a pheromone snapshot (its 'format' is not 'agentroute.pheromones')",
            name="format",
            hint="make one with `agentroute pheromones export`",
        )
    if snapshot.get("version") != EXPORT_VERSION:
        raise DataError(
            f"{source}: pheromone snapshot version {str(snapshot.get('version'))[:40]!r} is not supported (this "
            f"build reads {EXPORT_VERSION})",
            name="version",
        )
    out: dict[EdgeKey, EdgeState] = {}
    edges = snapshot.get("edges")
    if not isinstance(edges, list):
        raise DataError(f"{source}: pheromone snapshot has no 'edges' list", name="edges")
    if len(edges) > MAX_EDGES:
        raise DataError(f"{source}: {len(edges)} edges, over the limit of {MAX_EDGES}", name="edges")
    for i, r in enumerate(edges):
        where = f"edges[{i}]"
        if not isinstance(r, Mapping):
            raise DataError(f"{source}: {where} is not an object", name=where)
        key = tuple(_name(r, f, source, where, required=f != "prev") for f in ("task_type", "point", "prev", "option"))
        tau = _number(r, "tau", source, where, None, lo=0.0, hi=1e6, open_lo=True)
        visits = _number(r, "visits", source, where, 0.0, lo=0.0, hi=MAX_VISITS)
        updates = int(_number(r, "updates", source, where, 0, lo=0.0, hi=MAX_COUNT, whole=True))
        resets = int(_number(r, "resets", source, where, 0, lo=0.0, hi=MAX_COUNT, whole=True))
        fast = _number(r, "fast", source, where, tau, lo=0.0, hi=1e6, open_lo=True)
        out[(key[0], key[1], key[2], key[3])] = EdgeState(tau, visits, updates, fast=fast, resets=resets)
    return out


def _name(r: Mapping[str, Any], field: str, source: str, where: str, *, required: bool) -> str:
    v = r.get(field, None if required else "")
    if not isinstance(v, str) or (required and not v) or len(v) > MAX_KEY_CHARS:
        raise DataError(f"{source}: {where}.{field} must be a non-empty name of at most {MAX_KEY_CHARS} characters"
                        if required else f"{source}: {where}.{field} must be a name of at most {MAX_KEY_CHARS} "
                        "characters", name=f"{where}.{field}")
    return v


def _number(r: Mapping[str, Any], field: str, source: str, where: str, default: Any, *, lo: float, hi: float,
            open_lo: bool = False, whole: bool = False) -> float:
    v = r.get(field, default)
    ok = not isinstance(v, bool) and isinstance(v, int | float)
    if ok:
        try:
            f = float(v)
        except OverflowError:
            ok = False
        else:
            ok = math.isfinite(f) and (f > lo if open_lo else f >= lo) and f <= hi and (not whole or f.is_integer())
    if not ok:
        kind = "a whole number" if whole else "a number"
        raise DataError(f"{source}: {where}.{field} must be {kind} in {'(' if open_lo else '['}{lo:g}, {hi:g}], "
                        f"not {str(v)[:40]}", name=f"{where}.{field}")
    return f


def merge_rows(
    here: Mapping[EdgeKey, EdgeState], incoming: Mapping[EdgeKey, EdgeState], params: PheromoneParams
) -> dict[EdgeKey, EdgeState]:
    """Visit-weighted merge of two edge sets, clamped to the table's bounds."""
    out = dict(here)
    for k, e in incoming.items():
        old = out.get(k)
        if old is None:
            tau, visits, updates, fast = e.tau, e.visits, e.updates, e.fast
        else:
            visits = old.visits + e.visits
            tau = (old.tau * old.visits + e.tau * e.visits) / visits if visits > 0 else (old.tau + e.tau) / 2
            fast = (old.fast * old.visits + e.fast * e.visits) / visits if visits > 0 else (old.fast + e.fast) / 2
            updates = old.updates + e.updates
        lo, hi = params.tau_min, params.tau_max
        out[k] = EdgeState(min(hi, max(lo, tau)), visits, updates, fast=min(hi, max(lo, fast)))
    return out


def edge_updates(
    weights: Mapping[str, float], point: str, prev: str, option: str, signal: float, *, min_weight: float = 1e-3
) -> list[EdgeUpdate]:
    """The edge updates of one decision: its option edge and (after a previous decision) its transition edge."""
    out: list[EdgeUpdate] = []
    for t, w in weights.items():
        if w < min_weight:
            continue
        out.append(EdgeUpdate((t, point, "", option), w, signal))
        if prev:
            out.append(EdgeUpdate((t, point, prev, option), w, signal))
    return out


def keys_of(updates: Iterable[EdgeUpdate]) -> list[EdgeKey]:
    """Distinct edge keys of a batch, sorted (the lock order that keeps concurrent writers deadlock-free)."""
    return sorted({u.key for u in updates})


__all__ = [
    "EXPORT_FORMAT",
    "EXPORT_VERSION",
    "EdgeKey",
    "EdgeState",
    "EdgeUpdate",
    "PheromoneParams",
    "PheromoneTable",
    "edge_updates",
    "keys_of",
    "merge_rows",
    "parse_snapshot",
]
