"""The tenants file: levels, hashed keys, and every mistake named with file and line."""

from __future__ import annotations

import pickle
from decimal import Decimal

import pytest
from serve_helpers import tenants

from agentroute.errors import ConfigError
from agentroute.serve import hash_key, load_tenants, parse_tenants


def test_levels_and_chains() -> None:
    t = tenants()
    assert len(t) == 3
    ci = t.lookup("sk-acme-ci-0001")
    assert ci is not None and (ci.tenant, ci.team, ci.key) == ("acme", "ml", "ci")
    assert [lv.path for lv in ci.levels] == ["key:acme/ml/ci", "team:acme/ml", "tenant:acme"]
    assert [lv.budget.usd for lv in ci.levels] == [Decimal("0.01"), Decimal("0.02"), Decimal("0.05")]
    assert ci.per_task.usd == Decimal("0.01")  # from the tenant
    admin = t.lookup("sk-acme-admin-01")
    assert admin is not None and admin.team is None
    assert [lv.path for lv in admin.levels] == ["key:acme/-/admin", "tenant:acme"]
    assert t.lookup("sk-acme-ci-0002") is None and t.lookup("") is None and t.lookup(None) is None


def test_keys_are_kept_hashed_only() -> None:
    t = tenants()
    blob = pickle.dumps(t)
    for key in ("sk-acme-ci-0001", "sk-acme-admin-01", "sk-globex-main-1"):
        assert key.encode() not in blob
        assert hash_key(key).encode() in blob


def test_key_sha256_and_tightest_per_task(tmp_path) -> None:
    digest = hash_key("sk-from-a-vault-1")
    p = tmp_path / "t.yaml"
    p.write_text(f"""tenants:
  - name: a
    per_task: {{usd: "0.05", steps: 8}}
    teams:
      - name: b
        per_task: {{usd: "0.02", seconds: 30}}
        keys:
          - name: k
            key_sha256: "{digest}"
            per_task: {{usd: "0.03", tokens: 500}}
""")
    entry = load_tenants(p).lookup("sk-from-a-vault-1")
    assert entry is not None
    pt = entry.per_task
    assert (pt.usd, pt.tokens, pt.steps, pt.seconds) == (Decimal("0.02"), 500, 8, 30.0)


BAD = [
    ("tenants:\n  - name: a\n    budgets: {usd: 1}\n", 3, "unknown field 'budgets'"),
    ("tenants:\n  - name: a\n    budget: {usd: -1}\n", 3, "negative"),
    ("tenants:\n  - name: a\n    budget: {usd: abc}\n", 3, "not a number"),
    ("tenants:\n  - name: a\n    budget: {seconds: 5}\n", 3, "unknown field 'seconds'"),
    ("tenants:\n  - name: a\n  - name: a\n", 3, "tenant 'a' is defined twice (first at line 2)"),
    ("tenants:\n  - name: a\n    teams:\n      - name: t\n      - name: t\n", 5,
     "team 't' of tenant 'a' is defined twice"),
    ("tenants:\n  - name: a\n    keys:\n      - {name: k, key: sk-12345678}\n      - {name: k, key: sk-87654321}\n",
     5, "key 'k' of tenant 'a' is defined twice"),
    ("tenants:\n  - name: a\n    keys:\n      - {name: k, key: sk-12345678}\n  - name: b\n    keys:\n"
     "      - {name: j, key: sk-12345678}\n", 7, "the same key as a/k"),
    ("tenants:\n  - name: a\n    keys:\n      - {name: k}\n", 4, "exactly one of `key` or `key_sha256`"),
    ("tenants:\n  - name: a\n    keys:\n      - {name: k, key: 12345678}\n", 4, "must be a string"),
    ("tenants:\n  - name: a\n    keys:\n      - {name: k, key_sha256: abc}\n", 4, "64 lowercase hex"),
    ("tenants:\n  - name: a b\n", 2, "name 'a b' is not valid"),
    ("tenants:\n  - name: a\n    name: b\n", 3, "given twice"),
    ("tenant:\n  - name: a\n", 1, "unknown field 'tenant'"),
    ("tenants:\n  - name: [a\n", 3, "not valid YAML"),
    ("", 1, "empty"),
]


@pytest.mark.parametrize(("text", "line", "words"), BAD)
def test_mistakes_name_file_and_line(text: str, line: int, words: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_tenants(text, source="tenants.yaml")
    assert f"tenants.yaml:{line}:" in str(e.value)
    assert words in str(e.value)


def test_unreadable_file(tmp_path) -> None:
    with pytest.raises(ConfigError, match="cannot read the tenants file"):
        load_tenants(tmp_path / "missing.yaml")

