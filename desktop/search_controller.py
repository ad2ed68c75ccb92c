"""Search-as-you-type: debounce, request ids, stale responses dropped.

A plain QObject (no widgets): the search bar feeds it text, an optional query
image and filters; it runs the searcher on a small worker pool and emits only the
response of the newest request.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any, Protocol

from PySide6.QtCore import QObject, QTimer, Signal

from desktop.workers import Worker, WorkerPool
from indexer.types import SearchResponse

log = logging.getLogger(__name__)

DEBOUNCE_MS = 180
RESULT_LIMIT = 60


class SearcherLike(Protocol):
    def search(self, query: str, *, kind: str = "all", limit: int = 20, filters: Any = None) -> SearchResponse: ...
    def similar_image(self, image: Any, *, text: str | None = None, limit: int = 20) -> SearchResponse: ...
    def similar_to(self, path: str, *, limit: int = 20) -> SearchResponse: ...


@dataclass(frozen=True)
class ImageQuery:
    """The image chip: a file path or raw image bytes (pasted / dropped data)."""

    path: str = ""
    data: bytes = b""
    label: str = ""
    thumbnail: str = ""  # our own stored PNG of it, when it is an indexed file
    similar: bool = False  # "Find similar" on a result (any kind), not a query image

    def payload(self) -> str | bytes:
        return self.path or self.data


@dataclass
class QueryState:
    text: str = ""
    image: ImageQuery | None = None
    similar_to: str = ""  # "Find similar" on a result
    filters: dict[str, Any] = field(default_factory=dict)

    def is_empty(self) -> bool:
        return not self.text.strip() and self.image is None and not self.similar_to


class SearchController(QObject):
    """Owns the current query and the request bookkeeping."""

    responseReady = Signal(object)  # SearchResponse of the newest request
    cleared = Signal()  # the query became empty
    busyChanged = Signal(bool)
    failed = Signal(str)
    imageQueryChanged = Signal(object)  # ImageQuery | None
    searcherChanged = Signal(bool)  # True when a searcher is available

    def __init__(self, searcher: SearcherLike | None = None, parent: QObject | None = None,
                 debounce_ms: int = DEBOUNCE_MS, max_threads: int = 2) -> None:
        super().__init__(parent)
        self._searcher = searcher
        self._state = QueryState()
        self._request_id = 0
        self._in_flight: dict[int, Worker] = {}
        self.pool = WorkerPool(max_threads=max_threads, name="search", parent=self)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(debounce_ms)
        self._timer.timeout.connect(self.run_now)

    # -- inputs -------------------------------------------------------------
    @property
    def state(self) -> QueryState:
        return self._state

    def has_searcher(self) -> bool:
        return self._searcher is not None

    def set_searcher(self, searcher: SearcherLike | None) -> None:
        self._searcher = searcher
        self.searcherChanged.emit(searcher is not None)
        if searcher is not None and not self._state.is_empty():
            self.run_now()  # the person typed while the model was loading

    def set_text(self, text: str) -> None:
        if text == self._state.text:
            return
        self._state.text = text
        if self._state.similar_to:
            self._state.similar_to = ""  # typing starts a new query
            self.imageQueryChanged.emit(None)
        self._schedule()

    def set_filters(self, filters: dict[str, Any]) -> None:
        self._state.filters = {k: v for k, v in filters.items() if v not in (None, "", [])}
        self._schedule()

    def set_image(self, image: ImageQuery | None) -> None:
        if image is not None:
            self._state.text = ""  # the chip says what the query is now; words may be added to it
        self._state.image = image
        self._state.similar_to = ""
        self.imageQueryChanged.emit(image)
        self.run_now()  # an image is a deliberate act: no debounce

    def set_image_path(self, path: str) -> None:
        self.set_image(ImageQuery(path=path, label=os.path.basename(path)))

    def set_image_data(self, data: bytes, label: str = "Pasted image") -> None:
        self.set_image(ImageQuery(data=data, label=label))

    def clear_image(self) -> None:
        if self._state.similar_to:
            self._state.similar_to = ""
            self.imageQueryChanged.emit(None)
            self.run_now()
        elif self._state.image is not None:
            self.set_image(None)

    def find_similar(self, path: str, thumbnail: str = "") -> None:
        """Files like an indexed one; the chip shows what they are similar to."""
        self._state = QueryState(similar_to=path, filters=self._state.filters)
        self.imageQueryChanged.emit(ImageQuery(path=path, label=f"Like {os.path.basename(path)}",
                                               thumbnail=thumbnail, similar=True))
        self.run_now()

    def refresh(self) -> None:
        """Run the current query again, now (the index changed under it)."""
        if not self._state.is_empty() and self._searcher is not None and not self._timer.isActive():
            self.run_now()

    def clear(self) -> None:
        self._state = QueryState(filters=self._state.filters)
        self.imageQueryChanged.emit(None)
        self.run_now()

    # -- running ------------------------------------------------------------
    def _schedule(self) -> None:
        self._timer.start()  # restarts: only the last keystroke in a burst searches

    def run_now(self) -> None:
        self._timer.stop()
        self._request_id += 1
        rid = self._request_id
        # Anything still running is now stale; ask it to stop and ignore its answer.
        for worker in self._in_flight.values():
            worker.cancel()
        state = QueryState(self._state.text, self._state.image, self._state.similar_to, dict(self._state.filters))
        if state.is_empty():
            self.cleared.emit()
            self._update_busy()
            return
        searcher = self._searcher
        if searcher is None:
            return  # replayed by set_searcher once models are loaded
        worker = Worker(_run_query, searcher, state)
        worker.signals.result.connect(lambda resp, rid=rid: self._on_result(rid, resp))
        worker.signals.error.connect(lambda exc, rid=rid: self._on_error(rid, exc))
        worker.signals.finished.connect(lambda rid=rid: self._on_finished(rid))
        self._in_flight[rid] = worker
        self._update_busy()
        self.pool.start(worker)

    def _on_result(self, rid: int, response: SearchResponse) -> None:
        if rid != self._request_id:
            log.debug("dropping stale response %d (newest %d)", rid, self._request_id)
            return
        self.responseReady.emit(response)

    def _on_error(self, rid: int, exc: BaseException) -> None:
        if rid != self._request_id:
            return
        from indexer.errors import user_message

        self.failed.emit(user_message(exc) or f"Search failed: {exc!r} (details in the log)")

    def _on_finished(self, rid: int) -> None:
        self._in_flight.pop(rid, None)
        self._update_busy()

    def _update_busy(self) -> None:
        self.busyChanged.emit(bool(self._in_flight))

    def is_busy(self) -> bool:
        return bool(self._in_flight)

    def close(self) -> None:
        self._timer.stop()
        self.pool.wait()
        self._in_flight.clear()


def _run_query(searcher: SearcherLike, state: QueryState) -> SearchResponse:
    """Pick the searcher call for the query state (runs on a pool thread)."""
    text = state.text.strip()
    if state.similar_to:
        return searcher.similar_to(state.similar_to, limit=RESULT_LIMIT)
    if state.image is not None:
        return searcher.similar_image(state.image.payload(), text=text or None, limit=RESULT_LIMIT)
    return searcher.search(text, kind="all", limit=RESULT_LIMIT, filters=state.filters or None)


