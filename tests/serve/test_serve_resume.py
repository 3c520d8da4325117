"""`agentroute serve` killed with SIGKILL mid-request resumes the task it owned when it starts again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import openai
import pytest
from serve_helpers import TENANTS_YAML, reserved_port, stop, wait_ready

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
KEY = {"authorization": "Bearer sk-acme-ci-0001"}


def _serve(tmp_path: Path, port: int, crash: Path | None) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OTEL_TRACES_EXPORTER": "none",
           "AGENTROUTE_TEST_CHECKPOINTS": str(tmp_path / "checkpoints.db")}
    env.pop("AGENTROUTE_TEST_CRASH", None)
    if crash is not None:
        env["AGENTROUTE_TEST_CRASH"] = str(crash)
    return subprocess.Popen(
        [sys.executable, "-c", "from agentroute.cli import run; run()", "serve", "resume_served:SERVED",
         "--port", str(port), "--tenants", str(tmp_path / "tenants.yaml"), "--owner", "node-1",
         "--store", f"sqlite:///{tmp_path / 'traces.db'}", "--ledger", f"sqlite:///{tmp_path / 'ledgers.db'}",
         "--log-level", "warning"],
        cwd=HERE, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _ready(proc: subprocess.Popen[bytes], url: str) -> None:
    wait_ready(proc, url, 240)


@pytest.fixture()
def port() -> Iterator[int]:
    """A port of this test's own for both server starts (the second on the same port, as a restarted node)."""
    with reserved_port() as p:
        yield p


@pytest.mark.slow
@pytest.mark.timeout(900)  # two server starts with a 240 s readiness wait each (the suite's default is 300 s a test)
def test_a_killed_server_resumes_its_unfinished_task_on_start(tmp_path: Path, port: int) -> None:
    (tmp_path / "tenants.yaml").write_text(TENANTS_YAML)
    url = f"http://127.0.0.1:{port}"
    marker = tmp_path / "in-expert"
    proc = _serve(tmp_path, port, marker)
    try:
        _ready(proc, url)
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="sk-acme-ci-0001", max_retries=0, timeout=300)
        failed: list[BaseException] = []

        def ask() -> None:
            try:
                client.chat.completions.create(model="agentroute/steps",
                                               messages=[{"role": "user", "content": "refund please"}])
            except openai.APIError as e:  # the server dies under the request
                failed.append(e)

        asker = threading.Thread(target=ask, daemon=True)
        asker.start()
        while not marker.exists():
            assert proc.poll() is None, "the server exited before the second step"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        asker.join(timeout=60)
        assert failed, "the request cannot have succeeded: its server was killed mid-task"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    task_id = marker.read_text()

    proc = _serve(tmp_path, port, None)
    try:
        _ready(proc, url)  # resumed before it listens
        trace = httpx.get(f"{url}/v1/traces/{task_id}", headers=KEY, timeout=60).json()
        assert trace["status"] == "completed", trace
        assert [(s["step"], s["agent"]) for s in trace["steps"]] == [(0, "triage"), (1, "expert"), (2, "final")]
        assert [len(s["calls"]) for s in trace["steps"]] == [1, 1, 1]
        cost = sum(Decimal(c["cost_usd"]) for s in trace["steps"] for c in s["calls"])
        assert Decimal(trace["spent_usd"]) == cost  # the triage step's spend was carried over, not lost or doubled
        usage = httpx.get(f"{url}/v1/usage", headers=KEY, timeout=60).json()
        key_level = usage["levels"][0]
        assert key_level["spent"]["steps"] == 3  # the key's shared ledger: each step committed once
        assert Decimal(key_level["spent"]["usd"]) == cost
    finally:
        stop(proc)
    out = proc.stdout.read().decode() if proc.stdout else ""
    assert f"resumed 1 unfinished task(s): {task_id}" in out
