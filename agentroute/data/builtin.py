"""The public releases in the shared data folder, converted in memory for tests, benchmarks and notebooks.

``data_dir()`` is ``$AGENTROUTE_DATA_DIR``, else the ``shared/data`` folder beside the repository.
``load_builtin`` converts a release and caches the converted table under the user cache dir
(``$XDG_CACHE_HOME/agentroute`` or ``~/.cache/agentroute``), keyed by the source files' sizes and times; it
never writes into the data folder, and the repository never holds a copy.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from agentroute.data.prices import Prices
from agentroute.data.table import RoutingTable
from agentroute.errors import DataError

BUILTIN = ("routerbench", "llmrouter", "routellm")
_CONVERTER_VERSION = "2"  # 2: RouterBench tables keep each model's response

ROUTELLM_PRICES: dict[str, Any] = {
    "gpt-4-1106-preview": {"input_per_million": 10.0, "output_per_million": 30.0},
    "mistralai/Mixtral-8x7B-Instruct-v0.1": {"input_per_million": 0.6, "output_per_million": 0.6},
    "_assumed_output_tokens": 1,
}
"""List prices when the release was made (OpenAI for GPT-4 Turbo; a typical hosted price for Mixtral 8x7B),
and one output token per answer (MMLU answers are one letter). RouteLLM itself counts cost as the share of
strong calls; APGR and CPT here use that share too, so these prices only set the USD axis."""

_memo: dict[tuple[str, bool], RoutingTable] = {}


def data_dir() -> Path:
    """``$AGENTROUTE_DATA_DIR``, else ``shared/data`` beside the repository."""
    env = os.environ.get("AGENTROUTE_DATA_DIR")
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parents[2]
    return repo.parent / "shared" / "data"


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "agentroute" / "tables"


def _sources(name: str, root: Path) -> list[Path]:
    if name == "routerbench":
        return sorted((root / "routerbench").glob("*.csv"))
    if name == "llmrouter":
        d = root / "llmrouter"
        return [p for p in (d / "train.json", d / "default_query_train.jsonl", d / "default_llm.json") if p.exists()]
    if name == "routellm":
        d = root / "routellm"
        return sorted((d / "mmlu_responses").glob("*.csv")) + sorted(d.glob("*contaminated*.jsonl"))
    raise DataError(f"unknown built-in table {name!r}", name=name, hint=f"use one of {', '.join(BUILTIN)}")


def _key(name: str, files: list[Path], drop_incomplete: bool) -> str:
    h = hashlib.blake2b(digest_size=10)
    h.update(f"{name}|{_CONVERTER_VERSION}|{drop_incomplete}".encode())
    for f in files:
        st = f.stat()
        h.update(f"{f.name}|{st.st_size}|{int(st.st_mtime)}".encode())
    return h.hexdigest()


def load_builtin(name: str, *, drop_incomplete: bool = True, cache: bool = True) -> RoutingTable:
    """Convert (or load from cache) the shared release: ``routerbench``, ``llmrouter`` or ``routellm``.

    Raises :class:`DataError` when the data folder lacks it (tests skip on that). ``routellm`` is priced with
    :data:`ROUTELLM_PRICES`. A few RouterBench prompts lack some models' outcomes; ``drop_incomplete``
    (default) drops them.
    """
    from agentroute.data.convert import convert

    root = data_dir()
    files = _sources(name, root)
    if not files:
        raise DataError(
            f"built-in table {name!r}: no source files under {root / name}",
            name=name,
            hint="set AGENTROUTE_DATA_DIR to the folder holding routerbench/, llmrouter/ and routellm/",
        )
    memo_key = (name, drop_incomplete)
    key = _key(name, files, drop_incomplete)
    hit = _memo.get(memo_key)
    if hit is not None and hit.meta.get("cache_key") == key:
        return hit.subset(range(len(hit)))
    cached = _cache_dir() / f"{name}-{key}.parquet"
    table: RoutingTable | None = None
    if cache and cached.exists():
        try:
            table = RoutingTable.read(cached)
            table.meta = json.loads(cached.with_suffix(".meta.json").read_text(encoding="utf-8"))
        except (DataError, OSError, ValueError):
            table = None
    if table is None:
        prices = Prices.from_dict(ROUTELLM_PRICES, source="agentroute ROUTELLM_PRICES") if name == "routellm" else None
        src = [root / name] if name != "routellm" else [root / "routellm"]
        table = convert(name, src, prices=prices, drop_incomplete=drop_incomplete)
        table.meta["cache_key"] = key
        if cache:
            try:
                cached.parent.mkdir(parents=True, exist_ok=True)
                table.write(cached)
                cached.with_suffix(".meta.json").write_text(json.dumps(table.meta), encoding="utf-8")
            except OSError:
                pass  # a read-only home is fine: convert again next time
    _memo[memo_key] = table
    return table.subset(range(len(table)))


__all__ = ["BUILTIN", "ROUTELLM_PRICES", "data_dir", "load_builtin"]
