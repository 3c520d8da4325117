"""The update rule and the in-process pheromone table."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentroute.errors import ConfigError, DataError
from agentroute.policies._pheromone_store import (
    EdgeUpdate,
    PheromoneParams,
    PheromoneTable,
    edge_updates,
    parse_snapshot,
)

K = ("math", "model", "", "big")


@pytest.mark.parametrize(
    "kw",
    [
        {"rho": -0.1},
        {"rho": 1.5},
        {"rho": float("nan")},
        {"q": 0},
        {"tau_min": 0},
        {"tau_min": 1.0, "tau_max": 1.0},
        {"tau0": 5.0},
        {"tau0": 0.001},
        {"prior_visits": 0},
        {"decay": 1.0},
        {"decay_every": 0},
        {"decay_every": 2.5},
        {"drift_threshold": 0.0},
        {"drift_rate": 0.0},
        {"drift_rate": 1.5},
        {"rho": True},
    ],
)
def test_params_validation_names_the_field(kw: dict[str, object]) -> None:
    with pytest.raises(ConfigError) as e:
        PheromoneParams(**kw)  # type: ignore[arg-type]
    assert e.value.name == next(iter(kw)) or e.value.name in kw


def test_rho_zero_is_the_running_mean_with_tau0_as_prior() -> None:
    p = PheromoneParams(rho=0.0, tau0=0.5, tau_min=0.001, drift_threshold=None)
    t = PheromoneTable(p)
    signals = [1.0, 0.0, 1.0, 1.0, 0.0, 0.25]
    t.apply([EdgeUpdate(K, 1.0, s) for s in signals])
    assert t.level(K) == pytest.approx((0.5 + sum(signals)) / (1 + len(signals)))
    e = t.edges()[K]
    assert e.visits == len(signals) and e.updates == len(signals)


def test_constant_rho_forgets_old_deposits() -> None:
    t = PheromoneTable(PheromoneParams(rho=0.2))
    t.apply([EdgeUpdate(K, 1.0, 1.0) for _ in range(30)])
    t.apply([EdgeUpdate(K, 1.0, 0.0) for _ in range(30)])
    assert t.level(K) < 0.05  # after 30 failures at rate 0.2 the old successes are gone (down to the floor)


def test_clamped_to_bounds_and_weight_scales_step() -> None:
    p = PheromoneParams(rho=0.5, tau_min=0.1, tau_max=0.8, q=1.0)
    t = PheromoneTable(p)
    t.apply([EdgeUpdate(K, 1.0, 0.0)] * 20)
    assert t.level(K) == pytest.approx(0.1)
    t.apply([EdgeUpdate(K, 1.0, 1.0)] * 20)
    assert t.level(K) == pytest.approx(0.8)
    small = PheromoneTable(p)
    big = PheromoneTable(p)
    small.apply([EdgeUpdate(K, 0.1, 0.0)])
    big.apply([EdgeUpdate(K, 1.0, 0.0)])
    assert big.level(K) < small.level(K) < p.initial


def test_unvisited_edge_reads_tau0() -> None:
    t = PheromoneTable(PheromoneParams(tau0=0.3))
    assert t.level(K) == 0.3
    assert t.levels("math", "model") is None


def test_decay_schedule_pulls_back_to_tau0() -> None:
    p = PheromoneParams(rho=0.5, decay=0.5, decay_every=10, tau0=1.0)
    t = PheromoneTable(p)
    plain = PheromoneTable(PheromoneParams(rho=0.5, tau0=1.0))
    t.apply([EdgeUpdate(K, 1.0, 0.0)] * 9)
    plain.apply([EdgeUpdate(K, 1.0, 0.0)] * 10)
    assert t.decays == 0
    t.apply([EdgeUpdate(K, 1.0, 0.0)])  # the 10th update crosses the schedule
    assert t.decays == 1
    assert t.level(K) == pytest.approx(1.0 + (plain.level(K) - 1.0) * 0.5)  # half-way back to tau0
    assert t.edges()[K].visits == pytest.approx(5.0)


def test_decay_now_requires_decay() -> None:
    with pytest.raises(ConfigError):
        PheromoneTable().decay_now()


def test_edge_updates_cover_node_and_transition() -> None:
    ups = edge_updates({"a": 0.7, "b": 0.3, "c": 0.0001}, "model", "route=x", "big", 0.9)
    keys = {u.key for u in ups}
    assert keys == {("a", "model", "", "big"), ("a", "model", "route=x", "big"),
                    ("b", "model", "", "big"), ("b", "model", "route=x", "big")}
    assert {u.weight for u in ups if u.key[0] == "b"} == {0.3}


def test_export_restore_roundtrip_and_merge() -> None:
    t = PheromoneTable(PheromoneParams(rho=0.0))
    t.apply([EdgeUpdate(K, 1.0, 0.0)] * 3 + [EdgeUpdate(("chat", "model", "", "small"), 1.0, 1.0)])
    snap = t.export()
    u = PheromoneTable(PheromoneParams(rho=0.0))
    assert u.restore(snap) == 2
    assert u.level(K) == pytest.approx(t.level(K))
    # merge: visit-weighted mean of the two
    u.restore(snap, mode="merge")
    assert u.level(K) == pytest.approx(t.level(K))
    assert u.edges()[K].visits == pytest.approx(6.0)
    with pytest.raises(ConfigError):
        u.restore(snap, mode="append")


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {"format": "agentroute.pheromones", "version": 99, "edges": []},
        {"format": "agentroute.pheromones", "version": 1},
        {"format": "agentroute.pheromones", "version": 1, "edges": [{"task_type": "a"}]},
        {"format": "agentroute.pheromones", "version": 1,
         "edges": [{"task_type": "a", "point": "p", "option": "o", "tau": -1}]},
    ],
)
def test_bad_snapshots_raise_data_error(bad: dict[str, object]) -> None:
    with pytest.raises(DataError):
        parse_snapshot(bad)


@settings(max_examples=60, deadline=None)
@given(
    rho=st.floats(0.0, 1.0),
    tmin=st.floats(0.001, 0.5),
    span=st.floats(0.01, 5.0),
    ups=st.lists(st.tuples(st.floats(0.001, 1.0), st.floats(0.0, 1.0)), min_size=1, max_size=40),
)
def test_levels_always_within_max_min_bounds(rho: float, tmin: float, span: float,
                                             ups: list[tuple[float, float]]) -> None:
    p = PheromoneParams(rho=rho, tau_min=tmin, tau_max=tmin + span)
    t = PheromoneTable(p)
    for w, s in ups:
        t.apply([EdgeUpdate(K, w, s)])
        assert p.tau_min - 1e-12 <= t.level(K) <= p.tau_max + 1e-12
        assert math.isfinite(t.level(K))


@settings(max_examples=40, deadline=None)
@given(sig=st.lists(st.sampled_from([0.0, 0.5, 1.0]), min_size=1, max_size=30), seed=st.integers(0, 1000))
def test_rho_zero_is_order_independent(sig: list[float], seed: int) -> None:
    import random

    p = PheromoneParams(rho=0.0, tau0=0.5, tau_min=1e-6, drift_threshold=None)
    a, b = PheromoneTable(p), PheromoneTable(p)
    shuffled = list(sig)
    random.Random(seed).shuffle(shuffled)
    a.apply([EdgeUpdate(K, 1.0, s) for s in sig])
    b.apply([EdgeUpdate(K, 1.0, s) for s in shuffled])
    assert a.level(K) == pytest.approx(b.level(K))


def test_change_detection_restarts_a_changed_edge() -> None:
    on = PheromoneTable(PheromoneParams(rho=0.01, drift_threshold=0.3, drift_rate=0.1))
    off = PheromoneTable(PheromoneParams(rho=0.01, drift_threshold=None))
    for t in (on, off):
        t.apply([EdgeUpdate(K, 1.0, 1.0)] * 300)  # a long stable history at 1.0
        t.apply([EdgeUpdate(K, 1.0, 0.0)] * 15)  # then the option breaks
    e = on.edges()[K]
    assert e.resets >= 1 and e.visits < 30, "the break was detected and the edge restarted"
    assert on.level(K) < 0.4 < 0.8 < off.level(K)  # without detection the old history still dominates


def test_change_detection_is_quiet_on_a_stable_noisy_edge() -> None:
    import random

    rng = random.Random(0)
    t = PheromoneTable(PheromoneParams(rho=0.01))
    t.apply([EdgeUpdate(K, 1.0, float(rng.random() < 0.85)) for _ in range(2000)])
    assert t.edges()[K].resets <= 3
    assert t.level(K) == pytest.approx(0.85, abs=0.08)


def test_a_detected_change_reopens_the_other_options_of_the_point() -> None:
    p = PheromoneParams(rho=0.01, reopen=0.5, tau0=1.0)
    t = PheromoneTable(p)
    other = ("math", "model", "", "small")
    elsewhere = ("chat", "model", "", "small")
    t.apply([EdgeUpdate(other, 1.0, 0.2)] * 50 + [EdgeUpdate(elsewhere, 1.0, 0.2)] * 50)
    before, before_elsewhere = t.level(other), t.level(elsewhere)
    t.apply([EdgeUpdate(K, 1.0, 1.0)] * 300 + [EdgeUpdate(K, 1.0, 0.0)] * 15)
    assert t.edges()[K].resets >= 1
    assert t.level(other) > before  # pulled back towards tau0 = 1: the point is explored again
    assert t.level(elsewhere) == before_elsewhere  # another task type is left alone
