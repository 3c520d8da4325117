"""The graph world of :class:`~agentroute.providers.Simulated`: a task whose quality depends on the whole path.

A model call takes part in the world when its messages carry a **role marker** (a system message made by
:func:`role_message`): ``research``, ``write`` or ``verify``. Calls without a marker keep the single-call model of
the simulated provider (quality from the last call alone), so graphs written before the world behave as they did.

What the world owns (all of it pure given the seed, whatever the order or concurrency of calls):

- **A hidden difficulty class per task, with a noisy but real cue in its text.** As in real traffic, hard tasks
  tend to name hard things and to be longer: a task's log-odds of being hard are ``logit(hard_share)``, plus
  ``cue_logit`` when its text holds one of the ``cues`` (``why``, ``explain``, ``compare``, ``contract``, ...: the
  multi-step words and the legal topic's words), plus ``long_logit`` when it has more than ``long_words`` words.
  The class is drawn from a stable hash of the text with that probability (:meth:`World.hard_probability`), so
  the cue is informative, not a give-away: with the defaults a short plain task is hard with probability 0.04, a
  long plain one 0.24, a short cued one 0.86 and a long cued one 0.98. Hard tasks are ``hard_shift`` harder, easy
  ones ``easy_shift`` easier, on top of ``base_weight ×`` the task's own base difficulty (the provider's, or the
  one a routing table fitted), so the class, not the hash of the text, decides what a task needs. The class is
  never shown to a policy; the words and the length hint at it.
- **research** writes notes whose usefulness rises with the model's ability against the task's (weighted) base
  difficulty less ``research_ease`` (its class does not make notes harder to gather). A writer that reads them
  (their tag in its messages) faces a task ``research_gain × usefulness`` easier when the task is hard, and only
  ``research_gain_easy ×`` easier when it is easy.
- **write** drafts an answer that is right or wrong (a Bernoulli draw whose probability is the item-response link of
  the model's ability against the task's difficulty, as in :mod:`.calibrate`). A right draft is worth
  ``correct_quality``, a wrong one ``wrong_quality`` (ranges, drawn per call).
- **verify** reads a draft: it catches a wrong one with probability ``σ(2.5·(ability − difficulty + verify_ease))``
  and flags a right one by mistake with probability ``false_alarm``. Its reply says ``VERDICT: reject`` or
  ``VERDICT: accept``; its quality is the draft's (the verifier does not change the answer). A writer that reads a
  rejected draft and its verdict revises: a fresh draw on a task ``revise_gain`` easier.
- **research** alone answers nothing: its quality is 0, so a task cut off after research scores 0.

Every extra step costs what its tokens cost: notes become the writer's input tokens, a verification reads the
draft, a revision is another call. Replies carry a tag ``<<…>>`` (20 digits, so every tag costs the same tokens
and a run costs the same whenever it runs) by which later calls find them.
"""

from __future__ import annotations

import math
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agentroute.errors import ConfigError
from agentroute.providers._hash import _unit

ROLES = ("research", "write", "verify")
_MARK = "[agentroute-world:"
_TAG = re.compile(r"<<(\d{20})>>")
_LENGTH = {"research": 1.5, "write": 1.0, "verify": 0.25}
_MAX_NOTES = 200_000
SLOPE = 2.5


def role_message(role: str) -> dict[str, str]:
    """The system message that makes a call take part in the world as ``role`` (research, write or verify)."""
    if role not in ROLES:
        raise ConfigError(f"unknown world role {role!r}", name=role, hint=f"one of {', '.join(ROLES)}")
    return {"role": "system", "content": f"{_MARK}{role}]"}


def role_of(messages: Sequence[Mapping[str, Any]]) -> str | None:
    """The world role a call's messages declare, or ``None`` for a call outside the world."""
    for m in messages:
        if m.get("role") == "system":
            content = str(m.get("content", ""))
            if content.startswith(_MARK):
                role = content[len(_MARK):].rstrip("]")
                return role if role in ROLES else None
    return None


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-SLOPE * x))


@dataclass(frozen=True)
class World:
    """The parameters of the graph world (see the module docstring); ``World()`` is the documented default."""

    hard_share: float = 0.04
    """Probability that a short task without a cue word is hard."""
    cue_logit: float = 5.0
    """Log-odds a cue word adds to a task's chance of being hard."""
    long_logit: float = 2.0
    """Log-odds a long task (more than ``long_words`` words) adds to its chance of being hard."""
    long_words: int = 16
    """Words (``[a-z0-9]+`` runs) beyond which a task counts as long."""
    cues: tuple[str, ...] = ("why", "explain", "compare", "contract", "clause", "licence", "law", "terms")
    """Words (lower case, whole words) that hint at a hard task."""
    hard_shift: float = 2.4
    """Added to a hard task's difficulty."""
    easy_shift: float = 1.5
    """Taken from an easy task's difficulty."""
    base_weight: float = 0.4
    """How much a task's own base difficulty (the provider's, or the one a routing table fitted) counts beside its
    class: the world works on ``base_weight × base``; 1 keeps it whole, 0 leaves the class alone."""
    research_ease: float = 0.5
    """How much easier gathering notes is than the task's (weighted) base difficulty."""
    research_gain: float = 2.4
    """Difficulty that perfect research notes remove from a hard task."""
    research_gain_easy: float = 0.1
    """Difficulty that perfect research notes remove from an easy task."""
    verify_ease: float = 2.0
    """How much easier it is to see that a draft is wrong than to write a right one."""
    false_alarm: float = 0.05
    """Probability that a verifier rejects a right draft."""
    revise_gain: float = 0.5
    """Difficulty removed for a writer revising a rejected draft."""
    correct_quality: tuple[float, float] = (0.8, 1.0)
    """Range of a right draft's quality."""
    wrong_quality: tuple[float, float] = (0.0, 0.3)
    """Range of a wrong draft's quality."""

    def __post_init__(self) -> None:
        for name in ("hard_share", "false_alarm"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ConfigError(f"World({name}={v}) must lie in [0, 1]", name=name)
        for name in ("correct_quality", "wrong_quality"):
            lo, hi = getattr(self, name)
            if not 0.0 <= lo <= hi <= 1.0:
                raise ConfigError(f"World({name}={(lo, hi)}) must satisfy 0 <= low <= high <= 1", name=name)

    def hint(self, text: str) -> tuple[bool, bool]:
        """What a task's text shows of its class: (it holds a cue word, it is long). A policy can read both."""
        words = re.findall(r"[a-z0-9]+", text.lower())
        return bool(set(words) & set(self.cues)), len(words) > self.long_words

    def hard_probability(self, text: str) -> float:
        """The chance that the task whose text is ``text`` is hard: its cue words and its length (module docstring)."""
        if self.hard_share <= 0.0 or self.hard_share >= 1.0:
            return self.hard_share
        cue, long = self.hint(text)
        z = math.log(self.hard_share / (1.0 - self.hard_share))
        return 1.0 / (1.0 + math.exp(-(z + self.cue_logit * cue + self.long_logit * long)))

    def is_hard(self, text: str, seed: int) -> bool:
        """The hidden class of the task whose text is ``text``."""
        return _unit("world-class", seed, text) < self.hard_probability(text)

    def shift(self, text: str, seed: int) -> float:
        """What the class adds to the task's base difficulty."""
        return self.hard_shift if self.is_hard(text, seed) else -self.easy_shift


@dataclass(frozen=True, slots=True)
class Note:
    """What the world remembers of one reply, found again by its tag."""

    role: str
    value: float
    """research: usefulness in [0, 1]; write: quality; verify: the quality of the draft it read."""
    correct: bool = False
    """write: the draft is right; verify: the verdict was ``reject``."""


class Notes:
    """Replies of a world by tag: bounded (oldest forgotten first) and thread-safe."""

    def __init__(self) -> None:
        self._d: OrderedDict[str, Note] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, rid: str, note: Note) -> None:
        with self._lock:
            self._d[tag_key(rid)] = note
            if len(self._d) > _MAX_NOTES:
                self._d.popitem(last=False)

    def found(self, messages: Sequence[Mapping[str, Any]]) -> list[Note]:
        """The notes whose tags appear in ``messages``, in order."""
        out = []
        with self._lock:
            for m in messages:
                for rid in _TAG.findall(str(m.get("content", ""))):
                    n = self._d.get(rid)
                    if n is not None:
                        out.append(n)
        return out


def tag_key(rid: str) -> str:
    """The key of reply ``rid`` in the notes: 20 decimal digits, so that every tag costs the same tokens."""
    return f"{int(rid.removeprefix('sim-'), 16) % 10**20:020d}"


def tag(rid: str) -> str:
    """The marker of reply ``rid`` in its text."""
    return f"<<{tag_key(rid)}>>"


def length_factor(role: str) -> float:
    """How long a role's replies are, relative to the model's typical answer."""
    return _LENGTH.get(role, 1.0)


def write_probability(world: World, *, ability: float, base: float, text: str, seed: int, research: float = 0.0,
                      revising: bool = False) -> float:
    """Probability that a writer of ``ability`` drafts a right answer, given its notes' usefulness and a revision."""
    hard = world.is_hard(text, seed)
    gain = world.research_gain if hard else world.research_gain_easy
    d = world.base_weight * base + world.shift(text, seed) - gain * research
    return _sigmoid(ability - d + (world.revise_gain if revising else 0.0))


def outcome(world: World, role: str, *, ability: float, base: float, text: str, model: str, seed: int,
            notes: Sequence[Note]) -> tuple[Note, str]:
    """The note and reply text of one world call (quality before any cut-off), pure given its inputs."""
    d = world.base_weight * base + world.shift(text, seed)
    if role == "research":  # gathering notes is as hard as the task's base difficulty, whatever its class
        useful = _sigmoid(ability - world.base_weight * base + world.research_ease)
        useful *= 0.9 + 0.1 * _unit("world-research", seed, model, text)
        return Note("research", min(1.0, useful)), "research notes"
    drafts = [n for n in notes if n.role == "write"]
    if role == "verify":
        if not drafts:
            return Note("verify", 0.0), "VERDICT: accept (no draft to check)"
        draft = drafts[-1]
        u = _unit("world-verify", seed, model, text, len(drafts))
        catch = world.false_alarm if draft.correct else _sigmoid(ability - d + world.verify_ease)
        reject = u < catch
        return Note("verify", draft.value, reject), "VERDICT: reject" if reject else "VERDICT: accept"
    research = max((n.value for n in notes if n.role == "research"), default=0.0)
    revising = any(n.role == "verify" and n.correct for n in notes)
    p = write_probability(world, ability=ability, base=base, text=text, seed=seed, research=research,
                          revising=revising)
    key = (model, text, round(research, 3), len(drafts), revising)
    correct = _unit("world-write", seed, *key) < p
    lo, hi = world.correct_quality if correct else world.wrong_quality
    q = lo + (hi - lo) * _unit("world-quality", seed, *key)
    return Note("write", q, correct), "revised answer" if revising else "answer"


__all__ = ["ROLES", "Note", "Notes", "World", "length_factor", "outcome", "role_message", "role_of", "tag",
           "write_probability"]
