"""Words inside pictures and scans (issue 16): the real rapidocr engine on small rendered
images and PDFs built here, the recognition stage, storage and search fusion end to end
with the real text model and the tiny CLIP."""

from __future__ import annotations

import io
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from indexer.ingest import ocr
from indexer.ingest.ocr import Recogniser, TextLine, passage_text, reading_order
from indexer.store import recognised


# ------------------------------------------------------------------ inputs
def text_image(lines: list[str], size: tuple[int, int] = (420, 130), font_size: int = 34,
               bg: str = "white", fg: str = "black") -> Image.Image:
    img = Image.new("RGB", size, bg)
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=font_size)
    for i, line in enumerate(lines):
        draw.text((12, 10 + i * int(font_size * 1.4)), line, font=font, fill=fg)
    return img


def photo_like(w: int = 640, h: int = 480, seed: int = 1) -> Image.Image:
    """A smooth gradient with sensor-like noise and soft blobs: no text, no hard edges."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([90 + 80 * xx / w, 120 + 60 * yy / h, 160 - 50 * (xx + yy) / (w + h)], -1)
    for _ in range(4):
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(40, 140)
        base += (40 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r)))[..., None]
    base += rng.normal(0, 6, base.shape)
    return Image.fromarray(base.clip(0, 255).astype(np.uint8))


def save(img: Image.Image, path: Path, **kw: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, **kw)
    return path


def scanned_pdf(path: Path, lines: list[str]) -> Path:
    """An image-only PDF page (what a scanner makes): Pillow's PDF writer, no text layer."""
    page = text_image(lines, size=(900, 300), font_size=40)
    page.save(path, "PDF", resolution=150.0)
    return path


def mixed_pdf(path: Path, text_line: str, scanned_lines: list[str]) -> Path:
    """Page 1 has a text layer; page 2 is a scan."""
    from pypdf import PdfReader, PdfWriter

    from tests.support.nasty import minimal_pdf

    buf = io.BytesIO()
    text_image(scanned_lines, size=(900, 300), font_size=40).save(buf, "PDF", resolution=150.0)
    writer = PdfWriter()
    for src in (minimal_pdf([text_line]), buf.getvalue()):
        for page in PdfReader(io.BytesIO(src)).pages:
            writer.add_page(page)
    with open(path, "wb") as fh:
        writer.write(fh)
    return path


@pytest.fixture(scope="module")
def reader() -> Recogniser:
    r = Recogniser()
    r.load()
    return r


# ------------------------------------------------------------------ the engine
def test_reading_order_puts_rows_top_to_bottom_then_left_to_right() -> None:
    def line(text: str, x: float, y: float) -> TextLine:
        return TextLine(text, ((x, y), (x + 50, y), (x + 50, y + 20), (x, y + 20)), 0.9)

    lines = [line("right", 200, 12), line("second", 10, 60), line("left", 10, 10)]
    assert [t.text for t in reading_order(lines)] == ["left", "right", "second"]
    text, spans = passage_text(lines, start=5)
    assert text == "left\nright\nsecond"
    assert [text[s.start - 5 : s.end - 5] for s in spans] == ["left", "right", "second"]


def test_lines_without_a_letter_or_digit_are_dropped() -> None:
    from indexer.ingest.ocr import has_word

    assert not any(has_word(t) for t in ["●", "● ● ●", "—", "•  •", "...", "|"])
    assert all(has_word(t) for t in ["WiFi", "4711", "é", "€ 12", "ß"])


def test_line_boxes_round_trip_and_garbage_reads_as_none() -> None:
    box = ((1.0, 2.0), (30.0, 2.0), (30.0, 12.5), (1.0, 12.5))
    raw = recognised.encode_lines([(0, 4, -1, box), (5, 9, 2, box)])
    assert recognised.decode_lines(raw) == [(0, 4, -1, box), (5, 9, 2, box)]
    for bad in ("", "not json", "{}", "[[1, 2]]", '[["a", 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]]', None):
        assert recognised.decode_lines(bad) == []


def test_reads_a_rendered_sticker_with_boxes_in_image_pixels(reader: Recogniser) -> None:
    img = text_image(["WiFi password", "hunter2 4711"])
    started = time.perf_counter()
    lines = reader.read(img)
    took = time.perf_counter() - started
    assert [t.text for t in lines] == ["WiFi password", "hunter2 4711"]
    first = lines[0].box
    assert all(0 <= x <= 420 and 0 <= y <= 130 for x, y in first)
    assert lines[0].top < lines[1].top
    assert took < 10, took  # well under a second on an idle 2-core machine


def grainy_photo(w: int = 1600, h: int = 1200, seed: int = 3) -> Image.Image:
    """Colour fields with sensor grain, as a phone photo: the detector sees one region
    covering it all, which is texture, not a line of text."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(12, 16, 3), dtype=np.uint8)
    arr = np.asarray(Image.fromarray(small, "RGB").resize((w, h), Image.Resampling.BICUBIC), np.int16)
    arr[::4, ::4] += rng.integers(-12, 13, size=(h // 4, w // 4, 1), dtype=np.int16)
    return Image.fromarray(arr.clip(0, 255).astype(np.uint8))


def test_gate_skips_a_photo_without_text_quickly_and_passes_text(reader: Recogniser, tmp_path: Path) -> None:
    photo = photo_like(1024, 768)
    reader.has_text(photo)  # warm
    started = time.perf_counter()
    assert not reader.has_text(photo)
    took = time.perf_counter() - started
    assert took < 2.0, took  # the detector alone on a 640 px downscale (tens of ms idle)
    assert not reader.has_text(grainy_photo())
    assert reader.has_text(text_image(["Invoice 4711"]))
    jpeg = save(grainy_photo(), tmp_path / "IMG_0001.jpg", quality=90)
    with open(jpeg, "rb") as fh:
        assert ocr.read_image_file(reader, fh) == (False, [])


def test_huge_image_is_read_downscaled_and_boxes_map_back(reader: Recogniser) -> None:
    img = Image.new("RGB", (5200, 1300), "white")
    ImageDraw.Draw(img).text((2600, 400), "BIG SIGN", font=ImageFont.load_default(size=300), fill="black")
    arr_bytes = img.width * img.height * 3
    lines = reader.read(img)
    assert lines and "BIG SIGN" in " ".join(t.text for t in lines)
    xs = [x for t in lines for x, _y in t.box]
    assert min(xs) > 2500, "boxes are in the original's pixels, not the downscale's"
    assert arr_bytes > 4 * ocr.READ_MAX_SIDE * ocr.READ_MAX_SIDE  # it was worth bounding


def test_time_bound_keeps_what_was_read() -> None:
    words = [f"line {n} of the list" for n in range(12)]
    page = text_image(words, size=(420, 12 * 34 + 30), font_size=24)
    quick = Recogniser(time_limit_s=0.0)
    lines = quick.read(page)
    # Past the deadline no new batch starts: the first batch is read and kept.
    assert len(lines) == ocr.REC_BATCH < len(words)
    assert all(t.text in words for t in lines)


def test_decode_for_ocr_refuses_corrupt_and_takes_first_frame(tmp_path: Path) -> None:
    from indexer.types import ExtractionError

    good = io.BytesIO()
    text_image(["hello"]).save(good, "PNG")
    truncated = io.BytesIO(good.getvalue()[: len(good.getvalue()) // 2])
    with pytest.raises(ExtractionError):
        ocr.decode_for_ocr(truncated)  # type: ignore[arg-type]
    frames = [text_image(["frame one"]), text_image(["frame two"], bg="yellow")]
    gif = io.BytesIO()
    frames[0].save(gif, "GIF", save_all=True, append_images=frames[1:], duration=100)
    img, w, h = ocr.decode_for_ocr(io.BytesIO(gif.getvalue()))  # type: ignore[arg-type]
    assert (w, h) == (420, 130) and img.getpixel((1, 1)) == (255, 255, 255)


# ------------------------------------------------------------------ end to end
@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory, text_embedder: Any, tiny_clip: Any,
            tiny_clip_checkpoint: Path) -> Any:
    """A folder of screenshots, photos of documents and scans, indexed once for the module."""
    from indexer.library.runtime import Runtime
    from indexer.library.settings import Settings, open_paths, save_settings
    from tests.support.tiny_clip import TINY_CLIP_NAME

    base = tmp_path_factory.mktemp("ocr")
    root = base / "home"
    save(text_image(["WiFi password", "hunter2 secret"]), root / "IMG_2031.png")
    save(text_image(["INVOICE 4711", "Total 120 EUR"], bg="#f4f0e0"), root / "IMG_2032.jpg", quality=90)
    save(text_image(["ModuleNotFoundError:", "No module named numpy"], size=(560, 130), fg="#202020"),
         root / "Screenshot 2026-11-30.png")
    save(photo_like(), root / "holiday.png")
    scanned_pdf(root / "scan.pdf", ["Tenancy agreement", "Deposit paid in full"])
    mixed_pdf(root / "mixed.pdf", "Quarterly report of the garden club", ["Membership fees", "due in March"])
    (root / "notes.txt").write_text("Shopping list: apples, bread, coffee beans.", encoding="utf-8")
    paths = open_paths(base / "data")
    settings = Settings(folders=[str(root)], clip_model=TINY_CLIP_NAME, clip_pretrained="",
                        clip_checkpoint=str(tiny_clip_checkpoint), allow_download=False)
    save_settings(paths, settings)
    rt = Runtime(paths, settings)
    rt._text = text_embedder
    rt._image = tiny_clip
    summary = rt.service().index_roots([str(root)])
    assert summary.failed == 0, summary.failures
    rt.root = root
    yield rt
    rt.close()


def _first(resp: Any) -> Any:
    assert resp.results, resp.message
    return resp.results[0]


def test_wifi_password_finds_the_router_sticker_with_its_words_highlighted(library: Any) -> None:
    res = _first(library.searcher().search("wifi password"))
    assert Path(res.path).name == "IMG_2031.png"
    assert res.kind == "image" and res.matched_by in ("words", "look+words")
    assert res.passage_source == "ocr" and "WiFi password" in res.passage
    spans = [res.passage[s:e].lower() for s, e in res.highlights]
    assert "wifi" in spans and "password" in spans
    matched = [line for line in res.lines if line.matched]
    assert matched and res.passage[matched[0].start : matched[0].end] == "WiFi password"
    assert len(matched[0].box) == 4 and all(0 <= x <= 420 for x, _y in matched[0].box)
    assert res.thumbnail  # embedded by CLIP too: its thumbnail rides along


def test_invoice_number_and_error_screenshot_are_found_first(library: Any) -> None:
    searcher = library.searcher()
    assert Path(_first(searcher.search("invoice 4711")).path).name == "IMG_2032.jpg"
    assert Path(_first(searcher.search("ModuleNotFoundError numpy")).path).name == "Screenshot 2026-11-30.png"
    images_only = searcher.search("invoice 4711", kind="image")
    assert Path(_first(images_only).path).name == "IMG_2032.jpg"
    docs_only = searcher.search("invoice 4711", kind="text")
    assert all(r.kind != "image" for r in docs_only.results)


def test_status_says_how_far_reading_words_has_come(library: Any) -> None:
    from indexer.cli.status import collect

    words = collect(library)["words_in_pictures"]
    assert words["images_total"] == 4 and words["with_text"] == 5
    assert words["message"].startswith("words read in 4 of 4 pictures")


def test_session_tells_the_window_how_far_reading_words_has_come(library: Any) -> None:
    from indexer.library.session import LibrarySession
    from tests.support.gui_fakes import FakeLock, FakeWatch

    session = LibrarySession(library, lock_factory=lambda paths: FakeLock(), watch_factory=FakeWatch)
    p = session.words_progress()
    assert p.enabled and not p.running and (p.images_done, p.images_total, p.pdfs_done) == (4, 4, 2)


def test_excluded_word_drops_a_picture_that_holds_it(library: Any) -> None:
    names = [Path(r.path).name for r in library.searcher().search("wifi password -hunter2").results]
    assert "IMG_2031.png" not in names


def test_one_result_per_file_when_found_by_look_and_words(library: Any) -> None:
    resp = library.searcher().search("wifi password")
    paths = [r.path for r in resp.results]
    assert len(paths) == len(set(paths))
    assert resp.counts["image"] == sum(1 for r in resp.results if r.kind == "image")


def test_scanned_pdf_is_found_by_its_words_and_only_image_pages_are_read(library: Any) -> None:
    searcher = library.searcher()
    res = _first(searcher.search("tenancy agreement deposit"))
    assert Path(res.path).name == "scan.pdf"
    assert res.passage_source == "ocr" and res.passage_page == 0
    mixed = _first(searcher.search("membership fees due in march"))
    assert Path(mixed.path).name == "mixed.pdf" and mixed.passage_page == 1
    # The text page went through text extraction, not recognition.
    store = library.store
    rows = recognised.rows_of(store, {r.fid: r.content_hash for r in store.files().values() if r.name == "mixed.pdf"})
    text = " ".join(row.text for rs in rows.values() for row in rs)
    assert "Membership" in text and "garden" not in text
    assert all(row.page == 1 for rs in rows.values() for row in rs)
    text_page = _first(searcher.search("quarterly report garden club"))
    assert Path(text_page.path).name == "mixed.pdf" and text_page.passage_source == "text"
    # Found by its words, the scan is no longer listed as a problem ("no text layer").
    assert not [r for r in store.problems() if r.name == "scan.pdf"]


def test_photo_without_text_is_skipped_by_the_gate_and_counted(library: Any) -> None:
    from indexer.ingest.recognise import progress

    store = library.store
    states = recognised.states(store)
    holiday = next(r for r in store.files().values() if r.name == "holiday.png")
    assert states[holiday.fid].state == "none" and states[holiday.fid].n_lines == 0
    p = progress(store, library.settings)
    assert p.images_total == 4 and p.images_done == 4 and p.pdfs_done == 2
    assert p.with_text == 5 and p.failed == 0
    assert p.message.startswith("words read in 4 of 4 pictures and 2 of 2 PDFs")


def test_a_copy_reuses_the_words_without_reading_again(library: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    root = library.root
    service = library.service()
    calls = []
    real = service.recogniser.read
    monkeypatch.setattr(service.recogniser, "read", lambda img: calls.append(1) or real(img))
    shutil.copy(root / "IMG_2031.png", root / "sticker copy.png")
    try:
        service.sync_paths([str(root / "sticker copy.png")])
        assert calls == []
        names = [Path(r.path).name for r in library.searcher().search("wifi password hunter2").results]
        assert "sticker copy.png" in names and "IMG_2031.png" in names
    finally:
        os.unlink(root / "sticker copy.png")
        service.sync_paths([str(root / "sticker copy.png")])


# ------------------------------------------------------------------ the stage
@pytest.fixture
def small_library(tmp_path: Path) -> Path:
    root = tmp_path / "pics"
    save(text_image(["WiFi password", "hunter2 secret"]), root / "a.png")
    save(text_image(["INVOICE 4711"]), root / "b.png")
    save(text_image(["Parking permit 22"]), root / "c.png")
    return root


def test_clip_missing_still_indexes_words_and_hostile_pictures_fail_alone(make_runtime: Any, small_library: Path) -> None:
    good = io.BytesIO()
    text_image(["broken"]).save(good, "PNG")
    (small_library / "broken.png").write_bytes(good.getvalue()[:200])  # truncated
    save(Image.new("RGB", (1, 1), "red"), small_library / "tiny.png")
    frames = [text_image(["Boarding pass 7C"]), text_image(["second frame"], bg="yellow")]
    frames[0].save(small_library / "animated.gif", save_all=True, append_images=frames[1:], duration=100)
    rt = make_runtime([str(small_library)], clip=False)
    rt.service().index_roots([str(small_library)])
    files = {r.name: r for r in rt.store.files().values()}
    assert files["a.png"].state == "pending"  # no CLIP weights: waiting for the image model
    states = recognised.states(rt.store)
    assert states[files["broken.png"].fid].state == "failed" and states[files["broken.png"].fid].reason
    assert states[files["tiny.png"].fid].state == "none"
    assert states[files["animated.gif"].fid].state == "text"  # its first frame
    res = _first(rt.searcher().search("invoice 4711"))
    assert Path(res.path).name == "b.png" and res.matched_by == "words" and not res.thumbnail
    assert Path(_first(rt.searcher().search("boarding pass")).path).name == "animated.gif"


def test_setting_off_reads_nothing(make_runtime: Any, small_library: Path) -> None:
    rt = make_runtime([str(small_library)], recognise_text=False)
    rt.service().index_roots([str(small_library)])
    assert recognised.states(rt.store) == {}
    assert rt.service().recognise() is None
    assert "off" in __import__("indexer.ingest.recognise", fromlist=["progress"]).progress(rt.store, rt.settings).message


def test_crash_in_the_middle_resumes_without_reading_twice(make_runtime: Any, small_library: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from indexer.ingest import recognise as stage_mod

    monkeypatch.setattr(stage_mod, "FILES_PER_COMMIT", 1)
    rt = make_runtime([str(small_library)])
    service = rt.service()
    read_paths: list[str] = []
    real = stage_mod.RecognitionStage._read

    class Crash(BaseException):
        pass

    def crashing(self: Any, rec: Any) -> Any:
        read_paths.append(rec.path)
        if len(read_paths) == 3:
            raise Crash  # the process dies while reading the third picture
        return real(self, rec)

    monkeypatch.setattr(stage_mod.RecognitionStage, "_read", crashing)
    with pytest.raises(Crash):
        service.index_roots([str(small_library)])
    done = {fid for fid, st in recognised.states(rt.store).items()}
    assert len(done) == 2  # each finished picture was committed; the third died with the crash
    monkeypatch.setattr(stage_mod.RecognitionStage, "_read", lambda self, rec: read_paths.append(rec.path) or real(self, rec))
    service.recognise()
    assert len(recognised.states(rt.store)) == 3
    assert len(read_paths) == len(set(read_paths)) + 1  # only the file in flight at the crash was read again
    assert Path(_first(rt.searcher().search("parking permit")).path).name == "c.png"


def test_changed_picture_is_read_again_and_old_words_go(make_runtime: Any, small_library: Path) -> None:
    rt = make_runtime([str(small_library)])
    service = rt.service()
    service.index_roots([str(small_library)])
    save(text_image(["Library card 99"]), small_library / "c.png")
    service.sync_paths([str(small_library / "c.png")])
    res = _first(rt.searcher().search("library card"))
    assert Path(res.path).name == "c.png"
    fid = next(r.fid for r in rt.store.files().values() if r.name == "c.png")
    table = recognised.rows_table(rt.store)
    texts = table.search().where(f"fid = '{fid}'").limit(None).to_arrow().column("text").to_pylist()
    assert texts and all("Parking" not in t for t in texts)


def test_new_documents_go_before_words_in_pictures(make_runtime: Any, small_library: Path) -> None:
    """Between two pictures the stage lets the watcher's changed files through first."""
    rt = make_runtime([str(small_library)], recognise_text=False)
    service = rt.service()
    service.index_roots([str(small_library)])
    note = small_library / "urgent.txt"
    note.write_text("The meeting moved to Thursday.", encoding="utf-8")
    order: list[str] = []
    asked = threading.Event()

    def urgent() -> list[str]:
        if asked.is_set():
            return []
        asked.set()
        return [str(note)]

    service.urgent = urgent
    real_read = service.recogniser.read
    service.recogniser.read = lambda img: order.append("picture") or real_read(img)  # type: ignore[method-assign]
    real_sync = service.sync_paths
    service.sync_paths = lambda paths, cancel=None, **kw: order.append("document") or real_sync(paths, cancel, **kw)  # type: ignore[method-assign]
    rt.settings.recognise_text = True
    service.recognise()
    assert order[0] == "document" and order.count("picture") == 3
    assert _first(rt.searcher().search("meeting moved thursday")).path == str(note)
