"""Query → ranked files (one result per file, with its best passage).

First version: vector search over chunks grouped per file, and CLIP text→image
and image→image. The search issue extends it (hybrid keyword fusion, filters,
query syntax, cut-off).
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import numpy as np

from indexer.store import FileRecord, Store, file_id
from indexer.types import SearchResponse, SearchResult

log = logging.getLogger(__name__)


class Searcher:
    def __init__(
        self,
        store: Store,
        text_embedder: Any,
        image_embedder: Any | None,
        *,
        paths: Any = None,
        settings: Any = None,
        image_problem: str = "",
    ) -> None:
        self.store = store
        self.text_embedder = text_embedder
        self.image_embedder = image_embedder
        self.paths = paths
        self.settings = settings
        self.image_problem = image_problem

    # ----------------------------------------------------------------- text
    def search(self, query: str, *, kind: str = "all", limit: int = 20, filters: dict[str, Any] | None = None) -> SearchResponse:
        started = time.perf_counter()
        query = query.strip()
        resp = SearchResponse(query=query)
        if not query:
            return resp
        files = self.store.files()
        docs: list[SearchResult] = []
        images: list[SearchResult] = []
        if kind in ("all", "text"):
            docs = self._search_chunks(self.text_embedder.embed_query(query), files, limit)
        if kind in ("all", "image"):
            if self.image_embedder is not None:
                images = self._search_images(self.image_embedder.embed_query(query), files, limit)
            elif self.image_problem:
                resp.message = f"Image search is unavailable: {self.image_problem}"
        resp.results = docs + images
        resp.counts = {"text": len(docs), "image": len(images)}
        if not resp.results and not resp.message:
            resp.message = "No good match."
        resp.elapsed_ms = (time.perf_counter() - started) * 1000
        return resp

    def similar_image(self, image: Any, *, text: str | None = None, limit: int = 20) -> SearchResponse:
        started = time.perf_counter()
        resp = SearchResponse(query=text or "")
        if self.image_embedder is None:
            resp.message = f"Image search is unavailable: {self.image_problem or 'no image model'}"
            return resp
        img = _as_pil(image)
        vec = self.image_embedder.embed_documents([img])[0]
        if text:
            tvec = self.image_embedder.embed_query(text)
            vec = vec + 0.5 * tvec
            vec = vec / (np.linalg.norm(vec) or 1.0)
        resp.results = self._search_images(vec.astype(np.float32), self.store.files(), limit)
        resp.counts = {"image": len(resp.results)}
        resp.elapsed_ms = (time.perf_counter() - started) * 1000
        return resp

    def similar_to(self, path: str, *, limit: int = 20) -> SearchResponse:
        rec = self.store.files().get(file_id(os.path.abspath(path)))
        resp = SearchResponse(query=path)
        if rec is None:
            resp.message = "That file is not in the index."
            return resp
        if rec.kind == "image":
            row = self.store.image_row(rec.fid, rec.content_hash)
            if row is None:
                resp.message = "That image has no vector yet."
                return resp
            resp.results = self._search_images(row.vector, self.store.files(), limit)
        else:
            rows = self.store.chunk_rows(rec.fid, rec.content_hash)
            if not rows:
                resp.message = "That file has no text vectors."
                return resp
            vec = np.mean([r.vector for r in rows], axis=0)
            vec = (vec / (np.linalg.norm(vec) or 1.0)).astype(np.float32)
            resp.results = [r for r in self._search_chunks(vec, self.store.files(), limit + 1) if r.path != rec.path][:limit]
        resp.counts = {rec.kind: len(resp.results)}
        return resp

    # ------------------------------------------------------------- internals
    def _search_chunks(self, qvec: np.ndarray, files: dict[str, FileRecord], limit: int) -> list[SearchResult]:
        table = self.store.chunks_table()
        if table is None:
            return []
        arrow = (
            table.search(np.asarray(qvec, dtype=np.float32), vector_column_name="vector")
            .distance_type("cosine")
            .select(["fid", "file_hash", "text", "start", "end"])
            .limit(max(limit * 8, 50))
            .to_arrow()
        )
        best: dict[str, SearchResult] = {}
        for fid, fh, text, start, end, dist in zip(
            arrow.column("fid").to_pylist(),
            arrow.column("file_hash").to_pylist(),
            arrow.column("text").to_pylist(),
            arrow.column("start").to_pylist(),
            arrow.column("end").to_pylist(),
            arrow.column("_distance").to_pylist(),
        ):
            rec = files.get(fid)
            if rec is None or rec.state != "indexed" or not rec.available or rec.content_hash != fh:
                continue  # half-written, stale, or offline
            score = 1.0 - float(dist)
            if fid in best and best[fid].score >= score:
                continue
            best[fid] = _result(rec, score, passage=text, start=start, end=end)
        return sorted(best.values(), key=lambda r: -r.score)[:limit]

    def _search_images(self, qvec: np.ndarray, files: dict[str, FileRecord], limit: int) -> list[SearchResult]:
        table = self.store.images_table()
        if table is None:
            return []
        arrow = (
            table.search(np.asarray(qvec, dtype=np.float32), vector_column_name="vector")
            .distance_type("cosine")
            .select(["fid", "file_hash", "thumb", "width", "height"])
            .limit(max(limit * 2, 20))
            .to_arrow()
        )
        out: dict[str, SearchResult] = {}
        for fid, fh, thumb, w, h, dist in zip(
            arrow.column("fid").to_pylist(),
            arrow.column("file_hash").to_pylist(),
            arrow.column("thumb").to_pylist(),
            arrow.column("width").to_pylist(),
            arrow.column("height").to_pylist(),
            arrow.column("_distance").to_pylist(),
        ):
            rec = files.get(fid)
            if rec is None or rec.state != "indexed" or not rec.available or rec.content_hash != fh or fid in out:
                continue
            res = _result(rec, 1.0 - float(dist))
            res.width, res.height = w, h
            if self.paths is not None and thumb:
                res.thumbnail = str(self.paths.thumbnails / thumb)
            out[fid] = res
        return sorted(out.values(), key=lambda r: -r.score)[:limit]


def _result(rec: FileRecord, score: float, passage: str = "", start: int = -1, end: int = -1) -> SearchResult:
    return SearchResult(
        path=rec.path,
        kind=rec.kind,  # type: ignore[arg-type]
        score=score,
        name=rec.name,
        folder=rec.folder,
        ext=rec.ext,
        size=rec.size,
        mtime=rec.mtime_ns / 1e9,
        passage=passage,
        passage_start=start,
        passage_end=end,
        state=rec.state,
    )


def _as_pil(image: Any) -> Any:
    """A path, raw bytes or a PIL image → an RGB PIL image (through the safe extractor)."""
    from PIL import Image

    if isinstance(image, Image.Image):
        return image.convert("RGB")
    from indexer.config import Settings
    from indexer.extract import extract_image

    if isinstance(image, (bytes, bytearray)):
        # Raw bytes (drag-and-drop, clipboard) go through the same guarded decoder.
        import tempfile

        with tempfile.TemporaryDirectory(prefix="lodestar-query-") as tmp:
            path = os.path.join(tmp, "query" + _sniff_ext(bytes(image)))
            with open(path, "wb") as fh:
                fh.write(image)
            return extract_image(path, Settings()).image
    return extract_image(os.fspath(image), Settings()).image


def _sniff_ext(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return ".png"
    if data.startswith(b"\xff\xd8"):
        return ".jpg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    if data[:3] == b"GIF":
        return ".gif"
    if data[:2] == b"BM":
        return ".bmp"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return ".tiff"
    return ".png"
