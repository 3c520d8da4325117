"""``agentroute pheromones export|import|show`` and ``agentroute replay`` through the real command line."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from _pher_helpers import synthetic_table
from click.testing import CliRunner

from agentroute.cli import main
from agentroute.policies._pheromone_open import open_table
from agentroute.policies._pheromone_store import EdgeUpdate, PheromoneParams

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def colony(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    t = open_table(url, namespace="colony", params=PheromoneParams(rho=0.1))
    t.apply([EdgeUpdate(("math", "model", "", "big"), 1.0, 0.9), EdgeUpdate(("math", "model", "", "small"), 1.0, 0.1),
             EdgeUpdate(("chat", "model", "", "small"), 1.0, 0.8),
             EdgeUpdate(("chat", "model", "route=a", "small"), 1.0, 0.8)])
    return url


def test_export_import_roundtrip(colony: str, tmp_path: Path) -> None:
    r = CliRunner()
    snap = tmp_path / "snap.json"
    res = r.invoke(main, ["pheromones", "export", "--db", colony, "--namespace", "colony", "--out", str(snap)])
    assert res.exit_code == 0, res.output
    data = json.loads(snap.read_text())
    assert data["format"] == "agentroute.pheromones" and len(data["edges"]) == 4
    other = f"sqlite:///{tmp_path / 'q.db'}"
    res = r.invoke(main, ["pheromones", "import", str(snap), "--db", other, "--namespace", "copy"])
    assert res.exit_code == 0, res.output
    copy = open_table(other, namespace="copy")
    assert copy.params.rho == 0.1  # the snapshot's rule came along
    assert {k: round(e.tau, 9) for k, e in copy.edges().items()} == {
        (e["task_type"], e["point"], e["prev"], e["option"]): round(e["tau"], 9) for e in data["edges"]}
    res = r.invoke(main, ["pheromones", "import", str(snap), "--db", other, "--namespace", "copy", "--mode", "merge"])
    assert res.exit_code == 0 and "merged 4 edges" in res.output


def test_show_draws_a_heat_map_per_task_type(colony: str, tmp_path: Path) -> None:
    out = tmp_path / "heat.png"
    res = CliRunner().invoke(main, ["pheromones", "show", "--db", colony, "--namespace", "colony", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "math | model: strongest trail big" in res.output
    one = tmp_path / "chat.png"
    res = CliRunner().invoke(main, ["pheromones", "show", "--db", colony, "--namespace", "colony",
                                    "--task-type", "chat", "--transitions", "--out", str(one)])
    assert res.exit_code == 0 and "math" not in res.output and "route=a → model" in res.output


def test_show_and_export_errors_are_one_line(colony: str, tmp_path: Path) -> None:
    r = CliRunner()
    res = r.invoke(main, ["pheromones", "show", "--db", colony, "--namespace", "colony", "--task-type", "zzz",
                          "--out", str(tmp_path / "x.png")])
    assert res.exit_code == 2 and "nothing to draw" in res.output
    res = r.invoke(main, ["pheromones", "export", "--db", colony, "--namespace", "nope", "--out", str(tmp_path / "y")])
    assert res.exit_code == 2 and "no pheromone namespace 'nope'" in res.output
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    res = r.invoke(main, ["pheromones", "import", str(bad), "--db", colony])
    assert res.exit_code == 2 and "not a pheromone snapshot" in res.output


def test_replay_command_writes_the_results_contract(tmp_path: Path) -> None:
    t = synthetic_table(80)
    table = tmp_path / "t.csv"
    t.write(table)
    out, summ = tmp_path / "r.csv", tmp_path / "s.json"
    res = CliRunner().invoke(main, ["replay", "--table", str(table), "--policy", "pheromone", "--cost-weight", "0.2",
                                    "--order", "shuffle", "--seed", "2", "--drift-at", "40", "--out", str(out),
                                    "--summary", str(summ)])
    assert res.exit_code == 0, res.output
    with out.open() as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["step", "query_id", "option", "quality", "cost_usd"] and len(rows) == 80
    s = json.loads(summ.read_text())
    assert s["policy"] == "pheromone" and s["drift_at"] == 40
    assert "after drift at 40" in res.output


def test_replay_usage_errors(tmp_path: Path) -> None:
    r = CliRunner()
    res = r.invoke(main, ["replay", "--table", str(tmp_path / "missing.csv"), "--policy", "random",
                          "--out", str(tmp_path / "r.csv")])
    assert res.exit_code == 2 and "neither a file nor a built-in table" in res.output
    res = r.invoke(main, ["replay", "--table", "x", "--policy", "random", "--order", "sideways", "--out", "r.csv"])
    assert res.exit_code == 2


@pytest.mark.slow
def test_replay_through_the_installed_entry_point(tmp_path: Path) -> None:
    t = synthetic_table(40)
    table = tmp_path / "t.csv"
    t.write(table)
    exe = Path(sys.executable).with_name("agentroute")
    if not exe.exists():
        pytest.skip(f"{exe} is not installed")
    out = tmp_path / "r.csv"
    env = {**os.environ, "AGENTROUTE_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    p = subprocess.run([str(exe), "replay", "--table", str(table), "--policy", "cheapest", "--out", str(out),
                        "--quiet"], capture_output=True, text=True, env=env, timeout=120, cwd=REPO)
    assert p.returncode == 0, p.stderr
    assert out.read_text().splitlines()[0] == "step,query_id,option,quality,cost_usd"
    p = subprocess.run([str(exe), "replay", "--table", str(table), "--policy", "nonesuch", "--out", str(out)],
                       capture_output=True, text=True, env=env, timeout=120, cwd=REPO)
    assert p.returncode == 2 and p.stderr.startswith("error: unknown replay policy 'nonesuch'")
