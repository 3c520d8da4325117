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
:class:`~agentroute.records.RunResult` per input, in input order; :func:`aray_batch` awaits them on the caller's
event loop (``app.abatch(..., backend="ray")``), :func:`ray_batch` is its sync twin. :func:`ray_map` runs whole jobs
(``agentroute eval --scenario ... --ray``: one policy at one λ per job, so online learners still learn in task
order). It must never import the runtime (the runtime imports it), and it imports Ray lazily: without the ``ray``
extra, ``backend="ray"`` is a one-line ConfigError.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from agentroute.budget import Budget, SharedBudget
from agentroute.errors import ConfigError
from agentroute.records import RunResult

_FACTORY_HINT = "pass factory='module:attr' naming the App (or a function that returns one) so each worker builds it"
CLOSE_SECONDS = 120.0
"""How long a worker may take to write out its spans before it is killed."""
log = logging.getLogger("agentroute")


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
        try:
            self.app = build_app(factory)
            self.budget = open_budget(recipe)
        except Exception as e:  # agentroute's errors take keyword fields that Ray cannot rebuild: send the text
            raise RuntimeError(f"a Ray worker could not build the App: {type(e).__name__}: {e}") from None

    def run(self, chunk: list[tuple[int, Mapping[str, Any], str | None]], concurrency: int,
            policy: Any) -> list[tuple[int, Any]]:
        """Run ``chunk`` (index, input, category) and return (index, RunResult) for each."""
        results = asyncio.run(self.app.abatch([x for _, x, _ in chunk], budget=self.budget, concurrency=concurrency,
                                              policy=policy, categories=[c for _, _, c in chunk]))
        if self.app.hooks is not None:
            self.app.flush()
        return [(i, r) for (i, _, _), r in zip(chunk, results, strict=True)]

    def close(self) -> None:
        """Before the actor is killed: write out every span it holds, stop renewing its ledger leases.

        The exporters' spools are replayed and SQLite's write-ahead log folded in (their ``shutdown``).
        """
        hooks = self.app.hooks
        for h in getattr(hooks, "hooks", (hooks,) if hooks is not None else ()):
            for step in (getattr(h, "close", None), getattr(getattr(h, "provider", None), "shutdown", None)):
                if callable(step):
                    step()
        close = getattr(getattr(getattr(self.budget, "ledger", None), "backend", None), "close", None)
        if callable(close):
            close()


def check_batch(app: Any, inputs: Sequence[Mapping[str, Any]], *, budget: Budget | SharedBudget | None,
                concurrency: int, categories: Sequence[str | None] | None, backend: str,
                factory: str | Callable[[], Any] | None, workers: int | None,
                other: Mapping[str, Any]) -> tuple[Any, ...]:
    """Refuse what cannot run on Ray (one-line ConfigErrors) and return the budget's recipe."""
    if backend != "ray":
        what = "factory= and workers= only apply to backend='ray'" if backend == "local" else \
            f"backend={backend!r}: use 'local' (this process) or 'ray'"
        raise ConfigError(what, name="backend")
    if other:
        raise ConfigError(f"app.batch got an unknown option {sorted(other)[0]!r}", name=sorted(other)[0],
                          hint="backend='ray' adds factory= and workers=")
    if factory is None:
        raise ConfigError("backend='ray' cannot send a compiled App to other processes", name="factory",
                          hint=_FACTORY_HINT)
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ConfigError("concurrency must be a positive int", name="concurrency")
    check_workers(workers)
    if categories is not None and len(categories) != len(inputs):
        raise ConfigError(f"categories has {len(categories)} entries for {len(inputs)} inputs", name="categories")
    return budget_recipe(budget if budget is not None else app.budget)


def check_workers(workers: int | None) -> None:
    """``workers`` is None (one per CPU Ray offers) or a positive int."""
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ConfigError(f"workers={workers!r} must be a positive int", name="workers")


def start_ray(workers: int | None) -> tuple[Any, int]:
    """Ray (started locally unless it already runs) and how many workers to start."""
    ray = _ray()
    if not ray.is_initialized():
        ray.init(include_dashboard=False, log_to_driver=False)
    return ray, workers or max(1, int(ray.available_resources().get("CPU", 1)))


async def drive(ray: Any, actors: Sequence[Any], jobs: Sequence[Any], call: Callable[[Any, Any], Any],
                done: Callable[[Any], None]) -> None:
    """Hand ``jobs`` to whichever actor is free and pass every answer to ``done``.

    ``call(actor, job)`` gives an ObjectRef (awaited here); the actors are killed at the end, whatever happened.
    """
    queue = list(reversed(jobs))

    async def one(actor: Any) -> None:
        while queue:
            done(await call(actor, queue.pop()))

    try:
        await asyncio.gather(*(one(a) for a in actors))
    finally:  # everything a worker reserved is settled by now: let it write out its spans, then stop it
        try:
            await asyncio.wait_for(asyncio.gather(*(a.close.remote() for a in actors)), CLOSE_SECONDS)
        except Exception as e:  # a worker that cannot close in time is killed all the same; say what was lost
            log.warning("agentroute: a Ray worker did not close within %s s (%s: %s); spans it still held are lost",
                        CLOSE_SECONDS, type(e).__name__, e)
        for a in actors:
            ray.kill(a)


async def aray_batch(app: Any, inputs: Sequence[Mapping[str, Any]], *, budget: Budget | SharedBudget | None,
                     concurrency: int, policy: Any, categories: Sequence[str | None] | None,
                     backend: str = "ray", factory: str | Callable[[], Any] | None = None,
                     workers: int | None = None, **other: Any) -> list[RunResult]:
    """Run ``inputs`` on ``workers`` Ray actors (default: one per CPU Ray offers) and return results in order.

    ``budget`` (else the App's compiled budget) must be per task or a SharedBudget on a Redis/SQL ledger. Ray is
    started locally unless it already runs (``ray.init(address=...)`` first to use a cluster). The event loop stays
    free while the workers run (Ray's ObjectRefs are awaited).
    """
    recipe = check_batch(app, inputs, budget=budget, concurrency=concurrency, categories=categories,
                         backend=backend, factory=factory, workers=workers, other=other)
    _ray()
    if not inputs:
        return []
    ray, n = start_ray(workers)
    items = [(i, dict(x), categories[i] if categories is not None else None) for i, x in enumerate(inputs)]
    chunks = [items[k:k + concurrency] for k in range(0, len(items), concurrency)]
    actor = ray.remote(num_cpus=1)(Worker)
    actors = [actor.remote(factory, recipe) for _ in range(min(n, len(chunks)))]
    out: list[Any] = [None] * len(items)

    def done(answer: list[tuple[int, Any]]) -> None:
        for i, r in answer:
            out[i] = r

    await drive(ray, actors, chunks, lambda a, c: a.run.remote(c, concurrency, policy), done)
    return out


class Mapper:
    """One Ray actor for :func:`ray_map`: calls the function it is given (which may keep what it builds per process)."""

    def call(self, fn: Callable[[Any], Any], i: int, job: Any) -> tuple[int, Any]:
        """``(i, fn(job))``."""
        return i, fn(job)

    def close(self) -> None:
        """Nothing to write out."""


async def aray_map(fn: Callable[[Any], Any], jobs: Sequence[Any], *, workers: int | None = None) -> list[Any]:
    """``[fn(job) for job in jobs]`` on ``workers`` Ray actors (default: one per CPU Ray offers), in job order.

    ``fn`` must be importable by name on the workers (a module-level function); ``jobs`` and the answers travel by
    pickle. Each job runs whole on one worker: what must happen in order stays in one job.
    """
    check_workers(workers)
    _ray()
    if not jobs:
        return []
    ray, n = start_ray(workers)
    actor = ray.remote(num_cpus=1)(Mapper)
    actors = [actor.remote() for _ in range(min(n, len(jobs)))]
    out: list[Any] = [None] * len(jobs)

    def done(answer: tuple[int, Any]) -> None:
        out[answer[0]] = answer[1]

    await drive(ray, actors, list(enumerate(jobs)), lambda a, ij: a.call.remote(fn, *ij), done)
    return out


def ray_map(fn: Callable[[Any], Any], jobs: Sequence[Any], *, workers: int | None = None) -> list[Any]:
    """Sync twin of :func:`aray_map`."""
    return asyncio.run(aray_map(fn, jobs, workers=workers))


def ray_batch(app: Any, inputs: Sequence[Mapping[str, Any]], *, budget: Budget | SharedBudget | None,
              concurrency: int, policy: Any, categories: Sequence[str | None] | None,
              backend: str = "ray", factory: str | Callable[[], Any] | None = None,
              workers: int | None = None, **other: Any) -> list[RunResult]:
    """Sync twin of :func:`aray_batch` (``app.batch(..., backend="ray")``)."""
    return asyncio.run(aray_batch(app, inputs, budget=budget, concurrency=concurrency, policy=policy,
                                  categories=categories, backend=backend, factory=factory, workers=workers,
                                  **other))

__all__ = ["Mapper", "Worker", "aray_batch", "aray_map", "budget_recipe", "build_app", "check_batch", "check_workers",
           "drive", "open_budget", "ray_batch", "ray_map", "start_ray"]
