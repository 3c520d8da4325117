"""Runs tasks through a compiled graph: ``App.run`` / ``App.arun`` / ``App.batch`` / ``App.abatch``.

The :class:`App` owns the LangGraph ``StateGraph`` built from an :class:`~agentroute.graph.AgentGraph`: every agent
node is wrapped to reserve its step, hand the agent a :class:`~agentroute.context.StepContext`, and commit; every
edge is a routing point (or a fixed edge) that leaves for END as soon as the task is out of budget. A run always
returns a :class:`~agentroute.records.RunResult` with its (partial) state, spend and decisions; a limit is a
truncation unless ``on_exhausted="error"``. Errors (a bad policy choice, a failing agent, a provider that never
answered) release every reservation, emit the task's records, and are raised with the partial result attached.
"""

from __future__ import annotations

import asyncio
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from agentroute._loop import END, Stop, TaskRun
from agentroute.budget import ZERO, Budget, Ledger, SharedBudget, Spend, Unaffordable
from agentroute.context import StepContext
from agentroute.errors import AgentError, BudgetExhausted, ConfigError, RunError
from agentroute.llm import ModelTier
from agentroute.records import HookList, RunHooks, RunResult, StepEnd, StepStart, TaskStart
from agentroute.routing import Candidate, GraphSpec

if TYPE_CHECKING:
    from agentroute.graph import AgentGraph, AgentSpec
    from agentroute.providers import Provider
    from agentroute.routing import RouterPolicy

_RUN_KEY = "__agentroute_task"
_TEXT_KEYS = ("question", "query", "input", "text", "prompt", "task")


@dataclass(frozen=True, slots=True)
class _AgentInfo:
    rank: int
    min_usd: Decimal | None
    min_tokens: int
    tier_names: tuple[str, ...]
    description: str


class App:
    """A compiled, runnable agent graph. Build it with :meth:`AgentGraph.compile`."""

    def __init__(
        self,
        graph: AgentGraph,
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
        retry_backoff: float = 0.25,
        input_margin: tuple[float, int] = (0.1, 8),
    ) -> None:
        graph.validate()
        if not callable(getattr(policy, "decide", None)):
            raise ConfigError(f"policy must have a decide(obs) method, got {type(policy).__name__}", name="policy")
        if on_exhausted not in ("truncate", "error"):
            raise ConfigError(f"on_exhausted={on_exhausted!r}: use 'truncate' or 'error'", name="on_exhausted")
        if isinstance(min_answer_tokens, bool) or not isinstance(min_answer_tokens, int) or min_answer_tokens < 1:
            raise ConfigError("min_answer_tokens must be a positive int", name="min_answer_tokens")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ConfigError("max_retries must be an int >= 0", name="max_retries")
        if budget is not None and not isinstance(budget, Budget | SharedBudget):
            raise ConfigError(f"budget must be a Budget or SharedBudget, got {type(budget).__name__}", name="budget")
        from agentroute.providers import Live

        self.graph = graph
        self.policy = policy
        self.provider: Provider = provider if provider is not None else Live()
        self.budget = budget
        self.hooks: RunHooks | None = HookList(hooks) if hooks else None
        self.on_exhausted = on_exhausted
        self.min_answer_tokens = min_answer_tokens
        self.max_retries = max_retries
        self.retry_backoff = retry_backoff
        self.input_margin = input_margin
        self.contention_wait = 10.0
        """Seconds a call may wait for other tasks' reservations on a shared budget to settle before truncating."""
        """Input tokens reserved beyond LiteLLM's count: a fraction and a constant (providers count differently)."""
        self.scorer = scorer
        self.capture_content = capture_content
        self.text_key = text_key
        all_tiers = graph.tiers()
        self.provider.bind(all_tiers)
        self.prices: dict[str, tuple[Decimal, Decimal] | None] = {t.name: t.prices() for t in all_tiers}
        for t in all_tiers:
            if self.prices[t.name] is None:
                warnings.warn(
                    f"tier {t.name!r}: LiteLLM has no price for model {t.model!r}; its cost is reported as unknown "
                    "(None). State input_cost_per_token/output_cost_per_token to enforce a USD budget.",
                    UserWarning, stacklevel=3,
                )
        ranked = sorted(all_tiers, key=lambda t: _price_key(self.prices[t.name], all_tiers.index(t)))
        self.tier_rank = {t.name: i for i, t in enumerate(ranked)}
        self.sorted_tiers: dict[str, tuple[ModelTier, ...]] = {
            a.name: tuple(sorted(a.tiers, key=lambda t: self.tier_rank[t.name])) for a in graph.agents.values()
        }
        self.agent_info = self._agent_infos()
        # Agent-choice candidates never change: build them once per routing point.
        self.agent_candidates: dict[str, tuple[Candidate, ...]] = {
            src: tuple(self._agent_candidate(t, i == 0) for i, t in enumerate(targets))
            for src, targets in graph.routes.items()
        }
        self.spec = GraphSpec(graph.name, list(graph.agents), [t.name for t in all_tiers],
                              points={f"route:{s}": list(t) for s, t in graph.routes.items()},
                              models={t.name: t.model for t in all_tiers})
        self._bind(policy)
        if isinstance(budget, Budget | SharedBudget):
            self._check_budget(budget)
        self._has_async = any(a.is_async for a in graph.agents.values())
        self.langgraph = self._build(checkpointer)

    # -- building -----------------------------------------------------------------------------------------------
    def _bind(self, policy: Any) -> None:
        bind = getattr(policy, "bind", None)
        if bind is not None:
            bind(self.spec)

    def _agent_infos(self) -> dict[str, _AgentInfo]:
        order: list[tuple[tuple[int, Decimal], str]] = []
        infos: dict[str, _AgentInfo] = {}
        for a in self.graph.agents.values():
            min_usd: Decimal | None = ZERO if not a.tiers else None
            for t in a.tiers:
                p = self.prices[t.name]
                if p is not None:
                    c = p[1] * self.min_answer_tokens
                    min_usd = c if min_usd is None or c < min_usd else min_usd
            infos[a.name] = _AgentInfo(0, min_usd, self.min_answer_tokens if a.tiers else 0,
                                       tuple(t.name for t in self.sorted_tiers[a.name]), a.description)
            top = max((self.tier_rank[t.name] for t in a.tiers), default=-1)
            order.append(((top, min_usd if min_usd is not None else ZERO), a.name))
        for rank, (_, name) in enumerate(sorted(order), start=1):
            i = infos[name]
            infos[name] = _AgentInfo(rank, i.min_usd, i.min_tokens, i.tier_names, i.description)
        return infos

    def _agent_candidate(self, target: str, default: bool) -> Candidate:
        if target == END:
            return Candidate(END, "agent", rank=0, cost_estimate=ZERO, descriptor={"default": default})
        info = self.agent_info[target]
        return Candidate(target, "agent", rank=info.rank, cost_estimate=info.min_usd,
                         descriptor={"default": default, "tiers": info.tier_names, "description": info.description})

    def _check_budget(self, budget: Budget | SharedBudget) -> None:
        chain = [budget] if isinstance(budget, Budget) else [budget.limits, budget.per_task]
        if any(b.usd is not None for b in chain):
            unknown = [n for n, p in self.prices.items() if p is None]
            if unknown:
                raise ConfigError(
                    f"a USD budget cannot be enforced: no known price for tier(s) {', '.join(unknown)}",
                    name=unknown[0],
                    hint="give those ModelTiers input_cost_per_token and output_cost_per_token",
                )

    def _build(self, checkpointer: Any) -> Any:
        from langchain_core.runnables import RunnableConfig
        from langgraph.graph import START, StateGraph

        def typed(fn: Callable[..., Any]) -> Callable[..., Any]:
            # LangGraph passes the run config only to callables whose `config` is typed as RunnableConfig.
            fn.__annotations__ = {**fn.__annotations__, "config": RunnableConfig}
            return fn

        g: Any = StateGraph(dict)
        for spec in self.graph.agents.values():
            g.add_node(spec.name, typed(self._node(spec)))
        g.add_edge(START, self.graph.entry)
        for name in self.graph.agents:
            targets = self.graph.successors(name)
            if targets == (END,):
                g.add_edge(name, END)
                continue
            path_map = {t: t for t in targets} | {END: END}
            g.add_conditional_edges(name, typed(self._router(name, targets)), path_map)
        return g.compile(checkpointer=checkpointer)

    def _router(self, src: str, targets: tuple[str, ...]) -> Callable[..., str]:
        routed = src in self.graph.routes

        def route(state: dict[str, Any], config: Any) -> str:
            run: TaskRun = config["configurable"][_RUN_KEY]
            if run.stopped:
                return END
            if not routed:
                return targets[0]
            return run.route_agent(src, targets)

        route.__name__ = f"route_{src}"
        return route

    def _node(self, spec: AgentSpec) -> Callable[..., Any]:
        if spec.is_async:

            async def anode(state: dict[str, Any], config: Any) -> dict[str, Any]:
                run: TaskRun = config["configurable"][_RUN_KEY]
                ctx = self._enter(run, spec, state)
                if ctx is None:
                    return state
                try:
                    update = await spec.fn(dict(state), ctx)
                except BaseException as e:
                    return self._exit(run, spec, state, None, e)
                return self._exit(run, spec, state, update, None)

            anode.__name__ = spec.name
            return anode

        def node(state: dict[str, Any], config: Any) -> dict[str, Any]:
            run: TaskRun = config["configurable"][_RUN_KEY]
            ctx = self._enter(run, spec, state)
            if ctx is None:
                return state
            try:
                update = spec.fn(dict(state), ctx)
            except BaseException as e:
                return self._exit(run, spec, state, None, e)
            return self._exit(run, spec, state, update, None)

        node.__name__ = spec.name
        return node

    # -- one agent step -----------------------------------------------------------------------------------------
    def _enter(self, run: TaskRun, spec: AgentSpec, state: dict[str, Any]) -> StepContext | None:
        if run.stopped:
            return None
        run.node = spec.name
        if run.pending_step is None:  # the start agent, or a fixed edge: reserve the step here
            try:
                r = run.reserve(Spend(usd=ZERO, steps=1), f"step:{spec.name}")
            except Unaffordable as e:
                run.stop(f"budget:{e.dimension}")
                return None
            run.pending_step = (r, None, None, None)
        rem = run.ledger.remaining()
        if rem.seconds is not None and rem.seconds <= 0:
            run.release(run.pending_step[0])
            run.pending_step = None
            run.stop("budget:seconds")
            return None
        run.step_cost, run.step_tokens = ZERO, 0
        run.step_started_ns = time.time_ns()
        if run.hooks is not None:
            run.hooks.on_step_start(StepStart(run.id, run.steps, spec.name, run.step_started_ns))
        return StepContext(run, spec, run.steps)

    def _exit(self, run: TaskRun, spec: AgentSpec, state: dict[str, Any], update: Any,
              exc: BaseException | None) -> dict[str, Any]:
        pending = run.pending_step
        run.pending_step = None
        assert pending is not None
        reservation, slot, obs, decision = pending
        run.commit(reservation, Spend(usd=ZERO, steps=1))
        new_state = state
        error_name = None
        if exc is None:
            if update is not None and not isinstance(update, Mapping):
                exc = ConfigError(f"agent {spec.name!r} returned {type(update).__name__}; return a dict of updates "
                                  "(or None)", name=spec.name)
            else:
                new_state = {**state, **(update or {})}
                run.state = new_state
        if exc is not None:
            error_name = type(exc).__name__
            if isinstance(exc, Stop):
                run.stop(exc.reason)
            elif isinstance(exc, RunError | ConfigError):
                run.error = exc
            elif isinstance(exc, Exception):
                err = AgentError(f"agent {spec.name!r} raised {type(exc).__name__}: {exc}", agent=spec.name)
                err.__cause__ = exc
                run.error = err
            else:
                raise exc
        if run.hooks is not None:
            run.hooks.on_step_end(StepEnd(run.id, run.steps, spec.name, run.step_started_ns, time.time_ns(),
                                          run.step_cost, run.step_tokens, error_name))
        run.steps += 1
        if obs is not None and decision is not None:
            run.record(obs, decision, reservation=Spend(steps=1), cost=run.step_cost, tokens=run.step_tokens,
                       quality=run.qualities[-1] if run.qualities else None, slot=slot)
            run.give_feedback(obs, decision, run.step_cost, run.step_tokens,
                              (time.time_ns() - run.step_started_ns) / 1e9,
                              run.qualities[-1] if run.qualities else None, ok=exc is None, error=error_name)
        return new_state

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

    def _start(self, inputs: Any, budget: Budget | SharedBudget | None, policy: Any, task_id: str | None,
               category: str | None, features: Mapping[str, Any] | None) -> tuple[TaskRun, dict[str, Any]]:
        if not isinstance(inputs, Mapping):
            raise ConfigError(f"inputs must be a dict (the task's initial state), got {type(inputs).__name__}",
                              name="inputs")
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
        if policy is not None and policy is not self.policy:
            if not callable(getattr(policy, "decide", None)):
                raise ConfigError(f"policy must have a decide(obs) method, got {type(policy).__name__}",
                                  name="policy")
            self._bind(policy)
        run = TaskRun(self, ledger, policy or self.policy, inputs, task_id, category, features)
        run.started_ns = time.time_ns()
        if run.hooks is not None:
            run.hooks.on_task_start(TaskStart(
                run.id, self.graph.name, run.policy_name, run.policy_version, ledger.limits,
                budget.name if isinstance(budget, SharedBudget) else None, dict(inputs), run.started_ns,
                features={**({"category": category} if category is not None else {}), **(features or {})}))
        limit = ledger.limits.steps
        config = {"configurable": {_RUN_KEY: run, "thread_id": run.id},
                  "recursion_limit": (2 * limit + 10) if limit is not None else 1000}
        return run, config

    def _finish(self, run: TaskRun, exc: BaseException | None) -> RunResult:
        if run.pending_step is not None:  # a chosen agent that never ran: free its step, keep its decision
            r, slot, obs, decision = run.pending_step
            run.pending_step = None
            run.release(r)
            if obs is not None and decision is not None:
                run.record(obs, decision, reservation=Spend(steps=1), slot=slot)
        run.decisions = [d for d in run.decisions if d is not None]
        if exc is not None and run.error is None:
            if type(exc).__name__ == "GraphRecursionError":
                run.stop("recursion_limit")
            elif isinstance(exc, RunError | ConfigError):
                run.error = exc
            else:
                run.error = exc
        quality: float | None = None
        if self.scorer is not None and run.error is None:
            quality = float(self.scorer(run.state))
        elif run.qualities:
            quality = run.qualities[-1]
        truncated = run.stop_reason is not None or run.error is not None
        reason = run.stop_reason or (f"error:{type(run.error).__name__}" if run.error else "completed")
        result = RunResult(
            task_id=run.id, state=run.state, spent=run.ledger.spent, limits=run.ledger.limits, truncated=truncated,
            reason=reason, decisions=run.decisions, calls=run.calls, steps=run.steps, quality=quality,
            error=run.error, started_ns=run.started_ns, ended_ns=time.time_ns(),
        )
        if run.hooks is not None:
            run.hooks.on_task_end(result)
        return result

    def _raise_if_needed(self, result: RunResult, on_exhausted: str | None) -> RunResult:
        err = result.error
        if err is not None:
            if isinstance(err, RunError):
                err.result = result
                err.state = result.state
            raise err
        if result.truncated and result.reason.startswith("budget") and (on_exhausted or self.on_exhausted) == "error":
            raise BudgetExhausted(
                f"task {result.task_id}: budget exhausted ({result.reason}); spent {result.spent.as_dict()} of "
                f"{result.limits.as_dict()}",
                reason=result.reason, spent=result.spent, limits=result.limits, state=result.state, result=result,
            )
        return result

    def run(self, inputs: Mapping[str, Any], *, budget: Budget | SharedBudget | None = None,
            policy: RouterPolicy | None = None, task_id: str | None = None, category: str | None = None,
            features: Mapping[str, Any] | None = None,
            on_exhausted: Literal["truncate", "error"] | None = None) -> RunResult:
        """Run one task to END (or until its budget is exhausted) and return its result.

        ``policy`` overrides the compiled policy for this run; ``category`` and ``features`` are shown to policies.
        """
        if self._has_async:
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                return asyncio.run(self.arun(inputs, budget=budget, policy=policy, task_id=task_id,
                                             category=category, features=features, on_exhausted=on_exhausted))
            raise ConfigError("this graph has async agents and an event loop is running here",
                              hint="use `await app.arun(...)`")
        run, config = self._start(inputs, budget, policy, task_id, category, features)
        exc: BaseException | None = None
        try:
            self.langgraph.invoke(dict(inputs), config)
        except Exception as e:
            exc = e
        return self._raise_if_needed(self._finish(run, exc), on_exhausted)

    async def arun(self, inputs: Mapping[str, Any], *, budget: Budget | SharedBudget | None = None,
                   policy: RouterPolicy | None = None, task_id: str | None = None, category: str | None = None,
                   features: Mapping[str, Any] | None = None,
                   on_exhausted: Literal["truncate", "error"] | None = None) -> RunResult:
        """Async twin of :meth:`run`."""
        run, config = self._start(inputs, budget, policy, task_id, category, features)
        exc: BaseException | None = None
        try:
            await self.langgraph.ainvoke(dict(inputs), config)
        except asyncio.CancelledError:
            self._finish(run, None)
            raise
        except Exception as e:
            exc = e
        return self._raise_if_needed(self._finish(run, exc), on_exhausted)

    async def abatch(self, inputs: Sequence[Mapping[str, Any]], *, budget: Budget | SharedBudget | None = None,
                     concurrency: int = 8, policy: RouterPolicy | None = None, progress: bool = False,
                     categories: Sequence[str | None] | None = None) -> list[RunResult]:
        """Run many tasks concurrently on this event loop.

        A task that fails returns its partial result with ``result.error`` set instead of raising. A
        :class:`SharedBudget` is shared by all of them.
        """
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ConfigError("concurrency must be a positive int", name="concurrency")
        sem = asyncio.Semaphore(concurrency)
        bar = _progress(len(inputs), progress)

        async def one(i: int, item: Mapping[str, Any]) -> RunResult:
            async with sem:
                cat = categories[i] if categories is not None else None
                try:
                    res = await self.arun(item, budget=budget, policy=policy, category=cat,
                                          on_exhausted="truncate")
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
              categories: Sequence[str | None] | None = None) -> list[RunResult]:
        """Sync twin of :meth:`abatch`."""
        return asyncio.run(self.abatch(inputs, budget=budget, concurrency=concurrency, policy=policy,
                                       progress=progress, categories=categories))

    def flush(self) -> None:
        """Write out whatever the hooks buffer (spans, rows)."""
        if self.hooks is not None:
            self.hooks.flush()


def _price_key(p: tuple[Decimal, Decimal] | None, index: int) -> tuple[int, Decimal, Decimal, int]:
    if p is None:
        return (1, ZERO, ZERO, index)
    return (0, p[1], p[0], index)


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, enabled: bool) -> Any:
    if not enabled:
        return _NoBar()
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm ships with the learn extra
        return _NoBar()
    return tqdm(total=total, unit="task", dynamic_ncols=True)


__all__ = ["App"]
