from datetime import datetime

from hypothesis import given
from hypothesis import strategies as st

from agentroute.memory._text import (
    approx_tokens,
    entities,
    normalise_answer,
    parse_session_date,
    resolve_relative,
    stem,
    terms,
    time_notes,
)


def test_stem_merges_inflections():
    assert stem("painting") == stem("painted") == stem("paints") == stem("paint")
    assert stem("agencies") == stem("agency")
    assert terms("What did Caroline research?") == [stem("caroline"), "research"]


def test_session_date_and_relative_times():
    d = parse_session_date("1:56 pm on 8 May, 2023")
    assert d == datetime(2023, 5, 8, 13, 56)
    assert parse_session_date("not a date") is None
    assert resolve_relative("yesterday", d) == "7 May 2023"
    assert resolve_relative("last week", d) == "the week before 8 May 2023"
    assert resolve_relative("last year", d) == "2022"
    assert resolve_relative("next month", d) == "June 2023"
    assert resolve_relative("two days ago", d) == "6 May 2023"
    assert resolve_relative("last Friday", d) == "the friday before 8 May 2023"
    assert time_notes("I went there yesterday and last week", d) == [
        "yesterday = 7 May 2023",
        "last week = the week before 8 May 2023",
    ]
    assert time_notes("yesterday", None) == []


def test_answer_normalisation_matches_date_forms():
    assert normalise_answer("October 19, 2022") == normalise_answer("19 October 2022")
    assert normalise_answer("15 June, 2023") == normalise_answer("15 June 2023")
    note = normalise_answer("[last week = the week before 9 June 2023]")
    assert normalise_answer("The week before 9 June 2023") in note
    assert normalise_answer("A vase!") == "vase"


def test_entities_skip_sentence_words():
    assert entities("When did Caroline visit Paris with Oliver's sister?") == ["caroline", "paris", "oliver"]


@given(st.text(max_size=300))
def test_normalise_is_idempotent(s):
    once = normalise_answer(s)
    assert normalise_answer(once) == once


@given(st.text(max_size=200), st.text(max_size=200))
def test_token_count_is_additive_within_rounding(a, b):
    assert approx_tokens(a) + approx_tokens(b) >= approx_tokens(a + b) >= max(approx_tokens(a), approx_tokens(b))
