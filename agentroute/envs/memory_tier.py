"""``agentroute/MemoryTier-v0``: choose a budget tier for each memory module, one question per episode.

An episode draws one graded question from the conversations; each step picks the tier (``Discrete(3)``: low, mid,
high) of the next module (retrieve, rerank, link, time), and the memory runs it for real. The observation is
:func:`agentroute.memory.features.observation_features` of the very :class:`~agentroute.routing.Observation` the
runtime would hand a policy (query hashing and cues, module, tiers so far, recall state, budget), so a policy trained
here is served unchanged. ``action_masks()`` marks the tiers whose worst case fits the episode's budget; an
unaffordable action is taken as the strongest affordable tier below it. When no tier of the next module is
affordable the episode is *truncated* and scored on what was recalled.

Rewards (``quality = mix * evidence recall + (1 - mix) * answer recall``, cost in units of 1,000 context tokens at the
answering model's price):

* ``"tradeoff"`` — ``quality - cost_weight * cost``, the cost paid step by step and the quality at the end;
* ``"budgetmem"`` — after BudgetMem (Zhang et al., 2026): ``quality + cost_weight * alpha * r_cost`` at the end, with
  ``r_cost = 1 - normalised(sqrt(cost))`` normalised between the 5th and 95th percentiles of a sliding window of
  recent costs, and ``alpha = std(quality) / std(r_cost)`` over the same window (scale alignment), so the cost term
  can never swamp the task term and the router does not collapse to the cheapest tiers. It is
  :class:`agentroute.envs.rewards.BudgetMemReward`, the one BudgetMem reward of every environment.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from agentroute.envs.rewards import BudgetMemReward
from agentroute.errors import ConfigError, DataError
from agentroute.memory import MODULE_NAMES, TIERS, Conversation, Memory, MemoryConfig, load_conversations
from agentroute.memory._data import split
from agentroute.memory.evaluate import gradable, score
from agentroute.memory.features import N_FEATURES, observation_features
from agentroute.memory.policies import quality
from agentroute.memory.routing import budget_status, memory_observation
from agentroute.routing import Observation

REWARDS = ("budgetmem", "tradeoff")


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
    ) -> None:
        if reward not in REWARDS:
            raise ConfigError(f"unknown reward {reward!r}", name=reward, hint=f"one of {', '.join(REWARDS)}")
        if cost_weight < 0 or not 0.0 <= mix <= 1.0:
            raise ConfigError("cost_weight must be >= 0 and mix in [0, 1]", name="cost_weight")
        self.memories = _memories(conversations, split_name, config)
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
        self.unit_usd = float(self.memories[0].usd(1000) or 1.0)
        self._budgetmem = BudgetMemReward(window=window)
        self.observation_space = spaces.Box(-1.0, 1.0, shape=(N_FEATURES,), dtype=np.float32)
        self.action_space = spaces.Discrete(len(TIERS))
        self._obs: Observation | None = None
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
            "mix": self.mix,
            "cost_scale_usd": self.unit_usd,
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
        self._spent = Decimal(0)
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
        self._state = self._memory.run_module(module, tier, self._question.question, self._state)
        step_usd = self._memory.step_cost(self._state) or Decimal(0)
        self._spent += step_usd
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
        cost = float(self._spent)
        units = cost / self.unit_usd
        info.update(
            evidence_recall=ev, answer_recall=ans, quality=q, cost_usd=cost, cost_units=units,
            cost_tokens=recall.tokens, category=self._question.category, tiers=dict(self._state.tiers),
        )
        if self.reward_mode == "tradeoff":
            return q
        r = self._budgetmem(q, units, self.cost_weight)
        info.update(r_cost=self._budgetmem.last_efficiency, alpha=self._budgetmem.alpha)
        return r

    def _observe(self) -> Observation:
        module = MODULE_NAMES[self._module] if self._module < len(MODULE_NAMES) else MODULE_NAMES[-1]
        self._obs = memory_observation(
            self._memory,
            module,
            self._state,
            budget=budget_status(self._limit, self._spent),
            task_id=self._task,
        )
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
