"""FakeOpenAIServer's hostile modes answer as documented: what it reports vs what it really generated (billed)."""

import json
import urllib.error
import urllib.request

import pytest

from agentroute.testing import FakeOpenAIServer


def post(server, body, headers=None):
    req = urllib.request.Request(server.url + "/chat/completions", data=json.dumps(body).encode(),
                                 headers={"content-type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


BODY = {"model": "m", "messages": [{"role": "user", "content": "two words"}], "max_tokens": 10}


@pytest.mark.parametrize(("action", "reported", "billed_out", "words"), [
    ("ok", (6, 10), 10, 5),  # completion_tokens=12 capped at max_tokens=10; the usual text
    (("overgenerate", 3), (6, 30), 30, 30),
    ("no_usage", None, 10, 5),
    (("usage", -5, -1), (-5, -1), 10, 5),
    (("usage", 1, 1), (1, 1), 10, 5),
    ({"generate": 7, "usage": "omit"}, None, 7, 7),
])
def test_each_mode_reports_what_it_says_and_bills_what_it_generated(action, reported, billed_out, words):
    with FakeOpenAIServer() as s:
        s.plan = [action]
        status, out = post(s, BODY)
    assert status == 200
    usage = out.get("usage")
    assert (None if usage is None else (usage["prompt_tokens"], usage["completion_tokens"])) == reported
    assert s.billed == [(6, billed_out)]
    assert len(out["choices"][0]["message"]["content"].split()) == words


def test_n_choices_are_each_generated_and_billed():
    with FakeOpenAIServer() as s:
        _, out = post(s, {**BODY, "n": 3})
    assert len(out["choices"]) == 3 and s.billed == [(6, 30)] and out["usage"]["completion_tokens"] == 30


def test_echo_mode_leaks_the_request_headers_in_its_error_body():
    with FakeOpenAIServer() as s:
        s.default = "echo"
        status, out = post(s, BODY, {"authorization": "Bearer sk-leak-me", "x-team-token": "tt-secret"})
        assert s.billed == []
    assert status == 401
    assert "sk-leak-me" in out["error"]["message"] and "tt-secret" in out["error"]["message"]


def test_billed_usd_prices_what_was_generated():
    with FakeOpenAIServer() as s:
        s.default = ("usage", 0, 0)
        post(s, BODY)
        post(s, BODY)
    assert s.billed_usd("0.5", "1") == 2 * (6 * 0.5 + 10)
