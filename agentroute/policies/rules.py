"""Declarative rules: ordered conditions over what a policy sees, first match wins, with a default per kind.

Rules come from YAML (``RulePolicy.from_file``), from dicts, or from :class:`Rule` objects. Each rule is validated
with pydantic; a bad rule is reported with its file, line, rule name and field. At compile time ``bind`` checks that
every option a rule names exists in the graph (unknown agents or tiers are a :class:`ConfigError`). A rule whose
choice is not affordable at that moment is skipped, and the reason says so.

Example (``policies/support.yaml``)::

    name: support
    rules:
      - name: invoices-go-to-the-expert
        when: {kind: agent, keywords: [invoice, refund]}
        choose: expert
      - name: low-budget-small-model
        when: {kind: model, budget_left_below: 0.3}
        choose: cheapest
    default: {agent: END, model: small, memory: low}
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agentroute.errors import ConfigError
from agentroute.policies._card import Arrays, Card, register
from agentroute.routing import Candidate, Decision, GraphSpec, Observation, PolicyBase, one_hot

_SPECIAL = {"cheapest", "strongest"}
_END_NAMES = {"end", "END", "__end__"}


class When(BaseModel):
    """Conditions of a rule; all given ones must hold. Text conditions look at the task text."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["agent", "model", "memory"] | None = None
    point: str | None = None
    """Exact routing point, e.g. ``route:triage`` or ``expert.model``."""
    node: str | list[str] | None = None
    """The agent at which the decision is made."""
    category: str | list[str] | None = None
    keywords: list[str] | None = None
    """Any of these words (case-insensitive) in the task text."""
    regex: str | None = None
    min_length: int | None = Field(default=None, ge=0)
    """Task text at least this many characters."""
    max_length: int | None = Field(default=None, ge=0)
    budget_left_below: float | None = Field(default=None, ge=0, le=1)
    """The smallest share of any limited budget dimension left is below this."""
    budget_left_above: float | None = Field(default=None, ge=0, le=1)
    step_at_least: int | None = Field(default=None, ge=0)
    step_below: int | None = Field(default=None, ge=0)

    @field_validator("regex")
    @classmethod
    def _compiles(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as e:
                raise ValueError(f"not a valid regular expression: {e}") from None
        return v


class Rule(BaseModel):
    """One rule: when its conditions hold (and its choice is affordable), choose ``choose``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = ""
    when: When = Field(default_factory=When)
    choose: str
    """An option id, ``END``, or ``cheapest`` / ``strongest``."""
    line: int | None = Field(default=None, exclude=True)


class RuleSet(BaseModel):
    """A whole rule file."""

    model_config = ConfigDict(extra="forbid")

    name: str = "rules"
    version: str = "1"
    rules: list[Rule] = Field(default_factory=list)
    default: dict[str, str] = Field(default_factory=dict)
    """The choice per kind (``agent``, ``model``, ``memory``) when no rule matches."""

    @field_validator("default")
    @classmethod
    def _kinds(cls, v: dict[str, str]) -> dict[str, str]:
        bad = sorted(set(v) - {"agent", "model", "memory"})
        if bad:
            raise ValueError(f"unknown kind(s) {bad}: use agent, model or memory")
        return v


def _norm(choice: str) -> str:
    return "__end__" if choice in _END_NAMES else choice


@register("rules", "rules")
class RulePolicy(PolicyBase):
    """Ordered rules, first match wins; then the default of the decision's kind; then the cheapest candidate."""

    family = "rules"
    kind = "rules"

    def __init__(self, rules: Sequence[Rule | Mapping[str, Any]] = (), *,
                 default: Mapping[str, str] | None = None, name: str = "rules", version: str = "1",
                 source: str | None = None) -> None:
        try:
            parsed = [r if isinstance(r, Rule) else Rule(**r) for r in rules]
            rs = RuleSet(name=name, version=str(version), rules=parsed, default=dict(default or {}))
        except ValidationError as e:
            raise ConfigError(_explain(e, source or "rules", None)) from None
        self.name = rs.name
        self.version = rs.version
        self.rules = tuple(rs.rules)
        self.default = {k: _norm(v) for k, v in rs.default.items()}
        self.source = source
        self._regex = {i: re.compile(r.when.regex, re.I) for i, r in enumerate(self.rules) if r.when.regex}
        self._keywords = {i: [k.lower() for k in r.when.keywords] for i, r in enumerate(self.rules) if r.when.keywords}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "rules") -> RulePolicy:
        """Build from a mapping shaped like the YAML file."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"{source}: a rule file must be a mapping with 'rules' and 'default'")
        try:
            rs = RuleSet.model_validate(data)
        except ValidationError as e:
            raise ConfigError(_explain(e, source, data.get("__lines__"))) from None
        return cls(rs.rules, default=rs.default, name=rs.name, version=rs.version, source=source)

    @classmethod
    def from_file(cls, path: str | Path) -> RulePolicy:
        """Load a YAML rule file; a bad rule is reported with its line and field."""
        import yaml

        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"rule file {str(p)!r} does not exist", name=str(p))
        text = p.read_text(encoding="utf-8")
        try:
            data = yaml.safe_load(text) or {}
            root = yaml.compose(text)
        except yaml.YAMLError as e:
            raise ConfigError(f"{p}: not valid YAML: {e}", name=str(p)) from None
        if not isinstance(data, dict):
            raise ConfigError(f"{p}: a rule file must be a mapping with 'rules' and 'default'", name=str(p))
        lines = _rule_lines(root)
        rules = data.get("rules") or []
        if isinstance(rules, list):
            for i, r in enumerate(rules):
                if isinstance(r, dict) and i < len(lines):
                    r["line"] = lines[i]
        try:
            rs = RuleSet.model_validate(data)
        except ValidationError as e:
            raise ConfigError(_explain(e, str(p), lines)) from None
        return cls(rs.rules, default=rs.default, name=rs.name, version=rs.version, source=str(p))

    # -- saving (a policy card; the YAML file stays the way to write rules by hand) ----------------------------
    def to_card(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The rule set as a card (family ``rules``)."""
        return {"rules": [r.model_dump(exclude_none=True) for r in self.rules], "default": dict(self.default)}, {}

    @classmethod
    def from_card(cls, card: Card, arrays: Arrays) -> RulePolicy:
        """The rule set of a card, validated like a rule file."""
        data = {k: card[k] for k in ("name", "version", "rules", "default") if k in card}
        return cls.from_dict(data, source=card.source)

    # -- compile-time checks --------------------------------------------------------------------------------
    def bind(self, spec: GraphSpec) -> None:
        """Every option a rule or default names must exist for its kind."""
        for r in self.rules:
            choice = _norm(r.choose)
            if choice in _SPECIAL:
                continue
            known = spec.ids(r.when.kind)
            if choice not in known:
                where = f"{self.source or self.name}" + (f" line {r.line}" if r.line else "")
                raise ConfigError(
                    f"{where}: rule {r.name or '#'!r} chooses {r.choose!r}, which is not "
                    f"{'an option of kind ' + r.when.kind if r.when.kind else 'an agent, tier or memory tier'} "
                    f"in graph {spec.graph!r}", name=r.choose, hint=f"known: {', '.join(sorted(known))}")
            if r.when.node is not None:
                for n in [r.when.node] if isinstance(r.when.node, str) else r.when.node:
                    if n not in spec.agents:
                        raise ConfigError(f"rule {r.name!r} refers to unknown agent {n!r}", name=n,
                                          hint=f"agents: {', '.join(spec.agents)}")
        for kind, choice in self.default.items():
            if choice not in _SPECIAL and choice not in spec.ids(kind):
                raise ConfigError(f"{self.source or self.name}: default for {kind} is {choice!r}, which is unknown",
                                  name=choice, hint=f"known: {', '.join(sorted(spec.ids(kind)))}")

    # -- deciding --------------------------------------------------------------------------------------------
    def _matches(self, i: int, r: Rule, obs: Observation) -> str | None:
        w = r.when
        text = obs.task.text
        if w.kind is not None and w.kind != obs.kind:
            return None
        if w.point is not None and w.point != obs.point:
            return None
        if w.node is not None and obs.node not in ([w.node] if isinstance(w.node, str) else w.node):
            return None
        if w.category is not None and obs.task.category not in ([w.category] if isinstance(w.category, str)
                                                                 else w.category):
            return None
        if w.min_length is not None and len(text) < w.min_length:
            return None
        if w.max_length is not None and len(text) > w.max_length:
            return None
        if w.step_at_least is not None and obs.step < w.step_at_least:
            return None
        if w.step_below is not None and obs.step >= w.step_below:
            return None
        why = []
        if w.budget_left_below is not None or w.budget_left_above is not None:
            left = obs.budget.fraction_left()
            if w.budget_left_below is not None and not left < w.budget_left_below:
                return None
            if w.budget_left_above is not None and not left > w.budget_left_above:
                return None
            why.append(f"budget left {left:.0%}")
        if i in self._keywords:
            low = text.lower()
            hit = next((k for k in self._keywords[i] if k in low), None)
            if hit is None:
                return None
            why.append(f"keyword {hit!r}")
        if i in self._regex:
            m = self._regex[i].search(text)
            if m is None:
                return None
            why.append(f"regex matched {m.group(0)[:30]!r}")
        return ", ".join(why) or "conditions hold"

    def decide(self, obs: Observation) -> Decision:
        """First matching rule whose choice is affordable; else the default; else the cheapest."""
        skipped: list[str] = []
        for i, r in enumerate(self.rules):
            why = self._matches(i, r, obs)
            if why is None:
                continue
            c = _resolve(_norm(r.choose), obs)
            label = r.name or f"#{i + 1}"
            if c is None:
                skipped.append(f"{label}: {r.choose} unavailable")
                continue
            reason = f"rule {label!r}" + (f" (line {r.line})" if r.line else "") + f": {why} -> {c.id}"
            if skipped:
                reason += f" [skipped {'; '.join(skipped)}]"
            return Decision(c.id, one_hot(obs, c.id), reason=reason, evidence={"rule": label})
        want = self.default.get(obs.kind)
        c = _resolve(want, obs) if want else None
        if c is not None:
            return Decision(c.id, one_hot(obs, c.id), reason=f"default for {obs.kind}: {c.id}")
        c = min(obs.candidates, key=lambda x: x.rank)
        note = f"default {want} unavailable; " if want else ""
        return Decision(c.id, one_hot(obs, c.id), reason=f"{note}no rule matched: cheapest {c.id}")


def _resolve(choice: str | None, obs: Observation) -> Candidate | None:
    if choice == "cheapest":
        return min(obs.candidates, key=lambda x: x.rank)
    if choice == "strongest":
        return max(obs.candidates, key=lambda x: x.rank)
    return obs.candidate(choice) if choice else None


def _rule_lines(root: Any) -> list[int]:
    """1-based line of each item of the top-level ``rules`` list."""
    try:
        for key, value in root.value:
            if key.value == "rules":
                return [item.start_mark.line + 1 for item in value.value]
    except (AttributeError, TypeError):
        pass
    return []


def _explain(e: ValidationError, source: str, lines: Sequence[int] | None) -> str:
    parts = []
    for err in e.errors()[:3]:
        loc = [str(x) for x in err["loc"] if x != "line"]
        where = source
        if len(loc) >= 2 and loc[0] == "rules" and loc[1].isdigit():
            idx = int(loc[1])
            if lines and idx < len(lines):
                where += f" line {lines[idx]}"
            where += f", rule #{idx + 1}"
            loc = loc[2:]
        parts.append(f"{where}, field {'.'.join(loc) or '(rule)'}: {err['msg']}")
    return "; ".join(parts)
