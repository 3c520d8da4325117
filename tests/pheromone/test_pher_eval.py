"""`agentroute eval --scenario ... --policy pheromone` gives the same figures run after run (simulated provider)."""

from __future__ import annotations

import json
from pathlib import Path

from agentroute.scenario_eval import evaluate_scenario

WORLD = Path(__file__).resolve().parents[2] / "envs" / "world.yaml"


def test_two_runs_of_the_colony_on_a_simulated_scenario_give_identical_figures() -> None:
    runs = [evaluate_scenario(WORLD, ["pheromone"], cost_weights=[20.0], tasks=12, seed=0)["policies"]["pheromone"]
            for _ in range(2)]
    assert runs[0]["tasks"] == 12
    assert json.dumps(runs[0], sort_keys=True, default=str) == json.dumps(runs[1], sort_keys=True, default=str)
