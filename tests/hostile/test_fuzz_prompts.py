"""Fuzzing RouterBench prompt parsing: any text in, a string or DataError out, agreeing with Python's own reading
of a list of string literals wherever the linear parser accepts one."""

from __future__ import annotations

import ast
import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentroute.data.convert import _string_list, parse_prompt
from agentroute.errors import DataError

FUZZ = settings(deadline=None, max_examples=150)
fragments = st.sampled_from(["[", "]", "'", '"', "\\", ",", " ", "\n", "a", "é", "\\n", "\\x4", "\\x41", "\\u00e9",
                             "\\U0001F600", "\\U00110000", "\\N{BULLET}", "\\N{NOPE}", "\\0", "\\777", "\\q", "1",
                             "'''", "b'", "u'", "f'", "#", "\ud800"])
list_like = st.lists(fragments | st.text(max_size=4), max_size=30).map(lambda parts: "[" + "".join(parts) + "]")


_UNREADABLE = object()


def _python(s: str) -> object:
    """Python's own reading of ``s`` (``_UNREADABLE`` when its source cannot even be encoded: lone surrogates)."""
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return _UNREADABLE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # invalid escapes warn in Python
        return ast.literal_eval(s)


@FUZZ
@given(raw=st.text(max_size=80) | list_like | st.floats() | st.integers() | st.none())
def test_any_prompt_parses_to_text(raw: object) -> None:
    out = parse_prompt(raw)
    assert isinstance(out, str)


literal_lists = st.lists(st.lists(fragments, max_size=6).map("".join), max_size=4).map(
    lambda items: "[" + ", ".join("'" + i.replace("'", "\\'") + "'" for i in items) + "]")


@FUZZ
@given(s=list_like | literal_lists)
def test_what_the_linear_parser_accepts_python_reads_the_same(s: str) -> None:
    got = _string_list(s)
    if got is None:
        return
    want = _python(s)
    assert want is _UNREADABLE or want == got


@FUZZ
@given(s=literal_lists)
def test_a_list_of_plain_string_literals_that_python_reads_is_read_the_same(s: str) -> None:
    try:
        want = _python(s)
    except (ValueError, SyntaxError):
        return
    if want is not _UNREADABLE:
        assert _string_list(s) == want


@FUZZ
@given(items=st.lists(st.text(max_size=20), max_size=6))
def test_the_repr_of_any_list_of_strings_round_trips(items: list[str]) -> None:
    assert parse_prompt(repr(items)) == "\n".join(items)
    spaced = "[ " + " ,\n ".join(map(repr, items)) + (" , ]" if items else "]")  # spaces and a trailing comma
    assert parse_prompt(spaced) == "\n".join(items)


@FUZZ
@given(raw=st.text(max_size=40), limit=st.integers(0, 40))
def test_the_length_limit_is_the_only_error(raw: str, limit: int) -> None:
    if len(raw) > limit:
        with pytest.raises(DataError, match=f"more than {limit} characters"):
            parse_prompt(raw, where="x.csv row 3, column 'prompt'", max_chars=limit)
    else:
        assert isinstance(parse_prompt(raw, max_chars=limit), str)
