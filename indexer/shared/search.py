"""A searcher over the local index and every other part of the shared library, merged on one scale.

The local index answers first and always; each other part is asked at the same time on
a small pool, through a `Searcher` over a read-only `RemoteStore` (the same ranking, so
the same scale: cosine of the same models, same keyword bonus and priors). A part that
does not answer within `PART_TIMEOUT_S`, cannot be reached, or was indexed with other
models is left out with a note; one that failed is not asked again for `DOWN_FOR_S`, so
typing is never held up by a bucket that is away. Results of another computer carry its
name (`SearchResult.computer`); their thumbnails are fetched into the data directory's
``thumbnails/shared/<part>/`` for the window to paint.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any

from indexer.shared.config import CACHE_DIR, ShareConfig
from indexer.shared.remote import PartInfo, RemoteStore, list_parts
from indexer.shared.target import Bucket, ShareError, describe, parse_uri
from indexer.types import SearchResponse, SearchResult

log = logging.getLogger(__name__)

PART_TIMEOUT_S = 4.0
"""How long a search waits for the other parts (the first query of a part also loads its vectors)."""
DOWN_FOR_S = 30.0
"""A part (or the bucket) that failed is left out this long before it is tried again."""
PARTS_FRESH_S = 60.0
"""The list of parts is read again after this long."""


@dataclasses.dataclass
class _Thumbs:
    thumbnails: Path


class _Part:
    def __init__(self, info: PartInfo, searcher: Any) -> None:
        self.info = info
        self.searcher = searcher


class SharedSearcher:
    """Wraps this computer's `Searcher`; `search` and `similar_image` also ask the other parts."""

    def __init__(self, local: Any, cfg: ShareConfig, data_dir: str | os.PathLike[str], *,
                 part_timeout_s: float = PART_TIMEOUT_S, bucket: Bucket | None = None) -> None:
        self.local = local
        self.cfg = cfg
        self.cache = Path(data_dir) / CACHE_DIR
        self.part_timeout_s = part_timeout_s
        self._bucket = bucket
        self._owns_bucket = bucket is None
        self._lock = threading.Lock()
        self._opening = threading.Lock()  # one part opened at a time: never two searchers of one part
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="lodestar-shared")
        self._parts: dict[str, _Part] = {}
        self._listing: tuple[float, list[PartInfo]] | None = None
        self._listing_job: Future[list[PartInfo]] | None = None
        self._down: dict[str, tuple[float, str]] = {}  # part id ("" = the bucket) -> (until, why)
        self._closed = False

    def warm(self) -> None:
        """List the parts and open each (its files and vectors) in the background, so the first
        query a person types does not pay for it."""

        def open_all() -> None:
            try:
                parts = self._list()
            except Exception as exc:  # noqa: BLE001 - said by the first search that asks
                log.info("shared library not reachable at start: %s", exc)
                return
            for info in parts:
                if info.models.get("text") not in (None, "", self.local.text_embedder.model_id):
                    continue
                try:
                    self._searcher_of(info).search("lodestar warm up", limit=1)
                except Exception as exc:  # noqa: BLE001 - that part is tried again by the queries
                    log.info("part of %s not opened: %s", info.computer, exc)

        with self._lock:
            if not self._closed:
                self._pool.submit(open_all)

    def __getattr__(self, name: str) -> Any:
        # store, reader, text_embedder, image_embedder, similar_to ...: this computer's.
        return getattr(self.local, name)

    # ------------------------------------------------------------------ parts
    def _bucket_now(self) -> Bucket:
        with self._lock:
            if self._bucket is None:
                self._bucket = Bucket(parse_uri(self.cfg.uri))
            return self._bucket

    def _list(self) -> list[PartInfo]:
        parts = [p for p in list_parts(self._bucket_now()) if p.part_id != self.cfg.part_id]
        with self._lock:
            self._listing = (time.monotonic(), parts)
        return parts

    def _other_parts(self, deadline: float, notes: list[str]) -> list[PartInfo]:
        now = time.monotonic()
        with self._lock:
            listing = self._listing
            down = self._down.get("")
            if down and down[0] > now:
                notes.append(down[1])
                return []
            fresh = listing is not None and now - listing[0] < PARTS_FRESH_S
            job = self._listing_job
            if not fresh and (job is None or job.done()):
                job = self._listing_job = self._pool.submit(self._list)
        if fresh and listing is not None:
            return listing[1]
        assert job is not None
        try:
            return job.result(timeout=max(0.05, deadline - time.monotonic()))
        except FutureTimeout:
            if listing is not None:
                return listing[1]  # the old list while the new one comes
            notes.append("Other computers were not searched: the shared library did not answer in time.")
            return []
        except Exception as exc:  # noqa: BLE001 - the bucket is away: this computer's files still answer
            why = f"Other computers were not searched: {_first_line(exc)}."
            with self._lock:
                self._down[""] = (time.monotonic() + DOWN_FOR_S, why)
                if self._owns_bucket:
                    self._bucket = None  # credentials read again next time (a renewed session token)
            notes.append(why)
            return []

    def _searcher_of(self, info: PartInfo) -> Any:
        with self._opening:
            return self._open_part(info)

    def _open_part(self, info: PartInfo) -> Any:
        with self._lock:
            part = self._parts.get(info.part_id)
        if part is not None and part.info.generation == info.generation:
            part.info = info
            return part.searcher
        from indexer.search.ranking import Searcher

        text = self.local.text_embedder
        image = self.local.image_embedder
        same_image = image is not None and info.models.get("image") == image.model_id
        store = RemoteStore(self._bucket_now(), info.part_id, text_model=(text.model_id, text.dim),
                            image_model=(image.model_id, image.dim) if same_image else None)
        thumbs = self.cache / info.part_id
        searcher = Searcher(store, text, image if same_image else None, paths=_Thumbs(thumbs),
                            settings=getattr(self.local, "settings", None), ranking=self.local.ranking)
        with self._lock:
            old = self._parts.get(info.part_id)
            self._parts[info.part_id] = _Part(info, searcher)
        if old is not None:
            old.searcher.close()
        return searcher

    def _ask(self, info: PartInfo, call: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> SearchResponse:
        searcher = self._searcher_of(info)
        resp: SearchResponse = getattr(searcher, call)(*args, **kwargs)
        bucket = self._bucket_now()
        for r in resp.results:
            r.computer = info.computer
            r.folder = f"on {info.computer} · {r.folder}"  # what the window's list shows under the name
            if r.thumbnail:
                self._fetch_thumb(bucket, info, r)
        return resp

    def _fetch_thumb(self, bucket: Bucket, info: PartInfo, r: SearchResult) -> None:
        path = Path(r.thumbnail)
        if path.exists():
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            if not bucket.download(bucket.target.part_key(info.part_id, "thumbnails", path.name), str(path)):
                r.thumbnail = ""
        except (OSError, ShareError) as exc:
            log.info("thumbnail of a shared result not fetched: %s", exc)
            r.thumbnail = ""

    def _fan_out(self, call: str, args: tuple[Any, ...], kwargs: dict[str, Any], local: SearchResponse | None,
                 started: float) -> tuple[list[tuple[PartInfo, Future[SearchResponse]]], list[str], float]:
        deadline = started + self.part_timeout_s
        notes: list[str] = []
        jobs: list[tuple[PartInfo, Future[SearchResponse]]] = []
        text_model = self.local.text_embedder.model_id
        now = time.monotonic()
        for info in self._other_parts(deadline, notes):
            with self._lock:
                down = self._down.get(info.part_id)
            if down and down[0] > now:
                notes.append(down[1])
                continue
            if info.models.get("text") and info.models.get("text") != text_model:
                notes.append(f"{info.computer} was not searched: it was indexed with another text model "
                             f"({info.models.get('text')}).")
                continue
            image = self.local.image_embedder
            theirs = info.models.get("image")
            if image is not None and theirs and theirs != image.model_id and call != "similar_to":
                notes.append(f"{info.computer}'s pictures were not searched: they were indexed with another "
                             f"image model ({theirs}).")
            jobs.append((info, self._pool.submit(self._ask, info, call, args, kwargs)))
        return jobs, notes, deadline

    # ---------------------------------------------------------------- queries
    def search(self, query: str, *, kind: str = "all", limit: int = 20,
               filters: dict[str, Any] | None = None) -> SearchResponse:
        started = time.monotonic()
        jobs, notes, deadline = self._fan_out("search", (query,), {"kind": kind, "limit": limit, "filters": filters},
                                              None, started)
        local = self.local.search(query, kind=kind, limit=limit, filters=filters)
        return self._merge(local, jobs, notes, deadline, limit, started)

    def similar_image(self, image: Any, *, text: str | None = None, limit: int = 20) -> SearchResponse:
        started = time.monotonic()
        jobs, notes, deadline = self._fan_out("similar_image", (image,), {"text": text, "limit": limit}, None, started)
        local = self.local.similar_image(image, text=text, limit=limit)
        return self._merge(local, jobs, notes, deadline, limit, started)

    def _merge(self, local: SearchResponse, jobs: list[tuple[PartInfo, Future[SearchResponse]]], notes: list[str],
               deadline: float, limit: int, started: float) -> SearchResponse:
        from indexer.search.ranking import NO_MATCH

        docs = [r for r in local.results if r.kind != "image"]
        images = [r for r in local.results if r.kind == "image"]
        for info, job in jobs:
            try:
                resp = job.result(timeout=max(0.05, deadline - time.monotonic()))
            except FutureTimeout:
                notes.append(f"{info.computer} was not searched: it did not answer in time.")
                continue
            except Exception as exc:  # noqa: BLE001 - one computer's part away: the others still answer
                why = f"{info.computer} was not searched: {_first_line(exc)}."
                with self._lock:
                    self._down[info.part_id] = (time.monotonic() + DOWN_FOR_S, why)
                    self._parts.pop(info.part_id, None)  # opened afresh when it is back
                notes.append(why)
                continue
            docs += [r for r in resp.results if r.kind != "image"]
            images += [r for r in resp.results if r.kind == "image"]
            if resp.note and resp.note not in notes and resp.note != local.note:
                notes.append(f"{info.computer}: {resp.note}")
        ranking = self.local.ranking
        if local.ranked:
            docs = _cut(sorted(docs, key=lambda r: -r.score), ranking.gap)[:limit]
            images = _cut(sorted(images, key=lambda r: -r.score), ranking.image_gap)[:limit]
        else:
            docs = sorted(docs, key=lambda r: -r.mtime)[:limit]
            images = sorted(images, key=lambda r: -r.mtime)[:limit]
        out = dataclasses.replace(local)
        out.results = docs + images
        out.counts = {
            "text": sum(1 for r in docs if r.kind == "text"),
            "image": len(images),
            "other": sum(1 for r in docs if r.kind != "text"),
        }
        if out.results and out.message.startswith(NO_MATCH):
            out.message = out.message[len(NO_MATCH):].strip()
        out.note = " ".join(n for n in [local.note, *dict.fromkeys(notes)] if n)
        out.elapsed_ms = (time.monotonic() - started) * 1000
        return out

    def detach(self) -> None:
        """Stop asking the other parts (left the library); this computer's searcher stays open."""
        with self._lock:
            self._closed = True
            parts, self._parts = list(self._parts.values()), {}
        self._pool.shutdown(wait=False, cancel_futures=True)
        for part in parts:
            part.searcher.close()

    def close(self) -> None:
        self.detach()
        self.local.close()


def _cut(ranked: list[SearchResult], gap: float) -> list[SearchResult]:
    """The searcher's own cutoff (`Cutoff`) across computers; each part applied the floor."""
    from indexer.search.ranking import Cutoff

    if not ranked:
        return ranked
    cut = Cutoff.of([(r.score, r.similarity) for r in ranked], -math.inf, gap)
    return [r for r in ranked if cut.keeps(r.score, r.similarity)]


def _first_line(exc: BaseException) -> str:
    if isinstance(exc, ShareError):
        return str(exc)
    text = " ".join(str(exc).split())
    low = text.lower()
    if any(w in low for w in ("connect", "timed out", "timeout", "dns", "refused")):
        return "the shared library cannot be reached"
    if "not found" in low or "nosuchbucket" in low or "does not exist" in low:
        return "its part is not on the shared library (any more)"
    return (text[:160] or type(exc).__name__).rstrip(".")


def shared_searcher(local: Any, data_dir: str | os.PathLike[str]) -> Any:
    """``local`` wrapped to search the shared library too, when this data directory is part of one."""
    from indexer.shared.config import load_config

    cfg = load_config(Path(data_dir))
    if cfg is None:
        return local
    try:
        parse_uri(cfg.uri)
    except ShareError as exc:
        log.warning("shared library not searched: %s", exc)
        return local
    searcher = SharedSearcher(local, cfg, data_dir)
    searcher.warm()
    return searcher


__all__ = ["SharedSearcher", "describe", "shared_searcher"]
