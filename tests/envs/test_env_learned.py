from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from envs_helpers import TASKS, ab_graph, synthetic_table

import agentroute as ar
from agentroute import training
from agentroute.data import RoutingTable
from agentroute.envs.query_routing import QueryRoutingEnv
from agentroute.errors import DataError
from agentroute.features import HashingFeaturizer
from agentroute.policies import _sb3
from agentroute.policies._card import FORMAT
from agentroute.policies.learned import LearnedPolicy, load_learned
from agentroute.training import fit_ppo_from_table

TABLE = synthetic_table(160)
SCALE = TABLE.cost_scale()


def usd(lam: float) -> float:
    """λ per cost unit of TABLE (what the network was trained on) as λ per USD (what a policy takes)."""
    return lam / SCALE


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[LearnedPolicy, Path]:
    out = tmp_path_factory.mktemp("pol") / "router"
    pol = fit_ppo_from_table(
        TABLE, HashingFeaturizer(256, n_components=8), seed=0, cost_weights=(0.0, usd(1.0)), out=out,
        total_timesteps=8192,
    )
    return pol, out


def test_learns_the_price_dependent_choice(trained: tuple[LearnedPolicy, Path]) -> None:
    pol, _ = trained
    math_rows = np.array([c == "math" for c in TABLE.categories])
    choice, probs = pol.predict_texts(TABLE.texts, TABLE.categories, cost_weight=usd(0.3))
    assert probs.shape == (len(TABLE), 3) and np.allclose(probs.sum(axis=1), 1.0)
    names = np.array(pol.options)[choice]
    # at λ=0.3: hard (math) queries are worth the strong option, easy ones go to the cheap one
    assert np.mean(names[math_rows] == "strong") >= 0.9
    assert np.mean(names[~math_rows] == "cheap") >= 0.9


def test_card_and_files_are_safe_and_complete(trained: tuple[LearnedPolicy, Path]) -> None:
    pol, out = trained
    npz, card_path = out.with_name(out.name + ".npz"), out.with_name(out.name + ".json")
    assert npz.exists() and card_path.exists()
    card = json.loads(card_path.read_text())
    assert card["format"] == FORMAT and card["kind"] == "learned" and card["algo"] == "ppo"
    assert card["cost_unit"] == "usd" and card["cost_weight"] == pytest.approx(pol.cost_weight)
    for key in ("reward", "cost_weight_range", "metrics", "seed", "featurizer", "options", "cost_scale_usd", "table"):
        assert key in card, key
    assert card["cost_weight_range"] == pytest.approx([0.0, 1.0]) and card["table"] == {"source": "synthetic"}
    with np.load(npz, allow_pickle=False) as z:  # no object arrays: loads without pickle
        assert all(z[k].dtype != object for k in z.files)
    x = pol.featurizer.transform(TABLE.texts[:20], TABLE.categories[:20])
    for path in (npz, card_path, out):
        again = load_learned(path)
        assert np.array_equal(again.predict(x, usd(0.5))[0], pol.predict(x, usd(0.5))[0])


def test_numpy_network_matches_torch() -> None:
    x = np.random.default_rng(0).normal(size=(len(TABLE), 5)).astype(np.float32)
    vec = _sb3.make_vec([lambda: QueryRoutingEnv(TABLE, features=x, cost_weight_range=(0, 1))] * 2, seed=0)
    model = _sb3.train_model(vec, total_timesteps=512, seed=0, net_arch=(16, 16), hyper=_sb3.QUERY_PPO)
    env = vec.envs[0]
    card = {**env.describe(), "algo": "ppo", "seed": 0, "obs": {"kind": "query"}}
    sample = np.random.default_rng(1).normal(size=(50, 6)).astype(np.float32)
    pol = _sb3.export_model(model, card, check=sample)  # raises when numpy and torch disagree
    import torch

    with torch.no_grad():
        dist = model.policy.get_distribution(torch.as_tensor(sample))
        want = dist.distribution.logits.numpy()
    got = pol.batch_logits(sample)
    got = got - np.log(np.exp(got).sum(axis=1, keepdims=True))
    assert np.allclose(got, want, atol=1e-4)
    row = sample[0].copy()
    assert pol.act(row) == int(np.argmax(want[0]))
    vec.close()


def test_serving_imports_neither_torch_nor_sb3(trained: tuple[LearnedPolicy, Path]) -> None:
    _, out = trained
    code = f"""
import sys
from agentroute.policies.learned import load_learned
p = load_learned({str(out) + '.npz'!r}, cost_weight={usd(0.3)!r})
choice, _ = p.predict_texts(["prove the theorem about primes number 3 step by step"], ["math"])
print(p.options[int(choice[0])])
assert "torch" not in sys.modules, "torch imported"
assert "stable_baselines3" not in sys.modules, "sb3 imported"
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "strong"


def test_the_serving_hot_path_agrees_with_the_batch_path(trained: tuple[LearnedPolicy, Path]) -> None:
    # Decision latency is measured by benchmarks/env_throughput.py, never asserted here (a shared CI core is no clock).
    pol, _ = trained
    rows = np.random.default_rng(0).normal(size=(50, pol.input_dim)).astype(np.float32)
    batch = pol.batch_logits(rows).argmax(axis=1)
    for _ in range(3):  # repeated calls reuse the preallocated buffers: still the same answers
        assert [pol.act(r) for r in rows] == [int(i) for i in batch]


def test_a_table_policy_routes_model_tiers_in_the_runtime() -> None:
    # options named after models: in a graph the policy matches tiers by their descriptor's model
    base = synthetic_table(80)
    table = RoutingTable(
        base.query_ids, base.texts, base.categories, ["openai/gpt-4o-mini", "openai/gpt-4o"],
        base.quality[:, :2], base.cost[:, :2], base.input_tokens[:, :2], base.output_tokens[:, :2],
    )
    pol = fit_ppo_from_table(table, HashingFeaturizer(128, n_components=4), total_timesteps=1024, seed=1)
    from agentroute.providers.simulated import Simulated

    app = ab_graph().compile(pol.with_cost_weight(0.2 / table.cost_scale()), Simulated(seed=0))
    res = app.run({"question": "prove the theorem about primes number 7 step by step"},
                  budget=ar.Budget(usd="0.05", steps=4))
    tiers = [d for d in res.decisions if d.kind == "model"]
    assert tiers and all(d.chosen in ("small", "large") for d in tiers)
    assert all(d.policy == "learned:ppo" for d in tiers)
    assert not any("no candidate matches" in d.reason for d in tiers)


def test_graph_policy_trains_with_maskable_ppo_and_serves_in_app_run(tmp_path: Path) -> None:
    out = tmp_path / "graph_policy.npz"
    pol = training.fit_env_policy(
        "agentroute/GraphRouting-v0",
        env_kwargs={"graph": ab_graph(), "tasks": TASKS, "cost_weight_range": (0.0, 1.0), "cost_scale_usd": 0.001},
        algo="maskable_ppo", total_timesteps=256, seed=0, out=out,
    )
    assert pol.card["obs"]["kind"] == "graph" and pol.card["algo"] == "maskable_ppo"
    served = load_learned(out, cost_weight=0.5 / 0.001)  # λ per USD: 0.5 per cost unit of $0.001
    from agentroute.providers.simulated import Simulated

    app = ab_graph().compile(served, Simulated(seed=1))
    for task in TASKS[:4]:
        res = app.run(task, budget=ar.Budget(usd="0.02", steps=4))
        assert res.decisions
        for d in res.decisions:
            assert d.chosen in {c.id for c in d.candidates}


def test_broken_files_are_data_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such policy"):
        load_learned(tmp_path / "missing.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(DataError, match="cannot read the policy arrays"):
        load_learned(junk)
    other = tmp_path / "other.npz"
    np.savez(other, w0=np.zeros((2, 2), np.float32), b0=np.zeros(2, np.float32), card_json=np.asarray("{}"))
    with pytest.raises(DataError, match="format"):
        load_learned(other)


class _Oracle:
    """A 'predictive router' that knows the synthetic table's structure (for the warm start test)."""

    name = "oracle-ish"
    options = ("cheap", "strong", "mid")

    def predict_outcomes(self, texts: list[str], categories: list[str | None]) -> tuple[np.ndarray, np.ndarray]:
        hard = np.array([t.startswith("prove") for t in texts])
        q = np.stack([(~hard).astype(float), np.ones(len(texts)), np.where(hard, 0.5, 1.0)], axis=1)
        return q, np.tile([0.0001, 0.001, 0.0004], (len(texts), 1))


def test_warm_start_imitates_a_router_before_ppo() -> None:
    pol = training.fit_query_policy(TABLE, HashingFeaturizer(256, n_components=8), seed=0, cost_weights=(0.0, 1.0),
                                    total_timesteps=0, warm_start=_Oracle())
    assert pol.card["warm_start"]["from"] == "oracle-ish"
    assert pol.card["warm_start"]["imitation_accuracy"] > 0.9
    choice, _ = pol.predict_texts(TABLE.texts, TABLE.categories, cost_weight=usd(0.3))
    names = np.array(pol.options)[choice]
    math_rows = np.array([c == "math" for c in TABLE.categories])
    assert np.mean(names[math_rows] == "strong") > 0.9 and np.mean(names[~math_rows] == "cheap") > 0.9


def test_cost_weight_outside_the_trained_range(trained: tuple[LearnedPolicy, Path]) -> None:
    pol, _ = trained
    x = pol.featurizer.transform(TABLE.texts, TABLE.categories)
    # beyond the range it acts as at the edge; at infinity only cost counts
    assert np.array_equal(pol.predict(x, usd(50.0))[0], pol.predict(x, usd(1.0))[0])
    choice, probs = pol.predict(x, float("inf"))
    assert (np.array(pol.options)[choice] == "cheap").all() and np.allclose(probs.max(axis=1), 1.0)
    with pytest.raises(ar.ConfigError):
        pol.with_cost_weight(-1.0)
    from agentroute.budget import BudgetStatus, Ledger

    obs = ar.Observation(ar.TaskInfo("t", TABLE.texts[0]), "model", "a.model", "a", 0, (),
                         BudgetStatus.of(Ledger(ar.Budget())),
                         (ar.Candidate("strong", "model", rank=1), ar.Candidate("cheap", "model", rank=0)))
    assert pol.with_cost_weight(float("inf")).decide(obs).chosen == "cheap"
    d = pol.with_cost_weight(0.0).decide(obs)
    assert d.chosen in ("strong", "cheap") and sum(d.probabilities.values()) == pytest.approx(1.0)
    assert set(d.evidence["softmax"]) == {"strong", "cheap"}


def test_training_leaves_no_logger_folder_in_the_temp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # SB3's default logger creates an empty SB3-<date> folder in the temp dir at every learn(); ours writes nowhere.
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.delenv("SB3_LOGDIR", raising=False)
    x = np.random.default_rng(0).normal(size=(len(TABLE), 5)).astype(np.float32)
    vec = _sb3.make_vec([lambda: QueryRoutingEnv(TABLE, features=x, cost_weight_range=(0, 1))], seed=0)
    model = _sb3.train_model(vec, total_timesteps=64, seed=0, net_arch=(8,), hyper=_sb3.QUERY_PPO)
    assert model.num_timesteps >= 64
    assert list(tmp_path.iterdir()) == []
