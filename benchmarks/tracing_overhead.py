"""Per-step cost of the routing loop with tracing off, with the SQL store, and with OTLP to a local receiver.

Runs the support graph (offline, simulated provider) task after task under each configuration, interleaved round
by round so drift hits them all alike, and reports the median CPU per agent step: on the task's own thread (the
hooks: a queue put per record), on the hooks' span-building thread, and on the exporters' threads; the ratio of
the task thread's CPU to tracing off (target: at most 1.25), the ratio of all of it, the wall time, and how long
the exporters took to drain afterwards. Two extra rows prove export never blocks a step: a SQL store whose every
batch takes 200 ms longer, and an OTLP endpoint where nothing listens.

    .venv/bin/python benchmarks/tracing_overhead.py                  # about a minute
    .venv/bin/python benchmarks/tracing_overhead.py --tasks 20 --rounds 2 --json out/tracing.json
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ["OTEL_TRACES_EXPORTER"] = "none"  # each configuration names its exporters itself
os.environ["OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"] = "1"  # bounds the dead-endpoint row's retries at shutdown
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "telemetry"))


from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from agentroute import Budget, policies, providers
from agentroute._telemetry_config import otlp_exporter
from agentroute.examples import support_graph, support_tasks
from agentroute.records import RunHooks
from agentroute.store.exporter import SqlSpanExporter, SqlSpanProcessor
from agentroute.telemetry import Tracing, configure_tracing

BUDGET = Budget(usd="0.004", tokens=3000, steps=4)


class TimedHooks(RunHooks):
    """Wraps hooks and adds up the CPU time they take on the task's thread (what a step pays for tracing)."""

    def __init__(self, inner: list[RunHooks]) -> None:
        self.inner = inner
        self.cpu = 0.0

    def _call(self, name: str, arg: Any) -> None:
        t0 = time.thread_time()
        for h in self.inner:
            getattr(h, name)(arg)
        self.cpu += time.thread_time() - t0

    def on_task_start(self, task: Any) -> None:
        self._call("on_task_start", task)

    def on_step_start(self, step: Any) -> None:
        self._call("on_step_start", step)

    def on_decision(self, record: Any) -> None:
        self._call("on_decision", record)

    def on_model_call(self, call: Any) -> None:
        self._call("on_model_call", call)

    def on_ledger(self, entry: Any) -> None:
        self._call("on_ledger", entry)

    def on_step_end(self, step: Any) -> None:
        self._call("on_step_end", step)

    def on_task_end(self, result: Any) -> None:
        self._call("on_task_end", result)


class TimedExporter(SpanExporter):
    """Wraps an exporter and adds up the CPU time its export thread spends in it (sleeps and waits excluded)."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner
        self.cpu = 0.0
        self.spans = 0

    def export(self, spans: Any) -> SpanExportResult:
        t0 = time.thread_time()
        try:
            return self.inner.export(spans)
        finally:
            self.cpu += time.thread_time() - t0
            self.spans += len(spans)

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.inner.force_flush(timeout_millis)


class SlowSqlExporter(SqlSpanExporter):
    """The SQL store on a slow disk: every batch takes 200 ms longer."""

    def export(self, spans: Any) -> Any:
        time.sleep(0.2)
        return super().export(spans)


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve() -> None:
    """Child mode: run OTLP/HTTP and OTLP/gRPC receivers in this process until stdin closes.

    The receivers live in their own process, as a collector would, so their decoding is not billed to the loop.
    """
    from tel_receivers import GrpcReceiver, HttpReceiver

    with HttpReceiver() as http, GrpcReceiver() as grpc:
        print(http.endpoint, grpc.endpoint, flush=True)
        sys.stdin.read()
        print(len(http.spans), len(grpc.spans), flush=True)


class Receivers:
    """The receivers' child process: ``.http`` and ``.grpc`` endpoints; ``close()`` returns the span counts."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        self.http, self.grpc = self.proc.stdout.readline().split()

    def close(self) -> tuple[int, int]:
        out, _ = self.proc.communicate("", timeout=60)
        http, grpc = out.split()
        return int(http), int(grpc)


Setup = tuple[Tracing, list[TimedExporter]]


def _setup(*exporters: tuple[str, SpanExporter]) -> Setup:
    """A private tracing setup like ``configure_tracing`` builds, with every exporter wrapped in a timer."""
    tracing = configure_tracing(exporters="none")
    timed = []
    for kind, exp in exporters:
        t = TimedExporter(exp)
        timed.append(t)
        proc = SqlSpanProcessor if kind == "sql" else BatchSpanProcessor
        delay = 200 if kind == "sql" else 5000  # as configure_tracing sets them
        tracing.provider.add_span_processor(proc(t, max_queue_size=65_536, schedule_delay_millis=delay))
    return tracing, timed


def configurations(tmp: Path, rx: Receivers) -> dict[str, Callable[[], Setup | None]]:
    """Name -> a function building a fresh tracing setup (``None`` = tracing off)."""
    dead = _dead_port()
    return {
        "off": lambda: None,
        "sql (sqlite)": lambda: _setup(("sql", SqlSpanExporter(f"sqlite:///{tmp / 'bench.db'}"))),
        "otlp http": lambda: _setup(("otlp", otlp_exporter(rx.http))),
        "otlp grpc": lambda: _setup(("otlp", otlp_exporter(rx.grpc, "grpc"))),
        "sql + otlp http": lambda: _setup(
            ("sql", SqlSpanExporter(f"sqlite:///{tmp / 'both.db'}")), ("otlp", otlp_exporter(rx.http))
        ),
        "sql, +200 ms/batch": lambda: _setup(("sql", SlowSqlExporter(f"sqlite:///{tmp / 'slow.db'}"))),
        "otlp, dead endpoint": lambda: _setup(("otlp", otlp_exporter(f"http://127.0.0.1:{dead}"))),
    }


def one_round(name: str, make: Callable[[], Setup | None], tasks: list[dict[str, Any]]) -> dict[str, float]:
    """Run ``tasks`` one after another under one configuration; per-step costs in seconds."""
    setup = make()
    timed = TimedHooks(setup[0].hooks if setup is not None else [])
    hooks = [timed] if setup is not None else []
    app = support_graph().compile(policy=policies.Random(seed=1), provider=providers.Simulated(seed=0), hooks=hooks)
    steps = 0
    t0, c0 = time.perf_counter(), time.process_time()
    for t in tasks:
        steps += app.run(t, budget=BUDGET).steps
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    drain, export_cpu, spans_cpu = 0.0, 0.0, 0.0
    if setup is not None:
        tracing, exporters = setup
        t1 = time.perf_counter()
        if name != "otlp, dead endpoint":  # a dead endpoint cannot drain; it is only there to show no blocking
            tracing.flush()
        else:
            for h in tracing.hooks:  # the spans are still built; only their export waits for the timeout
                getattr(h, "drain", lambda: None)()
        drain = time.perf_counter() - t1
        spans_cpu = sum(getattr(h, "cpu", 0.0) for h in tracing.hooks)  # the hooks' span-building thread
        tracing.shutdown()  # bounded by the exporter timeout for the dead endpoint
        export_cpu = sum(e.cpu for e in exporters)
    return {
        "wall": wall / steps,
        "cpu": cpu / steps,
        "hooks": timed.cpu / steps,
        "spans": spans_cpu / steps,
        "export": export_cpu / steps,
        "drain": drain,
        "steps": steps,
    }


def main() -> None:
    """Run the benchmark and print (and optionally save) the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=10, help="tasks per configuration and round")
    ap.add_argument("--rounds", type=int, default=12, help="interleaved rounds")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve()
        return
    tasks = [{"question": t["question"]} for t in support_tasks(args.tasks, seed=0)]
    rx = Receivers()
    with tempfile.TemporaryDirectory() as d:
        confs = configurations(Path(d), rx)
        one_round("off", confs["off"], tasks[:5])  # warm up LiteLLM, LangGraph and the caches
        rounds: dict[str, list[dict[str, float]]] = {k: [] for k in confs}
        for r in range(args.rounds):
            for name, make in confs.items():
                rounds[name].append(one_round(name, make, tasks))
            print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
    received, received_grpc = rx.close()
    med = statistics.median
    loop = med(x["cpu"] for x in rounds["off"])  # the loop's own CPU cost per step
    rows = []
    for name, xs in rounds.items():
        hooks, export = med(x["hooks"] for x in xs), med(x["export"] for x in xs)
        spans = med(x["spans"] for x in xs)
        rows.append({
            "config": name,
            "hooks_ms_per_step": hooks * 1e3,
            "spans_cpu_ms_per_step": spans * 1e3,
            "export_cpu_ms_per_step": export * 1e3,
            "task_thread_ratio": (loop + hooks) / loop,
            "tracing_cost_ratio": (loop + hooks + spans + export) / loop,
            "wall_ms_per_step": med(x["wall"] for x in xs) * 1e3,
            "wall_ratio": med(x["wall"] for x in xs) / med(x["wall"] for x in rounds["off"]),
            "cpu_ratio": med(x["cpu"] for x in xs) / loop,
            "drain_s": med(x["drain"] for x in xs),
        })  # fmt: skip
    print(
        f"\nloop without tracing: {loop * 1e3:.3f} ms CPU per agent step ({args.tasks} tasks x {args.rounds} "
        f"interleaved rounds, medians); {received} spans reached the OTLP/HTTP receiver, {received_grpc} the "
        "gRPC one (in another process)"
    )
    head = ("configuration", "hooks ms", "spans ms", "export ms", "thread x", "cost x", "wall ms", "wall x", "cpu x",
            "drain s")
    print(f"{head[0]:<22}" + "".join(f"{h:>10}" for h in head[1:]))
    for r in rows:
        vals = (
            r["hooks_ms_per_step"],
            r["spans_cpu_ms_per_step"],
            r["export_cpu_ms_per_step"],
            r["task_thread_ratio"],
            r["tracing_cost_ratio"],
            r["wall_ms_per_step"],
            r["wall_ratio"],
            r["cpu_ratio"],
            r["drain_s"],
        )
        print(f"{r['config']:<22}" + "".join(f"{v:>10.3f}" for v in vals))
    worst = max(r["task_thread_ratio"] for r in rows)
    worst_all = max(r["tracing_cost_ratio"] for r in rows)
    print(
        "\nhooks ms: CPU on the task's thread per step; spans ms: CPU of the hooks' span-building thread; export ms:"
        " CPU of the export threads; thread x: (loop + hooks) / loop; cost x: (loop + hooks + spans + export) / loop."
        "\nwall x and cpu x are measured end to end and move with other load on the machine."
    )
    print(f"worst task-thread ratio {worst:.2f}; target <= 1.25: {'OK' if worst <= 1.25 else 'OVER TARGET'}; "
          f"worst total cost ratio {worst_all:.2f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        doc = {"tasks": args.tasks, "rounds": args.rounds, "rows": rows, "per_round": rounds}
        args.json.write_text(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
