"""What memory tier policies read from a question and a routing point: its type, and a fixed-length feature vector.

Training and serving must see the same numbers, so both call :func:`observation_features` on the same
:class:`~agentroute.routing.Observation` (the environment builds it with
:func:`agentroute.memory.routing.memory_observation`, the runtime with the same ``extra`` fields). Every entry lies in
[-1, 1]. The query part is feature hashing of its words (CRC-32, so stable across processes) plus question-type cues.

:func:`question_type` is the one question-type classifier of the memory policies (``temporal``, ``inference``,
``list``, ``factual``, from the wording); the cues of the feature vector are finer-grained inputs, kept as they are
because trained weights depend on them.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping
from functools import lru_cache

import numpy as np

from agentroute.memory._pipeline import MODULE_NAMES
from agentroute.memory._state import TIERS
from agentroute.memory._text import terms
from agentroute.routing import Observation

HASH_DIM = 32
QUESTION_TYPES = ("temporal", "inference", "list", "factual")
_TYPE_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "temporal",
        re.compile(
            r"^\s*when\b|\bhow long\b|\b(what|which) (year|month|date|day)\b|\bhow many (years|months|weeks|days)\b"
            r"|\bago\b",
            re.I,
        ),
    ),
    ("inference", re.compile(r"\b(would|could|might|likely|probably|considered|what might|why)\b", re.I)),
    (
        "list",
        re.compile(
            r"\b(what|which) (are|were|kinds?|types?|activities|things|books|events|ways)\b"
            r"|\bboth\b|\bin common\b|\bhow many\b|\ball\b",
            re.I,
        ),
    ),
)
CUES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(p, re.I))
    for name, p in (
        ("when", r"^\s*when\b"),
        ("how_long", r"\bhow (long|old|many (years|months|weeks|days|times))\b"),
        ("date_word", r"\b(year|month|week|date|day|before|after|since|ago|recently)\b"),
        ("would", r"\b(would|could|might|likely|probably|considered|may)\b"),
        ("how_many", r"\bhow many\b"),
        ("plural", r"\b(both|all|together|in common|activities|things|ways|kinds|types|hobbies|events)\b"),
        ("why", r"^\s*why\b"),
        ("what", r"^\s*what\b"),
        ("who", r"^\s*who\b"),
        ("where", r"^\s*where\b"),
        ("which", r"^\s*which\b"),
        ("yes_no", r"^\s*(is|are|was|were|did|does|do|has|have|had|can)\b"),
    )
)
STATE_KEYS = (
    "retrieved", "top_score", "margin", "flatness", "context_k", "top_coverage", "top_asks", "entity_hit",
    "probe_coverage", "probe_strength", "probe_ties", "probe_agree",
)
FEATURE_NAMES: tuple[str, ...] = (
    *(f"hash_{i}" for i in range(HASH_DIM)),
    *(f"cue_{n}" for n, _ in CUES),
    "n_terms",
    "temporal",
    "entities",
    "speakers",
    *(f"module_{m}" for m in MODULE_NAMES),
    *(f"done_{m}_{t}" for m in MODULE_NAMES for t in TIERS),
    *(f"state_{k}" for k in STATE_KEYS),
    "budget_limited",
    "budget_left",
    *(f"afford_{t}" for t in TIERS),
    *(f"cost_share_{t}" for t in TIERS),
)
N_FEATURES = len(FEATURE_NAMES)


def question_type(query: str) -> str:
    """``temporal``, ``inference``, ``list`` or ``factual``, from the wording of the question (first match)."""
    for name, pat in _TYPE_PATTERNS:
        if pat.search(query):
            return name
    return "factual"


@lru_cache(maxsize=16384)
def query_features(query: str) -> np.ndarray:
    """Hashed words and question cues of a query (cached: a query is featurised once per recall, not per module)."""
    v = np.zeros(HASH_DIM + len(CUES) + 1, dtype=np.float32)
    ts = terms(query)
    for t in ts:
        h = zlib.crc32(("q:" + t).encode("utf-8"))
        v[h % HASH_DIM] += 1.0 if (h >> 16) & 1 else -1.0
    norm = float(np.linalg.norm(v[:HASH_DIM]))
    if norm > 0:
        v[:HASH_DIM] /= norm
    for j, (_, pat) in enumerate(CUES):
        v[HASH_DIM + j] = 1.0 if pat.search(query) else 0.0
    v[-1] = min(1.0, len(ts) / 12.0)
    v.setflags(write=False)
    return v


def tiers_so_far(obs: Observation) -> dict[str, str]:
    """Module -> tier of the modules this recall has run (``extra["tiers_so_far"]``).

    Only when an observation lacks it are the task's memory decisions read from ``obs.history``: those mix every
    recall of the task (two agents' memories, a second look), so they describe this recall only when it is the first.
    """
    so_far = obs.extra.get("tiers_so_far")
    if isinstance(so_far, Mapping):
        return {str(m): str(t) for m, t in so_far.items()}
    return {p.rsplit(".", 1)[-1]: t for p, t in obs.history}


def observation_features(obs: Observation) -> np.ndarray:
    """The :data:`N_FEATURES`-long float32 vector of a memory observation (see :data:`FEATURE_NAMES`)."""
    ex = obs.extra
    query = str(ex.get("query", obs.task.text))
    parts = [query_features(query)]
    head = np.zeros(3, dtype=np.float32)
    head[0] = 1.0 if ex.get("temporal") else 0.0
    head[1] = min(1.0, float(ex.get("entities", 0)) / 3.0)
    head[2] = min(1.0, float(ex.get("speakers", 0)) / 2.0)
    parts.append(head)
    mod = np.zeros(len(MODULE_NAMES), dtype=np.float32)
    module = str(ex.get("module", obs.point.rsplit(".", 1)[-1]))
    if module in MODULE_NAMES:
        mod[MODULE_NAMES.index(module)] = 1.0
    parts.append(mod)
    done = np.zeros((len(MODULE_NAMES), len(TIERS)), dtype=np.float32)
    for m, tier in tiers_so_far(obs).items():
        if m in MODULE_NAMES and tier in TIERS:
            done[MODULE_NAMES.index(m), TIERS.index(tier)] = 1.0
    parts.append(done.ravel())
    parts.append(np.asarray([float(ex.get(k, 0.0)) for k in STATE_KEYS], dtype=np.float32))
    rem = obs.budget.remaining.usd
    lim = obs.budget.limits.usd
    tail = np.zeros(2 + 2 * len(TIERS), dtype=np.float32)
    tail[0] = 0.0 if lim is None else 1.0
    tail[1] = 1.0 if lim is None or rem is None else (float(rem / lim) if lim > 0 else 0.0)
    by_id = {c.id: c for c in obs.candidates}
    for j, t in enumerate(TIERS):
        c = by_id.get(t)
        tail[2 + j] = 1.0 if c is not None else 0.0
        if c is not None and c.cost_estimate is not None and rem is not None and rem > 0:
            tail[2 + len(TIERS) + j] = min(1.0, float(c.cost_estimate / rem))
    parts.append(tail)
    out: np.ndarray = np.clip(np.concatenate(parts), -1.0, 1.0).astype(np.float32)
    return out
