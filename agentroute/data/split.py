"""Train / test splits of a routing table, written as files the other commands read (``agentroute data split``).

Two ways to split, both seeded and reproducible:

* **by query** (the default, :meth:`RoutingTable.split`): a random share of the queries of every category goes
  to the test part, so both parts hold every category in the same proportions. ``benchmarks/frontier.py`` and
  ``agentroute train --builtin`` use this split with ``test_size=0.2, seed=0``, so a policy trained there is never
  scored on its own training queries by ``agentroute eval --table DIR/test.parquet``.
* **by category** (:func:`split_by_category`): whole categories are held out, so the test part asks about task
  types the router never saw in training.

This module never reads outcome columns to decide a split.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from agentroute.data.table import RoutingTable
from agentroute.errors import DataError

DEFAULT_TEST_SIZE = 0.2
DEFAULT_SEED = 0
SUFFIXES = (".parquet", ".csv", ".jsonl")


def split_by_category(table: RoutingTable, test_size: float = DEFAULT_TEST_SIZE,
                      seed: int = DEFAULT_SEED) -> tuple[RoutingTable, RoutingTable]:
    """Hold out whole categories, so the test part asks about task types training never saw.

    In an order shuffled with ``seed``, each category joins the test part when that brings its share of the queries
    closer to ``test_size`` (the first always joins; the last always stays in training).
    """
    if not 0.0 < test_size < 1.0:
        raise DataError(f"split: test_size must be in (0, 1), got {test_size}", name="test_size")
    groups: dict[str, list[int]] = {}
    for i, c in enumerate(table.categories):
        groups.setdefault("" if c is None else str(c), []).append(i)
    if len(groups) < 2:
        raise DataError(f"split by category: the table has {len(groups)} category, it needs at least 2",
                        name="category", hint="split by query instead (leave out --by-category)")
    names = sorted(groups)
    order = np.random.default_rng(seed).permutation(len(names))
    want = test_size * len(table)
    test: list[int] = []
    held: list[str] = []
    for k in order[:-1]:  # the last category in the shuffled order always stays in training
        size = len(groups[names[k]])
        if test and abs(len(test) + size - want) >= abs(len(test) - want):
            continue  # this one would take the test part further from the share asked for
        held.append(names[k])
        test.extend(groups[names[k]])
    mask = np.zeros(len(table), dtype=bool)
    mask[test] = True
    train_part, test_part = table.subset(np.flatnonzero(~mask)), table.subset(np.flatnonzero(mask))
    test_part.meta["held_out_categories"] = sorted(held)
    return train_part, test_part


def split_table(table: RoutingTable, test_size: float = DEFAULT_TEST_SIZE, seed: int = DEFAULT_SEED, *,
                by_category: bool = False) -> tuple[RoutingTable, RoutingTable]:
    """(train, test) parts of ``table``: by query, stratified by category (default), or whole categories held out.

    Each part's ``meta["split"]`` records how it was made (``part``, ``test_size``, ``seed``, ``by``).
    """
    if by_category:
        train, test = split_by_category(table, test_size, seed)
    else:
        train, test = table.split(test_size=test_size, seed=seed)
    how = {"test_size": test_size, "seed": seed, "by": "category" if by_category else "query"}
    train.meta["split"] = {"part": "train", **how}
    test.meta["split"] = {"part": "test", **how}
    return train, test


def write_split(train: RoutingTable, test: RoutingTable, out_dir: str | Path,
                suffix: str = ".parquet") -> tuple[Path, Path]:
    """Write ``OUT_DIR/train<suffix>`` and ``OUT_DIR/test<suffix>`` (``.parquet``, ``.csv`` or ``.jsonl``)."""
    if suffix not in SUFFIXES:
        raise DataError(f"split: unknown format {suffix!r}", name="format", hint=f"one of {', '.join(SUFFIXES)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = out / f"train{suffix}", out / f"test{suffix}"
    train.write(paths[0])
    test.write(paths[1])
    return paths


__all__ = ["DEFAULT_SEED", "DEFAULT_TEST_SIZE", "split_by_category", "split_table", "write_split"]
