"""The routing kernel alone: the six moves, both sides of reserve/commit/release, masking reasons per dimension."""

import time
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentroute.budget import Budget, Ledger, SharedBudget, Spend
from agentroute.errors import ConfigError, PolicyError
from agentroute.routing import (
    Candidate,
    Decision,
    Option,
    PolicyBase,
    TaskInfo,
    TaskOutcome,
    TaskRouter,
    mask_reason,
    one_hot,
    option,
)

D = Decimal


class Log:
    """A recorder keeping every record and ledger move."""

    def __init__(self) -> None:
        self.decisions: list = []
        self.moves: list = []

    def on_decision(self, record):
        self.decisions.append(record)

    def on_ledger(self, op, what, amount):
        self.moves.append((op, what, amount.copy()))


class Pick(PolicyBase):
    """Chooses ``want`` when offered, else the first candidate; keeps what it saw and learned."""

    name = "pick"

    def __init__(self, want: str | None = None) -> None:
        self.want = want
        self.seen: list = []
        self.fed: list = []
        self.ended: list = []

    def decide(self, obs):
        self.seen.append(obs)
        c = self.want if self.want in obs.ids else obs.ids[0]
        return Decision(c, one_hot(obs, c), reason="test")

    def feedback(self, fb):
        self.fed.append(fb)

    def on_task_end(self, outcome):
        self.ended.append(outcome)


def opts(*spec):
    """Options from ``(id, usd, tokens)`` triples, ranked in order."""
    return [Option(Candidate(i, "memory", rank=r, cost_estimate=None if u is None else D(u)),
                   Spend(usd=None if u is None else D(u), tokens=t)) for r, (i, u, t) in enumerate(spec)]


def router(budget=None, policy=None, **kw):
    log = Log()
    led = budget if isinstance(budget, Ledger) else Ledger(budget or Budget())
    return TaskRouter(led, policy or Pick(), TaskInfo("t"), recorder=log, node="n", **kw), log


def test_the_six_moves_in_order():
    pol = Pick("mid")
    r, log = router(Budget(usd="0.01", tokens=1000), pol)
    choice = r.route("memory", "n.memory.retrieve", opts(("low", "0.001", 100), ("mid", "0.004", 400),
                                                         ("high", "0.02", 900)), extra={"module": "retrieve"})
    obs = pol.seen[0]  # observe: one snapshot, the masked option with its reason
    assert obs.ids == ("low", "mid") and obs.masked[0].id == "high"
    assert obs.masked[0].reason == "budget:usd: needs $0.02, $0.01 left"
    assert obs.budget.remaining.usd == D("0.01") and obs.extra == {"module": "retrieve"}
    assert choice.chosen == "mid" and choice.held  # decide, reserve
    assert r.ledger.reserved.usd == D("0.004") and r.ledger.reserved.tokens == 400
    assert r.history == [("n.memory.retrieve", "mid")]
    choice.settle(Spend(usd=D("0.003"), tokens=300), quality=0.5)  # settle, feedback, record
    assert r.ledger.reserved.usd == 0 and r.ledger.spent.usd == D("0.003") and r.ledger.spent.tokens == 300
    fb = pol.fed[0]
    assert fb.cost_usd == D("0.003") and fb.tokens == 300 and fb.quality == 0.5 and fb.ok
    rec = log.decisions[0]
    assert rec.chosen == "mid" and rec.cost_usd == D("0.003") and rec.reservation["usd"] == "0.004"
    assert rec.budget_before["usd"] == "0.01" and rec.budget_after["usd"] == "0.007"
    assert [m[0] for m in log.moves] == ["reserve", "commit"]
    choice.settle(Spend(usd=D(1)))  # idempotent: nothing more is booked, recorded or learned
    assert r.ledger.spent.usd == D("0.003") and len(log.decisions) == 1 and len(pol.fed) == 1


def test_release_frees_everything_and_fail_tells_the_policy():
    pol = Pick()
    r, log = router(Budget(usd="1"), pol)
    c = r.route("memory", "p", opts(("a", "0.5", 10)))
    assert r.ledger.reserved.usd == D("0.5")
    c.fail("boom")
    assert r.ledger.reserved.usd == 0 and r.ledger.spent.usd == 0
    assert not pol.fed[0].ok and pol.fed[0].error == "boom" and log.decisions[0].cost_usd == 0
    assert [m[0] for m in log.moves] == ["reserve", "release"]


def test_a_refused_reservation_holds_nothing_and_stops_with_its_dimension():
    team = SharedBudget(Budget(usd="0.01"))
    first = Ledger(Budget(), parents=[team.ledger])
    hold = first.reserve(Spend(usd=D("0.009")))  # another task holds most of the shared budget
    r, log = router(Ledger(Budget(usd="1"), parents=[team.ledger]))
    pending = r.observe("memory", "p", opts(("a", "0.005", 0)))
    assert pending.empty and pending.exhausted == "budget:usd"  # masked against the shared parent
    pending = r.observe("memory", "p", opts(("a", "0.001", 0)))
    first.reserve(Spend(usd=D("0.0009")))  # it holds more between this point's observe and its reserve
    c = r.decide(pending)
    assert c.stop == "budget:usd" and c.refused == "usd" and not c.held
    assert team.ledger.reserved.usd == D("0.0099") and r.ledger.reserved.usd == 0  # only the other task's
    hold.release()
    assert log.decisions[0].chosen == "a" and r.policy.policy.fed[0].ok is False


def test_negative_spend_never_gives_budget_back_and_unknown_cost_stays_unknown():
    r, _ = router(Budget(usd="1", tokens=100))
    c = r.route("memory", "p", opts(("a", "0.1", 50)))
    c.settle(Spend(usd=D("-0.05"), tokens=-20))
    assert r.ledger.spent.usd == 0 and r.ledger.spent.tokens == 0 and c.cost_usd == 0
    c2 = r.route("memory", "q", opts(("a", None, 10)))
    assert r.ledger.reserved.usd == 0  # an unknown price reserves no USD
    c2.settle(Spend(usd=None, tokens=5))
    assert r.ledger.spent.usd is None and c2.cost_usd is None and r.records[-1].cost_usd is None


@pytest.mark.parametrize(
    ("need", "budget", "reason"),
    [
        (Spend(steps=1), Budget(steps=0), "budget:steps: needs 1 step(s), 0 left"),
        (Spend(usd=D("0.2")), Budget(usd="0.1"), "budget:usd: needs $0.2, $0.1 left"),
        (Spend(tokens=11), Budget(tokens=10), "budget:tokens: needs 11 tokens, 10 left"),
        (Spend(seconds=5.0), Budget(seconds=1), "budget:seconds: needs 5.000s"),
    ],
)
def test_masking_reasons_per_dimension(need, budget, reason):
    got = mask_reason(need, Ledger(budget).remaining())
    assert got is not None and got.startswith(reason)
    assert mask_reason(Spend(), Ledger(budget).remaining()) is None


def test_time_up_masks_all_but_free_options_and_blocked_ones_keep_their_reason():
    led = Ledger(Budget(seconds=0.001))
    time.sleep(0.005)
    r, _ = router(led)
    end = Option(Candidate("__end__", "agent"), free=True)
    p = r.observe("agent", "route:n", [*opts(("a", "0", 0)), end, Option(Candidate("b", "agent"), blocked="tried")])
    assert p.observation.ids == ("__end__",)
    assert dict((m.id, m.reason) for m in p.observation.masked) == {"a": "budget:seconds: no time left",
                                                                     "b": "tried"}


def test_a_default_is_forced_when_nothing_else_is_affordable_and_nothing_ends_the_point():
    pol = Pick("a")
    r, log = router(Budget(steps=0), pol)
    end = Option(Candidate("__end__", "agent"), free=True)
    c = r.route("agent", "route:n", [Option(Candidate("a", "agent"), Spend(steps=1)), end], default="__end__")
    assert c.chosen == "__end__" and c.stop == "budget:steps" and c.forced and not pol.seen
    c.close()
    assert log.decisions[0].reason.startswith("forced") and not pol.fed  # recorded, never learned from
    none = r.route("memory", "p", [Option(Candidate("x", "memory"), Spend(steps=1))])
    assert none.chosen is None and none.stop == "budget:steps" and len(log.decisions) == 1  # nothing to record


def test_a_policy_choosing_a_masked_or_unknown_option_or_crashing_is_a_policy_error():
    r, _ = router(Budget(usd="0.01"), Pick("high"))
    p = r.observe("memory", "p", opts(("low", "0.001", 0), ("high", "1", 0)))
    with pytest.raises(PolicyError, match=r"masked \(budget:usd"):
        r.take(p, Decision("high", {"high": 1.0}))

    class Crash:
        name, version = "crash", "1"

        def decide(self, obs):
            raise RuntimeError("kaput")

    r2, _ = router(policy=Crash())
    with pytest.raises(PolicyError, match="kaput") as e:
        r2.route("memory", "p", opts(("a", "0", 0)))
    assert e.value.policy == "crash"


def test_a_plain_object_gets_every_default_of_the_contract():
    class Plain:
        def decide(self, obs):
            return Decision(obs.ids[0], one_hot(obs, obs.ids[0]))

    r, log = router(policy=Plain())
    c = r.route("model", "n.model", opts(("s", "0", 0)))
    assert r.policy.name == "Plain" and r.policy.version == "0" and not r.policy.learns
    assert r.accepts(c, reply="anything")
    c.settle()
    r.end_task(TaskOutcome("t", None, D(0), 0, True, False, "completed"))
    assert log.decisions[0].policy == "Plain"
    with pytest.raises(ConfigError, match="decide"):
        TaskRouter(Ledger(Budget()), object(), TaskInfo("t"))


def test_decision_time_counts_against_the_seconds_limit():
    class Slow(Pick):
        def decide(self, obs):
            time.sleep(0.05)
            return super().decide(obs)

    pol = Slow()
    r, _ = router(Budget(seconds=0.02), pol)
    c = r.route("memory", "p", opts(("a", "0", 1)))
    assert c.stop == "budget:seconds" and not c.held and r.ledger.reserved.tokens == 0
    assert pol.fed[0].ok is False


def test_records_keep_the_order_of_decisions_and_learning_can_be_off():
    pol = Pick()
    r, _ = router(policy=pol, learn=False)
    first = r.route("agent", "a", opts(("x", "0", 0)))
    second = r.route("model", "b", opts(("y", "0", 0)))
    second.settle()
    first.settle()
    assert [d.point for d in r.decisions()] == ["a", "b"] and [d.index for d in r.decisions()] == [0, 1]
    r.end_task(TaskOutcome("t", 1.0, D(0), 0, True, False, "completed"))
    assert not pol.fed and not pol.ended
    quiet, _ = router(policy=pol, record=False)
    quiet.route("memory", "p", opts(("z", "0", 0))).settle()
    assert quiet.records == [] and len(pol.fed) == 1


def test_option_of_a_candidate_needs_and_holds_its_estimate_and_tokens():
    o = option(Candidate("high", "memory", cost_estimate=D("0.01"), descriptor={"tokens": 300}))
    assert o.need.usd == D("0.01") and o.need.tokens == 300 and o.held is o.need


POINT = st.lists(st.tuples(st.decimals("0", "0.01", places=4), st.integers(0, 500), st.integers(0, 1)),
                 min_size=1, max_size=3)


@settings(max_examples=150, deadline=None)
@given(
    usd=st.none() | st.decimals("0", "0.02", places=4),
    tokens=st.none() | st.integers(0, 1500),
    steps=st.none() | st.integers(0, 6),
    team_usd=st.none() | st.decimals("0", "0.03", places=4),
    points=st.lists(st.tuples(POINT, st.floats(-0.5, 1.0), st.booleans()), max_size=12),
    seed=st.integers(0, 2**16),
)
def test_a_random_sequence_of_points_never_spends_past_the_budget(usd, tokens, steps, team_usd, points, seed):
    import random

    rng = random.Random(seed)
    team = SharedBudget(Budget(usd=team_usd))
    led = Ledger(Budget(usd=usd, tokens=tokens, steps=steps), parents=[team.ledger])

    class Rand(PolicyBase):
        def decide(self, obs):
            c = rng.choice(obs.ids)
            return Decision(c, one_hot(obs, c))

    r = TaskRouter(led, Rand(), TaskInfo("t"))
    for spec, share, fails in points:
        options = [Option(Candidate(f"o{i}", "memory", rank=i, cost_estimate=u), Spend(usd=u, tokens=t, steps=s))
                   for i, (u, t, s) in enumerate(spec)]
        c = r.route("memory", "p", options)
        if c.chosen is None or c.stop is not None:
            continue
        held = c.option.held
        if fails:
            c.fail("no")
            continue
        # what really happens is at most the worst case (and may be negative: a module that shrank the context)
        actual = Spend(usd=held.usd * D(str(round(share, 3))), tokens=int(held.tokens * share), steps=held.steps)
        c.settle(actual)
    spent = led.spent
    assert led.reserved.usd == 0 and led.reserved.tokens == 0 and led.reserved.steps == 0
    assert spent.usd >= 0 and spent.tokens >= 0
    for limit, used in ((usd, spent.usd), (team_usd, team.spent.usd)):
        assert limit is None or used <= limit
    assert tokens is None or spent.tokens <= tokens
    assert steps is None or spent.steps <= steps
