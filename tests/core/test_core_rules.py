from decimal import Decimal

import pytest
from core_helpers import PRICED, two_agent_graph

import agentroute as ar
from agentroute.budget import Budget, BudgetStatus, Spend
from agentroute.routing import Candidate, Observation, TaskInfo
from agentroute.testing import Say, Scripted


def obs(kind="model", text="hello", node="triage", left_usd="1", limit_usd="1", ids=("small", "large"), category=None):
    cands = tuple(Candidate(i, kind, rank=r) for r, i in enumerate(ids))
    status = BudgetStatus(limits=Budget(usd=limit_usd), spent=Spend(), remaining=Budget(usd=left_usd))
    return Observation(task=TaskInfo("t", text, category), kind=kind, point=f"{node}.{kind}", node=node, step=0,
                       history=(), budget=status, candidates=cands)


def test_first_match_wins_and_reasons_name_the_rule():
    p = ar.policies.RulePolicy([
        {"name": "kw", "when": {"keywords": ["refund"]}, "choose": "large"},
        {"name": "long", "when": {"min_length": 5}, "choose": "small"},
    ], default={"model": "small"})
    d = p.decide(obs(text="a refund please"))
    assert d.chosen == "large" and "rule 'kw'" in d.reason and "refund" in d.reason
    assert d.probabilities == {"small": 0.0, "large": 1.0}
    assert p.decide(obs(text="hello there")).chosen == "small"
    assert "default" in p.decide(obs(text="hi")).reason


def test_conditions_budget_category_regex_and_specials():
    p = ar.policies.RulePolicy([
        {"name": "poor", "when": {"budget_left_below": 0.2}, "choose": "cheapest"},
        {"name": "legal", "when": {"category": ["legal"]}, "choose": "strongest"},
        {"name": "why", "when": {"regex": r"\bwhy\b"}, "choose": "large"},
    ], default={"model": "small"})
    assert p.decide(obs(left_usd="0.1", category="legal")).chosen == "small"
    assert p.decide(obs(category="legal")).chosen == "large"
    assert p.decide(obs(text="why is it so")).chosen == "large"
    assert p.decide(obs(text="what is it")).chosen == "small"


def test_an_unaffordable_rule_choice_is_skipped_with_a_note():
    p = ar.policies.RulePolicy([{"name": "big", "when": {}, "choose": "large"}], default={"model": "small"})
    d = p.decide(obs(ids=("small",)))
    assert d.chosen == "small" and "default" in d.reason


def test_bad_rule_file_reports_line_and_field(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("name: x\nrules:\n  - name: ok\n    choose: small\n  - name: broken\n"
                 "    when: {min_length: lots}\n    choose: large\n")
    with pytest.raises(ar.ConfigError) as e:
        ar.policies.RulePolicy.from_file(f)
    msg = str(e.value)
    assert "line 5" in msg and "rule #2" in msg and "when.min_length" in msg
    f.write_text("rules:\n  - when: {colour: red}\n    choose: small\n")
    with pytest.raises(ar.ConfigError, match="colour"):
        ar.policies.RulePolicy.from_file(f)
    f.write_text("rules: [\n")
    with pytest.raises(ar.ConfigError, match="not valid YAML"):
        ar.policies.RulePolicy.from_file(f)
    with pytest.raises(ar.ConfigError, match="does not exist"):
        ar.policies.RulePolicy.from_file(tmp_path / "missing.yaml")
    with pytest.raises(ar.ConfigError, match="regular expression"):
        ar.policies.RulePolicy([{"when": {"regex": "("}, "choose": "small"}])


def test_unknown_choice_in_file_is_reported_at_compile_with_its_line(tmp_path):
    f = tmp_path / "r.yaml"
    f.write_text("rules:\n  - name: a\n    when: {kind: model}\n    choose: medium\n")
    with pytest.raises(ar.ConfigError, match=r"line 2.*'medium'"):
        two_agent_graph().compile(policy=ar.policies.RulePolicy.from_file(f), provider=ar.providers.Simulated())


def test_cascade_escalates_until_the_scorer_is_satisfied_within_budget():
    script = Scripted({"small": [Say("meh", quality=0.2)], "large": [Say("great", quality=0.9)]})
    g = ar.AgentGraph("c")
    g.add_agent("ask", lambda s, ctx: {"a": ctx.complete([{"role": "user", "content": "q"}]).text}, tiers=PRICED)
    g.start("ask")
    app = g.compile(policy=ar.policies.CascadePolicy(threshold=0.5), provider=script)
    res = app.run({}, budget=ar.Budget(usd="0.01"))
    assert res.state["a"] == "great" and [d.chosen for d in res.decisions] == ["small", "large"]
    assert res.decisions[1].masked[0].reason.startswith("tried")
    # with no money for the large tier, the small answer stands
    poor = app.run({}, budget=ar.Budget(usd="0.0001"))
    assert poor.state["a"] == "meh" and [d.chosen for d in poor.decisions] == ["small"]
    assert poor.spent.usd <= Decimal("0.0001")


def test_cascade_accepts_good_cheap_answers():
    script = Scripted({"*": [Say("fine", quality=0.8)]})
    g = ar.AgentGraph("c")
    g.add_agent("ask", lambda s, ctx: {"a": ctx.complete([{"role": "user", "content": "q"}]).text}, tiers=PRICED)
    g.start("ask")
    res = g.compile(policy=ar.policies.CascadePolicy(), provider=script).run({})
    assert [c.tier for c in res.calls] == ["small"]
    with pytest.raises(ar.ConfigError):
        ar.policies.CascadePolicy(threshold=2)
