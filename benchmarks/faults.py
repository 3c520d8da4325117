"""Attacks on the budget guarantee (issue 13), one row each: what the provider billed, what the ledger charged,
whether the run flagged it, and how far past its ``seconds`` limit a task ran.

Every model call goes through the real path (LiteLLM's OpenAI client over HTTP) to ``agentroute.testing.
FakeOpenAIServer``, which misbehaves on demand and keeps what it really generated (``billed``), whatever it reported.
A row is *silent* when the provider billed past the limit or past what was charged, or a task ran past its
``seconds`` limit by more than the tolerance, and nothing in the result said so. The target is 0 silent rows.

    python benchmarks/faults.py                 # every row; the Redis / PostgreSQL rows are skipped when down
    python benchmarks/faults.py --only seconds  # the rows whose key contains a word (see --help)

Redis is ``AGENTROUTE_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/2``), PostgreSQL
``AGENTROUTE_TEST_POSTGRES_URL`` (a private schema, dropped after). About 100 s on a loaded 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("OTEL_TRACES_EXPORTER", "none")

import agentroute as ar
from agentroute.budget import Budget, Ledger, SharedBudget, Spend
from agentroute.errors import ConfigError
from agentroute.testing import FakeOpenAIServer, RecordingHooks

REPO = Path(__file__).resolve().parents[1]
PIN, POUT = Decimal("0.000001"), Decimal("0.000004")
TOLERANCE = 0.25
"""Seconds past a ``seconds`` limit that count as on time (the time to settle and leave the graph)."""


@dataclass
class Row:
    attack: str
    limit: str
    billed: Decimal | None = None
    charged: Decimal | None = None
    flagged: str = "no"
    overrun: float | None = None
    note: str = ""

    leaked: bool = False

    @property
    def silent(self) -> bool:
        if self.leaked:
            return True
        over = self.billed is not None and self.limit.startswith("$") and self.billed > Decimal(self.limit[1:])
        under = self.billed is not None and (self.charged is None or self.charged < self.billed * Decimal("0.999"))
        late = self.overrun is not None and self.overrun > TOLERANCE
        return (over or under or late) and self.flagged == "no"


def tier(url: str, name: str = "t", max_tokens: int = 100, **params: Any) -> ar.ModelTier:
    return ar.ModelTier(name, model="openai/gpt-4o-mini", api_base=url, params={"api_key": "sk-fake", **params},
                        input_cost_per_token=PIN, output_cost_per_token=POUT, max_tokens=max_tokens, timeout=30)


def app_of(tiers: list[ar.ModelTier], calls: int = 1, *, is_async: bool = False, hooks: Any = None,
           max_retries: int = 0) -> ar.App:
    g = ar.AgentGraph("faults")
    msgs = [{"role": "user", "content": "answer this question please"}]
    if is_async:
        async def ask(state: dict[str, Any], ctx: Any) -> dict[str, Any]:
            return {"a": [(await ctx.acomplete(msgs)).text for _ in range(calls)]}
    else:
        def ask(state: dict[str, Any], ctx: Any) -> dict[str, Any]:
            return {"a": [ctx.complete(msgs).text for _ in range(calls)]}
    g.add_agent("ask", ask, tiers=tiers)
    g.start("ask")
    return g.compile(policy=ar.policies.Cheapest(), max_retries=max_retries, hooks=[hooks] if hooks else [])


def flags(res: ar.RunResult, caught: list[warnings.WarningMessage]) -> str:
    found = []
    violations = getattr(res, "violations", None) or []
    if violations:
        found.append(f"violation x{len(violations)}")
    billing = {getattr(c, "billing", "reported").split(":")[0] for c in res.calls} - {"reported"}
    if billing:
        found.append("charged " + "/".join(sorted(billing)))
    if res.reason.startswith("budget:seconds"):
        found.append("budget:seconds")
    if res.error is not None:
        found.append(f"error {type(res.error).__name__}")
    if caught:
        found.append(f"warning x{len(caught)}")
    return ", ".join(found) or "no"


def run_task(app: ar.App, budget: Any, is_async: bool = False) -> tuple[ar.RunResult, list[Any]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if is_async:
                res = asyncio.run(app.arun({"question": "q"}, budget=budget))
            else:
                res = app.run({"question": "q"}, budget=budget)
        except ar.errors.RunError as e:
            res = e.result
    return res, [w for w in caught if issubclass(w.category, RuntimeWarning | UserWarning)]


def provider_row(name: str, plan: list[Any], limit: str, *, calls: int = 1, default: Any = "ok",
                 **params: Any) -> Row:
    with FakeOpenAIServer(completion_tokens=60) as s:
        s.plan, s.default = list(plan), default
        res, caught = run_task(app_of([tier(s.url, **params)], calls), Budget(usd=limit))
        return Row(name, f"${limit}", s.billed_usd(PIN, POUT), res.spent.usd, flags(res, caught),
                   note=f"{len(s.billed)} calls billed; {res.status if hasattr(res, 'status') else res.reason}")


def over_generate() -> Row:
    return provider_row("provider returns 10x max_tokens", [("overgenerate", 10)], "0.0005")


def usage_missing() -> Row:
    return provider_row("usage missing, 30 calls", [], "0.0005", calls=30, default="no_usage")


def under_report() -> Row:
    return provider_row("usage under-reported (1/1 tokens)", [("usage", 1, 1)], "0.0005")


def negative_usage() -> Row:
    return provider_row("negative usage in one reply", [("usage", -100_000, -100_000)], "0.0005", calls=30)


def params_n_tools() -> Row:
    tools = [{"type": "function", "function": {"name": f"f{i}", "description": "a long tool description " * 10,
                                               "parameters": {"type": "object", "properties": {}}}} for i in range(5)]
    row = provider_row("tier params n=5, large tools / response_format", [], "0.002", n=5, tools=tools,
                       response_format={"type": "json_object"})
    try:
        ar.ModelTier("t", model="openai/gpt-4o-mini", params={"extra_body": {"max_tokens": 5000}})
        row.note += "; extra_body max_tokens accepted"
    except ConfigError:
        row.note += "; extra_body max_tokens: ConfigError"
    return row


def unknown_cost() -> Row:
    """``ctx.route`` settled with an unknown cost after a known model call, 12 tasks on one SharedBudget."""
    with FakeOpenAIServer(completion_tokens=60) as s:
        g = ar.AgentGraph("unknown")

        def ask(state: dict[str, Any], ctx: Any) -> dict[str, Any]:
            ctx.complete([{"role": "user", "content": "answer this"}])
            choice = ctx.route("tool", "lookup", [ar.routing.Candidate("lookup", "tool", cost_estimate=None)])
            choice.settle(Spend(usd=None))  # a tool whose price is unknown
            return {"a": 1}

        g.add_agent("ask", ask, tiers=[tier(s.url)])
        g.start("ask")
        app = g.compile(policy=ar.policies.Cheapest(), max_retries=0)
        team = SharedBudget(Budget(usd="0.002"))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            results = app.batch([{"question": "q"}] * 12, budget=team, concurrency=4)
        spent = team.ledger.spent
        flagged = sorted({flags(r, []) for r in results} - {"no"}) + ([f"warning x{len(caught)}"] if caught else [])
        if spent.unknown_usd:
            flagged.append(f"{spent.unknown_usd} unknown costs kept apart")
        return Row("committing an unknown cost (SharedBudget)", "$0.002", s.billed_usd(PIN, POUT), spent.known_usd,
                   "; ".join(flagged) or "no", note=f"{len(s.billed)} calls billed over 12 tasks")


def seconds_row(is_async: bool) -> Row:
    with FakeOpenAIServer(completion_tokens=60) as s:
        app = app_of([tier(s.url)], is_async=is_async)
        run_task(app, Budget(seconds=30), is_async)  # this process's first call: not the attack
        s.billed.clear()
        s.plan = [("trickle", 8.0)]
        res, caught = run_task(app, Budget(seconds=1.0, usd="0.01"), is_async)
        row = Row(f"seconds=1 vs a trickled body ({'async' if is_async else 'sync'})", "1 s", None, res.spent.usd,
                  flags(res, caught), overrun=res.spent.seconds - 1.0,
                  note=f"{res.spent.seconds:.3f} s on the task's clock; attempt {res.calls[-1].error_type}")
        deadline = time.monotonic() + 10  # the server finishes the trickle (and bills it) after the task left
        while not s.billed and time.monotonic() < deadline:
            time.sleep(0.1)
        row.billed = s.billed_usd(PIN, POUT)
        return row


def cold_start() -> Row:
    code = textwrap.dedent("""
        import time
        t0 = time.monotonic()
        import agentroute as ar
        from agentroute.testing import FakeOpenAIServer
        with FakeOpenAIServer() as s:
            t = ar.ModelTier("t", model="openai/gpt-4o-mini", api_base=s.url, params={"api_key": "k"},
                             input_cost_per_token="0.000001", output_cost_per_token="0.000004")
            g = ar.AgentGraph("cold")
            g.add_agent("ask", lambda st, ctx: {"a": ctx.complete([{"role": "user", "content": "hi"}]).text},
                        tiers=[t])
            g.start("ask")
            res = g.compile(policy=ar.policies.Cheapest()).run({"q": "x"}, budget=ar.Budget(seconds=1.0))
        print(res.reason, res.spent.seconds, time.monotonic() - t0)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=REPO,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    reason, secs, wall = out.stdout.split()[-3:] if out.returncode == 0 else ("error", "nan", "nan")
    return Row("seconds=1, first call in a cold process", "1 s", None, None,
               "no" if reason == "completed" else reason, overrun=float(secs) - 1.0,
               note=f"{reason}: {float(secs):.3f} s on the task's clock, {float(wall):.1f} s with the import")


def timed_out_attempt() -> Row:
    with FakeOpenAIServer(completion_tokens=60) as s:
        s.plan = [("stall", 2.0)]
        t = ar.ModelTier("t", model="openai/gpt-4o-mini", api_base=s.url, params={"api_key": "k"},
                         input_cost_per_token=PIN, output_cost_per_token=POUT, max_tokens=100, timeout=0.5)
        res, caught = run_task(app_of([t]), Budget(usd="0.0005"))
        deadline = time.monotonic() + 5
        while not s.billed and time.monotonic() < deadline:
            time.sleep(0.1)
        return Row("timed-out attempt (provider bills it)", "$0.0005", s.billed_usd(PIN, POUT), res.spent.usd,
                   flags(res, caught), note=f"attempts: {[c.error_type for c in res.calls]}")


def cancelled_attempt() -> Row:
    with FakeOpenAIServer(completion_tokens=60) as s:
        s.plan = [("stall", 1.5)]
        app = app_of([tier(s.url)], is_async=True)
        team = SharedBudget(Budget(usd="0.0005"))

        async def go() -> None:
            task = asyncio.ensure_future(app.arun({"q": "x"}, budget=team))
            await asyncio.sleep(0.5)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

        asyncio.run(go())
        deadline = time.monotonic() + 5
        while not s.billed and time.monotonic() < deadline:
            time.sleep(0.1)
        spent = team.ledger.spent.usd
        return Row("cancelled attempt (provider bills it)", "$0.0005", s.billed_usd(PIN, POUT), spent,
                   note="the shared ledger's spend after the cancel")


def echoed_key() -> Row:
    secret = "sk-live-" + uuid.uuid4().hex
    with FakeOpenAIServer() as s:
        s.default = "echo"
        hooks = RecordingHooks()
        t = ar.ModelTier("t", model="openai/gpt-4o-mini", api_base=s.url,
                         params={"api_key": secret, "extra_headers": {"x-team-token": "tt-" + secret[-12:]}},
                         input_cost_per_token=PIN, output_cost_per_token=POUT)
        res, _ = run_task(app_of([t], hooks=hooks), Budget(usd="0.01"))
        seen = repr(hooks.__dict__) + repr(res.summary()) + str(res.error)
        leaked = secret in seen or secret[-12:] in seen
        return Row("API key echoed in a 401", "-", flagged="redacted" if not leaked else "no", leaked=leaked,
                   note="key found in records" if leaked else "key in no record, result or error text")


def abort_graph() -> Row:
    import tempfile

    from agentroute.envs.scenario import load_scenario

    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "s.yaml"
        f.write_text("env: agentroute/GraphRouting-v0\noptions:\n  reward: boundary\n  graph: 'os:abort'\n")
        try:
            load_scenario(f)
            return Row('scenario graph: "os:abort"', "-", note="loaded (os.abort not called?)")
        except ConfigError as e:
            return Row('scenario graph: "os:abort"', "-", flagged="ConfigError", note=str(e).split("\n")[0][:70])


def regex_bomb() -> Row:
    from agentroute.budget import BudgetStatus
    from agentroute.policies.rules import RulePolicy
    from agentroute.routing import Candidate, Observation, TaskInfo

    try:
        policy = RulePolicy([{"name": "evil", "when": {"regex": "^(a+)+$"}, "choose": "large"}],
                            default={"model": "small"})
    except ConfigError as e:
        return Row("rule regex ^(a+)+$", "-", flagged="ConfigError", note=str(e).split("\n")[0][:70])
    cands = (Candidate("small", "model", rank=0), Candidate("large", "model", rank=1))
    status = BudgetStatus(limits=Budget(), spent=Spend(), remaining=Budget())
    obs = Observation(task=TaskInfo("t", "a" * 26 + "!"), kind="model", point="a.model", node="a", step=0,
                      history=(), budget=status, candidates=cands)
    t0 = time.monotonic()
    try:
        policy.decide(obs)
    except Exception as e:
        return Row("rule regex ^(a+)+$", "-", flagged=type(e).__name__, note=str(e)[:70])
    took = time.monotonic() - t0
    return Row("rule regex ^(a+)+$ on 26 characters", "-", flagged="no" if took > 0.1 else "RE2 (linear time)",
               note=f"one decision in {took * 1e3:.2f} ms")


def huge_prompt() -> Row:
    from agentroute.data.convert import parse_prompt

    t0 = time.monotonic()
    try:
        parse_prompt("x" * (4 << 20))
        outcome = "parsed"
    except Exception as e:
        outcome = type(e).__name__
    return Row("parsers: a 4 MB prompt", "-", flagged=outcome if outcome != "parsed" else "no",
               note=f"{outcome} in {time.monotonic() - t0:.2f} s (fuzzed: tests/hostile/test_fuzz_*.py)")


def redis_url() -> str | None:
    import socket

    url = os.environ.get("AGENTROUTE_TEST_REDIS_URL", "redis://127.0.0.1:6379/2")
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
        return url
    except OSError:
        return None


def ledger_rounding() -> Row:
    import tempfile

    from agentroute.ledgers import SqlLedger

    with tempfile.TemporaryDirectory() as d:
        backend = SqlLedger(f"sqlite:///{d}/l.db", name="exact")
        refused = backend.try_reserve(Budget(usd=Decimal("1.5e-10")), Spend(usd=Decimal("2e-10")))
        try:
            SharedBudget(Budget(usd="9e8"), backend=backend)
            big = "accepted"
        except ConfigError:
            big = "ConfigError"
        backend.close()
    return Row("SQL ledger: 2e-10 on a 1.5e-10 limit; $9e8 limit", "$1.5e-10",
               flagged=f"refused ({refused})" if refused else "no", note=f"$9e8 limit: {big}")


WORKER = textwrap.dedent("""
    import sys, time
    from decimal import Decimal
    from agentroute.budget import Budget, Ledger, SharedBudget, Spend
    from agentroute.ledgers import RedisLedger
    team = SharedBudget(Budget(usd="1"), backend=RedisLedger(sys.argv[1], name=sys.argv[2], lease=3.0))
    Ledger(Budget(), parents=[team.ledger]).reserve(Spend(usd=Decimal("0.9")), what="a long call")
    print("held", flush=True)
    time.sleep(600)
""")


def killed_worker() -> Row:
    from agentroute.budget import Unaffordable
    from agentroute.ledgers import RedisLedger

    url = redis_url()
    if url is None:
        return Row("kill -9 of a worker (Redis ledger, lease 3 s)", "$1", note="skipped: Redis is down")
    name = f"faults-{uuid.uuid4().hex[:8]}"
    proc = subprocess.Popen([sys.executable, "-c", WORKER, url, name], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        backend = RedisLedger(url, name=name, lease=3.0)
        mine = Ledger(Budget(), parents=[SharedBudget(Budget(usd="1"), backend=backend).ledger])
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        killed = time.monotonic()
        while True:
            try:
                mine.reserve(Spend(usd=Decimal("0.5"))).release()
                break
            except Unaffordable:
                if time.monotonic() - killed > 30:
                    break
                time.sleep(0.05)
        back = time.monotonic() - killed
        backend.reset(spend=True)
        backend.close()
        return Row("kill -9 of a worker (Redis ledger, lease 3 s)", "$1", flagged="lease reclaimed",
                   note=f"budget usable again {back:.1f} s after the kill")
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def _proxy(port: int) -> Any:
    sys.path.insert(0, str(REPO / "tests" / "store"))
    from store_helpers import Proxy

    return Proxy("127.0.0.1", port)


def _up(port: int) -> bool:
    import socket

    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def ledger_down() -> Row:
    """A batch of 24 tasks on a Redis-backed SharedBudget; Redis is cut off for 2 s after 0.3 s."""
    from agentroute.errors import LedgerError, RunError
    from agentroute.examples import support_graph, support_tasks
    from agentroute.ledgers import RedisLedger

    attack = "ledger (Redis) down 2 s during a batch"
    url = redis_url()
    if url is None:
        return Row(attack, "$0.05", note="skipped: Redis is down")
    with _proxy(6379) as proxy:
        backend = RedisLedger(url.replace("127.0.0.1:6379", f"127.0.0.1:{proxy.port}"),
                              name=f"faults-{uuid.uuid4().hex[:8]}", lease=30)
        team = SharedBudget(Budget(usd="0.05"), backend=backend, per_task=Budget(steps=4))
        app = support_graph().compile(policy=ar.policies.Random(seed=3), provider=ar.providers.Simulated(seed=3))
        lag = [0.0]

        async def go() -> list[ar.RunResult]:
            async def ticker() -> None:  # how long the event loop stalls while the ledger is unreachable
                while True:
                    t = time.monotonic()
                    await asyncio.sleep(0.01)
                    lag[0] = max(lag[0], time.monotonic() - t - 0.01)

            tick = asyncio.ensure_future(ticker())
            asyncio.get_running_loop().call_later(0.3, proxy.cut)
            asyncio.get_running_loop().call_later(2.3, proxy.restore)
            try:
                tasks = [{"question": t["question"]} for t in support_tasks(24, seed=3)]
                return await app.abatch(tasks, budget=team, concurrency=4)
            finally:
                tick.cancel()

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            results = asyncio.run(go())
        proxy.restore()
        errors = [r.error for r in results if r is not None and r.error is not None]
        raw = [e for e in errors if not isinstance(e, RunError)]
        spent = backend.totals()[0].known_usd
        own = sum((r.spent.known_usd for r in results if r is not None), Decimal(0))
        held = [h for h in backend.holds() if h.get("state") == "held"]
        backend.reset(spend=True)
        backend.close()
    ledger_errors = sum(isinstance(e, LedgerError) for e in errors)
    lost = len(results) != 24 or any(r is None for r in results)
    flagged = f"LedgerError x{ledger_errors}" if ledger_errors else "rode it out"
    return Row(attack, "$0.05", own, spent, flagged, leaked=bool(raw or held or lost),
               note=f"billed: the tasks' own spend; {len(results)} results, raw driver errors {len(raw)}, "
                    f"holds left {len(held)}, "
                    f"event loop stalled {lag[0]:.2f} s at most")


def trace_store_down() -> Row:
    """30 tasks traced to PostgreSQL through a proxy cut off for 3 s: rows lost, tasks left running, flush()."""
    import tempfile

    from sqlalchemy import text

    from agentroute.examples import support_graph, support_tasks
    from agentroute.store import get_engine
    from agentroute.telemetry import configure_tracing

    attack = "trace store (PostgreSQL) down 3 s"
    if not _up(5432):
        return Row(attack, "-", note="skipped: PostgreSQL is down")
    sys.path.insert(0, str(REPO / "tests" / "store"))
    from store_helpers import drop_schema, private_schema

    base = os.environ.get("AGENTROUTE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    url, schema = private_schema(base)
    spool = tempfile.mkdtemp()
    os.environ["AGENTROUTE_SPOOL_DIR"] = spool
    try:
        with _proxy(5432) as proxy:
            through = url.replace("@127.0.0.1:5432/", f"@127.0.0.1:{proxy.port}/")
            tracing = configure_tracing(exporters="none", store_url=through, schedule_delay_millis=50)
            app = support_graph().compile(policy=ar.policies.Random(seed=4), provider=ar.providers.Simulated(seed=4),
                                          hooks=tracing.hooks)
            questions = [{"question": t["question"]} for t in support_tasks(30, seed=4)]
            results = []
            for i, q in enumerate(questions):
                if i == 5:
                    proxy.cut()
                    cut_at = time.monotonic()
                if i > 5 and proxy.down and time.monotonic() - cut_at > 3.0:
                    during = tracing.flush(timeout_millis=300)
                    proxy.restore()
                results.append(app.run(q, budget=Budget(usd="0.004", steps=4)))
                time.sleep(0.15)
            report = tracing.flush()
            tracing.shutdown()
        with get_engine(url).connect() as conn:
            tasks = conn.execute(text("select count(*) from agentroute_tasks")).scalar_one()
            running = conn.execute(text("select count(*) from agentroute_tasks where status = 'running'")).scalar_one()
    finally:
        os.environ.pop("AGENTROUTE_SPOOL_DIR", None)
        drop_schema(base, schema)
    lost = tasks != len(results) or running or not report
    return Row(attack, "-", flagged=f"flush() during the outage: {bool(during)} ({during.pending_rows} rows pending)",
               leaked=bool(lost), note=f"{tasks}/{len(results)} tasks stored, {running} left running, "
                                       f"flush() after: {bool(report)}, dropped {report.dropped_rows}")


ATTACKS: list[tuple[str, Callable[[], Row]]] = [
    ("overgenerate", over_generate), ("no-usage", usage_missing), ("under-report", under_report),
    ("negative-usage", negative_usage), ("params", params_n_tools), ("unknown-cost", unknown_cost),
    ("seconds-sync", lambda: seconds_row(False)), ("seconds-async", lambda: seconds_row(True)),
    ("seconds-cold", cold_start), ("timeout", timed_out_attempt), ("cancel", cancelled_attempt),
    ("kill", killed_worker), ("ledger-down", ledger_down), ("store-down", trace_store_down),
    ("secrets", echoed_key), ("abort", abort_graph), ("regex", regex_bomb),
    ("parsers", huge_prompt), ("rounding", ledger_rounding),
]


def fmt(v: Decimal | None) -> str:
    return "-" if v is None else f"${v:.6f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    keys = ", ".join(k for k, _ in ATTACKS)
    ap.add_argument("--only", default="", help=f"run only the rows whose key contains one of these words: {keys}")
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    rows = []
    wanted = [w for w in args.only.split(",") if w] or [""]
    for key, attack in ATTACKS:
        if any(w in key for w in wanted):
            rows.append(attack())
            print(f"  ran: {key} ({time.monotonic() - t0:.0f} s)", file=sys.stderr, flush=True)
    head = "| attack | limit | provider billed | charged | flagged | seconds over | silent | note |"
    print(head)
    print("|" + "---|" * 8)
    for r in rows:
        over = "-" if r.overrun is None else f"{r.overrun:+.3f}"
        print(f"| {r.attack} | {r.limit} | {fmt(r.billed)} | {fmt(r.charged)} | {r.flagged} | {over} | "
              f"{'SILENT' if r.silent else 'no'} | {r.note} |")
    silent = sum(r.silent for r in rows)
    print(f"\n{silent} silent rows of {len(rows)} ({time.monotonic() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
