import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import agentroute as ar
from agentroute.cli import main

REPO = Path(__file__).resolve().parents[2]


def test_public_api_is_pinned():
    assert sorted(ar.__all__) == sorted([
        "END", "AgentError", "AgentGraph", "AgentRouteError", "App", "Budget", "BudgetExhausted", "BudgetStatus",
        "CallRecord", "Candidate", "Choice", "ConfigError", "DataError", "Decision", "DecisionRecord", "Feedback",
        "Ledger", "Masked", "ModelTier", "Observation", "PolicyError", "ProviderError", "Reply", "RouterPolicy",
        "RunError", "RunHooks", "RunResult", "SharedBudget", "Spend", "StepContext", "TaskInfo", "__version__",
        "policies", "providers", "configure_tracing", "Tracing", "OTelHooks", "RoutingTable", "load_builtin",
        "HashingFeaturizer", "RedisLedger", "SqlLedger", "Memory", "StreamEvent", "wrap", "complete", "acomplete",
        "Unaffordable", "StoreError", "SchemaMismatch", "LedgerError", "BudgetViolation", "Violation"])
    for name in ar.__all__:
        assert getattr(ar, name) is not None
    for name in ar.policies.__all__:  # the lazy ones resolve too
        assert getattr(ar.policies, name) is not None


def test_help_is_fast_and_imports_no_heavy_library():
    code = ("import sys, agentroute.cli as c; "
            "print([m for m in ('litellm', 'torch', 'langgraph', 'stable_baselines3', 'pandas') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    res = subprocess.run([str(Path(sys.executable).parent / "agentroute"), "--help"], capture_output=True, text=True)
    assert res.returncode == 0 and "demo" in res.stdout


def test_demo_runs_every_policy_with_no_violation(tmp_path):
    db = tmp_path / "demo.db"
    out = tmp_path / "demo.json"
    res = CliRunner().invoke(main, ["demo", "--tasks", "12", "--quiet", "--db", str(db), "--json", str(out)])
    assert res.exit_code == 0, res.output
    summary = json.loads(out.read_text())["policies"]
    # listed under the names their traces carry ("support" is the rule set policies/support.yaml)
    assert set(summary) == {"support", "cascade", "cheapest", "strongest", "fixed:large", "random"}
    for name, row in summary.items():
        assert name in res.output
        assert row["violations"] == 0 and row["errors"] == 0 and row["max_usd"] <= row["budget_usd"]
    assert summary["strongest"]["mean_quality"] > summary["cheapest"]["mean_quality"]
    assert summary["cheapest"]["mean_usd"] < summary["strongest"]["mean_usd"]
    assert db.exists() and str(db) in res.output
    assert res.output.rstrip().splitlines()[-1].strip() == f"agentroute traces list --db {db}"


def test_demo_rejects_unknown_policy():
    res = CliRunner().invoke(main, ["demo", "--policy", "nope", "--quiet"])
    assert res.exit_code == 2 and "unknown policy" in res.output


@pytest.mark.slow
def test_example_script_runs():
    out = subprocess.run([sys.executable, "examples/support.py"], cwd=REPO, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "model small" in out.stdout and "completed" in out.stdout
    json.dumps(out.stdout)
