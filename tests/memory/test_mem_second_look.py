"""Fixed tiers, second looks and the recall -> answer -> look-again cascade, inside real graph runs."""

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mem_helpers import memory

import agentroute as ar
from agentroute.errors import ConfigError
from agentroute.memory import MODULE_NAMES
from agentroute.memory._bound import offered_tiers
from agentroute.policies.baselines import Cheapest

Q = "When did Caroline go to the LGBTQ support group?"
MEM = memory()


class Watching(Cheapest):
    """The cheapest tier, keeping every observation it was shown."""

    def __init__(self) -> None:
        self.seen: list = []

    def decide(self, obs):
        self.seen.append(obs)
        return super().decide(obs)


def _run(agent, policy, budget="0.01"):
    g = ar.AgentGraph("look")
    g.add_agent("answer", agent, memory=MEM)
    g.start("answer")
    return g.compile(policy).run({"question": Q}, budget=ar.Budget(usd=budget))


def _memory_decisions(res):
    return [d for d in res.decisions if d.kind == "memory"]


def test_fixed_tiers_are_offered_alone_budgeted_and_recorded():
    def agent(state, ctx):
        r = ctx.memory.recall(state["question"], "high")
        return {"tiers": dict(r.tiers), "usd": str(r.cost_usd)}

    res = _run(agent, Cheapest())
    assert res.state["tiers"] == dict.fromkeys(MODULE_NAMES, "high")  # the cheapest policy had no cheaper choice
    for d in _memory_decisions(res):
        assert [c.id for c in d.candidates] == ["high"]
        assert Decimal(d.reservation["usd"]) >= d.cost_usd >= 0
    assert res.spent.usd >= Decimal(res.state["usd"]) - Decimal("1e-12")


def test_recall_with_on_the_bound_memory_is_budgeted_too():
    def agent(state, ctx):
        r = ctx.memory.recall_with(state["question"], {"retrieve": "mid"})
        return {"tiers": dict(r.tiers)}

    res = _run(agent, ar.policies.Strongest())  # offered nothing else: the strongest policy gets low where told
    assert res.state["tiers"] == {"retrieve": "mid", "filter": "low", "link": "low", "time": "low"}
    assert len(_memory_decisions(res)) == len(MODULE_NAMES) and res.spent.usd > 0


def test_a_second_look_offers_only_tiers_at_or_above_the_first():
    policy = Watching()

    def agent(state, ctx):
        first = ctx.memory.recall(state["question"], {"retrieve": "mid", "time": ["mid", "high"]})
        second = ctx.memory.recall(state["question"], after=first)
        return {"first": dict(first.tiers), "second": dict(second.tiers), "looks": [first.look, second.look]}

    res = _run(agent, policy)
    assert res.state["first"] == {"retrieve": "mid", "filter": "low", "link": "low", "time": "mid"}
    assert res.state["second"] == res.state["first"]  # the cheapest tier still offered, module by module
    assert res.state["looks"] == [1, 2]
    second = policy.seen[len(MODULE_NAMES):]
    assert [[c.id for c in o.candidates] for o in second] == [["mid", "high"], ["low", "mid", "high"],
                                                              ["low", "mid", "high"], ["mid", "high"]]
    assert all(o.extra["look"] == 2 and o.extra["previous_tiers"] == res.state["first"] for o in second)
    assert [d.point for d in _memory_decisions(res)][len(MODULE_NAMES):] == [
        f"answer.memory.look2.{m}" for m in MODULE_NAMES]
    assert all("look" not in o.extra for o in policy.seen[: len(MODULE_NAMES)])


@pytest.mark.parametrize("satisfied", [True, False])
def test_cascade_looks_again_at_high_only_when_the_answer_is_not_enough(satisfied):
    answers: list = []

    def agent(state, ctx):
        def answer(r):
            answers.append(dict(r.tiers))
            return {"ids": list(r.ids)}

        r, reply = ctx.memory.cascade(state["question"], answer, lambda _: satisfied)
        return {"look": r.look, "ids": reply["ids"]}

    res = _run(agent, Cheapest())
    assert answers[0] == dict.fromkeys(MODULE_NAMES, "low")
    if satisfied:
        assert res.state["look"] == 1 and len(answers) == 1 and len(_memory_decisions(res)) == 4
    else:
        assert res.state["look"] == 2 and answers[1] == dict.fromkeys(MODULE_NAMES, "high")
        assert len(_memory_decisions(res)) == 8
    assert not res.truncated


def test_cascade_keeps_the_first_answer_when_the_second_look_is_unaffordable():
    def agent(state, ctx):
        r, reply = ctx.memory.cascade(state["question"], lambda r: list(r.ids), lambda _: False)
        return {"look": r.look, "ids": reply}

    first = _run(lambda s, ctx: {"usd": str(ctx.memory.recall(s["question"]).cost_usd)}, Cheapest())
    budget = Decimal(first.state["usd"]) * 2  # the low look, and far from a high one
    res = _run(agent, Cheapest(), budget=str(budget))
    assert res.state["look"] == 1 and res.state["ids"] and not res.truncated
    assert res.spent.usd == Decimal(first.state["usd"])  # the second look stopped before spending
    assert len(_memory_decisions(res)) == len(MODULE_NAMES)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("0.01"), places=6), st.integers(1, 3))
def test_a_cascade_never_spends_past_the_budget(limit, looks):
    def agent(state, ctx):
        r, _ = ctx.memory.cascade(state["question"], lambda r: r.ids, lambda _: False, then=None, looks=looks)
        return {"look": r.look}

    res = _run(agent, ar.policies.Random(seed=1), budget=str(limit))
    assert res.spent.usd <= limit
    for d in _memory_decisions(res):
        assert d.cost_usd is None or d.cost_usd <= Decimal(d.reservation["usd"])


def test_bad_tiers_and_looks_are_refused_with_what_to_do():
    with pytest.raises(ConfigError, match="unknown memory tier"):
        offered_tiers("ultra")
    with pytest.raises(ConfigError, match="unknown memory module"):
        offered_tiers({"rerank": "high"})
    with pytest.raises(ConfigError, match="takes the Recall"):
        offered_tiers(None, after="a recall")  # type: ignore[arg-type]
    high = MEM.recall(Q, "high")
    with pytest.raises(ConfigError, match="at or above") as e:
        offered_tiers("low", after=high)
    assert "offer a dearer tier" in str(e.value.hint)

    def agent(state, ctx):
        ctx.memory.cascade(state["question"], lambda r: r, lambda _: True, looks=0)
        return {}

    res_err = None
    try:
        _run(agent, Cheapest())
    except Exception as exc:  # the agent's ConfigError reaches the caller as an AgentError
        res_err = exc
    assert res_err is not None and "looks=0" in str(res_err)


def test_a_later_recall_of_the_task_sees_only_its_own_modules_as_done():
    from agentroute.memory.features import FEATURE_NAMES, observation_features

    policy = Watching()

    def agent(state, ctx):
        ctx.memory.recall(state["question"], "high")
        ctx.memory.recall(state["question"])  # a second, independent recall in the same step
        return {}

    _run(agent, policy)
    done = [i for i, n in enumerate(FEATURE_NAMES) if n.startswith("done_")]
    first, later = policy.seen[0], policy.seen[len(MODULE_NAMES)]
    assert len(later.history) >= len(MODULE_NAMES)  # the task's history holds the first recall's decisions...
    assert observation_features(later)[done].tolist() == observation_features(first)[done].tolist()  # ...not this one
    last = policy.seen[-1]
    got = observation_features(last)[done].reshape(len(MODULE_NAMES), 3)
    assert got[:3, 0].tolist() == [1.0, 1.0, 1.0] and got[:3, 2].sum() == 0  # its own three low modules, not high


def test_acascade_awaits_the_answers_of_an_async_agent():
    import asyncio

    tiers = [ar.ModelTier("small", model="openai/gpt-4o-mini"), ar.ModelTier("large", model="openai/gpt-4o")]
    g = ar.AgentGraph("alook")
    prompts: list[str] = []

    @g.agent(tiers=tiers, memory=MEM)
    async def answer(state, ctx):
        async def ask(recall):
            prompts.append(recall.text)
            return await ctx.acomplete([{"role": "user", "content": f"{recall.text}\n\n{state['question']}"}],
                                       max_tokens=20)

        recall, reply = await ctx.memory.acascade(state["question"], ask, enough=lambda r: False)
        return {"look": recall.look, "tier": reply.tier, "answer": reply.text}

    g.start("answer")
    app = g.compile(Cheapest(), provider=ar.providers.Simulated(seed=0))
    res = asyncio.run(app.arun({"question": Q}, budget=ar.Budget(usd="0.05")))
    assert res.state["look"] == 2 and res.state["answer"] and len(prompts) == 2
    look2 = [f"answer.memory.look2.{m}" for m in MODULE_NAMES]
    assert [d.point for d in res.decisions] == [f"answer.memory.{m}" for m in MODULE_NAMES] + ["answer.model"] + [
        *look2[:2], "answer.memory.look2.filter.model", *look2[2:], "answer.model"]
    # the high filter's model step is a real call of the task's model path: reserved, charged and recorded
    step = next(d for d in res.decisions if d.point == "answer.memory.look2.filter.model")
    assert step.kind == "model" and step.cost_usd > 0 and Decimal(step.reservation["usd"]) >= step.cost_usd
    assert len(res.calls) == 3 and sum(c.cost_usd for c in res.calls) <= res.spent.usd <= Decimal("0.05")
