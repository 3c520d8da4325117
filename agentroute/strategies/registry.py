"""Strategies by name, as ``agentroute eval --strategy NAME`` builds them for a recorded table.

Names: ``acar`` (two probes), ``acar-N`` (N probes, N >= 2), ``fanout``, ``llm-router``, ``cache``, and every option
of the table (one model answering every task). Choices a strategy makes once for a table (ACAR's probes, the
fan-out's descriptor scores, the LLM router's stand-in) are fitted on ``train`` when given, else on the evaluated
table itself (in-sample: the report says so).

The defaults for a table: the *strong* tier is the option with the highest mean cost; the *cheap pool* is every
option whose mean cost is under :data:`CHEAP_SHARE` of the strong tier's. ``fanout`` picks :data:`FANOUT_K` agents by
descriptors built from the training table; ``llm-router`` asks a scripted stand-in router model (priced like the
cheapest option per token) over two rounds; ``cache`` is ``acar`` behind a semantic cache (thresholds calibrated
per category on the training table so that no two distinct training questions would share an answer), run on a
stream of the table's queries in which :data:`REPEAT_SHARE` of the items repeat (half word for word, half paraphrased).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from agentroute.errors import ConfigError

if TYPE_CHECKING:
    from agentroute.data.table import RoutingTable

CHEAP_SHARE = 0.15
"""An option is a cheap probe candidate when its mean cost is under this share of the strong tier's."""


def strong_and_pool(table: RoutingTable) -> tuple[str, list[str]]:
    """The strong tier (highest mean cost) and the cheap pool of ``table`` (see the module docstring)."""
    c = np.nanmean(table.cost, axis=0)
    j = int(np.argmax(c))
    pool = [o for k, o in enumerate(table.options) if c[k] < CHEAP_SHARE * c[j]]
    return table.options[j], pool


def _acar(n: int, name: str) -> Callable[[RoutingTable], Any]:
    def build(train: RoutingTable) -> Any:
        from agentroute.strategies.acar import select_probes

        strong, pool = strong_and_pool(train)
        if len(pool) < n:
            raise ConfigError(f"{name}: the table has {len(pool)} cheap options, {n} probes are needed", name=name)
        return select_probes(train, pool, [strong], n=n, name=name)

    return build


FANOUT_K = 3
FANOUT_COST_WEIGHT = 100.0
"""The fan-out's defaults: three agents, descriptor score given up per USD of worst case."""
ROUTER_COST_WEIGHT = 30.0
"""λ per USD the LLM router's stand-in (and its fallback rule) weighs prices with."""
CACHE_THRESHOLD = 0.9
REPEAT_SHARE = 0.2


def _fanout(train: RoutingTable) -> Any:
    from agentroute.strategies.fanout import FanOut, descriptors_from_table

    return FanOut(descriptors_from_table(train), k=FANOUT_K, cost_weight=FANOUT_COST_WEIGHT).fit(train.texts)


def _llm_router(train: RoutingTable) -> Any:
    from decimal import Decimal

    from agentroute.llm import ModelTier
    from agentroute.strategies.fanout import descriptors_from_table
    from agentroute.strategies.llm_router import LLMPolicy, stand_in
    from agentroute.testing import Scripted

    descs = [d.__class__(d.tier, description=f"expected accuracy {d.prior:.2f}", prior=d.prior)
             for d in descriptors_from_table(train, examples=0)]
    c = np.nanmean(train.cost, axis=0)
    cheapest = int(np.argmin(c))
    tok = float(np.nanmean(train.input_tokens[:, cheapest] + np.nan_to_num(train.output_tokens[:, cheapest])))
    price = Decimal(repr(float(c[cheapest]) / max(tok, 1.0)))
    router = ModelTier("router", model="agentroute/router-stand-in", input_cost_per_token=price,
                       output_cost_per_token=price, max_tokens=32)
    return LLMPolicy("router", descs, rounds=2, cost_weight=ROUTER_COST_WEIGHT, own_tiers=[router],
                     own_provider=Scripted(stand_in(ROUTER_COST_WEIGHT)))


def _cache(train: RoutingTable) -> Any:
    from agentroute.strategies.cache import Cached, SemanticCache

    inner = _acar(2, "acar")(train)
    cache = SemanticCache(threshold=CACHE_THRESHOLD).fit(train.texts)
    cache.calibrate(train.texts, train.categories)
    return Cached(inner, cache,
                  stream={"repeat_share": REPEAT_SHARE, "paraphrase_share": 0.5, "seed": 0})


BUILDERS: dict[str, Callable[[RoutingTable], Any]] = {
    "acar": _acar(2, "acar"),
    "fanout": _fanout,
    "llm-router": _llm_router,
    "cache": _cache,
}
NEEDS_RESPONSES = frozenset(BUILDERS)


def names(table: RoutingTable) -> list[str]:
    """Every strategy name ``table`` can be evaluated with (``acar-N`` stands for any N)."""
    return [*BUILDERS, *table.options]


def _builder(name: str) -> Callable[[RoutingTable], Any] | None:
    if name in BUILDERS:
        return BUILDERS[name]
    if name.startswith("acar-") and name[5:].lstrip("-").isdigit():
        n = int(name[5:])
        if n < 2:
            raise ConfigError(f"{name}: ACAR needs at least 2 probes (N >= 2), got {n}", name=name,
                              hint="σ = (distinct answers - 1) / (N - 1) is only defined for N >= 2")
        return _acar(n, name)
    return None


def build(names_: Sequence[str], table: RoutingTable, train: RoutingTable | None = None) -> list[Any]:
    """The strategies ``names_`` for ``table`` (fitted on ``train``, else on ``table``); errors name the unknown."""
    from agentroute.strategies.evaluate import Single

    known = names(table)
    builders = {n: _builder(n) for n in names_}
    for n in names_:
        if builders[n] is None and n not in table.options:
            raise ConfigError(f"unknown strategy {n!r}", name=n, hint=f"use one of {', '.join(known)} (or acar-N)")
    needing = [n for n in names_ if builders[n] is not None or n in NEEDS_RESPONSES]
    if needing and not table.has_responses:
        raise ConfigError(f"strategy {needing[0]!r} needs recorded responses, and the table has no 'response' column",
                          name="response", hint="convert RouterBench with `agentroute data convert --format "
                                                "routerbench`, which keeps each model's answer")
    fit_on = train if train is not None else table
    if needing and not fit_on.has_responses:
        raise ConfigError("the --train table has no 'response' column, which the strategies fit on", name="response")
    if train is not None and list(train.options) != list(table.options):
        raise ConfigError("the --train table has other options than the evaluated table", name="train")
    out: list[Any] = []
    for n in dict.fromkeys(names_):
        b = builders[n]
        out.append(b(fit_on) if b is not None else Single(n))
    return out


def describe(strategy: Any) -> dict[str, Any]:
    """A strategy's configuration as JSON-safe values (for ``metrics.json``)."""
    keys = ("probes", "ladder", "thresholds", "trust", "k", "refiner", "router", "threshold", "ttl", "tier")
    out: dict[str, Any] = {}
    for key in keys:
        v = getattr(strategy, key, None)
        if v is not None and not callable(v):
            out[key] = list(v) if isinstance(v, tuple | list) else v
    return out


__all__ = ["BUILDERS", "CHEAP_SHARE", "NEEDS_RESPONSES", "build", "describe", "names", "strong_and_pool"]
