"""The memory example runs offline, and the shipped memory policy matches this build's features."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from agentroute.memory.features import N_FEATURES
from agentroute.memory.fitted import FittedQPolicy
from agentroute.memory.policies import load_policy

REPO = Path(__file__).resolve().parents[2]
CARD = REPO / "policies" / "memory-fitted-q.json"


def test_shipped_policy_loads_and_says_what_it_was_fitted_on():
    card = json.loads(CARD.read_text())
    assert card["n_features"] == N_FEATURES, "refit: agentroute memory fit --policy fitted-q --out " + str(CARD)
    assert card["conversations"] == ["26", "30", "41", "42", "43", "44"] and card["retrieval"] == "hashing"
    policy = load_policy(CARD)
    assert isinstance(policy, FittedQPolicy) and policy.cost_weight == card["cost_weight"]


@pytest.mark.slow
@pytest.mark.parametrize("with_data", [True, False])
def test_memory_example_runs(tmp_path, with_data):
    env = dict(os.environ)
    if not with_data:
        env["AGENTROUTE_DATA_DIR"] = str(tmp_path)  # no locomo/ there: the built-in conversation
    out = subprocess.run([sys.executable, "examples/memory_qa.py"], cwd=REPO, capture_output=True, text=True,
                         timeout=300, env=env)
    assert out.returncode == 0, out.stderr
    points = re.findall(r"answer\.memory\.(\w+)\s+(low|mid|high)\s", out.stdout)
    assert [p for p, _ in points] == ["retrieve", "filter", "link", "time"]
    spent, limit = re.search(r"spent \$([\d.]+) of \$([\d.]+)", out.stdout).groups()
    assert 0 < float(spent) <= float(limit)
    twice, asked, most, cap = re.search(r"cascade: (\d+) of (\d+) questions looked twice; max spent per question "
                                        r"\$([\d.]+) of \$([\d.]+)", out.stdout).groups()
    assert 0 <= int(twice) <= int(asked) and 0 < float(most) <= float(cap)
    if with_data:
        if "built-in conversation" in out.stdout:
            pytest.skip("LoCoMo data not found beside the repository")
        routed, high = (float(x) for x in re.findall(r"evidence recall ([\d.]+)", out.stdout))
        assert 0 < routed <= 1 and 0 < high <= 1
    else:
        assert "built-in conversation" in out.stdout
