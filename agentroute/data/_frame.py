"""Validation of the long format and its pivot into the fields of a :class:`~agentroute.data.table.RoutingTable`.

Every check raises :class:`~agentroute.errors.DataError` naming the source, the column and the first
offending rows (1-based data rows, as a spreadsheet shows them after the header). Only imported when a table
is built from a frame.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from agentroute.data._format import REQUIRED_COLUMNS, _first, estimate_tokens, short
from agentroute.errors import DataError

if TYPE_CHECKING:
    import pandas as pd


def _rows(mask: Any) -> list[int]:
    return (np.flatnonzero(np.asarray(mask)) + 1).tolist()


def _plain(v: Any) -> Any:
    """Bools as 0/1 and ints past float's range as ±inf (``to_numeric`` raises OverflowError on them)."""
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, int) and v.bit_length() > 1000:
        return math.inf if v > 0 else -math.inf
    return v


def _numeric(df: pd.DataFrame, col: str, source: str) -> np.ndarray:
    import pandas as pd

    raw = df[col]
    vals = pd.to_numeric(raw.map(_plain), errors="coerce")
    bad = vals.isna() & raw.notna() & (raw.astype(str).str.strip() != "")
    if bad.any():
        rows = _rows(bad)
        raise DataError(
            f"{source}: column {col!r} has non-numeric values in rows {_first(rows)}",
            name=col,
            hint=f"first bad value: {short(repr(raw[bad].iloc[0]))}",
        )
    return np.asarray(vals, dtype=np.float64)


def _finite(arr: np.ndarray, col: str, source: str) -> None:
    inf = np.isinf(arr)
    if inf.any():
        raise DataError(f"{source}: column {col!r} is infinite in rows {_first(_rows(inf))}", name=col,
                        hint="an unknown value is empty (NaN), never infinite")


def frame_fields(df: pd.DataFrame, *, drop_incomplete: bool, source: str, max_text_chars: int) -> dict[str, Any]:
    """Validate ``df`` (the long format) and pivot it: the keyword arguments of a ``RoutingTable``."""
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(
            f"{source}: missing column(s) {', '.join(map(repr, missing))}",
            name=missing[0],
            hint=f"a routing table needs {', '.join(REQUIRED_COLUMNS)}; it has {', '.join(map(str, df.columns))}",
        )
    if len(df) == 0:
        raise DataError(f"{source}: the table has no rows", name=source)
    df = df.reset_index(drop=True)
    for col in ("query_id", "option"):
        blank = df[col].isna() | (df[col].astype(str).str.strip() == "")
        if blank.any():
            raise DataError(f"{source}: column {col!r} is empty in rows {_first(_rows(blank))}", name=col)
    qid = df["query_id"].astype(str).to_numpy()
    opt = df["option"].astype(str).to_numpy()

    quality = _numeric(df, "quality", source)
    nan_q = np.isnan(quality)
    if nan_q.any():
        raise DataError(
            f"{source}: column 'quality' is NaN in rows {_first(_rows(nan_q))}",
            name="quality",
            hint="drop those rows, or give them a score in [0, 1]",
        )
    out = (quality < 0.0) | (quality > 1.0)
    if out.any():
        raise DataError(
            f"{source}: column 'quality' is outside [0, 1] in rows {_first(_rows(out))}",
            name="quality",
            hint=f"first bad value: {quality[out][0]!r}; rescale scores to [0, 1]",
        )
    cost = _numeric(df, "cost_usd", source) if "cost_usd" in df.columns else np.full(len(df), np.nan)
    _finite(cost, "cost_usd", source)
    neg = cost < 0.0
    if neg.any():
        raise DataError(f"{source}: column 'cost_usd' is negative in rows {_first(_rows(neg))}", name="cost_usd")
    texts = df["text"].astype(object).where(df["text"].notna(), "").astype(str).to_numpy()
    lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
    too_long = lengths > max_text_chars
    if too_long.any():
        raise DataError(
            f"{source}: column 'text' has more than {max_text_chars} characters in rows "
            f"{_first(_rows(too_long))}",
            name="text",
            hint="raise agentroute.data.table.MAX_TEXT_CHARS if texts this long are meant",
        )
    tokens_estimated = "input_tokens" not in df.columns
    if tokens_estimated:
        itok = np.asarray([float(estimate_tokens(t)) for t in texts], dtype=np.float64)
    else:
        itok = _numeric(df, "input_tokens", source)
    otok = _numeric(df, "output_tokens", source) if "output_tokens" in df.columns else np.full(len(df), np.nan)
    for col, arr in (("input_tokens", itok), ("output_tokens", otok)):
        _finite(arr, col, source)
        if (arr < 0).any():
            raise DataError(f"{source}: column {col!r} is negative in rows {_first(_rows(arr < 0))}", name=col)

    import pandas as pd

    keys = pd.DataFrame({"q": qid, "o": opt})
    dup = keys.duplicated(keep="first").to_numpy()
    if dup.any():
        rows = _rows(dup)
        raise DataError(
            f"{source}: duplicate (query_id, option) pairs in rows {_first(rows)}",
            name="query_id",
            hint=f"first duplicate: ({qid[rows[0] - 1]!r}, {opt[rows[0] - 1]!r}); keep one row per pair",
        )
    q_codes, q_uniques = pd.factorize(qid, sort=False)
    o_codes, o_uniques = pd.factorize(opt, sort=False)
    n, k = len(q_uniques), len(o_uniques)
    have = np.zeros((n, k), dtype=bool)
    have[q_codes, o_codes] = True
    complete = have.all(axis=1)
    dropped = 0
    if not complete.all():
        bad_q = np.flatnonzero(~complete)
        if not drop_incomplete:
            first = bad_q[0]
            lacking = [str(o_uniques[j]) for j in np.flatnonzero(~have[first])]
            raise DataError(
                f"{source}: {len(bad_q)} queries lack some options, e.g. {q_uniques[first]!r} lacks "
                f"{_first(lacking, 3)}; first queries: {_first([str(q_uniques[i]) for i in bad_q])}",
                name="option",
                hint="add the missing rows, or drop those queries (drop_incomplete=True, --drop-incomplete)",
            )
        dropped = len(bad_q)
        if dropped == n:
            raise DataError(
                f"{source}: no query has an outcome for every option ({k} options)",
                name="option",
                hint="select fewer options before building the table",
            )

    def mat(values: np.ndarray) -> np.ndarray:
        m = np.full((n, k), np.nan)
        m[q_codes, o_codes] = values
        return m[complete]

    first_row = np.full(n, -1, dtype=np.int64)
    first_row[q_codes[::-1]] = np.arange(len(df))[::-1]  # earliest row of each query
    if "category" in df.columns:
        cats_raw = df["category"].to_numpy(dtype=object)
        cats: list[str | None] = [
            None if (c is None or (isinstance(c, float) and np.isnan(c)) or str(c) == "") else str(c)
            for c in cats_raw[first_row]
        ]
    else:
        cats = [None] * n
    keep = np.flatnonzero(complete)
    responses = None
    if "response" in df.columns:
        raw = df["response"].to_numpy(dtype=object)
        vals = np.empty(len(df), dtype=object)
        vals[:] = [None if (v is None or (isinstance(v, float) and np.isnan(v))) else str(v) for v in raw]
        rlen = np.fromiter((0 if v is None else len(v) for v in vals), dtype=np.int64, count=len(vals))
        if (rlen > max_text_chars).any():
            raise DataError(
                f"{source}: column 'response' has more than {max_text_chars} characters in rows "
                f"{_first(_rows(rlen > max_text_chars))}", name="response",
                hint="raise agentroute.data.table.MAX_TEXT_CHARS if responses this long are meant")
        rm = np.empty((n, k), dtype=object)
        rm[q_codes, o_codes] = vals
        responses = rm[complete]
    meta: dict[str, Any] = {"source": source}
    if tokens_estimated:
        meta["tokens_estimated"] = "input_tokens estimated as ceil(len(text) / 4)"
    if dropped:
        meta["dropped_incomplete"] = int(dropped)
    return dict(
        query_ids=[str(q_uniques[i]) for i in keep],
        texts=[str(texts[first_row[i]]) for i in keep],
        categories=[cats[i] for i in keep],
        options=[str(o) for o in o_uniques],
        quality=mat(quality),
        cost=mat(cost),
        input_tokens=mat(itok),
        output_tokens=mat(otok),
        meta=meta,
        responses=responses,
    )
