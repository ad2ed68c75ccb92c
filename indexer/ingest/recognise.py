"""The recognition stage: the words inside pictures and scans become passages (issue 16).

It runs after the pipeline's own work, on the writer's thread (`IndexService.recognise`):
a picture is searchable by how it looks as soon as CLIP has embedded it, its words follow.
Files it reads, in this order:

1. pictures whose record is ``indexed`` (embedded by CLIP) or ``pending`` (waiting for the
   image model: their words are indexed anyway), most recently modified first;
2. PDFs: ``name_only`` ones with no text layer (scanned) and ``indexed`` ones (a mixed PDF:
   only its pages without a text layer are rendered and read).

A file is due while ``ocr_state`` has no row for its content hash (`indexer.store.recognised`),
so a crash, a stop or a quit resumes where it stopped and a changed file is read again.
A copy or a moved file whose bytes were read already takes that file's passages (a twin).
Between two files the stage asks `should_yield`: the pipeline serves changed files first
(new documents go before words in pictures), and a stop request ends it.

For each picture: the gate (the detector alone on a small downscale) skips photos with
nothing to read; otherwise the lines are read (bounded in time and pixels), put in
reading order, cut with the same chunker as documents, embedded with the text model and
committed with their boxes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from indexer.ingest.ocr import LineSpan, Recogniser, TextLine, passage_text, read_image_file, read_pdf_scans
from indexer.ingest.safe_open import PathUnsafe, Vanished, open_under_root
from indexer.library.settings import Settings
from indexer.store import recognised
from indexer.store.recognised import OcrRow, OcrState, OcrWrite
from indexer.store.tables import FileRecord, Store, WriteBatch
from indexer.types import ExtractionError, NameOnly, OcrProgress
from indexer.wording import plural
from models.base import TextEmbedder

log = logging.getLogger(__name__)

FILES_PER_COMMIT = 32
COMMIT_INTERVAL_S = 5.0
SCANNED_PDF_REASON = "PDF has no text layer"
"""The start of the reason the pipeline gives a PDF without text (documents.extract_document)."""
PAGE_BREAK = "\n\n"


def eligible(rec: FileRecord) -> bool:
    """Whether the stage reads this file (for its current content). A scanned PDF whose
    words were read loses the pipeline's reason ("no text layer"); the pipeline gives it
    back when the file changes, and it is read again."""
    if not rec.available or not rec.content_hash:
        return False
    if rec.kind == "image":
        return rec.state in ("indexed", "pending")
    if rec.ext == "pdf":
        return rec.state == "indexed" or (rec.state == "name_only" and rec.reason.startswith(SCANNED_PDF_REASON))
    return False


def due(files: dict[str, FileRecord], states: dict[str, OcrState]) -> list[FileRecord]:
    """Files still to read, pictures first (newest first), then PDFs."""
    todo = [r for r in files.values() if eligible(r) and (r.fid not in states or states[r.fid].file_hash != r.content_hash)]
    todo.sort(key=lambda r: (r.kind != "image", -r.mtime_ns))
    return todo


def progress(store: Store, settings: Settings, *, running: bool = False) -> OcrProgress:
    """How far the stage has come, for `lodestar status` and the window."""
    files = store.files()
    states = recognised.states(store)
    images = [r for r in files.values() if r.kind == "image" and eligible(r)]
    pdfs = [r for r in files.values() if r.kind != "image" and (eligible(r) or (
        r.ext == "pdf" and r.available and r.fid in states and states[r.fid].file_hash == r.content_hash))]

    def done(r: FileRecord) -> OcrState | None:
        st = states.get(r.fid)
        return st if st is not None and st.file_hash == r.content_hash else None

    image_states = [s for s in (done(r) for r in images) if s is not None]
    pdf_states = [s for s in (done(r) for r in pdfs) if s is not None]
    with_text = sum(1 for s in [*image_states, *pdf_states] if s.state == "text")
    failed = sum(1 for s in [*image_states, *pdf_states] if s.state == "failed")
    enabled = bool(getattr(settings, "recognise_text", True))
    if not images and not pdfs:
        message = "no pictures or PDFs to read"
    else:
        message = f"words read in {len(image_states):,} of {plural(len(images), 'picture')}"
        if pdfs:
            message += f" and {len(pdf_states):,} of {plural(len(pdfs), 'PDF')}"
        if with_text:
            message += f"; {plural(with_text, 'file')} with words"
    if not enabled:
        message = "reading words in pictures is off (Settings); " + message
    return OcrProgress(
        enabled=enabled, images_done=len(image_states), images_total=len(images), pdfs_done=len(pdf_states),
        with_text=with_text, failed=failed, running=running, message=message,
    )


@dataclasses.dataclass
class StageSummary:
    read: int = 0  # files recognised now (gate passed or PDF pages rendered)
    skipped: int = 0  # pictures the gate found nothing to read in
    with_text: int = 0
    copied: int = 0  # twins: passages copied from a file with the same bytes
    failed: int = 0
    elapsed_s: float = 0.0
    stopped: bool = False  # a stop request ended it before everything was read


class RecognitionStage:
    """Reads what is due, commits in batches. Used by `IndexService` under its lock."""

    def __init__(self, store: Store, text_embedder: TextEmbedder, recogniser: Recogniser) -> None:
        self.store = store
        self.text_embedder = text_embedder
        self.recogniser = recogniser

    def run(
        self,
        *,
        cancel: threading.Event | None = None,
        should_yield: Callable[[Callable[[], None]], None] | None = None,
        on_progress: Callable[[int, int, str], None] | None = None,
        commit: Callable[[Callable[[], None]], None] | None = None,
    ) -> StageSummary:
        """Read every due file. ``should_yield(flush)`` is called between files: the pipeline
        serves changed files there, calling ``flush`` first (what was read is committed
        before); ``on_progress(done, total, path)``; ``commit(fn)`` runs a write (the
        pipeline's retry-on-full-disk wrapper), by default directly."""
        started = time.monotonic()
        summary = StageSummary()
        states = recognised.states(self.store)
        todo = due(self.store.files(), states)
        if not todo:
            return summary
        by_hash: dict[str, OcrState] = {}
        for st in states.values():
            by_hash.setdefault(st.file_hash, st)
        pending: list[OcrWrite] = []
        scans: list[FileRecord] = []  # scanned PDFs whose words were read: no longer a problem
        last_commit = time.monotonic()

        def flush() -> None:
            nonlocal last_commit
            if pending:
                items = list(pending)
                records = list(scans)
                pending.clear()
                scans.clear()
                run_write = commit or (lambda fn: fn())
                run_write(lambda: recognised.write(self.store, items, model_id=self.text_embedder.model_id))
                if records:  # after their words: a record never promises words that are not there
                    run_write(lambda: self.store.write(WriteBatch(files=records)))
                self._ensure_keyword_index()
            last_commit = time.monotonic()

        total = len(todo)
        for i, rec in enumerate(todo):
            if cancel is not None and cancel.is_set():
                summary.stopped = True
                break
            if should_yield is not None:
                should_yield(flush)
                current = self.store.files().get(rec.fid)
                if current is None or current.content_hash != rec.content_hash or not eligible(current):
                    continue  # changed or gone meanwhile: read when due again
                rec = current
            if on_progress is not None:
                on_progress(i, total, rec.path)
            item = self._copy_twin(rec, by_hash) or self._read(rec)
            if item is None:
                continue  # changed on disk since it was indexed: read after its re-index
            st = item.state
            by_hash.setdefault(st.file_hash, st)
            if st.reason == "copied":
                summary.copied += 1
                st.reason = ""
            elif st.state == "failed":
                summary.failed += 1
            elif st.state == "none" and st.reason == "gate":
                summary.skipped += 1
                st.reason = ""
            else:
                summary.read += 1
            if st.state == "text":
                summary.with_text += 1
                if rec.state == "name_only" and rec.reason.startswith(SCANNED_PDF_REASON):
                    # Found by its words now: the Problems list no longer says it has no text.
                    scans.append(dataclasses.replace(rec, reason=""))
            pending.append(item)
            if len(pending) >= FILES_PER_COMMIT or time.monotonic() - last_commit > COMMIT_INTERVAL_S:
                flush()
        flush()
        summary.elapsed_s = time.monotonic() - started
        return summary

    def _ensure_keyword_index(self) -> None:
        from indexer.store.fts import ensure_fts_index

        try:
            with self.store._write_lock:
                ensure_fts_index(recognised.rows_table(self.store, model_id=self.text_embedder.model_id))
        except Exception as exc:  # noqa: BLE001 - meaning search still finds the words; rebuilt at the next optimize
            log.warning("keyword index of recognised text not built yet: %s", exc)

    # ------------------------------------------------------------------ one file
    def _copy_twin(self, rec: FileRecord, by_hash: dict[str, OcrState]) -> OcrWrite | None:
        """The passages of a file with the same bytes that was read already (a move, a copy)."""
        twin = by_hash.get(rec.content_hash)
        if twin is None or twin.fid == rec.fid:
            return None
        state = OcrState(rec.fid, rec.content_hash, twin.state, twin.n_lines, twin.reason, time.time())
        if twin.state != "text":
            return OcrWrite(state)
        rows = recognised.rows_of(self.store, {twin.fid: twin.file_hash}, model_id=self.text_embedder.model_id)
        if twin.fid not in rows:
            return None  # its passages went (or are damaged): read this one
        state.reason = "copied"
        return OcrWrite(state, rows[twin.fid])

    def _read(self, rec: FileRecord) -> OcrWrite | None:
        """Recognise one file; None when its bytes are no longer those indexed."""
        state = OcrState(rec.fid, rec.content_hash, "none", at=time.time())
        try:
            pages = self._recognise(rec)
        except (Vanished, FileNotFoundError):
            return None  # gone: the watcher's next batch retires it
        except _Changed:
            return None
        except PathUnsafe as exc:
            state.state, state.reason = "failed", str(exc)
            return OcrWrite(state)
        except NameOnly as exc:
            state.reason = "gate" if str(exc) == "gate" else ""
            return OcrWrite(state)
        except (ExtractionError, OSError, MemoryError) as exc:
            state.state = "failed"
            state.reason = str(exc) or type(exc).__name__
            log.info("words in %r not read: %s", rec.path, state.reason)
            return OcrWrite(state)
        n_lines = sum(len(lines) for _p, lines in pages)
        state.n_lines = n_lines
        if not n_lines:
            return OcrWrite(state)
        rows = self._passages(rec, pages)
        if not rows:
            return OcrWrite(state)
        state.state = "text"
        return OcrWrite(state, rows)

    def _recognise(self, rec: FileRecord) -> list[tuple[int, list[TextLine]]]:
        with open_under_root(rec.root, rec.path) as source:
            if _hash(source) != rec.content_hash:
                raise _Changed
            if rec.kind == "image":
                source.rewind()
                with open(source.fd, "rb", closefd=False) as fh:
                    looked, lines = read_image_file(self.recogniser, fh)
                if not looked:
                    raise NameOnly("gate")
                return [(-1, lines)]
            return read_pdf_scans(self.recogniser, rec.path, source.root, source.identity())

    def _passages(self, rec: FileRecord, pages: Sequence[tuple[int, list[TextLine]]]) -> list[OcrRow]:
        """The recognised text cut into passages (the documents' chunker), embedded, with the
        boxes of each passage's lines."""
        from indexer.ingest.chunk import chunk_text, embedding_input

        parts: list[str] = []
        spans: list[LineSpan] = []
        pos = 0
        for page, lines in pages:
            offset = pos + (len(PAGE_BREAK) if parts else 0)
            text, page_spans = passage_text(lines, page, start=offset)
            if not text:
                continue
            parts.append(text)
            spans.extend(page_spans)
            pos = offset + len(text)
        full = PAGE_BREAK.join(parts)
        title = rec.title if rec.kind != "image" else ""
        chunks = chunk_text(full, title, headings=False)
        if not chunks:
            return []
        inputs = [embedding_input(c, title) for c in chunks]
        model = self.text_embedder.model_id
        vectors = np.asarray(self.text_embedder.embed_documents(inputs), np.float32)
        rows: list[OcrRow] = []
        for i, (chunk, text_in, vec) in enumerate(zip(chunks, inputs, vectors)):
            inside = [s for s in spans if s.end > chunk.start and s.start < chunk.end]
            boxes = recognised.encode_lines(
                (max(0, s.start - chunk.start), min(chunk.end, s.end) - chunk.start, s.page, s.box) for s in inside
            )
            page = inside[0].page if inside else -1
            chunk_hash = hashlib.blake2b(f"{model}\0{text_in}".encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
            rows.append(OcrRow(i, chunk.text, chunk.start, chunk.end, page, boxes, chunk_hash, vec))
        return rows


class _Changed(Exception):
    """The file's bytes are not those indexed: its re-index comes first."""


def _hash(source: Any) -> str:
    h = hashlib.blake2b(digest_size=16)
    source.rewind()
    while True:
        try:
            block = os.read(source.fd, 1 << 20)
        except BlockingIOError:
            break
        if not block:
            break
        h.update(block)
    return h.hexdigest()
