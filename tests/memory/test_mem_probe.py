"""The free probe a policy's features read: computed on the first read, kept for the query, never for fixed tiers."""

from mem_helpers import PRICES, conversation

from agentroute.memory import Memory
from agentroute.memory._pipeline import state_features
from agentroute.memory.routing import route
from agentroute.policies.baselines import Fixed

Q = "Where did Melanie paint the sunrise?"


def test_fixed_tier_recalls_never_compute_the_probe(monkeypatch):
    mem = Memory(conversation(), prices=PRICES)
    calls = []
    real = mem.store._compute_probe
    monkeypatch.setattr(mem.store, "_compute_probe", lambda info: calls.append(info.text) or real(info))
    for tier in ("low", "mid", "high"):
        mem.recall(Q, tier)
    assert calls == []
    route(mem, Q, Fixed("low"))  # a policy at every module: the features are built four times...
    assert calls == [Q]  # ...and the probe computed once
    route(mem, "Who is Oliver?", Fixed("low"))
    assert calls == [Q, "Who is Oliver?"]


def test_probe_values_do_not_depend_on_the_cache():
    mem = Memory(conversation(), prices=PRICES)
    fresh = Memory(conversation(), prices=PRICES)
    for q in (Q, "Who is Oliver?", Q, "the and of", "What did Melanie make in the pottery class?"):
        state = mem.start(q)
        got = mem.store.probe(state.info)
        assert got == fresh.store._compute_probe(fresh.start(q).info)
        assert all(0.0 <= v <= 1.0 for v in got)
        f = state_features(mem.store, state)
        assert (f["probe_coverage"], f["probe_strength"], f["probe_ties"], f["probe_agree"]) == got
