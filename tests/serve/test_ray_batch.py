"""app.batch / app.abatch(..., backend="ray") and eval --scenario --ray: tasks on local Ray workers draw on one Redis
ledger and trace into one store; one Ray session for the whole module (its start costs ~10 s)."""

import asyncio
import functools
import json
import os
import pickle
import sys
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from ray_app import make_app

import agentroute as ar
from agentroute._ray import budget_recipe, open_budget, ray_map
from agentroute.cli import main
from agentroute.examples import support_tasks
from agentroute.ledgers import RedisLedger

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
WORLD = ROOT / "envs" / "world.yaml"


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


# The suite's 300 s per test includes the module's Ray start (its fixture): on two cores shared with other work, the
# first Ray test alone took 220 s (start, two workers importing agentroute, the batch), so the Ray tests get 900 s.
@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.timeout(900)
def test_workers_share_one_redis_budget_that_runs_out_and_one_trace_store(local_ray, app, redis_url, tmp_path):
    name = f"ray-{uuid.uuid4().hex[:8]}"
    team = ar.SharedBudget(ar.Budget(usd="0.03"), backend=RedisLedger(redis_url, name=name))
    store = f"sqlite:///{tmp_path / 'traces.db'}"
    from agentroute.store import ensure_schema, get_engine

    ensure_schema(get_engine(store))  # made once here: workers starting together would race to create it
    inputs = [{"question": t["question"]} for t in support_tasks(30, 1)]
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
    # 30 tasks on the strongest tier want far more than $0.03: the shared limit stopped the late ones
    assert spent.usd > Decimal("0.025")
    assert any(r.truncated and r.reason.startswith("budget") for r in results)
    assert len({r.task_id for r in results}) == len(results)
    # both workers traced into the one store: every task is there (each worker writes out its spans before it stops)
    from agentroute.store.queries import list_tasks, open_store

    rows = list_tasks(open_store(store), limit=1000)
    missing = {r.task_id for r in results} - {row.task_id for row in rows}
    assert not missing and len(rows) == len(results), f"{len(missing)} task(s) not in the store"


@pytest.mark.slow
@pytest.mark.timeout(900)
async def test_abatch_on_ray_awaits_the_workers_with_the_event_loop_free(local_ray, app):
    ticks = 0
    stop = asyncio.Event()

    async def tick():
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0.01)

    ticker = asyncio.create_task(tick())
    inputs = [{"question": t["question"]} for t in support_tasks(12, 2)]
    try:
        results = await app.abatch(inputs, budget=ar.Budget(usd="0.05"), backend="ray", factory=make_app,
                                   workers=2, concurrency=3, categories=["c"] * 12)
    finally:
        stop.set()
        await ticker
    assert [r.state.get("question") for r in results] == [x["question"] for x in inputs]
    assert all(r.error is None and r.spent.usd > 0 for r in results)
    # starting two workers takes seconds: a loop blocked by the batch would have ticked once or twice at most
    assert ticks > 10
    with pytest.raises(ar.ConfigError, match="factory='module:attr'"):
        await app.abatch(inputs, backend="ray")


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_eval_scenario_on_ray_gives_the_figures_of_one_process(local_ray, tmp_path):
    rules = tmp_path / "full.yaml"
    rules.write_text("name: full\nrules:\n  - {name: r, when: {kind: agent, node: intake}, choose: research}\n"
                     "default: {agent: END, model: large}\n")
    args = ["eval", "--scenario", str(WORLD), "--policy", str(rules), "cheapest", "random", "bandit",
            "--cost-weight", "10", "--cost-weight", "100", "--tasks", "4", "--seed", "3", "--quiet"]
    local = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "local")])
    on_ray = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "ray"), "--ray", "--workers", "2"])
    assert local.exit_code == 0 and on_ray.exit_code == 0, (local.output, on_ray.output)
    a, b = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("local", "ray"))
    # each policy at each λ ran whole on one worker, in task order: the same figures (the bandit learns as it does here)
    assert a["policies"] == b["policies"] and set(a["policies"]) == {"full", "cheapest", "random", "bandit"}
    assert b["tasks"] == 4 and b["cost_weights"] == [10.0, 100.0]
    assert (tmp_path / "ray" / "frontier.png").stat().st_size > 0


@pytest.mark.timeout(900)
def test_ray_map_keeps_the_order_of_the_jobs(local_ray):
    assert ray_map(abs, [-5, 3, -2, 0, -7], workers=2) == [5, 3, 2, 0, 7]
    assert ray_map(abs, []) == []
    with pytest.raises(ar.ConfigError, match="workers=0"):
        ray_map(abs, [1], workers=0)


@pytest.mark.parametrize(("args", "message"), [
    (["eval", "--table", "t.csv", "--policy", "p", "--ray"], "applies to eval --scenario only"),
    (["eval", "--scenario", str(WORLD), "--policy", "cheapest", "--workers", "2"], "--workers applies with --ray"),
    (["replay", "--table", "routerbench", "--policy", "random", "--ray"], "--ray does not apply to replay"),
])
def test_ray_where_it_does_not_apply_is_one_line_and_exit_2(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "t.csv").write_text("x\n")
    (tmp_path / "p").write_text("{}")
    res = CliRunner().invoke(main, [*args, "--out", "o"])
    assert res.exit_code == 2, res.output
    assert message in res.output and len(res.output.strip().splitlines()) == 1


def test_evaluate_scenario_refuses_an_unknown_backend_and_workers_without_ray():
    from agentroute.scenario_eval import evaluate_scenario

    with pytest.raises(ar.ConfigError, match="backend='dask'"):
        evaluate_scenario(WORLD, ["cheapest"], backend="dask")
    with pytest.raises(ar.ConfigError, match="workers= only applies"):
        evaluate_scenario(WORLD, ["cheapest"], tasks=1, workers=2)


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
    with pytest.raises(ar.ConfigError, match="unknown option 'worker'"):
        app.batch([{"question": "hi"}], backend="ray", factory=make_app, worker=2)


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
