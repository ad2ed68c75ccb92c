"""The documents' cutoff (`Searcher._group`, docs/SEARCH.md "Ranking" step 4).

Candidates are built by hand with known cosines and keyword bonuses, so what is tested
is the rule alone: the floor, the gap on evidence, and the gap on the passage's cosine
that keeps a paraphrase the keyword bonus would otherwise push out.
"""

from __future__ import annotations

import types
from pathlib import Path

from indexer.search.query import parse_query
from indexer.search.ranking import Ranking, Searcher, _Candidate
from indexer.shared.search import _cut
from indexer.store.tables import FileRecord
from indexer.types import SearchResult


def _files(tmp_path: Path, *names: str) -> dict[str, FileRecord]:
    return {
        n: FileRecord(fid=n, path=str(tmp_path / n), root=str(tmp_path), kind="text", size=10, mtime_ns=0,
                      state="indexed", n_chunks=1)
        for n in names
    }


def _cand(fid: str, sim: float, keyword: float, weight: float = 0.15) -> _Candidate:
    return _Candidate(fid=fid, text=f"passage of {fid}", start=0, end=10, sim=sim, keyword=keyword,
                      score=sim + weight * keyword)


def _group(cands: list[_Candidate], files: dict[str, FileRecord], query: str) -> list[SearchResult]:
    searcher = types.SimpleNamespace(ranking=Ranking())  # _group reads only the ranking's constants
    rk = searcher.ranking
    return Searcher._group(searcher, cands, files, 10, parsed=parse_query(query),  # type: ignore[arg-type]
                           floor=rk.floor, gap=rk.gap, kind="text")


def test_a_paraphrase_as_close_as_the_keyword_match_is_kept(tmp_path: Path) -> None:
    files = _files(tmp_path, "exact.txt", "paraphrase.txt", "junk.txt", "far.txt")
    cands = [
        _cand("exact.txt", sim=0.70, keyword=1.0),  # evidence 0.85: has every word of the query
        _cand("paraphrase.txt", sim=0.52, keyword=0.0),  # 0.33 below on evidence, 0.18 on meaning
        _cand("junk.txt", sim=0.38, keyword=0.1),  # more than the gap below on both
        _cand("far.txt", sim=0.24, keyword=0.0),  # under the floor
    ]
    got = _group(cands, files, "rotate the log files nightly")
    assert [r.name for r in got] == ["exact.txt", "paraphrase.txt"]
    assert got[1].similarity == 0.52
    assert got[1].score == 0.52  # shown with its evidence, not lifted to the top's


def test_the_cosine_test_keeps_the_floor(tmp_path: Path) -> None:
    files = _files(tmp_path, "exact.txt", "near.txt")
    cands = [_cand("exact.txt", sim=0.26, keyword=1.0), _cand("near.txt", sim=0.24, keyword=0.0)]
    assert [r.name for r in _group(cands, files, "ERR_QUUX_4711")] == ["exact.txt"]


def test_a_shared_library_cuts_its_merged_answers_the_same_way() -> None:
    def doc(name: str, score: float, similarity: float | None = None) -> SearchResult:
        return SearchResult(path=f"/x/{name}", kind="text", score=score, name=name, similarity=similarity)

    ranked = [doc("exact", 0.95, 0.55), doc("paraphrase", 0.52, 0.52), doc("weak", 0.34, 0.24), doc("named", 0.70)]
    ranked.sort(key=lambda r: -r.score)
    assert [r.name for r in _cut(ranked, 0.30)] == ["exact", "named", "paraphrase"]
