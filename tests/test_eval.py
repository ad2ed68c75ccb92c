"""`lodestar eval`: metrics checked against hand-computed values."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from indexer.eval import evaluate, load_queries, percentile, score_ranking
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
    from indexer.cli import main as cli_main

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
