"""The ledger chain key → team → tenant: every level bounds every task, and policies see the tightest level."""

from __future__ import annotations

from decimal import Decimal

from serve_helpers import served, tenants

from agentroute.budget import Budget
from agentroute.serve import Levels

CHAIN = """\
tenants:
  - name: t
    budget: {usd: "0.05"}
    teams:
      - name: team
        budget: {usd: "0.004"}
        keys:
          - {name: k, key: "sk-chain-key-01", budget: {usd: "0.01"}}
"""


def test_a_key_ledger_has_its_team_and_tenant_as_parents() -> None:
    levels = Levels(tenants(CHAIN))
    key = levels.ledgers["key:t/team/k"]
    assert [lv.name for lv in key.chain] == ["key:t/team/k", "team:t/team", "tenant:t"]
    assert levels.kind == "memory"


async def test_the_tightest_level_stops_tasks_and_is_never_passed() -> None:
    router = served()["tiers"].app
    t = tenants(CHAIN)
    levels = Levels(t)
    entry = t.lookup("sk-chain-key-01")
    assert entry is not None
    reasons = []
    for _ in range(8):
        r = await router.arun({"messages": [{"role": "user", "content": "hello"}], "input": "hello"},
                              budget=levels.budget_for(entry, Budget()))
        reasons.append(r.reason)
    team, key, tenant = (levels.ledgers[p].spent.usd for p in ("team:t/team", "key:t/team/k", "tenant:t"))
    assert team is not None and key is not None and tenant is not None
    assert Decimal(0) < team <= Decimal("0.004")  # the team level is the binding one, and it holds
    assert key == team == tenant  # one key: every level saw every commit
    assert any(r.startswith("budget") for r in reasons)
    assert levels.overspent() == []


async def test_policies_see_the_remaining_budget_of_every_level() -> None:
    # The tenant has $0.00015 left: not enough for a minimal gpt-4o answer, enough for gpt-4o-mini. The key and the
    # per-task limit would afford either, so only the tenant level can have masked the large tier.
    t = tenants(CHAIN.replace('budget: {usd: "0.05"}', 'budget: {usd: "0.00015"}'))
    levels = Levels(t)
    entry = t.lookup("sk-chain-key-01")
    assert entry is not None
    router = served()["tiers"].app  # Strongest: picks large whenever large is affordable
    r = await router.arun({"messages": [{"role": "user", "content": "hi"}], "input": "hi"},
                          budget=levels.budget_for(entry, Budget(usd="0.01")))
    model = next(d for d in r.decisions if d.kind == "model")
    assert model.chosen == "small"
    assert [m.id for m in model.masked] == ["large"] and "budget:usd" in model.masked[0].reason
    assert Decimal(model.budget_before["usd"]) <= Decimal("0.00015")
