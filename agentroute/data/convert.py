"""Converters from the three public routing releases to the canonical long format.

- ``routerbench``: RouterBench's wide CSVs (a 0/1 column per model, ``<model>|total_cost`` in USD,
  ``<model>|model_response``). Real costs. Input tokens are estimated from the prompt and output tokens from
  the recorded response (``ceil(chars / 4)``); a model whose correctness is missing for a prompt leaves that
  query incomplete (dropped with ``drop_incomplete``).
- ``llmrouter``: LLMRouter's ``train.json`` (``question``, ``scores``), joined on the query text with
  ``default_query_train.jsonl`` for the task (the category) and priced with ``default_llm.json`` (USD per
  million tokens). No token counts: input tokens are estimated from the text and 256 output tokens are
  assumed, which the table's ``meta`` says.
- ``routellm``: RouteLLM's MMLU correctness pairs (``mmlu_<subject>.csv``), minus the prompts listed in
  ``mmlu__contaminated_prompts.jsonl`` as RouteLLM drops them. No cost in the release: pass ``prices``.

Every converter returns a validated :class:`~agentroute.data.table.RoutingTable`; it never writes next to its
sources.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from agentroute.data.prices import Prices, apply_prices
from agentroute.data.table import RoutingTable, estimate_tokens
from agentroute.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

FORMATS = ("routerbench", "llmrouter", "routellm")
LLMROUTER_ASSUMED_OUTPUT_TOKENS = 256


def _expand(sources: Sequence[str | Path], pattern: str) -> list[Path]:
    out: list[Path] = []
    for s in sources:
        p = Path(s)
        if p.is_dir():
            out.extend(sorted(p.glob(pattern)))
        elif p.exists():
            out.append(p)
        else:
            raise DataError(f"{p}: no such file or directory", name=str(p))
    return out


def _prompt_text(raw: Any) -> str:
    """RouterBench prompts are stringified Python lists of strings; join them."""
    s = "" if raw is None or (isinstance(raw, float) and np.isnan(raw)) else str(raw)
    if s.startswith("[") and s.endswith("]"):
        try:
            val = ast.literal_eval(s)
        except (ValueError, SyntaxError):
            return s
        if isinstance(val, list):
            return "\n".join(str(v) for v in val)
    return s


def routerbench_frame(sources: Sequence[str | Path]) -> pd.DataFrame:
    """The long frame of RouterBench wide CSVs (files, or folders holding ``*.csv``)."""
    import pandas as pd

    files = _expand(sources, "*.csv")
    if not files:
        raise DataError(f"routerbench: no CSV files in {', '.join(map(str, sources))}", name="SRC")
    parts: list[pd.DataFrame] = []
    seen: dict[str, int] = {}
    for f in files:
        df = pd.read_csv(f)
        for col in ("sample_id", "prompt"):
            if col not in df.columns:
                raise DataError(f"{f}: not a RouterBench CSV (no {col!r} column)", name=col)
        models = [c[: -len("|total_cost")] for c in df.columns if c.endswith("|total_cost")]
        if not models:
            raise DataError(f"{f}: not a RouterBench CSV (no '<model>|total_cost' columns)", name="total_cost")
        texts = [_prompt_text(p) for p in df["prompt"]]
        qids: list[str] = []
        for sid in df["sample_id"].astype(str):
            n = seen.get(sid, 0)
            seen[sid] = n + 1
            qids.append(sid if n == 0 else f"{sid}#{n}")
        cat = df["eval_name"].astype(str).tolist() if "eval_name" in df.columns else [f.stem] * len(df)
        in_tok = [float(estimate_tokens(t)) for t in texts]
        for m in models:
            if m not in df.columns:
                raise DataError(f"{f}: model {m!r} has a cost column but no correctness column", name=m)
            resp_col = f"{m}|model_response"
            out_tok = (
                [float(estimate_tokens(_prompt_text(r))) for r in df[resp_col]]
                if resp_col in df.columns
                else [np.nan] * len(df)
            )
            part = pd.DataFrame(
                {
                    "query_id": qids,
                    "text": texts,
                    "category": cat,
                    "option": m,
                    "quality": pd.to_numeric(df[m], errors="coerce"),
                    "cost_usd": pd.to_numeric(df[f"{m}|total_cost"], errors="coerce"),
                    "input_tokens": in_tok,
                    "output_tokens": out_tok,
                }
            )
            parts.append(part[part["quality"].notna()])  # an unknown outcome is a missing row, not a zero
    return pd.concat(parts, ignore_index=True)


def convert_routerbench(sources: Sequence[str | Path], *, drop_incomplete: bool = False) -> RoutingTable:
    """RouterBench wide CSVs as a routing table (real USD costs)."""
    t = RoutingTable.from_frame(routerbench_frame(sources), drop_incomplete=drop_incomplete, source="routerbench")
    t.meta.update(
        format="routerbench",
        tokens_estimated="input tokens from the prompt, output tokens from the response: ceil(chars / 4)",
        cost_basis="real USD cost of each call, as recorded in RouterBench",
    )
    return t


def _llmrouter_files(sources: Sequence[str | Path]) -> tuple[Path, Path | None, Path | None]:
    files = _expand(sources, "*.json*")
    by_name = {f.name: f for f in files}
    train = by_name.get("train.json") or next((f for f in files if f.suffix == ".json" and "llm" not in f.name), None)
    if train is None:
        raise DataError("llmrouter: no train.json among the sources", name="train.json")
    queries = next((f for f in files if f.suffix == ".jsonl"), None)
    llms = by_name.get("default_llm.json") or next((f for f in files if "llm" in f.name and f != train), None)
    return train, queries, llms


def convert_llmrouter(
    sources: Sequence[str | Path], *, prices: Prices | None = None, drop_incomplete: bool = False
) -> RoutingTable:
    """LLMRouter ``train.json`` (+ task names from the queries JSONL, + prices from ``default_llm.json``)."""
    import pandas as pd

    train_path, queries_path, llm_path = _llmrouter_files(sources)
    try:
        rows = json.loads(train_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataError(f"{train_path}: not valid JSON ({e})", name=str(train_path)) from None
    if not isinstance(rows, list) or not rows or "scores" not in rows[0]:
        raise DataError(f"{train_path}: expected a list of {{question, scores}} objects", name=str(train_path))
    task_of: dict[str, str] = {}
    if queries_path is not None:
        with queries_path.open(encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    q = json.loads(line)
                    task_of.setdefault(q.get("query", ""), q.get("task_name"))
    recs: list[dict[str, Any]] = []
    for i, r in enumerate(rows):
        text = str(r.get("question", ""))
        for opt, score in r["scores"].items():
            recs.append(
                {
                    "query_id": f"llmrouter-{i}",
                    "text": text,
                    "category": task_of.get(text),
                    "option": opt,
                    "quality": score,
                    "input_tokens": float(estimate_tokens(text)),
                }
            )
    df = pd.DataFrame(recs)
    df["output_tokens"] = np.nan
    t = RoutingTable.from_frame(df, drop_incomplete=drop_incomplete, source=str(train_path))
    if prices is None and llm_path is not None:
        raw = json.loads(llm_path.read_text(encoding="utf-8"))
        raw["_assumed_output_tokens"] = LLMROUTER_ASSUMED_OUTPUT_TOKENS
        prices = Prices.from_dict(raw, source=str(llm_path))
    if prices is not None:
        t = apply_prices(t, prices)
    t.meta.update(format="llmrouter", tokens_estimated="input tokens estimated from the text, ceil(chars / 4)")
    if queries_path is None:
        t.meta["categories"] = "none: pass default_query_train.jsonl to get the task of each query"
    return t


def convert_routellm(
    sources: Sequence[str | Path], *, prices: Prices | None = None, drop_incomplete: bool = False
) -> RoutingTable:
    """RouteLLM MMLU pairs (a CSV per subject) minus the contaminated prompts, priced with ``prices``."""
    import pandas as pd

    files = _expand(sources, "**/*")
    csvs = [f for f in files if f.suffix == ".csv"]
    contaminated: set[str] = set()
    for f in files:
        if f.suffix == ".jsonl" and "contaminated" in f.name:
            with f.open(encoding="utf-8") as fh:
                for line in fh:
                    if line.strip():
                        contaminated.add(json.loads(line)["eval_prompt"])
    if not csvs:
        raise DataError(f"routellm: no mmlu_<subject>.csv files in {', '.join(map(str, sources))}", name="SRC")
    recs: list[pd.DataFrame] = []
    dropped = 0
    for f in csvs:
        df = pd.read_csv(f)
        if "prompt" not in df.columns or len(df.columns) < 3:
            raise DataError(f"{f}: not a RouteLLM response CSV (prompt + one column per model)", name="prompt")
        keep = ~df["prompt"].isin(contaminated)
        dropped += int((~keep).sum())
        subject = f.stem.removeprefix("mmlu_")
        models = [c for c in df.columns if c != "prompt"]
        for m in models:
            part = pd.DataFrame(
                {
                    "query_id": [f"mmlu_{subject}:{i}" for i in df.index],
                    "text": df["prompt"].astype(str),
                    "category": subject,
                    "option": m,
                    "quality": df[m].map(_truth),
                }
            )
            recs.append(part[keep.to_numpy()])
    long = pd.concat(recs, ignore_index=True)
    long["input_tokens"] = [float(estimate_tokens(t)) for t in long["text"]]
    long["output_tokens"] = np.nan
    t = RoutingTable.from_frame(long, drop_incomplete=drop_incomplete, source="routellm")
    if prices is not None:
        t = apply_prices(t, prices)
    t.meta.update(
        format="routellm",
        contaminated_dropped=dropped,
        tokens_estimated="input tokens estimated from the prompt, ceil(chars / 4)",
    )
    if prices is None:
        t.meta["cost_basis"] = "none: the release has no cost; pass prices (--prices PRICES.json)"
    return t


def _truth(v: Any) -> float:
    if isinstance(v, bool | np.bool_):
        return float(v)
    if isinstance(v, str):
        s = v.strip().lower()
        if s in ("true", "1"):
            return 1.0
        if s in ("false", "0"):
            return 0.0
        return float("nan")
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def convert(
    fmt: str, sources: Sequence[str | Path], *, prices: Prices | None = None, drop_incomplete: bool = False
) -> RoutingTable:
    """Convert ``sources`` in format ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "routerbench":
        t = convert_routerbench(sources, drop_incomplete=drop_incomplete)
        return apply_prices(t, prices) if prices is not None else t
    if fmt == "llmrouter":
        return convert_llmrouter(sources, prices=prices, drop_incomplete=drop_incomplete)
    if fmt == "routellm":
        return convert_routellm(sources, prices=prices, drop_incomplete=drop_incomplete)
    raise DataError(f"unknown format {fmt!r}", name=fmt, hint=f"use one of {', '.join(FORMATS)}")


__all__ = ["FORMATS", "convert", "convert_llmrouter", "convert_routellm", "convert_routerbench"]
