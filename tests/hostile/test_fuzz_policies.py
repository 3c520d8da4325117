"""Hostile inputs to the policy parsers: policy cards (and their arrays) and pheromone snapshots.

A saved policy or a snapshot is a file from elsewhere. Whatever it holds, loading it either works or raises a
documented error: :class:`~agentroute.errors.ConfigError` (a :class:`~agentroute.errors.DataError` for files) that
names the file, never a ``KeyError``, ``TypeError``, ``OverflowError`` or the like, and never reads past the size
bounds.
"""

from __future__ import annotations

import contextlib
import json
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "policies"))

from pol_helpers import FAMILIES

from agentroute.errors import ConfigError, DataError
from agentroute.policies import _card, load_policy, save_policy
from agentroute.policies._pheromone_store import PheromoneTable, parse_snapshot

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                       HealthCheck.too_slow])
FAMILY_NAMES = ("rules", "cascade", "deadline", "baseline:fixed", "baseline:random", "predictive:linear",
                "predictive:knn", "predictive:prior", "bandit:thompson", "learned:query", "learned:graph", "pheromone",
                "memory:ridge", "memory:mlp", "memory:fitted-q")

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=10**30, max_value=10**60),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
)
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=12)


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside a JSON document (keys and list indices)."""
    out = [prefix] if prefix else []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:6]):
            out += _paths(v, (*prefix, i))
    return out


def _mutate(doc: Any, path: tuple[Any, ...], value: Any, delete: bool) -> Any:
    parent = doc
    for k in path[:-1]:
        parent = parent[k]
    if delete and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return doc


def _documented(e: BaseException, path: Path) -> None:
    assert isinstance(e, ConfigError), f"{type(e).__name__}: {e}"
    assert path.name in str(e) or path.parent.name in str(e), f"the error does not name the file: {e}"


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[dict[str, Any], dict[str, np.ndarray]]]:
    """A valid card and its arrays for each family fuzzed."""
    root = tmp_path_factory.mktemp("cards")
    out = {}
    for fam in FAMILIES:
        if fam.name in FAMILY_NAMES:
            path = save_policy(fam.build(), root / f"{fam.name.replace(':', '_')}.json")
            card = json.loads(path.read_text())
            arrays = _card.read_arrays(path.with_name(card["arrays"])) if card.get("arrays") else {}
            out[fam.name] = (card, arrays)
    return out


def _write(tmp: Path, card: Any, arrays: dict[str, np.ndarray] | None) -> Path:
    p = tmp / "fuzzed.json"
    if arrays is not None:
        np.savez(tmp / "fuzzed.npz", **arrays)
        if isinstance(card, dict) and card.get("arrays"):
            card["arrays"] = "fuzzed.npz"
    p.write_text(json.dumps(card), encoding="utf-8")
    return p


@FUZZ
@given(data=st.data())
def test_a_mutated_card_loads_or_raises_a_documented_error(saved: dict, tmp_path: Path, data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(FAMILY_NAMES), label="family")
    card, arrays = json.loads(json.dumps(saved[name][0])), dict(saved[name][1])
    paths = _paths(card)
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        path = data.draw(st.sampled_from(paths), label="path")
        value, delete = data.draw(json_values, label="value"), data.draw(st.booleans(), label="del")
        with contextlib.suppress(KeyError, IndexError, TypeError):  # an earlier mutation replaced the parent
            card = _mutate(card, path, value, delete)
    p = _write(tmp_path, card, arrays)
    try:
        policy = load_policy(p)
    except Exception as e:
        _documented(e, p)
    else:
        assert hasattr(policy, "decide")


array_values = st.one_of(
    st.builds(lambda s: np.zeros(s), st.lists(st.integers(0, 5), max_size=3).map(tuple)),
    st.builds(lambda n: np.full(n, np.nan), st.integers(1, 4)),
    st.builds(lambda n: np.full((n, n), np.inf, dtype=np.float32), st.integers(1, 4)),
    st.just(np.asarray(["text"])),
    st.just(np.asarray([{"a": 1}], dtype=object)),  # pickled by savez: must be refused, never unpickled
    st.builds(lambda v: np.asarray(v, dtype=np.int64), st.lists(st.integers(-(2**40), 2**40), max_size=5)),
)


@FUZZ
@given(data=st.data())
def test_mutated_arrays_load_or_raise_a_documented_error(saved: dict, tmp_path: Path, data: st.DataObject) -> None:
    names = [n for n in FAMILY_NAMES if saved[n][1]]
    name = data.draw(st.sampled_from(names), label="family")
    card, arrays = json.loads(json.dumps(saved[name][0])), dict(saved[name][1])
    key = data.draw(st.sampled_from(sorted(arrays)), label="array")
    if data.draw(st.booleans(), label="drop"):
        del arrays[key]
    else:
        arrays[key] = data.draw(array_values, label="value")
    p = _write(tmp_path, card, arrays)
    try:
        load_policy(p)
    except Exception as e:
        _documented(e, p)


@FUZZ
@given(blob=st.binary(max_size=300), as_npz=st.booleans())
def test_garbage_files_are_data_errors(tmp_path: Path, blob: bytes, as_npz: bool) -> None:
    (tmp_path / "g.json").write_text(json.dumps({"format": _card.FORMAT, "family": "predictive", "kind": "linear",
                                                 "arrays": "g.npz"}))
    target = tmp_path / ("g.npz" if as_npz else "g.json")
    target.write_bytes(blob)
    with pytest.raises(DataError) as e:
        load_policy(tmp_path / "g.json")
    _documented(e.value, tmp_path / "g.json")


@FUZZ
@given(doc=json_values)
def test_any_json_document_as_a_card(tmp_path: Path, doc: Any) -> None:
    p = tmp_path / "doc.json"
    p.write_text(json.dumps(doc))
    try:
        load_policy(p)
    except Exception as e:
        _documented(e, p)


def test_inputs_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "big.json"
    p.write_text(json.dumps({"format": _card.FORMAT, "family": "baseline", "kind": "cheapest", "pad": "x" * 5000}))
    monkeypatch.setattr(_card, "MAX_CARD_BYTES", 1000)
    with pytest.raises(DataError, match="limit"):
        load_policy(p)
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    monkeypatch.setattr(_card, "MAX_CARD_BYTES", 10**6)
    with pytest.raises(DataError):
        load_policy(deep)
    bomb = tmp_path / "bomb.npz"  # small on disk, large once inflated
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("w.npy", b"\0" * 3_000_000)
    (tmp_path / "bomb.json").write_text(json.dumps({"format": _card.FORMAT, "family": "predictive", "kind": "knn",
                                                    "arrays": "bomb.npz"}))
    monkeypatch.setattr(_card, "MAX_ARRAY_BYTES", 1_000_000)
    with pytest.raises(DataError, match="limit"):
        load_policy(tmp_path / "bomb.json")
    (tmp_path / "escape.json").write_text(json.dumps({"format": _card.FORMAT, "family": "baseline",
                                                      "kind": "cheapest", "arrays": "../outside.npz"}))
    with pytest.raises(DataError, match="arrays"):
        load_policy(tmp_path / "escape.json")


def test_overrides_a_family_does_not_take_are_refused(saved: dict, tmp_path: Path) -> None:
    p = _write(tmp_path, json.loads(json.dumps(saved["baseline:fixed"][0])), None)
    with pytest.raises(ConfigError, match="cost_weight"):
        load_policy(p, cost_weight=1.0)


# ---------------------------------------------------------------------- pheromone snapshots


def _snapshot() -> dict[str, Any]:
    t = PheromoneTable()
    from agentroute.policies._pheromone_store import EdgeUpdate

    t.apply([EdgeUpdate(("x", "model", "", o), 1.0, s) for o, s in (("a", 0.2), ("b", 0.9))]
            + [EdgeUpdate(("y", "model", "model=a", "b"), 0.5, 0.4)])
    return t.export()


SNAPSHOT = _snapshot()


@FUZZ
@given(data=st.data())
def test_a_mutated_snapshot_parses_or_raises_a_data_error(data: st.DataObject) -> None:
    snap = json.loads(json.dumps(SNAPSHOT))
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        path = data.draw(st.sampled_from(_paths(snap) or [("edges",)]), label="path")
        value, delete = data.draw(json_values, label="value"), data.draw(st.booleans(), label="del")
        with contextlib.suppress(KeyError, IndexError, TypeError):
            snap = _mutate(snap, path, value, delete)
    try:
        rows = parse_snapshot(snap, source="snap.json")
    except Exception as e:
        assert isinstance(e, DataError), f"{type(e).__name__}: {e}"
        assert "snap.json" in str(e)
    else:
        t = PheromoneTable()
        assert t.restore(snap) == len(rows)  # what parses also loads


@FUZZ
@given(data=st.data())
def test_pheromones_import_exits_2_with_one_line_on_a_bad_snapshot(tmp_path: Path, data: st.DataObject) -> None:
    from agentroute.cli import main

    snap = json.loads(json.dumps(SNAPSHOT))
    path = data.draw(st.sampled_from(_paths(snap)), label="path")
    snap = _mutate(snap, path, data.draw(json_values, label="value"), False)
    f = tmp_path / "snap.json"
    f.write_text(json.dumps(snap))
    db = tmp_path / "p.db"
    r = CliRunner().invoke(main, ["pheromones", "import", str(f), "--db", str(db), "--namespace", "fz", "-q"])
    assert r.exit_code in (0, 2), r.output
    if r.exit_code == 2:
        assert "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1, r.output


def test_snapshot_bounds_and_the_overflow_of_earlier_releases() -> None:
    snap = json.loads(json.dumps(SNAPSHOT))
    snap["edges"][0]["updates"] = float("inf")  # int(inf) raised OverflowError before
    with pytest.raises(DataError, match=r"edges\[0\]\.updates"):
        parse_snapshot(snap, source="s.json")
    snap["edges"][0]["updates"] = 10**400
    with pytest.raises(DataError, match="updates"):
        parse_snapshot(snap, source="s.json")
    snap = json.loads(json.dumps(SNAPSHOT))
    snap["params"] = {"rho": 10**400}
    from agentroute.policies._pheromone_store import PheromoneParams

    with pytest.raises(ConfigError, match="rho"):
        PheromoneParams(**snap["params"])
    snap = json.loads(json.dumps(SNAPSHOT))
    snap["edges"][0]["option"] = "x" * 5000
    with pytest.raises(DataError, match="option"):
        parse_snapshot(snap, source="s.json")
