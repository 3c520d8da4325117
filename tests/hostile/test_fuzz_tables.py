"""Fuzzing routing-table loaders and the release converters: arbitrary files and frames in, only DataError out."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hostile_inputs import scalars, structures
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentroute.data import RoutingTable, load_prices
from agentroute.data.convert import convert
from agentroute.errors import DataError

FUZZ = settings(deadline=None, max_examples=40,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
FEW = settings(FUZZ, max_examples=20)  # each example runs pandas' JSON or CSV reader a few times
COLUMNS = ["query_id", "text", "category", "option", "quality", "cost_usd", "input_tokens", "output_tokens"]
cells = st.one_of(scalars, st.sampled_from([0, 1, 0.5, "q1", "q2", "m1", "m2", "", None, -1, 2, float("inf")]))


def _valid(t: RoutingTable) -> None:
    n, k = len(t), t.n_options
    assert t.quality.shape == (n, k) and ((t.quality >= 0) & (t.quality <= 1)).all()
    assert not (t.cost[~np.isnan(t.cost)] < 0).any()
    assert all(isinstance(x, str) for x in t.texts)


@FUZZ
@given(rows=st.lists(st.fixed_dictionaries({}, optional={c: cells for c in COLUMNS}), min_size=0, max_size=8),
       drop=st.booleans())
def test_frames_raise_only_data_error(rows: list[dict[str, object]], drop: bool) -> None:
    df = pd.DataFrame(rows, dtype=object)
    try:
        t = RoutingTable.from_frame(df, drop_incomplete=drop, source="fuzz")
    except DataError as e:
        assert "fuzz" in str(e)
        return
    _valid(t)


@FUZZ
@given(raw=st.binary(max_size=400) | st.text(max_size=400).map(lambda s: s.encode("utf-8", "surrogatepass")),
       suffix=st.sampled_from([".csv", ".jsonl", ".parquet"]))
def test_table_files_of_any_bytes_raise_only_data_error(tmp_path: Path, raw: bytes, suffix: str) -> None:
    f = tmp_path / f"t{suffix}"
    f.write_bytes(raw)
    try:
        _valid(RoutingTable.read(f))
    except DataError as e:
        assert str(f) in str(e)


@FEW
@given(rows=st.lists(st.dictionaries(st.sampled_from(COLUMNS) | st.text(max_size=4), structures(COLUMNS),
                                     max_size=6), max_size=5))
def test_jsonl_tables_with_nested_values_raise_only_data_error(tmp_path: Path, rows: list[dict[str, object]]) -> None:
    f = tmp_path / "t.jsonl"
    try:
        f.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8", errors="surrogatepass")
    except (ValueError, OverflowError):
        return
    with contextlib.suppress(DataError):
        _valid(RoutingTable.read(f))


def _routerbench(rows: list[list[str]], header: list[str]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue().encode("utf-8", "surrogatepass")


RB_HEADER = ["sample_id", "prompt", "eval_name", "m1", "m1|total_cost", "m1|model_response", "m2", "m2|total_cost"]
prompts = st.one_of(st.text(max_size=40), st.lists(st.text(max_size=10), max_size=4).map(repr),
                    st.lists(st.sampled_from(["[", "]", "'", '"', "\\", "x", ",", "1", " ", "\\x4", "\\N{"]),
                             max_size=20).map("".join))


@FUZZ
@given(raw=st.binary(max_size=300), fmt=st.sampled_from(["routerbench", "llmrouter", "routellm"]),
       name=st.sampled_from(["x.csv", "train.json", "q.jsonl", "default_llm.json", "mmlu_x.csv",
                             "mmlu__contaminated_prompts.jsonl"]))
def test_release_files_of_any_bytes_raise_only_data_error(tmp_path: Path, raw: bytes, fmt: str, name: str) -> None:
    (tmp_path / name).write_bytes(raw)
    with contextlib.suppress(DataError):
        _valid(convert(fmt, [tmp_path]))


@FEW
@given(rows=st.lists(st.tuples(st.text(max_size=5), prompts, st.text(max_size=5),
                               st.sampled_from(["0", "1", "", "x", "0.5", "-1"]), st.sampled_from(["0.1", "", "-2"]),
                               prompts, st.sampled_from(["1", "0", ""]), st.sampled_from(["0.2", "inf", "x"])),
                     max_size=6),
       header=st.permutations(RB_HEADER).map(lambda h: list(h)[: len(h) - 1]) | st.just(RB_HEADER))
def test_routerbench_csvs_raise_only_data_error(tmp_path: Path, rows: list[tuple[str, ...]], header: list[str]) -> None:
    (tmp_path / "rb.csv").write_bytes(_routerbench([list(r)[: len(header)] for r in rows], header))
    for drop in (False, True):
        with contextlib.suppress(DataError):
            _valid(convert("routerbench", [tmp_path / "rb.csv"], drop_incomplete=drop))


@FUZZ
@given(train=structures(["question", "scores", "m1", "m2"]), queries=st.lists(structures(["query", "task_name"]),
                                                                             max_size=4),
       llm=structures(["m1", "m2", "input_price", "output_price", "per_call"]))
def test_llmrouter_structures_raise_only_data_error(tmp_path: Path, train: object, queries: list[object],
                                                    llm: object) -> None:
    try:
        (tmp_path / "train.json").write_text(json.dumps(train))
        (tmp_path / "default_query_train.jsonl").write_text("\n".join(json.dumps(q) for q in queries))
        (tmp_path / "default_llm.json").write_text(json.dumps(llm))
    except (ValueError, OverflowError):
        return
    with contextlib.suppress(DataError):
        _valid(convert("llmrouter", [tmp_path]))


@FUZZ
@given(raw=st.binary(max_size=200) | structures(["m1", "_assumed_output_tokens", "input_per_million", "per_call"]))
def test_price_files_raise_only_data_error(tmp_path: Path, raw: object) -> None:
    f = tmp_path / "prices.json"
    try:
        f.write_bytes(raw if isinstance(raw, bytes) else json.dumps(raw).encode())
    except (ValueError, OverflowError):
        return
    with contextlib.suppress(DataError):
        load_prices(f)


def test_deeply_nested_json_in_a_release_is_a_data_error(tmp_path: Path) -> None:
    (tmp_path / "train.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(DataError, match="not valid JSON"):
        convert("llmrouter", [tmp_path])
    (tmp_path / "prices.json").write_text('{"m": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(DataError):
        load_prices(tmp_path / "prices.json")


def test_an_oversized_table_file_is_refused_before_parsing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import agentroute.data.table as table_mod

    f = tmp_path / "t.csv"
    f.write_text("query_id,text,option,quality\n" + "q,x,m,1\n" * 100)
    monkeypatch.setattr(table_mod, "MAX_FILE_BYTES", 200)
    with pytest.raises(DataError, match=r"larger than 200 bytes.*MAX_FILE_BYTES"):
        RoutingTable.read(f)
    monkeypatch.setattr(table_mod, "MAX_TEXT_CHARS", 3)
    monkeypatch.setattr(table_mod, "MAX_FILE_BYTES", 1 << 20)
    f.write_text("query_id,text,option,quality\nq,long text,m,1\n")
    with pytest.raises(DataError, match=r"more than 3 characters.*MAX_TEXT_CHARS"):
        RoutingTable.read(f)
