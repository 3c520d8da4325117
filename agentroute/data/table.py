"""The routing table: what every option did on every query, as dense matrices over one long-format file.

A routing table holds real outcomes, one row per (query, option) in its long form: ``query_id``, ``text``,
``category`` (optional), ``option``, ``quality`` in [0, 1], ``cost_usd`` (optional), ``input_tokens``
(optional: estimated from the text when absent) and ``output_tokens`` (optional). In memory it is a
:class:`RoutingTable`: ``(n_queries, n_options)`` matrices that fitting, environments and evaluation index
directly.

This module owns validation: every :class:`~agentroute.errors.DataError` names the file, the column and the
first offending rows. It must never import pandas at module level (``import agentroute`` stays fast), and
never guess a cost: an unknown cost is NaN, never 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from agentroute.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

REQUIRED_COLUMNS = ("query_id", "text", "option", "quality")
OPTIONAL_COLUMNS = ("category", "cost_usd", "input_tokens", "output_tokens")
SUFFIXES = (".csv", ".jsonl", ".parquet")
CHARS_PER_TOKEN = 4
"""The documented token estimate when a release has no counts: ``ceil(len(text) / 4)`` tokens."""


def estimate_tokens(text: str) -> int:
    """Estimated token count of ``text``: ``ceil(len(text) / 4)``, at least 1 (the usual rule for English)."""
    return max(1, math.ceil(len(text) / CHARS_PER_TOKEN))


def _first(rows: Sequence[Any], k: int = 5) -> str:
    shown = ", ".join(repr(r) for r in list(rows)[:k])
    more = f" and {len(rows) - k} more" if len(rows) > k else ""
    return shown + more


def _suffix(path: Path) -> str:
    suf = path.suffix.lower()
    if suf not in SUFFIXES:
        raise DataError(
            f"{path}: unknown table format {suf or '(no suffix)'!r}",
            name=str(path),
            hint="use a .csv, .jsonl or .parquet file",
        )
    return suf


@dataclass
class RoutingTable:
    """Outcomes of ``options`` on ``query_ids``: quality, cost, tokens as ``(n_queries, n_options)`` arrays.

    ``quality`` is in [0, 1]; ``cost`` is USD, NaN where unknown; ``output_tokens`` is NaN where unknown.
    ``meta`` records where the table came from and what was estimated (``tokens_estimated``, ``cost_basis``).
    """

    query_ids: list[str]
    texts: list[str]
    categories: list[str | None]
    options: list[str]
    quality: np.ndarray
    cost: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n, k = len(self.query_ids), len(self.options)
        if len(self.texts) != n or len(self.categories) != n:
            raise DataError("RoutingTable: query_ids, texts and categories must have the same length")
        if len(set(self.options)) != k:
            raise DataError(f"RoutingTable: duplicate options in {self.options}")
        for name in ("quality", "cost", "input_tokens", "output_tokens"):
            arr = np.asarray(getattr(self, name), dtype=np.float64)
            if arr.shape != (n, k):
                raise DataError(f"RoutingTable.{name} has shape {arr.shape}, expected ({n}, {k})", name=name)
            setattr(self, name, arr)

    def __len__(self) -> int:
        return len(self.query_ids)

    @property
    def n_options(self) -> int:
        """Number of options (columns)."""
        return len(self.options)

    @property
    def has_cost(self) -> bool:
        """True when every cost is known."""
        return bool(self.cost.size) and not bool(np.isnan(self.cost).any())

    def cost_scale(self) -> float:
        """The cost unit λ is measured in: mean USD cost of the option whose mean cost is highest (1.0 if none).

        A policy's ``cost_weight`` λ trades quality against ``cost / cost_scale``: λ = 1 means paying the
        strongest option's average price is worth one whole quality point. The environments use the same unit.
        """
        known = ~np.isnan(self.cost)
        counts = known.sum(axis=0)
        if not counts.any():
            return 1.0
        means = np.where(known, self.cost, 0.0).sum(axis=0)[counts > 0] / counts[counts > 0]
        top = float(means.max())
        return top if top > 0 else 1.0

    def option_index(self, option: str) -> int:
        """Column of ``option``; :class:`DataError` naming the known options otherwise."""
        try:
            return self.options.index(option)
        except ValueError:
            raise DataError(
                f"option {option!r} is not in this table",
                name=option,
                hint=f"options: {', '.join(self.options)}",
            ) from None

    # ------------------------------------------------------------------ slicing

    def subset(self, idx: Sequence[int] | np.ndarray) -> RoutingTable:
        """The queries at positions ``idx`` (in that order), as a new table."""
        ix = np.asarray(idx, dtype=np.int64)
        return RoutingTable(
            query_ids=[self.query_ids[i] for i in ix],
            texts=[self.texts[i] for i in ix],
            categories=[self.categories[i] for i in ix],
            options=list(self.options),
            quality=self.quality[ix].copy(),
            cost=self.cost[ix].copy(),
            input_tokens=self.input_tokens[ix].copy(),
            output_tokens=self.output_tokens[ix].copy(),
            meta=dict(self.meta),
        )

    def select_options(self, options: Sequence[str]) -> RoutingTable:
        """The same queries restricted to ``options`` (in that order)."""
        cols = [self.option_index(o) for o in options]
        return RoutingTable(
            list(self.query_ids),
            list(self.texts),
            list(self.categories),
            list(options),
            self.quality[:, cols].copy(),
            self.cost[:, cols].copy(),
            self.input_tokens[:, cols].copy(),
            self.output_tokens[:, cols].copy(),
            dict(self.meta),
        )

    def split(self, test_size: float = 0.2, seed: int = 0) -> tuple[RoutingTable, RoutingTable]:
        """A seeded random (train, test) split of the queries, stratified by category."""
        if not 0.0 < test_size < 1.0:
            raise DataError(f"split: test_size must be in (0, 1), got {test_size}", name="test_size")
        n = len(self)
        if n < 2:
            raise DataError(f"split: a table of {n} queries cannot be split", name="test_size")
        rng = np.random.default_rng(seed)
        test: list[int] = []
        groups: dict[str | None, list[int]] = {}
        for i, c in enumerate(self.categories):
            groups.setdefault(c, []).append(i)
        for key in sorted(groups, key=lambda c: "" if c is None else str(c)):
            members = np.asarray(groups[key])
            rng.shuffle(members)
            test.extend(members[: round(len(members) * test_size)].tolist())
        n_test = min(max(1, len(test)), n - 1)
        if len(test) != n_test:  # tiny groups rounded to nothing (or everything): fall back to a plain split
            test = rng.permutation(n)[:n_test].tolist()
        mask = np.zeros(n, dtype=bool)
        mask[test] = True
        return self.subset(np.flatnonzero(~mask)), self.subset(np.flatnonzero(mask))

    # ------------------------------------------------------------------ long format

    def to_frame(self) -> pd.DataFrame:
        """The canonical long format: one row per (query, option)."""
        import pandas as pd

        n, k = self.quality.shape
        df = pd.DataFrame(
            {
                "query_id": np.repeat(np.asarray(self.query_ids, dtype=object), k),
                "text": np.repeat(np.asarray(self.texts, dtype=object), k),
                "category": np.repeat(np.asarray(self.categories, dtype=object), k),
                "option": np.tile(np.asarray(self.options, dtype=object), n),
                "quality": self.quality.reshape(-1),
                "cost_usd": self.cost.reshape(-1),
                "input_tokens": self.input_tokens.reshape(-1),
                "output_tokens": self.output_tokens.reshape(-1),
            }
        )
        return df

    def write(self, path: str | Path) -> None:
        """Write the long format to ``path`` (.csv, .jsonl or .parquet by suffix)."""
        p = Path(path)
        suf = _suffix(p)
        df = self.to_frame()
        p.parent.mkdir(parents=True, exist_ok=True)
        if suf == ".csv":
            df.to_csv(p, index=False)
        elif suf == ".jsonl":
            df.to_json(p, orient="records", lines=True, force_ascii=False)
        else:
            df.to_parquet(p, index=False)

    @classmethod
    def read(cls, path: str | Path, *, drop_incomplete: bool = False) -> RoutingTable:
        """Read and validate a long-format table (.csv, .jsonl or .parquet by suffix)."""
        p = Path(path)
        suf = _suffix(p)
        if not p.exists():
            raise DataError(f"{p}: no such file", name=str(p))
        df = read_frame(p, suf)
        return cls.from_frame(df, drop_incomplete=drop_incomplete, source=str(p))

    @classmethod
    def from_frame(cls, df: pd.DataFrame, *, drop_incomplete: bool = False, source: str = "<frame>") -> RoutingTable:
        """Build a table from the canonical long format, validating it (errors name ``source``)."""
        from agentroute.data._frame import frame_to_table

        return frame_to_table(cls, df, drop_incomplete=drop_incomplete, source=source)


def read_frame(path: Path, suffix: str | None = None) -> pd.DataFrame:
    """Read a long-format file into a DataFrame (``query_id``, ``text``, ``option``, ``category`` as str)."""
    import pandas as pd

    suf = suffix or _suffix(path)
    str_cols = {"query_id": str, "text": str, "option": str, "category": str}
    try:
        if suf == ".csv":
            return pd.read_csv(path, dtype=str_cols, keep_default_na=True)
        if suf == ".jsonl":
            return pd.read_json(path, lines=True, dtype=str_cols)
        return pd.read_parquet(path)
    except (ValueError, OSError) as e:
        raise DataError(f"{path}: cannot read it as {suf}: {e}", name=str(path)) from e


__all__ = ["CHARS_PER_TOKEN", "OPTIONAL_COLUMNS", "REQUIRED_COLUMNS", "RoutingTable", "estimate_tokens"]
