"""The mid and high searches read each turn in context (nearby turns of its session, and the session's best matches)."""

from __future__ import annotations

import numpy as np
from mem_helpers import PRICES

from agentroute.memory import Memory
from agentroute.memory._store import CONTEXT_WEIGHTS, SESSION_WEIGHT

_FILLER = [
    "The weather was grey all week.",
    "We cooked soup on Sunday evening.",
    "My neighbour fixed his old bicycle.",
    "The train was late again this morning.",
    "I watched a documentary about whales.",
    "Our garden needs more water soon.",
]


def _turns(session_one: list[str], session_two: list[str]) -> list[dict[str, object]]:
    return [{"text": t, "session": 1, "dia_id": f"D1:{i + 1}"} for i, t in enumerate(session_one)] + [
        {"text": t, "session": 2, "dia_id": f"D2:{i + 1}"} for i, t in enumerate(session_two)
    ]


def test_answer_after_a_matching_question_is_found_by_mid_but_not_low():
    # D1:4 answers the question asked in D1:3 without repeating any of its words.
    s1 = [*_FILLER[:2], "Which violin teacher did Oliver hire for the orchestra audition?", "Mrs Alvarez, since March.",
          *_FILLER[2:4]]
    s2 = [*_FILLER[4:], "Oliver played violin at the orchestra audition.", "Everyone clapped loudly."]
    mem = Memory.from_conversation(_turns(s1, s2), prices=PRICES)
    q = "Who is the violin teacher Oliver hired for the orchestra audition?"
    low = mem.recall_with(q, {"retrieve": "low"})
    bm = mem.store.keyword(mem.start(q).info)
    assert bm[mem.store.by_id["D1:4"]] == 0.0  # no query word in the answer turn
    assert "D1:4" not in low.ids
    for tier in ("mid", "high"):
        scores = mem.store.hybrid(mem.start(q).info) if tier == "mid" else mem.store.expanded(mem.start(q).info)
        answer = scores[mem.store.by_id["D1:4"]]
        # The answer now outranks a filler turn far from any match, and the reply to a weaker match.
        assert answer > scores[mem.store.by_id["D1:6"]]
        assert answer > scores[mem.store.by_id["D2:4"]]


def test_in_context_shares_stay_inside_a_session():
    mem = Memory.from_conversation(_turns(_FILLER[:3], _FILLER[3:]), prices=PRICES)
    n = mem.store.n
    for j in range(n):
        spike = np.zeros(n, dtype=np.float32)
        spike[j] = 1.0
        out = mem.store.in_context(spike)
        session = mem.store.turns[j].session
        for i in range(n):
            if i == j:
                continue
            d = i - j
            # A turn after the spike gets the spike's "before" share; a turn before it, the "after" share.
            share = next(((before if d > 0 else after) for dist, before, after in CONTEXT_WEIGHTS
                          if dist == abs(d)), 0.0)
            same = mem.store.turns[i].session == session
            expected = (share if same else 0.0) + (SESSION_WEIGHT if same else 0.0)
            assert abs(float(out[i]) - expected) < 1e-5, (i, j, out.tolist())
    # A constant score gives every turn the same value: the context terms add no position bias inside a session.
    flat = mem.store.in_context(np.zeros(n, dtype=np.float32))
    assert not flat.any()


def test_session_prior_breaks_a_tie_towards_the_session_the_question_is_about():
    s1 = ["I adopted a puppy named Biscuit.", "Biscuit chewed my shoes.", "Biscuit loves the park.",
          *_FILLER[:3]]
    s2 = [*_FILLER[3:], "My cousin also has a dog."]
    mem = Memory.from_conversation(_turns(s1, s2), prices=PRICES)
    raw = np.zeros(mem.store.n, dtype=np.float32)
    raw[[0, 1, 2]] = 1.0
    far_1, far_2 = mem.store.by_id["D1:6"], mem.store.by_id["D2:2"]  # both two turns or more from any match
    raw[far_1] = raw[far_2] = 0.5
    out = mem.store.in_context(raw)
    assert out[far_1] > out[far_2]
