"""Prometheus metrics of one server process, in the text exposition format (written here, no client library).

Counters: requests by model and status, spend and tokens by tenant, decisions by model, kind and chosen option,
truncated tasks by reason, budget violations (a task or a level that spent past its limit: the guarantee says
never, so this stays 0); a histogram of request latency by model. The routing decisions are counted by
:class:`MetricsHooks`, a :class:`~agentroute.records.RunHooks` the server adds to every served app.

Each worker process keeps its own numbers (scrape each worker, or sum over them); nothing here does I/O.
"""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict
from decimal import Decimal

from agentroute.records import RunHooks, RunResult, TaskStart
from agentroute.routing import DecisionRecord

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

_HELP = {
    "agentroute_requests_total": ("counter", "Chat completion requests, by served model and HTTP status."),
    "agentroute_spend_usd_total": ("counter", "USD spent by tasks, by tenant."),
    "agentroute_tokens_total": ("counter", "Tokens spent by tasks, by tenant."),
    "agentroute_decisions_total": ("counter", "Routing decisions, by served graph, kind and chosen option."),
    "agentroute_truncated_total": ("counter", "Tasks cut short, by reason."),
    "agentroute_budget_violations_total": ("counter", "Tasks or budget levels that spent past a limit (always 0)."),
    "agentroute_request_seconds": ("histogram", "Time to answer a chat completion, by served model."),
}


def _labels(pairs: tuple[tuple[str, str], ...]) -> str:
    if not pairs:
        return ""
    esc = (f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(10), "").replace(chr(34), chr(92) + chr(34))}"'
           for k, v in pairs)
    return "{" + ",".join(esc) + "}"


class Metrics:
    """Counters and histograms of this process; :meth:`render` writes the exposition text."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[str, dict[tuple[tuple[str, str], ...], float]] = defaultdict(dict)
        self._hist: dict[tuple[tuple[str, str], ...], list[float]] = {}
        self._sums: dict[tuple[tuple[str, str], ...], float] = {}
        self._counts: dict[tuple[tuple[str, str], ...], int] = {}
        self._counters["agentroute_budget_violations_total"][()] = 0.0

    def inc(self, name: str, value: float | Decimal = 1, **labels: str) -> None:
        """Add ``value`` to the counter ``name`` with ``labels``."""
        key = tuple(sorted(labels.items()))
        with self._lock:
            series = self._counters[name]
            series[key] = series.get(key, 0.0) + float(value)

    def observe(self, seconds: float, **labels: str) -> None:
        """Record one request latency."""
        key = tuple(sorted(labels.items()))
        with self._lock:
            counts = self._hist.setdefault(key, [0.0] * len(BUCKETS))
            i = bisect.bisect_left(BUCKETS, seconds)
            if i < len(BUCKETS):
                counts[i] += 1
            self._sums[key] = self._sums.get(key, 0.0) + seconds
            self._counts[key] = self._counts.get(key, 0) + 1

    def value(self, name: str, **labels: str) -> float:
        """One counter's value (0 when never set): for tests and /v1/usage."""
        with self._lock:
            return self._counters.get(name, {}).get(tuple(sorted(labels.items())), 0.0)

    def render(self) -> str:
        """The Prometheus text exposition format (version 0.0.4)."""
        lines: list[str] = []
        with self._lock:
            for name in sorted(self._counters):
                kind, text = _HELP.get(name, ("counter", name))
                lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
                for key, v in sorted(self._counters[name].items()):
                    lines.append(f"{name}{_labels(key)} {_num(v)}")
            name = "agentroute_request_seconds"
            lines += [f"# HELP {name} {_HELP[name][1]}", f"# TYPE {name} histogram"]
            for key, counts in sorted(self._hist.items()):
                cum = 0.0
                for le, c in zip(BUCKETS, counts, strict=True):
                    cum += c
                    lines.append(f"{name}_bucket{_labels((*key, ('le', _num(le))))} {_num(cum)}")
                lines.append(f"{name}_bucket{_labels((*key, ('le', '+Inf')))} {self._counts[key]}")
                lines.append(f"{name}_sum{_labels(key)} {_num(self._sums[key])}")
                lines.append(f"{name}_count{_labels(key)} {self._counts[key]}")
        return "\n".join(lines) + "\n"


def _num(v: float) -> str:
    return repr(float(v))


class MetricsHooks(RunHooks):
    """Counts every routing decision of a served app, by graph, kind and chosen option."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self._graph: dict[str, str] = {}

    def on_task_start(self, task: TaskStart) -> None:
        self._graph[task.task_id] = task.graph

    def on_decision(self, record: DecisionRecord) -> None:
        self.metrics.inc("agentroute_decisions_total", graph=self._graph.get(record.task_id, ""),
                         kind=str(record.kind), chosen=str(record.chosen))

    def on_task_end(self, result: RunResult) -> None:
        self._graph.pop(result.task_id, None)
        lim, spent = result.limits, result.spent
        over = ((lim.usd is not None and spent.known_usd > lim.usd)
                or (lim.tokens is not None and spent.tokens > lim.tokens)
                or (lim.steps is not None and spent.steps > lim.steps))
        n = len(result.violations) or (1 if over else 0)  # each recorded violation; an unrecorded excess still counts
        if n:
            self.metrics.inc("agentroute_budget_violations_total", n)


__all__ = ["BUCKETS", "Metrics", "MetricsHooks"]
