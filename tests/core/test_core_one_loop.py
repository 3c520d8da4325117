"""The runtime's side of the one loop (issue 12) and its hot path (issue 18): each test reproduces a drift first."""

import uuid
import warnings
from decimal import Decimal

import numpy as np
import pytest
from core_helpers import PRICED, two_agent_graph
from hypothesis import given, settings
from hypothesis import strategies as st

import agentroute as ar
from agentroute import llm
from agentroute.budget import Budget, Ledger, MemoryBackend
from agentroute.data.table import RoutingTable
from agentroute.evaluation import sweep
from agentroute.replay import replay
from agentroute.routing import Decision, one_hot
from agentroute.testing import Fail, Scripted


class Spy:
    """Takes the cheapest candidate and keeps what it saw."""

    name, version = "spy", "1"

    def __init__(self) -> None:
        self.seen: list = []

    def decide(self, obs):
        self.seen.append(obs)
        return Decision(obs.ids[0], one_hot(obs, obs.ids[0]))


def _table() -> RoutingTable:
    n = 6
    cost = np.tile([0.001, 0.004, np.nan], (n, 1))  # the third option's cost is unknown
    q = np.tile([0.5, 0.9, 0.7], (n, 1))
    tok = np.full((n, 3), 10.0)
    return RoutingTable([f"q{i}" for i in range(n)], [f"text {i}" for i in range(n)], ["c"] * n,
                        ["m/small", "m/large", "m/unpriced"], q, cost, tok, tok.copy())


def test_sweep_and_replay_show_a_policy_the_same_routing_point():
    t = _table()
    a, b = Spy(), Spy()
    replay(t, a)
    sweep(b, t, [0.0])
    oa, ob = a.seen[0], b.seen[0]
    assert oa.candidates == ob.candidates and (oa.kind, oa.point, oa.extra) == (ob.kind, ob.point, ob.extra)
    assert [c.id for c in oa.candidates] == ["m/small", "m/large", "m/unpriced"]
    assert oa.candidates[-1].cost_estimate is None  # unknown, never 0
    assert [dict(c.descriptor) for c in oa.candidates] == [{"model": c.id} for c in oa.candidates]


def test_credential_errors_are_not_retried():
    script = Scripted({"small": [Fail("credentials")], "large": ["rescued"]})
    app = two_agent_graph(PRICED).compile(policy=ar.policies.Cheapest(), provider=script, max_retries=2)
    app.retry_backoff = 0.001
    res = app.run({"question": "q"}, budget=Budget(usd="0.05"))
    assert [(c.tier, c.attempt) for c in res.calls][:2] == [("small", 1), ("large", 1)]
    assert res.calls[0].error_type == "InternalServerError" and "Missing credentials" in res.calls[0].error
    class Upstream(Exception):
        status_code = 503

    assert not llm.is_retryable(RuntimeError("Incorrect API key provided")) and llm.is_retryable(Upstream("busy"))


def test_tokens_are_counted_once_per_tokenizer_and_not_without_a_limit(monkeypatch):
    counted: list[str] = []
    real = llm._tokenize

    def count(tokenizer, text):
        counted.append(tokenizer)
        return real(tokenizer, text)

    assert llm.tokenizer_key("openai/gpt-4o-mini") == llm.tokenizer_key("openai/gpt-4o")  # one tokenizer
    provider = Scripted({"*": ["ok"]}, input_tokens=12)  # reports usage without counting: only the loop counts
    app = two_agent_graph().compile(policy=ar.policies.Strongest(), provider=provider)
    app.run({"question": "warm"}, budget=Budget(usd="0.05"))  # the first task warms LiteLLM up (outside the count)
    monkeypatch.setattr(llm, "_tokenize", count)
    res = app.run({"question": f"a question never seen {uuid.uuid4().hex}"}, budget=Budget(usd="0.05"))
    # at most one count per call, not one per tier (a message the warm-up task already sent is a cache hit)
    assert len(res.calls) == 2 and 1 <= len(counted) <= 2
    counted.clear()
    free = app.run({"question": f"another one {uuid.uuid4().hex}"})  # no USD or token limit: nothing to count
    assert free.completed and counted == []
    model = [d for d in free.decisions if d.kind == "model"]
    assert all(d.reservation == {"usd": None, "tokens": 0, "steps": 0, "seconds": 0.0} for d in model)
    assert free.spent.usd == sum(c.cost_usd for c in free.calls) > 0  # still charged in full


@pytest.mark.parametrize("model", ["openai/gpt-4o-mini", "gpt-3.5-turbo-0301", "anthropic/claude-3-haiku-20240307",
                                   "test/unknown"])
def test_the_cached_encoder_counts_exactly_as_litellm(model):
    litellm = llm.ensure_litellm()
    for msgs in ([{"role": "user", "content": "hello there"}],
                 [{"role": "system", "content": "be brief"}, {"role": "user", "content": "x " * 400, "name": "bo"}]):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = litellm.token_counter(model=model, messages=msgs)
        assert llm._count(model, msgs) == want


_MESSAGE = st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "user", "assistant", "tool"]), "content": st.text(max_size=300)},
    optional={"name": st.one_of(st.none(), st.text(min_size=1, max_size=12))},
)


@settings(max_examples=60)
@given(msgs=st.lists(_MESSAGE, min_size=1, max_size=4),
       model=st.sampled_from(["openai/gpt-4o-mini", "gpt-3.5-turbo-0301", "anthropic/claude-3-haiku-20240307"]))
def test_the_plain_text_fast_count_is_litellms_count(msgs, model):
    """The fast path for plain text messages (roles and names remembered) adds up exactly as LiteLLM does."""
    litellm = llm.ensure_litellm()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = litellm.token_counter(model=model, messages=[dict(m) for m in msgs])
    assert llm._count(model, msgs) == want


@settings(max_examples=40)
@given(text=st.text(max_size=400),
       model=st.sampled_from(["openai/gpt-4o-mini", "gpt-3.5-turbo-0301", "anthropic/claude-3-haiku-20240307",
                              "test/unknown"]))
def test_count_text_is_litellms_text_count(text, model):
    """The reply-text count settlement checks usage against: LiteLLM's own, its encoder chosen once per model."""
    litellm = llm.ensure_litellm()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = litellm.token_counter(model=model, text=text)
    assert llm.count_text(model, text) == want


def test_a_models_tokenizer_is_chosen_once_for_message_and_text_counts(monkeypatch):
    """Choosing a Hugging Face tokenizer asks the Hub (~23 s of retries offline): once per model, for both counts."""
    llm.ensure_litellm()
    from litellm.litellm_core_utils import token_counter as tc

    chosen: list[str | None] = []
    real = tc._get_count_function

    def counting(model, custom_tokenizer=None):
        chosen.append(model)
        return real(model, custom_tokenizer)

    monkeypatch.setattr(tc, "_get_count_function", counting)
    model = "openai/gpt-4o-mini-once-per-model-test"
    for _ in range(3):
        assert llm._count(model, [{"role": "user", "content": "hello there"}]) > 0
        assert llm.count_text(model, "hello there") > 0
    assert chosen.count(model) == 1


def test_one_budget_snapshot_per_routing_point():
    class Counting(MemoryBackend):
        reads = 0

        def totals(self):
            Counting.reads += 1
            return super().totals()

    g = ar.AgentGraph("one")
    g.add_agent("ask", lambda s, ctx: {"a": ctx.complete([{"role": "user", "content": s["q"]}]).text}, tiers=PRICED)
    g.start("ask")
    app = g.compile(policy=ar.policies.Cheapest(), provider=ar.providers.Simulated(seed=0))
    team = ar.SharedBudget(Budget(usd="1"), backend=Counting())
    Counting.reads = 0
    res = app.run({"q": "hello"}, budget=team)
    # one routing point (the model tier): the shared budget is read for its snapshot and the record's budget_after
    assert len(res.decisions) == 1 and Counting.reads == 2


def test_misused_hooks_are_refused_at_compile_time():
    class Misspelled(ar.RunHooks):
        def on_decison(self, record):  # never called: a typo of on_decision
            pass

    g = two_agent_graph()
    with pytest.raises(ar.ConfigError, match="on_decison") as e:
        g.compile(policy=ar.policies.Cheapest(), hooks=[Misspelled()])
    assert "on_decision" in str(e.value.hint)
    with pytest.raises(ar.ConfigError, match="not a RunHooks"):
        g.compile(policy=ar.policies.Cheapest(), hooks=[object()])

    class Duck:  # not a RunHooks, but a hook: its methods are called, the others do nothing
        def __init__(self) -> None:
            self.ends: list = []

        def on_task_end(self, result):
            self.ends.append(result.task_id)

    duck = Duck()
    app = g.compile(policy=ar.policies.Cheapest(), provider=ar.providers.Simulated(), hooks=[duck])
    res = app.run({"question": "q"})
    assert duck.ends == [res.task_id]


def test_every_public_error_lives_in_the_one_tree():
    from agentroute import errors

    for name in ("Unaffordable", "StoreError", "SchemaMismatch", "LedgerError"):
        cls = getattr(errors, name)
        assert issubclass(cls, ar.AgentRouteError) and getattr(ar, name) is cls
    assert ar.Unaffordable is Ledger(Budget(steps=0)).reserve.__globals__["Unaffordable"]


def test_a_policy_is_credited_once_at_the_end_of_each_task():
    class Credited(ar.policies.Strongest):
        def __init__(self) -> None:
            self.ends: list = []

        def on_task_end(self, outcome):
            self.ends.append(outcome)

    pol = Credited()
    app = two_agent_graph().compile(policy=pol, provider=ar.providers.Simulated(seed=1))
    res = app.run({"question": "q"}, budget=Budget(usd="0.05"))
    assert len(pol.ends) == 1
    end = pol.ends[0]
    assert (end.task_id, end.cost_usd, end.quality, end.ok) == (res.task_id, res.spent.usd, res.quality, True)
    assert [d.index for d in end.decisions] == [d.index for d in res.decisions] == [0, 1, 2]
    assert Decimal(0) < end.cost_usd <= Decimal("0.05")


@settings(max_examples=60)
@given(msgs=st.lists(_MESSAGE, min_size=1, max_size=4),
       model=st.sampled_from(["openai/gpt-4o-mini", "openai/gpt-4o", "gpt-3.5-turbo-0301",
                              "anthropic/claude-3-haiku-20240307"]))
def test_a_prompt_counted_one_message_at_a_time_is_litellms_count(msgs, model):
    """count_tokens sums each message's remembered count: the same total as LiteLLM's, cached or not."""
    litellm = llm.ensure_litellm()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = litellm.token_counter(model=model, messages=[dict(m) for m in msgs])
    assert llm.count_tokens(model, msgs) == want
    assert llm.count_tokens(model, list(reversed(msgs))) == want  # the same messages, now from the cache


@settings(max_examples=60)
@given(text=st.text(max_size=600), model=st.sampled_from(["openai/gpt-4o-mini", "openai/gpt-4o", "gpt-3.5-turbo-0301"]))
def test_the_reply_bound_is_never_below_the_count(text, model):
    """The bound that spares tokenizing a reply is at least the count (every tiktoken token holds a byte)."""
    bound = llm.text_tokens_at_most(model, text)
    assert bound is not None and llm.count_text(model, text) <= bound


def test_a_reply_is_tokenized_only_when_its_count_can_change_the_charge(monkeypatch):
    from agentroute import _settle

    seen: list[str] = []
    real = llm._tokenize

    def spy(tokenizer, text):
        seen.append(text)
        return real(tokenizer, text)

    monkeypatch.setattr(llm, "_tokenize", spy)
    model, prices = "openai/gpt-4o-mini", (Decimal("0.000001"), Decimal("0.000002"))

    def reply(text, n_in, n_out):
        return llm.RawReply(text=text, input_tokens=n_in, output_tokens=n_out, response_model=model,
                            finish_reason="stop", response=None)

    # 12 bytes can hold at most 12 tokens, under 2 x 3 + 8: the under-report check cannot fire, nothing to count
    amount, _, n_out, basis = _settle.charge_reply(prices, model, 30, 40, 100, reply("short answer", 30, 3),
                                                   metered=True)
    assert (basis, n_out, seen) == ("reported", 3, []) and amount.tokens == 33
    # a long reply reported as 5 tokens: counted, and charged what the text shows
    text = f"{uuid.uuid4().hex} " + "word " * 300
    amount, _, n_out, basis = _settle.charge_reply(prices, model, 30, 40, 100, reply(text, 30, 5), metered=True)
    assert seen == [text] and basis.startswith("worst_case: usage under-reported")
    assert n_out == llm.count_text(model, text) > 100 and amount.tokens == 40 + n_out
    # the worst case of a reply with no usage: a text that cannot pass max_tokens is not counted either
    seen.clear()
    _, _, n_out, basis = _settle.charge_reply(prices, model, 30, 40, 100, reply("ok", 0, 0), metered=True)
    assert (n_out, seen) == (100, []) and basis == "worst_case: no usage reported"


@pytest.mark.parametrize("msgs", [
    [{"role": "tool", "content": "42 degrees", "tool_call_id": "call_abc123"}],  # the old fast path dropped the id
    [{"role": "user", "content": "hi", "name": None}],  # ... and counted None as a name
    [{"role": "user", "content": "hi", "name": ""}],
    [{"role": "system", "content": "be brief"}, {"role": "assistant", "content": "x", "extra": "yyyy zzz"}],
    [{"role": "user", "content": "word " * 14_000, "name": "bo"}],  # past what the caches keep: counted each time
])
def test_messages_beyond_role_content_and_name_are_counted_as_litellm_counts_them(msgs):
    litellm = llm.ensure_litellm()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = litellm.token_counter(model="openai/gpt-4o", messages=[dict(m) for m in msgs])
    assert llm.count_tokens("openai/gpt-4o", msgs) == want
