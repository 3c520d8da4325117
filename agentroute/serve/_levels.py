"""The ledgers behind the tenants file: one per tenant, team and key, chained key → team → tenant.

Each level of :mod:`agentroute.serve._tenants` gets one :class:`~agentroute.budget.Ledger` for the life of the
server, on a backend chosen by ``--ledger``: in this process (:class:`~agentroute.budget.MemoryBackend`, one worker
only), or :class:`~agentroute.ledgers.RedisLedger` / :class:`~agentroute.ledgers.SqlLedger` so that every worker
draws on the same totals. A key's ledger has its team and tenant as parents, and a request's task ledger has the
key's whole chain as parents, so every reservation of every step checks every level: nothing is held anywhere
unless it fits everywhere (the :meth:`Ledger.reserve <agentroute.budget.Ledger.reserve>` rule), and policies read
the smallest remaining budget of all levels in ``obs.budget.remaining``.

This module never decides who may call what (that is the app's job); it only answers "what is left" and builds
the budget a request runs on.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from agentroute.budget import ZERO, Budget, Ledger, LedgerBackend, MemoryBackend, SharedBudget, Spend
from agentroute.errors import ConfigError
from agentroute.serve._tenants import KeyEntry, Level, Tenants


class KeyBudget(SharedBudget):
    """The budget one request runs on: the key's ledger (with its team and tenant as parents) and a per-task limit.

    It is a :class:`SharedBudget` whose ledger already exists, so ``app.arun(..., budget=KeyBudget(...))`` builds
    the task's ledger with every level of the chain as a parent.
    """

    def __init__(self, ledger: Ledger, per_task: Budget) -> None:  # the ledger is shared: do not build another
        self.limits = ledger.limits
        self.per_task = per_task
        self.name = ledger.name
        self.ledger = ledger


class Levels:
    """Every level's ledger, on one backend kind (``url``: ``None`` = memory, ``redis://``, or an SQL URL)."""

    def __init__(self, tenants: Tenants, url: str | None = None, *, prefix: str = "serve") -> None:
        self.tenants = tenants
        self.url = url
        self.prefix = prefix
        self._client: Any = None
        self._engine: Any = None
        self.ledgers: dict[str, Ledger] = {}
        # Parents first, so a key's ledger can name its team and tenant ledgers.
        order = {"tenant": 0, "team": 1, "key": 2}
        parents_of: dict[str, tuple[str, ...]] = {}
        for entry in tenants.entries():
            paths = [lv.path for lv in entry.levels]
            for i, p in enumerate(paths):
                parents_of[p] = tuple(paths[i + 1:])
        for level in sorted(tenants.levels.values(), key=lambda lv: order[lv.kind]):
            parents = tuple(self.ledgers[p] for p in parents_of.get(level.path, self._implied_parents(level)))
            self.ledgers[level.path] = Ledger(level.budget, parents=parents, backend=self._backend(level),
                                              name=level.path, track_time=False)

    def _implied_parents(self, level: Level) -> tuple[str, ...]:
        # A team with no keys still belongs to its tenant.
        if level.kind == "team":
            return (f"tenant:{level.path.split(':', 1)[1].split('/', 1)[0]}",)
        return ()

    @property
    def kind(self) -> str:
        """``memory``, ``redis`` or ``sql``."""
        if self.url is None:
            return "memory"
        return "redis" if self.url.startswith(("redis://", "rediss://", "unix://")) else "sql"

    def _backend(self, level: Level) -> LedgerBackend:
        name = f"{self.prefix}/{level.path}"
        if self.url is None:
            return MemoryBackend()
        from agentroute.ledgers import RedisLedger, SqlLedger

        if self.kind == "redis":
            if self._client is None:
                try:
                    import redis
                except ImportError:  # pragma: no cover - the redis extra
                    raise ConfigError("--ledger redis:// needs the redis package",
                                      hint="pip install 'agentroute[redis]'") from None
                self._client = redis.Redis.from_url(self.url)
            return RedisLedger(self.url, name=name, client=self._client)
        if self._engine is None:
            import sqlalchemy as sa

            try:
                self._engine = sa.create_engine(self.url, pool_pre_ping=True, pool_size=20, max_overflow=20)
            except Exception as e:  # an unknown dialect or driver: a user error
                raise ConfigError(f"--ledger {self.url!r}: {e}", name="--ledger",
                                  hint="use redis://HOST:PORT/DB or postgresql+psycopg://USER@HOST/DB") from None
        return SqlLedger(self.url, name=name, engine=self._engine)

    # -- per request ------------------------------------------------------------------------------------------
    def budget_for(self, entry: KeyEntry, per_task: Budget) -> KeyBudget:
        """The budget a request of ``entry`` runs on, with ``per_task`` as the task's own limit."""
        return KeyBudget(self.ledgers[entry.levels[0].path], per_task)

    def exhausted(self, entry: KeyEntry) -> str | None:
        """A dimension on which some level has nothing left and nothing held that could come back, else ``None``."""
        for level in entry.levels:
            spent, reserved = self.ledgers[level.path].backend.totals()
            lim = level.budget
            if lim.usd is not None and lim.usd - spent.known_usd <= 0 and not reserved.known_usd:
                return "usd"
            if lim.tokens is not None and lim.tokens - spent.tokens <= 0 and not reserved.tokens:
                return "tokens"
            if lim.steps is not None and lim.steps - spent.steps <= 0 and not reserved.steps:
                return "steps"
        return None

    def usage(self, entry: KeyEntry) -> list[dict[str, Any]]:
        """Limits, spent, reserved and remaining of each level of ``entry``, key first."""
        return [self.level_usage(lv) for lv in entry.levels]

    def level_usage(self, level: Level) -> dict[str, Any]:
        """One level's totals as plain JSON values."""
        spent, reserved = self.ledgers[level.path].backend.totals()
        return {"level": level.kind, "name": level.name, "limits": _limits(level.budget),
                "per_task": _limits(level.per_task), "spent": _amounts(spent), "reserved": _amounts(reserved),
                "remaining": _remaining(level.budget, spent, reserved)}

    def overspent(self) -> list[str]:
        """Paths of the levels whose spend is past their limit (the server's guarantee says: never)."""
        out = []
        for path, ledger in self.ledgers.items():
            spent, _ = ledger.backend.totals()
            lim = ledger.limits
            if ((lim.usd is not None and spent.known_usd > lim.usd)
                    or (lim.tokens is not None and spent.tokens > lim.tokens)
                    or (lim.steps is not None and spent.steps > lim.steps)):
                out.append(path)
        return out

    def close(self) -> None:
        """Close the shared client or engine."""
        if self._client is not None:
            self._client.close()
        if self._engine is not None:
            self._engine.dispose()


def _limits(b: Budget) -> dict[str, Any]:
    return {k: v for k, v in b.as_dict().items() if v is not None}


def _amounts(s: Spend) -> dict[str, Any]:
    out: dict[str, Any] = {"usd": _usd(s.known_usd), "tokens": s.tokens, "steps": s.steps}
    if s.unknown_usd:  # parts of unknown price: what is known is shown, never read as 0
        out["unknown_usd_parts"] = s.unknown_usd
    return out


def _usd(d: Decimal) -> str:
    return f"{d:f}"


def _remaining(lim: Budget, spent: Spend, reserved: Spend) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if lim.usd is not None:
        left: Decimal = lim.usd - spent.known_usd - reserved.known_usd
        out["usd"] = _usd(max(left, ZERO))
    if lim.tokens is not None:
        out["tokens"] = max(0, lim.tokens - spent.tokens - reserved.tokens)
    if lim.steps is not None:
        out["steps"] = max(0, lim.steps - spent.steps - reserved.steps)
    return out


__all__ = ["KeyBudget", "Levels"]
