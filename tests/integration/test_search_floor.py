"""One relevance floor for every lane, listings with thumbnails, and the image model's
state as a side note, never the answer (issue 14.6, 14.10, 14.11)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from indexer.search.ranking import NO_MATCH, Searcher
from tests.integration.test_search import corpus, indexed  # noqa: F401 - module fixtures (one indexed corpus)


def _floor_for(searcher: Searcher, r: Any, lane: str) -> float:
    rk = searcher.ranking
    if lane == "similar":
        return rk.similar_floor
    return rk.image_floor if r.kind == "image" else rk.floor


def test_no_lane_lists_a_result_below_its_floor(indexed: Any, corpus: Path) -> None:  # noqa: F811
    searcher = indexed.searcher()
    lanes: list[tuple[str, Any]] = []
    for q in ("encrypt the backup disk", "office chairs", "sync service stopped", "red picture",
              "tomato plants", "weekly operations summary"):
        lanes.append(("text", searcher.search(q, limit=20)))
    lanes.append(("similar", searcher.similar_to(str(corpus / "logs" / "crash-0.log"), limit=20)))
    lanes.append(("similar", searcher.similar_to(str(corpus / "projects" / "manual.txt"), limit=20)))
    lanes.append(("similar", searcher.similar_to(str(corpus / "pictures" / "red.png"), limit=20)))
    lanes.append(("similar", searcher.similar_image(str(corpus / "pictures" / "green.jpg"), limit=20)))
    listed = 0
    for lane, resp in lanes:
        for r in resp.results:
            listed += 1
            assert r.score >= _floor_for(searcher, r, lane) - 1e-6, (lane, resp.query, r.path, r.score)
        if not resp.results:
            assert resp.message == NO_MATCH
    assert listed  # the check saw results


def test_a_long_file_is_shown_with_the_evidence_that_cleared_the_floor(indexed: Any) -> None:  # noqa: F811
    resp = indexed.searcher().search("encrypt the backup disk with a passphrase", limit=5)
    manual = [r for r in resp.results if r.name == "manual.txt"]
    assert manual, [r.name for r in resp.results]
    assert manual[0].score >= indexed.searcher().ranking.floor


def test_listing_images_by_filter_carries_their_thumbnails(indexed: Any) -> None:  # noqa: F811
    resp = indexed.searcher().search("kind:image")
    assert resp.results and all(r.kind == "image" for r in resp.results)
    assert resp.ranked is False  # a listing: no relevance to show
    for r in resp.results:
        assert r.thumbnail and os.path.isfile(r.thumbnail), r
        assert r.width and r.height


def test_image_model_state_is_a_note_not_the_answer(indexed: Any) -> None:  # noqa: F811
    s = indexed.searcher()
    blind = Searcher(s.store, s.text_embedder, None, paths=indexed.paths, settings=indexed.settings,
                     image_problem="the image model is not downloaded yet")
    resp = blind.search("zxqv blorft wempiality")
    assert resp.results == [] and resp.message == NO_MATCH
    assert "not downloaded" in resp.note
    resp = blind.search("tomato plants")
    assert resp.results and resp.message == ""
