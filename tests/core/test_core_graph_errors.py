import warnings

import pytest
from core_helpers import PRICED, custom_tiers, two_agent_graph

import agentroute as ar


def noop(state, ctx):
    return {}


def test_duplicate_agent():
    g = ar.AgentGraph("g")
    g.add_agent("a", noop)
    with pytest.raises(ar.ConfigError, match="duplicate agent name 'a'"):
        g.add_agent("a", noop)


def test_empty_tier_list():
    g = ar.AgentGraph("g")
    with pytest.raises(ar.ConfigError, match="empty tier list"):
        g.add_agent("a", noop, tiers=[])


def test_unknown_agent_in_route():
    g = ar.AgentGraph("g")
    g.add_agent("a", noop)
    g.start("a")
    g.route("a", to=["ghost", ar.END])
    with pytest.raises(ar.ConfigError, match="unknown agent 'ghost'") as e:
        g.compile(policy=ar.policies.Cheapest())
    assert e.value.name == "ghost"


def test_no_path_to_end():
    g = ar.AgentGraph("loop")
    g.add_agent("a", noop)
    g.add_agent("b", noop)
    g.start("a")
    g.route("a", to=["b"])
    g.route("b", to=["a"])
    with pytest.raises(ar.ConfigError, match="no path from 'a' to END"):
        g.compile(policy=ar.policies.Cheapest())


def test_missing_start_and_unknown_start():
    g = ar.AgentGraph("g")
    g.add_agent("a", noop)
    with pytest.raises(ar.ConfigError, match="no start agent"):
        g.compile(policy=ar.policies.Cheapest())
    g.start("zzz")
    with pytest.raises(ar.ConfigError, match="start agent 'zzz'"):
        g.compile(policy=ar.policies.Cheapest())


def test_rules_referring_to_unknown_agents_or_tiers():
    g = two_agent_graph()
    bad_tier = ar.policies.RulePolicy([{"name": "x", "when": {"kind": "model"}, "choose": "medium"}])
    with pytest.raises(ar.ConfigError, match="'medium'"):
        g.compile(policy=bad_tier, provider=ar.providers.Simulated())
    bad_agent = ar.policies.RulePolicy([{"when": {"kind": "agent"}, "choose": "reviewer"}])
    with pytest.raises(ar.ConfigError, match="'reviewer'"):
        g.compile(policy=bad_agent, provider=ar.providers.Simulated())
    with pytest.raises(ar.ConfigError, match="unknown agent 'nobody'"):
        g.compile(policy=ar.policies.RulePolicy([{"when": {"node": "nobody"}, "choose": "small"}]),
                  provider=ar.providers.Simulated())
    with pytest.raises(ar.ConfigError, match="Fixed"):
        g.compile(policy=ar.policies.Fixed("huge"), provider=ar.providers.Simulated())


def test_usd_limit_on_unpriced_tier_is_a_config_error_and_unknown_cost_is_none():
    tiers = [ar.ModelTier("mystery", model="nobody/unknown-model-x")]
    g = two_agent_graph(tiers)
    with pytest.warns(UserWarning, match="no price"):
        app = g.compile(policy=ar.policies.Cheapest(), provider=ar.providers.Simulated())
    with pytest.raises(ar.ConfigError, match="cannot be enforced"):
        app.run({"question": "hi"}, budget=ar.Budget(usd="1"))
    with pytest.warns(UserWarning, match="no price"), pytest.raises(ar.ConfigError, match="mystery"):
        g.compile(policy=ar.policies.Cheapest(), provider=ar.providers.Simulated(), budget=ar.Budget(usd="1"))
    res = app.run({"question": "hi"}, budget=ar.Budget(tokens=5000))
    assert res.spent.usd is None and res.spent.tokens > 0
    assert all(c.cost_usd is None for c in res.calls)


def test_stated_prices_make_a_usd_budget_enforceable():
    g = two_agent_graph(custom_tiers())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        app = g.compile(policy=ar.policies.Cheapest(), provider=ar.providers.Simulated())
    res = app.run({"question": "hi"}, budget=ar.Budget(usd="0.01"))
    assert res.spent.usd is not None and res.spent.usd > 0


@pytest.mark.parametrize("bad", [dict(on_exhausted="explode"), dict(min_answer_tokens=0), dict(max_retries=-1),
                                 dict(budget="1 dollar")])
def test_bad_compile_arguments(bad):
    with pytest.raises(ar.ConfigError):
        two_agent_graph().compile(policy=ar.policies.Cheapest(), provider=ar.providers.Simulated(), **bad)


def test_bad_policy_object_and_inputs():
    with pytest.raises(ar.ConfigError, match="decide"):
        two_agent_graph().compile(policy=object(), provider=ar.providers.Simulated())
    app = two_agent_graph().compile(policy=ar.policies.Cheapest(), provider=ar.providers.Simulated())
    with pytest.raises(ar.ConfigError, match="inputs must be a dict"):
        app.run("just a string")  # type: ignore[arg-type]
    with pytest.raises(ar.ConfigError, match="budget must be"):
        app.run({"question": "x"}, budget={"usd": 1})  # type: ignore[arg-type]


def test_two_different_tiers_with_one_name():
    g = ar.AgentGraph("g")
    g.add_agent("a", noop, tiers=[PRICED[0]])
    g.add_agent("b", noop, tiers=[ar.ModelTier("small", model="openai/gpt-4o")])
    g.start("a")
    g.edge("a", "b")
    with pytest.raises(ar.ConfigError, match="both named 'small'"):
        g.compile(policy=ar.policies.Cheapest(), provider=ar.providers.Simulated())
