"""One instance of every policy family, the observations the contract suite shows them, and the graphs they bind to.

Every family gets the same observations: model-tier points (all options, two of them, one, and with the strongest
masked), an agent point and memory-tier points (a real :class:`~agentroute.memory.Memory` recall), so each must
cope with points it does not route (by deferring) as well as with the ones it does.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "memory"))  # the memory tests' conversation
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "learn"))  # the learn tests' topic table

from learn_helpers import OPTIONS, make_table
from mem_helpers import memory

from agentroute.budget import Budget, BudgetStatus, Spend
from agentroute.features import HashingFeaturizer
from agentroute.routing import Candidate, GraphSpec, Masked, Observation, TaskInfo

REPO = Path(__file__).resolve().parents[2]
TABLE = make_table(150, seed=11)
SCALE = TABLE.cost_scale()
MEM = memory()
FREE = BudgetStatus(limits=Budget(), spent=Spend(), remaining=Budget())
TEXTS = [
    ("prove the theorem by induction", "proof"),
    ("add the sum of the digits plus total", "arith"),
    ("which river is the capital near", "trivia"),
    ("refund my invoice please, billing charged twice", None),
]
PRICE = {"small": "0.00001", "medium": "0.00005", "large": "0.0003"}


def model_obs(text: str, category: str | None, ids: tuple[str, ...] = tuple(OPTIONS), *, tid: str = "t",
              masked: tuple[Masked, ...] = (), extra: dict[str, Any] | None = None, point: str = "answer.model",
              history: tuple[tuple[str, str], ...] = ()) -> Observation:
    cands = tuple(Candidate(o, "model", rank=OPTIONS.index(o), cost_estimate=Decimal(PRICE[o]),
                            descriptor={"model": o}) for o in ids)
    return Observation(TaskInfo(tid, text, category), "model", point, "answer", len(history), history, FREE, cands,
                       masked, dict(extra or {}))


def agent_obs(text: str, tid: str = "t") -> Observation:
    cands = (Candidate("__end__", "agent", rank=0, cost_estimate=Decimal(0), descriptor={"default": False}),
             Candidate("answer", "agent", rank=1, cost_estimate=Decimal("0.0001"), descriptor={"default": True}),
             Candidate("expert", "agent", rank=2, cost_estimate=Decimal("0.001")))
    return Observation(TaskInfo(tid, text), "agent", "route:triage", "triage", 1, (), FREE, cands)


def memory_obs(question: str, module: str = "retrieve", tid: str = "t") -> Observation:
    from agentroute.memory.routing import memory_observation

    state = MEM.start(question)
    for m in ("retrieve", "filter", "link", "time"):
        if m == module:
            break
        state = MEM.run_module(m, "mid", question, state)
    return memory_observation(MEM, module, state, budget=FREE, task_id=tid)


def observations() -> list[Observation]:
    """The observations every family decides on, in order (ids repeat, so path learners see whole tasks)."""
    out: list[Observation] = []
    for i, (text, cat) in enumerate(TEXTS):
        tid = f"t{i}"
        out.append(agent_obs(text, tid))
        out.append(model_obs(text, cat, tid=tid, history=(("route:triage", "answer"),)))
        out.append(model_obs(text, cat, ("small", "large"), tid=tid, extra={"cost_weight": 0.5 / SCALE}))
        out.append(model_obs(text, cat, ("small", "medium"), tid=tid,
                             masked=(Masked("large", "unaffordable: $0.0003 > $0.0002 left"),)))
        out.append(model_obs(text, cat, ("medium",), tid=tid))
    for i, q in enumerate(MEM.conversation.questions[:3]):
        for m in ("retrieve", "time"):
            out.append(memory_obs(q.question, m, tid=f"m{i}"))
    return out


GOOD_SPEC = GraphSpec("contract", ["triage", "answer", "expert"], list(OPTIONS),
                      points={"route:triage": ["answer", "expert", "__end__"]})
MODEL_SPEC = GraphSpec("by-model", ["answer"], ["cheap", "dear"], models={"cheap": "small", "dear": "large"})
BAD_SPEC = GraphSpec("other", ["triage", "answer"], ["tiny", "huge"], models={"tiny": "x/tiny", "huge": "x/huge"})


@dataclass
class Family:
    """A policy family for the contract suite: how to build one, and what it declares."""

    name: str
    build: Callable[[], Any]
    capabilities: set[str] = field(default_factory=set)
    """The optional capabilities it implements (beyond PolicyBase's defaults)."""
    names_options: bool = False
    """Whether it names options a graph must have (then BAD_SPEC must be refused at bind)."""


def _fitted(name: str, **kw: Any) -> Callable[[], Any]:
    def build() -> Any:
        from agentroute.policies import make_router

        r = make_router(name, seed=0, **kw)
        if r.uses_features and r.featurizer is None and r.dense_features:
            r.featurizer = HashingFeaturizer(256, n_components=16, seed=0)
        return r.fit(TABLE)

    return build


def _learned(graph: bool = False) -> Callable[[], Any]:
    def build() -> Any:
        from agentroute.policies._graph_obs import GraphObsSpec
        from agentroute.policies.learned import LearnedPolicy

        feat = HashingFeaturizer(128, n_components=8, seed=0).fit(TABLE.texts, TABLE.categories)
        rng = np.random.default_rng(3)
        card: dict[str, Any] = {"algo": "ppo", "featurizer": feat.to_dict(), "cost_scale_usd": SCALE,
                                "cost_weight_range": [0.0, 1.0], "observe_cost_weight": True}
        if graph:
            spec = GraphObsSpec.for_app(type("App", (), {"spec": GOOD_SPEC})(), feature_dim=feat.dim,
                                        cost_scale_usd=SCALE, observe_cost_weight=True, cost_weight_range=(0.0, 1.0))
            card.update(options=list(spec.actions), obs={"kind": "graph", "spec": spec.to_dict()})
            n_in, n_out = spec.input_dim, len(spec.actions)
        else:
            card.update(options=list(OPTIONS), obs={"kind": "query"},
                        option_costs_usd=[float(v) for v in TABLE.cost.mean(axis=0)])
            n_in, n_out = feat.dim + 1, len(OPTIONS)
        layers = [(rng.normal(size=(n_in, 16)).astype(np.float32), rng.normal(size=16).astype(np.float32)),
                  (rng.normal(size=(16, n_out)).astype(np.float32), rng.normal(size=n_out).astype(np.float32))]
        return LearnedPolicy(layers, card, deterministic=not graph, seed=5)

    return build


def _memory(kind: str) -> Callable[[], Any]:
    def build() -> Any:
        from agentroute.memory.evaluate import combo_table
        from agentroute.memory.features import N_FEATURES
        from agentroute.memory.fitted import FittedQPolicy, collect
        from agentroute.memory.policies import MemoryRulePolicy, MLPPolicy, PredictivePolicy
        from agentroute.policies import Fixed

        unit = float(MEM.usd(1000))
        if kind == "rule":
            return MemoryRulePolicy.fit(combo_table([MEM]), cost_weight=0.2 / unit, mix=0.5)
        if kind in ("ridge", "knn"):
            return PredictivePolicy.fit(combo_table([MEM]), method=kind, cost_weight=0.2 / unit, unit_usd=unit, k=3)
        if kind == "fitted-q":
            return FittedQPolicy.fit(collect([MEM]), cost_weight=0.2 / unit, alpha=10.0)
        rng = np.random.default_rng(0)
        layers = [(rng.normal(size=(N_FEATURES, 8)), rng.normal(size=8)), (rng.normal(size=(8, 3)), np.zeros(3))]
        return MLPPolicy(layers, layout="in_out", meta={"trained_with": "ppo"}, fallback=Fixed("medium"))

    return build


def _pheromone() -> Any:
    from agentroute.policies import PheromonePolicy

    p = PheromonePolicy(asynchronous=False, seed=7, task_types=["proof", "arith", "trivia"], cost_weight=0.1 / SCALE,
                        cost_scale=SCALE)
    p.fit_intent(TABLE.texts, TABLE.categories)
    p.warm_up(TABLE, point="answer.model")
    return p


def _bandit(kind: str) -> Callable[[], Any]:
    def build() -> Any:
        from agentroute.policies import LinUCBPolicy, ThompsonPolicy

        cls = ThompsonPolicy if kind == "thompson" else LinUCBPolicy
        return cls(None, HashingFeaturizer(256, n_components=8, seed=0), 0.5, None, 0).fit(TABLE)

    return build


def _baseline(name: str) -> Callable[[], Any]:
    def build() -> Any:
        from agentroute import policies as P

        return {"random": lambda: P.Random(seed=3), "cheapest": P.Cheapest, "strongest": P.Strongest,
                "fixed": lambda: P.Fixed("large", fallback=P.Random(seed=1)),
                "declared-default": P.DeclaredDefault}[name]()

    return build


def _rules() -> Any:
    from agentroute.policies import load_policy

    return load_policy(REPO / "policies" / "support.yaml")


def _cascade() -> Any:
    from agentroute.policies import CascadePolicy, Fixed

    return CascadePolicy(threshold=0.7, base=Fixed("expert"))


def _deadline() -> Any:
    from agentroute.policies import Cheapest, WithDeadline, load_policy

    # a generous deadline: the contract holds for the wrapped rules; tests/policies/test_deadline.py makes it miss
    return WithDeadline(load_policy(REPO / "policies" / "support.yaml"), micros=30_000_000, fallback=Cheapest())


def _target(kind: str) -> Callable[[], Any]:
    def build() -> Any:
        from agentroute.policies import TargetShare, TargetSpend

        inner = _bandit("linucb")() if kind == "spend" else _fitted("linear")()
        if kind == "spend":
            return TargetSpend(inner, usd_per_task=float(TABLE.cost.mean()), warmup=2)
        return TargetShare(inner, strong_share=0.3, warmup=2)

    return build


def _preference() -> Any:
    from agentroute.policies import load_policy

    return load_policy(REPO / "policies" / "preferences.yaml", encoder="hashing")  # no model load in the suite


def _logged() -> Any:
    from agentroute.policies.logged import LoggedQPolicy, ObsFeatures, RewardModel

    # a reward model as `fit --logged` fits one: rows of logged decisions at the model points of the suite
    obs = [o for o in observations() if o.kind == "model"]
    feats = ObsFeatures.learn(obs)
    rows = [(feats.vector(o), RewardModel.key(o.point, c.id), 0.3 + 0.2 * c.rank + 0.01 * i,
             float(c.cost_estimate or 0)) for i, o in enumerate(obs) for c in o.candidates]
    model = RewardModel.fit(np.array([r[0] for r in rows]), [r[1] for r in rows], np.array([r[2] for r in rows]),
                            np.array([r[3] for r in rows]))
    return LoggedQPolicy(feats, model, cost_weight=100.0)


def _explore() -> Any:
    from agentroute.policies.explore import EpsilonGreedy

    return EpsilonGreedy(_rules(), 0.2, seed=3)


TABLE_CAPS = {"bind", "predict_outcomes"}
FAMILIES: list[Family] = [
    Family("rules", _rules, {"bind"}, names_options=True),
    Family("cascade", _cascade, {"bind", "accept"}, names_options=True),
    Family("preference", _preference, {"bind"}, names_options=True),
    Family("deadline", _deadline, {"bind", "accept", "feedback", "on_task_end"}, names_options=True),
    Family("target:spend", _target("spend"), {"bind", "accept", "feedback", "on_task_end"}, names_options=True),
    Family("target:share", _target("share"), {"bind", "accept", "feedback", "on_task_end"}, names_options=True),
    Family("baseline:random", _baseline("random")),
    Family("baseline:cheapest", _baseline("cheapest")),
    Family("baseline:strongest", _baseline("strongest")),
    Family("baseline:fixed", _baseline("fixed"), {"bind"}, names_options=True),
    Family("baseline:declared-default", _baseline("declared-default")),
    Family("predictive:knn", _fitted("knn"), TABLE_CAPS, names_options=True),
    Family("predictive:linear", _fitted("linear"), TABLE_CAPS, names_options=True),
    Family("predictive:mlp", _fitted("mlp", epochs=5), TABLE_CAPS, names_options=True),
    Family("predictive:cheapest", _fitted("cheapest"), TABLE_CAPS, names_options=True),
    Family("predictive:random", _fitted("random"), TABLE_CAPS, names_options=True),
    Family("predictive:prior", _fitted("prior", folds=2), TABLE_CAPS, names_options=True),
    Family("predictive:graph", _fitted("graph", epochs=5), TABLE_CAPS, names_options=True),
    Family("predictive:text", _fitted("text", folds=2), TABLE_CAPS, names_options=True),
    Family("predictive:ensemble", _fitted("ensemble", members=("prior", "linear"), weights=(1, 1)), TABLE_CAPS,
           names_options=True),
    Family("bandit:linucb", _bandit("linucb"), TABLE_CAPS | {"feedback"}, names_options=True),
    Family("bandit:thompson", _bandit("thompson"), TABLE_CAPS | {"feedback"}, names_options=True),
    Family("learned:query", _learned(), {"bind"}, names_options=True),
    Family("learned:graph", _learned(graph=True), {"bind"}, names_options=True),
    Family("pheromone", _pheromone, {"feedback", "on_task_end"}),
    Family("logged:q-linear", _logged, {"bind"}, names_options=True),
    Family("explore:epsilon-greedy", _explore, {"bind"}, names_options=True),
    Family("memory:rule", _memory("rule"), {"bind"}),
    Family("memory:ridge", _memory("ridge"), {"bind"}),
    Family("memory:knn", _memory("knn"), {"bind"}),
    Family("memory:fitted-q", _memory("fitted-q"), {"bind"}),
    Family("memory:mlp", _memory("mlp"), {"bind"}, names_options=True),
]
