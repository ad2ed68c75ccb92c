"""Passages end where a short answer ends (issue 15.3, docs/SEARCH.md "Chunk boundaries").

Notes, FAQs and READMEs hold many short answers one after another, without headings.
A passage that runs across two of them blurs both: the measured gain of 600 / 240
character passages over 1000 / 400 on pyfaq-long (answers inside long notes, MRR@10
0.481 → 0.512) came from breaks landing on answer ends. Here: each answer of a note
is held by one passage whose only other text is the overlap carried from its neighbour.
"""

from __future__ import annotations

import random

from indexer.ingest.chunk import MAX_CHARS, OVERLAP, chunk_text

_WORDS = ("index search file folder photo passage answer model vector query result window "
          "backup disk chair plant budget review meeting summary report").split()


def _note(n_answers: int, seed: int = 3) -> tuple[str, list[tuple[int, int]]]:
    rng = random.Random(seed)
    text, spans = "", []
    for _ in range(n_answers):
        sentences = []
        while sum(map(len, sentences)) < rng.randint(250, 420):
            sentences.append(" ".join(rng.choices(_WORDS, k=rng.randint(6, 12))).capitalize() + ".")
        para = " ".join(sentences)
        if text:
            text += "\n\n"
        spans.append((len(text), len(text) + len(para)))
        text += para
    return text, spans


def test_each_short_answer_has_a_passage_of_its_own() -> None:
    text, spans = _note(9)
    chunks = chunk_text(text)
    carried = int(MAX_CHARS * OVERLAP) + 2  # the overlap from the previous passage, and the blank line
    for start, end in spans:
        holders = [c for c in chunks if c.start <= start and c.end >= end]
        assert holders, f"no passage holds the answer at {start}-{end}"
        extra = min((c.end - c.start) - (end - start) for c in holders)
        assert extra <= carried, f"the answer at {start}-{end} shares its passage with {extra} characters of others"


def test_passages_still_fit_the_window() -> None:
    text, _ = _note(30, seed=5)
    chunks = chunk_text(text)
    assert all(len(c.text) <= MAX_CHARS for c in chunks)
    assert all(text[c.start : c.end] == c.text for c in chunks)
    assert chunks[-1].end == len(text)
