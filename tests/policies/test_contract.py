"""The one policy contract, run over every family (rules, cascade, deadline, baselines, predictive, bandits, learned,
pheromone, memory tier policies).

Every family: decides one of the candidates (never a masked or unknown id), with probabilities that sum to 1 over
the candidates and a positive propensity for its choice; takes a Feedback and a TaskOutcome; declares through
:func:`agentroute.routing.implements` exactly the optional capabilities it has; refuses at ``bind`` a graph that
lacks what it names (a ConfigError), and accepts one that has it; and saves to a card (+ arrays) that
:func:`agentroute.policies.load_policy` turns back into a policy making the same decisions.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pol_helpers import BAD_SPEC, FAMILIES, GOOD_SPEC, MODEL_SPEC, Family, observations

from agentroute.errors import ConfigError
from agentroute.policies import PolicyBase, load_policy, save_policy
from agentroute.policies._card import FORMAT
from agentroute.routing import CAPABILITIES, Decision, Feedback, RouterPolicy, TaskOutcome, implements

OBS = observations()
IDS = [f.name for f in FAMILIES]


@pytest.fixture(scope="module")
def built() -> dict[str, Any]:
    return {}


def _policy(built: dict[str, Any], fam: Family) -> Any:
    if fam.name not in built:
        built[fam.name] = fam.build()
    return built[fam.name]


def _check(d: Decision, obs: Any) -> None:
    ids = obs.ids
    assert isinstance(d, Decision)
    assert d.chosen in ids, f"{d.chosen!r} is not a candidate of {obs.point}: {ids}"
    assert d.chosen not in {m.id for m in obs.masked}
    assert set(d.probabilities) <= set(ids), f"probabilities name non-candidates: {set(d.probabilities) - set(ids)}"
    assert sum(d.probabilities.get(i, 0.0) for i in ids) == pytest.approx(1.0)
    assert all(0.0 <= p <= 1.0 + 1e-9 for p in d.probabilities.values())
    assert d.probabilities.get(d.chosen, 0.0) > 0.0
    assert isinstance(d.reason, str) and d.reason


@pytest.mark.parametrize("fam", FAMILIES, ids=IDS)
def test_decides_a_candidate_with_a_distribution_and_learns_without_complaint(built: dict, fam: Family) -> None:
    p = _policy(built, fam)
    assert isinstance(p, RouterPolicy) and isinstance(p, PolicyBase)
    assert isinstance(p.name, str) and p.name and isinstance(p.version, str)
    for i, obs in enumerate(OBS):
        d = p.decide(obs)
        _check(d, obs)
        q = None if i % 3 == 0 else 0.5 + 0.1 * (i % 5)
        p.feedback(Feedback(obs, d, Decimal("0.0002"), 10, 0.01, quality=q))
        assert isinstance(p.accept(obs, d, type("Reply", (), {"text": "an answer", "quality": q})()), bool)
    for tid in {o.task.id for o in OBS}:
        p.on_task_end(TaskOutcome(tid, 0.7, Decimal("0.001"), 30, True, False, "completed"))


@pytest.mark.parametrize("fam", FAMILIES, ids=IDS)
def test_declares_exactly_its_capabilities(built: dict, fam: Family) -> None:
    p = _policy(built, fam)
    declared = {c for c in CAPABILITIES if implements(p, c)}
    assert declared == fam.capabilities
    if "predict_outcomes" in declared:
        q, c = p.predict_outcomes(["prove the lemma", "add digits"], ["proof", None])
        assert np.shape(q) == np.shape(c) == (2, len(p.options)) and (np.asarray(c) >= 0).all()
    else:
        assert p.predict_outcomes(["x"], [None]) is None


@pytest.mark.parametrize("fam", FAMILIES, ids=IDS)
def test_bind_refuses_what_the_graph_lacks(built: dict, fam: Family) -> None:
    p = _policy(built, fam)
    p.bind(GOOD_SPEC)
    if fam.names_options:
        with pytest.raises(ConfigError) as e:
            p.bind(BAD_SPEC)
        assert e.value.name, "the error names what is missing"
    else:
        p.bind(BAD_SPEC)


@pytest.mark.parametrize("fam", FAMILIES, ids=IDS)
def test_save_then_load_makes_the_same_decisions(fam: Family, tmp_path: Path) -> None:
    original, copy_src = fam.build(), fam.build()
    for obs in OBS[:4]:  # some history first: what is saved is the state, not the constructor
        d = copy_src.decide(obs)
        original.decide(obs)
        copy_src.feedback(Feedback(obs, d, Decimal("0.0002"), 10, 0.01, quality=0.8))
        original.feedback(Feedback(obs, d, Decimal("0.0002"), 10, 0.01, quality=0.8))
    path = save_policy(original, tmp_path / "saved.json")
    card = json.loads(path.read_text())
    assert card["format"] == FORMAT and card["kind"] and card["family"] == type(original).family
    if card.get("arrays"):
        with np.load(path.with_name(card["arrays"]), allow_pickle=False) as z:
            assert all(z[k].dtype != object for k in z.files)
    loaded = load_policy(path)
    assert type(loaded) is type(original)
    for obs in OBS:
        a, b = original.decide(obs), loaded.decide(obs)
        assert a.chosen == b.chosen, obs.point
        assert a.probabilities == pytest.approx(b.probabilities, abs=1e-9)


@pytest.mark.parametrize("fam", [f for f in FAMILIES if "predict_outcomes" in f.capabilities], ids=lambda f: f.name)
def test_a_table_router_maps_tiers_by_model_name(built: dict, fam: Family) -> None:
    p = _policy(built, fam)
    p.bind(MODEL_SPEC)  # tiers named otherwise, but their models are fitted options
    with pytest.raises(ConfigError, match=r"tiny") as e:
        p.bind(BAD_SPEC)
    assert "tiny" in str(e.value) and "huge" in str(e.value) and "model" in str(e.value)
