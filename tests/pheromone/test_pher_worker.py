"""The bounded buffer and the background worker: serving never waits, a full buffer drops and counts."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from agentroute.errors import ConfigError
from agentroute.policies._pheromone_store import EdgeUpdate, PheromoneParams, PheromoneTable
from agentroute.policies._pheromone_worker import PheromoneUpdate, QualityGate, UpdateWorker


class SlowTable(PheromoneTable):
    """A table whose writes block until released (a stalled database)."""

    def __init__(self) -> None:
        super().__init__(PheromoneParams(rho=0.0))
        self.release = threading.Event()
        self.batches: list[int] = []

    def apply(self, updates: Sequence[EdgeUpdate], *, events: Sequence[Mapping[str, Any]] = ()) -> int:
        self.release.wait(10)
        self.batches.append(len(events))
        return super().apply(updates, events=events)


def upd(q: float | None = 1.0, *, ok: bool = True, option: str = "big", task: str = "t") -> PheromoneUpdate:
    return PheromoneUpdate(task, "model", option, {"math": 1.0}, q, 0.0, ok=ok)


def sig(u: PheromoneUpdate) -> float:
    return 0.0 if u.quality is None else u.quality


def test_full_buffer_drops_and_counts_and_never_blocks() -> None:
    table = SlowTable()
    w = UpdateWorker(table, sig, buffer_size=8, batch_size=4)
    results = [w.submit(upd()) for _ in range(100)]
    # The table has applied nothing yet (it is stalled until released): had any submit waited for room in the
    # buffer, it could only have returned after a batch was applied. No clock needed.
    assert table.batches == [], "submit waited for the stalled table"
    # at most buffer_size queued, plus the batch the worker already took off the queue
    assert sum(results) <= 8 + 4
    assert w.counts["dropped"] == 100 - sum(results) > 0
    assert w.counts["submitted"] == sum(results)
    table.release.set()
    assert w.flush(5)
    assert w.counts["applied"] == sum(results)
    assert table.total_updates == sum(results)
    w.close()


def test_gate_threshold_passes_deposits_and_fails_evaporate() -> None:
    table = PheromoneTable(PheromoneParams(rho=0.0, tau0=0.5, tau_min=1e-6))
    w = UpdateWorker(table, sig, gate=0.7)
    w.process([upd(0.9), upd(0.6), upd(1.0, ok=False), upd(None)])
    assert (w.counts["applied"], w.counts["gated"], w.counts["discarded"]) == (1, 2, 1)
    # 0.9 deposited, two gated outcomes count as zero-signal visits, the missing quality is skipped
    assert table.level(("math", "model", "", "big")) == pytest.approx((0.5 + 0.9) / 4)
    assert [e["outcome"] for e in w.recent] == ["applied", "gated", "gated", "discarded"]


def test_callable_judge_and_its_errors() -> None:
    table = PheromoneTable()
    seen: list[str] = []

    def judge(u: PheromoneUpdate) -> bool:
        seen.append(u.option)
        if u.option == "boom":
            raise RuntimeError("judge failed")
        return u.option == "good"

    w = UpdateWorker(table, sig, gate=judge)
    w.process([upd(option="good"), upd(option="bad"), upd(option="boom")])
    assert seen == ["good", "bad", "boom"]
    assert (w.counts["applied"], w.counts["gated"], w.counts["discarded"], w.counts["errors"]) == (1, 1, 1, 1)
    assert "judge failed" in (w.last_error or "")


def test_hooks_receive_every_event_and_a_failing_hook_is_isolated() -> None:
    w = UpdateWorker(PheromoneTable(), sig)
    got: list[Mapping[str, Any]] = []
    w.hooks.append(lambda ev: (_ for _ in ()).throw(RuntimeError("bad hook")))
    w.hooks.append(got.append)
    w.submit(upd(task="a"))
    w.submit(upd(0.2, task="b"))
    assert w.flush(5)
    assert [e["task_id"] for e in got] == ["a", "b"]
    assert got[0]["weights"] == {"math": 1.0} and got[1]["signal"] == pytest.approx(0.2)
    w.close()


def test_a_failing_table_is_counted_not_raised() -> None:
    class Broken(PheromoneTable):
        def apply(self, updates: Sequence[EdgeUpdate], *, events: Sequence[Mapping[str, Any]] = ()) -> int:
            raise OSError("disk full")

    w = UpdateWorker(Broken(), sig)
    w.submit(upd())
    assert w.flush(5)
    assert w.counts["errors"] == 1 and "disk full" in (w.last_error or "")
    w.close()
    assert not w.submit(upd()) and w.counts["dropped"] == 1


def test_many_serving_threads_count_exactly() -> None:
    table = SlowTable()
    w = UpdateWorker(table, sig, buffer_size=50, batch_size=10)

    def serve() -> None:
        for _ in range(200):
            w.submit(upd())

    threads = [threading.Thread(target=serve) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    table.release.set()
    assert w.flush(5)
    assert w.counts["submitted"] + w.counts["dropped"] == 800
    assert w.counts["applied"] == w.counts["submitted"] == table.total_updates
    w.close()


@pytest.mark.parametrize("kw", [{"buffer_size": 0}, {"batch_size": 0}, {"refresh_s": 0}, {"gate": 1.5}])
def test_worker_validation(kw: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        UpdateWorker(PheromoneTable(), sig, **kw)


def test_quality_gate_repr_and_bounds() -> None:
    assert "0.5" in repr(QualityGate(0.5))
    with pytest.raises(ConfigError):
        QualityGate(-0.1)
