"""Search on the real text model and tiny CLIP: hybrid ranking, grouping, filters, cutoff, images."""

from __future__ import annotations

import dataclasses
import io
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from indexer.search.ranking import NO_MATCH, Ranking, Searcher
from tests.support.timing import cpu_seconds

DOCS = {
    "gardening.md": "# Tomatoes\n\nWater tomato plants deeply twice a week and stake them so the "
    "stems do not snap when the fruit gets heavy. Mulch keeps the soil moist.",
    "finance.txt": "Quarterly budget review. Operating expenses rose by four percent because of "
    "higher cloud hosting invoices; revenue grew faster, so the margin improved.",
    "astronomy.txt": "The telescope's primary mirror gathers starlight. Jupiter's moons are easy to "
    "spot with binoculars on a clear night far from city lights.",
    "cooking.md": "Knead the bread dough for ten minutes, let it rise until doubled, then bake at "
    "220 degrees until the crust sounds hollow when tapped.",
}
# Error reports that read alike. The one with ERR_QUUX_4711 is long and mentions the
# code once; the short ones carry look-alike codes, which a sentence model confuses.
LOGS = {
    f"logs/crash-{i}.log": f"The sync service stopped and reported error {code}."
    for i, code in enumerate(["ERR_QUUX_4712", "", "ERR_QUUZ_4711", "ERR_QUAX_4711", "ERR_QUUX_4117"])
}
LOGS["logs/crash-1.log"] = (
    "Weekly operations summary. The storage cluster was expanded with two new nodes and the "
    "backup window moved to Sunday night. Several users asked for more quota; requests were approved "
    "after review. During the Tuesday maintenance the sync service stopped once with ERR_QUUX_4711 "
    "and was restarted by the on-call engineer. Monitoring dashboards were reorganised by team, "
    "alert thresholds for disk latency were raised, and the old ticket queue was archived."
)


def _image(path: Path, color: tuple[int, int, int], pattern: int = 0) -> Path:
    img = Image.new("RGB", (64, 48), color)
    for x in range(0, 64, 4 + pattern):
        for y in range(48):
            img.putpixel((x, y), (255 - color[0], 255 - color[1], 255 - color[2]))
    img.save(path)
    return path


def _make_corpus(base: Path) -> Path:
    root = base / "home"
    for name, text in {**DOCS, **LOGS}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    long = root / "projects" / "manual.txt"
    long.parent.mkdir(parents=True)
    sections = [
        f"Section {i}. " + " ".join(f"Filler sentence {j} about office furniture and chairs." for j in range(12))
        for i in range(6)
    ]
    sections[4] = (
        "Section 4. Backups. The backup drive must be encrypted with a passphrase before it leaves the "
        "building. Encrypt every external backup disk; keep the passphrase in the password manager."
    )
    long.write_text("\n\n".join(sections), encoding="utf-8")
    (root / "quarterly_forecast_model.bin").write_bytes(b"\x00\x01\x02binary" * 50)
    pics = root / "pictures"
    pics.mkdir()
    _image(pics / "red.png", (220, 20, 20), 0)
    _image(pics / "green.jpg", (20, 200, 40), 3)
    _image(pics / "blue.webp", (20, 40, 220), 7)
    return root


OLD = time.mktime((2020, 6, 1, 12, 0, 0, 0, 0, -1))


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory, text_embedder: Any, tiny_clip: Any, tiny_clip_checkpoint: Path) -> Any:
    """One indexed corpus for the whole module (indexing is the slow part); tests only read it."""
    from indexer.library.runtime import Runtime
    from indexer.library.settings import Settings, open_paths, save_settings
    from tests.support.tiny_clip import TINY_CLIP_NAME

    base = tmp_path_factory.mktemp("search")
    root = _make_corpus(base)
    os.utime(root / "gardening.md", (OLD, OLD))
    paths = open_paths(base / "data")
    settings = Settings(
        folders=[str(root)], clip_model=TINY_CLIP_NAME, clip_pretrained="",
        clip_checkpoint=str(tiny_clip_checkpoint), allow_download=False,
    )
    save_settings(paths, settings)
    rt = Runtime(paths, settings)
    rt._text = text_embedder
    rt._image = tiny_clip
    summary = rt.service().index_roots([str(root)])
    assert summary.failed == 0
    rt.root = root
    yield rt
    rt.close()


@pytest.fixture
def corpus(indexed: Any) -> Path:
    return indexed.root


def _names(resp: Any) -> list[str]:
    return [Path(r.path).name for r in resp.results]


def test_identifier_is_found_by_keyword_where_vectors_alone_miss(indexed: Any) -> None:
    searcher = indexed.searcher()
    resp = searcher.search("ERR_QUUX_4711", kind="text")
    assert _names(resp)[0] == "crash-1.log"
    assert resp.results[0].highlights, "the code is highlighted in the passage"
    s, e = resp.results[0].highlights[0]
    assert resp.results[0].passage[s:e] == "ERR_QUUX_4711"
    vectors_only = Searcher(
        indexed.store, indexed.text_embedder, None,
        ranking=Ranking(keyword_k=0, keyword_weight=0, identifier_weight=0, short_query_weight=0, gap=1.0, floor=-1.0),
    )
    ranked = _names(vectors_only.search("ERR_QUUX_4711", kind="text"))
    assert ranked[0] != "crash-1.log", ranked  # meaning alone cannot tell the five reports apart


def test_paraphrase_is_found_by_meaning_where_keywords_miss(indexed: Any) -> None:
    searcher = indexed.searcher()
    resp = searcher.search("how often should I irrigate my vegetables", kind="text")
    assert _names(resp)[0] == "gardening.md"
    files = indexed.store.files()
    qvec = indexed.text_embedder.embed_query("irrigate vegetables")
    from indexer.search.filters import FileFilter

    rows = searcher._keyword_rows(["irrigate", "vegetables"], files, FileFilter(), 50)
    keyword_hits = searcher._keyword_candidates(rows, qvec, files, FileFilter(), 50)
    assert all(Path(files[c.fid].path).name != "gardening.md" for c in keyword_hits)


def test_one_result_per_file_with_the_right_passage_span(indexed: Any, corpus: Path) -> None:
    from indexer.ingest.extract import extract_text
    from indexer.library.settings import Settings

    resp = indexed.searcher().search("encrypt the backup disk with a password", kind="text")
    paths = [r.path for r in resp.results]
    assert len(paths) == len(set(paths))
    top = resp.results[0]
    assert Path(top.path).name == "manual.txt"
    assert indexed.store.files()[_fid(top.path)].n_chunks >= 3
    text = extract_text(top.path, Settings()).text
    assert text[top.passage_start : top.passage_end] == top.passage
    assert "passphrase" in top.passage
    assert top.score > 0


def test_filters_folder_extension_and_dates(indexed: Any, corpus: Path) -> None:
    import datetime as dt

    searcher = indexed.searcher()
    only_md = _names(searcher.search("bread dough", kind="text", limit=20, filters={"ext": ["md"]}))
    assert only_md[0] == "cooking.md" and all(n.endswith(".md") for n in only_md)
    only_txt = _names(searcher.search("bread dough type:txt", kind="text", limit=20))
    assert "cooking.md" not in only_txt and all(n.endswith(".txt") for n in only_txt)
    logs = _names(searcher.search("sync service stopped", kind="text", limit=20, filters={"folder": str(corpus / "logs")}))
    assert len(logs) >= 3 and all(n.startswith("crash-") for n in logs)
    # A folder prefix is path-safe: "log" is not a prefix of "logs/".
    assert not searcher.search("sync service stopped", kind="text", filters={"folder": str(corpus / "log")}).results
    assert all(n.startswith("crash-") for n in _names(searcher.search("sync service stopped in:logs", kind="text")))
    assert not searcher.search("sync service stopped in:log", kind="text").results
    assert _names(searcher.search("tomato plants", kind="text", filters={"before": dt.date(2021, 1, 1)})) == ["gardening.md"]
    assert "gardening.md" not in _names(searcher.search("tomato plants after:2021-01-01", kind="text"))
    assert _names(searcher.search("tomato plants", kind="text"))[0] == "gardening.md"
    dated = searcher.search("sync service stopped", kind="text", limit=20, filters={"sort": "date"}).results
    assert len(dated) >= 3
    assert [r.mtime for r in dated] == sorted((r.mtime for r in dated), reverse=True)


def test_phrase_and_exclusion(indexed: Any) -> None:
    searcher = indexed.searcher()
    assert _names(searcher.search('"hollow when tapped"', kind="text")) == ["cooking.md"]
    resp = searcher.search("how to grow tomatoes -mulch", kind="text", limit=20)
    assert "gardening.md" not in _names(resp)


def test_a_phrase_found_nowhere_falls_back_to_its_words_and_says_so(indexed: Any) -> None:
    searcher = indexed.searcher()
    exact = searcher.search('"hollow when tapped"', kind="text")
    assert exact.message == ""  # found exactly: nothing to say
    # The same words in another order are in no passage: the words are searched by meaning.
    resp = searcher.search('"tapped when hollow" bread', kind="text")
    assert _names(resp)[0] == "cooking.md"
    assert resp.message == 'Nothing contains "tapped when hollow" exactly; showing matches for the words.'
    nonsense = searcher.search('"zxqv blorft" wempiality', kind="text")
    assert nonsense.results == [] and nonsense.message == NO_MATCH  # the words find nothing either


def test_name_only_files_are_found_by_name(indexed: Any) -> None:
    rec = next(r for r in indexed.store.files().values() if r.name == "quarterly_forecast_model.bin")
    assert rec.state == "name_only"
    resp = indexed.searcher().search("forecast model", kind="all")
    assert "quarterly_forecast_model.bin" in _names(resp)[:3]
    assert resp.counts["other"] >= 1


def test_nonsense_gets_no_good_match(indexed: Any) -> None:
    resp = indexed.searcher().search("zxqv blorft wempiality", kind="text")
    assert resp.results == []
    assert resp.message == NO_MATCH


def test_image_by_bytes_and_similar_to(indexed: Any, corpus: Path) -> None:
    searcher = indexed.searcher()
    buf = io.BytesIO()
    Image.open(corpus / "pictures" / "green.jpg").save(buf, format="PNG")
    resp = searcher.similar_image(buf.getvalue(), limit=3)
    assert _names(resp)[0] == "green.jpg"
    resp = searcher.similar_to(str(corpus / "pictures" / "red.png"), limit=5)
    assert resp.results and "red.png" not in _names(resp)
    assert all(r.kind == "image" for r in resp.results)
    resp = searcher.similar_to(str(corpus / "logs" / "crash-0.log"), limit=5)
    assert "crash-0.log" not in _names(resp)
    assert _names(resp)[0].startswith("crash-")


def test_composed_query_moves_toward_the_words(indexed: Any, corpus: Path, tiny_clip: Any) -> None:
    searcher = indexed.searcher()
    img = tiny_clip.embed_documents([Image.open(corpus / "pictures" / "red.png").convert("RGB")])[0]
    t = tiny_clip.embed_query("snow")
    neutral = tiny_clip.embed_query(searcher.ranking.compose_neutral)
    direction = t / np.linalg.norm(t) - neutral / np.linalg.norm(neutral)
    cosines = []
    for w in (0.0, 0.5, 1.0, 2.0):
        q = searcher.compose(img, "snow", weight=w)
        assert abs(float(np.linalg.norm(q)) - 1.0) < 1e-5
        cosines.append(float(q @ direction / np.linalg.norm(direction)))
    assert cosines == sorted(cosines) and cosines[-1] > cosines[0]
    resp = searcher.similar_image(str(corpus / "pictures" / "red.png"), text="snow", limit=3)
    assert resp.results


def test_ann_index_path_gives_the_same_top_result(indexed: Any) -> None:
    from indexer.store.ann import ensure_indexes, has_vector_index
    from indexer.store.fts import has_fts_index

    store = indexed.store
    assert has_fts_index(store.chunks_table())  # built by the writer after the run
    before = _names(indexed.searcher().search("bake bread dough", kind="text"))
    report = ensure_indexes(store, ann_min_rows=1)
    assert report.ann_built and has_vector_index(store.chunks_table())
    after = _names(Searcher(store, indexed.text_embedder, None).search("bake bread dough", kind="text"))
    assert after[0] == before[0] == "cooking.md"


def _fid(path: str) -> str:
    from indexer.store.tables import file_id

    return file_id(path)


def test_ranking_defaults_are_documented() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "SEARCH.md").read_text(encoding="utf-8")
    for field in dataclasses.fields(Ranking):
        assert field.name in doc, field.name


def test_image_side_and_keywords_run_beside_the_text_embedding(indexed: Any) -> None:
    """The CLIP text tower and BM25 run while the text model embeds the query: here the
    CLIP stand-in waits for the text model to be busy, which a sequential search (CLIP
    after or before the text side) could never satisfy."""
    import threading

    text_busy = threading.Event()
    clip = indexed.image_embedder

    class WatchedText:
        model_id, dim = indexed.text_embedder.model_id, indexed.text_embedder.dim

        def embed_query(self, q: str) -> Any:
            text_busy.set()
            overlapped.wait(5)  # give the image side time to finish inside this call
            return indexed.text_embedder.embed_query(q)

    overlapped = threading.Event()

    class WaitingClip:
        model_id, dim = clip.model_id, clip.dim

        def embed_query(self, q: str) -> Any:
            assert text_busy.wait(5), "the image side did not start while the text model was embedding"
            overlapped.set()
            return clip.embed_query(q)

    searcher = Searcher(indexed.store, WatchedText(), WaitingClip(), paths=indexed.paths)
    try:
        resp = searcher.search("red square", kind="all")
    finally:
        searcher.close()
    assert overlapped.is_set()
    expected = indexed.searcher().search("red square", kind="all")
    assert [(r.path, round(r.score, 5)) for r in resp.results] == [(r.path, round(r.score, 5)) for r in expected.results]


# --------------------------------------------- issue 11.3: a query cannot freeze search
def test_a_huge_query_is_refused_at_once_with_a_clear_message(indexed: Any) -> None:
    from indexer.search.query import QUERY_MAX_CHARS

    searcher = indexed.searcher()
    for query in ("a" * 100_000, "budget " + "x" * 100_000, '"' + "a " * 50_000):
        assert cpu_seconds(searcher.search, query) < 1.0  # the old identifier check alone took 214 s
        resp = searcher.search(query)
        assert resp.results == []
        assert resp.message.startswith("Query too long") and f"{QUERY_MAX_CHARS:,}" in resp.message
    # At the limit it is still a search.
    resp = searcher.search("tomato plants " + "water " * ((QUERY_MAX_CHARS - 14) // 6), kind="text")
    assert not resp.message.startswith("Query too long")


# ------------------------------------------ issue 11.8: exclusions apply in every lane
def test_exclusions_alone_list_the_files_without_the_word(indexed: Any) -> None:
    searcher = indexed.searcher()
    every = _names(searcher.search("type:txt", limit=50))
    assert "finance.txt" in every and "astronomy.txt" in every and "manual.txt" in every
    no_budget = _names(searcher.search("-budget", limit=50))  # keyword index narrows the rows
    assert no_budget and "finance.txt" not in no_budget
    assert "gardening.md" in no_budget and "red.png" in no_budget
    no_phrase = _names(searcher.search('-"cloud hosting"', limit=50))
    assert no_phrase and "finance.txt" not in no_phrase
    # "a" is a stop word the keyword index drops: the passages are read instead.
    txt = _names(searcher.search("type:txt -a", limit=50))
    assert "finance.txt" in txt
    assert "astronomy.txt" not in txt and "manual.txt" not in txt  # "...on a clear night", "with a passphrase"


def test_exclusions_apply_to_passages_names_and_images(indexed: Any) -> None:
    searcher = indexed.searcher()
    # A word anywhere in the file drops it, not only in the passage shown.
    assert "manual.txt" in _names(searcher.search("office furniture and chairs", kind="text", limit=20))
    assert "manual.txt" not in _names(searcher.search("office furniture and chairs -passphrase", kind="text", limit=20))
    # Name matches, with names read as words (quarterly_forecast_model.bin has "quarterly").
    assert "quarterly_forecast_model.bin" in _names(searcher.search("forecast model"))
    assert "quarterly_forecast_model.bin" not in _names(searcher.search("forecast model -quarterly"))
    # Images, by name: a CLIP stand-in whose every query is red.png's own vector.
    red = next(r for r in indexed.store.files().values() if r.name == "red.png")
    red_vec = indexed.store.image_row(red.fid, red.content_hash).vector

    class AlwaysRed:
        model_id, dim = indexed.image_embedder.model_id, indexed.image_embedder.dim

        def embed_query(self, q: str) -> Any:
            return red_vec

    seeing_red = Searcher(indexed.store, indexed.text_embedder, AlwaysRed(), paths=indexed.paths)
    try:
        assert _names(seeing_red.search("crimson", kind="image"))[0] == "red.png"
        assert "red.png" not in _names(seeing_red.search("crimson -red", kind="image"))
    finally:
        seeing_red.close()
    assert "red.png" in _names(searcher.search("kind:image"))
    assert "red.png" not in _names(searcher.search("kind:image -red"))


# ------------------------------------------ issue 11.9: dates and limits
def test_extreme_dates_filter_without_a_traceback(indexed: Any) -> None:
    import datetime as dt

    searcher = indexed.searcher()
    for query, filters in (("tomato plants after:0001-01-01", None), ("tomato plants before:9999-12-31", None),
                           ("tomato plants", {"after": dt.date(1, 1, 1), "before": dt.date.max})):
        resp = searcher.search(query, kind="text", filters=filters)
        assert _names(resp)[0] == "gardening.md", query
    assert searcher.search("tomato plants before:0001-01-02", kind="text").results == []


def test_an_ignored_date_is_always_said_beside_the_image_note(indexed: Any) -> None:
    s = indexed.searcher()
    blind = Searcher(s.store, s.text_embedder, None, paths=indexed.paths, settings=indexed.settings,
                     image_problem="the image model is not downloaded yet")
    resp = blind.search("budget review after:2025-13")
    assert resp.results
    assert "after:2025-13" in resp.message and "not a date" in resp.message
    assert "not downloaded" in resp.note  # both are there: neither replaces the other
    resp = blind.search("zxqv blorft wempiality after:2025-13")
    assert resp.results == []
    assert resp.message.startswith(NO_MATCH) and "after:2025-13" in resp.message


def test_limit_must_be_between_one_and_the_maximum(indexed: Any, corpus: Path) -> None:
    from indexer.search.query import RESULTS_MAX

    searcher = indexed.searcher()
    assert len(searcher.search("sync service stopped", kind="text", limit=1).results) == 1
    for bad in (0, -1, RESULTS_MAX + 1, 2.5, True):
        with pytest.raises(ValueError, match="limit"):
            searcher.search("sync service stopped", kind="text", limit=bad)
        with pytest.raises(ValueError, match="limit"):
            searcher.similar_to(str(corpus / "logs" / "crash-0.log"), limit=bad)


def test_cli_rejects_bad_dates_and_limits_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    import datetime as dt

    from indexer.cli.main import build_parser

    parser = build_parser()
    args = parser.parse_args(["search", "budget", "--after", "0001-01-01", "--before", "2025-03", "--limit", "1000"])
    assert (args.after, args.before, args.limit) == (dt.date(1, 1, 1), dt.date(2025, 3, 1), 1000)
    for argv in (["--after", "2025-13"], ["--before", "2025-02-30"], ["--limit", "0"], ["--limit", "-1"],
                 ["--limit", "1001"], ["--limit", "ten"]):
        with pytest.raises(SystemExit) as exc:
            parser.parse_args(["search", "budget", *argv])
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert f"argument {argv[0]}:" in err and "Traceback" not in err, err
    with pytest.raises(SystemExit):
        parser.parse_args(["similar", "x.png", "--limit", "0"])
    assert "argument --limit:" in capsys.readouterr().err


def test_cli_prints_every_notice_in_plain_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from indexer.cli.search import print_response
    from indexer.types import SearchResponse

    resp = SearchResponse(query="zxqv after:2025-13", message="No good match. Ignored: after:2025-13 (not a date)",
                          note="Images were not searched: the image model is not downloaded yet")
    print_response(resp, as_json=False)
    out = capsys.readouterr()
    assert "after:2025-13" in out.out and "not downloaded" in out.err
    print_response(resp, as_json=True)
    data = json.loads(capsys.readouterr().out)
    assert "after:2025-13" in data["message"] and "not downloaded" in data["note"]


def test_cli_refuses_a_huge_query_before_loading_anything(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from indexer.cli.main import main

    assert cpu_seconds(main, ["search", "a" * 100_000, "--data-dir", str(tmp_path / "none")]) < 1.0
    assert "Query too long" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()
