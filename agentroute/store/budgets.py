"""Shared budgets in the store: the SQL of :class:`~agentroute.ledgers.SqlLedger` (a budget row, a row per hold).

Each operation is one transaction. Reserve: a conditional ``UPDATE`` of the budget row (it changes nothing unless
every limit still holds), then the hold's ``INSERT``; when the update is refused, the holds whose lease ran out
are marked ``reclaimed`` (``UPDATE ... RETURNING`` their amounts, which go back to the budget) and the update is
tried once more. Settle: the hold goes ``held -> settled`` (its reservation goes back, its spend is added) or
``reclaimed -> settled`` (only its spend is added); a hold already ``settled`` is a retried settle and changes
nothing. Row locks serialise concurrent writers on PostgreSQL, the database lock on SQLite; holds are always
locked before the budget row, so concurrent transactions cannot deadlock.

Times are the writers' clocks (``time.time_ns()``): workers sharing a budget must keep them roughly in step (well
within one lease).
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine, case, delete, func, select, update
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from agentroute.store.engine import get_engine, upsert
from agentroute.store.schema import ensure_schema
from agentroute.store.tables import BUDGETS, HOLDS

B, H = BUDGETS, HOLDS
_DAY_NS = 86_400 * 10**9
Triple = tuple[int, int, int]
_DIMS = ("usd", "tokens", "steps")


class SqlLedgerStore:
    """One shared budget's rows in the store at ``url`` (the store's engine for it unless ``engine`` is given)."""

    def __init__(self, url: str | None, *, name: str, engine: Engine | None = None) -> None:
        self.engine = engine if engine is not None else get_engine(url)
        ensure_schema(self.engine)
        self.name = name
        with self.engine.begin() as cx:
            cx.execute(upsert(self.engine, B).values(name=name, updated_ns=time.time_ns()).on_conflict_do_nothing())

    @staticmethod
    def outage(e: BaseException) -> bool:
        """True for errors of reaching the database (worth retrying)."""
        if isinstance(e, OperationalError | InterfaceError | PoolTimeout | OSError):
            return True
        return isinstance(e, DBAPIError) and bool(e.connection_invalidated)

    def _fits(self, cx: Any, limits: Triple, amounts: Triple) -> bool:
        conds = [B.c.name == self.name]
        for dim, lim, amt in zip(_DIMS, limits, amounts, strict=True):
            if lim >= 0 and amt > 0:
                conds.append(B.c[f"spent_{dim}"] + B.c[f"reserved_{dim}"] + amt <= lim)
        stmt = update(B).where(*conds).values(
            **{f"reserved_{d}": B.c[f"reserved_{d}"] + a for d, a in zip(_DIMS, amounts, strict=True)},
            updated_ns=time.time_ns())
        return bool(cx.execute(stmt).rowcount == 1)

    def _reclaim(self, cx: Any, *, all_holds: bool = False) -> int:
        now = time.time_ns()
        cond = [H.c.budget == self.name, H.c.state == "held"]
        if not all_holds:
            cond.append(H.c.expires_ns < now)
        rows = cx.execute(update(H).where(*cond).values(state="reclaimed", settled_ns=now)
                          .returning(H.c.usd, H.c.tokens, H.c.steps)).all()
        if rows:
            back = [sum(int(r[i]) for r in rows) for i in range(3)]
            cx.execute(update(B).where(B.c.name == self.name).values(
                **{f"reserved_{d}": B.c[f"reserved_{d}"] - n for d, n in zip(_DIMS, back, strict=True)},
                updated_ns=now))
        cx.execute(delete(H).where(H.c.budget == self.name, H.c.state != "held", H.c.settled_ns < now - _DAY_NS))
        return len(rows)

    def reserve(self, limits: Triple, amounts: Triple, hold: str, owner: str, lease_ns: int, *, retry: bool) -> str:
        """``""`` when reserved (``hold`` then exists), else the first dimension that does not fit."""
        with self.engine.begin() as cx:
            if retry and cx.execute(select(H.c.state).where(H.c.budget == self.name, H.c.hold == hold)).first():
                return ""  # the attempt whose reply was lost went through
            ok = self._fits(cx, limits, amounts)
            if not ok and self._reclaim(cx):
                ok = self._fits(cx, limits, amounts)
            if ok:
                now = time.time_ns()
                cx.execute(H.insert().values(
                    hold=hold, budget=self.name, owner=owner[:200], state="held", usd=amounts[0],
                    tokens=amounts[1], steps=amounts[2], expires_ns=now + lease_ns, created_ns=now, settled_ns=0))
                return ""
        spent, reserved = self.totals()
        for i, dim in enumerate(_DIMS):
            if limits[i] >= 0 and amounts[i] > 0 and spent[i] + reserved[i] + amounts[i] > limits[i]:
                return dim
        return next(d for d, lim, a in zip(_DIMS, limits, amounts, strict=True) if lim >= 0 and a > 0)

    def settle(self, hold: str | None, reserved: Triple, actual: Triple) -> None:
        """Settle ``hold`` once (see the module docstring); without a hold, give back ``reserved`` as is."""
        now = time.time_ns()
        with self.engine.begin() as cx:
            back: Triple | None = reserved if hold is None else None
            count_spend = hold is None
            if hold is not None:
                row = cx.execute(update(H).where(H.c.budget == self.name, H.c.hold == hold, H.c.state == "held")
                                 .values(state="settled", settled_ns=now)
                                 .returning(H.c.usd, H.c.tokens, H.c.steps)).first()
                if row is not None:
                    back, count_spend = (int(row[0]), int(row[1]), int(row[2])), True
                else:
                    late = cx.execute(update(H).where(H.c.budget == self.name, H.c.hold == hold,
                                                      H.c.state == "reclaimed")
                                      .values(state="settled", settled_ns=now)).rowcount
                    count_spend = late == 1
            if back is None and not count_spend:
                return
            values: dict[str, Any] = {"updated_ns": now}
            for i, d in enumerate(_DIMS):
                if back is not None and back[i]:
                    values[f"reserved_{d}"] = B.c[f"reserved_{d}"] - back[i]
                if count_spend and actual[i]:
                    values[f"spent_{d}"] = B.c[f"spent_{d}"] + actual[i]
            cx.execute(update(B).where(B.c.name == self.name).values(**values))

    def renew(self, holds: list[str], lease_ns: int) -> list[str]:
        """Extend the leases of ``holds``; return those no longer held (their lease lapsed and was reclaimed)."""
        now = time.time_ns()
        with self.engine.begin() as cx:
            mine = (H.c.budget == self.name, H.c.hold.in_(holds))
            cx.execute(update(H).where(*mine, H.c.state == "held").values(expires_ns=now + lease_ns))
            lost = cx.execute(select(H.c.hold).where(*mine, H.c.state == "reclaimed")).scalars().all()
        return list(lost)

    def totals(self) -> tuple[Triple, Triple]:
        """``(spent, reserved)`` as integers (USD in 1e-10 units)."""
        with self.engine.connect() as cx:
            r = cx.execute(select(B).where(B.c.name == self.name)).one()
        return ((int(r.spent_usd), int(r.spent_tokens), int(r.spent_steps)),
                (int(r.reserved_usd), int(r.reserved_tokens), int(r.reserved_steps)))

    def holds(self) -> list[dict[str, Any]]:
        """The holds not settled yet (``held``, or ``reclaimed`` and waiting for their late settle)."""
        with self.engine.connect() as cx:
            rows = cx.execute(select(H.c.hold, H.c.owner, H.c.state, H.c.usd, H.c.tokens, H.c.steps, H.c.expires_ns)
                              .where(H.c.budget == self.name, H.c.state != "settled").order_by(H.c.hold)).all()
        return [dict(r._mapping) for r in rows]

    def reclaim_now(self, all_holds: bool) -> int:
        """Reclaim lapsed holds (or every held hold) now; return how many."""
        with self.engine.begin() as cx:
            return self._reclaim(cx, all_holds=all_holds)

    def reset(self, spend: bool) -> None:
        """Drop every hold (and with ``spend``, zero the spend)."""
        with self.engine.begin() as cx:
            cx.execute(delete(H).where(H.c.budget == self.name))
            values: dict[str, Any] = {f"reserved_{d}": 0 for d in _DIMS}
            if spend:
                values.update({f"spent_{d}": 0 for d in _DIMS})
            cx.execute(update(B).where(B.c.name == self.name).values(**values, updated_ns=time.time_ns()))


def budget_names(engine: Engine) -> list[tuple[str, int]]:
    """Every shared budget in the store with its number of live holds (for ``agentroute ledgers show``)."""
    ensure_schema(engine, create=False)
    live = func.sum(case((H.c.state == "held", 1), else_=0))
    with engine.connect() as cx:
        names = [r[0] for r in cx.execute(select(B.c.name).order_by(B.c.name))]
        held = dict(cx.execute(select(H.c.budget, live).group_by(H.c.budget)).all())
    return [(n, int(held.get(n) or 0)) for n in names]


__all__ = ["SqlLedgerStore", "budget_names"]
