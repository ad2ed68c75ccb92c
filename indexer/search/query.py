"""Query syntax shared by the window and the CLI.

A query is free text plus optional operators, in any order::

    budget review type:pdf in:Projects after:2025-01-01 -draft "cloud hosting"

- ``type:pdf`` / ``ext:pdf`` — extension (repeatable; ``type:pdf,docx`` too)
- ``kind:image`` / ``kind:text`` / ``kind:other`` — what sort of file
- ``in:Projects`` — a folder name, or a path fragment such as ``in:work/2025``
- ``after:2025-01-01`` — modified on or after (``2025`` and ``2025-03`` work too)
- ``before:2025-02`` — modified before
- ``sort:date`` — newest first among the relevant files
- ``"exact phrase"`` — the shown passage (or the file name) must contain it
- ``-word`` / ``-"two words"`` — drop files whose text or name contains it
  (on its own, ``-draft`` lists the newest files without it)

Anything else, including unknown ``word:thing`` pairs (``error:42``, ``C:\\x``),
stays part of the text. Parsing never fails: a malformed or impossible date
(``after:2025-13``) becomes text and a note in ``problems`` so the window and the
CLI can say what they ignored.

Queries are people's input, so every regular expression here runs in time linear
in its length (no nested or overlapping quantifiers; tests/unit/test_query.py times the
shapes that would backtrack), and a query longer than `QUERY_MAX_CHARS` is refused
with `too_long_message` before any work is done.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import re

STOP_WORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had
    has have having he her here hers herself him himself his how i if in into is it its itself just
    me more most my myself no nor not of off on once only or other our ours ourselves out over own
    same she should so some such than that the their theirs them themselves then there these they
    this those through to too under until up very was we were what when where which while who whom
    why will with would you your yours yourself yourselves""".split()
)
"""Words too common to be worth a keyword match or a highlight."""

KINDS = {
    "image": "image", "images": "image", "photo": "image", "photos": "image", "picture": "image",
    "text": "text", "doc": "text", "docs": "text", "document": "text", "documents": "text",
    "other": "other", "file": "other", "files": "other", "all": "all", "any": "all",
}

QUERY_MAX_CHARS = 1000
"""Longest query searched (about 150 words): far past what a person types or the text
model reads (256 tokens), short enough that no part of a search grows with it."""

RESULTS_MAX = 1000
"""Most results one search returns (``limit`` / ``--limit`` must be 1..RESULTS_MAX)."""

QUERY_TOO_LONG = "Query too long"

# Each pattern is linear: no quantified group can match the same text two ways.
_TOKEN = re.compile(r'-?"[^"]*"?|\S+')
_WORD = re.compile(r"\w+(?:[._'\-]\w+)*", re.UNICODE)
# Not "[A-Za-z]*\d": searched from every position, that rescans a long run of
# letters each time (quadratic: 214 s for a 100,000-letter word). "\d" matches
# the same words.
_IDENTIFIER = re.compile(r"\d|_|[a-z][A-Z]|\.\w|[A-Z]{2,}")


@dataclasses.dataclass
class ParsedQuery:
    """What a query string asks for, split into text and filters."""

    text: str = ""  # what the models read: free words and phrases, operators removed
    phrases: list[str] = dataclasses.field(default_factory=list)
    excludes: list[str] = dataclasses.field(default_factory=list)
    exts: list[str] = dataclasses.field(default_factory=list)
    folders: list[str] = dataclasses.field(default_factory=list)  # names or path fragments
    after: dt.date | None = None
    before: dt.date | None = None
    kind: str | None = None
    sort: str | None = None
    problems: list[str] = dataclasses.field(default_factory=list)

    @property
    def terms(self) -> list[str]:
        """Distinct content words of the text, lower-cased, stop words dropped."""
        return content_terms(self.text)

    def has_filters(self) -> bool:
        return bool(self.phrases or self.excludes or self.exts or self.folders or self.after or self.before or self.kind)


def content_terms(text: str) -> list[str]:
    """Lower-cased words worth matching, in order, without duplicates or stop words."""
    out: list[str] = []
    for m in _WORD.finditer(text):
        word = m.group(0).lower()
        if word in STOP_WORDS or word in out:
            continue
        if len(word) == 1 and not word.isdigit():
            continue
        out.append(word)
    return out


def looks_like_identifier(word: str) -> bool:
    """Tokens such as ERR_QUUX_4711, parseConfig, v2.3, HTTP: found by keyword, not meaning."""
    return bool(_IDENTIFIER.search(word))


def too_long_message(raw: str) -> str:
    """'' when ``raw`` may be searched; otherwise the one line that says why not."""
    n = len((raw or "").strip())
    if n <= QUERY_MAX_CHARS:
        return ""
    return (
        f"{QUERY_TOO_LONG}: {n:,} characters, and search reads at most {QUERY_MAX_CHARS:,}. "
        "Shorten it to the words that matter."
    )


def parse_query(raw: str) -> ParsedQuery:
    """Split a query into text and filters; linear in ``len(raw)``, never raises."""
    q = ParsedQuery()
    words: list[str] = []
    for m in _TOKEN.finditer(raw or ""):
        tok = m.group(0)
        negated = tok.startswith("-") and len(tok) > 1
        body = tok[1:] if negated else tok
        if body.startswith('"'):
            phrase = " ".join(body.strip('"').split())
            if not phrase:
                continue
            if negated:
                q.excludes.append(phrase.lower())
            else:
                q.phrases.append(phrase)
                words.append(phrase)
            continue
        if negated and not body.startswith("-") and _WORD.fullmatch(body):
            q.excludes.append(body.lower())
            continue
        key, sep, value = tok.partition(":")
        if sep and value and _apply_operator(q, key.lower(), value):
            continue
        words.append(tok)
    q.text = " ".join(words).strip()
    return q


def _apply_operator(q: ParsedQuery, key: str, value: str) -> bool:
    """Apply ``key:value``; False when it is not an operator (then it stays text)."""
    if key in ("type", "ext"):
        exts = [e.lower().lstrip(".") for e in value.split(",") if e.strip(". ")]
        q.exts.extend(e for e in exts if e not in q.exts)
        return bool(exts)
    if key == "kind":
        kind = KINDS.get(value.lower())
        if kind is None:
            q.problems.append(f"kind:{value} (use image, text or other)")
            return True
        q.kind = kind
        return True
    if key == "in":
        q.folders.append(value.strip('"'))
        return True
    if key in ("after", "since", "before"):
        day = parse_day(value, end=False)
        if day is None:
            q.problems.append(f"{key}:{value} (not a date; use 2025-01-31, 2025-01 or 2025)")
            return False
        if key == "before":
            q.before = day
        else:
            q.after = day
        return True
    if key == "sort" and value.lower() in ("date", "relevance", "newest"):
        q.sort = "relevance" if value.lower() == "relevance" else "date"
        return True
    return False


def parse_day(value: str, *, end: bool = False) -> dt.date | None:
    """``2025``, ``2025-03`` or ``2025-03-09`` → the first day of that period.

    None for anything else, including impossible dates (``2025-13``, ``2025-02-30``,
    year 0 or 10000): the caller says what it ignored.
    """
    value = value.strip()
    if len(value) > 32:
        return None  # no date is this long; keeps fromisoformat off pasted text
    try:
        if re.fullmatch(r"\d{4}", value):
            return dt.date(int(value), 1, 1)
        if re.fullmatch(r"\d{4}-\d{1,2}", value):
            y, m = value.split("-")
            return dt.date(int(y), int(m), 1)
        return dt.date.fromisoformat(value)
    except ValueError:
        return None


def word_spans(text: str, terms: list[str], phrases: list[str] = ()) -> list[tuple[int, int]]:  # type: ignore[assignment]
    """Character spans of query words/phrases in ``text`` (case-insensitive, whole words).

    A term also matches the start of a longer word (``tomato`` in ``tomatoes``),
    which is what a person expects from a highlight after stemming search.
    """
    spans: list[tuple[int, int]] = []
    for phrase in phrases:
        if phrase.split():
            spans.extend(m.span() for m in _phrase_regex(phrase).finditer(text))
    if terms:
        spans.extend(m.span() for m in _terms_regex(tuple(terms)).finditer(text))
    spans.sort()
    merged: list[tuple[int, int]] = []
    for s, e in spans:
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(e, merged[-1][1]))
        else:
            merged.append((s, e))
    return merged


def contains_phrase(text: str, phrase: str) -> bool:
    """Whole-word, case-insensitive, whitespace-tolerant containment."""
    if not phrase.split():
        return False
    return _phrase_regex(phrase).search(text) is not None


@functools.lru_cache(maxsize=256)
def _terms_regex(terms: tuple[str, ...]) -> re.Pattern[str]:
    """Any term at a word start, plus up to three more word characters (bounded)."""
    alternatives = "|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True))
    return re.compile(r"(?<!\w)(?:" + alternatives + r")\w{0,3}(?!\w)", re.IGNORECASE)


@functools.lru_cache(maxsize=256)
def _phrase_regex(phrase: str) -> re.Pattern[str]:
    """Literal words joined by possessive whitespace runs: no backtracking into a run."""
    return re.compile(r"(?<!\w)" + r"\s++".join(re.escape(p) for p in phrase.split()) + r"(?!\w)", re.IGNORECASE)
