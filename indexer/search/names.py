"""File names and titles → files, matched in memory (search as you type).

Names are matched here, not in the keyword index: a name is short, and a file
waiting for a model is findable by its name from the moment it is scanned.
"""

from __future__ import annotations

import bisect
import re

from indexer.store.tables import FileRecord

NAME_WORDS = re.compile(r"[A-Za-z][a-z]+|[A-Z]+(?![a-z])|\d+|[^\W\d_]+", re.UNICODE)
"""The words of a name: camelCase, ALLCAPS, digits and other scripts split apart."""


class NameIndex:
    """Words of file names and titles → files, for name matching in microseconds.

    Built once per version of the files table (store.files() is cached the same
    way), so a query does no work proportional to the number of files.
    """

    def __init__(self, files: dict[str, FileRecord]) -> None:
        postings: dict[str, set[str]] = {}
        self.words: dict[str, int] = {}
        for fid, rec in files.items():
            words = self.tokens(rec.name + " " + rec.title)
            self.words[fid] = len(words) or 1
            for w in words:
                postings.setdefault(w, set()).add(fid)
        self.postings = postings
        self.sorted_tokens = sorted(postings)

    @classmethod
    def tokens(cls, text: str) -> set[str]:
        return {m.group(0).lower() for m in NAME_WORDS.finditer(text)}

    def lookup(self, term: str, *, max_tokens: int = 200) -> set[str]:
        """Files with a name word that starts with ``term`` (search as you type)."""
        out: set[str] = set()
        i = bisect.bisect_left(self.sorted_tokens, term)
        for tok in self.sorted_tokens[i : i + max_tokens]:
            if not tok.startswith(term):
                break
            out |= self.postings[tok]
        return out

    def match(self, terms: list[str]) -> dict[str, float]:
        """fid → share of the query words found in its name/title."""
        parts: list[list[str]] = []
        for term in terms:
            pieces = sorted(self.tokens(term))
            if pieces:
                parts.append(pieces)
        if not parts:
            return {}
        hits: dict[str, float] = {}
        for pieces in parts:
            found: set[str] | None = None
            for piece in pieces:  # ERR_QUUX_4711 must match all its pieces
                got = self.lookup(piece)
                found = got if found is None else found & got
                if not found:
                    break
            for fid in found or ():
                hits[fid] = hits.get(fid, 0.0) + 1.0 / len(parts)
        return hits
