"""The tracing-overhead benchmark runs end to end (tiny sizes) and reports every configuration."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "tracing_overhead.py"


@pytest.mark.slow
def test_the_benchmark_runs_and_reports_every_configuration(tmp_path):
    out = tmp_path / "tracing.json"
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--tasks", "2", "--rounds", "1", "--json", str(out)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = {r["config"]: r for r in json.loads(out.read_text())["rows"]}
    assert set(rows) == {"off", "sql (sqlite)", "otlp http", "otlp grpc", "sql + otlp http", "sql, +200 ms/batch",
                         "otlp, dead endpoint"}  # fmt: skip
    assert rows["off"]["hooks_ms_per_step"] == 0 and rows["sql (sqlite)"]["hooks_ms_per_step"] > 0
    assert rows["sql (sqlite)"]["export_cpu_ms_per_step"] > 0 and rows["sql (sqlite)"]["spans_cpu_ms_per_step"] > 0
    assert rows["sql (sqlite)"]["task_thread_ratio"] >= 1.0
    assert "worst task-thread ratio" in proc.stdout
