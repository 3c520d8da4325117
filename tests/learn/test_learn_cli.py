from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner
from learn_helpers import OPTIONS, make_table

from agentroute.cli import main

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def tables(tmp_path: Path) -> tuple[Path, Path]:
    train, test = make_table(300, seed=4).split(0.3, seed=0)
    train.write(tmp_path / "train.parquet")
    test.write(tmp_path / "test.csv")
    return tmp_path / "train.parquet", tmp_path / "test.csv"


def _ok(args: list[str]) -> str:
    res = CliRunner().invoke(main, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res.output


@pytest.mark.slow
def test_fit_route_eval(tables: tuple[Path, Path], tmp_path: Path) -> None:
    train, test = tables
    out = _ok(["fit", "--table", str(train), "--policy", "linear", "--out", str(tmp_path / "lin"), "--seed", "1"])
    assert "fitted linear on 210 queries x 3 options" in out
    _ok(["fit", "--table", str(train), "--policy", "knn", "--out", str(tmp_path / "knn.json"), "-q"])
    _ok(["fit", "--table", str(train), "--policy", "cheapest", "--out", str(tmp_path / "cheap")])
    _ok(["fit", "--table", str(train), "--policy", "bandit", "--out", str(tmp_path / "bandit")])
    # QUERIES may be just query_id,text,category
    queries = pd.read_csv(test)[["query_id", "text", "category"]].drop_duplicates("query_id")
    queries.to_csv(tmp_path / "queries.csv", index=False)
    for src in (test, tmp_path / "queries.csv"):
        _ok(
            [
                "route",
                "--policy",
                str(tmp_path / "lin"),
                "--table",
                str(src),
                "--cost-weight",
                "0.2",
                "--out",
                str(tmp_path / "dec.csv"),
            ]
        )
        dec = pd.read_csv(tmp_path / "dec.csv")
        assert list(dec.columns) == ["query_id", "option"] + [f"prob_{o}" for o in OPTIONS]
        assert len(dec) == 90 and set(dec["option"]) <= set(OPTIONS)
    out = _ok(
        [
            "eval",
            "--table",
            str(test),
            "--policy",
            str(tmp_path / "lin"),
            str(tmp_path / "knn.json"),
            "--policy",
            str(tmp_path / "cheap"),
            "--policy",
            str(tmp_path / "bandit"),
            "--out",
            str(tmp_path / "ev"),
        ]
    )
    assert "zero router AIQ" in out
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert set(metrics["policies"]) == {"lin", "knn", "cheap", "bandit"}
    assert metrics["policies"]["lin"]["aiq"] > metrics["zero_router"]["aiq"]
    assert (tmp_path / "ev" / "frontier.png").stat().st_size > 1000


def test_data_convert_and_prices(tmp_path: Path) -> None:
    d = tmp_path / "mmlu_responses"
    d.mkdir()
    pd.DataFrame({"prompt": ["p1", "p2"], "weak": [True, False], "strong": [True, True]}).to_csv(
        d / "mmlu_toy.csv", index=False
    )
    out = _ok(["data", "convert", "--format", "routellm", str(tmp_path), "--out", str(tmp_path / "t.jsonl")])
    assert "2 queries x 2 options" in out and "pass prices" in out
    (tmp_path / "p.json").write_text(json.dumps({"weak": 0.001, "strong": 0.01}))
    _ok(
        [
            "data",
            "convert",
            "--format",
            "routellm",
            str(d),
            "--out",
            str(tmp_path / "t2.csv"),
            "--prices",
            str(tmp_path / "p.json"),
        ]
    )
    assert pd.read_csv(tmp_path / "t2.csv")["cost_usd"].tolist() == [0.001, 0.01, 0.001, 0.01]
    # a table without cost needs --prices to fit
    res = CliRunner().invoke(
        main, ["fit", "--table", str(tmp_path / "t.jsonl"), "--policy", "knn", "--out", str(tmp_path / "k")]
    )
    assert res.exit_code != 0 and "--prices" in str(res.exception)
    _ok(
        [
            "fit",
            "--table",
            str(tmp_path / "t.jsonl"),
            "--policy",
            "strongest",
            "--out",
            str(tmp_path / "k"),
            "--prices",
            str(tmp_path / "p.json"),
        ]
    )


def test_fit_ppo_calls_the_learned_hook(
    tables: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import agentroute.training as learned

    seen: dict[str, Any] = {}

    def fake(
        table: Any,
        featurizer: Any = None,
        *,
        seed: int = 0,
        cost_weights: Any = None,
        out: Any = None,
        total_timesteps: int = 0,
        progress: bool = False,
    ) -> None:
        seen.update(n=len(table), seed=seed, cost_weights=cost_weights, out=out, steps=total_timesteps)

    monkeypatch.setattr(learned, "fit_ppo_from_table", fake)
    _ok(
        [
            "fit",
            "--table",
            str(tables[0]),
            "--policy",
            "ppo",
            "--out",
            str(tmp_path / "ppo"),
            "--seed",
            "3",
            "--timesteps",
            "128",
        ]
    )
    assert seen == {"n": 210, "seed": 3, "cost_weights": "auto", "out": str(tmp_path / "ppo"), "steps": 128}


def test_user_errors_exit_2_with_one_line(tables: tuple[Path, Path], tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"query_id": ["a"], "text": ["x"], "option": ["o"]}).to_csv(bad, index=False)
    code = "from agentroute.cli import run; run()"
    res = subprocess.run(
        [sys.executable, "-c", code, "fit", "--table", str(bad), "--policy", "knn", "--out", str(tmp_path / "p")],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert res.returncode == 2
    assert res.stderr.strip().startswith("error:") and "missing column(s) 'quality'" in res.stderr
    assert "Traceback" not in res.stderr
    res = CliRunner().invoke(main, ["eval", "--table", str(tables[1]), "--out", str(tmp_path / "e")])
    assert res.exit_code == 2 and "at least one --policy" in res.output


def test_installed_command_runs(tables: tuple[Path, Path], tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "agentroute"
    if not exe.exists():
        pytest.skip("the agentroute script is not installed in this environment")
    res = subprocess.run(
        [str(exe), "fit", "--table", str(tables[0]), "--policy", "cheapest", "--out", str(tmp_path / "c")],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "c" / "card.json").exists()


def test_fit_featurizer_tfidf_for_the_text_router_and_refused_for_the_dense_ones(
    tables: tuple[Path, Path], tmp_path: Path
) -> None:
    train, _ = tables
    _ok(["fit", "--table", str(train), "--policy", "text", "--featurizer", "tfidf", "--out", str(tmp_path / "t"), "-q"])
    card = json.loads((tmp_path / "t" / "card.json").read_text())
    assert card["kind"] == "text" and card["featurizer"]["kind"] == "tfidf" and card["params"]["link"] == "logistic"
    for policy, feats, says in (("linear", "tfidf", "tfidf is read by the text router"),
                                ("text", "hashing", "reads the tfidf featurizer")):
        res = CliRunner().invoke(main, ["fit", "--table", str(train), "--policy", policy, "--featurizer", feats,
                                        "--out", str(tmp_path / policy)])
        assert res.exit_code == 2 and says in res.output, res.output
        assert not (tmp_path / policy).exists()
