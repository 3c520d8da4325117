"""Routing-outcome tables: the canonical schema, validation, converters of public releases, prices and splits.

``RoutingTable`` is what fitting, environments and evaluation read; ``load_builtin`` converts the public
releases in the shared data folder in memory (for tests and benchmarks). Nothing here imports pandas at
import time.
"""

from agentroute.data.builtin import BUILTIN, data_dir, load_builtin
from agentroute.data.prices import Prices, apply_prices, load_prices
from agentroute.data.table import RoutingTable, estimate_tokens

__all__ = [
    "BUILTIN",
    "Prices",
    "RoutingTable",
    "apply_prices",
    "data_dir",
    "estimate_tokens",
    "load_builtin",
    "load_prices",
]
