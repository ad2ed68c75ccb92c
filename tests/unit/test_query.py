"""Query syntax: operators, phrases, exclusions; highlights and word matching."""

from __future__ import annotations

import datetime as dt

from hypothesis import example, given, settings
from hypothesis import strategies as st

from indexer.search.query import (
    QUERY_MAX_CHARS,
    contains_phrase,
    content_terms,
    looks_like_identifier,
    parse_day,
    parse_query,
    too_long_message,
    word_spans,
)
from tests.support.timing import cpu_seconds


def test_operators_are_split_from_the_text() -> None:
    q = parse_query('budget review type:pdf in:Projects after:2025-01-01 before:2025-03 -draft "cloud hosting" kind:image')
    assert q.text == "budget review cloud hosting"
    assert q.exts == ["pdf"]
    assert q.folders == ["Projects"]
    assert q.after == dt.date(2025, 1, 1)
    assert q.before == dt.date(2025, 3, 1)
    assert q.excludes == ["draft"]
    assert q.phrases == ["cloud hosting"]
    assert q.kind == "image"
    assert q.terms == ["budget", "review", "cloud", "hosting"]


def test_lists_years_and_sort() -> None:
    q = parse_query("type:.PDF,docx ext:txt after:2024 sort:date")
    assert q.exts == ["pdf", "docx", "txt"]
    assert q.after == dt.date(2024, 1, 1)
    assert q.sort == "date"
    assert q.text == ""
    assert q.has_filters()


def test_unknown_pairs_and_bad_dates_stay_text() -> None:
    q = parse_query(r"error:42 C:\Users http://x after:someday")
    assert q.text == r"error:42 C:\Users http://x after:someday"
    assert q.after is None
    assert q.problems and "after" in q.problems[0]
    assert parse_query("kind:banana").problems


def test_negated_phrase_and_lone_dash() -> None:
    q = parse_query('-"old version" - notes')
    assert q.excludes == ["old version"]
    assert q.text == "- notes"
    assert q.terms == ["notes"]


def test_content_terms_skip_stop_words_and_duplicates() -> None:
    assert content_terms("How do I water THE tomatoes, the Tomatoes?") == ["water", "tomatoes"]
    assert content_terms("ERR_QUUX_4711 crashed") == ["err_quux_4711", "crashed"]


def test_identifier_detection() -> None:
    for word in ("ERR_QUUX_4711", "parseConfig", "v2", "os.path", "HTTP"):
        assert looks_like_identifier(word), word
    for word in ("water", "Tomatoes", "budget"):
        assert not looks_like_identifier(word), word


def test_highlight_spans_are_whole_words_case_insensitive() -> None:
    text = "Water tomato plants; the Tomatoes like water. Waterproofing. Stomato."
    spans = word_spans(text, ["water", "tomato"])
    words = [text[s:e] for s, e in spans]
    assert words == ["Water", "tomato", "Tomatoes", "water"]  # "Waterproofing" is another word, "Stomato" not a word start
    assert word_spans(text, [], ["plants the"]) == []  # punctuation breaks a phrase
    assert [text[s:e] for s, e in word_spans(text, [], ["the tomatoes"])] == ["the Tomatoes"]


def test_contains_phrase_tolerates_whitespace_only() -> None:
    assert contains_phrase("the cloud\n  hosting bill", "cloud hosting")
    assert not contains_phrase("cloudhosting", "cloud hosting")
    assert not contains_phrase("the cloudy hosting", "cloud hosting")


# ---------------------------------------------------------------- issue 11.3: linear time
# Shapes that make a backtracking regex rescan the same text: long runs of one
# character class, separators between them, unclosed quotes, operator-like pairs.
_UNITS = st.text(alphabet="aZé1_.'-\":! \t", min_size=1, max_size=4)


def _cpu_seconds(fn: object, *args: object) -> float:
    return cpu_seconds(fn, *args)  # type: ignore[arg-type]


def _query_helpers(raw: str) -> None:
    q = parse_query(raw)
    looks_like_identifier(raw)
    for word in q.text.split():
        looks_like_identifier(word)
    content_terms(raw)
    # Highlighting a long passage with a normal query, and a normal passage with this one.
    word_spans(raw, ["budget", "a", "z"], ["a a b", "z"])
    word_spans("a budget review; a a a z", q.terms[:50], q.phrases[:5])
    contains_phrase(raw, "a a a a b")
    contains_phrase(raw, "aaaa")


@settings(max_examples=25, deadline=None)
@given(unit=_UNITS)
@example(unit="a")  # 100,000 letters: 214 s in the old identifier check
@example(unit="é")
@example(unit="a.")
@example(unit="-a'")
@example(unit='"a ')
@example(unit="a \t")
@example(unit="after:")
def test_query_parsing_and_highlighting_run_in_linear_time(unit: str) -> None:
    for n in (10_000, 100_000):
        raw = (unit * (n // len(unit) + 1))[:n]
        spent = _cpu_seconds(_query_helpers, raw)
        # Linear code needs well under a tenth of this; a quadratic regex needs 0.8 s
        # at 10k characters and minutes at 100k.
        assert spent < 0.25 + n * 10e-6, (unit, n, spent)


def test_query_length_limit_has_a_clear_message() -> None:
    assert too_long_message("budget " * 10) == ""
    assert too_long_message("x" * QUERY_MAX_CHARS) == ""
    msg = too_long_message("x" * 100_000)
    assert msg.startswith("Query too long") and "100,000" in msg and f"{QUERY_MAX_CHARS:,}" in msg
    assert "\n" not in msg


# ---------------------------------------------------------------- issue 11.9: dates
def test_impossible_dates_are_ignored_with_a_note_that_names_them() -> None:
    for value in ("2025-13", "2025-02-30", "0000-01-01", "10000-01-01", "2025-00", "1" * 5000):
        q = parse_query(f"budget after:{value}")
        assert q.after is None, value
        assert len(q.problems) == 1 and q.problems[0].startswith(f"after:{value[:20]}"), q.problems
        assert "not a date" in q.problems[0]
        assert parse_day(value) is None
    # The extremes Python can represent are dates, not problems.
    assert parse_query("after:0001-01-01").after == dt.date(1, 1, 1)
    assert parse_query("before:9999-12-31").before == dt.date(9999, 12, 31)
