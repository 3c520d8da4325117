"""On the real tables (skipped without the shared data folder): a fitted router beats the zero router."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentroute.data import load_builtin
from agentroute.evaluation import evaluate
from agentroute.features import HashingFeaturizer
from agentroute.policies import make_router


@pytest.mark.slow
@pytest.mark.parametrize(("name", "policy"), [("routellm", "linear"), ("llmrouter", "knn")])
def test_router_beats_zero_router_on_held_out_queries(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, name: str, policy: str
) -> None:
    monkeypatch.setenv("AGENTROUTE_DATA_DIR", str(data_dir))
    train, test = load_builtin(name).split(0.2, seed=0)
    router = make_router(policy, seed=0, featurizer=HashingFeaturizer(512)).fit(train)
    res = evaluate(test, {policy: router})
    rec = res["policies"][policy]
    assert rec["aiq"] > res["zero_router"]["aiq"] + 0.01
    assert rec["gap_closed"] > 0.1
    if name == "routellm":
        assert rec["apgr"] > 0.55
