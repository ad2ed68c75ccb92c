"""Ranking and chunking directions measured offline from cached vectors (issue 15.3, docs/SEARCH.md).

Embedding is the only expensive step, so every text is embedded once per model/backend
into a `quality_refs.VectorCache`; everything after that is exact and cheap:

1. ``prepare``: list every text the study needs (each set's product passages as the
   indexer builds them, for each chunking variant; the references' chunks and whole files;
   the queries) that the cache lacks, as ``texts.jsonl.gz`` for `embed_texts.py` (which
   may run elsewhere, e.g. on a GPU machine) or ``--embed`` here.
2. ``run``: for each set and chunking variant, a real store is built by the product's own
   `IndexService` with a `CachedTextEmbedder` (vectors looked up by text, never
   approximated), and the product's `Searcher` answers every query (the query vectors
   from the cache too) under each ranking configuration; the four references are computed
   beside them from the same cache. Prints MRR@10 / Recall@10 per set and configuration.

    .venv/bin/python bench/quality_study.py prepare SETDIR... --out /tmp/qjob [--embed]
    .venv/bin/python bench/quality_study.py import /tmp/qjob/vectors.npz
    .venv/bin/python bench/quality_study.py run SETDIR... [--variants p0,m200] [--json out.json]

The product never reads this file: a configuration that wins here becomes a default in
`indexer/search/ranking.py` or `indexer/ingest/chunk.py` only with its own test.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import json
import math
import os
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO  # noqa: F401 - puts the repository on sys.path
from quality_refs import (
    CACHE_ROOT,
    VectorCache,
    cache_for,
    model_embedder,
    read_set,
    reference_texts,
    references,
    text_key,
)

MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
LEAD_CHARS = 1000
"""About what the model's 256 word pieces read of English prose."""

from indexer.ingest.chunk import chunk_text as _ORIGINAL_CHUNK_TEXT


# ------------------------------------------------------------------ chunking variants
def merge_short(chunks: list[Any], text: str, min_chars: int) -> list[Any]:
    """Join a passage shorter than ``min_chars`` with its neighbour while the pair still fits the window."""
    from indexer.ingest.chunk import MAX_CHARS, MAX_TOKENS, estimate_tokens
    from indexer.types import Chunk

    out: list[Any] = []
    for c in chunks:
        if out:
            prev = out[-1]
            short = len(prev.text) < min_chars or len(c.text) < min_chars
            if short and c.start >= prev.start and c.end - prev.start <= MAX_CHARS and estimate_tokens(text[prev.start : c.end]) <= MAX_TOKENS:
                out[-1] = Chunk(text=text[prev.start : c.end], start=prev.start, end=c.end, heading=prev.heading or c.heading)
                continue
        out.append(c)
    return out


def variant_chunks(variant: str, text: str, title: str, headings: bool) -> list[Any]:
    """``p0``: the chunker in this checkout; ``m<N>``: its passages under N characters merged
    into a neighbour; ``s<N>``: MAX_CHARS N and MIN_CHARS 0.4·N (``s1000`` = before 2026-11-30)."""
    import indexer.ingest.chunk as chunk_mod

    if variant.startswith("s"):
        # Smaller passages: MAX_CHARS = the number given, MIN_CHARS scaled with it.
        saved = chunk_mod.MAX_CHARS, chunk_mod.MIN_CHARS
        chunk_mod.MAX_CHARS = int(variant[1:])
        chunk_mod.MIN_CHARS = int(variant[1:]) * 2 // 5
        try:
            return _ORIGINAL_CHUNK_TEXT(text, title, headings=headings)
        finally:
            chunk_mod.MAX_CHARS, chunk_mod.MIN_CHARS = saved
    chunks = _ORIGINAL_CHUNK_TEXT(text, title, headings=headings)
    if variant == "p0":
        return chunks
    if variant.startswith("m"):
        return merge_short(chunks, text, int(variant[1:]))
    raise ValueError(f"unknown chunking variant {variant!r} (p0, m<chars>, s<max chars>)")


def product_inputs(set_dir: Path, variant: str) -> dict[str, list[str]]:
    """Each file's embedding inputs as the indexer would build them under ``variant``."""
    from indexer.ingest.chunk import embedding_input
    from indexer.ingest.extract import extract_text, has_markup_headings
    from indexer.library.settings import Settings

    settings = Settings()
    out: dict[str, list[str]] = {}
    docs_dir = set_dir / "docs"
    for p in sorted(docs_dir.rglob("*")):
        if not p.is_file():
            continue
        try:
            ex = extract_text(str(p), settings)
        except Exception:  # noqa: BLE001 - a file the indexer keeps by name only has no passages
            continue
        chunks = variant_chunks(variant, ex.text, ex.title, has_markup_headings(str(p)))
        out[p.relative_to(docs_dir).as_posix()] = [embedding_input(c, ex.title) for c in chunks]
    return out


# ------------------------------------------------------------------ prepare
def cmd_prepare(args: argparse.Namespace) -> int:
    from indexer.search.query import parse_query

    cache = cache_for(args.backend, args.cache)
    texts: list[str] = []
    queries: set[str] = set()
    for s in args.sets:
        queries.update(q.query for q in read_set(s)[1])
        queries.update(parse_query(q.query).text for q in read_set(s)[1])  # what Searcher embeds
        if args.product_only:
            texts += [q.query for q in read_set(s)[1]]
            texts += [parse_query(q.query).text for q in read_set(s)[1]]
        else:
            texts += reference_texts(s)
        for v in args.variants.split(","):
            for inputs in product_inputs(s, v).values():
                texts += inputs
    miss = cache.missing(texts)
    print(f"{len(texts)} texts, {len(miss)} not in {cache.folder} ({sum(map(len, miss)) / 1e6:.1f} MB)")
    if args.embed:
        cache.get(miss, model_embedder(args.backend))
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    with gzip.open(args.out / "texts.jsonl.gz", "wt", encoding="utf-8", compresslevel=9) as fh:
        for t in miss:
            fh.write(json.dumps({"key": text_key(t), "text": t, "query": t in queries}, ensure_ascii=False) + "\n")
    print(f"wrote {args.out / 'texts.jsonl.gz'}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    cache = cache_for(args.backend, args.cache)
    for f in args.files:
        print(f"{f}: {cache.import_npz(f)} vectors")
    return 0


# ------------------------------------------------------------------ run
class CachedTextEmbedder:
    """The text model's vectors, looked up by text in a `VectorCache`.

    A text the cache lacks (e.g. a query whose operators `parse_query` removed) is embedded
    here by the real model of the same backend, once, and added to the cache.
    """

    def __init__(self, cache: VectorCache, backend: str = "torch", model_id: str = MODEL_ID) -> None:
        self.cache = cache
        self.backend = backend
        self.model_id = model_id
        self.dim = 384
        self.device: str | None = "cpu"
        self.misses = 0
        self._model: Any = None
        self._lock = threading.Lock()

    def load(self) -> None:
        pass

    @property
    def loaded(self) -> bool:
        return True

    def _real(self) -> Any:
        if self._model is None:
            from models.text import TextEmbedder

            self._model = TextEmbedder(backend=self.backend)
            self._model.load()
        return self._model

    def embed_documents(self, items: Sequence[str]) -> np.ndarray:
        with self._lock:
            miss = self.cache.missing(list(items))
            if miss:
                self.misses += len(miss)
                self.cache.add(miss, self._real().embed_documents(miss))
            return self.cache.get(list(items))

    def embed_query(self, text: str) -> np.ndarray:
        with self._lock:
            if text not in self.cache:
                self.misses += 1
                self.cache.add([text], self._real().embed_query(text)[None, :])
            return self.cache.get([text])[0]


def build_store(set_dir: Path, variant: str, emb: CachedTextEmbedder, data_dir: Path) -> Any:
    """Index ``set_dir/docs`` with the product's IndexService (chunking patched to ``variant``)."""
    import indexer.ingest.chunk as chunk_mod
    from indexer.ingest.pipeline import IndexService
    from indexer.library.settings import Settings, open_paths
    from indexer.store.ann import ensure_indexes
    from indexer.store.tables import Store

    paths = open_paths(data_dir)
    store = Store(paths.store, text_model=(emb.model_id, emb.dim))
    docs = str((set_dir / "docs").resolve())
    settings = Settings(folders=[docs])
    original = chunk_mod.chunk_text
    if variant != "p0":
        def patched(text: str, title: str = "", *, headings: bool = True, max_chunks: int = chunk_mod.MAX_CHUNKS) -> list[Any]:
            return variant_chunks(variant, text, title, headings)[:max_chunks]

        chunk_mod.chunk_text = patched  # type: ignore[assignment]
    try:
        service = IndexService(store, paths, settings, emb, None)
        service.index_roots([docs])
    finally:
        chunk_mod.chunk_text = original  # type: ignore[assignment]
    ensure_indexes(store)
    return store, paths


def kept_store(set_dir: Path, variant: str, emb: CachedTextEmbedder, keep: Path | None, tmp: Path) -> Any:
    """A store for (set, variant, backend): reused from ``keep`` when one was built there before."""
    from indexer.library.settings import open_paths
    from indexer.store.tables import Store

    if keep is None:
        return build_store(set_dir, variant, emb, tmp / "data")
    data = keep / f"{set_dir.name}-{variant}-{emb.backend}"
    if (data / "complete").is_file():
        paths = open_paths(data)
        return Store(paths.store, text_model=(emb.model_id, emb.dim)), paths
    if data.exists():
        import shutil

        shutil.rmtree(data)
    got = build_store(set_dir, variant, emb, data)
    (data / "complete").touch()
    return got


def evaluate_config(store: Any, paths: Any, emb: CachedTextEmbedder, set_dir: Path, ranking: Any) -> dict[str, float]:
    from indexer.search.eval import evaluate, load_queries
    from indexer.search.ranking import Searcher

    searcher = Searcher(store, emb, None, paths=paths, ranking=ranking)
    try:
        queries = load_queries(set_dir / "queries.jsonl")
        report = evaluate(lambda q: searcher.search(q, kind="text", limit=10), queries, str((set_dir / "docs").resolve()))
    finally:
        searcher.close()
    return {"mrr": report.mrr, "recall": report.recall, "span": report.span_overlap if report.span_overlap is not None else -1.0}


def parse_configs(specs: Sequence[str]) -> list[tuple[str, dict[str, Any]]]:
    """``name:field=value,field=value`` (or ``default``) → (name, Ranking overrides)."""
    out: list[tuple[str, dict[str, Any]]] = []
    for spec in specs:
        name, _, rest = spec.partition(":")
        overrides: dict[str, Any] = {}
        for item in filter(None, rest.split(",")):
            k, _, v = item.partition("=")
            overrides[k] = int(v) if k.endswith("_k") else float(v)
        out.append((name, overrides))
    return out


def cmd_run(args: argparse.Namespace) -> int:
    from indexer.search.ranking import Ranking

    cache = cache_for(args.backend, args.cache)
    emb = CachedTextEmbedder(cache, args.backend)  # query vectors: as the Searcher asks for them
    configs = parse_configs(args.config or ["default"])
    results: dict[str, Any] = {}
    for s in args.sets:
        res: dict[str, Any] = {"refs": {} if args.no_refs else references(s, cache, None)}
        for v in args.variants.split(","):
            with tempfile.TemporaryDirectory(prefix="lodestar-study-") as tmp:
                store, paths = kept_store(s, v, emb, args.keep, Path(tmp))
                for name, overrides in configs:
                    ranking = dataclasses.replace(Ranking(), **overrides)
                    res[f"{v}/{name}"] = evaluate_config(store, paths, emb, s, ranking)
                    r = res[f"{v}/{name}"]
                    print(f"{s.name:<11} {v:<6} {name:<24} MRR@10 {r['mrr']:.3f}  R@10 {r['recall']:.3f}", flush=True)
        for ref, r in res["refs"].items():
            print(f"{s.name:<11} {'ref':<6} {ref:<24} MRR@10 {r['mrr']:.3f}  R@10 {r['recall']:.3f}", flush=True)
        results[s.name] = res
        if emb.misses:
            print(f"({emb.misses} texts were not in the cache and were embedded here)", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


def cmd_fuse(args: argparse.Namespace) -> int:
    """A whole-file vector lane fused with the product's ranking, many ways, offline.

    The product's file ranking (no cutoff, top 100, rank score = evidence - length prior)
    and the whole-document reference ranking (cached vector of each file's text, the model
    reading its first 256 word pieces) are combined per query; prints MRR@10 / R@10.
    """
    import math

    from quality_refs import rrf, score

    from indexer.search.eval import load_queries
    from indexer.search.query import parse_query
    from indexer.search.ranking import Ranking, Searcher

    cache = cache_for(args.backend, args.cache)
    emb = CachedTextEmbedder(cache, args.backend)
    table: dict[str, dict[str, dict[str, float]]] = {}
    for s in args.sets:
        docs, queries = read_set(s)
        paths = list(docs)
        dv = cache.get([docs[p] for p in paths])
        qv = cache.get([q.query for q in queries])
        with tempfile.TemporaryDirectory(prefix="lodestar-study-") as tmp:
            store, data_paths = kept_store(s, args.variant, emb, args.keep, Path(tmp))
            files = store.files()
            root = (s / "docs").resolve()
            nchunks = {Path(r.path).resolve().relative_to(root).as_posix(): max(1, r.n_chunks) for r in files.values()}
            rk = Ranking()
            searchers = {"cut": Searcher(store, emb, None, paths=data_paths, ranking=rk),
                         "nocut": Searcher(store, emb, None, paths=data_paths, ranking=dataclasses.replace(rk, floor=-1.0, gap=9.0))}
            prod: dict[str, dict[str, list[tuple[str, float]]]] = {"cut": {}, "nocut": {}}
            evid: dict[str, dict[str, float]] = {}  # query -> file -> evidence (what the cut judges)
            where: dict[str, dict[str, int]] = {}  # query -> file -> where its best passage starts
            for key, searcher in searchers.items():
                for q in load_queries(s / "queries.jsonl"):
                    resp = searcher.search(q.query, kind="text", limit=100)
                    prod[key][q.query] = [
                        (Path(r.path).resolve().relative_to(root).as_posix(), r.score - rk.length_prior * math.log(nchunks.get(Path(r.path).resolve().relative_to(root).as_posix(), 1)))
                        for r in resp.results
                    ]
                    if key == "nocut":
                        evid[q.query] = {Path(r.path).resolve().relative_to(root).as_posix(): r.score for r in resp.results}
                        where[q.query] = {Path(r.path).resolve().relative_to(root).as_posix(): r.passage_start for r in resp.results}
                searcher.close()
        rows: dict[str, dict[str, float]] = {}
        whole: dict[str, list[str]] = {}
        docsim: dict[str, dict[str, float]] = {}
        for j, q in enumerate(queries):
            sims = dv @ qv[j]
            docsim[q.query] = {paths[i]: float(sims[i]) for i in range(len(paths))}
            whole[q.query] = [paths[i] for i in np.argsort(-sims, kind="stable")[:100]]
        rows["product"] = score({q: [p for p, _ in v] for q, v in prod["cut"].items()}, queries)
        rows["product, no cut"] = score({q: [p for p, _ in v] for q, v in prod["nocut"].items()}, queries)
        rows["whole doc"] = score(whole, queries)
        for w in (0.25, 0.5, 1.0):
            rows[f"rrf(product, whole x{w})"] = score(
                {q.query: rrf([p for p, _ in prod["nocut"][q.query]], whole[q.query], weights=(1.0, w)) for q in queries}, queries)
        for beta in (0.1, 0.2, 0.3, 0.5):
            for gate in (0, 2, 4):
                ranked = {}
                for q in queries:
                    sc = {p: v for p, v in prod["nocut"][q.query]}
                    for p in whole[q.query][:20]:
                        sc.setdefault(p, docsim[q.query][p] - rk.length_prior * math.log(nchunks.get(p, 1)) - 0.1)
                    ranked[q.query] = sorted(
                        sc, key=lambda p, q=q: -(sc[p] + (beta * docsim[q.query].get(p, 0.0) if gate == 0 or nchunks.get(p, 1) <= gate else 0.0)))
                rows[f"blend beta {beta}" + (f", files <= {gate} chunks" if gate else "")] = score(ranked, queries)
        # Gated blends: the whole-file term only where it describes the file (coverage: the
        # share of the file the model's 256 word pieces read), or only where the best passage
        # lies inside what the whole-file vector read (the best passage and the opening agree).
        for beta in (0.05, 0.1, 0.2):
            for gate in ("coverage", "lead"):
                ranked = {}
                cutted = {}
                for q in queries:
                    sc = {p: v for p, v in prod["nocut"][q.query]}
                    ev = dict(evid[q.query])
                    if parse_query(q.query).phrases:
                        ranked[q.query] = list(sc)
                        cutted[q.query] = [p for p, _ in prod["cut"][q.query]]
                        continue
                    sims_q, starts = docsim[q.query], where[q.query]
                    bonus = {
                        p: beta * sims_q[p] * (min(1.0, LEAD_CHARS / max(1, len(docs[p]))) if gate == "coverage"
                                               else float(0 <= starts.get(p, -1) < LEAD_CHARS))
                        for p in sc
                    }
                    order = sorted(sc, key=lambda p, sc=sc, bonus=bonus: -(sc[p] + bonus[p]))
                    ranked[q.query] = order
                    if order:
                        cut = max(rk.floor, max(ev.values()) - rk.gap)
                        cutted[q.query] = [p for p in order if ev[p] >= cut]
                rows[f"blend {beta} gated by {gate}"] = score(ranked, queries)
                rows[f"blend {beta} gated by {gate} cut"] = score(cutted, queries)
        for delta in (0.0, -0.02, -0.05, -0.08, -0.1):
            for lane in ("top50", "cands"):
                ranked = {}
                cutted: dict[str, list[str]] = {}
                for q in queries:
                    sc = {p: v for p, v in prod["nocut"][q.query]}
                    if parse_query(q.query).phrases:
                        # A quoted phrase is an exact-phrase operator in the product: a whole-file
                        # vector cannot add a file that lacks it (ignoring this made the lane look
                        # better than it is on stdlib and debdoc: docs/SEARCH.md, "The file lane").
                        ranked[q.query] = [p for p, _ in prod["nocut"][q.query]]
                        cutted[q.query] = [p for p, _ in prod["cut"][q.query]]
                        continue
                    # top50: the 50 nearest whole-file vectors are a lane of their own (a second
                    # search); cands: only files the passages or keywords found get the signal.
                    extra = whole[q.query][:50] if lane == "top50" else list(sc)
                    ev = dict(evid[q.query])
                    for p in extra:
                        sc[p] = max(sc.get(p, -9.0), docsim[q.query][p] + delta - rk.length_prior * math.log(nchunks.get(p, 1)))
                        ev[p] = max(ev.get(p, -9.0), docsim[q.query][p] + delta)
                    order = sorted(sc, key=lambda p, sc=sc: -sc[p])
                    ranked[q.query] = order
                    if order:  # the product's floor and gap, on the evidence
                        cut = max(rk.floor, max(ev.values()) - rk.gap)
                        cutted[q.query] = [p for p in order if ev[p] >= cut]
                rows[f"max(product, whole {delta:+.2f}) {lane}"] = score(ranked, queries)
                rows[f"max(product, whole {delta:+.2f}) {lane} cut"] = score(cutted, queries)
        table[s.name] = rows
        for name, r in rows.items():
            print(f"{s.name:<11} {name:<36} MRR@10 {r['mrr']:.3f}  R@10 {r['recall']:.3f}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(table, indent=2) + "\n")
    return 0


PRIOR_SHAPES: dict[str, Any] = {
    "0.06 ln n (shipped)": lambda n, s: 0.06 * math.log(n),
    "0.12 sqrt(ln n)": lambda n, s: 0.12 * math.sqrt(math.log(n)),
    "0.06 ln min(n, 64)": lambda n, s: 0.06 * math.log(min(n, 64)),
    "0.04 (n^1/3 - 1)": lambda n, s: 0.04 * (n ** 0.33 - 1),
    "0.06 ln(n / support)": lambda n, s: 0.06 * math.log(max(1.0, n / sum(1 for x in s if x >= s[0] - 0.03))),
    "0.08 ln((1+n/6)/(1+1/6))": lambda n, s: 0.08 * (math.log(1 + n / 6) - math.log(1 + 1 / 6)),
    "0.09 ln((1+n/8)/(1+1/8))": lambda n, s: 0.09 * (math.log(1 + n / 8) - math.log(1 + 1 / 8)),
}
"""Length-prior shapes of docs/SEARCH.md: f(passages in the file, its candidates' scores best first)."""


def cmd_priors(args: argparse.Namespace) -> int:
    """Length-prior shapes on the product's own candidates (docs/SEARCH.md, "Length prior shapes").

    Each query runs through the product's `Searcher` (no cut); the candidates `_group`
    receives are kept per file, and each shape ranks the files by best score - prior, then
    the product's floor and gap cut the list (and, for comparison, the evidence-only cut
    and none). Queries with a quoted phrase keep the product's
    answer (a shape cannot add a file that lacks the phrase).
    """
    from quality_refs import score

    from indexer.search.eval import load_queries
    from indexer.search.ranking import Ranking, Searcher

    cache = cache_for(args.backend, args.cache)
    emb = CachedTextEmbedder(cache, args.backend)
    rk = Ranking()
    table: dict[str, dict[str, dict[str, float]]] = {}
    for s in args.sets:
        _docs, queries = read_set(s)
        with tempfile.TemporaryDirectory(prefix="lodestar-study-") as tmp:
            store, data_paths = kept_store(s, args.variant, emb, args.keep, Path(tmp))
            root = (s / "docs").resolve()
            files = store.files()
            rel = {fid: Path(r.path).resolve().relative_to(root).as_posix() for fid, r in files.items()}
            nch = {rel[f]: max(1, r.n_chunks) for f, r in files.items()}
            searcher = Searcher(store, emb, None, paths=data_paths, ranking=dataclasses.replace(rk, floor=-1.0, gap=9.0))
            seen: dict[str, list[float]] = {}
            cosine: dict[str, float] = {}  # file -> cosine of its best-scored passage
            group = searcher._group

            def keep(cands: Any, files_: Any, limit: int, *, _seen: dict[str, list[float]] = seen,
                     _cos: dict[str, float] = cosine, _rel: dict[str, str] = rel, _group: Any = group, **kw: Any) -> Any:
                _seen.clear()
                _cos.clear()
                best: dict[str, float] = {}
                for c in cands:
                    f = _rel[c.fid]
                    _seen.setdefault(f, []).append(c.score)
                    if c.score > best.get(f, -9.0):
                        best[f], _cos[f] = c.score, c.sim
                return _group(cands, files_, limit, **kw)

            searcher._group = keep  # type: ignore[method-assign]
            per = []
            for q in load_queries(s / "queries.jsonl"):
                resp = searcher.search(q.query, kind="text", limit=200)
                shown = [Path(r.path).resolve().relative_to(root).as_posix() for r in resp.results]
                per.append((q.query, {f: sorted(v, reverse=True) for f, v in seen.items()}, dict(cosine), shown))
            searcher.close()
        rows: dict[str, dict[str, float]] = {}
        for name, prior in PRIOR_SHAPES.items():
            # Cut rules: the product's ("either": within the gap of the top on evidence, or on
            # the passage's cosine alone, so a paraphrase as close as the top is not hidden for
            # lacking the query's words); "evidence" (the rule before 2026-12-01 night); none.
            for cut_rule in ("either", "evidence", "none"):
                ranked: dict[str, list[str]] = {}
                for query, groups, cos, shown in per:
                    if '"' in query:
                        ranked[query] = shown
                        continue
                    evidence = {f: v[0] for f, v in groups.items()}
                    order = sorted(groups, key=lambda f, g=groups: -(g[f][0] - prior(nch.get(f, 1), g[f])))
                    if evidence and cut_rule != "none":
                        cut = max(rk.floor, max(evidence.values()) - rk.gap)
                        cos_cut = max(rk.floor, max(cos.values()) - rk.gap)
                        order = [f for f in order if evidence[f] >= cut or (cut_rule == "either" and cos[f] >= cos_cut)]
                    ranked[query] = order
                label = name if cut_rule == "either" else f"{name}, cut {cut_rule}"
                rows[label] = score(ranked, queries)
                print(f"{s.name:<11} {label:<40} MRR@10 {rows[label]['mrr']:.3f}  R@10 {rows[label]['recall']:.3f}", flush=True)
        table[s.name] = rows
    if args.json:
        Path(args.json).write_text(json.dumps(table, indent=2) + "\n")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", type=Path, default=CACHE_ROOT)
    ap.add_argument("--backend", default="torch", help="the cache's model backend (torch = fp32, onnx-int8)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("sets", nargs="+", type=Path)
    p.add_argument("--variants", default="p0")
    p.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "lodestar-qjob")
    p.add_argument("--embed", action="store_true", help="embed the missing texts here instead of writing them out")
    p.add_argument("--product-only", action="store_true", help="only the product's passages and the queries (no references)")
    p.set_defaults(func=cmd_prepare)
    p = sub.add_parser("import")
    p.add_argument("files", nargs="+", type=Path)
    p.set_defaults(func=cmd_import)
    p = sub.add_parser("run")
    p.add_argument("sets", nargs="+", type=Path)
    p.add_argument("--variants", default="p0")
    p.add_argument("--config", action="append", help="NAME:field=value,... (Ranking overrides); repeatable")
    p.add_argument("--json")
    p.add_argument("--keep", type=Path, help="keep each (set, variant, backend) store here and reuse it; reuse goes by "
                   "those names only: empty the folder after changing the chunker or the indexing code")
    p.add_argument("--no-refs", action="store_true", help="skip the references (e.g. for the int8 cache, which holds only product texts)")
    p.set_defaults(func=cmd_run)
    for name, func in (("fuse", cmd_fuse), ("priors", cmd_priors)):  # one chunking variant, one stored index each
        p = sub.add_parser(name, help=func.__doc__)
        p.add_argument("sets", nargs="+", type=Path)
        p.add_argument("--variant", default="p0")
        p.add_argument("--keep", type=Path, help="as for run")
        p.add_argument("--json")
        p.set_defaults(func=func)
    args = ap.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
