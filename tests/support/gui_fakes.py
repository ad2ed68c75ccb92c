"""Fakes honouring the runtime / searcher / watcher contracts, for GUI tests."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from indexer.library.settings import Settings, open_paths
from indexer.types import FolderStatus, IndexSummary, Progress, SearchResponse, SearchResult


class FakeSearcher:
    """Deterministic searcher; ``gate`` (per query) lets a test hold a response back."""

    def __init__(self, docs: list[SearchResult] | None = None) -> None:
        self.docs = docs or []
        self.calls: list[tuple[str, Any]] = []
        self.gates: dict[str, threading.Event] = {}
        self.lock = threading.Lock()

    def _wait(self, key: str) -> None:
        gate = self.gates.get(key)
        if gate is not None:
            assert gate.wait(10), f"gate for {key!r} never opened"

    def search(self, query: str, *, kind: str = "all", limit: int = 20, filters: Any = None) -> SearchResponse:
        with self.lock:
            self.calls.append(("search", (query, filters)))
        self._wait(query)
        words = [w for w in query.lower().split() if w]
        hits = [d for d in self.docs if any(w in (d.name + " " + d.passage).lower() for w in words)]
        if filters and filters.get("ext"):
            hits = [d for d in hits if d.ext in filters["ext"]]
        return SearchResponse(results=hits[:limit], query=query,
                              message="" if hits else "No good match.")

    def similar_image(self, image: Any, *, text: str | None = None, limit: int = 20) -> SearchResponse:
        with self.lock:
            self.calls.append(("similar_image", (image, text)))
        hits = [d for d in self.docs if d.kind == "image"]
        return SearchResponse(results=hits[:limit], query=text or "")

    def similar_to(self, path: str, *, limit: int = 20) -> SearchResponse:
        with self.lock:
            self.calls.append(("similar_to", path))
        return SearchResponse(results=[d for d in self.docs if d.path != path][:limit])


class FakeEmbedder:
    def __init__(self, available: bool = True) -> None:
        self._available = available
        self.loaded = False

    def available(self) -> tuple[bool, str]:
        return self._available, "" if self._available else "CLIP weights missing"

    def load(self) -> None:
        self.loaded = True


class FakeService:
    def __init__(self, progress: Any = None) -> None:
        self.progress = progress
        self.wait_when_disk_full = False
        self.synced: list[list[str]] = []

    def sync_paths(self, paths: list[str], cancel: Any = None, *, force: bool = False) -> IndexSummary:
        self.synced.append(list(paths))
        return IndexSummary()

    def follow_moved_roots(self) -> list[tuple[str, str]]:
        return []

    def index_roots(self, roots: list[str], cancel: Any = None) -> IndexSummary:
        if self.progress:
            self.progress(Progress("embedding", done=1, total=2))
        return IndexSummary()


class FakeRecord:
    def __init__(self, path: str, state: str, reason: str) -> None:
        self.path, self.state, self.reason = path, state, reason


class FakeStore:
    def __init__(self) -> None:
        self.problem_rows: list[FakeRecord] = []
        self.cleared = 0

    def files(self) -> dict[str, Any]:
        return {}

    def problems(self) -> list[FakeRecord]:
        return list(self.problem_rows)

    def clear(self) -> None:
        self.cleared += 1


class FakeWatch:
    def __init__(self, service: Any, settings: Settings, paths: Any, on_status: Any = None) -> None:
        self.service, self.settings, self.on_status = service, settings, on_status
        self.cancel = threading.Event()
        self.started = self.stopped = False
        self.roots = list(settings.folders)

    def start(self) -> None:
        self.started = True
        self.service.index_roots(self.roots)
        if self.on_status:
            self.on_status(self.folder_status())

    def stop(self, timeout: float = 10.0) -> bool:
        self.stopped = True
        return True

    def set_roots(self, roots: list[str]) -> None:
        self.roots = list(roots)

    def request_reconcile(self, root: str | None = None) -> None:
        pass

    def folder_status(self) -> list[FolderStatus]:
        return [FolderStatus(path=r, mode="live", files=3, failed=1) for r in self.roots]


class FakeRuntime:
    def __init__(self, data_dir: Path, folders: list[str], searcher: FakeSearcher, clip: bool = True) -> None:
        self.paths = open_paths(data_dir)
        self.settings = Settings(folders=list(folders), welcome_done=True)
        self.text_embedder = FakeEmbedder()
        self.image_embedder = FakeEmbedder(available=clip)
        self.store = FakeStore()
        self._searcher = searcher
        self.services: list[FakeService] = []
        self.ready_calls: list[tuple[bool, bool, bool]] = []
        self.closed = False

    def searcher(self) -> FakeSearcher:
        return self._searcher

    def image_ready(self, load: bool = True, *, download: bool = False, retry: bool = False) -> tuple[bool, str]:
        self.ready_calls.append((load, download, retry))
        ok, why = self.image_embedder.available()
        if ok and load:
            self.image_embedder.load()
        return ok, why

    def service(self, progress: Any = None, *, wait_when_disk_full: bool = False) -> FakeService:
        svc = FakeService(progress)
        svc.wait_when_disk_full = wait_when_disk_full
        self.services.append(svc)
        return svc

    def reset_image_model(self) -> None:
        self.image_embedder = FakeEmbedder(available=self.image_embedder.available()[0])

    def close(self) -> None:
        self.closed = True


class FakeLock:
    released = False

    def release(self) -> None:
        self.released = True


def make_docs(root: Path, thumb_dir: Path | None = None) -> list[SearchResult]:
    docs = []
    for name, text in [("tax-return-2023.pdf", "Your income tax refund for 2023 was approved."),
                       ("holiday-notes.md", "We went hiking in the Alps and ate cheese."),
                       ("recipe.txt", "Bake the bread at 220 degrees for forty minutes.")]:
        path = root / name
        path.write_text(text)
        lo = text.lower()
        word = "tax" if "tax" in lo else "hiking" if "hiking" in lo else "bread"
        start = lo.index(word)
        docs.append(SearchResult(path=str(path), kind="text", score=0.8, name=name, folder=str(root),
                                 ext=os.path.splitext(name)[1], size=len(text), mtime=1_700_000_000.0,
                                 passage=text, highlights=[(start, start + len(word))]))
    img = root / "sunset.jpg"
    img.write_bytes(b"not really a jpeg")
    thumb = ""
    if thumb_dir is not None:
        from PySide6.QtGui import QColor, QImage

        thumb_dir.mkdir(parents=True, exist_ok=True)
        q = QImage(64, 48, QImage.Format.Format_RGB32)
        q.fill(QColor("orange"))
        thumb = str(thumb_dir / "sunset.png")
        q.save(thumb, "PNG")
    docs.append(SearchResult(path=str(img), kind="image", score=0.7, name="sunset.jpg", folder=str(root),
                             ext=".jpg", size=17, mtime=1_600_000_000.0, thumbnail=thumb, width=64, height=48))
    return docs


# ----------------------------------------------------------------------------- the map (issue 17)
MAP_TOPICS = [
    ("taxes · invoice · receipts", "Finance", ".pdf", ["tax-return", "invoice", "receipt", "payslip", "bank-statement"]),
    ("recipes · baking · bread", "Kitchen", ".md", ["sourdough", "focaccia", "pancakes", "curry", "lasagne"]),
    ("python · decorators · functions", "Code", ".py", ["decorators", "asyncio-notes", "generators", "typing", "pytest"]),
    ("hiking · alps · trail", "Travel", ".md", ["alps-trip", "packing-list", "trail-notes", "hut-booking", "itinerary"]),
    ("meeting · roadmap · project", "Work", ".docx", ["standup", "roadmap-q3", "retro", "budget-review", "kickoff"]),
    ("garden · tomatoes · compost", "Home", ".txt", ["seed-plan", "compost", "watering", "tomato-log", "pruning"]),
    ("thesis · chapter · citations", "Study", ".pdf", ["chapter-1", "chapter-2", "literature", "methods", "draft"]),
    ("car · insurance · repair", "Finance", ".pdf", ["insurance-policy", "mot", "repair-quote", "lease", "claim"]),
    ("music · chords · lyrics", "Hobbies", ".txt", ["chords", "setlist", "lyrics", "practice-log", "tabs"]),
    ("health · doctor · prescription", "Home", ".pdf", ["blood-test", "prescription", "vaccination", "dentist", "referral"]),
    ("sql · schema · migration", "Code", ".sql", ["schema", "migration", "indexes", "backup", "queries"]),
    ("wedding · guests · venue", "Family", ".xlsx", ["guest-list", "venue", "seating", "speech", "budget"]),
]


def make_map(root: str = "/home/ada/Documents", n: int = 3000, seed: int = 7, layer: str = "documents",
             thumb: str = "") -> Any:
    """A realistic map: ``n`` files in a dozen named, clustered regions (deterministic)."""
    import numpy as np

    from indexer.types import LibraryMap, MapCluster, MapPoint

    rng = np.random.default_rng(seed)
    k = len(MAP_TOPICS)
    centres = rng.uniform(0.12, 0.88, (k, 2))
    weights = rng.dirichlet(np.full(k, 2.0))
    topic = rng.choice(k, size=n, p=weights)
    spread = rng.uniform(0.025, 0.06, k)
    xy = centres[topic] + rng.normal(size=(n, 2)) * spread[topic, None]
    stray = rng.random(n) < 0.04  # some files belong nowhere in particular
    xy[stray] = rng.uniform(0, 1, (int(stray.sum()), 2))
    points = []
    for i in range(n):
        label, folder, ext, stems = MAP_TOPICS[topic[i]]
        name = f"{stems[i % len(stems)]}-{i}{ext if layer == 'documents' else '.jpg'}"
        sub = f"{root}/{folder}/{2019 + i % 6}"
        points.append(MapPoint(fid=f"f{i:06d}", path=f"{sub}/{name}", name=name,
                               kind="text" if layer == "documents" else "image", x=float(xy[i, 0]),
                               y=float(xy[i, 1]), cluster=-1 if stray[i] else int(topic[i]), folder=sub,
                               mtime=1_500_000_000.0 + float(rng.uniform(0, 2.5e8)), ext=ext, size=1000 + i,
                               thumbnail=thumb))
    order = np.argsort(-np.bincount(topic[~stray], minlength=k))
    clusters = [MapCluster(id=int(c), label=MAP_TOPICS[c][0], x=float(xy[(topic == c) & ~stray, 0].mean()),
                           y=float(xy[(topic == c) & ~stray, 1].mean()), size=int(((topic == c) & ~stray).sum()),
                           level=0 if rank < 8 else 1) for rank, c in enumerate(order)]
    return LibraryMap(layer=layer, points=points, clusters=clusters, built_at=1_700_000_000.0, model="fake",  # type: ignore[arg-type]
                      method="umap")


class FakeMapSession:
    """The session's map methods over prepared maps; ``gate`` holds a build back."""

    def __init__(self, maps: dict[str, Any] | None = None, stored: dict[str, Any] | None = None) -> None:
        self.maps = dict(maps or {})  # what build_map returns, per layer
        self.stored = dict(stored or {})  # what load_map returns (None: never built)
        self.builds: list[tuple[str, bool]] = []
        self.queries: list[tuple[str, str]] = []
        self.threads: list[str] = []
        self.gate: threading.Event | None = None

    def load_map(self, layer: str) -> Any:
        self.threads.append(threading.current_thread().name)
        return self.stored.get(layer)

    def build_map(self, layer: str, progress: Any = None, cancel: Any = None, *, fresh: bool = False) -> Any:
        self.threads.append(threading.current_thread().name)
        self.builds.append((layer, fresh))
        if progress is not None:
            progress("Reading the vectors…", 0.2)
        if self.gate is not None:
            assert self.gate.wait(10), "build gate never opened"
        if progress is not None:
            progress("Naming the regions…", 0.9)
        m = self.maps[layer]
        self.stored[layer] = m
        return m

    def map_query(self, query: str, layer: str = "documents", limit: int = 200) -> Any:
        from indexer.types import MapHits

        self.queries.append((query, layer))
        m = self.maps.get(layer) or self.stored.get(layer)
        words = [w for w in query.lower().split() if w]
        scores = {p.fid: 0.5 for p in (m.points if m else []) if any(w in p.name.lower() for w in words)}
        return MapHits(query=query, scores=dict(list(scores.items())[:limit]),
                       message="" if scores else "No good match.")

    def files_in(self, fids: Any) -> list[SearchResult]:
        out = []
        for m in {**self.stored, **self.maps}.values():
            for p in m.points:
                if p.fid in fids:
                    out.append(SearchResult(path=p.path, kind=p.kind, score=0.0, name=p.name, folder=p.folder,
                                            ext=p.ext, size=p.size, mtime=p.mtime, thumbnail=p.thumbnail,
                                            passage=f"The passage of {p.name}."))
        return out
