"""Answers compared across models: the task family of a prompt, the answer extracted from a reply, σ and the vote.

Several models answering the same task agree when their *extracted* answers are equal. What is extracted depends
on the task family (:func:`family_of`):

- ``letter`` — multiple choice with lettered options (``A) ...`` / ``(B) ...`` lines in the prompt): the option
  letter the reply gives (``"B"``, ``"(B)"``, ``"The answer is B."``), only among the prompt's letters;
- ``option`` — numbered options (``1) ...`` lines, or ``option 1/2`` tasks): the option number;
- ``number`` — arithmetic and word problems (a category named like ``gsm8k``, ``math``, ``arith``): the last number
  of the reply, as a canonical decimal;
- ``text`` — anything else: the reply lower-cased, punctuation dropped, whitespace collapsed (normalised exact match).

A reply nothing can be extracted from counts as an answer of its own, agreeing with no other.
σ = (distinct answers − 1) / (N − 1) over N answers: 0 when all agree, 1 when all differ.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation

FAMILIES = ("letter", "option", "number", "text")
_LETTER_LINE = re.compile(r"^\s*\(?([A-J])[).:]\s+\S", re.M)
_NUMBER_LINE = re.compile(r"^\s*\(?([1-9])[).:]\s+\S", re.M)
_NUMBER_CATS = ("gsm8k", "math", "arith", "number")
_NUM = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_PUNCT = str.maketrans("", "", string.punctuation)


def question_of(prompt: str) -> str:
    """The part of a few-shot prompt after its last worked answer (an ``Answer:`` line and a blank line)."""
    parts = re.split(r"Answer:[ \t]*\n?[ \t]*\S+[ \t]*\n\s*\n", prompt)
    return parts[-1]


def letters_of(prompt: str) -> tuple[str, ...]:
    """The option letters of a multiple-choice prompt's (last) question, in order (``()`` when it has none)."""
    found = _LETTER_LINE.findall(question_of(prompt))
    out = tuple(dict.fromkeys(found))
    return out if len(out) >= 2 else ()


def family_of(prompt: str, category: str | None = None) -> str:
    """The task family of ``prompt`` (see the module docstring)."""
    cat = (category or "").lower()
    if any(c in cat for c in _NUMBER_CATS):
        return "number"
    if letters_of(prompt):
        return "letter"
    q = question_of(prompt)
    if len(set(_NUMBER_LINE.findall(q))) >= 2 or re.search(r"\boption ?[12]\b", q, re.I):
        return "option"
    return "text"


def extract(reply: str, family: str, prompt: str = "") -> str | None:
    """The answer of ``reply`` for ``family`` (``None`` when nothing can be extracted)."""
    text = reply.strip()
    if family == "letter":
        allowed = letters_of(prompt) or tuple("ABCDE")
        cls = "".join(allowed)
        for pat in (rf"^\(?([{cls}])\)?(?:[.):\s]|$)", rf"answer(?: is)?:?\s*\(?([{cls}])\b",
                    rf"\(([{cls}])\)", rf"\b([{cls}])\)", rf"(?:^|\s)([{cls}])[.]?$"):
            m = re.search(pat, text, re.I if pat.startswith("answer") else 0)
            if m:
                return m.group(1).upper()
        return None
    if family == "option":
        m = re.search(r"\b(?:option\s*)?([1-9])\b", text, re.I)
        return m.group(1) if m else None
    if family == "number":
        nums = _NUM.findall(text)
        if not nums:
            return None
        try:
            d = Decimal(nums[-1].replace(",", ""))
        except InvalidOperation:
            return None
        return format(d.normalize(), "f") if d == d.to_integral_value() else str(d.normalize())
    norm = " ".join(text.lower().translate(_PUNCT).split())
    return norm or None


def sigma(answers: Sequence[str | None]) -> float:
    """σ = (distinct answers − 1) / (N − 1); every unextractable answer (``None``) is distinct from all others."""
    n = len(answers)
    if n < 2:
        return 0.0
    distinct = len({a for a in answers if a is not None}) + sum(a is None for a in answers)
    return (distinct - 1) / (n - 1)


def vote(answers: Sequence[str | None], weights: Sequence[float], ranks: Sequence[int]) -> int:
    """Index of the answer the group with the largest total weight gives, voiced by its strongest member.

    Ties go to the group holding the highest-ranked (strongest) member; an unextractable answer is a group of one.
    """
    groups: dict[object, list[int]] = {}
    for i, a in enumerate(answers):
        groups.setdefault(a if a is not None else ("none", i), []).append(i)
    best = max(groups.values(), key=lambda g: (sum(weights[i] for i in g), max(ranks[i] for i in g)))
    return max(best, key=lambda i: (ranks[i], -i))


__all__ = ["FAMILIES", "extract", "family_of", "letters_of", "question_of", "sigma", "vote"]
