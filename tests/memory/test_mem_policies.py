from decimal import Decimal

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mem_helpers import conversation, memory

from agentroute.errors import ConfigError, DataError, PolicyError
from agentroute.memory import MODULE_NAMES, TIERS
from agentroute.memory.evaluate import combo_table, run_policy, summarise
from agentroute.memory.features import N_FEATURES, observation_features
from agentroute.memory.fitted import FittedQPolicy, collect
from agentroute.memory.policies import (
    MemoryRulePolicy,
    MLPPolicy,
    PredictivePolicy,
    load_policy,
    question_type,
    save_policy,
)
from agentroute.memory.routing import budget_status, memory_observation, route
from agentroute.policies.baselines import Cheapest, Fixed, Random, Strongest
from agentroute.routing import Decision

MEM = memory()
QUESTIONS = conversation().questions
UNIT = float(MEM.usd(1000))
TABLE = combo_table([MEM])
DATA = collect([MEM])


def _policies():
    rng = np.random.default_rng(0)
    mlp = MLPPolicy([(rng.normal(size=(8, N_FEATURES)), rng.normal(size=8)), (rng.normal(size=(3, 8)), np.zeros(3))])
    return [
        MemoryRulePolicy(),
        MemoryRulePolicy.fit(TABLE, cost_weight=0.2 / UNIT),
        PredictivePolicy.fit(TABLE, method="ridge", cost_weight=0.2 / UNIT, unit_usd=UNIT),
        PredictivePolicy.fit(TABLE, method="knn", cost_weight=0.2 / UNIT, unit_usd=UNIT, k=3),
        FittedQPolicy.fit(DATA, cost_weight=0.2 / UNIT),
        mlp,
        Fixed("high"),
        Cheapest(),
        Strongest(),
        Random(seed=1),
    ]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, len(QUESTIONS) - 1), st.sampled_from(range(10)), st.floats(0.0, 0.004))
def test_every_policy_picks_an_affordable_tier(qi, pi, budget):
    """The contract: a memory policy returns one of obs.candidates, whatever the budget leaves."""
    policy = _policies()[pi]
    recall, routed = route(MEM, QUESTIONS[qi].question, policy, budget_usd=budget)
    for d in routed.decisions:
        assert isinstance(d, Decision) and d.chosen in TIERS
        assert abs(sum(d.probabilities.values()) - 1.0) < 1e-6
    assert recall.cost_usd is not None
    if not routed.truncated:
        assert len(routed.decisions) == len(MODULE_NAMES)


def test_masked_favourite_is_downgraded():
    q = QUESTIONS[0].question
    state = MEM.start(q)
    worst = {o.id: o.cost_usd for o in MEM.plan("retrieve", q, state)}
    obs = memory_observation(MEM, "retrieve", state, budget=budget_status(worst["mid"], Decimal(0)))
    assert obs.ids == ("low", "mid") and obs.masked[0].id == "high"
    d = MemoryRulePolicy({"temporal": {"retrieve": "high"}}).decide(obs)
    assert d.chosen == "mid" and "unaffordable" in d.reason
    assert obs.extra["module"] == "retrieve" and obs.kind == "memory" and obs.point == "answer.memory.retrieve"
    assert obs.masked[0].reason.startswith("budget:usd: needs $")  # the kernel's one family of reasons
    x = observation_features(obs)
    assert x.shape == (N_FEATURES,) and x.dtype == np.float32 and (np.abs(x) <= 1).all()


def test_route_rejects_a_policy_that_cheats():
    class Cheat:
        name, version = "cheat", "1"

        def decide(self, obs):
            return Decision("ultra", {"ultra": 1.0})

        def feedback(self, fb):
            pass

    with pytest.raises(PolicyError, match="ultra"):
        route(MEM, "anything", Cheat())


def test_rules_by_question_type_and_fit():
    assert question_type("When did Melanie go camping?") == "temporal"
    assert question_type("Would Caroline likely support it?") == "inference"
    assert question_type("What book is Caroline reading?") == "factual"
    cheap = MemoryRulePolicy.fit(TABLE, cost_weight=50.0 / UNIT)  # λ per USD: 50 per 1,000 context tokens' worth
    rich = MemoryRulePolicy.fit(TABLE, cost_weight=0.0)
    c = summarise(run_policy([MEM], cheap))["overall"]
    r = summarise(run_policy([MEM], rich))["overall"]
    assert c["cost_usd"] < r["cost_usd"] and r["evidence_recall"] >= c["evidence_recall"]
    with pytest.raises(ConfigError):
        MemoryRulePolicy({"temporal": {"retrieve": "ultra"}})


def test_fitted_q_trades_cost_for_quality():
    dear = summarise(run_policy([MEM], FittedQPolicy.fit(DATA, cost_weight=0.0)))["overall"]
    cheap = summarise(run_policy([MEM], FittedQPolicy.fit(DATA, cost_weight=20.0 / UNIT)))["overall"]
    assert cheap["cost_usd"] < dear["cost_usd"]


@pytest.mark.parametrize("idx", [0, 2, 3, 4, 5])
def test_save_and_load_without_pickle(tmp_path, idx):
    policy = _policies()[idx]
    path = save_policy(policy, tmp_path / "p")
    assert path.suffix == ".json"
    if path.with_suffix(".npz").exists():
        with np.load(path.with_suffix(".npz"), allow_pickle=False) as z:
            assert z.files
    again = load_policy(path)
    for q in QUESTIONS[:4]:
        a, _ = route(MEM, q.question, policy)
        b, _ = route(MEM, q.question, again)
        assert a.tiers == b.tiers


def test_load_errors(tmp_path):
    with pytest.raises(ConfigError):
        load_policy(tmp_path / "nothing.json")
    (tmp_path / "x.json").write_text('{"format": "other"}')
    with pytest.raises(DataError):
        load_policy(tmp_path / "x.json")
    with pytest.raises(DataError):
        MLPPolicy([(np.zeros((3, 5)), np.zeros(3))])


def test_ppo_exports_the_same_actor(tmp_path):
    """A few hundred PPO steps; the numpy export must act exactly like the torch actor."""
    from agentroute.envs.memory_tier import MemoryTierEnv
    from agentroute.memory.train import export_actor
    from agentroute.training import fit_memory_ppo

    policy = fit_memory_ppo([MEM], cost_weight=0.2 / UNIT, timesteps=256, seed=0)
    assert policy.meta["trained_with"] == "ppo" and policy.layers[0][0].shape[0] == N_FEATURES  # (in, out)
    from stable_baselines3 import PPO

    env = MemoryTierEnv([MEM])
    model = PPO("MlpPolicy", env, n_steps=64, batch_size=64, seed=1, device="cpu")
    exported = export_actor(model)
    for seed in range(5):
        obs, _ = env.reset(seed=seed)
        act, _ = model.predict(obs, deterministic=True)
        assert int(act) == int(np.argmax(exported.logits(obs)))
    loaded = load_policy(save_policy(policy, tmp_path / "ppo.json"))
    assert isinstance(loaded, MLPPolicy) and loaded.meta["cost_weight"] == pytest.approx(0.2 / UNIT)
    for seed in range(3):
        obs, _ = env.reset(seed=seed)
        assert int(np.argmax(loaded.logits(obs))) == int(np.argmax(policy.logits(obs)))
