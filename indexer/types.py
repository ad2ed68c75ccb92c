"""Plain data types shared by every step of the pipeline.

Data flows one way: files → scan → extract → chunk → embed → store ← search ← window.
These dataclasses are the currency between those steps; none of them import
heavy libraries so any module (and the window) can use them cheaply.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

FileKind = Literal["text", "image", "other"]
"""`text` is embedded by the text model, `image` by CLIP, `other` is name-only."""

RecordKind = Literal["text", "image", "other", "folder"]
"""A file record's kind: a `FileKind`, or ``folder`` for a folder that could not be listed
(a problem record, state ``failed``; never a search result)."""

FileState = Literal["indexed", "name_only", "failed", "pending", "unavailable", "removed"]
"""Life cycle of one file record.

- ``indexed``: its vectors are committed.
- ``name_only``: findable by name only (binary, unknown type, over a size cap, empty).
- ``failed``: extraction failed; ``reason`` says why. Retried when the file changes.
- ``pending``: known but not embedded yet (e.g. CLIP weights missing); ``reason`` says why.
- ``unavailable``: its watched folder is offline; rows are kept but hidden from results.
- ``removed``: gone from disk, vectors kept a while for the other end of a move (never listed).
"""

ProgressPhase = Literal["scanning", "extracting", "embedding", "writing", "optimizing", "reading", "idle", "paused"]
"""What an indexing run is doing; ``idle`` ends every run, ``paused`` while the person paused it;
``reading``: the words in pictures and scans (after the files themselves, issue 16)."""

WatchMode = Literal["live", "polling", "unavailable", "stopped"]
"""How a watched folder is followed: OS events, periodic polling, not at all (offline), or not yet."""


@dataclasses.dataclass(frozen=True)
class FileInfo:
    """What a stat of one regular file tells us (no content read)."""

    path: str  # absolute, as returned by os.fsdecode (may hold surrogate escapes)
    root: str  # the watched folder it belongs to
    size: int
    mtime_ns: int
    kind: FileKind


@dataclasses.dataclass
class Chunk:
    """A passage of a document, with its character span in the extracted text."""

    text: str
    start: int
    end: int
    heading: str = ""  # nearest heading/title, used as embedding context


@dataclasses.dataclass
class TextExtraction:
    text: str
    title: str = ""
    encoding: str = ""
    truncated: bool = False


@dataclasses.dataclass
class ImageExtraction:
    """One decode of an image: a small RGB copy for the model plus a thumbnail."""

    image: object  # PIL.Image.Image in RGB, at most a few hundred px on its short side
    thumbnail_png: bytes  # re-encoded PNG, metadata stripped, <= 256 px
    width: int  # original size after EXIF orientation
    height: int


class ExtractionError(Exception):
    """A file could not be extracted; ``str(exc)`` is the user-facing reason."""


class NameOnly(Exception):
    """The file should be recorded by name only; ``str(exc)`` says why."""


@dataclasses.dataclass
class Progress:
    """A progress event from the pipeline (plain Python; desktop/ adapts it to signals)."""

    phase: ProgressPhase
    done: int = 0
    total: int = 0
    failed: int = 0
    rate: float = 0.0  # files per second
    eta_s: float | None = None
    message: str = ""
    current: str = ""
    index_changed: bool = False  # a commit landed since the last event: what a search sees changed


@dataclasses.dataclass
class IndexSummary:
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    failed: int = 0
    moved: int = 0
    pending: int = 0
    name_only: int = 0
    elapsed_s: float = 0.0
    model_calls: int = 0  # forward passes by either model (0 on a pure rename)
    failures: list[tuple[str, str]] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class SearchResult:
    """One file in a ranked result list (one result per file)."""

    path: str
    kind: FileKind
    score: float
    name: str = ""
    folder: str = ""
    ext: str = ""
    size: int = 0
    mtime: float = 0.0
    passage: str = ""  # best passage (documents)
    passage_start: int = -1  # character span of the passage in the extracted text
    passage_end: int = -1
    highlights: list[tuple[int, int]] = dataclasses.field(default_factory=list)  # spans within passage
    thumbnail: str = ""  # absolute path of the stored PNG thumbnail (images)
    width: int = 0
    height: int = 0
    state: FileState = "indexed"
    # Documents: the passage's cosine to the query (the cutoff's second test, kept so a shared
    # library's merge cuts as the searcher did); None where there is none (names, images).
    similarity: float | None = None
    computer: str = ""  # another computer of a shared library holding the file; "" for this one
    # Words inside pictures and scans (issue 16). How an image was found: "look" (CLIP, by
    # what it shows), "words" (its recognised text), "look+words"; "" for a document.
    matched_by: MatchedBy = ""
    passage_source: PassageSource = "text"  # "ocr": `passage` is text recognised in the picture/scan
    passage_page: int = -1  # a scanned PDF's page (0-based) the recognised passage is on; -1 otherwise
    lines: list[RecognisedLine] = dataclasses.field(default_factory=list)  # the passage's lines, with boxes


MatchedBy = Literal["", "look", "words", "look+words"]
PassageSource = Literal["text", "ocr"]


@dataclasses.dataclass(frozen=True)
class RecognisedLine:
    """One recognised line of a result's passage: ``passage[start:end]`` is its text.

    ``box``: its four corners (x, y), clockwise from the top-left, in pixels of the original
    upright image (after EXIF orientation); on a scanned PDF page, in PDF points (1/72 inch)
    from the page's top-left. ``matched``: the line holds a highlighted (matched) word.
    """

    start: int
    end: int
    box: tuple[tuple[float, float], ...]
    matched: bool = False


@dataclasses.dataclass(frozen=True)
class OcrProgress:
    """How far reading the words in pictures and scans has come (`lodestar status`, the window)."""

    enabled: bool = True
    images_done: int = 0  # images whose words were read (or found to hold none)
    images_total: int = 0  # indexed images (and images waiting for the image model)
    pdfs_done: int = 0  # PDFs whose scanned pages were read
    with_text: int = 0  # files in which words were found
    failed: int = 0
    running: bool = False  # the recognition stage is at work now
    message: str = ""  # one line, e.g. "words read in 120 of 300 images"


@dataclasses.dataclass
class SearchResponse:
    """A ranked list of files plus what the person should be told about it."""

    results: list[SearchResult] = dataclasses.field(default_factory=list)
    query: str = ""
    counts: dict[str, int] = dataclasses.field(default_factory=dict)  # by kind: "text", "image", "other"
    message: str = ""  # the answer when there is nothing to list, e.g. "No good match."
    note: str = ""  # a side note that is never the answer, e.g. images were not searched (and why)
    ranked: bool = True  # False for a listing by filters alone (scores mean nothing then)
    elapsed_ms: float = 0.0


@dataclasses.dataclass
class FolderStatus:
    """How one watched folder is doing (shown by `lodestar status` and the window)."""

    path: str
    mode: WatchMode = "stopped"
    files: int = 0
    failed: int = 0
    last_reconcile: float | None = None  # unix time
    message: str = ""


# ----------------------------------------------------------------------------- the map (issue 17)
MapLayer = Literal["documents", "images"]
"""Documents (one text-model vector per file) and images (CLIP vectors) live in different
vector spaces, so each has a map of its own."""


@dataclasses.dataclass(frozen=True)
class MapPoint:
    """One indexed file on a map. ``x``, ``y``: the layout's coordinates, scaled so the last
    full layout fills [0, 1] x [0, 1] (points placed since may sit a little outside); y grows
    downwards, as on a screen (the window and `lodestar map --png` draw it so)."""

    fid: str
    path: str
    name: str
    kind: FileKind
    x: float
    y: float
    cluster: int  # index into LibraryMap.clusters by MapCluster.id; -1: in no named region
    folder: str = ""
    mtime: float = 0.0  # unix time
    ext: str = ""
    size: int = 0
    thumbnail: str = ""  # absolute path of the stored PNG thumbnail (images), "" for documents


@dataclasses.dataclass(frozen=True)
class MapCluster:
    """A named region of a map: its label sits at (``x``, ``y``), the centre of its points.

    ``level`` is the zoom level from which the label is shown, as on a street map: at level
    L the map is drawn 2**L times the size at which it fits the view (level 0: the whole
    map in about 800 px). Labels are placed largest region first; a label takes the first
    level at which it overlaps no label already shown there (about 7 px a character,
    18 px high, 6 px apart), so showing every label with ``level <= L`` never overlaps.
    """

    id: int
    label: str  # a few distinctive words, e.g. "decorators · functions · wraps"
    x: float
    y: float
    size: int  # number of files in the region
    level: int = 0
    words: tuple[str, ...] = ()  # the label's words, most distinctive first


@dataclasses.dataclass
class LibraryMap:
    """One layer's map as kept with the index (`LibrarySession.load_map`)."""

    layer: MapLayer
    points: list[MapPoint] = dataclasses.field(default_factory=list)
    clusters: list[MapCluster] = dataclasses.field(default_factory=list)
    built_at: float = 0.0  # unix time of the last write (full layout or placement of new files)
    stale: bool = False  # files were added or removed since: `build_map` brings it up to date
    model: str = ""  # the vector space it was laid out from (the model id)
    method: str = ""  # how it was laid out, e.g. "umap" (or "pca" for very few points)
    message: str = ""  # why there is nothing (or little) to show, one line; "" otherwise


@dataclasses.dataclass
class MapHits:
    """A query's results to light up on a map: fid → score (higher is better)."""

    query: str
    scores: dict[str, float] = dataclasses.field(default_factory=dict)
    message: str = ""  # the searcher's answer when there is nothing to light up
