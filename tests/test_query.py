"""Query syntax: operators, phrases, exclusions; highlights and word matching."""

from __future__ import annotations

import datetime as dt

from indexer.query import contains_phrase, content_terms, looks_like_identifier, parse_query, word_spans


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
