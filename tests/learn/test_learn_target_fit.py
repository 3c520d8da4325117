"""Offline calibration of a fitted router to a target (``calibrate``, ``fit --target-spend/--target-strong-share``),
and the target options of ``replay`` on the command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from learn_helpers import make_table

from agentroute.cli import main, run
from agentroute.data import load_builtin
from agentroute.errors import ConfigError
from agentroute.features import HashingFeaturizer
from agentroute.policies import calibrate, load_policy, make_router

TABLE = make_table(600, seed=7)


def _linear(table: Any = TABLE) -> Any:
    return make_router("linear", seed=0, featurizer=HashingFeaturizer(256, n_components=16, seed=0)).fit(table)


def _routed(router: Any, table: Any) -> np.ndarray:
    idx, _ = router.predict_texts(table.texts, table.categories)
    return np.asarray(idx)


def test_a_spend_target_sets_lambda_so_the_table_spends_it_and_the_card_keeps_it(tmp_path: Path) -> None:
    r = _linear()
    target = float(TABLE.cost.mean(axis=0)[1])  # the middle option's price
    cal = calibrate(r, TABLE, spend=target)
    assert r.cost_weight == cal.cost_weight
    spent = float(TABLE.cost[np.arange(len(TABLE)), _routed(r, TABLE)].mean())
    assert spent == pytest.approx(cal.achieved)
    assert abs(spent - target) <= 0.05 * target
    lo, hi = cal.feasible
    assert lo < target < hi
    r.save(tmp_path / "r")
    back = load_policy(tmp_path / "r")
    assert back.cost_weight == pytest.approx(cal.cost_weight)
    assert back.card["calibration"] == json.loads(json.dumps(cal.to_dict()))


def test_calibrated_without_categories_it_holds_for_queries_that_come_without_them() -> None:
    r = _linear()
    target = float(TABLE.cost.mean(axis=0)[1])
    cal = calibrate(r, TABLE, spend=target, categories=False)
    assert cal.categories is False and r.card["calibration"]["categories"] is False
    idx, _ = r.predict_texts(TABLE.texts, [None] * len(TABLE))
    assert abs(float(TABLE.cost[np.arange(len(TABLE)), idx].mean()) - target) <= 0.05 * target


def test_a_strong_share_target_sends_that_share_to_the_dearest_option_or_the_one_named() -> None:
    r = _linear()
    cal = calibrate(r, TABLE, strong_share=0.3)
    assert cal.strong == "large"
    assert np.mean(_routed(r, TABLE) == r.options.index("large")) == pytest.approx(0.3, abs=0.02)
    cal = calibrate(r, TABLE, strong_share=0.5, strong="medium")  # medium or dearer
    assert np.mean(np.isin(_routed(r, TABLE), [r.options.index("medium"), r.options.index("large")])) == \
        pytest.approx(0.5, abs=0.02)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "kw"), [("routerbench", {"spend": 0.002}), ("routellm", {"strong_share": 0.3})])
def test_on_a_shared_table_the_calibrated_lambda_holds_on_held_out_queries(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, name: str, kw: dict[str, float]
) -> None:
    monkeypatch.setenv("AGENTROUTE_DATA_DIR", str(data_dir))
    train, test = load_builtin(name).split(0.2, seed=0)
    r = make_router("linear", seed=0, featurizer=HashingFeaturizer(512)).fit(train)
    cal = calibrate(r, train, **kw)
    idx = _routed(r, test)
    if cal.kind == "spend":
        realised = float(test.cost[np.arange(len(test)), idx].mean())
    else:
        realised = float(np.mean(idx == r.options.index(str(cal.strong))))
    assert abs(realised - cal.target) <= 0.1 * cal.target, (realised, cal)


def test_an_unreachable_target_names_the_range_the_router_can_reach() -> None:
    r = _linear()
    cheapest = float(TABLE.cost.mean(axis=0).min())
    with pytest.raises(ConfigError) as e:
        calibrate(r, TABLE, spend=cheapest / 10)
    msg = str(e.value)
    lo = float(TABLE.cost[:, 0].mean())
    assert "out of reach" in msg and f"${lo:.6g} per query (λ=∞" in msg and "(λ=0" in msg
    assert e.value.name == "target_spend"
    with pytest.raises(ConfigError, match="out of reach"):
        calibrate(r, TABLE, spend=1.0)
    before = r.cost_weight
    with pytest.raises(ConfigError):
        calibrate(r, TABLE, spend=1.0)
    assert r.cost_weight == before  # a failed calibration changes nothing


@pytest.mark.parametrize(("kw", "field"), [
    ({}, "target"),
    ({"spend": 1e-4, "strong_share": 0.2}, "target"),
    ({"strong_share": 1.5}, "target_strong_share"),
    ({"strong_share": 0.2, "strong": "huge"}, "strong"),
])
def test_a_bad_calibration_request_is_a_config_error(kw: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as e:
        calibrate(_linear(), TABLE, **kw)
    assert e.value.name == field


def test_a_router_that_does_not_trade_quality_for_cost_cannot_be_calibrated() -> None:
    rnd = make_router("random", seed=0).fit(TABLE)
    with pytest.raises(ConfigError, match="cannot be calibrated"):
        calibrate(rnd, TABLE, spend=1e-4)
    from agentroute.policies import Cheapest

    with pytest.raises(ConfigError, match="cannot be calibrated"):
        calibrate(Cheapest(), TABLE, spend=1e-4)


def _write(tmp_path: Path) -> Path:
    p = tmp_path / "train.parquet"
    TABLE.write(p)
    return p


def test_fit_with_a_target_prints_the_calibration_and_saves_it(tmp_path: Path) -> None:
    train = _write(tmp_path)
    target = float(TABLE.cost.mean(axis=0)[1])
    res = CliRunner().invoke(main, ["fit", "--table", str(train), "--policy", "linear", "--out", str(tmp_path / "p"),
                                    "--target-spend", repr(target)])
    assert res.exit_code == 0, res.output
    assert "calibrated on 600 queries: λ=" in res.output
    card = json.loads((tmp_path / "p" / "card.json").read_text())
    assert card["calibration"]["kind"] == "spend" and card["calibration"]["target"] == target
    assert card["cost_weight"] == card["calibration"]["cost_weight"]


@pytest.mark.parametrize(("args", "needle"), [
    (["--target-spend", "5"], "error: target $5 per query is out of reach"),
    (["--target-spend", "0.001", "--target-strong-share", "0.3"], "not both"),
    (["--strong", "large"], "--strong goes with --target-strong-share"),
    (["--target-spend", "0.001", "--cost-weight", "3"], "give one of them"),
    (["--target-strong-share", "0.2", "--policy", "ppo"], "calibrate a table router, not ppo"),
])
def test_fit_refuses_a_bad_target_in_one_line_with_exit_2(
    tmp_path: Path, args: list[str], needle: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    train = _write(tmp_path)
    argv = ["fit", "--table", str(train), "--out", str(tmp_path / "p"), *args]
    if "--policy" not in args:
        argv += ["--policy", "linear"]
    monkeypatch.setattr(sys, "argv", ["agentroute", *argv])
    with pytest.raises(SystemExit) as e:
        run()  # the entry point: library errors become one line and exit 2
    err = capsys.readouterr().err
    assert e.value.code == 2, err
    assert any(needle in line for line in err.splitlines()), err  # the reason on one line
    assert not (tmp_path / "p").exists()


def test_replay_with_a_target_reports_it_and_writes_it_into_the_summary(tmp_path: Path) -> None:
    table = tmp_path / "t.parquet"
    make_table(500, seed=8).write(table)
    summary = tmp_path / "s.json"
    res = CliRunner().invoke(main, ["replay", "--table", str(table), "--policy", "bandit", "--target-strong-share",
                                    "0.3", "--order", "shuffle", "--out", str(tmp_path / "r.csv"),
                                    "--summary", str(summary), "--quiet"])
    assert res.exit_code == 0, res.output
    t = json.loads(summary.read_text())["target"]
    assert t["kind"] == "strong_share" and t["target"] == 0.3 and t["strong"] == "large"
    assert t["within_tolerance"] is True
    res = CliRunner().invoke(main, ["replay", "--table", str(table), "--policy", "pheromone", "--target-spend",
                                    "0.0002", "--out", str(tmp_path / "r.csv")])
    assert res.exit_code == 0, res.output
    assert "target spend $0.0002/query ±10%: realised $" in res.output
    res = CliRunner().invoke(main, ["replay", "--table", str(table), "--policy", "bandit", "--strong", "large",
                                    "--out", str(tmp_path / "r.csv")])
    assert res.exit_code == 2 and "--strong goes with" in res.output
