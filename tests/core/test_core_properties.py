"""The guarantee: a task never spends past any limit, alone or with 50+ concurrent tasks on one shared budget."""

import asyncio
from decimal import Decimal

from core_helpers import within
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import agentroute as ar
from agentroute.testing import Say, Scripted

prices = st.decimals(min_value=Decimal("0.0000001"), max_value=Decimal("0.0001"), places=7)


@st.composite
def worlds(draw):
    n_tiers = draw(st.integers(1, 3))
    tiers = [ar.ModelTier(f"t{i}", model=f"test/m{i}", input_cost_per_token=draw(prices),
                          output_cost_per_token=draw(prices), max_tokens=draw(st.integers(1, 600)))
             for i in range(n_tiers)]
    n_agents = draw(st.integers(1, 4))
    names = [f"a{i}" for i in range(n_agents)]
    routes = {}
    for i, name in enumerate(names):
        targets = draw(st.lists(st.sampled_from([*names, ar.END]), min_size=1, max_size=3, unique=True))
        if ar.END not in targets and i == n_agents - 1:
            targets.append(ar.END)
        routes[name] = targets
    calls = {name: draw(st.integers(0, 3)) for name in names}
    out_tokens = draw(st.lists(st.integers(1, 2000), min_size=1, max_size=8))
    budget = ar.Budget(
        usd=draw(st.one_of(st.none(), st.decimals(min_value=0, max_value=Decimal("0.05"), places=6))),
        tokens=draw(st.one_of(st.none(), st.integers(0, 6000))),
        steps=draw(st.one_of(st.none(), st.integers(0, 8))),
    )
    policy = draw(st.sampled_from(["random", "cheapest", "strongest"]))
    return tiers, names, routes, calls, out_tokens, budget, policy


def build(tiers, names, routes, calls, out_tokens, policy, seed=0):
    g = ar.AgentGraph("prop")
    for name in names:
        def make(n_calls, agent):
            async def agent_fn(state, ctx):
                for k in range(n_calls):
                    await ctx.acomplete([{"role": "user", "content": f"{agent} call {k} {state.get('q', '')}"}])
                return {agent: state.get(agent, 0) + 1}
            return agent_fn
        g.add_agent(name, make(calls[name], name), tiers=tiers)
    g.start(names[0])
    for name, targets in routes.items():
        g.route(name, to=targets)
    pol = {"random": ar.policies.Random(seed=seed), "cheapest": ar.policies.Cheapest(),
           "strongest": ar.policies.Strongest()}[policy]
    script = Scripted({"*": [Say("x" * 5, output_tokens=n) for n in out_tokens]})
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unreachable-agent warnings of random graphs
        return g.compile(policy=pol, provider=script)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds())
def test_a_task_never_spends_past_its_budget(world):
    tiers, names, routes, calls, out_tokens, budget, policy = world
    try:
        app = build(tiers, names, routes, calls, out_tokens, policy)
    except ar.ConfigError:
        return  # a random graph with no way to END is rejected at compile time, as it should be
    res = asyncio.run(app.arun({"q": "hello"}, budget=budget))
    assert within(res), (res.spent, res.limits)
    assert res.truncated == (res.reason != "completed")
    if res.truncated:
        assert res.reason.startswith(("budget:", "recursion"))


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds(), st.integers(50, 80), st.decimals(min_value=Decimal("0.001"), max_value=Decimal("0.2"), places=4),
       st.integers(200, 20_000))
def test_many_concurrent_tasks_never_overdraw_one_shared_budget(world, n_tasks, team_usd, team_tokens):
    tiers, names, routes, calls, out_tokens, per_task, policy = world
    try:
        app = build(tiers, names, routes, calls, out_tokens, policy)
    except ar.ConfigError:
        return
    team = ar.SharedBudget(ar.Budget(usd=team_usd, tokens=team_tokens), per_task=per_task)

    async def main():
        return await asyncio.gather(*(app.arun({"q": f"task {i}"}, budget=team) for i in range(n_tasks)))

    results = asyncio.run(main())  # all tasks interleave on one event loop
    assert team.spent.usd <= team_usd and team.spent.tokens <= team_tokens
    assert team.ledger.reserved.usd == 0 and team.ledger.reserved.tokens == 0
    assert sum(r.spent.usd for r in results) == team.spent.usd
    assert all(within(r) for r in results)
