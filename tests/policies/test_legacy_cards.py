"""Cards written by the previous release (``legacy/``, made with its own code) still load, and decide as they did.

Their λ was per cost unit (routers: the table's priciest option's mean cost; memory: 1,000 context tokens of the
answering model); loaded, it is per USD, so the same decisions come at λ / unit. ``agentroute policy upgrade``
rewrites them in the current format, with the same decisions.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from learn_helpers import observation
from pol_helpers import MEM

from agentroute.cli import main
from agentroute.errors import DataError
from agentroute.memory.routing import route
from agentroute.policies import load_learned, load_policy
from agentroute.policies._card import FORMAT

LEGACY = Path(__file__).resolve().parent / "legacy"
REC = json.loads((LEGACY / "decisions.json").read_text())
SCALE = REC["scale"]
TEXTS = [tuple(t) for t in REC["texts"]]


@pytest.mark.parametrize("name", ["knn", "linucb"])
def test_table_routers_of_the_earlier_format_decide_as_they_did(name: str) -> None:
    p = load_policy(LEGACY / f"{name}.json")
    card = json.loads((LEGACY / f"{name}.json").read_text())
    assert card["format"] == "agentroute.router/1"
    assert p.cost_weight == pytest.approx(card["cost_weight"] / card["cost_scale"])  # converted to per USD
    for lam, want in REC["table"][name].items():
        if lam == "default":
            got = [p.decide(observation(x, c)).chosen for x, c in TEXTS]
        else:
            got = [p.decide(observation(x, c, cost_weight=float(lam) / SCALE)).chosen for x, c in TEXTS]
        assert got == want, lam


@pytest.mark.parametrize("given", ["learned.npz", "learned.json", "learned"])
def test_a_learned_policy_of_the_earlier_format_decides_as_it_did(given: str) -> None:
    p = load_learned(LEGACY / given)
    for lam, want in REC["learned"].items():
        got = [p.with_cost_weight(float(lam) / SCALE).decide(observation(x, c)).chosen for x, c in TEXTS]
        assert got == want, lam


@pytest.mark.parametrize("name", ["mem-rule", "mem-ridge", "mem-knn", "mem-fq", "mem-mlp"])
def test_memory_policies_of_the_earlier_format_decide_as_they_did(name: str) -> None:
    p = load_policy(LEGACY / f"{name}.json")
    got = [route(MEM, q, p)[0].tiers for q in REC["questions"]]
    assert got == REC["memory"][name]
    old = json.loads((LEGACY / f"{name}.json").read_text())
    if "cost_weight" in old and hasattr(p, "cost_weight"):
        assert p.cost_weight == pytest.approx(old["cost_weight"] / 0.0025)  # per 1,000 gpt-4o tokens -> per USD
    assert getattr(p, "provenance", {}).get("retrieval") == "hashing" or name == "mem-mlp"


@pytest.mark.parametrize("name", ["knn", "mem-mlp", "mem-fq", "learned"])
def test_policy_upgrade_rewrites_the_card_with_the_same_decisions(name: str, tmp_path: Path) -> None:
    for f in LEGACY.glob(f"{name}.*"):
        shutil.copy(f, tmp_path / f.name)
    before = load_policy(tmp_path / f"{name}.json")
    r = CliRunner().invoke(main, ["policy", "upgrade", str(tmp_path / f"{name}.json"), "-q"])
    assert r.exit_code == 0, r.output
    card = json.loads((tmp_path / f"{name}.json").read_text())
    assert card["format"] == FORMAT and card["family"] in ("predictive", "memory", "learned")
    after = load_policy(tmp_path / f"{name}.json")
    if name.startswith("mem"):
        for q in REC["questions"]:
            assert route(MEM, q, before)[0].tiers == route(MEM, q, after)[0].tiers
    else:
        for x, c in TEXTS:
            for lam in (0.0, 0.3 / SCALE, 3.0 / SCALE):
                o = observation(x, c, cost_weight=lam)
                assert before.decide(o).chosen == after.decide(o).chosen


def test_an_unknown_format_names_the_upgrade_path(tmp_path: Path) -> None:
    (tmp_path / "p.json").write_text(json.dumps({"format": "agentroute.policy/9", "family": "predictive"}))
    with pytest.raises(DataError, match="policy/2"):
        load_policy(tmp_path / "p.json")
