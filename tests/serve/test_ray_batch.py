"""app.batch(..., backend="ray"): tasks on local Ray workers draw on one Redis ledger and trace into one store."""

import functools
import os
import pickle
import sys
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ray_app import make_app

import agentroute as ar
from agentroute._ray import budget_recipe, open_budget
from agentroute.examples import support_tasks
from agentroute.ledgers import RedisLedger

HERE = Path(__file__).parent
ROOT = HERE.parent.parent


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    path = os.pathsep.join(p for p in (str(HERE), str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": path}})
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def app():
    return make_app()


@pytest.mark.slow
@pytest.mark.redis
def test_workers_share_one_redis_budget_that_runs_out_and_one_trace_store(local_ray, app, redis_url, tmp_path):
    name = f"ray-{uuid.uuid4().hex[:8]}"
    team = ar.SharedBudget(ar.Budget(usd="0.03"), backend=RedisLedger(redis_url, name=name))
    store = f"sqlite:///{tmp_path / 'traces.db'}"
    inputs = [{"question": t["question"]} for t in support_tasks(60, 1)]
    results = app.batch(inputs, budget=team, backend="ray", factory=functools.partial(make_app, store),
                        workers=2, concurrency=4)
    backend = RedisLedger(redis_url, name=name)
    spent, reserved = backend.totals()
    backend.reset(spend=True)
    # every task's result, in input order
    assert len(results) == len(inputs) and all(isinstance(r, ar.RunResult) for r in results)
    assert [r.state.get("question") for r in results] == [x["question"] for x in inputs]
    # one budget: never overspent, no hold left behind, and it is what the tasks together spent
    assert reserved.usd == 0 and spent.usd <= Decimal("0.03")
    assert abs(spent.usd - sum(r.spent.usd for r in results)) < Decimal("1e-8") * len(results)
    # 60 tasks on the strongest tier want far more than $0.03: the shared limit stopped the late ones
    assert spent.usd > Decimal("0.025")
    assert any(r.truncated and r.reason.startswith("budget") for r in results)
    assert len({r.task_id for r in results}) == len(results)
    # both workers traced into the one store: every task is there
    from agentroute.store.queries import list_tasks, open_store

    rows = list_tasks(open_store(store), limit=1000)
    assert {row.task_id for row in rows} == {r.task_id for r in results}


def test_a_shared_budget_in_this_process_is_refused(app):
    with pytest.raises(ar.ConfigError, match="one budget per worker"):
        app.batch([{"question": "hi"}], budget=ar.SharedBudget(ar.Budget(usd="1")), backend="ray",
                  factory=make_app)


def test_an_in_memory_sqlite_ledger_is_refused(app):
    from agentroute.ledgers import SqlLedger

    team = ar.SharedBudget(ar.Budget(usd="1"), backend=SqlLedger("sqlite://", name="mem"))
    with pytest.raises(ar.ConfigError, match="in-memory SQLite"):
        app.batch([{"question": "hi"}], budget=team, backend="ray", factory=make_app)


def test_the_app_itself_cannot_travel_so_a_factory_is_needed(app):
    with pytest.raises(ar.ConfigError, match="factory='module:attr'"):
        app.batch([{"question": "hi"}], budget=ar.Budget(usd="1"), backend="ray")


def test_an_unknown_backend_and_ray_options_without_ray_are_refused(app):
    with pytest.raises(ar.ConfigError, match="backend='dask'"):
        app.batch([{"question": "hi"}], backend="dask", factory=make_app)
    with pytest.raises(ar.ConfigError, match="only apply to backend='ray'"):
        app.batch([{"question": "hi"}], workers=2)


def test_without_the_ray_extra_the_error_names_it(app, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now fails as if it were not installed
    with pytest.raises(ar.ConfigError, match=r"needs the 'ray' extra .*\.\[ray\]"):
        app.batch([{"question": "hi"}], backend="ray", factory=make_app)


@settings(deadline=None, max_examples=30)
@given(usd=st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("1000"), places=4),
       tokens=st.none() | st.integers(1, 10**9), steps=st.none() | st.integers(1, 10**6),
       per_task=st.none() | st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("10"), places=4),
       name=st.text("abcxyz-0123", min_size=1, max_size=12), lease=st.floats(0.5, 600))
def test_a_shared_budget_reopens_elsewhere_as_the_same_budget(usd, tokens, steps, per_task, name, lease):
    limits = ar.Budget(usd=usd, tokens=tokens, steps=steps)
    per = ar.Budget(usd=per_task) if per_task is not None else None
    url = "redis://127.0.0.1:6379/7"
    team = ar.SharedBudget(limits, per_task=per, backend=RedisLedger(url, name=name, lease=lease), name="t")
    again = open_budget(pickle.loads(pickle.dumps(budget_recipe(team))))  # what a worker receives and opens
    assert isinstance(again, ar.SharedBudget)
    assert again.limits == limits and again.per_task == team.per_task and again.name == "t"
    assert (again.ledger.backend.url, again.ledger.backend.name, again.ledger.backend.lease) == (url, name, lease)
    assert open_budget(budget_recipe(limits)) is limits and open_budget(budget_recipe(None)) is None
