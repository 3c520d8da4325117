"""The durable pheromone table: SQLModel tables in the SQL store (SQLite by default, PostgreSQL for many workers).

Every edge update is one atomic ``UPDATE ... SET tau = clamp(tau + (Q·d − tau)·s), visits = visits + w ...``
computed by the database from the row's *current* values, so concurrent writers in any number of
processes serialise on the row and no update is lost (PostgreSQL row locks, SQLite's write lock). A batch takes
its row locks in sorted key order, and a deadlock or a busy database is retried. The decay schedule is driven by
an atomic counter in the meta row: exactly one writer crosses each multiple of ``decay_every`` and decays the
table once. Decisions never read the database: they read the in-process mirror (:class:`PheromoneTable`), which
each batch refreshes from the rows it wrote and :meth:`SQLPheromoneTable.refresh` reloads whole.

Imported lazily (SQLModel is slow to import). The ``agentroute_pheromone*`` tables belong to the store
(:mod:`agentroute.store.tables`), created and versioned with every other table of the database.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Engine, Float, String, bindparam, case, delete, func, inspect, select, tuple_, update
from sqlalchemy.exc import DBAPIError, OperationalError

from agentroute.errors import ConfigError
from agentroute.policies._pheromone_store import (
    EdgeKey,
    EdgeState,
    EdgeUpdate,
    PheromoneParams,
    PheromoneTable,
    keys_of,
    merge_rows,
    parse_snapshot,
)
from agentroute.store.schema import ensure_schema
from agentroute.store.tables import (
    PHEROMONE_EDGES,
    PHEROMONE_EVENTS,
    PHEROMONE_META,
    PheromoneEdgeRow,
    PheromoneEventRow,
    PheromoneMetaRow,
)

log = logging.getLogger("agentroute.pheromone")
_RETRIES = 8


E, M, V = PHEROMONE_EDGES, PHEROMONE_META, PHEROMONE_EVENTS


def _insert(engine: Engine) -> Any:
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


def _retryable(e: BaseException) -> bool:
    text = str(getattr(e, "orig", e)).lower()
    return any(s in text for s in ("deadlock", "database is locked", "could not serialize", "busy"))


def ensure_tables(engine: Engine) -> None:
    """Make sure the store holds the pheromone tables (created with every other table, at the current version)."""
    ensure_schema(engine)


class SQLPheromoneTable(PheromoneTable):
    """A pheromone table stored in SQL, shared by every process that opens the same URL and namespace."""

    durable = True

    def __init__(
        self,
        url: str | None = None,
        *,
        namespace: str = "default",
        params: PheromoneParams | None = None,
        record_events: bool = True,
    ) -> None:
        from agentroute.store.engine import StoreError, get_engine, resolve_url

        self.url = resolve_url(url, hide_password=True)
        try:
            self.engine = get_engine(url)
            ensure_tables(self.engine)
        except (OperationalError, DBAPIError) as e:
            raise StoreError(
                f"cannot open the pheromone table at {self.url}: {str(getattr(e, 'orig', e)).splitlines()[0]}",
                name="url",
                hint="check the URL, or set AGENTROUTE_DATABASE_URL",
            ) from None
        self.record_events = record_events
        stored = self._ensure_meta(namespace, params)
        super().__init__(stored, namespace=namespace)
        self._ins = _insert(self.engine)
        self._update = self._update_stmt()
        self.refresh()

    # ------------------------------------------------------------------ setup

    def _ensure_meta(self, namespace: str, params: PheromoneParams | None) -> PheromoneParams:
        wanted = params or PheromoneParams()
        ins = _insert(self.engine)
        with self.engine.begin() as conn:
            conn.execute(
                ins(M)
                .values(namespace=namespace, params=json.dumps(wanted.as_dict()), created_at=time.time())
                .on_conflict_do_nothing()
            )
            raw = conn.execute(select(M.c.params).where(M.c.namespace == namespace)).scalar_one()
        stored = PheromoneParams(**json.loads(raw)) if raw else wanted
        if params is not None and stored != params:
            diff = {k: (v, getattr(params, k)) for k, v in stored.as_dict().items() if getattr(params, k) != v}
            raise ConfigError(
                f"pheromone namespace {namespace!r} at {self.url} was created with other parameters: "
                + ", ".join(f"{k} stored {a!r} vs given {b!r}" for k, (a, b) in diff.items()),
                name="params",
                hint="open it with params=None to resume with the stored rule, use another namespace, "
                "or clear() it first",
            )
        return stored

    def _update_stmt(self) -> Any:
        pg = self.engine.dialect.name == "postgresql"
        least, greatest = (func.least, func.greatest) if pg else (func.min, func.max)
        p = self.params
        w = bindparam("b_w", type_=Float())
        y = bindparam("b_target", type_=Float())
        base = p.prior_visits + E.c.visits + w
        tau_n = least(p.tau_max, greatest(p.tau_min, E.c.tau + (y - E.c.tau) * (w * greatest(p.rho, 1.0 / base))))
        fast_n = least(p.tau_max, greatest(p.tau_min,
                                           E.c.fast + (y - E.c.fast) * (w * greatest(p.drift_rate, 1.0 / base))))
        values: dict[str, Any] = {
            "tau": tau_n,
            "visits": E.c.visits + w,
            "fast": fast_n,
            "updates": E.c.updates + 1,
            "version": E.c.version + 1,
            "updated_at": bindparam("b_now", type_=Float()),
        }
        if p.drift_threshold is not None:  # the same change detection as PheromoneParams.update, in one statement
            drifted = func.abs(fast_n - tau_n) > p.drift_threshold
            values["tau"] = case((drifted, fast_n), else_=tau_n)
            values["visits"] = case((drifted, least(E.c.visits + w, 1.0 / p.drift_rate)), else_=E.c.visits + w)
            values["resets"] = E.c.resets + case((drifted, 1), else_=0)
        return (
            update(E)
            .where(
                E.c.namespace == self.namespace,
                E.c.task_type == bindparam("b_t", type_=String()),
                E.c.point == bindparam("b_p", type_=String()),
                E.c.prev == bindparam("b_prev", type_=String()),
                E.c.option == bindparam("b_o", type_=String()),
            )
            .values(**values)
        )

    # ------------------------------------------------------------------ writes

    def _retry(self, fn: Any) -> Any:
        for attempt in range(_RETRIES):
            try:
                return fn()
            except (OperationalError, DBAPIError) as e:
                if attempt == _RETRIES - 1 or not _retryable(e):
                    raise
                time.sleep(0.01 * (2**attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    def apply(self, updates: Sequence[EdgeUpdate], *, events: Sequence[Mapping[str, Any]] = ()) -> int:
        """Apply a batch in one transaction (atomic per edge); record ``events``; run the decay schedule."""
        if not updates and not events:
            return 0
        order = sorted(updates, key=lambda u: u.key)  # stable: same-edge updates keep their order
        p = self.params
        ns = self.namespace

        def run() -> tuple[dict[EdgeKey, EdgeState], int]:
            now = time.time()
            out: dict[EdgeKey, EdgeState] = {}
            total = 0
            with self.engine.begin() as conn:
                keys = keys_of(order)
                if keys:
                    rows = [
                        {"namespace": ns, "task_type": k[0], "point": k[1], "prev": k[2], "option": k[3],
                         "tau": p.initial, "visits": 0.0, "updates": 0, "version": 0, "updated_at": now,
                         "fast": p.initial, "resets": 0}
                        for k in keys
                    ]
                    conn.execute(self._ins(E).values(rows).on_conflict_do_nothing())
                if order:  # one executemany, in order (psycopg pipelines it: one round trip per batch)
                    conn.execute(self._update, [
                        {"b_t": u.key[0], "b_p": u.key[1], "b_prev": u.key[2], "b_o": u.key[3], "b_w": u.weight,
                         "b_target": p.q * u.signal, "b_now": now}
                        for u in order
                    ])
                    # read back what this transaction wrote (its row locks are still held: no one else moved them)
                    for r in conn.execute(
                        select(E.c.task_type, E.c.point, E.c.prev, E.c.option, E.c.tau, E.c.visits, E.c.updates,
                               E.c.version, E.c.updated_at, E.c.fast, E.c.resets)
                        .where(E.c.namespace == ns,
                               tuple_(E.c.task_type, E.c.point, E.c.prev, E.c.option).in_(keys))
                    ):
                        out[(r[0], r[1], r[2], r[3])] = EdgeState(float(r[4]), float(r[5]), int(r[6]), int(r[7]),
                                                                  float(r[8]), float(r[9]), int(r[10]))
                if events and self.record_events:
                    conn.execute(V.insert(), [_event_row(ns, ev) for ev in events])
                if order:
                    total = conn.execute(
                        update(M)
                        .where(M.c.namespace == ns)
                        .values(total_updates=M.c.total_updates + len(order))
                        .returning(M.c.total_updates)
                    ).scalar_one()
            return out, int(total)

        states, total = self._retry(run)
        with self._lock:
            changed = [k for k, e in states.items() if e.resets > (self._edges[k].resets if k in self._edges else 0)]
            for k, e in states.items():
                self._set(k, e)
            self.total_updates = max(self.total_updates, total)
        if changed and p.reopen > 0:
            self._reopen_sql(changed)
        if order and p.decay > 0:
            periods = total // p.decay_every - (total - len(order)) // p.decay_every
            if periods > 0:
                self._decay_sql(periods)
        return len(order)

    def _reopen_sql(self, changed: Sequence[EdgeKey]) -> None:
        f = 1.0 - self.params.reopen
        t0 = self.params.initial

        def run() -> None:
            with self.engine.begin() as conn:
                for key in sorted(changed):
                    conn.execute(
                        update(E)
                        .where(E.c.namespace == self.namespace, E.c.task_type == key[0], E.c.point == key[1],
                               E.c.option != key[3])
                        .values(tau=t0 + (E.c.tau - t0) * f, fast=t0 + (E.c.fast - t0) * f, visits=E.c.visits * f,
                                version=E.c.version + 1)
                    )

        self._retry(run)
        self.refresh()

    def _decay_sql(self, periods: int) -> None:
        f = (1.0 - self.params.decay) ** periods
        t0 = self.params.initial

        def run() -> None:
            with self.engine.begin() as conn:
                conn.execute(
                    update(E)
                    .where(E.c.namespace == self.namespace)
                    .values(tau=t0 + (E.c.tau - t0) * f, fast=t0 + (E.c.fast - t0) * f, visits=E.c.visits * f,
                            version=E.c.version + 1)
                )
                conn.execute(update(M).where(M.c.namespace == self.namespace).values(decays=M.c.decays + periods))

        self._retry(run)
        self.refresh()

    def decay_now(self, periods: int = 1) -> None:
        """Apply ``periods`` decay steps to the stored table at once."""
        if self.params.decay <= 0:
            raise ConfigError("decay_now needs a table with decay > 0", name="decay")
        self._decay_sql(periods)

    # ------------------------------------------------------------------ reads

    def refresh(self) -> None:
        """Reload the mirror from the database (picks up what other processes learned)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(E.c.task_type, E.c.point, E.c.prev, E.c.option, E.c.tau, E.c.visits, E.c.updates,
                       E.c.version, E.c.updated_at, E.c.fast, E.c.resets).where(E.c.namespace == self.namespace)
            ).all()
            meta = conn.execute(
                select(M.c.total_updates, M.c.decays).where(M.c.namespace == self.namespace)
            ).first()
        fresh = {
            (r[0], r[1], r[2], r[3]): EdgeState(float(r[4]), float(r[5]), int(r[6]), int(r[7]), float(r[8]),
                                                float(r[9]), int(r[10]))
            for r in rows
        }
        self._store_rows(fresh, replace=True)
        if meta is not None:
            self.total_updates, self.decays = int(meta[0]), int(meta[1])

    def events(self, limit: int = 1000) -> list[dict[str, Any]]:
        """The most recent recorded update events of this namespace, newest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(V).where(V.c.namespace == self.namespace).order_by(V.c.id.desc()).limit(limit)
            ).mappings().all()
        return [dict(r) for r in rows]

    # ------------------------------------------------------------------ admin

    def clear(self) -> None:
        """Delete this namespace's edges, events and meta row (its parameters are forgotten too)."""
        ns = self.namespace
        with self.engine.begin() as conn:
            conn.execute(delete(E).where(E.c.namespace == ns))
            conn.execute(delete(V).where(V.c.namespace == ns))
            conn.execute(delete(M).where(M.c.namespace == ns))
        super().clear()
        self._ensure_meta(ns, self.params)

    def restore(self, snapshot: Mapping[str, Any], *, mode: str = "replace") -> int:
        """Load a snapshot into the database (``replace`` or ``merge``, as :meth:`PheromoneTable.restore`)."""
        rows = parse_snapshot(snapshot)
        if mode not in ("replace", "merge"):
            raise ConfigError(f"restore mode must be 'replace' or 'merge', got {mode!r}", name="mode")
        self.refresh()
        merged = merge_rows(self.edges() if mode == "merge" else {}, rows, self.params)
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(delete(E).where(E.c.namespace == self.namespace))
            if merged:
                conn.execute(
                    E.insert(),
                    [
                        {"namespace": self.namespace, "task_type": k[0], "point": k[1], "prev": k[2],
                         "option": k[3], "tau": e.tau, "visits": e.visits, "updates": e.updates,
                         "version": e.version + 1, "updated_at": now, "fast": e.fast, "resets": e.resets}
                        for k, e in merged.items()
                    ],
                )
        self.refresh()
        return len(rows)

    def close(self) -> None:
        """Nothing to release: the engine is shared per URL (see :mod:`agentroute.store.engine`)."""


def read_snapshot(url: str | None, namespace: str) -> dict[str, Any]:
    """A snapshot (export format) of a stored colony, read without writing anything; DataError when absent."""
    from agentroute.errors import DataError
    from agentroute.policies._pheromone_store import EXPORT_FORMAT, EXPORT_VERSION
    from agentroute.store.engine import StoreError, get_engine, resolve_url

    shown = resolve_url(url, hide_password=True)
    try:
        engine = get_engine(url)
        names = set(inspect(engine).get_table_names())
    except (OperationalError, DBAPIError) as e:
        raise StoreError(f"cannot reach {shown}: {str(getattr(e, 'orig', e)).splitlines()[0]}", name="url") from None
    if M.name not in names:
        raise DataError(f"no pheromone tables in {shown}", name="url",
                        hint="run a PheromonePolicy with store=URL, or `agentroute pheromones import`")
    with engine.connect() as conn:
        meta = conn.execute(select(M.c.params, M.c.total_updates).where(M.c.namespace == namespace)).first()
        if meta is None:
            known = [r[0] for r in conn.execute(select(M.c.namespace)).all()]
            raise DataError(f"no pheromone namespace {namespace!r} in {shown}", name=namespace,
                            hint=f"known: {', '.join(sorted(known)) or 'none'}")
        rows = conn.execute(
            select(E.c.task_type, E.c.point, E.c.prev, E.c.option, E.c.tau, E.c.visits, E.c.updates, E.c.fast,
                   E.c.resets)
            .where(E.c.namespace == namespace)
            .order_by(E.c.task_type, E.c.point, E.c.prev, E.c.option)
        ).all()
    return {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "namespace": namespace,
        "params": json.loads(meta[0]) if meta[0] else {},
        "total_updates": int(meta[1]),
        "edges": [{"task_type": r[0], "point": r[1], "prev": r[2], "option": r[3], "tau": float(r[4]),
                   "visits": float(r[5]), "updates": int(r[6]), "fast": float(r[7]), "resets": int(r[8])}
                  for r in rows],
    }


def _event_row(namespace: str, ev: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "namespace": namespace,
        "ts": float(ev.get("ts", time.time())),
        "task_id": str(ev.get("task_id", "")),
        "point": str(ev.get("point", "")),
        "option": str(ev.get("option", "")),
        "outcome": str(ev.get("outcome", "")),
        "quality": ev.get("quality"),
        "cost_usd": ev.get("cost_usd"),
        "signal": float(ev.get("signal", 0.0)),
        "weights": json.dumps(ev.get("weights", {}), sort_keys=True),
        "reason": str(ev.get("reason", "")),
    }


__all__ = [
    "PheromoneEdgeRow",
    "PheromoneEventRow",
    "PheromoneMetaRow",
    "SQLPheromoneTable",
    "ensure_tables",
    "read_snapshot",
]
