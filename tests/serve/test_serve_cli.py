"""``agentroute serve``: one-line errors before any worker starts, and a real server process the openai client uses."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from click.testing import CliRunner
from serve_helpers import HERE, TENANTS_YAML, reserved_port, stop, wait_ready

from agentroute.cli import main

REPO = HERE.parent.parent


def _invoke(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(main, ["serve", *args], catch_exceptions=False)
    return r.exit_code, r.output


def test_help_lists_the_options() -> None:
    code, out = _invoke("--help")
    assert code == 0
    for opt in ("--host", "--port", "--workers", "--tenants", "--store", "--ledger", "--policy"):
        assert opt in out


def test_mistakes_are_one_line_and_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(HERE)
    bad = tmp_path / "tenants.yaml"
    bad.write_text("tenants:\n  - name: a\n    budget: {usd: nope}\n")
    code, out = _invoke("serve_helpers:SERVED", "--tenants", str(bad), "--store", "none")
    assert code == 2 and f"{bad}:3:" in out and "not a number" in out and "Traceback" not in out
    code, out = _invoke("serve_helpers:SERVED", "--workers", "2")
    assert code == 2 and "needs a shared ledger" in out
    code, out = _invoke("serve_helpers:NOPE", "--store", "none")
    assert code == 2 and "has no attribute 'NOPE'" in out
    code, out = _invoke("no_such_module_here:app", "--store", "none")
    assert code == 2 and "no module 'no_such_module_here'" in out
    code, out = _invoke("serve_helpers:support_graph", "--store", "none")
    assert code == 2 and "cannot serve a function" in out


@contextlib.contextmanager
def _serving(tmp_path: Path, *extra: str) -> Iterator[str]:
    """``agentroute serve`` in a process on a port reserved for this test; yields its URL, stops it at the end."""
    tenants = tmp_path / "tenants.yaml"
    tenants.write_text(TENANTS_YAML)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OTEL_TRACES_EXPORTER": "none"}
    with reserved_port() as port:
        proc = subprocess.Popen(
            [sys.executable, "-c", "from agentroute.cli import run; run()", "serve", "serve_helpers:SERVED",
             "--port", str(port), "--tenants", str(tenants), "--store", f"sqlite:///{tmp_path / 'traces.db'}",
             "--log-level", "warning", *extra],
            cwd=HERE, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_ready(proc, url, 240)  # two workers import everything each: minutes on a loaded 2-core machine
            yield url
        finally:
            stop(proc)


def _ask(url: str, model: str = "agentroute/support") -> str:
    c = openai.OpenAI(base_url=f"{url}/v1", api_key="sk-acme-ci-0001", max_retries=0)
    raw = c.chat.completions.with_raw_response.create(model=model,
                                                      messages=[{"role": "user", "content": "refund please"}])
    assert raw.parse().choices[0].message.content
    return raw.headers["x-agentroute-task-id"]


@pytest.mark.slow
@pytest.mark.timeout(600)  # the readiness wait alone may take 240 s under load (the suite's default is 300 s a test)
def test_a_served_module_from_the_working_directory(tmp_path: Path) -> None:
    with _serving(tmp_path) as url:
        task_id = _ask(url)
        h = {"authorization": "Bearer sk-acme-ci-0001"}
        assert httpx.get(f"{url}/v1/traces/{task_id}", headers=h, timeout=60).status_code == 200


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.timeout(600)
def test_two_workers_share_one_redis_ledger(tmp_path: Path, redis_url: str) -> None:
    import uuid

    prefix = f"test-cli-{uuid.uuid4().hex[:8]}"
    with _serving(tmp_path, "--workers", "2", "--ledger", redis_url, "--ledger-prefix", prefix) as url:
        for _ in range(3):
            _ask(url, "router/tiers")
        usage = httpx.get(f"{url}/v1/usage", headers={"authorization": "Bearer sk-acme-ci-0001"}).json()
        assert [lv["spent"]["steps"] for lv in usage["levels"]] == [3, 3, 3]  # whichever worker took each one
        import redis

        client = redis.Redis.from_url(redis_url)
        keys = client.keys(f"agentroute:ledger:{prefix}/*")
        totals = [k for k in keys if not k.endswith((b":holds", b":leases", b":done"))]
        assert len(totals) == 3  # key, team and tenant of the one key used
        client.delete(*keys)
