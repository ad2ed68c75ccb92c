"""Split extracted text into passages that fit the text model's window.

all-MiniLM-L6-v2 reads at most 256 word pieces (and silently truncates the
rest), so each chunk's body is kept under ``MAX_TOKENS`` *estimated* word pieces,
leaving room for the "title — heading" prefix that ``embedding_input`` adds.
The estimate is a cheap regex count calibrated against the real tokenizer
(tests/unit/test_chunk.py checks it with the tokenizer itself); no tokenizer is
loaded here.

Breaks are preferred at headings (always), then paragraph ends, sentence ends,
line ends, and finally spaces; consecutive chunks overlap by ~15% unless a
heading starts the next one. Spans are exact: ``text[c.start:c.end] == c.text``.
Work is linear in the text length (each step looks at one window).
"""

from __future__ import annotations

import bisect
import logging
import re
import string

from indexer.types import Chunk

log = logging.getLogger(__name__)

# 600 / 240 (was 1000 / 400): breaks land on paragraph and answer boundaries, overlap is
# 90 characters; measured better on every labelled set and ~14 % fewer characters to
# embed (docs/SEARCH.md, "Chunk boundaries"; tests/integration/test_quality_floor.py).
MAX_CHARS = 600  # upper bound on a chunk's length in characters
MIN_CHARS = 240  # below this, only a heading (or the end) may end a chunk
MAX_TOKENS = 180  # estimated word pieces of body; 256 - prefix (<= ~40) - [CLS]/[SEP]
OVERLAP = 0.15
MAX_CHUNKS = 5000  # per file: a megafile beyond this is indexed partially
HEADING_MAX = 120  # longer "heading" lines are prose
PREFIX_PART_MAX = 80  # chars of title and of heading in the embedding prefix

_NONSPACE = re.compile(r"\S")
_SENTENCE_ENDS = (". ", "! ", "? ", ".\n", "!\n", "?\n", "。", "！", "？", "; ")

# Patterns are written to stay linear on megabyte-long lines (no nested quantifiers).
_ATX = re.compile(r"\n {0,3}#{1,6}[ \t]+([^\n]+)")
_UNDERLINE = re.compile(r"\n([=\-~^*+#\"'`])\1{2,}[ \t]*(?=\n|\Z)")
_TITLE_LINE = re.compile(r"\n[ \t]*\n([A-Z][^\n.!?:;,]{1,80}?)[ \t]*(?=\n[ \t]*\n)")
_FENCE = re.compile(r"^ {0,3}(```|~~~).*?^ {0,3}\1", re.MULTILINE | re.DOTALL)
_SMALL_WORDS = frozenset("a an and as at but by for from in into of on or the to vs via with".split())


def _delete_all_but(keep: bytes) -> bytes:
    return bytes(b for b in range(256) if b not in keep)


_DEL_NON_PUNCT = _delete_all_but(string.punctuation.encode())
_DEL_NON_DIGIT = _delete_all_but(string.digits.encode())
_DEL_NON_ALPHA = _delete_all_but(string.ascii_letters.encode())
# ASCII letters/digits -> "a", everything else -> " ": split() then counts letter/digit
# runs, so "self._roots.get" is 3 words, as the tokenizer sees it.
_RUNS_TABLE = bytes(ord("a") if chr(i).isalnum() and i < 128 else ord(" ") for i in range(256))


def estimate_tokens(s: str) -> int:
    """Approximate BERT word-piece count of ``s`` in ~50 µs per 1,000 chars.

    letter/digit runs + ASCII punctuation + half the digits + one per non-ASCII character
    (CJK is about a piece per character) + one per 10 letters (long words split).
    Calibrated on prose, Markdown, code, numbers and CJK against the real
    tokenizer: mean ratio ~0.97, rarely below 0.75 (tests/unit/test_chunk.py).
    Byte-level ``translate`` keeps this in C; a per-word Python loop was 10x slower.
    """
    b = s.encode("utf-8", "surrogatepass")
    extra = len(b) - len(s)  # 1 per accented Latin char, 2 per CJK char
    return (
        len(b.translate(_RUNS_TABLE).split())
        + len(b.translate(None, _DEL_NON_PUNCT))
        + len(b.translate(None, _DEL_NON_DIGIT)) // 2
        + extra // 2
        + len(b.translate(None, _DEL_NON_ALPHA)) // 10
    )


def _is_title_case(line: str) -> bool:
    words = line.split()
    if not 1 <= len(words) <= 10:
        return False
    caps = sum(1 for w in words if w[0].isupper() or not w[0].isalpha())
    small = sum(1 for w in words if w.lower() in _SMALL_WORDS)
    return caps + small >= len(words) and caps >= 1


def find_headings(text: str) -> list[tuple[int, str]]:
    """``(offset where the heading line starts, heading text)``, sorted by offset."""
    found: dict[int, str] = {}
    # Patterns start with "\n" (fast literal scan in sre); a leading newline
    # makes offset 0 behave like any other line start.
    padded = "\n\n" + text
    for m in _ATX.finditer(padded):
        title = m.group(1).strip().rstrip("#").strip()
        if title and len(title) <= HEADING_MAX:
            found[m.start() - 1] = title
    for m in _UNDERLINE.finditer(text):
        # The underlined line is the one just before this match (rst, setext).
        line_start = text.rfind("\n", max(0, m.start() - HEADING_MAX - 1), m.start()) + 1
        title = text[line_start : m.start()].strip()
        if line_start == 0 and m.start() > HEADING_MAX:
            continue  # no line break within reach: a long line, not a heading
        if title and not set(title) <= set("=-~^*+#\"'`") and (line_start == 0 or text[line_start - 1] == "\n"):
            found.setdefault(line_start, title)
    for m in _TITLE_LINE.finditer(padded):
        if _is_title_case(m.group(1)):
            found.setdefault(m.start(1) - 2, m.group(1).strip())
    del padded
    if found and ("```" in text or "~~~" in text):
        # '# comment' lines inside fenced code blocks are not headings.
        fences = [(m.start(), m.end()) for m in _FENCE.finditer(text)]
        starts = [f[0] for f in fences]
        for k in list(found):
            i = bisect.bisect_right(starts, k) - 1
            if i >= 0 and k < fences[i][1]:
                del found[k]
    return sorted((k, " ".join(v.split())[:HEADING_MAX]) for k, v in found.items())


def _best_break(text: str, pos: int, limit: int) -> int:
    """End offset in (pos, limit]: paragraph > sentence > line > space > hard cut."""
    lo = pos + MIN_CHARS if limit - pos > MIN_CHARS else pos + 1
    i = text.rfind("\n\n", lo, limit)
    if i > pos:
        return i
    best = max(text.rfind(s, lo, limit - len(s) + 1) + len(s.rstrip()) for s in _SENTENCE_ENDS)
    if best > pos:
        return best
    i = text.rfind("\n", lo, limit)
    if i > pos:
        return i
    i = max(text.rfind(" ", lo, limit), text.rfind("\t", lo, limit))
    if i > pos:
        return i
    return limit


def _fit(text: str, pos: int, end: int) -> int:
    """Shrink ``end`` until the estimated token count fits the window."""
    for _ in range(6):
        est = estimate_tokens(text[pos:end])
        if est <= MAX_TOKENS:
            return end
        target = pos + max(1, int((end - pos) * MAX_TOKENS / est * 0.95))
        end = _best_break(text, pos, target) if target - pos > 1 else target
    return end


def chunk_text(text: str, title: str = "", *, headings: bool = True, max_chunks: int = MAX_CHUNKS) -> list[Chunk]:
    """Split ``text`` into chunks with exact spans, nearest heading and ~15% overlap.

    ``headings=False`` (source code, data) stops '# comment' lines from acting
    as headings. At most ``max_chunks`` chunks are returned; when the cap is hit
    the last chunk ends before ``len(text)`` (the caller may flag truncation).
    ``title`` is accepted for symmetry with ``embedding_input``; it does not change the split.
    """
    n = len(text)
    heads = find_headings(text) if headings else []
    head_pos = [h[0] for h in heads]
    chunks: list[Chunk] = []
    overlap = int(MAX_CHARS * OVERLAP)
    pos = 0
    while len(chunks) < max_chunks:
        m = _NONSPACE.search(text, pos)
        if m is None:
            break
        pos = m.start()
        limit = min(n, pos + MAX_CHARS)
        k = bisect.bisect_right(head_pos, pos)
        forced = k < len(heads) and head_pos[k] < limit
        if forced:
            limit = head_pos[k]
        end = limit if forced or limit == n else _best_break(text, pos, limit)
        end = _fit(text, pos, end)
        stop = end
        while stop > pos and text[stop - 1].isspace():
            stop -= 1
        if stop > pos:
            h = bisect.bisect_right(head_pos, pos) - 1
            chunks.append(Chunk(text=text[pos:stop], start=pos, end=stop, heading=heads[h][1] if h >= 0 else ""))
        if end >= n:
            break
        if forced and end == limit:
            pos = end  # a heading starts a fresh section: no overlap across it
            continue
        nxt = max(pos + 1, end - overlap)
        space = text.find(" ", nxt, end)  # start the overlap on a word boundary
        if space != -1:
            nxt = space + 1
        # Never let the overlap reach back over a heading into the previous section.
        j = bisect.bisect_right(head_pos, end) - 1
        if j >= 0 and head_pos[j] > pos:
            nxt = max(nxt, head_pos[j])
        pos = nxt if nxt < end else end
    if len(chunks) >= max_chunks and chunks[-1].end < len(text.rstrip()):
        log.info("chunk cap reached (%d chunks); the rest of the text is not embedded", max_chunks)
    return chunks


def embedding_input(chunk: Chunk, title: str) -> str:
    """What the text model reads: ``"title — heading\\nchunk text"`` (empty parts dropped)."""
    t = " ".join(title.split())[:PREFIX_PART_MAX]
    h = " ".join(chunk.heading.split())[:PREFIX_PART_MAX]
    if h and t and (h.lower() == t.lower()):
        h = ""
    prefix = " — ".join(p for p in (t, h) if p)
    return f"{prefix}\n{chunk.text}" if prefix else chunk.text
