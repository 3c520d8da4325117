"""Runs tasks through a compiled graph: ``App.run`` / ``App.arun`` / ``App.batch`` / ``App.abatch``.

The :class:`App` owns configuration: the LangGraph ``StateGraph`` built from the declared graph, the policy (bound
once, with every optional capability filled in), the provider, the hooks (checked at compile time), prices and tier
ranks, and the options of every agent routing point, all frozen in a :class:`~agentroute._loop.RunConfig`. Each run
gets its own :class:`~agentroute._loop.TaskRun`, which owns the per-task state; the App only calls its public
methods. Every agent node is wrapped to hold its step, hand the agent a :class:`~agentroute.context.StepContext`,
and commit; every edge is a routing point (or a fixed edge) that leaves for END as soon as the task is out of budget.

A run always returns a :class:`~agentroute.records.RunResult` with its (partial) state, spend and decisions; a limit is
a truncation unless ``on_exhausted="error"``. Errors (a bad policy choice, a failing agent, a provider that never
answered) release every reservation, emit the task's records, and are raised with the partial result attached.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import warnings
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from agentroute import _llm_clock, _resume, _stream
from agentroute._loop import RunConfig, TaskRun, agent_options, tier_calls
from agentroute._nodes import RUN_KEY, edge, node, router
from agentroute._progress import task_bar
from agentroute._settle import check_charge_failed
from agentroute._spec import END, GraphDef
from agentroute.budget import ZERO, Budget, Ledger, SharedBudget
from agentroute.errors import BudgetExhausted, BudgetViolation, ConfigError, RunError
from agentroute.llm import ModelTier
from agentroute.records import HookList, RunHooks, RunResult, TaskStart
from agentroute.routing import GraphSpec, Option, Policy

if TYPE_CHECKING:
    from agentroute.providers import Provider
    from agentroute.routing import RouterPolicy

_TEXT_KEYS = ("question", "query", "input", "text", "prompt", "task")
_HOOK_METHODS = frozenset(n for n in vars(RunHooks) if n.startswith("on_"))


class App:
    """A compiled, runnable agent graph. Build it with :meth:`AgentGraph.compile`."""

    def __init__(
        self,
        graph: GraphDef,
        policy: RouterPolicy,
        provider: Provider | None,
        *,
        budget: Budget | None,
        hooks: Sequence[RunHooks],
        on_exhausted: Literal["truncate", "error"],
        min_answer_tokens: int,
        max_retries: int,
        scorer: Callable[[dict[str, Any]], float] | None,
        capture_content: bool,
        checkpointer: Any,
        text_key: str | None,
        shadow: Sequence[Any] = (),
        retry_backoff: float = 0.25,
        input_margin: tuple[float, int] = (0.1, 8),
        on_violation: Literal["record", "error"] = "record",
        charge_failed: Literal["worst_case", "reported"] = "worst_case",
    ) -> None:
        graph.validate()
        if on_exhausted not in ("truncate", "error"):
            raise ConfigError(f"on_exhausted={on_exhausted!r}: use 'truncate' or 'error'", name="on_exhausted")
        self.on_violation = _check_on_violation(on_violation)
        charge_failed = check_charge_failed(charge_failed)
        if isinstance(min_answer_tokens, bool) or not isinstance(min_answer_tokens, int) or min_answer_tokens < 1:
            raise ConfigError("min_answer_tokens must be a positive int", name="min_answer_tokens")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ConfigError("max_retries must be an int >= 0", name="max_retries")
        if budget is not None and not isinstance(budget, Budget | SharedBudget):
            raise ConfigError(f"budget must be a Budget or SharedBudget, got {type(budget).__name__}", name="budget")
        from agentroute.providers import Live

        self.graph = graph
        self.policy = Policy(policy)
        self.provider: Provider = provider if provider is not None else Live()
        self.budget = budget
        hook_list: RunHooks | None = HookList(_checked_hooks(hooks)) if hooks else None
        self.on_exhausted = on_exhausted
        self.text_key = text_key
        all_tiers = graph.tiers()
        self.provider.bind(all_tiers)
        prices: dict[str, tuple[Decimal, Decimal] | None] = {t.name: t.prices() for t in all_tiers}
        for t in all_tiers:
            if prices[t.name] is None:
                warnings.warn(
                    f"tier {t.name!r}: LiteLLM has no price for model {t.model!r}; its cost is reported as unknown "
                    "(None). State input_cost_per_token/output_cost_per_token to enforce a USD budget.",
                    UserWarning, stacklevel=3,
                )
        ranked = sorted(all_tiers, key=lambda t: _price_key(prices[t.name], all_tiers.index(t)))
        tier_rank = {t.name: i for i, t in enumerate(ranked)}
        sorted_tiers = {a.name: tuple(sorted(a.tiers, key=lambda t: tier_rank[t.name])) for a in graph.agents.values()}
        self.spec = GraphSpec(graph.name, list(graph.agents), [t.name for t in all_tiers],
                              points={f"route:{s}": list(t) for s, t in graph.routes.items()},
                              models={t.name: t.model for t in all_tiers})
        self.policy.bind(self.spec)
        shadows = tuple(s if isinstance(s, Policy) else Policy(s) for s in shadow)
        for s in shadows:
            s.bind(self.spec)
        self.config = RunConfig(
            graph=graph.name, provider=self.provider, hooks=hook_list, min_answer_tokens=min_answer_tokens,
            max_retries=max_retries, retry_backoff=retry_backoff, input_margin=input_margin, contention_wait=10.0,
            capture_content=capture_content, scorer=scorer, prices=prices, tier_rank=tier_rank,
            sorted_tiers=sorted_tiers,
            tier_calls={a.name: tier_calls(a.tiers, prices, tier_rank) for a in graph.agents.values()},
            agent_options=_agent_options(graph, prices, tier_rank, sorted_tiers, min_answer_tokens),
            shadows=shadows,
            charge_failed=charge_failed,
        )
        self._checked: Budget | SharedBudget | None = None
        if isinstance(budget, Budget | SharedBudget):
            self._check_budget(budget)
        self._has_async = any(a.is_async for a in graph.agents.values())
        self._warm = False
        self.langgraph = self._build(checkpointer)
        self._checkpointed = self.langgraph.checkpointer not in (None, False)
        self.config = dataclasses.replace(self.config, checkpointed=self._checkpointed)

    # -- configuration knobs (the frozen RunConfig is replaced; running tasks keep theirs) -----------------------
    @property
    def max_retries(self) -> int:
        """Retries of a failed call on the same tier before falling back to another."""
        return self.config.max_retries

    @max_retries.setter
    def max_retries(self, value: int) -> None:
        self.config = dataclasses.replace(self.config, max_retries=value)

    @property
    def retry_backoff(self) -> float:
        """Seconds before the first retry (doubling after each, capped)."""
        return self.config.retry_backoff

    @retry_backoff.setter
    def retry_backoff(self, value: float) -> None:
        self.config = dataclasses.replace(self.config, retry_backoff=value)

    @property
    def contention_wait(self) -> float:
        """Seconds a call may wait for other tasks' reservations on a shared budget to settle before truncating."""
        return self.config.contention_wait

    @contention_wait.setter
    def contention_wait(self, value: float) -> None:
        self.config = dataclasses.replace(self.config, contention_wait=value)

    @property
    def hooks(self) -> RunHooks | None:
        """Where every run's records go (a :class:`~agentroute.records.HookList` of the hooks given at compile)."""
        return self.config.hooks

    @hooks.setter
    def hooks(self, value: RunHooks | None) -> None:
        if value is not None:
            _checked_hooks([value])
        self.config = dataclasses.replace(self.config, hooks=value)

    @property
    def prices(self) -> Mapping[str, tuple[Decimal, Decimal] | None]:
        """USD per input and output token of every tier (``None``: unknown)."""
        return self.config.prices

    # -- building -----------------------------------------------------------------------------------------------
    def _check_budget(self, budget: Budget | SharedBudget) -> None:
        if budget is self._checked:  # the same budget object as the last task's: prices have not changed since
            return
        chain = [budget] if isinstance(budget, Budget) else [budget.limits, budget.per_task]
        if any(b.usd is not None for b in chain):
            unknown = [n for n, p in self.config.prices.items() if p is None]
            if unknown:
                raise ConfigError(
                    f"a USD budget cannot be enforced: no known price for tier(s) {', '.join(unknown)}",
                    name=unknown[0],
                    hint="give those ModelTiers input_cost_per_token and output_cost_per_token",
                )
        self._checked = budget

    def _build(self, checkpointer: Any) -> Any:
        from langchain_core.runnables import RunnableConfig
        from langgraph.graph import START, StateGraph

        def typed(fn: Callable[..., Any]) -> Callable[..., Any]:
            # LangGraph passes the run config only to callables whose `config` is typed as RunnableConfig.
            fn.__annotations__ = {**fn.__annotations__, "config": RunnableConfig}
            return fn

        if isinstance(checkpointer, str):  # a store URL: the store's own checkpointer (SQLite or PostgreSQL)
            from agentroute.store.checkpoints import SqlCheckpointer

            checkpointer = SqlCheckpointer(checkpointer)
        g: Any = StateGraph(dict)
        for spec in self.graph.agents.values():
            g.add_node(spec.name, typed(node(spec)))
        g.add_edge(START, self.graph.entry)
        for name in self.graph.agents:
            targets = self.graph.successors(name)
            if targets == (END,):
                g.add_edge(name, END)
                continue
            path_map = {t: t for t in targets} | {END: END}
            g.add_conditional_edges(name, edge(typed(router(name, targets, name in self.graph.routes))), path_map)
        return g.compile(checkpointer=checkpointer)

    # -- running ------------------------------------------------------------------------------------------------
    def task_text(self, inputs: Mapping[str, Any]) -> str:
        """The text policies read as the task: ``inputs[text_key]`` or the first usual text field."""
        if self.text_key is not None:
            return str(inputs.get(self.text_key, ""))
        for k in _TEXT_KEYS:
            v = inputs.get(k)
            if isinstance(v, str):
                return v
        return next((v for v in inputs.values() if isinstance(v, str)), "")

    def _warm_up(self) -> None:
        """Import LiteLLM and warm its call path once per process, before any task's clock starts."""
        self._warm = _llm_clock.warm_up([t.model for t in self.graph.tiers()], clients=self.provider.name == "live")

    def _start(self, inputs: Any, budget: Budget | SharedBudget | None, policy: Any, task_id: str | None,
               category: str | None, features: Mapping[str, Any] | None, labels: Mapping[str, str] | None = None,
               saved: _resume.Saved | None = None, hooks: RunHooks | None = None) -> tuple[TaskRun, dict[str, Any]]:
        if not isinstance(inputs, Mapping):
            raise ConfigError(f"inputs must be a dict (the task's initial state), got {type(inputs).__name__}",
                              name="inputs")
        if not self._warm:  # LiteLLM's first-call imports happen here, before this task's clock starts
            self._warm_up()
        budget = budget if budget is not None else self.budget
        if budget is None:
            ledger = Ledger(Budget())
        elif isinstance(budget, SharedBudget):
            self._check_budget(budget)
            ledger = Ledger(budget.per_task, parents=budget.ledger.chain)  # a shared budget's own parents too
        elif isinstance(budget, Budget):
            self._check_budget(budget)
            ledger = Ledger(budget)
        else:
            raise ConfigError(f"budget must be a Budget or SharedBudget, got {type(budget).__name__}",
                              name="budget", hint='e.g. Budget(usd="0.01", tokens=4000, steps=6)')
        bound = self.policy
        if policy is not None and policy is not self.policy.policy:
            bound = Policy(policy)
            bound.bind(self.spec)
        run = TaskRun(self.config, ledger, bound, inputs, self.task_text(inputs), task_id=task_id,
                      category=category, features=features, entry=self.graph.entry or "")
        run.labels = _resume.check_labels(labels)
        if hooks is not None:  # this task's own hook (a stream's), after the app's
            run.hooks = hooks if run.hooks is None else HookList([run.hooks, hooks])
            run.router.recorder = run
        if saved is not None:
            run.restore(saved.carried)
        if run.hooks is not None:
            run.hooks.on_task_start(TaskStart(
                run.id, self.graph.name, bound.name, bound.version, ledger.limits,
                budget.name if isinstance(budget, SharedBudget) else None, dict(inputs), run.started_ns,
                features={**({"category": category} if category is not None else {}), **(features or {})}))
        limit = ledger.limits.steps
        configurable: dict[str, Any] = {RUN_KEY: run}
        if self._checkpointed:  # only a checkpointer reads it (LangGraph spends ~50 µs a task on one)
            configurable["thread_id"] = run.id
        config = {"configurable": configurable, "recursion_limit": (2 * limit + 10) if limit is not None else 1000}
        return run, config

    def _raise_if_needed(self, result: RunResult, on_exhausted: str | None, on_violation: str | None) -> RunResult:
        err = result.error
        if err is not None:
            if isinstance(err, RunError):
                err.result = result
                err.state = result.state
            raise err
        if result.violations and _check_on_violation(on_violation or self.on_violation) == "error":
            v = result.violations[0]
            raise BudgetViolation(
                f"task {result.task_id}: budget violation on {v.dimension} ({v.cause}); spent "
                f"{result.spent.as_dict()} of {result.limits.as_dict()}. The spend was charged in full; pass "
                "on_violation='record' to get the result with status 'overrun' instead",
                violations=result.violations, state=result.state, result=result,
            )
        if result.truncated and result.reason.startswith("budget") and (on_exhausted or self.on_exhausted) == "error":
            raise BudgetExhausted(
                f"task {result.task_id}: budget exhausted ({result.reason}); spent {result.spent.as_dict()} of "
                f"{result.limits.as_dict()}",
                reason=result.reason, spent=result.spent, limits=result.limits, state=result.state, result=result,
            )
        return result

    def run(self, inputs: Mapping[str, Any], *, budget: Budget | SharedBudget | None = None,
            policy: RouterPolicy | None = None, task_id: str | None = None, category: str | None = None,
            features: Mapping[str, Any] | None = None, on_exhausted: Literal["truncate", "error"] | None = None,
            labels: Mapping[str, str] | None = None,
            on_violation: Literal["record", "error"] | None = None) -> RunResult:
        """Run one task to END (or until its budget is exhausted) and return its result.

        ``policy`` overrides the compiled policy for this run; ``category`` and ``features`` are shown to policies.
        ``labels`` are saved with the task's checkpoints (:meth:`unfinished` filters on them). With a checkpointer,
        the id of an unfinished task is refused: :meth:`resume` continues it. ``on_exhausted`` and ``on_violation``
        override the compiled choices for this run.
        """
        return self._run(inputs, budget, policy, task_id, category, features, on_exhausted, labels, None, on_violation)

    def _run(self, inputs: Mapping[str, Any], budget: Budget | SharedBudget | None, policy: Any, task_id: str | None,
             category: str | None, features: Mapping[str, Any] | None, on_exhausted: str | None,
             labels: Mapping[str, str] | None, hooks: RunHooks | None, on_violation: str | None = None) -> RunResult:
        if self._has_async:
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                return asyncio.run(self._arun(inputs, budget, policy, task_id, category, features, on_exhausted,
                                              labels, hooks, on_violation))
            raise ConfigError("this graph has async agents and an event loop is running here",
                              hint="use `await app.arun(...)`")
        if task_id is not None and self.langgraph.checkpointer:
            _resume.refuse_restart(_resume.read(self.langgraph, task_id), task_id)
        run, config = self._start(inputs, budget, policy, task_id, category, features, labels, hooks=hooks)
        return self._invoke(run, dict(inputs), config, on_exhausted, on_violation)

    def _invoke(self, run: TaskRun, inputs: dict[str, Any] | None, config: dict[str, Any],
                on_exhausted: str | None, on_violation: str | None = None) -> RunResult:
        exc: BaseException | None = None
        try:
            self.langgraph.invoke(inputs, config)
        except Exception as e:
            exc = e
        return self._raise_if_needed(run.finish(exc), on_exhausted, on_violation)

    async def arun(self, inputs: Mapping[str, Any], *, budget: Budget | SharedBudget | None = None,
                   policy: RouterPolicy | None = None, task_id: str | None = None, category: str | None = None,
                   features: Mapping[str, Any] | None = None,
                   on_exhausted: Literal["truncate", "error"] | None = None,
                   labels: Mapping[str, str] | None = None,
                   on_violation: Literal["record", "error"] | None = None) -> RunResult:
        """Async twin of :meth:`run`."""
        return await self._arun(inputs, budget, policy, task_id, category, features, on_exhausted, labels, None,
                                on_violation)

    async def _arun(self, inputs: Mapping[str, Any], budget: Budget | SharedBudget | None, policy: Any,
                    task_id: str | None, category: str | None, features: Mapping[str, Any] | None,
                    on_exhausted: str | None, labels: Mapping[str, str] | None, hooks: RunHooks | None,
                    on_violation: str | None = None) -> RunResult:
        if task_id is not None and self.langgraph.checkpointer:
            _resume.refuse_restart(await _resume.aread(self.langgraph, task_id), task_id)
        if not self._warm:  # off the event loop: other tasks keep running while LiteLLM loads
            await asyncio.to_thread(self._warm_up)
        run, config = self._start(inputs, budget, policy, task_id, category, features, labels, hooks=hooks)
        return await self._ainvoke(run, dict(inputs), config, on_exhausted, on_violation)

    # -- streaming ----------------------------------------------------------------------------------------------
    def stream(self, inputs: Mapping[str, Any], *, budget: Budget | SharedBudget | None = None,
               policy: RouterPolicy | None = None, task_id: str | None = None, category: str | None = None,
               features: Mapping[str, Any] | None = None,
               labels: Mapping[str, str] | None = None) -> Iterator[_stream.StreamEvent]:
        """Run one task, yielding its step and decision events as they happen; the last one (``end``) holds its result.

        A task that fails ends with ``result.error`` set instead of raising (as in :meth:`batch`).
        """
        return _stream.stream(lambda hooks: self._run(inputs, budget, policy, task_id, category, features,
                                                      "truncate", labels, hooks))

    def astream(self, inputs: Mapping[str, Any], *, budget: Budget | SharedBudget | None = None,
                policy: RouterPolicy | None = None, task_id: str | None = None, category: str | None = None,
                features: Mapping[str, Any] | None = None,
                labels: Mapping[str, str] | None = None) -> AsyncIterator[_stream.StreamEvent]:
        """Async twin of :meth:`stream`."""
        return _stream.astream(lambda hooks: self._arun(inputs, budget, policy, task_id, category, features,
                                                        "truncate", labels, hooks))

    async def _ainvoke(self, run: TaskRun, inputs: dict[str, Any] | None, config: dict[str, Any],
                       on_exhausted: str | None, on_violation: str | None = None) -> RunResult:
        exc: BaseException | None = None
        try:
            await self.langgraph.ainvoke(inputs, config)
        except asyncio.CancelledError:
            run.finish(None)
            raise
        except Exception as e:
            exc = e
        return self._raise_if_needed(run.finish(exc), on_exhausted, on_violation)

    # -- resuming a checkpointed task --------------------------------------------------------------------------
    def resume(self, task_id: str, *, budget: Budget | SharedBudget | None = None,
               policy: RouterPolicy | None = None,
               on_exhausted: Literal["truncate", "error"] | None = None) -> RunResult:
        """Continue an interrupted task from its last finished step, with what it spent carried over.

        Needs the checkpointer the task ran with. ``budget`` defaults to the task's own limits as it started (pass
        the same :class:`SharedBudget` again to draw on it); its steps and decisions are numbered after the saved
        ones, so nothing is recorded twice. ``ConfigError`` when the task has no checkpoint or already finished.
        """
        if self._has_async:
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                return asyncio.run(self.aresume(task_id, budget=budget, policy=policy, on_exhausted=on_exhausted))
            raise ConfigError("this graph has async agents and an event loop is running here",
                              hint="use `await app.aresume(...)`")
        saved = _resume.must_resume(_resume.read(self.langgraph, task_id), task_id)
        run, config = self._resumed(saved, budget, policy)
        return self._invoke(run, None, config, on_exhausted)

    async def aresume(self, task_id: str, *, budget: Budget | SharedBudget | None = None,
                      policy: RouterPolicy | None = None,
                      on_exhausted: Literal["truncate", "error"] | None = None) -> RunResult:
        """Async twin of :meth:`resume`."""
        saved = _resume.must_resume(await _resume.aread(self.langgraph, task_id), task_id)
        run, config = self._resumed(saved, budget, policy)
        return await self._ainvoke(run, None, config, on_exhausted)

    def _resumed(self, saved: _resume.Saved, budget: Budget | SharedBudget | None,
                 policy: Any) -> tuple[TaskRun, dict[str, Any]]:
        c = saved.carried
        return self._start(saved.state, budget if budget is not None else saved.limits() or self.budget, policy,
                           saved.task_id, c.get("category"), c.get("features"), saved.labels, saved)

    def unfinished(self, **labels: str) -> dict[str, dict[str, str]]:
        """Task id → labels of every checkpointed task with steps left (those whose labels match ``labels``)."""
        return _resume.unfinished(self.langgraph, labels)

    async def abatch(self, inputs: Sequence[Mapping[str, Any]], *, budget: Budget | SharedBudget | None = None,
                     concurrency: int = 8, policy: RouterPolicy | None = None, progress: bool = False,
                     categories: Sequence[str | None] | None = None, backend: Literal["local", "ray"] = "local",
                     **ray: Any) -> list[RunResult]:
        """Run many tasks concurrently on this event loop (``backend="ray"``: on Ray workers, awaited here).

        A task that fails returns its partial result with ``result.error`` set instead of raising. A
        :class:`SharedBudget` is shared by all of them.
        """
        if backend != "local" or ray:
            from agentroute._ray import aray_batch  # Ray's own options (factory=, workers=), checked there

            return await aray_batch(self, inputs, budget=budget, concurrency=concurrency, policy=policy,
                                    categories=categories, backend=backend, **ray)
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ConfigError("concurrency must be a positive int", name="concurrency")
        sem = asyncio.Semaphore(concurrency)
        bar = task_bar(len(inputs), progress)

        async def one(i: int, item: Mapping[str, Any]) -> RunResult:
            async with sem:
                cat = categories[i] if categories is not None else None
                try:
                    res = await self.arun(item, budget=budget, policy=policy, category=cat,
                                          on_exhausted="truncate", on_violation="record")
                except RunError as e:
                    res = e.result
                finally:
                    bar.update()
                return res

        try:
            return list(await asyncio.gather(*(one(i, x) for i, x in enumerate(inputs))))
        finally:
            bar.close()

    def batch(self, inputs: Sequence[Mapping[str, Any]], *, budget: Budget | SharedBudget | None = None,
              concurrency: int = 8, policy: RouterPolicy | None = None, progress: bool = False,
              categories: Sequence[str | None] | None = None, backend: Literal["local", "ray"] = "local",
              **ray: Any) -> list[RunResult]:
        """Sync twin of :meth:`abatch`; ``backend="ray"`` runs the tasks on Ray workers (:mod:`agentroute._ray`)."""
        if backend != "local" or ray:
            from agentroute._ray import ray_batch  # Ray's own options (factory=, workers=), checked there

            return ray_batch(self, inputs, budget=budget, concurrency=concurrency, policy=policy,
                             categories=categories, backend=backend, **ray)
        return asyncio.run(self.abatch(inputs, budget=budget, concurrency=concurrency, policy=policy,
                                       progress=progress, categories=categories))

    def flush(self) -> None:
        """Write out whatever the hooks buffer (spans, rows)."""
        if self.hooks is not None:
            self.hooks.flush()


def _checked_hooks(hooks: Sequence[Any]) -> list[RunHooks]:
    """The hooks, refused at compile time when one is no hook at all or misspells an ``on_*`` method.

    A :class:`RunHooks` is taken as it is; an object that is not one but defines some of its ``on_*`` methods (a
    duck-typed hook) is wrapped so the methods it lacks are no-ops.
    """
    out: list[RunHooks] = []
    for h in hooks:
        name = type(h).__name__
        defined = {attr for attr, value in inspect.getmembers(type(h)) if attr.startswith("on_") and callable(value)}
        wrong = sorted(defined - _HOOK_METHODS)
        if wrong:
            raise ConfigError(f"hooks: {name}.{wrong[0]} is not a hook method, so it would never be called",
                              name=f"{name}.{wrong[0]}", hint=f"hook methods: {', '.join(sorted(_HOOK_METHODS))}")
        if isinstance(h, RunHooks):
            out.append(h)
        elif defined:
            out.append(_DuckHooks(h, defined))
        else:
            raise ConfigError(f"hooks: {name} is not a RunHooks", name=name,
                              hint="subclass agentroute.RunHooks and override the on_* methods you need")
    return out


class _DuckHooks(RunHooks):
    """A hook object that is not a :class:`RunHooks`: its own ``on_*`` methods are called, the rest do nothing."""

    def __init__(self, hook: Any, methods: set[str]) -> None:
        self.hook = hook
        for m in methods:
            setattr(self, m, getattr(hook, m))

    def flush(self) -> None:
        flush = getattr(self.hook, "flush", None)
        if callable(flush):
            flush()


def _agent_options(graph: GraphDef, prices: Mapping[str, tuple[Decimal, Decimal] | None],
                   tier_rank: Mapping[str, int], sorted_tiers: Mapping[str, tuple[ModelTier, ...]],
                   min_answer_tokens: int) -> dict[str, tuple[Option, ...]]:
    """The options of every agent routing point: agents ranked by their dearest tier, then their cheapest call."""
    order: list[tuple[tuple[int, Decimal], str]] = []
    min_usd: dict[str, Decimal | None] = {}
    for a in graph.agents.values():
        best: Decimal | None = ZERO if not a.tiers else None
        for t in a.tiers:
            p = prices[t.name]
            if p is not None:
                c = p[1] * min_answer_tokens
                best = c if best is None or c < best else best
        min_usd[a.name] = best
        top = max((tier_rank[t.name] for t in a.tiers), default=-1)
        order.append(((top, best if best is not None else ZERO), a.name))
    rank = {name: r for r, (_, name) in enumerate(sorted(order), start=1)}
    return {
        src: tuple(
            agent_options(t, i == 0, rank=rank.get(t, 0), min_usd=min_usd.get(t), tiers=tuple(
                x.name for x in sorted_tiers.get(t, ())),
                min_tokens=min_answer_tokens if t != END and graph.agents[t].tiers else 0,
                description=graph.agents[t].description if t != END else "")
            for i, t in enumerate(targets)
        )
        for src, targets in graph.routes.items()
    }


def _check_on_violation(value: Any) -> Literal["record", "error"]:
    if value not in ("record", "error"):
        raise ConfigError(f"on_violation={value!r}: use 'record' (the run returns with status 'overrun') or 'error' "
                          "(raise BudgetViolation)", name="on_violation")
    return value  # type: ignore[no-any-return]


def _price_key(p: tuple[Decimal, Decimal] | None, index: int) -> tuple[int, Decimal, Decimal, int]:
    if p is None:
        return (1, ZERO, ZERO, index)
    return (0, p[1], p[0], index)


__all__ = ["App"]
