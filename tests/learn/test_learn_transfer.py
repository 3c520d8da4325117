"""Transfer to new categories: the category prior backs off to the text (similar categories) when a category is new.

Synthetic: six categories in two families that share their words and their outcomes (arithmetic: the small model is
right; proofs: only the large one is). One proof category is held out whole. Falling back to the overall mean routes
its queries like everyone else's; backing off by category similarity routes them like the other proof categories.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentroute.data import RoutingTable
from agentroute.data.split import split_by_category
from agentroute.features import HashingFeaturizer
from agentroute.policies import load_policy, save_policy
from agentroute.policies.prior import PriorRouter

OPTIONS = ["small", "large"]
FAMILY = {"arith": {"small": 0.9, "large": 0.95}, "proof": {"small": 0.05, "large": 0.85}}
WORDS = {"arith": ["add", "sum", "plus", "minus", "number", "digits", "total", "carry"],
         "proof": ["prove", "theorem", "lemma", "integral", "converges", "bound", "induction", "axiom"]}
CATS = {f"{fam}-{k}": fam for fam in FAMILY for k in "abcd"}


def family_table(n_per: int = 40, seed: int = 0, cats: dict[str, str] = CATS) -> RoutingTable:
    rng = np.random.default_rng(seed)
    ids, texts, cs, q, c = [], [], [], [], []
    for k, (cat, fam) in enumerate(cats.items()):
        own = f"topic{k}"  # each category has a word of its own as well
        for i in range(n_per):
            words = [*rng.choice(WORDS[fam], size=int(rng.integers(4, 9))), own]
            ids.append(f"{cat}-{i}")
            texts.append(" ".join(words))
            cs.append(cat)
            q.append([float(rng.random() < FAMILY[fam][o]) for o in OPTIONS])
            c.append([1e-5, 3e-4])
    n = len(ids)
    return RoutingTable(ids, texts, cs, list(OPTIONS), np.asarray(q), np.asarray(c), np.full((n, 2), 50.0),
                        np.full((n, 2), np.nan), {"source": "synthetic-families"})


def _fit(table: RoutingTable, **kw: object) -> PriorRouter:
    r = PriorRouter(seed=0, **kw)  # type: ignore[arg-type]
    r.featurizer = HashingFeaturizer(512, seed=0)
    return r.fit(table)


def test_a_new_category_backs_off_to_the_categories_its_text_resembles() -> None:
    table = family_table()
    held = np.asarray([c == "proof-d" for c in table.categories])
    train, test = table.subset(np.flatnonzero(~held)), table.subset(np.flatnonzero(held))
    on, off = _fit(train), _fit(train, backoff=False)
    assert on.beta > 0 and off.beta == 0
    q_on, _ = on.predict_outcomes(test.texts, test.categories)
    q_off, _ = off.predict_outcomes(test.texts, test.categories)
    small = OPTIONS.index("small")
    # the proof family's small model is right 5% of the time, the overall mean about 45%: back-off sees the proofs
    assert q_on[:, small].mean() < 0.25 < q_off[:, small].mean()
    lam = 1.0 / on.cost_scale  # a λ at which the large model is worth its price only where small fails
    assert (on.choose(q_on, on.cost_model.predict(test.texts), lam) == OPTIONS.index("large")).mean() > 0.9  # type: ignore[union-attr]


def test_a_saved_router_keeps_its_backoff_and_an_old_card_routes_as_before(tmp_path) -> None:
    table = family_table(n_per=25)
    train, test = split_by_category(table, 0.25, seed=1)
    r = _fit(train)
    loaded = load_policy(save_policy(r, tmp_path / "prior.json"))
    assert loaded.beta == r.beta and loaded.backoff
    np.testing.assert_allclose(loaded.predict_outcomes(test.texts, test.categories)[0],
                               r.predict_outcomes(test.texts, test.categories)[0], atol=1e-5)


@settings(max_examples=8, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from([1.0, 3.0, 10.0]))
def test_backoff_moves_a_known_category_by_at_most_its_shrinkage_share(seed: int, shrink: float) -> None:
    """Known category c: the prediction moves from the overall-mean target by ≤ s/(n_c+s); β = 0 changes nothing."""
    table = family_table(n_per=12, seed=seed)
    on, off = _fit(table, shrink=shrink, alpha=float("inf")), _fit(table, shrink=shrink, alpha=float("inf"),
                                                                    backoff=False)
    q_on, _ = on.predict_outcomes(table.texts, table.categories)
    q_off, _ = off.predict_outcomes(table.texts, table.categories)
    share = shrink / (12 + shrink)
    assert np.abs(q_on - q_off).max() <= share + 1e-9
    on.beta = 0.0
    np.testing.assert_allclose(on.predict_outcomes(table.texts, table.categories)[0], q_off)


def test_fewer_than_three_categories_keep_the_overall_mean() -> None:
    table = family_table(n_per=20, cats={"arith-a": "arith", "proof-a": "proof"})
    assert _fit(table).beta == 0.0


@pytest.mark.parametrize("by", ["query", "category"])
def test_split_table_records_how_it_split(by: str) -> None:
    from agentroute.data.split import split_table

    train, test = split_table(family_table(n_per=10), 0.25, 0, by_category=by == "category")
    assert test.meta["split"]["by"] == by
    if by == "category":
        assert not set(test.categories) & set(train.categories)


def test_eval_split_both_fits_on_each_train_part_and_reports_the_splits_side_by_side(tmp_path) -> None:
    import json

    from click.testing import CliRunner

    from agentroute.cli import main

    family_table(n_per=15).write(tmp_path / "all.parquet")
    res = CliRunner().invoke(main, ["eval", "--table", str(tmp_path / "all.parquet"), "--split", "both", "--fit",
                                    "prior", "--fit", "cheapest", "--test-size", "0.25", "--out",
                                    str(tmp_path / "ev")], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "random split: 88 train / 32 test queries (queries held out in every category)" in res.output
    assert "by-category split:" in res.output and "categories held out whole" in res.output
    summary = json.loads((tmp_path / "ev" / "splits.json").read_text())
    assert set(summary["splits"]) == {"random", "by-category"}
    held = summary["splits"]["by-category"]["held_out_categories"]
    assert held and set(held) <= set(CATS)
    for split in ("random", "by-category"):
        assert set(summary["splits"][split]["policies"]) == {"prior", "cheapest"}
        assert (tmp_path / "ev" / split / "metrics.json").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--split", "random", "--policy", "{p}"], "give --fit NAME, not --policy"),
    (["--fit", "prior"], "--fit goes with --split"),
    (["--split", "random", "--test-size", "1.5"], "must be in (0, 1)"),
    (["--split", "by-category", "--fit", "ppo"], "'ppo' is not one of"),
])
def test_eval_split_misuse_is_a_one_line_usage_error(tmp_path, args: list[str], message: str) -> None:
    from click.testing import CliRunner

    from agentroute.cli import main

    family_table(n_per=5).write(tmp_path / "all.parquet")
    args = [a.replace("{p}", str(tmp_path / "all.parquet")) for a in args]
    res = CliRunner().invoke(main, ["eval", "--table", str(tmp_path / "all.parquet"), "--out", str(tmp_path / "o"),
                                    *args])
    assert res.exit_code == 2 and message in res.output and "Traceback" not in res.output
