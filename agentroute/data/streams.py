"""Many-option online streams with heavy-tailed costs, for judging online routers (pheromone, bandits).

Two builders, both seeded and both returning a plain :class:`~agentroute.data.RoutingTable`:

- :func:`many_option_stream`: a synthetic stream of ``options`` (24 by default) agent options whose per-task prices
  are log-uniform over ``price_span`` (100×: cents to several dollars), 0/1 outcomes, a skewed task-type mix and
  option strengths that differ by task type; each query's cost is its option's price times heavy-tailed
  (log-normal) noise. Its ``meta["descriptors"]`` holds a noisy public prior of each option (``ability``, a
  leaderboard-like score; ``price``), never the outcomes themselves.
- :func:`heavy_tailed`: a real table (e.g. ``load_builtin("routerbench")``) with its costs mapped onto per-task
  agent prices spanning ``price_span`` (monotone in the original price; the outcomes are untouched), so a real
  stream has the cost tail of agent runs. The mapping is recorded in ``meta["cost_basis"]``.

Nothing here reads outcomes to build descriptors or prices, and nothing touches a file: callers pass tables in.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from agentroute.data.table import RoutingTable
from agentroute.errors import ConfigError

_WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo",
          "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango", "uniform", "victor",
          "whiskey", "xray", "yankee", "zulu"]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = 1.0 / (1.0 + np.exp(-x))
    return out


def many_option_stream(
    n: int = 500,
    *,
    options: int = 24,
    task_types: int = 6,
    price_low: float = 0.03,
    price_span: float = 100.0,
    skew: float = 1.3,
    cost_sigma: float = 0.6,
    difficulty: float = 0.8,
    type_spread: float = 0.5,
    prior_noise: float = 0.05,
    seed: int = 0,
) -> RoutingTable:
    """A synthetic stream of ``n`` queries over ``options`` agent options (see the module docstring).

    Prices are log-uniform over ``[price_low, price_low·price_span]`` USD per task; an option's mean success rate
    rises with its price with diminishing returns (plus an option effect), shifted per task type by
    ``type_spread`` (logit units) and per query by a shared ``difficulty`` (so outcomes are correlated, as real
    ones are). Task type ``t`` has weight ``∝ 1/(t+1)^skew``; query costs are ``price·LogNormal(0, cost_sigma)``
    with mean ``price``. ``meta["descriptors"][option]`` = ``{"ability": mean success + N(0, prior_noise),
    "price": price}``; ``meta["truth"]`` holds the success probability per task type and option (for tests).
    """
    if options < 2 or task_types < 1 or n < 1:
        raise ConfigError(f"many_option_stream: need n >= 1, options >= 2, task_types >= 1 (got {n}, {options}, "
                          f"{task_types})", name="options")
    if not (price_low > 0 and price_span >= 1):
        raise ConfigError("many_option_stream: price_low must be > 0 and price_span >= 1", name="price_span")
    rng = np.random.default_rng(seed)
    prices = np.sort(price_low * np.exp(rng.uniform(0.0, math.log(price_span), options)))
    u = np.log(prices / price_low) / max(math.log(price_span), 1e-12)  # 0 (cheapest) .. 1 (priciest)
    base = np.clip(0.35 + 0.45 * u ** 0.7 + rng.normal(0.0, 0.08, options), 0.05, 0.95)
    logit = np.log(base / (1.0 - base))
    spec = logit[None, :] + rng.normal(0.0, type_spread, (task_types, options))
    mix = 1.0 / (np.arange(task_types) + 1.0) ** skew
    mix /= mix.sum()
    types = rng.choice(task_types, size=n, p=mix)
    z = rng.normal(0.0, 1.0, n)
    p = _sigmoid(spec[types] - difficulty * z[:, None])
    quality = (rng.random((n, options)) < p).astype(float)
    noise = np.exp(rng.normal(-0.5 * cost_sigma**2, cost_sigma, (n, options)))  # mean 1: a heavy right tail
    cost = prices[None, :] * noise
    names = [f"agent-{j:02d}" for j in range(options)]
    vocab = [_WORDS[t % len(_WORDS)] + str(t // len(_WORDS) or "") for t in range(task_types)]
    texts = []
    for i in range(n):
        t = int(types[i])
        filler = " ".join(rng.choice(_WORDS, 4))
        texts.append(f"{vocab[t]} task {vocab[t]} {filler} #{i}")
    cats: list[str | None] = [f"type-{int(t)}" for t in types]
    tokens = np.full((n, options), 100.0)
    truth = _sigmoid(spec)  # per task type, before the per-query difficulty
    descriptors = {
        nm: {"ability": float(np.clip(truth[:, j] @ mix + rng.normal(0.0, prior_noise), 0.0, 1.0)),
             "price": float(prices[j])}
        for j, nm in enumerate(names)
    }
    meta: dict[str, Any] = {
        "source": f"synthetic many-option stream (seed {seed})",
        "cost_basis": f"synthetic: per-task prices log-uniform over {price_low:g}..{price_low * price_span:g} USD, "
                      f"log-normal noise sigma {cost_sigma:g}",
        "descriptors": descriptors,
        "task_mix": [float(x) for x in mix],
        "truth": truth.tolist(),
    }
    return RoutingTable([f"s{seed}-q{i}" for i in range(n)], texts, cats, names, quality, cost, tokens,
                        tokens.copy(), meta=meta)


def heavy_tailed(table: RoutingTable, *, price_low: float = 0.03, price_span: float = 100.0) -> RoutingTable:
    """``table`` with costs mapped onto agent prices spanning ``price_span`` (see the module docstring).

    Each option's mean known cost ``m_j`` is mapped to ``price_low·price_span^((log m_j − log m_min)/(log m_max −
    log m_min))`` (the cheapest option costs ``price_low`` USD per task, the priciest ``price_low·price_span``), and
    every query's cost of that option is scaled by the same factor, so per-query variation is kept. Quality is
    untouched. ``meta["descriptors"]`` gets each option's new ``price``.
    """
    cost = np.array(table.cost, dtype=np.float64)
    known = ~np.isnan(cost)
    counts = known.sum(axis=0)
    if not counts.all():
        raise ConfigError("heavy_tailed: every option needs at least one known cost", name="cost")
    means = np.where(known, cost, 0.0).sum(axis=0) / counts
    if not (means > 0).all():
        raise ConfigError("heavy_tailed: every option needs a positive mean cost", name="cost")
    lo, hi = float(np.log(means.min())), float(np.log(means.max()))
    frac = (np.log(means) - lo) / (hi - lo) if hi > lo else np.zeros_like(means)
    target = price_low * price_span ** frac
    out = table.subset(range(len(table)))
    out.cost = cost * (target / means)[None, :]
    desc = dict(out.meta.get("descriptors") or {})
    for j, nm in enumerate(out.options):
        desc[nm] = {**dict(desc.get(nm) or {}), "price": float(target[j])}
    out.meta = {**out.meta, "descriptors": desc,
                "cost_basis": f"{out.meta.get('cost_basis', 'table costs')}; mapped per option onto "
                              f"{price_low:g}..{price_low * price_span:g} USD per task (log scale, monotone; "
                              f"original span {math.exp(hi - lo):.0f}x)"}
    return out


__all__ = ["heavy_tailed", "many_option_stream"]
