"""One decision record: run -> span -> row -> store -> read back gives the record the run returned, unchanged."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentroute import Budget, policies, providers
from agentroute.evaluation import ips_from_records
from agentroute.examples import support_graph, support_tasks
from agentroute.routing import Candidate, DecisionRecord, Masked
from agentroute.store import get_engine
from agentroute.store.queries import decision_records
from agentroute.telemetry import configure_tracing, decision_attributes

# Free-form text without anything credential-shaped (scrubbing is tested on its own, in the telemetry tests).
_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30).filter(
    lambda s: not any(t in s.lower() for t in ("sk-", "key", "token", "secret", "pass", "bearer", "basic", "auth")))
_money = st.none() | st.decimals(min_value=0, max_value=Decimal("1000"), places=12, allow_nan=False)
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-10**9, 10**9) | st.floats(allow_nan=False, allow_infinity=False) | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["a", "b", "rule", "line"]), inner,
                                                                max_size=3),
    max_leaves=6,
)
_mapping = st.dictionaries(st.sampled_from(["model", "tier", "prior", "rule", "weights"]), _json, max_size=3)


@st.composite
def records(draw: st.DrawFn) -> DecisionRecord:
    ids = draw(st.lists(st.sampled_from(["small", "large", "xl", "__end__", "expert", "mid"]), min_size=1,
                        max_size=4, unique=True))
    kind = draw(st.sampled_from(["agent", "model", "memory"]))
    cands = tuple(
        Candidate(i, kind, rank=r, input_price=draw(_money), output_price=draw(_money), cost_estimate=draw(_money),
                  latency_estimate=draw(st.none() | st.floats(0, 100)), descriptor=draw(_mapping))
        for r, i in enumerate(ids)
    )
    weights = draw(st.lists(st.floats(0, 1), min_size=len(ids), max_size=len(ids)))
    total = sum(weights) or 1.0
    budget = {"usd": str(draw(_money) or Decimal(0)), "tokens": draw(st.integers(0, 10**6)), "steps": 3,
              "seconds": draw(st.none() | st.floats(0, 60))}
    return DecisionRecord(
        task_id=uuid.uuid4().hex, index=draw(st.integers(0, 50)), kind=kind, point=draw(_text), node=draw(_text),
        step=draw(st.integers(0, 20)), chosen=draw(st.sampled_from(ids)),
        probabilities={i: w / total for i, w in zip(ids, weights, strict=True)},
        scores=draw(st.dictionaries(st.sampled_from(ids), st.floats(-1e6, 1e6), max_size=len(ids))),
        reason=draw(_text), policy=draw(_text), policy_version=draw(_text), explored=draw(st.booleans()),
        candidates=cands, masked=tuple(Masked(m, draw(_text)) for m in draw(st.lists(_text, max_size=2))),
        budget_before=budget, budget_after=draw(st.none() | st.just(budget)),
        reservation=draw(st.none() | st.just({"usd": "0.001", "tokens": 10, "steps": 0, "seconds": 0.0})),
        cost_usd=draw(_money), tokens=draw(st.integers(0, 10**6)), quality=draw(st.none() | st.floats(0, 1)),
        evidence=draw(_mapping), decided_ns=draw(st.integers(0, 2**62)),
        shadow=draw(st.dictionaries(_text, st.fixed_dictionaries(
            {"chosen": st.sampled_from(ids), "probabilities": st.fixed_dictionaries({i: st.floats(0, 1) for i in ids})})
            | st.fixed_dictionaries({"error": _text}), max_size=2)),
    )


@settings(max_examples=150, deadline=None)
@given(rec=records())
def test_every_conversion_gives_the_record_back(rec):
    assert DecisionRecord.from_dict(rec.to_dict()) == rec
    assert DecisionRecord.from_attributes(rec.to_attributes()) == rec
    assert DecisionRecord.from_row(rec.to_row()) == rec
    assert DecisionRecord.from_attributes(decision_attributes(rec)) == rec  # scrubbing leaves honest text alone
    assert rec.to_dict()["propensity"] == rec.propensity


def test_a_record_is_not_equal_to_another():
    rec = DecisionRecord("t", 0, "model", "a.model", "a", 0, "small", {"small": 1.0}, {}, "r", "p", "1", False,
                         (Candidate("small", "model"),), (), {"usd": "1"})
    assert rec != DecisionRecord.from_dict({**rec.to_dict(), "chosen": "large"})
    assert rec != DecisionRecord.from_dict({**rec.to_dict(), "cost_usd": "0.1"})
    assert rec == DecisionRecord.from_dict({**rec.to_dict(), "task": {"status": "completed"}})  # context aside
    # a policy that leaves a candidate out gave it 0
    two = DecisionRecord("t", 0, "model", "a.model", "a", 0, "small", {"small": 1.0}, {}, "r", "p", "1", False,
                         (Candidate("small", "model"), Candidate("large", "model", rank=1)), (), {})
    assert two.probabilities == {"small": 1.0, "large": 0.0} and two.propensity == 1.0


_POLICIES = {
    "random": lambda seed: policies.Random(seed=seed),
    "cheapest": lambda seed: policies.Cheapest(),
    "strongest": lambda seed: policies.Strongest(),
}


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(policy=st.sampled_from(sorted(_POLICIES)), seed=st.integers(0, 10**6),
       usd=st.sampled_from(["0.0005", "0.002", "0.01"]), steps=st.integers(1, 5))
def test_property_run_store_read_back_gives_equal_records(store_url, policy, seed, usd, steps):
    tracing = configure_tracing(exporters="none", store_url=store_url)
    app = support_graph().compile(policy=_POLICIES[policy](seed), provider=providers.Simulated(seed=seed),
                                  hooks=tracing.hooks)
    results = [app.run({"question": t["question"]}, budget=Budget(usd=usd, steps=steps))
               for t in support_tasks(3, seed=seed)]
    assert tracing.flush()
    tracing.shutdown()
    ran = {(d.task_id, d.index): d for r in results for d in r.decisions}
    stored = [d for d in decision_records(get_engine(store_url)) if (d.task_id, d.index) in ran]
    assert len(stored) == len(ran) > 0
    for rec in stored:
        assert rec == ran[(rec.task_id, rec.index)]
        assert rec.task["graph"] == "support" and rec.task["status"] in ("completed", "truncated")


def test_off_policy_estimates_read_records_from_the_store(store_url):
    tracing = configure_tracing(exporters="none", store_url=store_url)
    app = support_graph().compile(policy=policies.Random(seed=3), provider=providers.Simulated(seed=3),
                                  hooks=tracing.hooks)
    results = [app.run({"question": t["question"]}, budget=Budget(usd="0.01")) for t in support_tasks(8, seed=3)]
    assert tracing.flush()
    tracing.shutdown()
    stored = list(decision_records(get_engine(store_url)))
    assert any(d.quality is not None for d in stored)

    def uniform(rec: DecisionRecord) -> dict[str, float]:
        return {c.id: 1 / len(rec.candidates) for c in rec.candidates}

    from_store = ips_from_records(stored, uniform)
    from_run = ips_from_records([d for r in results for d in r.decisions], uniform)
    assert from_store == pytest.approx(from_run)
