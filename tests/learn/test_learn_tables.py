from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from learn_helpers import make_table

from agentroute.data import Prices, RoutingTable, apply_prices, load_builtin, load_prices
from agentroute.data.convert import convert
from agentroute.errors import DataError


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_round_trip_every_format(tmp_path: Path, suffix: str) -> None:
    t = make_table(30)
    path = tmp_path / f"t{suffix}"
    t.write(path)
    back = RoutingTable.read(path)
    assert back.query_ids == t.query_ids and back.options == t.options and back.texts == t.texts
    assert back.categories == t.categories
    np.testing.assert_allclose(back.quality, t.quality)
    np.testing.assert_allclose(back.cost, t.cost)
    assert np.isnan(back.output_tokens).all()


def _long(**over: object) -> pd.DataFrame:
    df = make_table(6).to_frame()
    for k, v in over.items():
        df[k] = v
    return df


def test_missing_column_names_file_and_column() -> None:
    df = make_table(4).to_frame().drop(columns=["quality"])
    with pytest.raises(DataError, match=r"my\.csv: missing column\(s\) 'quality'"):
        RoutingTable.from_frame(df, source="my.csv")


def test_nan_and_out_of_range_quality_name_rows() -> None:
    df = make_table(4).to_frame()
    df.loc[3, "quality"] = np.nan
    with pytest.raises(DataError, match=r"'quality' is NaN in rows 4"):
        RoutingTable.from_frame(df, source="x")
    df.loc[3, "quality"] = 1.5
    with pytest.raises(DataError, match=r"outside \[0, 1\] in rows 4"):
        RoutingTable.from_frame(df, source="x")


def test_negative_cost_and_duplicates() -> None:
    df = make_table(4).to_frame()
    df.loc[2, "cost_usd"] = -1.0
    with pytest.raises(DataError, match="'cost_usd' is negative in rows 3"):
        RoutingTable.from_frame(df, source="x")
    df = make_table(4).to_frame()
    dup = pd.concat([df, df.iloc[[5]]], ignore_index=True)
    with pytest.raises(DataError, match="duplicate"):
        RoutingTable.from_frame(dup, source="x")


def test_incomplete_queries_error_or_drop() -> None:
    df = make_table(5).to_frame()
    df = df.drop(index=[4])  # q1 loses one option
    with pytest.raises(DataError, match=r"1 queries lack some options, e.g. 'q1' lacks 'medium'"):
        RoutingTable.from_frame(df, source="x")
    t = RoutingTable.from_frame(df, drop_incomplete=True, source="x")
    assert len(t) == 4 and "q1" not in t.query_ids and t.meta["dropped_incomplete"] == 1


def test_optional_columns_and_token_estimate() -> None:
    df = make_table(3).to_frame().drop(columns=["cost_usd", "input_tokens", "output_tokens", "category"])
    t = RoutingTable.from_frame(df)
    assert np.isnan(t.cost).all() and not t.has_cost
    assert t.categories == [None, None, None]
    assert t.input_tokens[0, 0] == np.ceil(len(t.texts[0]) / 4)
    assert "tokens_estimated" in t.meta


def test_unknown_suffix_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="unknown table format"):
        RoutingTable.read(tmp_path / "t.xlsx")
    with pytest.raises(DataError, match="no such file"):
        RoutingTable.read(tmp_path / "t.csv")


def test_split_is_seeded_disjoint_and_stratified() -> None:
    t = make_table(300)
    a_tr, a_te = t.split(0.2, seed=3)
    _, b_te = t.split(0.2, seed=3)
    assert a_te.query_ids == b_te.query_ids
    assert set(a_tr.query_ids).isdisjoint(a_te.query_ids)
    assert len(a_tr) + len(a_te) == len(t)
    for cat in ("arith", "trivia", "proof"):
        assert a_te.categories.count(cat) == 20
    assert t.split(0.2, seed=4)[1].query_ids != a_te.query_ids
    with pytest.raises(DataError):
        t.split(1.5)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(2, 40), frac=st.floats(0.05, 0.95), seed=st.integers(0, 10_000))
def test_split_partitions_property(n: int, frac: float, seed: int) -> None:
    t = make_table(n, seed=seed % 7)
    tr, te = t.split(frac, seed=seed)
    assert sorted(tr.query_ids + te.query_ids) == sorted(t.query_ids)
    assert len(tr) >= 1 and len(te) >= 1


@settings(max_examples=20, deadline=None)
@given(q=st.lists(st.floats(0, 1), min_size=6, max_size=6), c=st.lists(st.floats(0, 1e-2), min_size=6, max_size=6))
def test_long_format_round_trip_property(q: list[float], c: list[float]) -> None:
    t = RoutingTable(
        ["a", "b"],
        ["x", "y"],
        ["k", None],
        ["o1", "o2", "o3"],
        np.asarray(q).reshape(2, 3),
        np.asarray(c).reshape(2, 3),
        np.ones((2, 3)),
        np.full((2, 3), np.nan),
    )
    back = RoutingTable.from_frame(t.to_frame())
    np.testing.assert_allclose(back.quality, t.quality)
    np.testing.assert_allclose(back.cost, t.cost)
    assert back.categories == ["k", None]


def test_cost_scale_is_the_dearest_option_mean() -> None:
    t = make_table(30)
    assert t.cost_scale() == pytest.approx(t.cost[:, 2].mean())


def test_prices_per_call_and_per_token(tmp_path: Path) -> None:
    t = make_table(10)
    p = tmp_path / "p.json"
    p.write_text(
        json.dumps(
            {
                "small": 0.001,
                "medium": {"per_call": 0.002},
                "large": {"input_price": 10.0, "output_per_million": 30.0},
                "_assumed_output_tokens": 100,
            }
        )
    )
    priced = apply_prices(t, load_prices(p))
    assert np.allclose(priced.cost[:, 0], 0.001) and np.allclose(priced.cost[:, 1], 0.002)
    assert np.allclose(priced.cost[:, 2], (t.input_tokens[:, 2] * 10 + 100 * 30) / 1e6)
    assert "100 output tokens assumed" in priced.meta["cost_basis"]
    with pytest.raises(DataError, match="no price for option"):
        apply_prices(t, Prices.from_dict({"small": 1.0}))
    with pytest.raises(DataError, match="non-negative"):
        Prices.from_dict({"small": -1.0})


def _write_routerbench(d: Path) -> None:
    rows = []
    for i in range(4):
        row = {"sample_id": f"s{i}", "prompt": str([f"question {i}?"]), "eval_name": "toy"}
        for m, acc, c in (("m/a", 1.0, 0.001), ("m/b", float(i % 2), 0.0001)):
            row[m] = acc if i != 3 or m == "m/a" else np.nan
            row[f"{m}|model_response"] = "answer " * (i + 1)
            row[f"{m}|total_cost"] = c
        rows.append(row)
    pd.DataFrame(rows).to_csv(d / "toy.csv")


def test_convert_routerbench(tmp_path: Path) -> None:
    _write_routerbench(tmp_path)
    with pytest.raises(DataError, match="lack some options"):
        convert("routerbench", [tmp_path])
    t = convert("routerbench", [tmp_path], drop_incomplete=True)
    assert len(t) == 3 and t.options == ["m/a", "m/b"] and t.texts[0] == "question 0?"
    assert t.cost[0].tolist() == [0.001, 0.0001] and t.categories[0] == "toy"
    assert t.output_tokens[1, 0] == np.ceil(len("answer answer ") / 4)


def test_convert_llmrouter(tmp_path: Path) -> None:
    (tmp_path / "train.json").write_text(
        json.dumps(
            [
                {"question": "what is 1+1", "scores": {"a": 1.0, "b": 0.5}, "cluster_id": 0},
                {"question": "name a river", "scores": {"a": 0.0, "b": 1.0}, "cluster_id": 1},
            ]
        )
    )
    (tmp_path / "default_query_train.jsonl").write_text(
        json.dumps({"task_name": "math", "query": "what is 1+1"}) + "\n"
    )
    (tmp_path / "default_llm.json").write_text(
        json.dumps({"a": {"input_price": 0.1, "output_price": 0.1}, "b": {"input_price": 0.9, "output_price": 0.9}})
    )
    t = convert("llmrouter", [tmp_path])
    assert t.categories == ["math", None]
    assert t.quality.tolist() == [[1.0, 0.5], [0.0, 1.0]]
    expected = (t.input_tokens[0, 1] + 256) * 0.9 / 1e6
    assert t.cost[0, 1] == pytest.approx(expected)
    assert "256 output tokens assumed" in t.meta["cost_basis"]


def test_convert_routellm_drops_contaminated(tmp_path: Path) -> None:
    d = tmp_path / "mmlu_responses"
    d.mkdir()
    pd.DataFrame({"prompt": ["p1", "p2", "p3"], "weak": [True, False, True], "strong": [True, True, False]}).to_csv(
        d / "mmlu_toy.csv", index=False
    )
    (tmp_path / "mmlu__contaminated_prompts.jsonl").write_text(json.dumps({"eval_prompt": "p2"}) + "\n")
    t = convert("routellm", [tmp_path])
    assert t.texts == ["p1", "p3"] and t.meta["contaminated_dropped"] == 1
    assert t.categories == ["toy", "toy"] and not t.has_cost
    priced = convert("routellm", [tmp_path], prices=Prices.from_dict({"weak": 0.0, "strong": 1.0}))
    assert priced.cost.tolist() == [[0.0, 1.0], [0.0, 1.0]]


@pytest.mark.parametrize(
    ("name", "n_options", "min_rows"), [("routerbench", 11, 2000), ("llmrouter", 9, 5000), ("routellm", 2, 6000)]
)
def test_builtin_tables(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, name: str, n_options: int, min_rows: int
) -> None:
    monkeypatch.setenv("AGENTROUTE_DATA_DIR", str(data_dir))
    t = load_builtin(name)
    assert t.n_options == n_options and len(t) >= min_rows and t.has_cost
    assert ((t.quality >= 0) & (t.quality <= 1)).all()
    assert len(set(t.query_ids)) == len(t)
