"""A small LoCoMo-shaped conversation, fixed prices, and a fake step context for the memory tests."""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from agentroute.memory import Conversation, Memory

# Prices given explicitly so the tests never depend on LiteLLM's map (USD per token).
PRICES = {"context": (Decimal("0.0000025"), Decimal("0.00001")), "call": (Decimal("0.00000015"), Decimal("0.0000006"))}

_S1 = [
    ("Caroline", "Hey Mel! I went to a LGBTQ support group yesterday and it was so powerful."),
    ("Melanie", "That sounds amazing! What happened there?"),
    ("Caroline", "People shared transgender stories and I felt accepted. I want to work in counseling."),
    ("Melanie", "You would be great at counseling. I painted a sunrise last year, by the way."),
    ("Caroline", "Did you paint it by the lake?"),
    ("Melanie", "Yes, at the lake near our house in Portland."),
    ("Caroline", "I am researching adoption agencies this week."),
    ("Melanie", "Adoption is wonderful. Which agencies are you considering?"),
    ("Caroline", "One that supports LGBTQ+ individuals, it is called Rainbow Families."),
    ("Melanie", "My kids love pottery, we made bowls together."),
]
_S2 = [
    ("Melanie", "I went camping with the kids last week at Yosemite."),
    ("Caroline", "How was the weather at Yosemite?"),
    ("Melanie", "Sunny, and we saw a bear near the river!"),
    ("Caroline", "I started reading Becoming Nicole, a book about a transgender girl."),
    ("Melanie", "Is it good so far?"),
    ("Caroline", "It is inspiring, it gives me hope for my own path."),
    ("Melanie", "I signed up for a pottery class two days ago."),
    ("Caroline", "What will you make in the pottery class?"),
    ("Melanie", "A vase for my mother, she loves flowers."),
    ("Caroline", "Oliver, my friend, is coming to visit next month."),
    ("Melanie", "Say hi to Oliver from me!"),
    ("Caroline", "I will. He plays the violin in an orchestra."),
]


def locomo_dict() -> dict[str, Any]:
    """A two-session conversation with graded questions in LoCoMo's layout."""
    d: dict[str, Any] = {
        "speaker_a": "Caroline",
        "speaker_b": "Melanie",
        "session_1_date_time": "1:56 pm on 8 May, 2023",
        "session_2_date_time": "10:37 am on 27 June, 2023",
    }
    for n, turns in ((1, _S1), (2, _S2)):
        d[f"session_{n}"] = [{"speaker": s, "dia_id": f"D{n}:{i + 1}", "text": t} for i, (s, t) in enumerate(turns)]
    d["session_1"][9]["blip_caption"] = "a photo of two clay bowls"
    d["qa"] = [
        {"question": "When did Caroline go to the LGBTQ support group?", "answer": "7 May 2023",
         "evidence": ["D1:1"], "category": 2},
        {"question": "Where did Melanie paint the sunrise?", "answer": "lake", "evidence": ["D1:4", "D1:6"],
         "category": 1},
        {"question": "What career does Caroline want?", "answer": "counseling", "evidence": ["D1:3"], "category": 4},
        {"question": "Which adoption agency supports LGBTQ+ individuals?", "answer": "Rainbow Families",
         "evidence": ["D1:9"], "category": 4},
        {"question": "When did Melanie go camping?", "answer": "The week before 27 June 2023",
         "evidence": ["D2:1"], "category": 2},
        {"question": "What did Melanie see near the river at Yosemite?", "answer": "a bear", "evidence": ["D2:3"],
         "category": 4},
        {"question": "What book is Caroline reading?", "answer": "Becoming Nicole", "evidence": ["D2:4"],
         "category": 4},
        {"question": "Would Caroline likely support transgender causes?", "answer": "Yes",
         "evidence": ["D1:3", "D2:4"], "category": 3},
        {"question": "What instrument does Oliver play?", "adversarial_answer": "violin", "evidence": ["D2:12"],
         "category": 5},
        {"question": "What will Melanie make in the pottery class?", "answer": "A vase",
         "evidence": ["D2:9"], "category": 4},
    ]
    return d


def conversation(cid: str = "t1") -> Conversation:
    return Conversation.from_locomo(locomo_dict(), id=cid)


def memory(cid: str = "t1", **kw: Any) -> Memory:
    return Memory(conversation(cid), prices=PRICES, **kw)


def write_conversations(folder: Path, ids: tuple[str, ...] = ("c1", "c2", "c3")) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for cid in ids:
        (folder / f"{cid}.json").write_text(json.dumps(locomo_dict()), encoding="utf-8")
    return folder


def locomo_folder() -> Path:
    """The real LoCoMo folder, or skip (fail in CI, where the data must be there)."""
    env = os.environ.get("AGENTROUTE_DATA_DIR")
    base = Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared" / "data"
    d = base / "locomo"
    if not d.is_dir():
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"LoCoMo folder {d} is missing")
        pytest.skip(f"LoCoMo folder {d} is missing")
    return d


class MapPolicy:
    """Picks each module's tier from a fixed map, and keeps every observation it was shown."""

    name, version = "map", "1"

    def __init__(self, tiers: dict[str, str]) -> None:
        self.tiers = tiers
        self.seen: list[Any] = []

    def decide(self, obs: Any) -> Any:
        from agentroute.routing import Decision, one_hot

        self.seen.append(obs)
        t = self.tiers[obs.point.rsplit(".", 1)[-1]]
        return Decision(t, one_hot(obs, t))


class FakeCtx:
    """A :class:`~agentroute.memory._bound.MemoryContext` with no graph: a real kernel on an unlimited ledger, an
    agent named ``answerer``, a policy choosing tiers by a fixed map; it keeps what the kernel saw and recorded."""

    node = "answerer"

    def __init__(self, tiers: dict[str, str]) -> None:
        from agentroute.budget import Budget, Ledger
        from agentroute.routing import TaskInfo, TaskRouter

        self.tiers = tiers
        self.policy = MapPolicy(tiers)
        self.router = TaskRouter(Ledger(Budget()), self.policy, TaskInfo("t"), node=self.node)

    @property
    def points(self) -> list[tuple[str, str, list[Any], dict[str, Any]]]:
        return [(o.kind, o.point, list(o.candidates), dict(o.extra)) for o in self.policy.seen]

    @property
    def settled(self) -> list[tuple[str, Any]]:
        return [(r.chosen, r) for r in self.router.decisions()]

    def model_call(self, point: str) -> Any:
        return None
