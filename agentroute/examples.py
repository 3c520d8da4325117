"""The support example of the README and of ``agentroute demo``: two agents, two model tiers, a rule file.

``support_graph()`` builds the graph; ``support_tasks(n, seed)`` makes a reproducible stream of support questions
(billing, technical, account, legal; short and long); ``support_rules()`` loads the shipped rule file.
``world_graph()`` is the graph world's example (research, write, verify: docs/environments.md), run on the same
questions.
"""

from __future__ import annotations

import random
from importlib import resources
from pathlib import Path
from typing import Any

from agentroute.graph import END, AgentGraph
from agentroute.llm import ModelTier
from agentroute.policies.rules import RulePolicy
from agentroute.providers import role_message

TIERS = (ModelTier("small", model="openai/gpt-4o-mini"), ModelTier("large", model="openai/gpt-4o"))

_TOPICS: dict[str, tuple[list[str], list[str]]] = {
    "billing": (["My invoice is wrong", "I was charged twice this month", "Where is my refund",
                 "Why did my payment fail"], ["for order {n}", "on the {m} statement", "after the plan change"]),
    "technical": (["The app crashes on start", "I cannot log in on Android", "Sync stopped working",
                   "Export to CSV produces an empty file"], ["since version 4.{n}", "on my {m} laptop",
                                                             "after the last update"]),
    "account": (["How do I change my email", "Please delete my account", "Add a second admin",
                 "Transfer ownership of the workspace"], ["for team {n}", "before {m}", "today"]),
    "legal": (["Explain how the contract renewal clause works", "Compare the data processing terms",
               "Why does the licence forbid resale"], ["for our {m} subsidiary", "under EU law", "in clause {n}"]),
}
_MONTHS = ["March", "April", "May", "June", "July"]


def support_graph(tiers: tuple[ModelTier, ...] = TIERS) -> AgentGraph:
    """The README's graph: ``triage`` drafts, the policy decides whether ``expert`` answers or the task ends."""
    graph = AgentGraph("support")

    @graph.agent(tiers=tiers, description="drafts a first answer")
    def triage(state: dict[str, Any], ctx: Any) -> dict[str, Any]:
        reply = ctx.complete([{"role": "user", "content": state["question"]}])
        return {"draft": reply.text, "answer": reply.text}

    @graph.agent(tiers=tiers, description="answers hard questions")
    def expert(state: dict[str, Any], ctx: Any) -> dict[str, Any]:
        reply = ctx.complete([{"role": "user", "content": state["question"]},
                              {"role": "assistant", "content": state["draft"]},
                              {"role": "user", "content": "Improve this answer."}], max_tokens=400)
        return {"answer": reply.text}

    graph.start("triage")
    graph.route("triage", to=["expert", END])
    return graph


def world_graph(tiers: tuple[ModelTier, ...] = TIERS) -> AgentGraph:
    """The graph world's example: research, write, verify; the policy picks the path and every tier.

    ``intake`` sends a task to ``research`` or straight to ``writer``; after the writer the policy ends the task or
    asks ``verifier``, which sends a wrong draft back for one revision. Every agent speaks its world role
    (:func:`agentroute.providers.role_message`), so on :class:`~agentroute.providers.Simulated` the task's quality
    depends on the whole path.
    """
    graph = AgentGraph("world")

    @graph.agent(description="reads the task, calls no model")
    def intake(state: dict[str, Any], ctx: Any) -> dict[str, Any]:
        return {}

    @graph.agent(tiers=tiers, description="gathers notes that help on hard tasks")
    def research(state: dict[str, Any], ctx: Any) -> dict[str, Any]:
        reply = ctx.complete([role_message("research"), {"role": "user", "content": state["question"]}])
        return {"notes": reply.text}

    @graph.agent(tiers=tiers, description="drafts the answer")
    def writer(state: dict[str, Any], ctx: Any) -> dict[str, Any]:
        msgs = [role_message("write"), {"role": "user", "content": state["question"]}]
        if state.get("notes"):
            msgs.append({"role": "user", "content": f"Notes: {state['notes']}"})
        reply = ctx.complete(msgs)
        return {"draft": reply.text, "answer": reply.text}

    @graph.agent(tiers=tiers, description="checks the draft; a rejected draft is sent back for one revision")
    def verifier(state: dict[str, Any], ctx: Any) -> dict[str, Any]:
        question = {"role": "user", "content": state["question"]}
        draft = {"role": "assistant", "content": state["draft"]}
        verdict = ctx.complete([role_message("verify"), question, draft, {"role": "user", "content": "Is it right?"}],
                               max_tokens=64)
        if "VERDICT: reject" not in verdict.text:
            return {"verdict": "accept"}
        msgs = [role_message("write"), question]
        if state.get("notes"):
            msgs.append({"role": "user", "content": f"Notes: {state['notes']}"})
        revised = ctx.complete([*msgs, draft, {"role": "user", "content": f"A reviewer said: {verdict.text}"}])
        return {"verdict": "reject", "answer": revised.text}

    graph.start("intake")
    graph.route("intake", to=["writer", "research"])
    graph.edge("research", "writer")
    graph.route("writer", to=[END, "verifier"])
    return graph


def support_tasks(n: int = 200, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` reproducible support questions, each with its ``category``."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        cat = rng.choice(list(_TOPICS))
        heads, tails = _TOPICS[cat]
        q = f"{rng.choice(heads)} {rng.choice(tails).format(n=rng.randint(1, 99), m=rng.choice(_MONTHS))}"
        if rng.random() < 0.3:
            q += ". " + " ".join(rng.choice(["I already tried restarting.", "This is urgent.",
                                             "We have 40 users affected.", "The previous ticket was closed.",
                                             "Please answer in detail."]) for _ in range(rng.randint(2, 5)))
        out.append({"question": f"{q} (#{i})", "category": cat})
    return out


def rules_path() -> Path:
    """Path of the shipped ``support.yaml`` rule file."""
    return Path(str(resources.files("agentroute") / "_assets" / "support.yaml"))


def support_rules() -> RulePolicy:
    """The shipped rule policy for the support graph."""
    return RulePolicy.from_file(rules_path())
