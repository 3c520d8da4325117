"""Prices for tables whose release has no cost: per call, per token, or both, for each option.

A prices file is JSON, one entry per option::

    {
      "gpt-4-1106-preview": {"input_per_million": 10.0, "output_per_million": 30.0},
      "mixtral-8x7b": {"per_call": 0.0002},
      "claude-instant-v1": 0.0004,
      "_assumed_output_tokens": 256
    }

A bare number is USD per call. ``input_price`` / ``output_price`` (USD per million tokens, the keys of
LLMRouter's ``default_llm.json``) are accepted as synonyms, so that file can be passed as it is. Where a
table has no output token counts, ``_assumed_output_tokens`` (default 0) stands in for them, and the table's
``meta["cost_basis"]`` says so. This module never invents a price: an option with no entry is an error.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agentroute.data.table import RoutingTable, check_file_size, short
from agentroute.errors import DataError


@dataclass(frozen=True)
class Price:
    """One option's price: USD per call plus USD per million input and output tokens."""

    per_call: float = 0.0
    input_per_million: float = 0.0
    output_per_million: float = 0.0


@dataclass(frozen=True)
class Prices:
    """Prices per option, and the output tokens assumed where a table has none."""

    options: Mapping[str, Price]
    assumed_output_tokens: float = 0.0
    source: str = "<prices>"
    notes: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], *, source: str = "<prices>") -> Prices:
        """Parse the JSON form described in the module docstring."""
        if not isinstance(raw, Mapping):
            raise DataError(f"{source}: a prices file must hold a JSON object of option -> price", name=source)
        opts: dict[str, Price] = {}
        assumed = 0.0
        for key, val in raw.items():
            if not isinstance(key, str):
                raise DataError(f"{source}: option names must be strings, got {type(key).__name__}", name=source)
            if key == "_assumed_output_tokens":
                assumed = _nonneg(val, source, key)
                continue
            if key.startswith("_"):
                continue
            if isinstance(val, bool):
                raise DataError(f"{source}: price of {key!r} must be a number or an object", name=key)
            if isinstance(val, int | float):
                opts[key] = Price(per_call=_nonneg(val, source, key))
                continue
            if not isinstance(val, Mapping):
                raise DataError(f"{source}: price of {key!r} must be a number or an object", name=key)
            pin = val.get("input_per_million", val.get("input_price", 0.0))
            pout = val.get("output_per_million", val.get("output_price", 0.0))
            opts[key] = Price(
                per_call=_nonneg(val.get("per_call", 0.0), source, f"{key}.per_call"),
                input_per_million=_nonneg(pin, source, f"{key}.input_per_million"),
                output_per_million=_nonneg(pout, source, f"{key}.output_per_million"),
            )
        if not opts:
            raise DataError(f"{source}: no option prices found", name=source)
        return cls(opts, assumed, source)

    def cost(self, option: str, input_tokens: np.ndarray, output_tokens: np.ndarray) -> np.ndarray:
        """USD cost of ``option`` per query from token counts (NaN output tokens: the assumption)."""
        p = self.options[option]
        out = np.where(np.isnan(output_tokens), self.assumed_output_tokens, output_tokens)
        return p.per_call + (input_tokens * p.input_per_million + out * p.output_per_million) / 1e6

    def describe(self) -> str:
        """A one-line statement of how costs were computed, recorded in the table's meta."""
        per_tok = any(p.input_per_million or p.output_per_million for p in self.options.values())
        s = f"cost from prices in {self.source}"
        if per_tok:
            s += "; input tokens as in the table"
            if self.assumed_output_tokens:
                s += f"; {self.assumed_output_tokens:g} output tokens assumed where unknown"
        return s


def _nonneg(val: Any, source: str, key: str) -> float:
    try:
        f = float(val)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an int no float holds
        raise DataError(f"{source}: {key!r} must be a number, got {short(val)}", name=key) from None
    if not np.isfinite(f) or f < 0:
        raise DataError(f"{source}: {key!r} must be a finite non-negative number, got {short(val)}", name=key)
    return f


def load_prices(path: str | Path) -> Prices:
    """Read a prices JSON file (see the module docstring)."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: no such prices file", name=str(p))
    check_file_size(p)
    try:
        raw = json.loads(p.read_text(encoding="utf-8"))
    except OSError as e:
        raise DataError(f"{p}: cannot read it: {e.strerror or e}", name=str(p)) from None
    except (ValueError, RecursionError) as e:  # bad JSON or UTF-8, an int of too many digits, too deep nesting
        raise DataError(f"{p}: not valid JSON ({short(e)})", name=str(p)) from None
    return Prices.from_dict(raw, source=str(p))


def apply_prices(table: RoutingTable, prices: Prices, *, overwrite: bool = True) -> RoutingTable:
    """A copy of ``table`` costed with ``prices`` (with ``overwrite=False``, only where cost is unknown)."""
    missing = [o for o in table.options if o not in prices.options]
    if missing:
        raise DataError(
            f"{prices.source}: no price for option(s) {', '.join(map(repr, missing))}",
            name=missing[0],
            hint=f"priced options: {', '.join(sorted(prices.options))}",
        )
    new = table.subset(np.arange(len(table)))
    for j, o in enumerate(table.options):
        c = prices.cost(o, table.input_tokens[:, j], table.output_tokens[:, j])
        new.cost[:, j] = c if overwrite else np.where(np.isnan(new.cost[:, j]), c, new.cost[:, j])
    new.meta["cost_basis"] = prices.describe()
    return new


__all__ = ["Price", "Prices", "apply_prices", "load_prices"]
