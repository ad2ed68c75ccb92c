"""Retrieval quality on labelled queries: MRR@10, Recall@10, nDCG@10, latency, passage overlap.

A query file is JSON lines: ``{"query": "...", "relevant": ["path/relative/to/root", ...],
"span": [start, end]}`` (``span`` optional: where the answer sits in the first relevant
file, to check that the passage shown for that file is the right one).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import posixpath
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from indexer.types import SearchResponse

log = logging.getLogger(__name__)

K = 10


@dataclasses.dataclass
class LabelledQuery:
    query: str
    relevant: list[str]
    span: tuple[int, int] | None = None


@dataclasses.dataclass
class QueryOutcome:
    query: str
    rank: int | None  # 1-based rank of the first relevant file within the top K
    recall: float
    ndcg: float
    latency_ms: float
    span_hit: bool | None = None  # passage shown for the relevant file overlaps the span
    top: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class EvalReport:
    n: int = 0
    mrr: float = 0.0
    recall: float = 0.0
    ndcg: float = 0.0
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    span_queries: int = 0
    span_overlap: float | None = None
    outcomes: list[QueryOutcome] = dataclasses.field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("outcomes")
        return d


_LINE_FORM = '{"query": "...", "relevant": ["path/relative/to/root", ...]}'


def load_queries(path: str | os.PathLike[str]) -> list[LabelledQuery]:
    """Read a JSON-lines query file; a bad line raises ValueError naming ``path:line`` and what is wrong.

    ``relevant`` may be one path (a string) or a list of paths. A file without a
    single query is an error too: scoring nothing would report a meaningless 0.
    """
    out: list[LabelledQuery] = []
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            where = f"{os.fspath(path)}:{lineno}"
            try:
                line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8").strip()
            except UnicodeDecodeError as exc:
                raise ValueError(f"{where}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
            if not line:
                continue
            try:
                obj = json.loads(line)
            except ValueError as exc:
                raise ValueError(f"{where}: not valid JSON ({exc}); each line is {_LINE_FORM}") from exc
            out.append(_labelled_query(obj, where))
    if not out:
        raise ValueError(f"{os.fspath(path)}: no queries in the file; each line is {_LINE_FORM}")
    return out


def _labelled_query(obj: Any, where: str) -> LabelledQuery:
    if not isinstance(obj, dict):
        raise ValueError(f"{where}: a line is one JSON object like {_LINE_FORM}, not a JSON {_json_type(obj)}")
    query = obj.get("query")
    if not isinstance(query, str) or not query.strip():
        got = "missing" if "query" not in obj else f"a {_json_type(query)}" if not isinstance(query, str) else "empty"
        raise ValueError(f'{where}: "query" must be non-empty text (it is {got})')
    relevant = obj.get("relevant")
    if isinstance(relevant, str):
        relevant = [relevant]  # one relevant file, written without the list
    if not isinstance(relevant, list) or not relevant or not all(isinstance(p, str) and p.strip() for p in relevant):
        got = "missing" if "relevant" not in obj else "empty" if relevant == [] else f"{relevant!r:.60}"
        raise ValueError(f'{where}: "relevant" must be a path or a list of paths relative to --root (it is {got})')
    span = obj.get("span")
    if span is not None and not (
        isinstance(span, list) and len(span) == 2 and all(isinstance(x, int) and not isinstance(x, bool) for x in span)
        and 0 <= span[0] <= span[1]
    ):
        raise ValueError(f'{where}: "span" must be [start, end], two whole numbers with start <= end (it is {span!r:.60})')
    return LabelledQuery(
        query=query,
        relevant=[posixpath.normpath(p) for p in relevant],  # "./a.txt" is "a.txt"
        span=(span[0], span[1]) if span is not None else None,
    )


def _json_type(value: Any) -> str:
    names = {list: "list", str: "string", bool: "true/false", int: "number", float: "number", dict: "object"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def score_ranking(ranked: Sequence[str], relevant: Sequence[str], k: int = K) -> tuple[int | None, float, float]:
    """(first relevant rank or None, Recall@k, nDCG@k) of one ranked list of paths."""
    rel = set(relevant)
    top = list(ranked)[:k]
    rank = next((i + 1 for i, p in enumerate(top) if p in rel), None)
    recall = len(rel & set(top)) / len(rel) if rel else 0.0
    dcg = sum(1.0 / math.log2(i + 2) for i, p in enumerate(top) if p in rel)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(rel), k)))
    return rank, recall, (dcg / ideal if ideal else 0.0)


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    pos = (len(s) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def evaluate(
    search: Callable[[str], SearchResponse], queries: Sequence[LabelledQuery], root: str | os.PathLike[str], k: int = K
) -> EvalReport:
    """Run every query through ``search`` and score the ranked files against the labels."""
    root_path = Path(root).resolve()
    report = EvalReport(n=len(queries))
    latencies: list[float] = []
    span_hits: list[bool] = []
    for lq in queries:
        started = time.perf_counter()
        resp = search(lq.query)
        latency = (time.perf_counter() - started) * 1000
        latencies.append(latency)
        ranked: list[str] = []
        passages: dict[str, tuple[int, int]] = {}
        for r in resp.results:
            try:
                rel = Path(r.path).resolve().relative_to(root_path).as_posix()
            except ValueError:
                rel = r.path  # outside the root: can never be relevant
            if rel in ranked:
                continue
            ranked.append(rel)
            passages[rel] = (r.passage_start, r.passage_end)
        rank, recall, ndcg = score_ranking(ranked, lq.relevant, k)
        outcome = QueryOutcome(lq.query, rank, recall, ndcg, latency, top=ranked[:k])
        if lq.span is not None and lq.relevant:
            target = lq.relevant[0]
            shown = passages.get(target) if target in ranked[:k] else None
            outcome.span_hit = bool(shown and shown[0] < lq.span[1] and lq.span[0] < shown[1])
            span_hits.append(outcome.span_hit)
        report.outcomes.append(outcome)
    n = max(1, len(queries))
    report.mrr = sum(1.0 / o.rank for o in report.outcomes if o.rank) / n
    report.recall = sum(o.recall for o in report.outcomes) / n
    report.ndcg = sum(o.ndcg for o in report.outcomes) / n
    report.p50_ms = percentile(latencies, 0.5)
    report.p95_ms = percentile(latencies, 0.95)
    if span_hits:
        report.span_queries = len(span_hits)
        report.span_overlap = sum(span_hits) / len(span_hits)
    return report
