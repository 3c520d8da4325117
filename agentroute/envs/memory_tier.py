"""``agentroute/MemoryTier-v0``: choose a budget tier for each memory module, one question per episode.

An episode draws one graded question from the conversations; each step picks the tier (``Discrete(3)``: low, mid,
high) of the next module (retrieve, filter, link, time), and the memory runs it for real. Every step is a routing
point of the kernel (:class:`~agentroute.routing.TaskRouter`) on a real :class:`~agentroute.budget.Ledger`, with the
options, masks, reservations and settlement of a graph run (:mod:`agentroute.memory._bound`) and its point names
(``<agent>.memory.<module>``, ``agent="answer"`` unless told). The observation is
:func:`agentroute.memory.features.observation_features` of that very :class:`~agentroute.routing.Observation`, so a
policy trained here is served unchanged. ``action_masks()`` marks the tiers whose worst case fits what is left; an
unaffordable action is taken as the strongest affordable tier below it. When no tier of the next module is
affordable the episode is *truncated* and scored on what was recalled. The cost of a step is what the ledger booked
for it (a module that shortened the context books 0, as in a graph run); the memories' prices must be known.

Rewards (``quality = mix * evidence recall + (1 - mix) * answer recall``):

* ``"tradeoff"`` — ``quality - cost_weight * cost``, the cost paid step by step and the quality at the end. **λ
  (``cost_weight``) is per USD**; ``cost_unit="scale"`` restores the former unit (1,000 context tokens at the
  answering model's price);
* ``"budgetmem"`` — after BudgetMem (Zhang et al., 2026): ``quality + cost_weight * alpha * r_cost`` at the end, with
  ``r_cost = 1 - normalised(sqrt(cost))`` normalised between the 5th and 95th percentiles of a sliding window of
  recent costs, and ``alpha = std(quality) / std(r_cost)`` over the same window (scale alignment), so the cost term
  can never swamp the task term and the router does not collapse to the cheapest tiers. It is
  :class:`agentroute.envs.rewards.BudgetMemReward`, the one BudgetMem reward of every environment. Here λ weighs a
  normalised cost reward and has no unit: it means the same whatever the cost unit.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from agentroute.budget import Budget, Ledger
from agentroute.envs.rewards import BudgetMemReward
from agentroute.errors import ConfigError, DataError
from agentroute.memory import MODULE_NAMES, TIERS, Conversation, Memory, MemoryConfig, load_conversations
from agentroute.memory._bound import memory_point, module_options, observation_extra, settle_module
from agentroute.memory._data import split
from agentroute.memory.evaluate import gradable, score
from agentroute.memory.features import N_FEATURES, observation_features
from agentroute.memory.policies import quality
from agentroute.memory.routing import DEFAULT_AGENT
from agentroute.routing import Decision, Observation, Pending, TaskInfo, TaskRouter, one_hot

REWARDS = ("budgetmem", "tradeoff")
COST_UNITS = ("usd", "scale")


class MemoryTierEnv(gym.Env[np.ndarray, np.int64]):
    """Per-module memory tier choice on graded conversations (LoCoMo by default: the training split)."""

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 - Gymnasium's convention

    def __init__(
        self,
        conversations: Sequence[Conversation | Memory] | str | None = None,
        *,
        split_name: str = "train",
        reward: str = "budgetmem",
        cost_weight: float = 0.2,
        mix: float = 0.5,
        budget_usd: float | tuple[float, float] | None = None,
        window: int = 2000,
        categories: Sequence[int] | None = None,
        config: MemoryConfig | None = None,
        cost_unit: str = "usd",
        agent: str = DEFAULT_AGENT,
    ) -> None:
        if reward not in REWARDS:
            raise ConfigError(f"unknown reward {reward!r}", name=reward, hint=f"one of {', '.join(REWARDS)}")
        if cost_weight < 0 or not 0.0 <= mix <= 1.0:
            raise ConfigError("cost_weight must be >= 0 and mix in [0, 1]", name="cost_weight")
        if cost_unit not in COST_UNITS:
            raise ConfigError(f"cost_unit={cost_unit!r}: use 'usd' (λ per USD) or 'scale' (per 1,000 context "
                              "tokens)", name="cost_unit")
        self.memories = _memories(conversations, split_name, config)
        for mem in self.memories:
            for which in ("context", "call"):
                if mem.prices(which) is None:
                    raise ConfigError(
                        f"memory {mem.conversation.id!r}: no known price for its {which} model, so its costs are "
                        "unknown and no reward can price them", name=which,
                        hint='pass Memory(..., prices={"context": (in, out), "call": (in, out)})')
        wanted = set(categories) if categories else None
        self.items = [
            (m, i, q)
            for m, mem in enumerate(self.memories)
            for i, q in gradable(mem.conversation.questions)
            if wanted is None or q.category in wanted
        ]
        if not self.items:
            raise DataError("no graded questions to draw episodes from", name="conversations")
        self.reward_mode = reward
        self.cost_weight = float(cost_weight)
        self.mix = float(mix)
        self.budget_usd = budget_usd
        self.cost_unit = cost_unit
        self.agent = agent
        self.scale_usd = float(self.memories[0].usd(1000) or 1.0)
        """The former cost unit: 1,000 context tokens at the answering model's input price."""
        self.unit_usd = 1.0 if cost_unit == "usd" else self.scale_usd
        """USD per unit of cost in rewards: 1 (λ per USD) unless ``cost_unit="scale"``."""
        self._budgetmem = BudgetMemReward(window=window)
        self.observation_space = spaces.Box(-1.0, 1.0, shape=(N_FEATURES,), dtype=np.float32)
        self.action_space = spaces.Discrete(len(TIERS))
        self._obs: Observation | None = None
        self._pending: Pending | None = None
        self._router: TaskRouter | None = None
        self._module = 0
        self._done = True

    def describe(self) -> dict[str, Any]:
        """What a trained policy's card records about this environment (its options are the tier names)."""
        return {
            "env": "agentroute/MemoryTier-v0",
            "options": list(TIERS),
            "modules": list(MODULE_NAMES),
            "reward": self.reward_mode,
            "cost_weight": self.cost_weight,
            "cost_weight_range": [self.cost_weight, self.cost_weight],
            "cost_weight_unit": "usd" if self.cost_unit == "usd" else "1k-context-tokens",
            "mix": self.mix,
            "cost_scale_usd": self.scale_usd,
            "agent": self.agent,
            "questions": len(self.items),
        }

    # -- episode ---------------------------------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Draw a question (or take ``options["item"]``, an index into ``self.items``) and a budget."""
        super().reset(seed=seed)
        j = int(options["item"]) if options and "item" in options else int(self.np_random.integers(len(self.items)))
        m, qi, q = self.items[j]
        self._memory = self.memories[m]
        self._question = q
        self._task = f"{self._memory.conversation.id}:{qi}"
        b = self.budget_usd
        if isinstance(b, tuple):
            b = float(self.np_random.uniform(b[0], b[1]))
        self._limit = None if b is None else Decimal(str(round(b, 9)))
        self._ledger = Ledger(Budget(usd=self._limit))
        self._router = TaskRouter(self._ledger, None, TaskInfo(id=self._task, text=q.question), node=self.agent,
                                  record=False, learn=False)
        self._state = self._memory.start(q.question)
        self._module = 0
        self._done = False
        obs = self._observe()
        return observation_features(obs), {"question": q.question, "category": q.category, "task": self._task}

    def step(self, action: np.int64 | int) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        """Run the current module at the chosen tier (downgraded if unaffordable)."""
        if self._done or self._obs is None:
            raise ConfigError("step() called on a finished episode; call reset() first", name="MemoryTierEnv")
        obs = self._obs
        if not obs.candidates:  # the budget drawn cannot pay even the cheapest tier: nothing is recalled
            info: dict[str, Any] = {"module": MODULE_NAMES[self._module], "tier": None, "downgraded": False}
            self._done = True
            return observation_features(obs), self._final(info), False, True, info
        want = TIERS[int(action)]
        tier = want
        if obs.candidate(want) is None:
            below = [c for c in obs.candidates if c.rank < TIERS.index(want)]
            tier = (max(below, key=lambda c: c.rank) if below else min(obs.candidates, key=lambda c: c.rank)).id
        module = MODULE_NAMES[self._module]
        assert self._router is not None and self._pending is not None
        choice = self._router.take(self._pending, Decision(tier, one_hot(obs, tier), reason=f"env action {want}"))
        self._state = self._memory.run_module(module, tier, self._question.question, self._state)
        settle_module(choice, self._memory, self._state)
        step_usd = choice.cost_usd
        assert step_usd is not None  # prices are known (checked at construction)
        self._module += 1
        info = {"module": module, "tier": tier, "downgraded": tier != want}
        reward = 0.0
        if self.reward_mode == "tradeoff":
            reward -= self.cost_weight * float(step_usd) / self.unit_usd
        truncated = False
        terminated = self._module >= len(MODULE_NAMES)
        if not terminated:
            nxt = self._observe()
            truncated = not nxt.candidates
        if terminated or truncated:
            reward += self._final(info)
            self._done = True
        return observation_features(self._obs), reward, terminated, truncated, info

    def _final(self, info: dict[str, Any]) -> float:
        recall = self._memory.finish(self._state)
        ev, ans = score(self._question, recall)
        q = float(quality(ev, ans, self.mix))
        cost = float(self._ledger.spent.usd or 0)  # known: prices are checked at construction
        units = cost / self.unit_usd
        info.update(
            evidence_recall=ev, answer_recall=ans, quality=q, cost_usd=cost, cost_units=units,
            cost_tokens=recall.tokens, category=self._question.category, tiers=dict(self._state.tiers),
        )
        if self.reward_mode == "tradeoff":
            return q
        r = self._budgetmem(q, cost / self.scale_usd, self.cost_weight)  # normalised: the same in any unit
        info.update(r_cost=self._budgetmem.last_efficiency, alpha=self._budgetmem.alpha)
        return r

    def _observe(self) -> Observation:
        module = MODULE_NAMES[self._module] if self._module < len(MODULE_NAMES) else MODULE_NAMES[-1]
        assert self._router is not None
        self._pending = self._router.observe(
            "memory", memory_point(self.agent, module), module_options(self._memory, module, self._state),
            extra=observation_extra(self._memory, module, self._state))
        self._obs = self._pending.observation
        return self._obs

    def action_masks(self) -> np.ndarray:
        """Which tiers the current module can afford (all True after the episode ended)."""
        if self._obs is None or self._done:
            return np.ones(len(TIERS), dtype=bool)
        ids = set(self._obs.ids)
        return np.asarray([t in ids for t in TIERS], dtype=bool)


def _memories(
    conversations: Sequence[Conversation | Memory] | str | None, split_name: str, config: MemoryConfig | None
) -> list[Memory]:
    if conversations is None or isinstance(conversations, str):
        convs = load_conversations(conversations)
        if split_name in ("train", "test"):
            train, test = split(convs)
            convs = train if split_name == "train" else test
        elif split_name != "all":
            raise ConfigError(f"unknown split {split_name!r}", name=split_name, hint="train, test or all")
        return [Memory(c, config=config) for c in convs]
    out = [c if isinstance(c, Memory) else Memory(c, config=config) for c in conversations]
    if not out:
        raise DataError("MemoryTierEnv needs at least one conversation", name="conversations")
    return out
