"""``agentroute demo``: the support graph over a batch of tasks, under every shipped policy, offline.

It shows the whole promise at once: the same graph and budget under different policies, the cost and quality each
one buys, and that no task ever spends past its budget (the "violations" column counts overruns, the violations the
settlement recorded, and must read 0). Decisions are traced to the trace store that ``agentroute traces`` reads by
default (``$AGENTROUTE_DATABASE_URL``, else ``./agentroute.db``), and to an OTLP collector only when the ``OTEL_*``
variables name one. Each policy is listed under the name its traces carry, so ``agentroute traces list --policy
NAME`` finds its tasks.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import click


def register(main: click.Group) -> None:
    """Add ``demo`` to the command line."""
    main.add_command(demo)


def shipped_policies(seed: int) -> dict[str, Any]:
    """Every policy the demo compares, by the name its decisions are recorded under (``policy.name``).

    The rule policy is the rule set ``policies/support.yaml``, whose name is ``support``.
    """
    from agentroute import policies
    from agentroute.examples import support_rules

    pols = [support_rules(), policies.CascadePolicy(threshold=0.6), policies.Cheapest(), policies.Strongest(),
            policies.Fixed("large"), policies.Random(seed=seed)]
    return {str(p.name): p for p in pols}


def next_command(db: str | None) -> str:
    """The ``agentroute traces list`` command that reads what the demo wrote to ``db`` (None: the default store)."""
    return "agentroute traces list" if db is None else f"agentroute traces list --db {shlex.quote(db)}"


def violations(result: Any) -> int:
    """1 when a result is an overrun or spent past any of its limits (must never happen), else 0.

    An overrun is what the settlement found (``result.violations``: a call spent past its worst case, or an unknown
    cost under a USD limit); the limits are checked here as well, on the known spend, so nothing can hide.
    """
    s, lim = result.spent, result.limits
    bad = bool(result.violations) or (lim.usd is not None and s.known_usd > lim.usd) or \
        (lim.tokens is not None and s.tokens > lim.tokens) or (lim.steps is not None and s.steps > lim.steps)
    return int(bad)


def _is_policy_file(p: str) -> bool:
    path = Path(p)
    return path.is_file() or path.with_name(path.name + ".json").is_file()


def _load_file(p: str) -> Any:
    """A saved policy for the demo's graph; a learned one must have been trained on a graph."""
    from agentroute.policies import load_policy

    pol = load_policy(p)
    card = getattr(pol, "card", None)
    if isinstance(card, dict) and (card.get("obs") or {}).get("kind") == "raw":
        raise click.BadParameter(f"{p}: a policy trained on {card.get('env')} cannot route a graph's points",
                                 param_hint="--policy")
    return pol


@click.command()
@click.option("--tasks", "n_tasks", default=200, show_default=True, type=click.IntRange(1, 100_000),
              help="Number of support tasks per policy.")
@click.option("--usd", default="0.004", show_default=True, help="USD budget per task.")
@click.option("--tokens", default=3000, show_default=True, type=click.IntRange(1), help="Token budget per task.")
@click.option("--steps", default=4, show_default=True, type=click.IntRange(1), help="Agent steps per task.")
@click.option("--policy", "only", multiple=True,
              help="Run only these policies (repeatable): a shipped policy's name, or a saved policy FILE (a rule "
                   "file, or a policy trained with `agentroute train --env agentroute/GraphRouting-v0`).")
@click.option("--db", default=None, metavar="URL",
              help="Trace store for the decisions: a SQLite file or a database URL (default: "
                   "$AGENTROUTE_DATABASE_URL, else ./agentroute.db, where `agentroute traces` looks).")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--concurrency", default=16, show_default=True, type=click.IntRange(1, 1024))
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.option("--json", "json_out", default=None, type=click.Path(dir_okay=False),
              help="Also write the table as JSON to this file.")
def demo(n_tasks: int, usd: str, tokens: int, steps: int, only: tuple[str, ...], db: str | None, seed: int,
         concurrency: int, quiet: bool, json_out: str | None) -> None:
    """Run the support graph over a batch of tasks under each shipped policy (offline) and compare them."""
    from rich.console import Console
    from rich.table import Table

    from agentroute import Budget, providers
    from agentroute._progress import enabled as progress_enabled
    from agentroute.examples import support_graph, support_tasks
    from agentroute.store.engine import resolve_url
    from agentroute.telemetry import configure_tracing

    console = Console(width=None if sys.stdout.isatty() else 140)
    budget = Budget(usd=usd, tokens=tokens, steps=steps)
    pols = shipped_policies(seed)
    if only:
        files = {p: _load_file(p) for p in only if p not in pols and _is_policy_file(p)}
        unknown = [p for p in only if p not in pols and p not in files]
        if unknown:
            raise click.BadParameter(f"unknown policy {unknown[0]!r}; choose from {', '.join(pols)}, or give a "
                                     "saved policy file", param_hint="--policy")
        chosen = {k: v for k, v in pols.items() if k in only}
        for p, pol in files.items():
            label = Path(p).stem if Path(p).suffix else Path(p).name
            chosen[label if label not in chosen else p] = pol
        pols = chosen
    store_url = resolve_url(db or os.environ.get("AGENTROUTE_DATABASE_URL"))
    tracing = configure_tracing(store_url=store_url)
    bars = progress_enabled(quiet)
    tasks = support_tasks(n_tasks, seed)
    graph = support_graph()
    table = Table(title=f"{n_tasks} support tasks per policy, budget per task: ${budget.usd}, "
                        f"{budget.tokens} tokens, {budget.steps} steps")
    for col in ("policy", "mean quality", "mean $", "max $", "budget $", "truncated", "violations",
                "decisions/task", "large-tier share"):
        table.add_column(col, justify="left" if col == "policy" else "right")
    t0 = time.perf_counter()
    summary: dict[str, dict[str, Any]] = {}
    for name, policy in pols.items():
        app = graph.compile(policy=policy, provider=providers.Simulated(seed=seed), hooks=tracing.hooks)
        if bars:
            console.print(f"[bold]{name}[/bold]")
        results = app.batch([{"question": t["question"]} for t in tasks], budget=budget, concurrency=concurrency,
                            progress=bars, categories=[t["category"] for t in tasks])
        spent = [r.spent.known_usd for r in results]
        quals = [r.quality for r in results if r.quality is not None]
        model_decisions = [d for r in results for d in r.decisions if d.kind == "model"]
        large = sum(d.chosen == "large" for d in model_decisions) / max(1, len(model_decisions))
        row = {
            "mean_quality": sum(quals) / len(quals) if quals else None,
            "mean_usd": float(sum(spent) / len(spent)), "max_usd": float(max(spent)),
            "budget_usd": float(budget.usd or 0),
            "truncated": sum(r.truncated for r in results), "violations": sum(violations(r) for r in results),
            "errors": sum(r.error is not None for r in results),
            "decisions_per_task": sum(len(r.decisions) for r in results) / len(results), "large_share": large,
        }
        summary[name] = row
        table.add_row(
            name, "-" if row["mean_quality"] is None else f"{row['mean_quality']:.3f}", f"{row['mean_usd']:.5f}",
            f"{row['max_usd']:.5f}", f"{budget.usd}", str(row["truncated"]), str(row["violations"]),
            f"{row['decisions_per_task']:.1f}", f"{large:.0%}",
        )
    tracing.flush()
    console.print(table)
    if json_out:
        Path(json_out).write_text(json.dumps({"tasks": n_tasks, "budget": budget.as_dict(), "policies": summary},
                                             indent=2))
    tracing.shutdown()
    where = resolve_url(store_url, hide_password=True)
    # Plain echo, not the console: a rich line wraps at the console width and breaks copy-paste of the command.
    click.echo(f"{len(pols) * n_tasks} tasks in {time.perf_counter() - t0:.1f}s; decisions traced to {where}")
    click.echo("Look at them with:")
    click.echo(f"  {next_command(db)}")
