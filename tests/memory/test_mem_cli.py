import json
import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from mem_helpers import write_conversations

from agentroute.cli import main

KEYS = {"evidence_recall", "answer_recall", "cost_usd", "cost_tokens"}
REPO = Path(__file__).resolve().parents[2]


def test_eval_writes_metrics_and_frontier(tmp_path):
    convs = write_conversations(tmp_path / "convs")
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["memory", "eval", "--conversations", str(convs), "--policy", "all-high",
                                  "--cost-weight", "0.1", "--out", str(out), "--split", "all", "--quiet"])
    assert r.exit_code == 0, r.output
    m = json.loads((out / "metrics.json").read_text())
    assert set(m["overall"]) >= KEYS and m["overall"]["n"] == 30
    assert set(m["per_category"]) == {"multi-hop", "temporal", "open-domain", "single-hop", "adversarial"}
    assert set(m["per_category"]["temporal"]) >= KEYS
    assert m["tier_mix"]["retrieve"] == {"low": 0.0, "mid": 0.0, "high": 1.0}
    assert m["reference"]["all-high"]["evidence_recall"] == m["overall"]["evidence_recall"]
    assert (out / "frontier.png").stat().st_size > 1000
    assert "evidence recall" in r.output


def test_fit_then_eval_a_saved_policy(tmp_path):
    convs = write_conversations(tmp_path / "convs", ("c1", "c2", "c3", "c4"))
    card = tmp_path / "pol" / "rule.json"
    r = CliRunner().invoke(main, ["memory", "fit", "--conversations", str(convs), "--policy", "rule",
                                  "--cost-weight", "0.3", "--out", str(card), "--quiet"])
    assert r.exit_code == 0, r.output
    saved = json.loads(card.read_text())
    assert saved["family"] == "memory" and saved["kind"] == "rule" and saved["cost_unit"] == "usd"
    r = CliRunner().invoke(main, ["memory", "fit", "--conversations", str(convs), "--policy", "fitted-q",
                                  "--out", str(tmp_path / "pol" / "fq"), "--quiet", "--limit", "4"])
    assert r.exit_code == 0, r.output
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["memory", "eval", "--conversations", str(convs), "--policy",
                                  str(tmp_path / "pol" / "fq.json"), "--out", str(out), "--quiet", "--all-combos"])
    assert r.exit_code == 0, r.output
    m = json.loads((out / "metrics.json").read_text())
    assert m["conversations"] == ["c4"]  # the held-out quarter
    assert len(m["fixed_combinations"]) == 81
    assert abs(sum(m["tier_mix"]["link"].values()) - 1.0) < 1e-9


def test_cli_errors_exit_2_with_one_line(tmp_path):
    env = {**os.environ, "AGENTROUTE_DATA_DIR": str(tmp_path)}
    exe = Path(sys.executable).with_name("agentroute")
    p = subprocess.run([str(exe), "memory", "eval", "--policy", "best-ever", "--out", str(tmp_path / "o")],
                       capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    assert p.returncode == 2 and "unknown memory policy 'best-ever'" in p.stderr
    p = subprocess.run([str(exe), "memory", "eval", "--out", str(tmp_path / "o")],
                       capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    assert p.returncode == 2 and "does not exist" in p.stderr
    p = subprocess.run([str(exe), "memory", "--help"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and "eval" in p.stdout and "fit" in p.stdout
