"""Converters from the three public routing releases to the canonical long format.

- ``routerbench``: RouterBench's wide CSVs (a 0/1 column per model, ``<model>|total_cost`` in USD,
  ``<model>|model_response``). Real costs; each model's answer is kept in the ``response`` column. Input tokens
  are estimated from the prompt and output tokens from the recorded response (``ceil(chars / 4)``); a model
  whose correctness is missing for a prompt leaves that query incomplete (dropped with ``drop_incomplete``).
- ``llmrouter``: LLMRouter's ``train.json`` (``question``, ``scores``), joined on the query text with
  ``default_query_train.jsonl`` for the task (the category) and priced with ``default_llm.json`` (USD per
  million tokens). No token counts: input tokens are estimated from the text and 256 output tokens are
  assumed, which the table's ``meta`` says.
- ``routellm``: RouteLLM's MMLU correctness pairs (``mmlu_<subject>.csv``), minus the prompts listed in
  ``mmlu__contaminated_prompts.jsonl`` as RouteLLM drops them. No cost in the release: pass ``prices``.

Every converter returns a validated :class:`~agentroute.data.table.RoutingTable`; it never writes next to its
sources. A release is data from outside: every malformed file, row or value is a :class:`~agentroute.errors.DataError`
naming the file, the row (or line) and the column, never another exception. Sizes are bounded by the module
constants of :mod:`agentroute.data.table`: a source file is at most ``MAX_FILE_BYTES`` bytes and a prompt or a
response at most ``MAX_TEXT_CHARS`` characters (raise them before converting a release that is meant to be larger).
RouterBench's stringified prompt lists are read by :func:`parse_prompt`, in linear time.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from agentroute.data import table as _table
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
            out.extend(f for f in sorted(p.glob(pattern)) if f.is_file())
        elif p.exists():
            out.append(p)
        else:
            raise DataError(f"{p}: no such file or directory", name=str(p))
    return out


def _read_csv(path: Path) -> pd.DataFrame:
    """A release's CSV, size-checked; any failure to parse it is a :class:`DataError` naming the file."""
    import pandas as pd

    _table.check_file_size(path)
    try:
        return pd.read_csv(path)
    except Exception as e:  # pandas and its engines raise many types for a malformed file; all mean "not a CSV"
        raise DataError(f"{path}: cannot read it as CSV: {type(e).__name__}: {_table.short(e)}", name=str(path)) from e


def _read_json(path: Path) -> Any:
    """One JSON document, size-checked; malformed or too deeply nested JSON is a :class:`DataError`."""
    _table.check_file_size(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as e:  # bad JSON, bad UTF-8, an int of too many digits, too deep nesting
        raise DataError(f"{path}: not valid JSON ({_table.short(e)})", name=str(path)) from None
    except OSError as e:
        raise DataError(f"{path}: cannot read it: {e.strerror or e}", name=str(path)) from None


def _jsonl(path: Path) -> Any:
    """``(line number, object)`` of each non-blank line of a JSON-lines file (size-checked, errors name the line)."""
    _table.check_file_size(path)
    try:
        with path.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if line.strip():
                    try:
                        obj = json.loads(line)
                    except (ValueError, RecursionError) as e:
                        raise DataError(f"{path} line {n}: not valid JSON ({_table.short(e)})",
                                        name=str(path)) from None
                    if not isinstance(obj, dict):
                        raise DataError(f"{path} line {n}: expected a JSON object, got {type(obj).__name__}",
                                        name=str(path))
                    yield n, obj
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text (byte {e.start})", name=str(path)) from None
    except OSError as e:
        raise DataError(f"{path}: cannot read it: {e.strerror or e}", name=str(path)) from None


# A Python string literal as repr() writes it (no prefix, one line); possessive quantifiers never backtrack.
_STR_LITERAL = re.compile(r"'(?:[^'\\\r\n]++|\\.)*+'" r'|"(?:[^"\\\r\n]++|\\.)*+"', re.S)
_SPACE = re.compile(r"[ \t\r\n\f]*+")
_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|N\{[^}\r\n]{1,100}\}|[0-7]{1,3}|.)", re.S)
_SIMPLE = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "r": "\r", "t": "\t", "a": "\a", "b": "\b", "f": "\f",
           "v": "\v", "\n": ""}


class _NotAList(Exception):
    """Raised inside :func:`_unescape` when an escape is one Python would reject."""


def _escape(m: re.Match[str]) -> str:
    e = m.group(1)
    if e in _SIMPLE:
        return _SIMPLE[e]
    head = e[0]
    if head in "xuU" and len(e) > 1:
        code = int(e[1:], 16)
        if code > 0x10FFFF:
            raise _NotAList
        return chr(code)
    if head == "N" and len(e) > 1:
        try:
            return unicodedata.lookup(e[2:-1])
        except KeyError:
            raise _NotAList from None
    if head in "01234567":
        return chr(int(e, 8))
    if head in "xuUN":  # \x without two hex digits and the like: a syntax error in Python
        raise _NotAList
    return "\\" + e  # Python keeps an unknown escape as it is


def _unescape(body: str) -> str:
    return _ESCAPE.sub(_escape, body) if "\\" in body else body


def _string_list(s: str) -> list[str] | None:
    """The strings of ``s`` when it is a Python list of string literals (``repr(list_of_str)``), else ``None``.

    A single left-to-right scan with possessive patterns: linear in ``len(s)``, no recursion, no AST. (It replaced
    ``ast.literal_eval``, which built an AST node per element: 36 s and 2 GB for a 4 MB prompt of ``[1,1,...]``.)
    """
    out: list[str] = []
    n = len(s)
    i = _SPACE.match(s, 1).end()  # type: ignore[union-attr]
    if i < n and s[i] == "]":
        return out if not s[i + 1:].strip() else None
    while True:
        m = _STR_LITERAL.match(s, i)
        if m is None:
            return None
        try:
            out.append(_unescape(m.group(0)[1:-1]))
        except _NotAList:
            return None
        i = _SPACE.match(s, m.end()).end()  # type: ignore[union-attr]
        if i < n and s[i] == ",":
            i = _SPACE.match(s, i + 1).end()  # type: ignore[union-attr]
            if i < n and s[i] == "]":
                return out if not s[i + 1:].strip() else None
            continue
        if i < n and s[i] == "]":
            return out if not s[i + 1:].strip() else None
        return None


def parse_prompt(raw: Any, *, where: str = "prompt", max_chars: int | None = None) -> str:
    """The text of a RouterBench prompt or response: a stringified Python list of strings is joined by newlines.

    Anything else (plain text, a list of non-strings, malformed brackets) is kept as it is; a missing value is
    ``""``. Linear time in the length. More than ``max_chars`` characters (default
    :data:`agentroute.data.table.MAX_TEXT_CHARS`) is a :class:`DataError` naming ``where``.
    """
    limit = _table.MAX_TEXT_CHARS if max_chars is None else max_chars
    if raw is None or (isinstance(raw, float) and np.isnan(raw)):
        return ""
    s = raw if isinstance(raw, str) else str(raw)
    _table.check_text(s, where=where, max_chars=limit)
    if s.startswith("[") and s.endswith("]"):
        val = _string_list(s)
        if val is not None:
            return "\n".join(val)
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
        df = _read_csv(f)
        for col in ("sample_id", "prompt"):
            if col not in df.columns:
                raise DataError(f"{f}: not a RouterBench CSV (no {col!r} column)", name=col)
        models = [c[: -len("|total_cost")] for c in df.columns if c.endswith("|total_cost")]
        if not models:
            raise DataError(f"{f}: not a RouterBench CSV (no '<model>|total_cost' columns)", name="total_cost")
        texts = [parse_prompt(p, where=f"{f} row {i}, column 'prompt'") for i, p in enumerate(df["prompt"], 1)]
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
            answers: list[str | None] = (
                [None if r is None or (isinstance(r, float) and np.isnan(r))
                 else parse_prompt(r, where=f"{f} row {i}, column {resp_col!r}")
                 for i, r in enumerate(df[resp_col], 1)]
                if resp_col in df.columns
                else [None] * len(df)
            )
            out_tok = [np.nan if a is None else float(estimate_tokens(a)) for a in answers]
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
                    "response": answers,
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
    rows = _read_json(train_path)
    if not isinstance(rows, list) or not rows:
        raise DataError(f"{train_path}: expected a list of {{question, scores}} objects", name=str(train_path))
    task_of: dict[str, str | None] = {}
    if queries_path is not None:
        for n, q in _jsonl(queries_path):
            query, task = q.get("query", ""), q.get("task_name")
            if not isinstance(query, str) or not (task is None or isinstance(task, str)):
                raise DataError(f"{queries_path} line {n}: 'query' and 'task_name' must be strings", name="query")
            task_of.setdefault(query, task)
    recs: list[dict[str, Any]] = []
    for i, r in enumerate(rows):
        scores = r.get("scores") if isinstance(r, dict) else None
        if not isinstance(scores, dict):
            raise DataError(f"{train_path} item {i + 1}: expected an object with 'question' and 'scores' "
                            "(an object of model -> score)", name="scores")
        question = r.get("question", "")
        if not isinstance(question, str):
            raise DataError(f"{train_path} item {i + 1}: 'question' must be a string", name="question")
        text = _table.check_text(question, where=f"{train_path} item {i + 1}, field 'question'")
        for opt, score in scores.items():
            recs.append(
                {
                    "query_id": f"llmrouter-{i}",
                    "text": text,
                    "category": task_of.get(text),
                    "option": str(opt),
                    "quality": score,
                    "input_tokens": float(estimate_tokens(text)),
                }
            )
    df = pd.DataFrame(recs)
    df["output_tokens"] = np.nan
    t = RoutingTable.from_frame(df, drop_incomplete=drop_incomplete, source=str(train_path))
    if prices is None and llm_path is not None:
        raw = _read_json(llm_path)
        if not isinstance(raw, dict):
            raise DataError(f"{llm_path}: expected a JSON object of model -> prices", name=str(llm_path))
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
            for n, obj in _jsonl(f):
                prompt = obj.get("eval_prompt")
                if not isinstance(prompt, str):
                    raise DataError(f"{f} line {n}: 'eval_prompt' must be a string", name="eval_prompt")
                contaminated.add(prompt)
    if not csvs:
        raise DataError(f"routellm: no mmlu_<subject>.csv files in {', '.join(map(str, sources))}", name="SRC")
    recs: list[pd.DataFrame] = []
    dropped = 0
    for f in csvs:
        df = _read_csv(f)
        if "prompt" not in df.columns or len(df.columns) < 3:
            raise DataError(f"{f}: not a RouteLLM response CSV (prompt + one column per model)", name="prompt")
        keep = ~df["prompt"].isin(contaminated)
        dropped += int((~keep).sum())
        subject = f.stem.removeprefix("mmlu_")
        models = [c for c in df.columns if c != "prompt"]
        prompts = [_table.check_text(str(p), where=f"{f} row {i}, column 'prompt'")
                   for i, p in enumerate(df["prompt"], 1)]
        for m in models:
            part = pd.DataFrame(
                {
                    "query_id": [f"mmlu_{subject}:{i}" for i in df.index],
                    "text": prompts,
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


__all__ = ["FORMATS", "convert", "convert_llmrouter", "convert_routellm", "convert_routerbench", "parse_prompt"]
