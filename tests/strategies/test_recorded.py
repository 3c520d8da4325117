"""The recorded provider replays real answers through LiteLLM, and never invents one."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import agentroute as ar
from agentroute import llm
from agentroute.cli import main
from agentroute.data import RoutingTable
from agentroute.errors import ConfigError, NotRecorded
from agentroute.providers._handler import cause
from tests.strategies.strat_helpers import mc_table


def _call(rec: ar.providers.Recorded, model: str, text: str, max_tokens: int = 256) -> llm.RawReply:
    tier = ar.ModelTier(model, model=model, input_cost_per_token=Decimal("0.000001"),
                        output_cost_per_token=Decimal("0.000001"))
    return llm.complete(llm.call_kwargs(rec.kwargs_for(tier), [{"role": "user", "content": text}], max_tokens, 10))


def test_a_call_returns_the_recorded_answer_usage_cost_and_grade() -> None:
    t = mc_table(6)
    rec = ar.providers.Recorded(t)
    for i in (0, 3):
        for j, opt in enumerate(t.options):
            r = _call(rec, opt, t.texts[i])
            assert r.text == t.responses[i, j]
            assert (r.input_tokens, r.output_tokens) == (40, 2)
            assert rec.cost_of(r) == Decimal(repr(float(t.cost[i, j])))
            assert rec.quality_of(r) == t.quality[i, j]
            assert rec.quality_of(r) is None  # read once


def test_an_answer_cut_by_max_tokens_has_no_grade() -> None:
    t = mc_table(2)
    t.responses[0, 1] = "x" * 400
    t.output_tokens[0, 1] = 100.0
    rec = ar.providers.Recorded(t)
    r = _call(rec, "cheap-b", t.texts[0], max_tokens=10)
    assert r.finish_reason == "length" and r.output_tokens == 10 and len(r.text) == 40
    assert rec.quality_of(r) is None


def test_an_unrecorded_prompt_or_model_is_a_clear_error_never_an_answer() -> None:
    rec = ar.providers.Recorded(mc_table(4))
    with pytest.raises(Exception) as info:
        _call(rec, "cheap-a", "a prompt nobody recorded")
    err = cause(info.value, NotRecorded)
    assert isinstance(err, NotRecorded) and "no recording of the prompt" in str(err)
    assert not llm.is_retryable(info.value)
    with pytest.raises(NotRecorded, match="no recordings of model 'gpt-9'"):
        rec.bind([ar.ModelTier("x", model="gpt-9")])
    with pytest.raises(ConfigError, match="'response' column"):
        ar.providers.Recorded(RoutingTable(["q"], ["t"], [None], ["m"], np.ones((1, 1)), np.ones((1, 1)),
                                           np.ones((1, 1)), np.ones((1, 1))))
    with pytest.raises(ConfigError, match="does not hold"):
        ar.providers.Recorded(mc_table(2), models={"openai/gpt-4o": "nope"})


def test_a_graph_runs_on_recorded_answers(tmp_path: Path) -> None:
    t = mc_table(4)
    rec = ar.providers.Recorded(t, models={"test/strong": "strong"})
    g = ar.AgentGraph("replay")

    def answer(state: dict[str, Any], ctx: Any) -> dict[str, Any]:
        r = ctx.complete([{"role": "system", "content": "Answer."}, {"role": "user", "content": state["q"]}])
        return {"answer": r.text}

    g.add_agent("answer", answer, tiers=[ar.ModelTier("big", model="test/strong",
                                                     input_cost_per_token=Decimal("0.00001"),
                                                     output_cost_per_token=Decimal("0.00001"))])
    g.start("answer")
    app = g.compile(policy=ar.policies.Strongest(), provider=rec)
    res = app.run({"q": t.texts[2]}, budget=ar.Budget(usd="0.01"))
    assert res.completed and res.state["answer"] == t.responses[2, 3]
    with pytest.raises(ar.errors.ProviderError, match="no recording of the prompt"):
        app.run({"q": "never recorded"}, budget=ar.Budget(usd="0.01"))


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_the_response_column_round_trips(tmp_path: Path, suffix: str) -> None:
    t = mc_table(5)
    t.responses[1, 2] = None
    p = tmp_path / f"t{suffix}"
    t.write(p)
    back = RoutingTable.read(p)
    assert back.has_responses
    assert back.response(1, "cheap-c") is None
    assert back.response(0, "cheap-b") == t.responses[0, 1]
    assert back.subset([3]).response(0, "strong") == t.responses[3, 3]
    assert back.select_options(["strong"]).responses.shape == (5, 1)


def test_data_convert_routerbench_keeps_responses(tmp_path: Path) -> None:
    df = pd.DataFrame({
        "sample_id": ["a", "b"], "prompt": ["['What is 1+1?']", "['Pick A or B']"], "eval_name": ["x", "x"],
        "m1": [1, 0], "m1|model_response": ["['2']", "['B']"], "m1|total_cost": [0.001, 0.002],
        "m2": [0, 1], "m2|model_response": ["['3']", "['A']"], "m2|total_cost": [0.01, 0.02],
    })
    src = tmp_path / "rb.csv"
    df.to_csv(src, index=False)
    out = tmp_path / "t.parquet"
    r = CliRunner().invoke(main, ["data", "convert", "--format", "routerbench", str(src), "--out", str(out)])
    assert r.exit_code == 0, r.output
    t = RoutingTable.read(out)
    assert t.response(0, "m1") == "2" and t.response(1, "m2") == "A"
    rec = ar.providers.Recorded(t)
    assert _call(rec, "m2", "Pick A or B").text == "A"
