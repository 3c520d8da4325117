"""Memory in budget tiers: a conversation made searchable, recalled through modules offered at low / mid / high cost.

``ar.Memory.from_conversation(turns)`` builds one; an agent reads it with ``ctx.memory.recall(query)`` and the
router picks each module's tier at the ``memory`` routing points. See ``docs/memory.md``.
"""

from agentroute.memory._data import (
    CATEGORIES,
    TEST_IDS,
    TRAIN_IDS,
    Conversation,
    Question,
    Turn,
    load_conversation,
    load_conversations,
    locomo_dir,
)
from agentroute.memory._memory import Memory
from agentroute.memory._pipeline import MODULE_NAMES, MODULES, LLMCall, MemoryConfig
from agentroute.memory._state import TIERS, MemoryModule, QueryInfo, Recall, RecallState, StepSpend, TierOption
from agentroute.memory._text import approx_tokens

__all__ = [
    "CATEGORIES",
    "MODULES",
    "MODULE_NAMES",
    "TEST_IDS",
    "TIERS",
    "TRAIN_IDS",
    "Conversation",
    "LLMCall",
    "Memory",
    "MemoryConfig",
    "MemoryModule",
    "QueryInfo",
    "Question",
    "Recall",
    "RecallState",
    "StepSpend",
    "TierOption",
    "Turn",
    "approx_tokens",
    "load_conversation",
    "load_conversations",
    "locomo_dir",
]
