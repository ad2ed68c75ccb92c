"""`lodestar eval`: metrics checked against hand-computed values."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from indexer.search.eval import evaluate, load_queries, percentile, score_ranking
from indexer.types import SearchResponse, SearchResult


def _write_queries(path: Path) -> Path:
    lines = [
        {"query": "q1", "relevant": ["a.txt"], "span": [10, 20]},
        {"query": "q2", "relevant": ["sub/c.txt"], "span": [0, 5]},
        {"query": "q3", "relevant": ["d.txt", "a.txt"]},
        {"query": "q4", "relevant": ["z.txt"]},
    ]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n", encoding="utf-8")
    return path


def test_metrics_match_hand_computation(tmp_path: Path) -> None:
    root = tmp_path / "root"
    ranked = {
        "q1": [("a.txt", 15, 30), ("b.txt", 0, 9), ("sub/c.txt", 0, 9)],
        "q2": [("a.txt", 0, 9), ("b.txt", 0, 9), ("sub/c.txt", 50, 60)],
        "q3": [("b.txt", 0, 9), ("a.txt", 0, 9), ("b.txt", 0, 9)],  # a duplicate path counts once
        "q4": [("a.txt", 0, 9)],
    }

    def search(q: str) -> SearchResponse:
        return SearchResponse(
            results=[SearchResult(path=str(root / p), kind="text", score=1.0, passage_start=s, passage_end=e) for p, s, e in ranked[q]]
        )

    report = evaluate(search, load_queries(_write_queries(tmp_path / "q.jsonl")), root)
    # q1: rank 1; q2: rank 3; q3: rank 2 of 2 relevant (recall 1/2); q4: miss.
    assert report.n == 4
    assert report.mrr == pytest.approx((1 + 1 / 3 + 1 / 2 + 0) / 4)
    assert report.recall == pytest.approx((1 + 1 + 0.5 + 0) / 4)
    ndcg_q3 = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert report.ndcg == pytest.approx((1 + 0.5 + ndcg_q3 + 0) / 4)
    # q1's passage (15-30) overlaps its span (10-20); q2's (50-60) misses (0-5).
    assert report.span_queries == 2 and report.span_overlap == pytest.approx(0.5)
    assert [o.rank for o in report.outcomes] == [1, 3, 2, None]


def test_score_ranking_and_percentile_edges() -> None:
    assert score_ranking([], ["a"]) == (None, 0.0, 0.0)
    rank, recall, ndcg = score_ranking([f"x{i}" for i in range(10)] + ["a"], ["a"])
    assert rank is None and recall == 0.0  # rank 11 is outside @10
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == pytest.approx(2.5)
    assert percentile([], 0.95) == 0.0


def test_bad_query_file_names_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "ok", "relevant": ["a"]}\n{"query": "no labels"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.jsonl:2"):
        load_queries(bad)


def test_eval_command_end_to_end(make_runtime: Any, tmp_path: Path, capsys: Any) -> None:
    from indexer.cli.main import main as cli_main

    root = tmp_path / "docs"
    root.mkdir()
    (root / "garden.txt").write_text("Water tomato plants deeply twice a week and mulch the soil.", encoding="utf-8")
    (root / "bread.txt").write_text("Knead the dough for ten minutes, let it rise, then bake it hot.", encoding="utf-8")
    (root / "stars.txt").write_text("The telescope mirror gathers starlight; Jupiter's moons are visible.", encoding="utf-8")
    queries = tmp_path / "q.jsonl"
    queries.write_text(
        json.dumps({"query": "how often to irrigate vegetables", "relevant": ["garden.txt"], "span": [0, 20]}) + "\n"
        + json.dumps({"query": "making a loaf at home", "relevant": ["bread.txt"]}) + "\n",
        encoding="utf-8",
    )
    rt = make_runtime([str(root)])
    rt.service().index_roots([str(root)])
    data_dir = str(rt.paths.data_dir)
    rt.close()
    assert cli_main(["eval", str(queries), "--root", str(root), "--json", "--data-dir", data_dir]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n"] == 2 and out["mrr"] == pytest.approx(1.0) and out["recall"] == pytest.approx(1.0)
    assert out["span_overlap"] == pytest.approx(1.0)
    assert out["p95_ms"] >= out["p50_ms"] > 0
    assert cli_main(["eval", str(tmp_path / "missing.jsonl"), "--root", str(root), "--data-dir", data_dir]) == 2


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ('["q", ["a.txt"]]', "not a JSON list"),
        ('"just a string"', "not a JSON string"),
        ("42", "not a JSON number"),
        ("null", "not a JSON null"),
        ('{"query": "x", "relevant": ["a.txt"]', "not valid JSON"),
        ('{"relevant": ["a.txt"]}', '"query" must be non-empty text (it is missing)'),
        ('{"query": 3, "relevant": ["a.txt"]}', '"query" must be non-empty text (it is a number)'),
        ('{"query": "  ", "relevant": ["a.txt"]}', '"query" must be non-empty text (it is empty)'),
        ('{"query": "x"}', '"relevant" must be a path or a list of paths'),
        ('{"query": "x", "relevant": []}', "(it is empty)"),
        ('{"query": "x", "relevant": {"a.txt": 1}}', '"relevant" must be a path or a list of paths'),
        ('{"query": "x", "relevant": ["a.txt", 7]}', '"relevant" must be a path or a list of paths'),
        ('{"query": "x", "relevant": "a.txt", "span": [5]}', '"span" must be [start, end]'),
        ('{"query": "x", "relevant": "a.txt", "span": [9, 2]}', '"span" must be [start, end]'),
        ('{"query": "x", "relevant": "a.txt", "span": "0-9"}', '"span" must be [start, end]'),
    ],
)
def test_each_bad_line_is_named_with_what_is_wrong(tmp_path: Path, line: str, says: str) -> None:
    """Issue 11.12: a list or string line was a traceback (AttributeError), not a message."""
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "ok", "relevant": ["a.txt"]}\n\n' + line + "\n", encoding="utf-8")
    with pytest.raises(ValueError) as info:
        load_queries(bad)
    message = str(info.value)
    assert message.startswith(f"{bad}:3: ") and says in message, message
    assert "\n" not in message


def test_relevant_as_one_string_scores_like_the_list(tmp_path: Path) -> None:
    """Issue 11.12: "relevant": "a.txt" silently scored 0 (iterated as letters)."""
    root = tmp_path / "root"
    as_list = tmp_path / "list.jsonl"
    as_list.write_text(json.dumps({"query": "q", "relevant": ["a.txt"]}) + "\n", encoding="utf-8")
    as_str = tmp_path / "str.jsonl"
    as_str.write_text(json.dumps({"query": "q", "relevant": "./a.txt"}) + "\n", encoding="utf-8")

    def search(q: str) -> SearchResponse:
        return SearchResponse(results=[SearchResult(path=str(root / "a.txt"), kind="text", score=1.0)])

    assert load_queries(as_str)[0].relevant == ["a.txt"]
    for path in (as_list, as_str):
        report = evaluate(search, load_queries(path), root)
        assert report.mrr == pytest.approx(1.0) and report.recall == pytest.approx(1.0)


@pytest.mark.parametrize("content", [b"", b"\n\n   \n", b"\xef\xbb\xbf\n"])
def test_a_file_without_queries_is_an_error(tmp_path: Path, content: bytes, capsys: Any) -> None:
    """Issue 11.12: an empty file exited 0 with "queries 0"."""
    from indexer.cli.main import main as cli_main

    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(content)
    with pytest.raises(ValueError, match="no queries in the file"):
        load_queries(empty)
    root = tmp_path / "root"
    root.mkdir()
    assert cli_main(["eval", str(empty), "--root", str(root), "--data-dir", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no queries in the file" in err
    assert not (tmp_path / "d").exists()  # refused before anything was opened


def test_eval_command_names_the_bad_line_and_the_wrong_arguments(tmp_path: Path, capsys: Any) -> None:
    from indexer.cli.main import main as cli_main

    root = tmp_path / "root"
    root.mkdir()
    bad = tmp_path / "bad.jsonl"
    bad.write_text('["q", ["a.txt"]]\n', encoding="utf-8")
    latin1 = tmp_path / "latin1.jsonl"
    latin1.write_bytes('{"query": "caf\xe9", "relevant": "a.txt"}\n'.encode("latin-1"))
    cases = [
        (["eval", str(bad), "--root", str(root)], f"{bad}:1: a line is one JSON object"),
        (["eval", str(latin1), "--root", str(root)], f"{latin1}:1: not UTF-8 text"),
        (["eval", str(tmp_path), "--root", str(root)], "is a folder, not a query file"),
        (["eval", str(bad), "--root", str(bad)], "is a file, not a folder"),
    ]
    for argv, says in cases:
        assert cli_main([*argv, "--data-dir", str(tmp_path / "d")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and says in err, err


def test_eval_kind_all_lets_pictures_answer(make_runtime: Any, tmp_path: Path, capsys: Any) -> None:
    """--kind all scores every file (pictures found by their names or recognised words);
    the default keeps to documents, as the labelled text sets want."""
    from PIL import Image

    from indexer.cli.main import main as cli_main

    root = tmp_path / "docs"
    root.mkdir()
    (root / "bread.txt").write_text("Knead the dough for ten minutes, let it rise, then bake it hot.", encoding="utf-8")
    Image.new("RGB", (64, 48), (200, 120, 40)).save(root / "lighthouse-harbour.jpg")
    queries = tmp_path / "q.jsonl"
    queries.write_text(json.dumps({"query": "lighthouse harbour", "relevant": ["lighthouse-harbour.jpg"]}) + "\n"
                       + json.dumps({"query": "making a loaf at home", "relevant": ["bread.txt"]}) + "\n", encoding="utf-8")
    rt = make_runtime([str(root)])
    rt.service().index_roots([str(root)])
    data_dir = str(rt.paths.data_dir)
    rt.close()
    base = ["eval", str(queries), "--root", str(root), "--json", "--data-dir", data_dir]
    assert cli_main(base) == 0
    text_only = json.loads(capsys.readouterr().out)
    assert [q["rank"] for q in text_only["queries"]] == [None, 1]
    assert cli_main([*base, "--kind", "all"]) == 0
    every = json.loads(capsys.readouterr().out)
    assert [q["rank"] for q in every["queries"]] == [1, 1]
