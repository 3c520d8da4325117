"""An API key given in a tier's params or extra_headers, echoed back in a provider's 401, is in no record or error."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import agentroute as ar
from agentroute.testing import FakeOpenAIServer, RecordingHooks

REPO = Path(__file__).resolve().parents[2]
KEY = "opaque-key-without-a-known-shape-7f3a91"
HEADER = "team-header-secret-55c1e0"


def test_an_echoed_key_is_redacted_from_calls_results_and_errors():
    with FakeOpenAIServer() as s:
        s.default = "echo"
        hooks = RecordingHooks()
        t = ar.ModelTier("t", model="openai/gpt-4o-mini", api_base=s.url,
                         params={"api_key": KEY, "extra_headers": {"x-team-token": HEADER}},
                         input_cost_per_token="0.000001", output_cost_per_token="0.000004")
        g = ar.AgentGraph("echo")
        g.add_agent("ask", lambda st, ctx: {"a": ctx.complete([{"role": "user", "content": "hi"}]).text}, tiers=[t])
        g.start("ask")
        app = g.compile(policy=ar.policies.Cheapest(), hooks=[hooks], max_retries=0)
        try:
            res = app.run({"question": "hi"}, budget=ar.Budget(usd="0.01"))
        except ar.errors.RunError as e:
            res = e.result
    assert KEY in s.requests[0]["auth"] and s.requests[0]["headers"]["x-team-token"] == HEADER  # it was sent
    assert res.calls and res.calls[0].error_type is not None and "invalid credentials" in res.calls[0].error
    seen = repr(hooks.__dict__) + repr(res.summary()) + str(res.error) + repr(res.calls)
    assert KEY not in seen and HEADER not in seen


def _faults():
    spec = importlib.util.spec_from_file_location("faults", REPO / "benchmarks" / "faults.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["faults"] = mod
    spec.loader.exec_module(mod)
    return mod


def test_the_faults_benchmark_prints_its_table_with_no_silent_row(capsys):
    assert _faults().main(["--only", "overgenerate,usage,under-report,unknown,secrets,rounding"]) == 0
    out = capsys.readouterr().out
    assert "| attack | limit | provider billed | charged | flagged |" in out
    assert "SILENT" not in out and out.splitlines()[-1].startswith("0 silent rows of 7")
