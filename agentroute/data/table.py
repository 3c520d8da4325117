"""The routing table: what every option did on every query, as dense matrices over one long-format file.

A routing table holds real outcomes, one row per (query, option) in its long form: ``query_id``, ``text``,
``category`` (optional), ``option``, ``quality`` in [0, 1], ``cost_usd`` (optional), ``input_tokens``
(optional: estimated from the text when absent), ``output_tokens`` (optional) and ``response`` (optional: the text
the option answered, which :class:`~agentroute.providers.Recorded` replays). In memory it is a
:class:`RoutingTable`: ``(n_queries, n_options)`` matrices that fitting, environments and evaluation index
directly.

This module owns validation: every :class:`~agentroute.errors.DataError` names the file, the column and the
first offending rows. It must never import pandas at module level (``import agentroute`` stays fast), and
never guess a cost: an unknown cost is NaN, never 0.

Tables come from outside, so reading one raises nothing but ``DataError``, and sizes are bounded: a file is at most
:data:`MAX_FILE_BYTES` bytes and a query text at most :data:`MAX_TEXT_CHARS` characters. Both are module constants,
read when a table is loaded: raise them (``agentroute.data.table.MAX_TEXT_CHARS = ...``) for larger data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from agentroute.data._format import CHARS_PER_TOKEN, REQUIRED_COLUMNS, estimate_tokens, short
from agentroute.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CHARS_PER_TOKEN", "MAX_FILE_BYTES", "MAX_TEXT_CHARS", "OPTIONAL_COLUMNS", "REQUIRED_COLUMNS", "SUFFIXES",
           "RoutingTable", "check_file_size", "check_text", "estimate_tokens", "read_frame", "short"]

OPTIONAL_COLUMNS = ("category", "cost_usd", "input_tokens", "output_tokens", "response")
SUFFIXES = (".csv", ".jsonl", ".parquet")
MAX_FILE_BYTES = 1 << 30
"""Largest table or release file read (1 GiB); larger files are a :class:`DataError` before any parsing."""
MAX_TEXT_CHARS = 1_000_000
"""Longest query text, prompt or response accepted, in characters (about 250k tokens, past any context window)."""


def check_file_size(path: Path) -> None:
    """:class:`DataError` when ``path`` is larger than :data:`MAX_FILE_BYTES` (or cannot be looked at)."""
    try:
        size = path.stat().st_size
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: cannot read it: {getattr(e, 'strerror', None) or e}", name=str(path)) from None
    if size > MAX_FILE_BYTES:
        raise DataError(f"{path}: {size} bytes, larger than {MAX_FILE_BYTES} bytes", name=str(path),
                        hint="raise agentroute.data.table.MAX_FILE_BYTES if the file is meant to be this large")


def check_text(text: str, *, where: str, max_chars: int | None = None) -> str:
    """``text`` itself, or a :class:`DataError` naming ``where`` when it is longer than :data:`MAX_TEXT_CHARS`."""
    limit = MAX_TEXT_CHARS if max_chars is None else max_chars
    if len(text) > limit:
        raise DataError(f"{where}: {len(text)} characters, more than {limit} characters", name=where,
                        hint="raise agentroute.data.table.MAX_TEXT_CHARS if texts this long are meant")
    return text


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
    ``responses`` (optional) is an object array of the same shape holding what each option answered (``None``
    where not recorded); tables without recorded answers leave it ``None``.
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
    responses: np.ndarray | None = None

    def __post_init__(self) -> None:
        try:
            n, k = len(self.query_ids), len(self.options)
            if len(self.texts) != n or len(self.categories) != n:
                raise DataError("RoutingTable: query_ids, texts and categories must have the same length")
            if len(set(self.options)) != k:
                raise DataError(f"RoutingTable: duplicate options in {short(self.options)}")
        except TypeError as e:  # not sized, or unhashable options
            raise DataError(f"RoutingTable: {e}") from None
        for name in ("quality", "cost", "input_tokens", "output_tokens"):
            try:
                arr = np.asarray(getattr(self, name), dtype=np.float64)
            except (TypeError, ValueError, OverflowError) as e:
                raise DataError(f"RoutingTable.{name} is not a numeric matrix: {short(e)}", name=name) from None
            if arr.shape != (n, k):
                raise DataError(f"RoutingTable.{name} has shape {arr.shape}, expected ({n}, {k})", name=name)
            setattr(self, name, arr)
        if self.responses is not None:
            resp = np.empty((n, k), dtype=object)
            try:
                resp[:, :] = self.responses
            except (TypeError, ValueError) as e:
                raise DataError(f"RoutingTable.responses must be an ({n}, {k}) array of texts: {short(e)}",
                                name="responses") from None
            bad = [v for v in resp.reshape(-1) if v is not None and not isinstance(v, str)]
            if bad:
                raise DataError(f"RoutingTable.responses holds a non-text value {short(repr(bad[0]))}",
                                name="responses", hint="a response is a str, or None where not recorded")
            self.responses = resp

    def __len__(self) -> int:
        return len(self.query_ids)

    def __repr__(self) -> str:
        # A summary, never the arrays: printing a table of thousands of queries must stay one readable line.
        def few(items: list[str], k: int = 4) -> str:
            return ", ".join(items[:k]) + (f", ... (+{len(items) - k})" if len(items) > k else "")

        cats = sorted({str(c) for c in self.categories if c is not None})
        source = self.meta.get("source")
        return (f"RoutingTable({len(self)} queries x {self.n_options} options [{few(list(self.options))}], "
                f"{len(cats)} categories [{few(cats)}], cost {'known' if self.has_cost else 'partly unknown'}"
                + (f", source {source!r}" if source else "") + ")")

    __str__ = __repr__

    @property
    def n_options(self) -> int:
        """Number of options (columns)."""
        return len(self.options)

    @property
    def has_responses(self) -> bool:
        """True when the table records what the options answered (a ``response`` column)."""
        return self.responses is not None

    def response(self, i: int, option: str) -> str | None:
        """What ``option`` answered to query ``i`` (``None``: not recorded)."""
        if self.responses is None:
            return None
        v = self.responses[i, self.option_index(option)]
        return None if v is None else str(v)

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
            responses=None if self.responses is None else self.responses[ix].copy(),
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
            None if self.responses is None else self.responses[:, cols].copy(),
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
        if self.responses is not None:
            df["response"] = self.responses.reshape(-1)
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
        check_file_size(p)
        df = read_frame(p, suf)
        return cls.from_frame(df, drop_incomplete=drop_incomplete, source=str(p))

    @classmethod
    def from_frame(cls, df: pd.DataFrame, *, drop_incomplete: bool = False, source: str = "<frame>") -> RoutingTable:
        """Build a table from the canonical long format, validating it (errors name ``source``)."""
        from agentroute.data._frame import frame_fields

        return cls(**frame_fields(df, drop_incomplete=drop_incomplete, source=source, max_text_chars=MAX_TEXT_CHARS))


def read_frame(path: Path, suffix: str | None = None) -> pd.DataFrame:
    """Read a long-format file into a DataFrame (``query_id``, ``text``, ``option``, ``category`` as str)."""
    import pandas as pd

    suf = suffix or _suffix(path)
    str_cols = {"query_id": str, "text": str, "option": str, "category": str, "response": str}
    check_file_size(path)
    try:
        if suf == ".csv":
            df = pd.read_csv(path, dtype=str_cols, keep_default_na=True)
        elif suf == ".jsonl":
            df = pd.read_json(path, lines=True, dtype=str_cols)
        else:
            df = pd.read_parquet(path)
    except Exception as e:  # pandas, pyarrow and ujson raise many types for a malformed file: all mean "unreadable"
        raise DataError(f"{path}: cannot read it as {suf}: {type(e).__name__}: {short(e)}", name=str(path)) from e
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"{path}: cannot read it as {suf}: not a table of rows", name=str(path))
    return df


__all__ = [
    "CHARS_PER_TOKEN",
    "MAX_FILE_BYTES",
    "MAX_TEXT_CHARS",
    "OPTIONAL_COLUMNS",
    "REQUIRED_COLUMNS",
    "RoutingTable",
    "estimate_tokens",
]
