"""Conversations a memory is built from, and the LoCoMo files that hold real ones with graded questions.

A :class:`Conversation` is a list of :class:`Turn` (speaker, text, dialogue id, session and its date) plus, for
LoCoMo, its :class:`Question` list (question, gold answer, gold evidence turns, category). Files are read from
``$AGENTROUTE_DATA_DIR/locomo`` (default: the ``shared/data`` folder beside the repository) and never copied.

This module only reads and validates: malformed input raises :class:`~agentroute.errors.DataError` naming the
file and the field.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from agentroute.errors import DataError
from agentroute.memory._text import parse_session_date

CATEGORIES: Mapping[int, str] = {
    1: "multi-hop",
    2: "temporal",
    3: "open-domain",
    4: "single-hop",
    5: "adversarial",
}
"""LoCoMo's question categories by number."""

TRAIN_IDS: tuple[str, ...] = ("26", "30", "41", "42", "43", "44")
"""The conversations policies are fitted on (the first six of the eight, by file name)."""
TEST_IDS: tuple[str, ...] = ("47", "48")
"""The held-out conversations every reported figure is measured on."""

_DIA = re.compile(r"D\d+:\d+")


@dataclass(frozen=True, slots=True)
class Turn:
    """One utterance: ``dia_id`` (``"D3:7"``), speaker, text (an image's caption appended), session and its date."""

    dia_id: str
    speaker: str
    text: str
    session: int = 1
    date: datetime | None = None
    date_text: str = ""


@dataclass(frozen=True, slots=True)
class Question:
    """A graded question: gold ``answer`` (the adversarial answer for category 5) and gold ``evidence`` turn ids."""

    question: str
    answer: str
    evidence: tuple[str, ...]
    category: int
    adversarial: bool = False

    @property
    def category_name(self) -> str:
        """``"temporal"``, ``"multi-hop"``, ..."""
        return CATEGORIES.get(self.category, str(self.category))


@dataclass(frozen=True, slots=True)
class Conversation:
    """Turns in order, the two speakers, and (for LoCoMo) the graded questions."""

    id: str
    turns: tuple[Turn, ...]
    speakers: tuple[str, ...] = ()
    questions: tuple[Question, ...] = field(default=(), repr=False)

    @classmethod
    def from_locomo(cls, data: Mapping[str, Any], *, id: str = "conversation", source: str = "") -> Conversation:
        """Build from one LoCoMo conversation object (``speaker_a``, ``session_N``, ``session_N_date_time``, ``qa``)."""
        where = source or id
        conv = data.get("conversation", data)
        if not isinstance(conv, Mapping):
            raise DataError(f"{where}: expected a JSON object with session_N lists", name=where)
        sessions = sorted(
            (int(k.split("_")[1]), k) for k in conv if re.fullmatch(r"session_\d+", k) and isinstance(conv[k], list)
        )
        if not sessions:
            raise DataError(f"{where}: no session_N lists of turns", name=where, hint="is this a LoCoMo file?")
        turns: list[Turn] = []
        for n, key in sessions:
            date_text = str(conv.get(f"{key}_date_time", ""))
            date = parse_session_date(date_text)
            for i, t in enumerate(conv[key]):
                if not isinstance(t, Mapping) or "text" not in t:
                    raise DataError(f"{where}: {key}[{i}] has no text", name=f"{key}[{i}]")
                text = str(t["text"])
                if t.get("blip_caption"):
                    text = f"{text} [shares an image: {t['blip_caption']}]"
                turns.append(
                    Turn(str(t.get("dia_id") or f"D{n}:{i + 1}"), str(t.get("speaker", "")), text, n, date, date_text)
                )
        speakers = tuple(str(conv[k]) for k in ("speaker_a", "speaker_b") if conv.get(k))
        questions = tuple(_question(q, where, i) for i, q in enumerate(data.get("qa", ()) or ()))
        return cls(id=id, turns=tuple(turns), speakers=speakers, questions=questions)

    @classmethod
    def from_turns(cls, turns: Iterable[Any], *, id: str = "conversation") -> Conversation:
        """Build from plain turns: strings, or mappings with ``text`` and optional ``speaker``/``dia_id``/``date``."""
        out: list[Turn] = []
        for i, t in enumerate(turns):
            if isinstance(t, Turn):
                out.append(t)
            elif isinstance(t, str):
                out.append(Turn(f"D1:{i + 1}", "", t))
            elif isinstance(t, Mapping) and "text" in t:
                date_text = str(t.get("date", "") or "")
                out.append(
                    Turn(
                        str(t.get("dia_id") or f"D1:{i + 1}"),
                        str(t.get("speaker", "")),
                        str(t["text"]),
                        int(t.get("session", 1)),
                        parse_session_date(date_text) if date_text else None,
                        date_text,
                    )
                )
            else:
                raise DataError(f"turn {i} is neither a string nor a mapping with 'text'", name=f"turn {i}")
        speakers = tuple(dict.fromkeys(t.speaker for t in out if t.speaker))
        return cls(id=id, turns=tuple(out), speakers=speakers)


def _question(q: Any, where: str, i: int) -> Question:
    if not isinstance(q, Mapping) or "question" not in q or "category" not in q:
        raise DataError(f"{where}: qa[{i}] needs 'question' and 'category'", name=f"qa[{i}]")
    category = int(q["category"])
    adversarial = category == 5
    answer = q.get("adversarial_answer") if adversarial else q.get("answer")
    if answer is None:
        answer = q.get("answer", q.get("adversarial_answer", ""))
    # A few gold lists hold "D8:6; D9:17" in one string or a stray "D"; keep only well-formed ids.
    evidence = tuple(dict.fromkeys(e for raw in q.get("evidence", ()) or () for e in _DIA.findall(str(raw))))
    return Question(str(q["question"]), str(answer), evidence, category, adversarial)


def data_dir() -> Path:
    """``$AGENTROUTE_DATA_DIR``, else the ``shared/data`` folder beside the repository."""
    env = os.environ.get("AGENTROUTE_DATA_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2].parent / "shared" / "data"


def locomo_dir() -> Path:
    """Where the LoCoMo conversations are read from."""
    return data_dir() / "locomo"


def load_conversation(path: str | os.PathLike[str]) -> Conversation:
    """Read one LoCoMo JSON file; its id is the file stem (``"26"``)."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"no conversation file at {p}", name=str(p)) from None
    except json.JSONDecodeError as e:
        raise DataError(f"{p}: not valid JSON ({e.msg} at line {e.lineno})", name=str(p)) from None
    if isinstance(data, list) and len(data) == 1:
        data = data[0]
    if not isinstance(data, Mapping):
        raise DataError(f"{p}: expected one conversation object", name=str(p))
    return Conversation.from_locomo(data, id=p.stem, source=str(p))


def load_conversations(
    directory: str | os.PathLike[str] | None = None, ids: Sequence[str] | None = None
) -> list[Conversation]:
    """Every ``*.json`` conversation in ``directory`` (default :func:`locomo_dir`), sorted by id, or just ``ids``."""
    d = Path(directory) if directory is not None else locomo_dir()
    if not d.is_dir():
        raise DataError(
            f"conversation folder {d} does not exist",
            name=str(d),
            hint="pass --conversations or set AGENTROUTE_DATA_DIR",
        )
    files = sorted(d.glob("*.json"), key=lambda f: (len(f.stem), f.stem))
    if ids is not None:
        wanted = {str(i) for i in ids}
        missing = wanted - {f.stem for f in files}
        if missing:
            raise DataError(f"{d}: no conversation(s) {', '.join(sorted(missing))}", name=str(d))
        files = [f for f in files if f.stem in wanted]
    if not files:
        raise DataError(f"{d} holds no *.json conversations", name=str(d))
    return [load_conversation(f) for f in files]


def split(conversations: Sequence[Conversation]) -> tuple[list[Conversation], list[Conversation]]:
    """``(train, test)``: LoCoMo's :data:`TEST_IDS` are held out when present, else the last quarter (at least 1)."""
    test = [c for c in conversations if c.id in TEST_IDS]
    if not test or len(test) == len(conversations):
        n = max(1, len(conversations) // 4) if len(conversations) > 1 else 0
        return list(conversations[: len(conversations) - n]), list(conversations[len(conversations) - n :])
    return [c for c in conversations if c.id not in TEST_IDS], test
