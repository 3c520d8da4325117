"""The one decision record: what a run returns, what a span carries, what the store keeps and reads back.

:class:`DecisionRecord` is the only shape a routing decision takes once it was made. Its conversions produce and
consume *plain* values, so this module stays free of OpenTelemetry and SQL: telemetry turns
:meth:`~DecisionRecord.to_attributes` into a span, the store turns :meth:`~DecisionRecord.to_row` into a row, and
both read them back with the matching ``from_*``. A record survives every round trip equal to itself.

Free-form text (the reason, masked reasons, candidate descriptors, policy evidence) may hold credentials: the
``to_*`` methods that leave the process take a ``scrub`` function (telemetry passes its redaction) applied to those
values only, so this module needs no knowledge of what a secret looks like.

This module must stay free of runtime, LangGraph, LiteLLM, OpenTelemetry and SQL imports.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from agentroute.routing._types import Candidate, Kind, Masked

Scrub = Callable[[Any], Any]
"""Applied to every free-form value before it leaves the process (text or a JSON-like mapping)."""

# -- span attribute keys of a decision (telemetry re-exports them with the others, in ``_telemetry_attrs``)
RECORD = "agentroute.record"
TASK_ID = "agentroute.task.id"
GRAPH_NODE = "agentroute.graph.node"
STEP_INDEX = "agentroute.step.index"
POLICY_NAME = "agentroute.policy.name"
POLICY_VERSION = "agentroute.policy.version"
POLICY_WEIGHTS_HASH = "agentroute.policy.weights_hash"
BUDGET_BEFORE = "agentroute.budget.before"
BUDGET_RESERVATION = "agentroute.budget.reservation"
BUDGET_AFTER = "agentroute.budget.after"
COST_USD = "agentroute.cost.usd"
COST_USD_EXACT = "agentroute.cost.usd_exact"
USAGE_TOKENS = "agentroute.usage.tokens"
ROUTE_INDEX = "agentroute.route.index"
ROUTE_KIND = "agentroute.route.kind"
ROUTE_POINT = "agentroute.route.point"
ROUTE_CANDIDATES = "agentroute.route.candidates"
ROUTE_PROBABILITIES = "agentroute.route.probabilities"
ROUTE_SCORES = "agentroute.route.scores"
ROUTE_CANDIDATE_DETAILS = "agentroute.route.candidates.detail"
ROUTE_MASKED = "agentroute.route.masked"
ROUTE_MASKED_REASONS = "agentroute.route.masked.reasons"
ROUTE_CHOSEN = "agentroute.route.chosen"
ROUTE_REASON = "agentroute.route.reason"
ROUTE_PROPENSITY = "agentroute.route.propensity"
ROUTE_EXPLORED = "agentroute.route.explored"
ROUTE_QUALITY = "agentroute.route.quality"
ROUTE_EVIDENCE = "agentroute.route.evidence"
ROUTE_DECIDED_NS = "agentroute.route.decided_ns"
ROUTE_SHADOW = "agentroute.route.shadow"

_WEIGHTS_HASH = "weights_hash"
"""Evidence key a learned policy uses for its weights' hash: a column and an attribute of its own."""


def _same(value: Any) -> Any:
    return value


def _default(o: Any) -> Any:
    if isinstance(o, Decimal):
        return str(o)
    if isinstance(o, set | frozenset | tuple):
        return list(o)
    if hasattr(o, "as_dict"):
        return o.as_dict()
    if hasattr(o, "item"):  # numpy scalars
        return o.item()
    if hasattr(o, "tolist"):  # numpy arrays
        return o.tolist()
    return repr(o)


def dumps(value: Any) -> str:
    """Compact JSON (Decimals as strings) for attributes and JSON columns."""
    return json.dumps(value, default=_default, separators=(",", ":"), ensure_ascii=False)


def _loads(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _money(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _opt_dict(value: Any) -> dict[str, Any] | None:
    value = _loads(value)
    return None if value is None else dict(value)


def candidate_dict(c: Candidate, scrub: Scrub = _same) -> dict[str, Any]:
    """A candidate as plain values (prices as exact strings); only its descriptor is free-form."""
    return {
        "id": c.id,
        "kind": c.kind,
        "rank": c.rank,
        "input_price": None if c.input_price is None else str(c.input_price),
        "output_price": None if c.output_price is None else str(c.output_price),
        "cost_estimate": None if c.cost_estimate is None else str(c.cost_estimate),
        "latency_estimate": c.latency_estimate,
        "descriptor": scrub(dict(c.descriptor)) if c.descriptor else {},
    }


def candidate_from(d: Mapping[str, Any]) -> Candidate:
    """The inverse of :func:`candidate_dict`."""
    lat = d.get("latency_estimate")
    return Candidate(
        id=str(d["id"]),
        kind=d.get("kind", "model"),
        rank=int(d.get("rank", 0)),
        input_price=_money(d.get("input_price")),
        output_price=_money(d.get("output_price")),
        cost_estimate=_money(d.get("cost_estimate")),
        latency_estimate=None if lat is None else float(lat),
        descriptor=dict(d.get("descriptor") or {}),
    )


def _shadow_from(value: Any) -> dict[str, dict[str, Any]]:
    value = _loads(value)
    return {str(k): dict(v) for k, v in value.items()} if isinstance(value, Mapping) else {}


def _plain(v: Any) -> Any:
    """A JSON-like value as JSON would hold it (tuples as lists, mapping keys as strings)."""
    if isinstance(v, Mapping):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    return v


@dataclass(frozen=True, slots=True, eq=False)
class DecisionRecord:
    """One routing decision as the runtime recorded it: the policy's :class:`Decision` plus its context.

    ``probabilities`` holds one entry per candidate, in candidate order (a policy that leaves a candidate out gave
    it 0). Conversions: :meth:`to_dict`/:meth:`from_dict` (exports, JSON), :meth:`to_attributes`/
    :meth:`from_attributes` (span attributes), :meth:`to_row`/:meth:`from_row` (the store's decision row).
    Two records are equal when every field is, free-form values (descriptors, evidence, budget snapshots)
    compared as JSON holds them (a tuple equals the list of the same items); :attr:`task` is not compared.
    """

    task_id: str
    index: int
    kind: Kind
    point: str
    node: str
    step: int
    chosen: str
    probabilities: Mapping[str, float]
    scores: Mapping[str, float]
    reason: str
    policy: str
    policy_version: str
    explored: bool
    candidates: tuple[Candidate, ...]
    masked: tuple[Masked, ...]
    budget_before: Mapping[str, Any]
    budget_after: Mapping[str, Any] | None = None
    reservation: Mapping[str, Any] | None = None
    cost_usd: Decimal | None = None
    tokens: int = 0
    quality: float | None = None
    evidence: Mapping[str, Any] = field(default_factory=dict)
    decided_ns: int = 0
    """When the policy decided (``time.time_ns()``); the record itself is emitted once the step settled."""
    shadow: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """What each shadow policy would have chosen on the same observation, by shadow name:
    ``{"chosen": id, "probabilities": {id: p}}`` (``{"error": text}`` when it raised). Never acted on."""
    task: Mapping[str, Any] = field(default_factory=dict, compare=False)
    """What the store knows of the decision's task (graph, features, text, status, quality, spend, truncation):
    filled when the record is read back from the store, empty in a live run; not part of equality."""

    def __post_init__(self) -> None:
        p = self.probabilities
        if len(p) != len(self.candidates) or any(c.id not in p for c in self.candidates):
            object.__setattr__(self, "probabilities", {c.id: float(p.get(c.id, 0.0)) for c in self.candidates})

    def _key(self) -> tuple[Any, ...]:
        cands = tuple((c.id, c.kind, c.rank, c.input_price, c.output_price, c.cost_estimate, c.latency_estimate,
                       _plain(c.descriptor)) for c in self.candidates)
        return (self.task_id, self.index, self.kind, self.point, self.node, self.step, self.chosen,
                dict(self.probabilities), dict(self.scores), self.reason, self.policy, self.policy_version,
                bool(self.explored), cands, tuple(self.masked), _plain(self.budget_before), _plain(self.budget_after),
                _plain(self.reservation), self.cost_usd, self.tokens, self.quality, _plain(self.evidence),
                self.decided_ns, _plain(self.shadow))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DecisionRecord):
            return NotImplemented
        return self._key() == other._key()

    __hash__ = None  # type: ignore[assignment]  # mutable mappings inside: not hashable

    @property
    def propensity(self) -> float:
        """Probability the policy gave to the option it chose (for off-policy evaluation)."""
        return float(self.probabilities.get(self.chosen, 0.0))

    @property
    def weights_hash(self) -> str | None:
        """The hash of the policy's weights, when the policy recorded one in its evidence."""
        h = self.evidence.get(_WEIGHTS_HASH)
        return None if h is None else str(h)

    # -- plain values --------------------------------------------------------------------------------------------
    def to_dict(self, scrub: Scrub = _same) -> dict[str, Any]:
        """Every field as JSON-ready values (money as exact strings); ``propensity`` added for convenience."""
        d: dict[str, Any] = {
            "task_id": self.task_id,
            "index": self.index,
            "kind": self.kind,
            "point": self.point,
            "node": self.node,
            "step": self.step,
            "chosen": self.chosen,
            "propensity": self.propensity,
            "probabilities": {k: float(v) for k, v in self.probabilities.items()},
            "scores": {k: float(v) for k, v in self.scores.items()},
            "reason": scrub(self.reason),
            "policy": self.policy,
            "policy_version": self.policy_version,
            "explored": bool(self.explored),
            "candidates": [candidate_dict(c, scrub) for c in self.candidates],
            "masked": [{"id": m.id, "reason": scrub(m.reason)} for m in self.masked],
            "budget_before": dict(self.budget_before),
            "budget_after": None if self.budget_after is None else dict(self.budget_after),
            "reservation": None if self.reservation is None else dict(self.reservation),
            "cost_usd": None if self.cost_usd is None else str(self.cost_usd),
            "tokens": int(self.tokens),
            "quality": None if self.quality is None else float(self.quality),
            "evidence": scrub(dict(self.evidence)) if self.evidence else {},
            "decided_ns": int(self.decided_ns),
            "shadow": _plain(self.shadow),
        }
        if self.task:
            d["task"] = dict(self.task)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DecisionRecord:
        """The inverse of :meth:`to_dict` (``propensity`` is derived, so it is ignored)."""
        quality = d.get("quality")
        return cls(
            task_id=str(d["task_id"]),
            index=int(d["index"]),
            kind=d["kind"],
            point=str(d["point"]),
            node=str(d["node"]),
            step=int(d["step"]),
            chosen=str(d["chosen"]),
            probabilities={str(k): float(v) for k, v in (d.get("probabilities") or {}).items()},
            scores={str(k): float(v) for k, v in (d.get("scores") or {}).items()},
            reason=str(d.get("reason") or ""),
            policy=str(d.get("policy") or ""),
            policy_version=str(d.get("policy_version") or ""),
            explored=bool(d.get("explored", False)),
            candidates=tuple(candidate_from(c) for c in d.get("candidates") or ()),
            masked=tuple(Masked(str(m["id"]), str(m.get("reason", ""))) for m in d.get("masked") or ()),
            budget_before=dict(d.get("budget_before") or {}),
            budget_after=_opt_dict(d.get("budget_after")),
            reservation=_opt_dict(d.get("reservation")),
            cost_usd=_money(d.get("cost_usd")),
            tokens=int(d.get("tokens") or 0),
            quality=None if quality is None else float(quality),
            evidence=dict(d.get("evidence") or {}),
            decided_ns=int(d.get("decided_ns") or 0),
            shadow=_shadow_from(d.get("shadow")),
            task=dict(d.get("task") or {}),
        )

    # -- span attributes -----------------------------------------------------------------------------------------
    def to_attributes(self, scrub: Scrub = _same) -> dict[str, Any]:
        """The attributes of this decision's ``route`` span: scalars and flat lists; structures as JSON strings."""
        ids = [c.id for c in self.candidates]
        probs = self.probabilities
        evidence = dict(self.evidence)
        weights_hash = evidence.pop(_WEIGHTS_HASH, None)
        attrs: dict[str, Any] = {
            RECORD: "decision",
            TASK_ID: self.task_id,
            ROUTE_INDEX: self.index,
            ROUTE_KIND: self.kind,
            ROUTE_POINT: self.point,
            GRAPH_NODE: self.node,
            STEP_INDEX: self.step,
            ROUTE_CANDIDATES: ids,
            ROUTE_PROBABILITIES: [float(probs.get(i, 0.0)) for i in ids],
            ROUTE_SCORES: dumps({k: float(v) for k, v in self.scores.items()}),
            ROUTE_CANDIDATE_DETAILS: dumps([candidate_dict(c, scrub) for c in self.candidates]),
            ROUTE_CHOSEN: self.chosen,
            ROUTE_REASON: scrub(self.reason),
            ROUTE_PROPENSITY: self.propensity,
            ROUTE_EXPLORED: bool(self.explored),
            POLICY_NAME: self.policy,
            POLICY_VERSION: self.policy_version,
            BUDGET_BEFORE: dumps(self.budget_before),
            USAGE_TOKENS: int(self.tokens),
        }
        if self.decided_ns:
            attrs[ROUTE_DECIDED_NS] = int(self.decided_ns)
        if self.masked:
            attrs[ROUTE_MASKED] = [m.id for m in self.masked]
            attrs[ROUTE_MASKED_REASONS] = [scrub(m.reason) for m in self.masked]
        if weights_hash is not None:
            attrs[POLICY_WEIGHTS_HASH] = str(weights_hash)
        if self.reservation is not None:
            attrs[BUDGET_RESERVATION] = dumps(self.reservation)
        if self.budget_after is not None:
            attrs[BUDGET_AFTER] = dumps(self.budget_after)
        if self.cost_usd is not None:
            attrs[COST_USD] = float(self.cost_usd)
            attrs[COST_USD_EXACT] = str(self.cost_usd)
        if self.quality is not None:
            attrs[ROUTE_QUALITY] = float(self.quality)
        if evidence:
            attrs[ROUTE_EVIDENCE] = dumps(scrub(evidence))
        if self.shadow:
            attrs[ROUTE_SHADOW] = dumps(self.shadow)
        return attrs

    @classmethod
    def from_attributes(cls, a: Mapping[str, Any]) -> DecisionRecord:
        """The record a ``route`` span carries."""
        ids = list(a.get(ROUTE_CANDIDATES, ()))
        details = _loads(a.get(ROUTE_CANDIDATE_DETAILS)) or [{"id": i} for i in ids]
        masked_ids = list(a.get(ROUTE_MASKED, ()))
        reasons = list(a.get(ROUTE_MASKED_REASONS, ()))
        evidence = dict(_loads(a.get(ROUTE_EVIDENCE)) or {})
        if a.get(POLICY_WEIGHTS_HASH) is not None:
            evidence[_WEIGHTS_HASH] = a[POLICY_WEIGHTS_HASH]
        quality = a.get(ROUTE_QUALITY)
        return cls(
            task_id=str(a.get(TASK_ID, "")),
            index=int(a.get(ROUTE_INDEX, 0)),
            kind=a.get(ROUTE_KIND, "model"),
            point=str(a.get(ROUTE_POINT, "")),
            node=str(a.get(GRAPH_NODE, "")),
            step=int(a.get(STEP_INDEX, 0)),
            chosen=str(a.get(ROUTE_CHOSEN, "")),
            probabilities=dict(zip(ids, (float(p) for p in a.get(ROUTE_PROBABILITIES, ())), strict=False)),
            scores=dict(_loads(a.get(ROUTE_SCORES)) or {}),
            reason=str(a.get(ROUTE_REASON, "")),
            policy=str(a.get(POLICY_NAME, "")),
            policy_version=str(a.get(POLICY_VERSION, "")),
            explored=bool(a.get(ROUTE_EXPLORED, False)),
            candidates=tuple(candidate_from(c) for c in details),
            masked=tuple(Masked(str(i), str(r)) for i, r in zip(masked_ids, reasons, strict=False)),
            budget_before=dict(_loads(a.get(BUDGET_BEFORE)) or {}),
            budget_after=_opt_dict(a.get(BUDGET_AFTER)),
            reservation=_opt_dict(a.get(BUDGET_RESERVATION)),
            cost_usd=_money(a.get(COST_USD_EXACT)),
            tokens=int(a.get(USAGE_TOKENS, 0)),
            quality=None if quality is None else float(quality),
            evidence=evidence,
            decided_ns=int(a.get(ROUTE_DECIDED_NS) or 0),
            shadow=_shadow_from(a.get(ROUTE_SHADOW)),
        )

    # -- the store's row -----------------------------------------------------------------------------------------
    def to_row(self, scrub: Scrub = _same) -> dict[str, Any]:
        """The decision row of the store, as plain values keyed by column (JSON columns hold Python values).

        The store adds what the record does not know: ``graph`` (the task's) and ``at_ns`` (its span's time).
        """
        ids = [c.id for c in self.candidates]
        evidence = dict(self.evidence)
        weights_hash = evidence.pop(_WEIGHTS_HASH, None)
        return {
            "task_id": self.task_id,
            "idx": self.index,
            "kind": self.kind,
            "point": self.point,
            "node": self.node,
            "step": self.step,
            "chosen": self.chosen,
            "reason": scrub(self.reason),
            "policy": self.policy,
            "policy_version": self.policy_version,
            "weights_hash": None if weights_hash is None else str(weights_hash),
            "explored": bool(self.explored),
            "propensity": self.propensity,
            "candidates": ids,
            "probabilities": [float(self.probabilities.get(i, 0.0)) for i in ids],
            "scores": {k: float(v) for k, v in self.scores.items()},
            "candidate_details": [candidate_dict(c, scrub) for c in self.candidates],
            "masked": [{"id": m.id, "reason": scrub(m.reason)} for m in self.masked],
            "budget_before": dict(self.budget_before),
            "reservation": None if self.reservation is None else dict(self.reservation),
            "budget_after": None if self.budget_after is None else dict(self.budget_after),
            "cost_usd": None if self.cost_usd is None else str(self.cost_usd),
            "tokens": int(self.tokens),
            "quality": None if self.quality is None else float(self.quality),
            "evidence": scrub(evidence) if evidence else None,
            "decided_ns": int(self.decided_ns),
            "shadow": _plain(self.shadow) if self.shadow else None,
        }

    @classmethod
    def from_row(cls, row: Mapping[str, Any], task: Mapping[str, Any] | None = None) -> DecisionRecord:
        """The record a decision row holds; ``task`` (the task's stored facts) fills :attr:`task`."""
        ids = list(_loads(row.get("candidates")) or ())
        details = _loads(row.get("candidate_details")) or [{"id": i} for i in ids]
        evidence = dict(_loads(row.get("evidence")) or {})
        if row.get("weights_hash") is not None:
            evidence[_WEIGHTS_HASH] = row["weights_hash"]
        probs: Sequence[Any] = _loads(row.get("probabilities")) or ()
        quality = row.get("quality")
        return cls(
            task_id=str(row["task_id"]),
            index=int(row["idx"]),
            kind=row["kind"],
            point=str(row["point"]),
            node=str(row["node"]),
            step=int(row["step"]),
            chosen=str(row["chosen"]),
            probabilities=dict(zip(ids, (float(p) for p in probs), strict=False)),
            scores=dict(_loads(row.get("scores")) or {}),
            reason=str(row.get("reason") or ""),
            policy=str(row.get("policy") or ""),
            policy_version=str(row.get("policy_version") or ""),
            explored=bool(row.get("explored")),
            candidates=tuple(candidate_from(c) for c in details),
            masked=tuple(Masked(str(m.get("id")), str(m.get("reason", ""))) for m in _loads(row.get("masked")) or ()),
            budget_before=dict(_loads(row.get("budget_before")) or {}),
            budget_after=_opt_dict(row.get("budget_after")),
            reservation=_opt_dict(row.get("reservation")),
            cost_usd=_money(row.get("cost_usd")),
            tokens=int(row.get("tokens") or 0),
            quality=None if quality is None else float(quality),
            evidence=evidence,
            decided_ns=int(row.get("decided_ns") or 0),
            shadow=_shadow_from(row.get("shadow")),
            task=dict(task or {}),
        )


__all__ = ["DecisionRecord", "Scrub", "candidate_dict", "candidate_from", "dumps"]
