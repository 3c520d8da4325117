"""Credentials never reach a span: the scrubber, and whole runs fed with secrets in every place they leak from."""

from __future__ import annotations

import json
import secrets

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tel_records import Capture, emit_run

from agentroute import _telemetry_redact as R


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Incorrect API key provided: sk-proj-abcdefghijklmnop1234", "sk-proj-abcdefghijklmnop1234"),
        ("invalid x-api-key sk-ant-api03-abcdefghijklmnopqrstuvwxyz", "abcdefghijklmnopqrstuvwxyz"),
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.signature", "eyJhbGciOiJIUzI1NiJ9"),
        ('{"api_key": "qwertyuiop1234"}', "qwertyuiop1234"),
        ("https://host/v1?api_key=hunter2hunter2&x=1", "hunter2hunter2"),
        ("password: correct-horse-battery", "correct-horse-battery"),
        ("aws AKIAIOSFODNN7EXAMPLE used", "AKIAIOSFODNN7EXAMPLE"),
        ("hf token hf_abcdefghijklmnopqrstuvwxyz123", "hf_abcdefghijklmnopqrstuvwxyz123"),
    ],
)
def test_known_shapes_are_scrubbed(text, secret):
    out = R.redact_text(text)
    assert R.REDACTED in out and secret not in out


@pytest.mark.parametrize("text", ["max_tokens=512", "tokens: 123456", "the model gpt-4o-mini answered", "0.000125"])
def test_ordinary_text_is_left_alone(text):
    assert R.redact_text(text) == text


def test_secret_keys_in_mappings_are_dropped_whole():
    data = {"model": "m", "api_key": "abc", "nested": {"credentials": {"user": "u", "pw": "p"}}, "max_tokens": 5}
    out = R.redact_mapping(data)
    assert out == {"model": "m", "api_key": R.REDACTED, "nested": {"credentials": R.REDACTED}, "max_tokens": 5}


def test_environment_secrets_and_registered_values(monkeypatch):
    env_secret = "envsecret" + secrets.token_hex(6)
    monkeypatch.setenv("ACME_API_KEY", env_secret)
    monkeypatch.setenv("ACME_MODE", "notasecretvalue")
    R.refresh()
    assert R.redact_text(f"x {env_secret} y") == f"x {R.REDACTED} y"
    assert R.redact_text("notasecretvalue") == "notasecretvalue"
    registered = "reg" + secrets.token_hex(6)
    R.register_secret(registered)
    assert registered not in R.redact_text(f"boom: {registered}!")
    R.unregister_secret(registered)
    assert registered in R.redact_text(f"boom: {registered}!")


@settings(max_examples=60, deadline=None)
@given(
    prefix=st.text(max_size=40),
    suffix=st.text(max_size=40),
    secret=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=8, max_size=40),
)
def test_a_registered_secret_never_survives_any_surrounding_text(prefix, suffix, secret):
    R.register_secret(secret)
    try:
        assert secret not in R.redact_text(prefix + secret + suffix)
    finally:
        R.unregister_secret(secret)


def _all_text(spans) -> list[str]:
    out = []
    for s in spans:
        out.append(s.name)
        out.append(json.dumps(dict(s.attributes), default=str))
        for e in s.events:
            out.append(json.dumps(dict(e.attributes), default=str))
        out.append(s.status.description or "")
    return out


@pytest.mark.parametrize("capture_content", [False, True])
@pytest.mark.parametrize("kind", ["shaped", "from-env"])
def test_no_span_of_a_run_holds_a_secret(monkeypatch, capture_content, kind):
    if kind == "shaped":
        secret = "sk-" + secrets.token_hex(16)  # caught by its shape alone
    else:
        secret = "opaque" + secrets.token_hex(8)  # caught because an *_API_KEY variable holds it
        monkeypatch.setenv("ACME_PROVIDER_API_KEY", secret)
    cap = Capture(capture_content=capture_content)  # hooks read the environment when they are built
    emit_run(cap.hooks, n_steps=2, fail_first_call=True, secret=secret, messages=True)
    texts = _all_text(cap.spans())
    assert R.contains_secret(texts, [secret]) == []
    assert any(R.REDACTED in t for t in texts)
