"""How a shared searcher merges the other computers' answers with this one's (issue 19).

The parts are stand-ins here (no storage): what is tested is the merge on one scale,
the labels, and what is said about parts that were left out.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from indexer.search.ranking import NO_MATCH, Ranking
from indexer.shared.config import ShareConfig
from indexer.shared.remote import PartInfo
from indexer.shared.search import SharedSearcher
from indexer.types import SearchResponse, SearchResult


class _Model:
    def __init__(self, model_id: str) -> None:
        self.model_id = model_id
        self.dim = 4


class _Searcher:
    def __init__(self, results: list[SearchResult], *, fail: bool = False, delay: float = 0.0,
                 message: str = "") -> None:
        self.results = results
        self.fail = fail
        self.delay = delay
        self.message = message
        self.text_embedder = _Model("text-m")
        self.image_embedder = _Model("clip-a")
        self.ranking = Ranking()
        self.closed = False

    def search(self, query: str, **kw: Any) -> SearchResponse:
        if self.delay:
            time.sleep(self.delay)
        if self.fail:
            raise OSError("tcp connect error: Connection refused")
        return SearchResponse(results=[SearchResult(**vars(r)) for r in self.results], query=query,
                              message=self.message if not self.results else "")

    def close(self) -> None:
        self.closed = True


def _doc(name: str, score: float, kind: str = "text") -> SearchResult:
    return SearchResult(path=f"/home/x/{name}", kind=kind, score=score, name=name, folder="/home/x")  # type: ignore[arg-type]


def _shared(tmp_path: Path, local: _Searcher, parts: dict[str, tuple[PartInfo, _Searcher]]) -> SharedSearcher:
    sh = SharedSearcher(local, ShareConfig("s3://b/l", "mine", "here"), tmp_path, part_timeout_s=1.0,
                        bucket=object())  # type: ignore[arg-type]
    sh._other_parts = lambda deadline, notes: [info for info, _s in parts.values()]  # type: ignore[method-assign]
    sh._searcher_of = lambda info: parts[info.part_id][1]  # type: ignore[method-assign]
    return sh


def test_answers_merge_by_score_with_the_gap_and_say_their_computer(tmp_path: Path) -> None:
    local = _Searcher([_doc("mine.txt", 0.62), _doc("cat.png", 0.31, "image")])
    parts = {
        "a": (PartInfo("a", "alpha", models={"text": "text-m", "image": "clip-a"}),
              _Searcher([_doc("best.txt", 0.81), _doc("weak.txt", 0.40), _doc("dog.png", 0.35, "image")])),
        "b": (PartInfo("b", "beta", models={"text": "other-model"}), _Searcher([_doc("never.txt", 0.99)])),
        "c": (PartInfo("c", "gamma", models={"text": "text-m", "image": "clip-b"}), _Searcher([_doc("g.txt", 0.7)])),
        "d": (PartInfo("d", "delta", models={"text": "text-m"}), _Searcher([], fail=True)),
        "e": (PartInfo("e", "slow", models={"text": "text-m"}), _Searcher([_doc("late.txt", 0.9)], delay=3.0)),
    }
    sh = _shared(tmp_path, local, parts)
    try:
        resp = sh.search("bread")
    finally:
        sh.detach()
    got = [(r.name, r.computer) for r in resp.results]
    # One scale: best first across computers; 0.40 is more than the gap (0.30) below 0.81.
    assert got == [("best.txt", "alpha"), ("g.txt", "gamma"), ("mine.txt", ""), ("dog.png", "alpha"),
                   ("cat.png", "")]
    assert resp.counts == {"text": 3, "image": 2, "other": 0}
    best = resp.results[0]
    assert best.folder == "on alpha · /home/x" and resp.results[2].folder == "/home/x"
    assert "beta was not searched: it was indexed with another text model (other-model)." in resp.note
    assert "gamma's pictures were not searched" in resp.note
    assert "delta was not searched: the shared library cannot be reached." in resp.note
    assert "slow was not searched: it did not answer in time." in resp.note
    assert resp.elapsed_ms < 2900  # the slow part was not waited for


def test_nothing_here_but_something_elsewhere_is_not_no_good_match(tmp_path: Path) -> None:
    local = _Searcher([], message=NO_MATCH)
    parts = {"a": (PartInfo("a", "alpha", models={"text": "text-m"}), _Searcher([_doc("there.txt", 0.7)]))}
    sh = _shared(tmp_path, local, parts)
    try:
        resp = sh.search("bread")
    finally:
        sh.detach()
    assert [r.computer for r in resp.results] == ["alpha"] and resp.message == ""


def test_a_part_that_failed_is_left_alone_for_a_while(tmp_path: Path) -> None:
    failing = _Searcher([], fail=True)
    parts = {"d": (PartInfo("d", "delta", models={"text": "text-m"}), failing)}
    sh = _shared(tmp_path, _Searcher([_doc("mine.txt", 0.6)]), parts)
    calls = []
    real = failing.search
    failing.search = lambda *a, **k: calls.append(1) or real(*a, **k)  # type: ignore[method-assign]
    try:
        sh.search("one")
        second = sh.search("two")
    finally:
        sh.detach()
    assert len(calls) == 1  # not asked again on the next keystroke
    assert "delta was not searched" in second.note and [r.name for r in second.results] == ["mine.txt"]
