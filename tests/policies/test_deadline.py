"""WithDeadline: a decision that misses its deadline is the fallback's, counted and recorded; never two calls at once.

The slow policy here blocks on an event instead of sleeping, so a miss is certain whatever the machine's load and
no assertion reads a clock: the wrapped decide cannot finish before the test releases it.
"""

from __future__ import annotations

import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pol_helpers import model_obs

from agentroute.errors import ConfigError, PolicyError
from agentroute.policies import Cheapest, Strongest, WithDeadline, load_policy, save_policy
from agentroute.routing import Decision, Feedback, PolicyBase, TaskOutcome, implements, one_hot
from agentroute.routing._policy import Policy


class Gate(PolicyBase):
    """Strongest candidate, but only once the gate is open (a decide that blocks until the test releases it)."""

    name = "gate"

    def __init__(self) -> None:
        self.open = threading.Event()
        self.open.set()
        self.running = 0
        self.most_at_once = 0
        self.fed: list[str] = []
        self.ended: list[str] = []
        self._lock = threading.Lock()
        self.entered = threading.Event()  # set once a decide is running (a thread may start after a missed deadline)

    def decide(self, obs: Any) -> Decision:
        with self._lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        self.entered.set()
        try:
            self.open.wait()
            c = max(obs.candidates, key=lambda x: x.rank)
            return Decision(c.id, one_hot(obs, c.id), reason=f"gate: {c.id}")
        finally:
            with self._lock:
                self.running -= 1

    def feedback(self, fb: Feedback) -> None:
        self.fed.append(fb.decision.chosen)

    def on_task_end(self, outcome: TaskOutcome) -> None:
        self.ended.append(outcome.task_id)


OBS = model_obs("prove the theorem by induction", "proof")
LONG = 60_000_000  # a minute: only a blocked decide misses it


def test_a_decision_in_time_is_the_wrapped_policys() -> None:
    p = WithDeadline(Gate(), micros=LONG, fallback=Cheapest())
    d = p.decide(OBS)
    assert d.chosen == "large" and d.reason == "gate: large"
    assert d.evidence["deadline"] == {"missed": False, "micros": LONG, "misses": 0}
    assert (p.misses, p.decisions, p.miss_rate) == (0, 1, 0.0)
    p.close()


def test_a_missed_deadline_returns_the_fallback_counts_and_records_it() -> None:
    gate = Gate()
    gate.open.clear()
    p = WithDeadline(gate, micros=1_000, fallback=Cheapest())
    d = p.decide(OBS)
    assert d.chosen == "small"
    assert d.reason.startswith("deadline missed (no decision within 1000 µs; miss 1 of 1): gate abandoned")
    assert "cheapest affordable: small" in d.reason
    assert d.evidence["deadline"] == {"missed": True, "micros": 1_000, "misses": 1}
    # while the abandoned decide still runs, the next one goes straight to the fallback: never two at once
    d2 = p.decide(OBS)
    assert d2.chosen == "small" and "still deciding" in d2.reason
    # the abandoned decide's thread may not have reached the gate yet on a loaded machine (failed once: 0 == 1)
    assert gate.entered.wait(60)
    assert gate.most_at_once == 1
    gate.open.set()
    p._pending.done.wait()  # type: ignore[union-attr]  # the abandoned one ends; its answer is dropped
    d3 = WithDeadline(gate, micros=LONG).decide(OBS)
    assert d3.chosen == "large"
    assert (p.misses, p.decisions) == (2, 2)
    p.close()


def test_feedback_goes_to_whoever_decided_and_waits_behind_the_running_call() -> None:
    gate = Gate()
    p = WithDeadline(gate, micros=LONG, fallback=Cheapest())
    d = p.decide(OBS)
    p.feedback(Feedback(OBS, d, Decimal("0.001"), 10, 0.1, quality=1.0))
    p.on_task_end(TaskOutcome("t", 1.0, Decimal("0.001"), 10, True, False, "completed"))
    gate.open.clear()
    p.micros = 1_000
    missed = p.decide(OBS)
    p.feedback(Feedback(OBS, missed, Decimal("0.0001"), 10, 0.1, quality=0.0))  # the fallback's: not the gate's
    gate.open.set()
    done = p._worker.submit(lambda: None)  # type: ignore[union-attr]  # queued after everything before it
    done.done.wait()
    assert gate.fed == ["large"] and gate.ended == ["t"]
    p.close()


def test_a_failing_wrapped_policy_is_a_policy_error_at_the_kernel() -> None:
    class Boom(PolicyBase):
        name = "boom"

        def decide(self, obs: Any) -> Decision:
            raise ValueError("no")

    with pytest.raises(PolicyError, match="boom"):
        Policy(WithDeadline(Boom(), micros=LONG)).decide(OBS)


@pytest.mark.parametrize("micros", [0, -5, 1.5, True, 10**13])
def test_a_bad_deadline_is_a_config_error(micros: Any) -> None:
    with pytest.raises(ConfigError, match="micros"):
        WithDeadline(Cheapest(), micros=micros)


def test_it_wraps_a_plain_object_and_declares_its_forwarding_capabilities() -> None:
    class Plain:
        name = "plain"

        def decide(self, obs: Any) -> Decision:
            return Decision("medium", one_hot(obs, "medium"), reason="plain")

    p = WithDeadline(Plain(), micros=LONG)
    assert p.decide(OBS).chosen == "medium"
    assert not implements(p, "predict_outcomes")  # an evaluation sweep goes through decide, deadline and all
    p.feedback(Feedback(OBS, p.decide(OBS), Decimal(0), 0, 0.0))  # Plain has no feedback: nothing queued
    p.close()


def test_saved_and_loaded_it_keeps_the_deadline_the_policies_and_the_counts(tmp_path: Path) -> None:
    gate = Gate()
    gate.open.clear()
    p = WithDeadline(Strongest(), micros=5_000, fallback=Cheapest())
    p.misses, p.decisions = 3, 7
    loaded = load_policy(save_policy(p, tmp_path / "d.json"))
    assert isinstance(loaded, WithDeadline)
    assert (loaded.micros, loaded.misses, loaded.decisions) == (5_000, 3, 7)
    assert isinstance(loaded.policy, Strongest) and isinstance(loaded.fallback, Cheapest)
    gate.open.set()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.booleans(), min_size=1, max_size=12))
def test_misses_count_exactly_the_decisions_the_wrapped_policy_did_not_make(blocks: list[bool]) -> None:
    """Each step either blocks the wrapped policy (a miss) or not; while an abandoned call runs, every call misses."""
    gate = Gate()
    p = WithDeadline(gate, micros=LONG, fallback=Cheapest())
    expected = 0
    for blocked in blocks:
        if blocked:
            gate.open.clear()
            p.micros = 1
        d = p.decide(OBS)
        assert d.chosen in OBS.ids and sum(d.probabilities.values()) == pytest.approx(1.0)
        missed = d.evidence["deadline"]["missed"]
        assert missed == (d.chosen == "small")
        if blocked:
            assert missed  # the gate is shut: it cannot have answered
        expected += missed
        gate.open.set()
        if p._pending is not None:
            p._pending.done.wait()  # let the abandoned call end before the next step
        p.micros = LONG
    assert p.misses == expected and p.decisions == len(blocks)
    assert gate.most_at_once == 1
    p.close()


def test_in_a_real_run_the_decision_record_says_the_deadline_was_missed() -> None:
    import agentroute as ar
    from agentroute.testing import Say, Scripted

    gate = Gate()
    gate.open.clear()
    tiers = (ar.ModelTier("small", model="openai/gpt-4o-mini"), ar.ModelTier("large", model="openai/gpt-4o"))
    g = ar.AgentGraph("deadline")
    g.add_agent("ask", lambda s, ctx: {"a": ctx.complete([{"role": "user", "content": "q"}]).text}, tiers=tiers)
    g.start("ask")
    policy = WithDeadline(gate, micros=2_000, fallback=Cheapest())
    app = g.compile(policy=policy, provider=Scripted({"*": [Say("fine", quality=0.8)]}))
    res = app.run({}, budget=ar.Budget(usd="0.01"))
    gate.open.set()
    (rec,) = [d for d in res.decisions if d.point == "ask.model"]
    assert rec.chosen == "small" and rec.reason.startswith("deadline missed")
    assert rec.evidence["deadline"]["missed"] is True and policy.misses >= 1
    policy.close()
