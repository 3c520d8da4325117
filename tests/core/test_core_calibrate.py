"""Simulated.from_table: a world calibrated on real outcomes behaves like the real models did."""

import numpy as np
import pytest

import agentroute as ar
from agentroute.data import RoutingTable


def synthetic_table(n=300, seed=0):
    rng = np.random.default_rng(seed)
    ability = np.array([-0.5, 0.3, 1.2])
    difficulty = rng.normal(0.2, 0.8, n)
    p = 1 / (1 + np.exp(-2.5 * (ability[None, :] - difficulty[:, None])))
    quality = (rng.random((n, 3)) < p).astype(float)
    cost = np.tile([0.0001, 0.001, 0.01], (n, 1))
    return RoutingTable(
        query_ids=[f"q{i}" for i in range(n)], texts=[f"question number {i}" for i in range(n)],
        categories=[None] * n, options=["weak", "mid", "strong"], quality=quality, cost=cost,
        input_tokens=np.full((n, 3), 50.0), output_tokens=np.full((n, 3), 150.0)), ability, difficulty


@pytest.mark.slow
def test_fit_recovers_the_order_of_abilities_and_difficulties():
    table, _, difficulty = synthetic_table()
    sim = ar.providers.Simulated.from_table(table)
    cal = sim.calibration
    assert list(np.argsort(cal.ability)) == [0, 1, 2]
    fitted = np.array([cal.difficulty[t] for t in table.texts])
    assert np.corrcoef(fitted, difficulty)[0, 1] > 0.6
    # the world answers known queries like the table did
    sim_q = np.array([[sim.outcome(o, [{"role": "user", "content": t}], 1000)["quality"] for o in table.options]
                      for t in table.texts[:150]])
    assert np.corrcoef(sim_q.ravel(), table.quality[:150].ravel())[0, 1] > 0.4
    assert sim_q[:, 2].mean() > sim_q[:, 0].mean() + 0.2


def test_a_graph_runs_on_the_calibrated_tiers_and_unknown_models_map_by_price():
    table, _, _ = synthetic_table(120)
    sim = ar.providers.Simulated.from_table(table, seed=1)
    tiers = sim.tiers()
    assert [t.name for t in tiers] == ["weak", "mid", "strong"]
    g = ar.AgentGraph("cal")
    g.add_agent("ask", lambda s, ctx: {"a": ctx.complete([{"role": "user", "content": s["q"]}]).text}, tiers=tiers)
    g.start("ask")
    strong = g.compile(policy=ar.policies.Strongest(), provider=sim)
    weak = g.compile(policy=ar.policies.Cheapest(), provider=sim)
    qs = [(strong.run({"q": t}).quality, weak.run({"q": t}).quality) for t in table.texts[:40]]
    assert np.mean([a for a, _ in qs]) > np.mean([b for _, b in qs])
    # the support graph's gpt-4o-mini / gpt-4o are mapped onto the table's options by price rank
    sim2 = ar.providers.Simulated.from_table(table)
    sim2.bind([ar.ModelTier("s", model="openai/gpt-4o-mini"), ar.ModelTier("l", model="openai/gpt-4o")])
    assert sim2.profiles["openai/gpt-4o-mini"] == sim2.profiles["weak"]
    assert sim2.profiles["openai/gpt-4o"] == sim2.profiles["strong"]
    with pytest.raises(ar.ConfigError, match="not an option"):
        ar.providers.Simulated.from_table(table, mapping={"openai/gpt-4o": "nope"}).bind(
            [ar.ModelTier("l", model="openai/gpt-4o")])


def test_routerbench_calibration(data_dir):
    from agentroute.data import load_builtin

    table = load_builtin("routerbench")
    sim = ar.providers.Simulated.from_table(table)
    cal = sim.calibration
    best = table.options[int(np.argmax(table.quality.mean(axis=0)))]
    assert cal.options[int(np.argmax(cal.ability))] == best
    assert all(sim.calibration.cost_per_token[o] is not None for o in table.options)
