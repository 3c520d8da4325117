"""Boundary-guided training (BoPO) in GraphRouting-v0: boundaries, classes, the cloned warm start, the reward."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agentroute import Budget
from agentroute.bopo import boundary_cost_weight, boundary_rollouts, clone, fit_bopo, rollout
from agentroute.envs.graph_routing import GraphRoutingEnv
from agentroute.examples import support_tasks, world_graph
from agentroute.policies import Cheapest, Strongest
from agentroute.policies.learned import load_learned

BUDGET = Budget(usd="0.004", tokens=6000, steps=6)
TASKS = support_tasks(8, seed=3)


@pytest.fixture(scope="module")
def env() -> GraphRoutingEnv:
    e = GraphRoutingEnv(world_graph(), tasks=TASKS, budget=BUDGET, cost_scale_usd=0.004)
    yield e
    e.close()


def test_rollouts_match_the_runtime_boundaries(env: GraphRoutingEnv) -> None:
    lo, hi = rollout(env, 2, Cheapest()), rollout(env, 2, Strongest())
    b = env.boundary(2)  # the env's own boundary runs, through app.run
    assert (lo.quality, hi.quality) == pytest.approx((b.q_lo, b.q_hi))
    assert lo.cost_usd == pytest.approx(b.c_lo * env.cost_unit_usd)
    assert hi.cost_usd > lo.cost_usd and len(lo.actions) == len(lo.obs) == len(lo.masks) >= 3
    assert all(m[a] for m, a in zip(lo.masks, lo.actions, strict=True))  # every recorded action was allowed


def test_the_warm_start_targets_the_cheapest_trajectory_reaching_the_strongest(env: GraphRoutingEnv) -> None:
    bounds = boundary_rollouts(env, range(len(TASKS)), explore=3, tolerance=0.05)
    assert {b.cls for b in bounds} <= {"easy", "hard", "unsolvable"}
    for b in bounds:
        t = b.target
        if b.cls == "unsolvable":
            assert t.cost_usd == pytest.approx(b.boundary.c_lo)
        else:
            assert t.quality >= b.boundary.q_hi - 0.05 and t.cost_usd <= b.boundary.c_hi + 1e-12
        assert t.cost_usd <= float(BUDGET.usd)  # a strict budget: no trajectory spends past it
    lam = boundary_cost_weight(bounds, 30.0)
    # per task, the boundary reward × Δq is the trade-off reward when its λ is λ·Δc/Δq
    ratios = [(b.boundary.c_hi - b.boundary.c_lo) / max(abs(b.boundary.q_hi - b.boundary.q_lo), 0.1) for b in bounds]
    assert lam == pytest.approx(30.0 * np.mean(ratios)) and lam > 0


def test_cloning_makes_the_actor_take_the_target_actions(env: GraphRoutingEnv) -> None:
    from agentroute.policies._sb3 import GRAPH_PPO, make_vec, train_model

    bounds = boundary_rollouts(env, range(4), explore=2)
    vec = make_vec([lambda: env], seed=0)
    model = train_model(vec, algo="maskable_ppo", total_timesteps=64, seed=0, hyper=GRAPH_PPO, learn=False)
    assert clone(model, [b.target for b in bounds], epochs=60) > 0.9


def test_fit_bopo_exports_a_graph_policy_with_its_report(tmp_path: Path) -> None:
    out = tmp_path / "bopo.npz"
    pol = fit_bopo({"graph": world_graph(), "tasks": TASKS[:4], "budget": BUDGET}, cost_weight_usd=30.0,
                   total_timesteps=64, explore=1, clone_epochs=5, out=out)
    card = load_learned(out).card
    assert card["obs"]["kind"] == "graph" and "boundary" in str(card["reward"])
    rep = card["bopo"]
    assert sum(rep["classes"].values()) == 4 and rep["rollouts"] == 4 * 3 and rep["boundary_cost_weight"] > 0
    app = world_graph().compile(pol, budget=BUDGET, provider=__import__("agentroute").providers.Simulated(seed=0))
    res = app.run(dict(TASKS[5]))
    assert res.decisions and float(res.spent.usd or 0) <= 0.004


def test_train_bopo_from_the_command_line(tmp_path: Path) -> None:
    import yaml
    from click.testing import CliRunner

    from agentroute.cli import main

    sc = tmp_path / "tiny-world.yaml"
    sc.write_text(yaml.safe_dump({"env": "agentroute/GraphRouting-v0", "options": {
        "graph": "agentroute.examples:world_graph", "tasks": [dict(t) for t in TASKS[:3]],
        "budget": {"usd": "0.004", "tokens": 6000, "steps": 6}, "cost_weight": 30}}))
    out = tmp_path / "b.npz"
    res = CliRunner().invoke(main, ["train", "--scenario", str(sc), "--bopo", "--algo", "maskable_ppo",
                                    "--timesteps", "32", "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    card = load_learned(out).card
    assert card["bopo"]["cost_weight_usd"] == 30 and card["bopo"]["rollouts"] == 3 * 6
    assert "BoPO: 18 boundary and exploring rollouts" in res.output and "trained" in res.output


@pytest.mark.parametrize(("args", "message"), [
    (["--env", "agentroute/GraphRouting-v0"], "--bopo needs --cost-weight"),
    (["--env", "agentroute/GraphRouting-v0", "--cost-weight", "30", "--reward", "budgetmem"], "drop --reward"),
    (["--table", "t.csv", "--cost-weight", "30"], "GraphRouting-v0 only"),
])
def test_train_bopo_misuse_exits_2(args: list[str], message: str) -> None:
    from click.testing import CliRunner

    from agentroute.cli import main

    res = CliRunner().invoke(main, ["train", "--bopo", *args, "--out", "x.npz"])
    assert res.exit_code == 2 and message in res.output, res.output
