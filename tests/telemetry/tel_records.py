"""Hand-made run records, emitted in the order the runtime emits them, for testing hooks without a graph."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agentroute.budget import Budget, Spend
from agentroute.records import CallRecord, LedgerEntry, RunHooks, RunResult, StepEnd, StepStart, TaskStart
from agentroute.routing import Candidate, DecisionRecord, Masked
from agentroute.telemetry import OTelHooks

_clock = itertools.count(1_700_000_000_000_000_000, 1_000_000)


def now() -> int:
    """A strictly increasing fake clock (1 ms per tick), so span times are exact and ordered."""
    return next(_clock)


@dataclass
class FakeRun:
    """What :func:`emit_run` sent: every record, for comparing with spans and rows."""

    start: TaskStart
    steps: list[StepStart] = field(default_factory=list)
    step_ends: list[StepEnd] = field(default_factory=list)
    decisions: list[DecisionRecord] = field(default_factory=list)
    calls: list[CallRecord] = field(default_factory=list)
    ledger: list[LedgerEntry] = field(default_factory=list)
    result: RunResult | None = None


def _cands() -> tuple[Candidate, ...]:
    return (
        Candidate(
            "small",
            "model",
            rank=0,
            input_price=Decimal("0.00000015"),
            output_price=Decimal("0.0000006"),
            cost_estimate=Decimal("0.0003072"),
            descriptor={"model": "openai/gpt-4o-mini", "max_tokens": 512},
        ),
        Candidate(
            "large",
            "model",
            rank=1,
            input_price=Decimal("0.0000025"),
            output_price=Decimal("0.00001"),
            cost_estimate=Decimal("0.005125"),
            descriptor={"model": "openai/gpt-4o", "max_tokens": 512},
        ),
    )


def emit_run(
    hooks: RunHooks,
    *,
    task_id: str = "task-1",
    n_steps: int = 2,
    crash_in_step: int | None = None,
    fail_first_call: bool = False,
    secret: str | None = None,
    messages: bool = False,
    weights_hash: str | None = "abc123",
    cost: Decimal = Decimal("0.0001234"),
) -> FakeRun:
    """Emit a task of ``n_steps`` steps (each: a model decision and a call; agent choices between steps).

    ``crash_in_step`` stops emitting right after that step started (as if the process died). ``secret`` is put where
    credentials leak in practice: the task inputs, a provider error message, a descriptor and policy evidence.
    """
    limits = Budget(usd="0.01", tokens=5000, steps=n_steps + 1)
    inputs: dict[str, Any] = {"question": "why is my invoice wrong?", "priority": 2, "vip": True}
    if secret:
        inputs["api_key"] = secret
    run = FakeRun(TaskStart(task_id, "support", "rules", "3", limits, None, inputs, now()))
    hooks.on_task_start(run.start)
    spent = Spend()
    remaining = {"usd": "0.01", "tokens": 5000, "steps": n_steps + 1, "seconds": None}
    index = 0
    for i in range(n_steps):
        agent = "triage" if i == 0 else "expert"
        e = LedgerEntry(task_id, "reserve", f"step:{agent}", Spend(usd=Decimal(0), steps=1), now())
        run.ledger.append(e)
        hooks.on_ledger(e)
        s = StepStart(task_id, i, agent, now())
        run.steps.append(s)
        hooks.on_step_start(s)
        if crash_in_step == i:
            return run
        attempts = [("small", True)] if not fail_first_call else [("small", False), ("large", True)]
        step_cost = Decimal(0)
        step_tokens = 0
        for attempt_no, (tier, ok) in enumerate(attempts, start=1):
            r = LedgerEntry(
                task_id, "reserve", f"call:{agent}:{tier}", Spend(usd=Decimal("0.0003072"), tokens=530), now()
            )
            run.ledger.append(r)
            hooks.on_ledger(r)
            started = now()
            err = None
            if not ok:
                err = "AuthenticationError: Incorrect API key provided: " + (secret or "sk-none")
            c = CallRecord(
                task_id=task_id,
                step=i,
                agent=agent,
                tier=tier,
                model=f"openai/{tier}",
                provider="openai",
                attempt=1,
                fallback=attempt_no > 1,
                max_tokens=512,
                timeout=30.0,
                input_tokens=18 if ok else 0,
                output_tokens=40 if ok else 0,
                cost_usd=cost if ok else Decimal(0),
                started_ns=started,
                ended_ns=now(),
                response_model=f"openai/{tier}-2024" if ok else None,
                error_type=None if ok else "AuthenticationError",
                error=err,
                messages=[{"role": "user", "content": "why is my invoice wrong?"}] if messages else None,
                completion="Because of a proration." if messages and ok else None,
            )
            run.calls.append(c)
            hooks.on_model_call(c)
            op = "commit" if ok else "release"
            amount = Spend(usd=cost, tokens=58) if ok else r.amount
            x = LedgerEntry(task_id, op, r.what, amount, now())
            run.ledger.append(x)
            hooks.on_ledger(x)
            if ok:
                step_cost += cost
                step_tokens += 58
        evidence: dict[str, Any] = {"rule": "short-question", "line": 3}
        if weights_hash:
            evidence["weights_hash"] = weights_hash
        if secret:
            evidence["credentials"] = {"token": secret}
        d = DecisionRecord(
            task_id=task_id,
            index=index,
            kind="model",
            point=f"{agent}.model",
            node=agent,
            step=i,
            chosen=attempts[-1][0],
            probabilities={"small": 0.75, "large": 0.25},
            scores={"small": 0.9},
            reason="rule short-question -> small",
            policy="rules",
            policy_version="3",
            explored=i == 1,
            candidates=_cands()
            if not secret
            else (*_cands(), Candidate("custom", "model", rank=2, descriptor={"api_key": secret, "model": "x"})),
            masked=(Masked("xl", "budget:usd: a 16-token answer costs $0.02, $0.0099 left"),),
            budget_before=dict(remaining),
            budget_after=dict(remaining),
            reservation={"usd": "0.0003072", "tokens": 530, "steps": 0, "seconds": 0.0},
            cost_usd=step_cost,
            tokens=step_tokens,
            quality=0.8,
            evidence=evidence,
        )
        index += 1
        c2 = LedgerEntry(task_id, "commit", f"step:{agent}", Spend(usd=Decimal(0), steps=1), now())
        run.ledger.append(c2)
        hooks.on_ledger(c2)
        end = StepEnd(task_id, i, agent, s.started_ns, now(), step_cost, step_tokens, None)
        run.step_ends.append(end)
        hooks.on_step_end(end)
        run.decisions.append(d)
        hooks.on_decision(d)
        spent.add(Spend(usd=step_cost, tokens=step_tokens, steps=1))
        # the agent choice after this step
        nxt = "expert" if i + 1 < n_steps else "__end__"
        a = DecisionRecord(
            task_id=task_id,
            index=index,
            kind="agent",
            point=f"route:{agent}",
            node=agent,
            step=i + 1,
            chosen=nxt,
            probabilities={"expert": 1.0 if nxt == "expert" else 0.0, "__end__": 1.0 if nxt != "expert" else 0.0},
            scores={},
            reason="declared default",
            policy="rules",
            policy_version="3",
            explored=False,
            candidates=(
                Candidate("__end__", "agent", rank=0, cost_estimate=Decimal(0)),
                Candidate("expert", "agent", rank=1, cost_estimate=Decimal("0.00001")),
            ),
            masked=(),
            budget_before=dict(remaining),
            budget_after=dict(remaining),
        )
        index += 1
        run.decisions.append(a)
        hooks.on_decision(a)
    spent.seconds = 0.25
    run.result = RunResult(
        task_id=task_id,
        state={"answer": "x"},
        spent=spent,
        limits=limits,
        truncated=False,
        reason="completed",
        decisions=run.decisions,
        calls=run.calls,
        steps=n_steps,
        quality=0.8,
        started_ns=run.start.started_ns,
        ended_ns=now(),
    )
    hooks.on_task_end(run.result)
    return run


def wall_now() -> int:
    """Real wall-clock nanoseconds (for records whose times must be 'now')."""
    return time.time_ns()


class Capture:
    """A private tracer provider whose spans land in memory, synchronously, and hooks bound to it."""

    def __init__(self, capture_content: bool | None = False) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.hooks = OTelHooks(self.provider, capture_content=capture_content)

    def spans(self) -> list:
        return list(self.exporter.get_finished_spans())

    def named(self, prefix: str) -> list:
        return [s for s in self.spans() if s.name.startswith(prefix)]
