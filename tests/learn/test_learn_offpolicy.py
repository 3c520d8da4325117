"""Off-policy evaluation: the estimators' invariants, and estimates checked against running the target for real."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from agentroute import Budget, policies, providers
from agentroute._offpolicy import dr_within_variance, sequential_estimates
from agentroute.cli import main
from agentroute.errors import ConfigError
from agentroute.examples import support_graph, support_rules, support_tasks
from agentroute.offpolicy import evaluate_logged, fit_logged, records_of
from agentroute.policies import load_policy, save_policy
from agentroute.policies.explore import EpsilonGreedy


@st.composite
def logs(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = draw(st.integers(1, 25))
    width = draw(st.integers(1, 4))
    lengths = draw(st.lists(st.integers(1, width), min_size=n, max_size=n))
    mask = np.array([[t < k for t in range(width)] for k in lengths])
    cells = st.lists(st.floats(-1, 1), min_size=n * width, max_size=n * width)
    rewards = np.array(draw(cells)).reshape(n, width)
    ratios = np.array(draw(st.lists(st.floats(0, 4), min_size=n * width, max_size=n * width))).reshape(n, width)
    return rewards, ratios, mask


@settings(max_examples=80, deadline=None)
@given(log=logs())
def test_the_logging_policy_itself_is_valued_at_its_plain_mean(log):
    rewards, _, mask = log
    est = sequential_estimates(rewards, np.ones_like(rewards), mask, n_boot=20)
    plain = float(np.where(mask, rewards, 0).sum(axis=1).mean())
    for k in ("ips", "snips", "dr"):
        assert est[k]["value"] == pytest.approx(plain, abs=1e-9)
    assert est["ess"] == pytest.approx(len(rewards))
    assert est["clipped_share"] == 0


@settings(max_examples=80, deadline=None)
@given(log=logs(), clip=st.floats(0.5, 20), seed=st.integers(0, 1000))
def test_estimates_ignore_task_order_and_dr_without_a_model_is_ips(log, clip, seed):
    rewards, ratios, mask = log
    est = sequential_estimates(rewards, ratios, mask, clip=clip, n_boot=0)
    assert est["dr"]["value"] == pytest.approx(est["ips"]["value"], abs=1e-9)
    perm = np.random.default_rng(seed).permutation(len(rewards))
    again = sequential_estimates(rewards[perm], ratios[perm], mask[perm], clip=clip, n_boot=0)
    for k in ("ips", "snips", "dr"):
        assert again[k]["value"] == pytest.approx(est[k]["value"], abs=1e-9)
    # a clipped weight never exceeds the clip: |ips| <= clip * mean |task reward|
    bound = clip * float(np.abs(np.where(mask, rewards, 0)).sum(axis=1).mean())
    assert abs(est["ips"]["value"]) <= bound + 1e-9
    assert 0 < est["ess"] <= len(rewards) + 1e-9 or est["ess"] == 0


@settings(max_examples=40, deadline=None)
@given(log=logs())
def test_a_perfect_reward_model_makes_dr_exact_whatever_the_weights(log):
    rewards, ratios, mask = log
    # deterministic world: the reward to come after each decision is known exactly; v̂ = q̂ (one action offered)
    r = np.where(mask, rewards, 0.0)
    to_come = np.flip(np.cumsum(np.flip(r, axis=1), axis=1), axis=1)
    est = sequential_estimates(rewards, ratios, mask, to_come, to_come, clip=None, n_boot=0)
    assert est["dr"]["value"] == pytest.approx(float(to_come[:, 0].mean()), abs=1e-9)


def test_bad_arrays_are_refused():
    with pytest.raises(ConfigError, match="no logged task"):
        sequential_estimates(np.zeros((0, 1)), np.zeros((0, 1)), np.zeros((0, 1), dtype=bool))
    with pytest.raises(ConfigError, match="one shape"):
        sequential_estimates(np.zeros((2, 1)), np.zeros((2, 2)), np.ones((2, 1), dtype=bool))
    with pytest.raises(ConfigError, match="clip"):
        sequential_estimates(np.zeros((2, 1)), np.ones((2, 1)), np.ones((2, 1), dtype=bool), clip=0)


def test_the_dr_variance_sums_over_every_offered_option_with_its_propensity():
    # one task: options a (μ .8, target 0, moment 0.3) and b (μ .2, target 1, moment 0.5): 0.8·0²·0.3 + 0.2·5²·0.5
    args = (np.array([0, 0]), np.array([0.8, 0.2]), np.array([0.0, 1.0]), np.array([0.3, 0.5]))
    assert dr_within_variance(1, *args, clip=None) == pytest.approx([2.5])
    assert dr_within_variance(1, *args, clip=2.0) == pytest.approx([0.2 * 2.0**2 * 0.5])
    # two tasks, a negative moment (a regression's undershoot) counts as 0
    two = dr_within_variance(2, np.array([0, 1]), np.array([0.5, 0.5]), np.array([1.0, 1.0]), np.array([-1.0, 0.5]))
    assert two == pytest.approx([0.0, 0.5 * 4 * 0.5])


def test_dr_intervals_cover_a_far_deterministic_target_where_the_heavy_weight_is_seldom_logged():
    # a bandit: on half the tasks the log takes the target's option with probability 0.05 (weight 20); rewards are
    # Bernoulli; the model knows each option's mean. A bootstrap over tasks seldom sees the weight-20 rows and
    # under-covers; the variance over every offered option with its known propensity does not.
    rng = np.random.default_rng(0)
    n, sims, p_true, truth = 100, 200, np.array([0.3, 0.7]), 0.7
    hits = {"total variance": 0, "bootstrap": 0}
    for s in range(sims):
        mu1 = np.where(rng.random(n) < 0.5, 0.05, 0.9)
        a = (rng.random(n) < mu1).astype(int)
        r = (rng.random(n) < p_true[a]).astype(float)[:, None]
        rho = np.where(a == 1, 1 / mu1, 0.0)[:, None]
        q, v, mask = p_true[a][:, None], np.full((n, 1), p_true[1]), np.ones((n, 1), dtype=bool)
        moment = [float(np.mean((r[a == k, 0] - p_true[k]) ** 2)) if (a == k).any() else 0.25 for k in (0, 1)]
        within = dr_within_variance(n, np.repeat(np.arange(n), 2), np.column_stack([1 - mu1, mu1]).ravel(),
                                    np.tile([0.0, 1.0], n), np.tile(moment, n), clip=None)
        for how, extra in (("total variance", within), ("bootstrap", None)):
            dr = sequential_estimates(r, rho, mask, q, v, clip=None, n_boot=100, seed=s, dr_within=extra)["dr"]
            hits[how] += dr["ci_low"] <= truth <= dr["ci_high"]
    assert hits["total variance"] / sims >= 0.93 and hits["bootstrap"] / sims < 0.9, hits


# -- the estimate against the truth, on the real runtime (support graph, simulated world) ---------------------------
BUDGET = Budget(usd="0.01")
LAMBDA = 100.0  # λ per USD: a large-model expert answer costs about 0.2 of quality


def _run(policy, tasks, world=0):
    app = support_graph().compile(policy=policy, provider=providers.Simulated(seed=world))
    return [app.run({"question": t["question"]}, budget=BUDGET, category=t["category"]) for t in tasks]


def _truth(results) -> float:
    return float(np.mean([(r.quality or 0.0) - LAMBDA * float(r.spent.usd or 0) for r in results]))


@pytest.mark.slow
def test_true_value_lies_in_the_interval_for_most_seeds():
    # per seed: log under ε-greedy rules, estimate each target, then run the target for real on the same tasks
    targets = {"rules": support_rules, "cheapest": policies.Cheapest}  # high and low overlap with the log
    covered, total = 0, 0
    for seed in range(8):
        tasks = support_tasks(80, seed=seed)
        logged = records_of(_run(EpsilonGreedy(support_rules(), 0.3, seed=seed), tasks),
                            [t["category"] for t in tasks])
        for make in targets.values():
            est = evaluate_logged(logged, make(), cost_weight=LAMBDA, n_boot=400, seed=seed)
            truth = _truth(_run(make(), tasks))
            covered += est["dr"]["ci_low"] <= truth <= est["dr"]["ci_high"]
            total += 1
            assert est["ess"] > 5
    assert covered / total >= 0.9, (covered, total)


def test_a_policy_fitted_from_logs_saves_loads_and_routes(tmp_path):
    tasks = support_tasks(60, seed=3)
    logged = records_of(_run(EpsilonGreedy(support_rules(), 0.4, seed=3), tasks), [t["category"] for t in tasks])
    for name in ("q-linear", "q-linear-iw"):
        fitted = fit_logged(logged, name, cost_weight=LAMBDA)
        save_policy(fitted, tmp_path / f"{name}.json")
        loaded = load_policy(tmp_path / f"{name}.json")
        assert loaded.model.keys == fitted.model.keys and loaded.cost_weight == LAMBDA
        results = _run(loaded, support_tasks(5, seed=4))
        assert all(r.decisions and r.decisions[0].policy == f"logged:{name}" for r in results)
        # the fitted policy is what it says: its value estimated on the same logs is finite
        est = evaluate_logged(logged, loaded, cost_weight=LAMBDA, n_boot=50)
        assert np.isfinite(est["dr"]["value"])


def test_a_shadow_that_fails_is_recorded_and_never_fails_the_task():
    class Broken(policies.Cheapest):
        name = "broken"

        def decide(self, obs):
            raise RuntimeError("boom")

    class Outside(policies.Cheapest):
        name = "outside"

        def decide(self, obs):
            from agentroute.routing import Decision

            return Decision("nowhere", {"nowhere": 1.0})

    app = support_graph().compile(policy=support_rules(), shadow=[Broken(), Outside(), policies.Cheapest()],
                                  provider=providers.Simulated(seed=0))
    res = app.run({"question": "Why was I charged twice on my invoice?"}, budget=BUDGET)
    assert res.completed and res.decisions
    for d in res.decisions:
        assert "boom" in d.shadow["broken"]["error"] and "nowhere" in d.shadow["outside"]["error"]
        assert d.shadow["cheapest"]["chosen"] in {c.id for c in d.candidates}


def test_an_estimate_resting_on_few_tasks_says_so():
    tasks = support_tasks(40, seed=6)
    logged = records_of(_run(EpsilonGreedy(support_rules(), 0.3, seed=6), tasks), [t["category"] for t in tasks])
    far = evaluate_logged(logged, policies.Strongest(), cost_weight=LAMBDA, n_boot=50)
    near = evaluate_logged(logged, support_rules(), cost_weight=LAMBDA, n_boot=50)
    assert far["ess"] < 10 and any("effective sample size" in w for w in far["warnings"])
    assert near["ess"] > 10 and not any("effective sample size" in w for w in near["warnings"])


def _export(tmp_path, records, name: str, **override) -> str:
    path = tmp_path / name
    path.write_text("".join(json.dumps({**r.to_dict(), **override}) + "\n" for r in records))
    return str(path)


def test_bad_logs_get_one_line_and_exit_2_from_every_logged_command(tmp_path):
    tasks = support_tasks(8, seed=7)
    logged = records_of(_run(EpsilonGreedy(support_rules(), 0.3, seed=7), tasks), [t["category"] for t in tasks])
    empty = _export(tmp_path, [], "empty.jsonl")
    no_props = _export(tmp_path, logged, "no_props.jsonl", probabilities={})
    good = _export(tmp_path, logged, "good.jsonl")
    out = str(tmp_path / "out")
    cases = {
        "empty log": (empty, "no decision"),
        "no propensities": (no_props, "no propensities"),
    }
    for what, (src, says) in cases.items():
        for args in (["eval", "--logged", src, "--policy", "cheapest", "--out", out],
                     ["fit", "--logged", src, "--policy", "q-linear", "--out", out + ".json"],
                     ["promote", "--logged", src, "--candidate", "cheapest"]):
            res = CliRunner().invoke(main, args)
            lines = [ln for ln in res.output.splitlines() if ln.strip()]
            assert res.exit_code == 2 and len(lines) == 1 and says in lines[0], (what, args, res.output)
    # a policy with options the log never offered, or a policy name fit does not know
    for args, says in ((["eval", "--logged", good, "--policy", "fixed:gpt-9", "--out", out], "gpt-9"),
                       (["promote", "--logged", good, "--candidate", "fixed:gpt-9"], "gpt-9"),
                       (["promote", "--logged", good, "--candidate", "cheapest", "--baseline", "fixed:gpt-9"],
                        "gpt-9"),
                       (["fit", "--logged", good, "--policy", "knn", "--out", out + ".json"], "--policy knn")):
        res = CliRunner().invoke(main, args)
        lines = [ln for ln in res.output.splitlines() if ln.strip()]
        assert res.exit_code == 2 and len(lines) == 1 and says in lines[0], (args, res.output)
