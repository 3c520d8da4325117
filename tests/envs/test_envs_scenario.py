"""Scenario files (envs/*.yaml): loading, checking with line numbers, making envs, and ``train --scenario``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from envs_helpers import synthetic_table

from agentroute.budget import Budget
from agentroute.cli import main
from agentroute.envs.scenario import constructor_keywords, load_scenario
from agentroute.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
SHIPPED = sorted((REPO / "envs").glob("*.yaml"))


@pytest.fixture(scope="module", autouse=True)
def _train_registered() -> None:
    if "train" not in main.commands:
        from agentroute import cli_train

        cli_train.register(main)


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_the_repository_ships_scenarios_for_each_environment() -> None:
    ids = {load_scenario(p).env_id for p in SHIPPED}
    assert ids == {"agentroute/QueryRouting-v0", "agentroute/GraphRouting-v0", "agentroute/MemoryTier-v0"}


@pytest.mark.slow
@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_each_shipped_scenario_makes_a_working_env(path: Path, data_dir: Path) -> None:
    sc = load_scenario(path)
    assert sc.description and sc.train.get("timesteps", 0) > 0
    env = sc.make()
    try:
        obs, _ = env.reset(seed=0)
        assert env.observation_space.contains(obs)
        mask = getattr(env.unwrapped, "action_masks", None)
        action = int(mask().argmax()) if mask is not None else 0
        _, reward, terminated, truncated, _ = env.step(action)
        assert isinstance(float(reward), float) and isinstance(terminated, bool) and isinstance(truncated, bool)
    finally:
        env.close()


def test_budget_mapping_becomes_a_budget_and_relative_table_paths_follow_the_file(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    synthetic_table(30).write(tmp_path / "data" / "t.csv")
    p = write(tmp_path, "env: agentroute/GraphRouting-v0\noptions:\n  table: data/t.csv\n"
                        "  budget: {usd: '0.002', steps: 3}\n")
    sc = load_scenario(p)
    assert sc.options["table"] == str((tmp_path / "data" / "t.csv").resolve())
    assert sc.env_kwargs()["budget"] == Budget(usd="0.002", steps=3)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("env: agentroute/QueryRouting-v0\nenvironment: x\n", "line 2: unknown key 'environment'"),
        ("options: {}\n", "'env' is required"),
        ("env: agentroute/Nope-v0\n", "line 1: unknown environment 'agentroute/Nope-v0'"),
        ("env: agentroute/QueryRouting-v0\noptions:\n  builtin: routellm\n  temperature: 3\n",
         "line 4: agentroute/QueryRouting-v0 has no option 'temperature'"),
        ("env: agentroute/GraphRouting-v0\noptions:\n  budget: {dollars: 1}\n", "line 3: bad budget"),
        ("env: agentroute/GraphRouting-v0\noptions:\n  budget: {usd: -1}\n", "line 3: bad budget"),
        ("env: agentroute/QueryRouting-v0\ntrain:\n  timesteps: many\n", "line 3: train.timesteps must be int"),
        ("env: agentroute/QueryRouting-v0\ntrain:\n  algo: dqn\n", "unknown algo 'dqn'"),
        ("env: agentroute/QueryRouting-v0\ntrain:\n  n_envs: 0\n", "train.n_envs must be at least 1"),
        ("env: agentroute/QueryRouting-v0\ntrain:\n  epochs: 3\n", "unknown train key 'epochs'"),
        ("- just\n- a list\n", "a scenario is a mapping"),
        ("env: [unclosed\n", "is not valid YAML"),
    ],
)
def test_mistakes_are_reported_with_file_line_and_what_is_allowed(tmp_path: Path, text: str, message: str) -> None:
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_scenario(p)
    assert message in str(err.value)
    assert str(p) in str(err.value)


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read scenario"):
        load_scenario(tmp_path / "missing.yaml")


def test_unknown_option_lists_the_constructor_keywords(tmp_path: Path) -> None:
    p = write(tmp_path, "env: agentroute/MemoryTier-v0\noptions: {window_size: 3}\n")
    with pytest.raises(ConfigError) as err:
        load_scenario(p)
    for kw in constructor_keywords("agentroute/MemoryTier-v0"):
        assert kw in str(err.value)


def test_train_from_a_scenario_and_the_command_line_overrides_it(tmp_path: Path) -> None:
    synthetic_table(60).write(tmp_path / "t.csv")
    p = write(tmp_path, "env: agentroute/QueryRouting-v0\noptions:\n  table: t.csv\n  cost_weight_range: [0, 0.5]\n"
                        "train: {algo: ppo, timesteps: 256, seed: 4, n_envs: 2}\n")
    out = tmp_path / "r.npz"
    res = CliRunner().invoke(main, ["train", "--scenario", str(p), "--seed", "9", "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["seed"] == 9  # the command line wins
    assert card["total_timesteps"] == 256 and card["cost_weight_range"] == [0.0, 0.5]  # the file's values


def test_train_rejects_scenario_options_the_query_trainer_cannot_use(tmp_path: Path) -> None:
    synthetic_table(30).write(tmp_path / "t.csv")
    p = write(tmp_path, "env: agentroute/QueryRouting-v0\noptions: {table: t.csv, observe_cost_weight: false}\n")
    res = CliRunner().invoke(main, ["train", "--scenario", str(p), "--out", str(tmp_path / "r.npz"), "--quiet"])
    assert res.exit_code != 0
    assert "observe_cost_weight" in res.output and "load_scenario" in res.output


def test_a_bad_scenario_is_a_usage_error_not_a_traceback(tmp_path: Path) -> None:
    p = write(tmp_path, "env: agentroute/QueryRouting-v0\ntrain: {algo: dqn}\n")
    res = CliRunner().invoke(main, ["train", "--scenario", str(p), "--out", str(tmp_path / "r.npz")])
    assert res.exit_code == 2 and "unknown algo 'dqn'" in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)


def test_memory_scenario_trains_and_the_card_names_the_tiers(tmp_path: Path, data_dir: Path) -> None:
    out = tmp_path / "m.npz"
    res = CliRunner().invoke(main, ["train", "--scenario", str(REPO / "envs" / "locomo-memory.yaml"),
                                    "--timesteps", "64", "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["env"] == "agentroute/MemoryTier-v0" and card["options"] == ["low", "mid", "high"]
    assert card["reward"] == "budgetmem" and card["total_timesteps"] == 64
    # the scenario's λ = 0.2 per cost unit (1,000 context tokens' worth); a saved policy states it per USD
    assert card["cost_unit"] == "usd" and card["cost_weight"] == pytest.approx(0.2 / card["cost_scale_usd"])
