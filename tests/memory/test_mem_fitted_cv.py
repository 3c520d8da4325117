"""Fitted-Q's shrinkage chosen by leave-one-conversation-out cross-validation, and its offline policy walk."""

import numpy as np
import pytest
from mem_helpers import PRICES, conversation, memory

from agentroute.errors import ConfigError
from agentroute.memory import Memory
from agentroute.memory.evaluate import run_policy, summarise
from agentroute.memory.fitted import ALPHAS, FittedQPolicy, _design, _greedy_return, collect
from agentroute.memory.policies import load_policy, quality, save_policy

MEM = memory()
TWO = collect([MEM, Memory(conversation(), prices=PRICES)])
ONE = collect([MEM])


def test_groups_name_each_questions_conversation():
    n = TWO.evidence.shape[0]
    assert TWO.groups.shape == (n,) and set(TWO.groups.tolist()) == {0, 1}
    assert (TWO.groups == 0).sum() == (TWO.groups == 1).sum() == ONE.evidence.shape[0]


@pytest.mark.parametrize("lam", [0.0, 0.3, 5.0])
def test_cv_picks_the_alpha_with_the_best_held_out_return(lam):
    p = FittedQPolicy.fit(TWO, cost_weight=lam / TWO.unit_usd, mix=1.0)
    assert set(p.cv) == {f"{a:g}" for a in ALPHAS}
    best = max(p.cv.values())
    assert p.alpha in ALPHAS and p.cv[f"{p.alpha:g}"] == best
    # Ties go to the larger (more cautious) shrinkage.
    assert p.alpha == max(a for a in ALPHAS if p.cv[f"{a:g}"] == best)
    card = p.card()
    assert card["alpha"] == p.alpha and card["cv_return_by_alpha"] == p.cv


def test_one_conversation_uses_the_middle_alpha_and_an_explicit_one_is_kept():
    assert FittedQPolicy.fit(ONE, cost_weight=0.2).alpha == sorted(ALPHAS)[len(ALPHAS) // 2]
    p = FittedQPolicy.fit(TWO, cost_weight=0.2, alpha=3.0)
    assert p.alpha == 3.0 and p.cv == {}
    for bad in ({"alpha": 0.0}, {"alpha": -1.0}, {"alphas": ()}, {"alphas": (10.0, -1.0)}):
        with pytest.raises(ConfigError):
            FittedQPolicy.fit(TWO, cost_weight=0.2, **bad)


@pytest.mark.parametrize(("lam", "alpha"), [(0.0, 1.0), (0.2, 10.0), (1.0, 0.1)])
def test_offline_walk_scores_what_the_runtime_does(lam, alpha):
    """The return cross-validation scores a policy by equals the return of the same policy run by the runtime."""
    p = FittedQPolicy.fit(ONE, cost_weight=lam / ONE.unit_usd, mix=0.5, alpha=alpha)  # λ per USD
    ret = quality(ONE.evidence, ONE.answer, 0.5) - lam * ONE.cost / ONE.unit_usd
    walked = _greedy_return(_design(ONE, False), ret, np.ones(ret.shape[0], dtype=bool), p.weights)
    s = summarise(run_policy([MEM], p))["overall"]
    ran = quality(s["evidence_recall"], s["answer_recall"], 0.5) - lam * s["cost_usd"] / ONE.unit_usd
    assert walked == pytest.approx(ran, abs=1e-6)


def test_alpha_survives_save_and_load(tmp_path):
    p = FittedQPolicy.fit(TWO, cost_weight=0.2)
    again = load_policy(save_policy(p, tmp_path / "fq"))
    assert isinstance(again, FittedQPolicy)
    assert again.alpha == p.alpha and again.cv == p.cv
