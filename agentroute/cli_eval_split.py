"""``agentroute eval --split random|by-category|both``: fit routers on one part of a table, score them on the other.

A saved policy was fitted on something ``eval`` cannot see, so a split evaluation fits its own: each ``--fit NAME``
(the names of ``agentroute fit``) is fitted on the train part and swept on the test part of every split asked for.
``random`` holds out a share of the queries of every category (new queries, known domains); ``by-category`` holds out
whole categories (new domains: every test query is of a category training never saw). Both use
:func:`agentroute.data.split.split_table` with ``--test-size`` and ``--seed``. Writes ``DIR/<split>/metrics.json``
and ``DIR/<split>/frontier.png`` per split and ``DIR/splits.json`` with the splits side by side.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

SPLITS = ("random", "by-category")
DEFAULT_FIT = ("prior", "linear")


def run(table: Any, splits: tuple[str, ...], names: tuple[str, ...], out: str, *, test_size: float, seed: int,
        echo: Any) -> dict[str, Any]:
    """Fit ``names`` on each split's train part, evaluate on its test part; returns the side-by-side summary."""
    from agentroute.data.split import split_table
    from agentroute.evaluation import evaluate, write_report
    from agentroute.policies import make_router

    summary: dict[str, Any] = {"test_size": test_size, "seed": seed, "splits": {}}
    for split in splits:
        train, test = split_table(table, test_size, seed, by_category=split == "by-category")
        fitted = {name: make_router(name, seed=seed).fit(train) for name in names}
        res = evaluate(test, fitted)
        write_report(res, Path(out) / split, title=f"{split} split: {len(test)} held-out queries")
        held = test.meta.get("held_out_categories")
        summary["splits"][split] = {
            "n_train": len(train), "n_test": len(test),
            **({"held_out_categories": held} if held is not None else {}),
            "aiq_zero_router": res["zero_router"]["aiq"], "aiq_oracle": res["oracle"]["aiq"],
            "policies": {k: {m: v[m] for m in ("aiq", "gap_closed", "apgr") if m in v}
                         for k, v in res["policies"].items()},
        }
        what = f"{len(held)} categories held out whole" if held is not None else "queries held out in every category"
        echo(f"{split} split: {len(train)} train / {len(test)} test queries ({what})")
        for k, v in res["policies"].items():
            extra = f", APGR {v['apgr']:.3f}" if "apgr" in v else ""
            echo(f"  {k}: AIQ {v['aiq']:.4f}{extra}")
    path = Path(out) / "splits.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    echo(f"wrote {path}")
    return summary


def check(split: str | None, policies: tuple[str, ...], more: tuple[str, ...], fit: tuple[str, ...]) -> tuple[str, ...]:
    """The splits asked for; a usage error (exit code 2) for options that do not go with ``--split``."""
    if policies or more:
        raise click.UsageError("--split fits its own routers on each train part: give --fit NAME, not --policy "
                               "(a saved policy may have been fitted on the test part)")
    if fit and split is None:
        raise click.UsageError("--fit goes with --split (random, by-category or both)")
    return SPLITS if split == "both" else (str(split),)


__all__ = ["DEFAULT_FIT", "SPLITS", "check", "run"]
