r"""Declarative rules: ordered conditions over what a policy sees, first match wins, with a default per kind.

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

**Regular expressions run on RE2** (``google-re2``), a linear-time engine: a ``when.regex`` costs time
proportional to the task text whatever the pattern, so a rule like ``^(a+)+$`` (exponential under Python's
backtracking ``re``: 4.8 s per decision on 26 characters) cannot stall a decision. We chose it over the ``regex``
package's ``timeout=`` because a timeout makes the same rule match or not depending on how loaded the machine is
(decisions must replay identically from their traces) and still spends the whole timeout on every decision, while
RE2 runs every pattern it accepts in linear time and refuses the rest when the file is loaded. What RE2 cannot run --
backreferences (``\1``), lookaround (``(?=``, ``(?<!``), ``\Z`` (write ``\z``), possessive quantifiers -- is a
:class:`ConfigError` at load time naming the file, the rule's line and ``when.regex``. Matching is case-insensitive;
``\d``, ``\w`` and ``\b`` are ASCII-only in RE2.

**Limits.** A rule file is at most :data:`MAX_FILE_BYTES` bytes, nests at most :data:`MAX_DEPTH` levels and holds at
most :data:`MAX_NODES` values with its YAML aliases expanded; a regex is at most :data:`MAX_REGEX_CHARS` characters.
Each is a module constant: raise it (``agentroute.policies.rules.MAX_FILE_BYTES = ...``) before loading a file that
is meant to be larger. Loading raises only :class:`ConfigError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agentroute.errors import ConfigError
from agentroute.policies._card import Arrays, Card, register
from agentroute.routing import Candidate, Decision, GraphSpec, Observation, PolicyBase, one_hot

_SPECIAL = {"cheapest", "strongest"}
_END_NAMES = {"end", "END", "__end__"}

MAX_FILE_BYTES = 1 << 20
"""Largest rule file (or YAML text) accepted, in bytes (characters for ``from_yaml``)."""
MAX_DEPTH = 32
"""Deepest nesting of the rule file's YAML (lists and mappings, aliases expanded)."""
MAX_NODES = 100_000
"""Most YAML values a rule file may hold once its aliases are expanded."""
MAX_REGEX_CHARS = 10_000
"""Longest ``when.regex`` accepted, in characters."""


def compile_regex(pattern: str) -> Any:
    """Compile ``pattern`` with RE2, case-insensitive; ``ValueError`` saying why RE2 refuses it.

    RE2 also bounds the compiled program's memory (8 MiB by default), so an enormous pattern is refused too.
    """
    import re2

    if len(pattern) > MAX_REGEX_CHARS:
        raise ValueError(f"longer than {MAX_REGEX_CHARS} characters "
                         "(agentroute.policies.rules.MAX_REGEX_CHARS is the limit)")
    opts = re2.Options()
    opts.case_sensitive = False
    opts.log_errors = False
    try:
        return re2.compile(pattern, opts)
    except re2.error as e:
        why = e.args[0].decode("utf-8", "replace") if e.args and isinstance(e.args[0], bytes) else str(e)
        raise ValueError(f"not a regular expression RE2 can run ({why}); RE2 runs in linear time and has no "
                         "backreferences or lookaround, and writes \\Z as \\z") from None
    except UnicodeEncodeError:
        raise ValueError("not a regular expression: it holds a lone surrogate (not valid Unicode text)") from None


def _search(rx: Any, text: str) -> str | None:
    """The matched text of ``rx`` in ``text``, or ``None`` (linear time; lone surrogates are matched as bytes)."""
    try:
        m = rx.search(text)
    except UnicodeEncodeError:
        m = rx.search(text.encode("utf-8", "surrogatepass"))
        return None if m is None else m.group(0).decode("utf-8", "replace")
    return None if m is None else str(m.group(0))


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
            compile_regex(v)  # a ValueError becomes the rule's error, with its file, line and field
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


_OWNER = "agentroute.policies.rules"


def _validate(rules: Any, *, default: Any, name: Any, version: Any, source: str) -> RuleSet:
    """A :class:`RuleSet` from the constructor's arguments; any malformed part is a :class:`ConfigError`."""
    if isinstance(rules, str | bytes | Mapping) or not isinstance(rules, Sequence):
        raise ConfigError(f"{source}: rules must be a list of rules, got {type(rules).__name__}", name="rules")
    if isinstance(version, int | float) and not isinstance(version, bool):
        version = repr(version) if abs(version) < 10**100 else version  # a huge int has no short str
    raw = {"name": name, "version": version, "rules": list(rules), "default": {} if default is None else default}
    try:
        return RuleSet.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(_explain(e, source, None), name=_field(e)) from None


def _field(e: ValidationError, key: str = "rules") -> str:
    """The dotted field of the first error (``rules.0.when.regex``), for :attr:`ConfigError.name`."""
    errs = e.errors()
    return ".".join(str(x) for x in errs[0]["loc"]) if errs else key


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
        rs = _validate(rules, default=default, name=name, version=version, source=source or "rules")
        self.name = rs.name
        self.version = rs.version
        self.rules = tuple(rs.rules)
        self.default = {k: _norm(v) for k, v in rs.default.items()}
        self.source = source
        self._regex = {i: compile_regex(r.when.regex) for i, r in enumerate(self.rules) if r.when.regex}
        self._keywords = {i: [k.lower() for k in r.when.keywords] for i, r in enumerate(self.rules) if r.when.keywords}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "rules") -> RulePolicy:
        """Build from a mapping shaped like the YAML file."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"{source}: a rule file must be a mapping with 'rules' and 'default'")
        try:
            rs = RuleSet.model_validate(data)
        except ValidationError as e:
            raise ConfigError(_explain(e, source, data.get("__lines__")), name=_field(e)) from None
        return cls(rs.rules, default=rs.default, name=rs.name, version=rs.version, source=source)

    @classmethod
    def from_file(cls, path: str | Path) -> RulePolicy:
        """Load a YAML rule file; a bad rule is reported with its line and field (see the limits above)."""
        from agentroute import _yaml

        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"rule file {str(p)!r} does not exist", name=str(p))
        text = _yaml.read_text(p, max_bytes=MAX_FILE_BYTES, what="rule file", limit_name=f"{_OWNER}.MAX_FILE_BYTES")
        return cls.from_yaml(text, source=str(p))

    @classmethod
    def from_yaml(cls, text: str, *, source: str = "<rules>") -> RulePolicy:
        """Load rules from YAML text (safe loading, bounded by the module's limits); errors name ``source``."""
        from agentroute import _yaml

        data, root = _yaml.load(text, source=source, owner=_OWNER, max_chars=MAX_FILE_BYTES, max_depth=MAX_DEPTH,
                                max_nodes=MAX_NODES)
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: a rule file must be a mapping with 'rules' and 'default'", name=source)
        lines = _item_lines(root)
        rules = data.get("rules") or []
        if isinstance(rules, list):
            for i, r in enumerate(rules):
                if isinstance(r, dict) and i < len(lines):
                    r["line"] = lines[i]
        try:
            rs = RuleSet.model_validate(data)
        except ValidationError as e:
            raise ConfigError(_explain(e, source, lines), name=_field(e)) from None
        return cls(rs.rules, default=rs.default, name=rs.name, version=rs.version, source=source)

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
            hit_text = _search(self._regex[i], text)
            if hit_text is None:
                return None
            why.append(f"regex matched {hit_text[:30]!r}")
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


def _item_lines(root: Any, key: str = "rules") -> list[int]:
    """1-based line of each item of the top-level list ``key`` (``rules``, ``preferences``)."""
    import yaml

    if isinstance(root, yaml.MappingNode):
        for k, value in root.value:
            if k.value == key and isinstance(value, yaml.SequenceNode):
                return [item.start_mark.line + 1 for item in value.value]
    return []


def _explain(e: ValidationError, source: str, lines: Sequence[int] | None, key: str = "rules",
             noun: str = "rule") -> str:
    """The first errors of a file whose items sit in the top-level list ``key``, each with its file, line and field."""
    parts = []
    for err in e.errors()[:3]:
        loc = [str(x) for x in err["loc"] if x != "line"]
        where = source
        if len(loc) >= 2 and loc[0] == key and loc[1].isdigit():
            idx = int(loc[1])
            if lines and idx < len(lines):
                where += f" line {lines[idx]}"
            where += f", {noun} #{idx + 1}"
            loc = loc[2:]
        parts.append(f"{where}, field {'.'.join(loc) or f'({noun})'}: {err['msg']}")
    return "; ".join(parts)
