"""PreferencePolicy: natural-language routes matched by similarity, with a threshold, named in the reason.

The hashing encoder runs everywhere (no model); the embedding encoder is checked too when the extra is installed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pol_helpers import REPO, model_obs

from agentroute.errors import ConfigError
from agentroute.policies import PreferencePolicy, RulePolicy, load_policy, save_policy
from agentroute.policies.preference import DEFAULT_THRESHOLD, embeddings_installed
from agentroute.routing import GraphSpec

FILE = REPO / "policies" / "preferences.yaml"
HASHED = load_policy(FILE, encoder="hashing")


def test_the_matched_preference_and_its_score_are_the_reason() -> None:
    d = HASHED.decide(model_obs("please refund my invoice, I was charged twice", None))
    assert d.chosen == "large"
    assert d.reason.startswith("preference 'billing-disputes' (line 9): similarity ")
    assert d.evidence["preference"] == "billing-disputes" and d.evidence["encoder"] == "hashing"
    assert d.evidence["similarity"] >= HASHED.threshold == DEFAULT_THRESHOLD["hashing"]
    assert d.scores["large"] == pytest.approx(d.evidence["similarity"])
    assert HASHED.decide(model_obs("how do I reset my password in the settings menu", None)).chosen == "medium"


def test_below_the_threshold_the_default_decides_and_says_how_close_it_came() -> None:
    d = HASHED.decide(model_obs("zebra quantum pancake", None))
    assert d.chosen == "small"
    assert d.reason.startswith("no preference reaches 0.15 (best ") and "default for model: small" in d.reason
    strict = PreferencePolicy([{"name": "all", "description": "anything at all", "choose": "large"}],
                              threshold=1.0, encoder="hashing", default={"model": "medium"})
    assert strict.decide(model_obs("anything at all, really", None)).chosen == "medium"


def test_an_unaffordable_choice_is_skipped_for_the_next_preference_or_the_default() -> None:
    p = PreferencePolicy([{"name": "big", "description": "refund my invoice please", "choose": "large"},
                          {"name": "mid", "description": "refund my invoice", "choose": "medium"}],
                         threshold=0.05, encoder="hashing", default={"model": "small"})
    d = p.decide(model_obs("refund my invoice please", None, ("small", "medium")))
    assert d.chosen == "medium" and "skipped big: large unavailable" in d.reason


def test_other_kinds_go_to_their_default_or_the_declared_default() -> None:
    from pol_helpers import agent_obs

    d = HASHED.decide(agent_obs("refund my invoice"))
    assert d.chosen == "answer" and "no preference for this kind" in d.reason


@pytest.mark.parametrize(("text", "where", "what"), [
    ("preferences:\n  - name: a\n    description: x\n  - name: b\n    choose: large\n",
     "line 2, preference #1", "choose"),
    ("preferences:\n  - name: a\n    choose: large\n", "line 2, preference #1", "needs a description"),
    ("preferences:\n  - name: a\n    description: x\n    choose: large\n    colour: red\n", "line 2", "colour"),
    ("encoder: word2vec\npreferences:\n  - {name: a, description: x, choose: large}\n", "field encoder", "hashing"),
    ("preferences: []\n", "field preferences", "at least 1"),
    ("threshold: 3\npreferences:\n  - {name: a, description: x, choose: large}\n", "threshold", "less than"),
    ("preferences: [\n", "not valid YAML", ""),
])
def test_a_bad_file_is_one_config_error_naming_file_line_and_field(tmp_path: Path, text: str, where: str,
                                                                   what: str) -> None:
    f = tmp_path / "prefs.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_policy(f)
    msg = str(e.value)
    assert str(f) in msg and where in msg and what in msg


def test_load_policy_tells_preference_files_from_rule_files(tmp_path: Path) -> None:
    assert isinstance(load_policy(REPO / "policies" / "support.yaml"), RulePolicy)
    assert isinstance(HASHED, PreferencePolicy)
    with pytest.raises(ConfigError, match="only an 'encoder'"):
        load_policy(FILE, cost_weight=1.0)


def test_bind_names_the_preference_and_its_line() -> None:
    with pytest.raises(ConfigError, match=r"line 9: preference 'billing-disputes' chooses 'large'") as e:
        HASHED.bind(GraphSpec("g", ["answer"], ["small", "medium", "huge"]))
    assert e.value.name == "large"


def test_a_saved_policy_keeps_its_encoder_and_decides_the_same(tmp_path: Path) -> None:
    loaded = load_policy(save_policy(HASHED, tmp_path / "prefs.json"))
    assert isinstance(loaded, PreferencePolicy) and loaded.encoder == "hashing"
    for text in ("charged twice on my card", "hello!", "contract liability clause", "what is 2+2"):
        a, b = HASHED.decide(model_obs(text, None)), loaded.decide(model_obs(text, None))
        assert (a.chosen, a.evidence, a.scores) == (b.chosen, b.evidence, b.scores)


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=200), st.sampled_from([("small", "medium", "large"), ("small", "medium"), ("large",)]))
def test_the_choice_is_the_most_similar_affordable_preference_over_the_threshold(text: str, ids: tuple) -> None:
    obs = model_obs(text, None, ids)
    d = HASHED.decide(obs)
    assert d.chosen in ids and d.probabilities[d.chosen] == 1.0
    sims = HASHED.similarities(text) if text else np.full(len(HASHED.preferences), -1.0)
    eligible = [(s, p) for s, p in zip(sims, HASHED.preferences, strict=True)
                if s >= HASHED.threshold and p.choose in ids]
    if eligible:
        s, p = max(eligible, key=lambda e: e[0])
        assert d.evidence["preference"] == p.name and d.chosen == p.choose
        assert d.evidence["similarity"] == pytest.approx(s, abs=1e-6)
    else:
        assert "preference" not in d.evidence


@pytest.mark.skipif(not embeddings_installed(), reason="the 'embeddings' extra is not installed")
def test_with_the_embeddings_extra_auto_matches_by_meaning() -> None:
    p = load_policy(FILE)
    assert p.encoder == "embedding" and p.threshold == DEFAULT_THRESHOLD["embedding"]
    d = p.decide(model_obs("my credit card got billed two times, I want the money back", None))
    assert d.chosen == "large" and "'billing-disputes'" in d.reason
    assert p.decide(model_obs("what is the capital of France", None)).chosen == "small"
