"""PPO warm-started from a fitted-Q teacher: the cloned actor chooses what the teacher chooses, then PPO runs."""

import numpy as np
import pytest
from click.testing import CliRunner
from mem_helpers import memory, write_conversations

from agentroute.cli import main
from agentroute.errors import ConfigError
from agentroute.memory.fitted import FittedQPolicy, collect
from agentroute.memory.routing import route
from agentroute.training import fit_memory_ppo as fit_ppo

MEM = memory()
UNIT = float(MEM.usd(1000))  # λ per USD below: x / UNIT is x per 1,000 context tokens' worth
QUESTIONS = [q.question for q in MEM.conversation.questions]


def _tiers(policy):
    return [route(MEM, q, policy)[0].tiers for q in QUESTIONS]


@pytest.mark.parametrize("cost_weight", [0.0, 3.0])
def test_cloned_actor_follows_its_teacher(cost_weight):
    teacher = FittedQPolicy.fit(collect([MEM]), cost_weight=cost_weight / UNIT, mix=1.0, alpha=1.0)
    student = fit_ppo([MEM], cost_weight=cost_weight / UNIT, mix=1.0, timesteps=0, warm_start=teacher, clone_epochs=400)
    warm = student.meta["warm_start"]
    assert warm["teacher"] == "fitted-q" and warm["teacher_alpha"] == 1.0 and warm["imitation_accuracy"] >= 0.9
    assert warm["states"] == len(QUESTIONS) * (1 + 3 + 9 + 27)
    same = np.mean([a == b for a, b in zip(_tiers(student), _tiers(teacher), strict=True)])
    assert same >= 0.8


def test_warm_start_then_ppo_runs_and_bad_teachers_are_refused():
    policy = fit_ppo([MEM], cost_weight=0.2 / UNIT, timesteps=128, warm_start=True, clone_epochs=2)
    assert policy.meta["timesteps"] == 128 and "imitation_accuracy" in policy.meta["warm_start"]
    with pytest.raises(ConfigError, match="cannot warm-start"):
        fit_ppo([MEM], cost_weight=0.2, timesteps=64, warm_start="rule")
    with pytest.raises(ConfigError, match="too few"):
        fit_ppo([MEM], cost_weight=0.2, timesteps=0)


def test_cli_warm_start_is_for_ppo_only(tmp_path):
    convs = write_conversations(tmp_path / "convs", ("c1", "c2"))
    r = CliRunner().invoke(main, ["memory", "fit", "--conversations", str(convs), "--policy", "rule", "--warm-start",
                                  "--out", str(tmp_path / "p.json"), "--quiet"])
    assert isinstance(r.exception, ConfigError) and "--warm-start is for --policy ppo" in str(r.exception)
