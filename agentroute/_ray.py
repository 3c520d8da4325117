"""Runs a batch of tasks on Ray workers: ``app.batch(inputs, budget=team, backend="ray", factory="pkg.mod:app")``.

This module owns what crosses the process boundary. A compiled :class:`~agentroute.runtime.App` holds locks, a
LangGraph graph and its hooks' connections, so it never travels: each Ray worker (an actor) rebuilds it once from
``factory`` (``"module:attr"`` naming an App or a function that returns one, or such a function itself) and so opens
its own connections to the trace store the factory names. The budget travels as a recipe: a per-task
:class:`~agentroute.budget.Budget` as it is, a :class:`~agentroute.budget.SharedBudget` as its limits plus the URL
and name of its Redis or SQL ledger, which each worker reopens, so every worker draws on the one budget with the
same atomic reservations as threads in one process. A shared budget kept in this process's memory would become one
budget per worker, so it is refused (:class:`~agentroute.errors.ConfigError`), as is an in-memory SQLite ledger.

Tasks go out in chunks of ``concurrency`` to whichever worker is free and come back as one
:class:`~agentroute.records.RunResult` per input, in input order. It must never import the runtime (the runtime
imports it), and it imports Ray lazily: without the ``ray`` extra, ``backend="ray"`` is a one-line ConfigError.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from agentroute.budget import Budget, SharedBudget
from agentroute.errors import ConfigError
from agentroute.records import RunResult

_FACTORY_HINT = "pass factory='module:attr' naming the App (or a function that returns one) so each worker builds it"
_built: dict[str, tuple[Any, Any]] = {}
"""In a worker: the App and budget built for each (factory, budget) recipe, so a worker builds them once."""


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        from agentroute._cli_util import INSTALL_HINT

        raise ConfigError("backend='ray' needs the 'ray' extra (ray is not installed)",
                          name="backend", hint=INSTALL_HINT.format(extra="ray")) from None
    return ray


def budget_recipe(budget: Budget | SharedBudget | None) -> tuple[Any, ...]:
    """What a worker needs to open the same budget: ``("task", budget)`` or the shared ledger's kind, URL, name."""
    if budget is None or isinstance(budget, Budget):
        return ("task", budget)
    if not isinstance(budget, SharedBudget):
        raise ConfigError(f"budget must be a Budget or SharedBudget, got {type(budget).__name__}", name="budget")
    backend: Any = budget.ledger.backend  # a RedisLedger or SqlLedger once kind and url say so
    kind = getattr(backend, "kind", "memory")
    url = getattr(backend, "url", None)
    if kind not in ("redis", "sql") or not url:
        raise ConfigError(f"SharedBudget {budget.name!r} is kept in this process: on Ray workers it would become "
                          "one budget per worker", name="budget",
                          hint="give it backend=RedisLedger(url, name=...) or SqlLedger(url, name=...)")
    if kind == "sql" and url.startswith("sqlite") and (url.rstrip("/") == "sqlite:" or ":memory:" in url):
        raise ConfigError(f"SharedBudget {budget.name!r} is in an in-memory SQLite database, which workers cannot "
                          "share", name="budget", hint="use a PostgreSQL URL, a SQLite file on one machine, or Redis")
    return (kind, url, backend.name, backend.lease, budget.limits, budget.per_task, budget.name)


def open_budget(recipe: tuple[Any, ...]) -> Budget | SharedBudget | None:
    """The budget a :func:`budget_recipe` describes, opened in this process."""
    if recipe[0] == "task":
        return recipe[1]  # type: ignore[no-any-return]
    from agentroute.ledgers import RedisLedger, SqlLedger

    kind, url, ledger_name, lease, limits, per_task, name = recipe
    backend = (RedisLedger(url, name=ledger_name, lease=lease) if kind == "redis"
               else SqlLedger(url, name=ledger_name, lease=lease))
    return SharedBudget(limits, per_task=per_task, backend=backend, name=name)


def build_app(factory: str | Callable[[], Any]) -> Any:
    """The App ``factory`` names or returns (``"module:attr"``: an App, or a function without arguments)."""
    if isinstance(factory, str):
        from agentroute._cli_util import CliError, import_object

        try:
            obj = import_object(factory, option="factory")
        except CliError as e:
            raise ConfigError(e.format_message(), name="factory") from None
    else:
        obj = factory
    if callable(obj) and not hasattr(obj, "abatch"):
        obj = obj()
    if not hasattr(obj, "abatch"):
        raise ConfigError(f"factory {factory!r} gave a {type(obj).__name__}, not a compiled App", name="factory",
                          hint="name an App (graph.compile(...)) or a function that returns one")
    return obj


class Worker:
    """One Ray actor: builds the App and opens the budget once, then runs chunks of tasks on its event loop."""

    def __init__(self, factory: str | Callable[[], Any], recipe: tuple[Any, ...]) -> None:
        self.app = build_app(factory)
        self.budget = open_budget(recipe)

    def run(self, chunk: list[tuple[int, Mapping[str, Any], str | None]], concurrency: int,
            policy: Any) -> list[tuple[int, Any]]:
        """Run ``chunk`` (index, input, category) and return (index, RunResult) for each."""
        results = asyncio.run(self.app.abatch([x for _, x, _ in chunk], budget=self.budget, concurrency=concurrency,
                                              policy=policy, categories=[c for _, _, c in chunk]))
        if self.app.hooks is not None:
            self.app.flush()
        return [(i, r) for (i, _, _), r in zip(chunk, results, strict=True)]


def ray_batch(app: Any, inputs: Sequence[Mapping[str, Any]], *, budget: Budget | SharedBudget | None,
              concurrency: int, policy: Any, categories: Sequence[str | None] | None,
              backend: str = "ray", factory: str | Callable[[], Any] | None = None,
              workers: int | None = None) -> list[RunResult]:
    """Run ``inputs`` on ``workers`` Ray actors (default: one per CPU Ray offers) and return results in order.

    ``budget`` (else the App's compiled budget) must be per task or a SharedBudget on a Redis/SQL ledger. Ray is
    started locally unless it already runs (``ray.init(address=...)`` first to use a cluster).
    """
    if backend != "ray":
        what = "factory= and workers= only apply to backend='ray'" if backend == "local" else \
            f"backend={backend!r}: use 'local' (this process) or 'ray'"
        raise ConfigError(what, name="backend")
    if factory is None:
        raise ConfigError("backend='ray' cannot send a compiled App to other processes", name="factory",
                          hint=_FACTORY_HINT)
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ConfigError("concurrency must be a positive int", name="concurrency")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ConfigError(f"workers={workers!r} must be a positive int", name="workers")
    if categories is not None and len(categories) != len(inputs):
        raise ConfigError(f"categories has {len(categories)} entries for {len(inputs)} inputs", name="categories")
    recipe = budget_recipe(budget if budget is not None else app.budget)
    ray = _ray()
    if not inputs:
        return []
    if not ray.is_initialized():
        ray.init(include_dashboard=False, log_to_driver=False)
    n = workers or max(1, int(ray.available_resources().get("CPU", 1)))
    items = [(i, dict(x), categories[i] if categories is not None else None) for i, x in enumerate(inputs)]
    chunks = [items[k:k + concurrency] for k in range(0, len(items), concurrency)]
    from ray.util import ActorPool

    actor = ray.remote(num_cpus=1)(Worker)
    actors = [actor.remote(factory, recipe) for _ in range(min(n, len(chunks)))]
    out: list[Any] = [None] * len(items)
    try:
        for done in ActorPool(actors).map_unordered(lambda a, c: a.run.remote(c, concurrency, policy), chunks):
            for i, r in done:
                out[i] = r
    finally:  # a worker's ledger leases stop with it; everything it reserved is settled by now
        for a in actors:
            ray.kill(a)
    return out

__all__ = ["Worker", "budget_recipe", "build_app", "open_budget", "ray_batch"]
