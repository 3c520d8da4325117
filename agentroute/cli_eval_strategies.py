"""``agentroute eval --table TABLE --strategy NAME [NAME ...] --out DIR``: strategies on a recorded table.

Each NAME (``acar``, ``acar-N``, ``fanout``, ``llm-router``, ``cache``, or one of the table's options) runs every
query of TABLE as a task of its own, its calls replayed from the table's recorded answers
(:class:`~agentroute.providers.Recorded`), under ``--budget`` USD per task when given. Writes ``DIR/metrics.json``
(``strategies.<name>.quality`` and ``.cost_usd``, means per query, beside the single models, the zero-router hull and
each strategy's distance above it), ``DIR/frontier.png`` and ``DIR/decisions.jsonl`` (every decision record, for
off-policy evaluation). ``eval_cmd`` dispatches here when ``--strategy`` is given.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click


def run(table_path: str, names: Sequence[str], out: str, *, train_path: str | None, budget: str | None,
        prices: str | None, drop_incomplete: bool, quiet: bool) -> None:
    """Evaluate the strategies ``names`` on TABLE (see the module docstring)."""
    from decimal import Decimal, InvalidOperation

    from agentroute._cli_util import CliError
    from agentroute.data import RoutingTable, apply_prices, load_prices
    from agentroute.strategies import registry
    from agentroute.strategies.evaluate import evaluate_strategies, plot_strategies

    if not names:
        raise CliError("give at least one strategy: --strategy NAME [NAME ...]")
    limit = None
    if budget is not None:
        try:
            limit = Decimal(budget)
        except InvalidOperation:
            raise CliError(f"--budget {budget!r} is not an amount of USD (e.g. --budget 0.01)") from None
        if not limit > 0:
            raise CliError(f"--budget {budget} must be > 0 USD")
    table = RoutingTable.read(table_path, drop_incomplete=drop_incomplete)
    train = RoutingTable.read(train_path, drop_incomplete=drop_incomplete) if train_path else None
    if prices:
        p = load_prices(prices)
        table = apply_prices(table, p)
        train = apply_prices(train, p) if train is not None else None
    strategies = registry.build(list(names), table, train)
    result = evaluate_strategies(table, strategies, budget_usd=limit)
    reports = result.pop("_reports")
    result["fitted_on"] = train_path if train_path else f"{table_path} (in-sample: pass --train TRAIN to hold out)"
    result["budget_usd"] = None if limit is None else float(limit)
    for s in strategies:
        result["strategies"][s.name]["config"] = registry.describe(s)
    d = Path(out)
    d.mkdir(parents=True, exist_ok=True)
    mpath = d / "metrics.json"
    mpath.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    png = d / "frontier.png"
    plot_strategies(result, png, title=f"{Path(table_path).name}: {len(table)} queries")
    with (d / "decisions.jsonl").open("w", encoding="utf-8") as fh:
        for rep in reports.values():
            for rec in rep.records:
                fh.write(json.dumps(rec.to_dict(), default=str) + "\n")
    if not quiet:
        best = result["best_single"]
        click.echo(f"best single {best['option']}: quality {best['quality']:.3f} at ${best['cost']:.5f}")
        for name, m in result["strategies"].items():
            extra = ""
            if "escalation_avoided" in m:
                extra += f", escalation avoided {m['escalation_avoided']:.0%}"
            if m["truncated"]:
                extra += f", truncated {m['truncated']:.0%}"
            click.echo(f"  {name}: quality {m['quality']:.3f} at ${m['cost_usd']:.5f} "
                       f"({m['above_hull']:+.3f} vs the zero-router hull{extra})")
        click.echo(f"wrote {mpath}, {png} and {d / 'decisions.jsonl'}")


def names_of(strategy: Sequence[str], more: Sequence[Any]) -> list[str]:
    """``--strategy A B C`` arrives as ``--strategy A`` (repeatable) and the extra arguments ``B C``."""
    return [*strategy, *(str(m) for m in more)]


__all__ = ["names_of", "run"]
