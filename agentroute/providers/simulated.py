"""An offline model provider registered with LiteLLM, so the real call path runs with no network and no key.

Each model gets a capability profile: an ``ability`` (by default from its output price in LiteLLM's map: dearer
models answer harder queries), a typical answer length, and a latency. A query's difficulty is derived from its text
with a stable hash, so the same query is equally hard for every model and every run. Everything is deterministic
given the seed, whatever the order or concurrency of calls.

Calls whose messages carry a world role (:func:`~agentroute.providers._world.role_message`: research, write,
verify) take part in the **graph world** (:class:`~agentroute.providers._world.World`): a hidden difficulty class
per task, research that helps a writer on hard tasks, a verifier that catches wrong drafts and sends them back, so
a task's quality depends on its whole path. Calls without a role keep the single-call model above.

The handler is registered once under the LiteLLM provider name ``agentroute_sim``; each :class:`Simulated` instance is
addressed through ``api_base="sim://<id>"``, so several worlds can coexist in one process.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agentroute.errors import ConfigError
from agentroute.llm import ModelTier, RawReply, count_tokens, ensure_litellm, price_of
from agentroute.providers import _world
from agentroute.providers._hash import _unit
from agentroute.providers._world import World

PROVIDER = "agentroute_sim"
_instances: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()
_ids = itertools.count(1)
_WORDS = ("the", "answer", "is", "based", "on", "your", "account", "details", "we", "checked", "and", "found")


@dataclass(frozen=True, slots=True)
class SimProfile:
    """How a simulated model behaves: ``ability`` on the same scale as query difficulty (about -1 to 2)."""

    ability: float
    output_tokens: int = 160
    """Typical answer length; each answer varies from half to one and a half times this."""
    latency: float = 0.4
    """Seconds before the first token."""
    seconds_per_token: float = 0.004
    failure_rate: float = 0.0
    """Share of calls that fail with a rate-limit error (deterministic per call)."""


def difficulty(text: str, seed: int = 0) -> float:
    """Difficulty of a query in about [-1, 2]: a stable hash of its text, nudged up for long queries."""
    base = _unit("difficulty", seed, text) * 2.6 - 1.0
    return base + min(0.4, len(text) / 5000)


def ability_from_price(model: str) -> float:
    """Default ability: log10 of the output price per million tokens (gpt-4o-mini ~ -0.2, gpt-4o ~ 1.0)."""
    prices = price_of(model)
    if prices is None or prices[1] <= 0:
        return 0.0
    return math.log10(float(prices[1]) * 1e6)


class Simulated:
    """An offline, deterministic world of models behind LiteLLM.

    ``Simulated(seed=0)`` gives every tier a profile from its model's price; pass ``profiles={"openai/gpt-4o":
    SimProfile(ability=1.2)}`` to set them. ``realtime=True`` sleeps for the simulated latency (for timeout tests).
    ``world`` sets the parameters of the graph world that calls with a role marker take part in (default
    ``World()``; see :mod:`agentroute.providers._world` and docs/environments.md).
    """

    name = "simulated"
    provider = PROVIDER

    def __init__(
        self,
        seed: int = 0,
        *,
        profiles: Mapping[str, SimProfile] | None = None,
        realtime: bool = False,
        difficulty_fn: Any = None,
        world: World | None = None,
    ) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ConfigError("Simulated(seed=...) must be an int", name="seed")
        self.seed = seed
        self.profiles: dict[str, SimProfile] = dict(profiles or {})
        self.realtime = realtime
        self.difficulty_fn = difficulty_fn
        if world is not None and not isinstance(world, World):
            raise ConfigError(f"Simulated(world=...) must be a World, got {type(world).__name__}", name="world",
                              hint="from agentroute.providers import World")
        self.world = world or World()
        self._notes = _world.Notes()
        self.id = f"sim{next(_ids)}"
        self._quality: dict[str, float] = {}
        self._lock = threading.Lock()
        self.calls = 0
        self.calibration: Any = None
        self.mapping: dict[str, str] = {}
        _instances[self.id] = self
        _register()

    @classmethod
    def from_table(cls, table: Any, *, seed: int = 0, mapping: Mapping[str, str] | None = None,
                   world: World | None = None) -> Simulated:
        """A world calibrated on a routing table: option abilities and query difficulties fitted item-response style.

        Models named like the table's options get those options' profiles. Other models (the tiers of your graph)
        are mapped with ``mapping`` (model -> option), else by price rank: the cheapest model gets the ability of
        the option with the lowest mean cost, the dearest that of the highest. Use :meth:`tiers` to build
        ``ModelTier`` objects named after the options, priced from the table. The graph world (``world``) keeps
        its parameters; the table sets each tier's ability and each known task's base difficulty.
        """
        from agentroute.providers.calibrate import difficulty_lookup, fit_irt

        cal = fit_irt(table)
        sim = cls(seed=seed, difficulty_fn=difficulty_lookup(cal, seed), world=world)
        sim.calibration = cal
        sim.mapping = dict(mapping or {})
        for j, name in enumerate(cal.options):
            sim.profiles[name] = SimProfile(ability=float(cal.ability[j]), output_tokens=cal.output_tokens[name])
        return sim

    def task_class(self, text: str) -> str:
        """The hidden difficulty class (``"hard"`` or ``"easy"``) of the task whose text is ``text``."""
        return "hard" if self.world.is_hard(text, self.seed) else "easy"

    def tiers(self) -> list[ModelTier]:
        """``ModelTier`` objects for a calibrated world's options, priced from the table (cheapest first)."""
        cal = self.calibration
        if cal is None:
            raise ConfigError("tiers() needs a world built with Simulated.from_table(...)")
        out = []
        for name in cal.options:
            p = cal.cost_per_token[name]
            if p is None:
                raise ConfigError(f"option {name!r} has no cost in the table", name=name,
                                  hint="convert the table with --prices to give every option a cost")
            out.append(ModelTier(name, model=name, input_cost_per_token=p, output_cost_per_token=p))
        return sorted(out, key=lambda t: (t.output_cost_per_token or 0, t.name))

    # -- Provider protocol ------------------------------------------------------------------------------------
    def bind(self, tiers: Sequence[ModelTier]) -> None:
        """Give every tier without a profile one: mapped or price-ranked on a calibrated world, else from its price."""
        cal = self.calibration
        missing = [t for t in tiers if t.model not in self.profiles]
        if cal is not None and missing:
            order = sorted(range(len(cal.options)), key=lambda j: (cal.cost_per_token[cal.options[j]] or 0,
                                                                   float(cal.ability[j])))
            ranked = sorted(missing, key=lambda t: (t.prices() or (0, 0))[1])
            for i, t in enumerate(ranked):
                opt = self.mapping.get(t.model)
                if opt is None:
                    pos = 0 if len(ranked) == 1 else round(i * (len(order) - 1) / (len(ranked) - 1))
                    opt = cal.options[order[pos]]
                if opt not in self.profiles:
                    raise ConfigError(f"mapping sends {t.model!r} to {opt!r}, which is not an option of the table",
                                      name=opt)
                self.profiles[t.model] = self.profiles[opt]
        for t in tiers:
            if t.model not in self.profiles:
                self.profiles[t.model] = SimProfile(ability=ability_from_price(t.model))

    def kwargs_for(self, tier: ModelTier) -> dict[str, Any]:
        """Route the call to this world through LiteLLM's custom-provider path."""
        return {"model": f"{PROVIDER}/{tier.model}", "api_base": f"sim://{self.id}", "api_key": "sim", **tier.params}

    def provider_name(self, tier: ModelTier) -> str:
        """Reported as ``gen_ai.provider.name``."""
        return PROVIDER

    def quality_of(self, reply: RawReply) -> float | None:
        """The hidden quality of a simulated reply (consumed once)."""
        rid = getattr(reply.response, "id", None)
        with self._lock:
            return self._quality.pop(rid, None) if rid else None

    # -- the world ----------------------------------------------------------------------------------------------
    def profile(self, model: str) -> SimProfile:
        """The profile of ``model`` (derived from its price when not given)."""
        p = self.profiles.get(model)
        if p is None:
            p = SimProfile(ability=ability_from_price(model))
            self.profiles[model] = p
        return p

    def outcome(self, model: str, messages: Sequence[Mapping[str, Any]], max_tokens: int) -> dict[str, Any]:
        """What the model does with these messages: tokens, quality, latency, failure. Pure given the seed."""
        # A task is as hard for every model and every step: difficulty follows the first user message.
        text = next((str(m.get("content", "")) for m in messages if m.get("role") == "user"),
                    str(messages[0].get("content", "")) if messages else "")
        prof = self.profile(model)
        d = self.difficulty_fn(text) if self.difficulty_fn else difficulty(text, self.seed)
        role = _world.role_of(messages)
        typical = prof.output_tokens * (_world.length_factor(role) if role else 1.0)
        u = _unit("len", self.seed, model, text) if role is None else _unit("len", self.seed, model, text, role)
        need = max(1, round(typical * (0.5 + u)))
        out = min(need, max_tokens)
        note: _world.Note | None = None
        said = ""
        if role is None:
            q = 1.0 / (1.0 + math.exp(-2.5 * (prof.ability - d)))
            q = q * (0.9 + 0.2 * _unit("noise", self.seed, model, text))
        else:
            note, said = _world.outcome(self.world, role, ability=prof.ability, base=d, text=text, model=model,
                                        seed=self.seed, notes=self._notes.found(messages))
            q = 0.0 if role == "research" else note.value
        if out < need and role != "verify":  # a cut-off answer (or cut-off notes) is worth less
            q *= math.sqrt(out / need)
            if note is not None:
                note = _world.Note(note.role, note.value * math.sqrt(out / need), note.correct)
        fail = _unit("fail", self.seed, model, text, self.calls_for(text, model)) < prof.failure_rate
        return {
            "note": note,
            "said": said,
            "output_tokens": out,
            "finish_reason": "length" if out < need else "stop",
            "quality": max(0.0, min(1.0, q)),
            "latency": prof.latency + prof.seconds_per_token * out,
            "fail": fail,
        }

    def calls_for(self, text: str, model: str) -> int:
        """Failure draws vary per attempt of the same call (so a retry can succeed)."""
        with self._lock:
            self.calls += 1
            return self.calls

    def respond(self, model: str, messages: Sequence[Mapping[str, Any]],
                optional_params: Mapping[str, Any]) -> tuple[Any, float]:
        """Build LiteLLM's ``ModelResponse`` for one call."""
        litellm = ensure_litellm()
        max_tokens = int(optional_params.get("max_tokens") or optional_params.get("max_completion_tokens") or 512)
        o = self.outcome(model, messages, max_tokens)
        if o["fail"]:
            raise litellm.RateLimitError(message="simulated rate limit", llm_provider=PROVIDER, model=model)
        n_in = count_tokens(model, messages)
        words = [_WORDS[i % len(_WORDS)] for i in range(o["output_tokens"])]
        key = f"{self.seed}{model}{messages}{time.monotonic_ns()}".encode()
        rid = f"sim-{hashlib.blake2b(key, digest_size=8).hexdigest()}"
        with self._lock:
            self._quality[rid] = o["quality"]
        if o["note"] is not None:  # a world call: later calls find this reply by its tag
            self._notes.put(rid, o["note"])
            words = [_world.tag(rid), o["said"] + ":", *words]
        return litellm.ModelResponse(
            id=rid,
            model=model,
            choices=[{"index": 0, "finish_reason": o["finish_reason"],
                      "message": {"role": "assistant", "content": f"[{model}] " + " ".join(words)}}],
            usage={"prompt_tokens": n_in, "completion_tokens": o["output_tokens"],
                   "total_tokens": n_in + o["output_tokens"]},
        ), o["latency"]


def _register() -> None:
    """Register the handler with LiteLLM once per process."""
    from agentroute.providers._handler import register

    register(PROVIDER, "sim", _instances)
