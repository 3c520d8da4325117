import contextlib
import math
import threading
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import agentroute as ar
from agentroute.budget import Ledger, Spend, Unaffordable


@pytest.mark.parametrize("kw", [{"usd": -1}, {"usd": "abc"}, {"usd": float("nan")}, {"usd": math.inf},
                                {"tokens": -5}, {"tokens": 1.5}, {"steps": "x"}, {"seconds": -0.1},
                                {"usd": True}, {"tokens": float("nan")}, {"usd": [1]}])
def test_bad_budgets_are_config_errors(kw):
    with pytest.raises(ar.ConfigError) as e:
        ar.Budget(**kw)
    assert next(iter(kw)) in str(e.value)


def test_budget_is_frozen_and_money_is_decimal():
    b = ar.Budget(usd=0.1, tokens="20", steps=3, seconds=2)
    assert b.usd == Decimal("0.1") and isinstance(b.usd, Decimal)
    assert b.tokens == 20 and b.steps == 3 and b.seconds == 2.0
    with pytest.raises(AttributeError):
        b.usd = Decimal(1)  # type: ignore[misc]
    assert ar.Budget().is_unlimited


def test_reserve_commit_release_both_sides():
    led = Ledger(ar.Budget(usd="1.00", tokens=100))
    r = led.reserve(Spend(usd=Decimal("0.60"), tokens=50))
    assert led.remaining().usd == Decimal("0.40")
    with pytest.raises(Unaffordable) as e:
        led.reserve(Spend(usd=Decimal("0.50")))
    assert e.value.dimension == "usd"
    r.commit(Spend(usd=Decimal("0.10"), tokens=20))
    assert led.spent.usd == Decimal("0.10") and led.remaining().usd == Decimal("0.90")
    assert led.remaining().tokens == 80
    r2 = led.reserve(Spend(usd=Decimal("0.90"), tokens=80))
    r2.release()
    assert led.reserved.usd == 0 and led.remaining().usd == Decimal("0.90")
    r2.release()  # idempotent
    assert led.remaining().usd == Decimal("0.90")


def test_parent_refusal_rolls_back_child():
    team = ar.SharedBudget(ar.Budget(usd="0.50"))
    led = Ledger(ar.Budget(usd="1.00"), parents=[team.ledger])
    with pytest.raises(Unaffordable):
        led.reserve(Spend(usd=Decimal("0.60")))
    assert led.reserved.usd == 0 and team.ledger.reserved.usd == 0


def test_shared_budget_rejects_seconds():
    with pytest.raises(ar.ConfigError, match="per_task"):
        ar.SharedBudget(ar.Budget(seconds=3))


def test_threads_never_overdraw_a_shared_budget():
    team = ar.SharedBudget(ar.Budget(usd="1.00", tokens=10_000))
    def worker():
        led = Ledger(ar.Budget(), parents=[team.ledger])
        for _ in range(200):
            try:
                r = led.reserve(Spend(usd=Decimal("0.013"), tokens=97))
            except Unaffordable:
                continue
            r.commit(Spend(usd=Decimal("0.011"), tokens=90))
    ts = [threading.Thread(target=worker) for _ in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert team.spent.usd <= Decimal("1.00") and team.spent.tokens <= 10_000
    assert team.spent.usd > Decimal("0.9")  # it did use the budget


ops = st.lists(st.tuples(st.sampled_from(["reserve", "commit", "release"]),
                         st.decimals(min_value=0, max_value=1, places=4), st.integers(0, 500),
                         st.floats(0, 1)), max_size=60)


@settings(max_examples=150, deadline=None)
@given(limit_usd=st.decimals(min_value=0, max_value=2, places=3), limit_tokens=st.integers(0, 2000), seq=ops)
def test_ledger_never_spends_past_its_limits(limit_usd, limit_tokens, seq):
    led = Ledger(ar.Budget(usd=limit_usd, tokens=limit_tokens))
    open_ = []
    for op, usd, tok, frac in seq:
        if op == "reserve":
            with contextlib.suppress(Unaffordable):
                open_.append(led.reserve(Spend(usd=usd, tokens=tok)))
        elif open_:
            r = open_.pop(0)
            if op == "commit":  # a step spends at most what it reserved
                r.commit(Spend(usd=(r.amount.usd * Decimal(str(round(frac, 3)))).quantize(Decimal("0.0001")),
                               tokens=int(r.amount.tokens * frac)))
            else:
                r.release()
        spent, reserved = led.backend.totals()
        assert spent.usd + reserved.usd <= limit_usd
        assert spent.tokens + reserved.tokens <= limit_tokens
