"""The window and the words inside pictures (issue 16): how a result matched, the recognised
passage highlighted, the matched lines' boxes on the preview."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QRect, QSize, Qt
from PySide6.QtGui import QColor, QFontMetrics, QImage, QPainter, QPalette, QTextCursor
from PySide6.QtWidgets import QStyleOptionViewItem

from desktop.picture_view import PictureView
from desktop.preview import PreviewPane
from desktop.results_delegate import DocumentDelegate
from desktop.results_model import ResultsModel, match_label
from desktop.thumbnails import ThumbnailCache
from indexer.types import RecognisedLine, SearchResult

pytestmark = pytest.mark.gui

STICKER = "FRITZ!Box 7590\nWiFi network (SSID): HomeNet-4F2A\nWiFi password: 7hK9-pq2M-Lx4z\nSerial no.: 2315"


def _line(text: str, line: str, box: tuple[float, float, float, float], matched: bool) -> RecognisedLine:
    start = text.index(line)
    x0, y0, x1, y1 = box
    return RecognisedLine(start, start + len(line), ((x0, y0), (x1, y0), (x1, y1), (x0, y1)), matched)


def sticker_result(thumb: str, matched_by: str = "words") -> SearchResult:
    """A photo of a router sticker (640×480) found by the words "wifi password"."""
    rows = STICKER.split("\n")
    lines = [_line(STICKER, rows[0], (40, 40, 300, 80), False),
             _line(STICKER, rows[1], (40, 100, 560, 140), False),
             _line(STICKER, rows[2], (40, 160, 520, 200), True),
             _line(STICKER, rows[3], (40, 220, 260, 260), False)]
    at = STICKER.index("WiFi password")
    return SearchResult(path="/photos/IMG_2041.jpg", kind="image", score=0.71, name="IMG_2041.jpg", folder="/photos",
                        ext=".jpg", size=812_000, mtime=1_700_000_000.0, passage=STICKER,
                        highlights=[(at, at + 4), (at + 5, at + 13)], thumbnail=thumb, width=640, height=480,
                        matched_by=matched_by, passage_source="ocr", lines=lines)  # type: ignore[arg-type]


@pytest.fixture
def thumbs(tmp_path: Path, qtbot: Any) -> ThumbnailCache:
    folder = tmp_path / "data" / "thumbnails"
    folder.mkdir(parents=True)
    img = QImage(256, 192, QImage.Format.Format_RGB32)  # the thumbnail of a 640×480 photo
    img.fill(QColor("white"))
    img.save(str(folder / "sticker.png"), "PNG")
    cache = ThumbnailCache(str(folder))
    yield cache
    cache.close()


def test_match_label_says_how_each_result_was_found() -> None:
    base = dict(path="/p/x.jpg", kind="image", score=0.5)
    assert match_label(SearchResult(**base, matched_by="words")) == "Matched the words in this picture"  # type: ignore[arg-type]
    assert match_label(SearchResult(**base, matched_by="look")) == "Matched what it shows"  # type: ignore[arg-type]
    assert match_label(SearchResult(**base, matched_by="look+words")) == "Matched what it shows and the words in it"  # type: ignore[arg-type]
    assert match_label(SearchResult(**base)) == ""  # type: ignore[arg-type]
    scan = SearchResult(path="/p/letter.pdf", kind="text", score=0.5, passage="Notice of assessment",
                        passage_source="ocr", passage_page=1)
    assert match_label(scan) == "Matched the words on scanned page 2"
    doc = SearchResult(path="/p/notes.md", kind="text", score=0.5, passage="Notice of assessment")
    assert match_label(doc) == ""


def test_tooltip_of_a_picture_says_how_it_matched() -> None:
    model = ResultsModel()
    model.set_results([sticker_result(""), SearchResult(path="/p/a.md", kind="text", score=0.4)])
    assert model.index(0, 0).data(Qt.ItemDataRole.ToolTipRole) == "/photos/IMG_2041.jpg\nMatched the words in this picture"
    assert model.index(1, 0).data(Qt.ItemDataRole.ToolTipRole) == "/p/a.md"
    assert model.index(0, 0).data(Qt.ItemDataRole.AccessibleTextRole) == (
        "IMG_2041.jpg in /photos. Matched the words in this picture")  # a screen reader says it too


def _paint_row(result: SearchResult, qapp: Any) -> tuple[QImage, int]:
    """Paint one result row with the delegate; (the picture, the meta line's top)."""
    model = ResultsModel()
    model.set_results([result])
    delegate = DocumentDelegate()
    option = QStyleOptionViewItem()
    option.font = qapp.font()
    option.palette = qapp.palette()
    size = delegate.sizeHint(option, model.index(0, 0))
    option.rect = QRect(0, 0, 700, size.height())
    img = QImage(700, size.height(), QImage.Format.Format_RGB32)
    img.fill(option.palette.color(QPalette.ColorRole.Base))
    painter = QPainter(img)
    delegate.paint(painter, option, model.index(0, 0))
    painter.end()
    return img, 8 + option.fontMetrics.lineSpacing()


def _has_colour(img: QImage, rows: range, colour: QColor, tolerance: int = 40) -> bool:
    for y in rows:
        for x in range(0, img.width(), 1):
            c = img.pixelColor(x, y)
            if abs(c.red() - colour.red()) + abs(c.green() - colour.green()) + abs(c.blue() - colour.blue()) < tolerance:
                return True
    return False


def test_result_row_shows_the_match_label_in_the_link_colour(qapp: Any) -> None:
    link = qapp.palette().color(QPalette.ColorRole.Link)
    words, top = _paint_row(sticker_result(""), qapp)
    line = QFontMetrics(qapp.font()).lineSpacing()
    assert _has_colour(words, range(top, top + line), link), "the match label is painted on the meta line"
    plain = SearchResult(path="/photos/IMG_2041.jpg", kind="image", score=0.7, name="IMG_2041.jpg", folder="/photos")
    img, top = _paint_row(plain, qapp)
    assert not _has_colour(img, range(top, top + line), link)


def test_preview_of_a_picture_found_by_its_words(qtbot: Any, thumbs: ThumbnailCache) -> None:
    pane = PreviewPane(thumbs)
    qtbot.addWidget(pane)
    pane.resize(420, 640)
    pane.show()
    result = sticker_result(str(Path(thumbs.thumb_dir) / "sticker.png"))
    pane.show_result(result)
    assert pane.match.isVisibleTo(pane) and pane.match.text() == "Matched the words in this picture"
    # the recognised text, line for line (not reflowed), with the matched words highlighted
    assert pane.passage.isVisibleTo(pane) and pane.passage.toPlainText() == STICKER
    at = STICKER.index("WiFi password")
    for pos, bold in ((at + 1, True), (at + 12, True), (at + 15, False), (3, False)):
        cur = QTextCursor(pane.passage.document())
        cur.setPosition(pos)  # the format of the character before ``pos``
        assert (cur.charFormat().fontWeight() == 700) is bold, pos
    qtbot.waitUntil(pane.image.has_picture, timeout=5000)
    boxes = pane.image.drawn_boxes()
    assert len(boxes) == 1 and boxes[0][1], "only the matched line is marked"
    rect = pane.image.picture_rect()
    poly = boxes[0][0].boundingRect()
    scale = rect.width() / 640
    assert poly.left() == pytest.approx(rect.left() + 40 * scale, abs=0.01)
    assert poly.top() == pytest.approx(rect.top() + 160 * scale, abs=0.01)
    assert poly.width() == pytest.approx(480 * scale, abs=0.01)


def test_boxes_follow_the_preview_when_it_is_resized(qtbot: Any) -> None:
    view = PictureView(256)
    qtbot.addWidget(view)
    pm = QImage(128, 96, QImage.Format.Format_RGB32)
    pm.fill(QColor("white"))
    from PySide6.QtGui import QPixmap

    lines = sticker_result("").lines
    view.show()
    view.resize(300, 256)
    view.set_picture(QPixmap.fromImage(pm), QSize(640, 480), lines)
    wide = view.drawn_boxes()[0][0].boundingRect()
    assert view.picture_rect().width() == pytest.approx(256)  # 128 px drawn at MAX_UPSCALE
    view.resize(150, 256)
    narrow = view.drawn_boxes()[0][0].boundingRect()
    assert view.picture_rect().width() == pytest.approx(150, abs=1)
    assert view.height() == round(96 * 150 / 128), "as tall as the picture at this width, no empty band"
    assert narrow.width() == pytest.approx(wide.width() * view.picture_rect().width() / 256, rel=0.001)
    assert narrow.width() / view.picture_rect().width() == pytest.approx(480 / 640)
    # the box keeps its place on the picture: its share of the picture's width is the same
    assert (narrow.left() - view.picture_rect().left()) / view.picture_rect().width() == pytest.approx(40 / 640, rel=0.01)
    # a tiny thumbnail is never blown up past MAX_UPSCALE
    view.resize(2000, 256)
    assert view.picture_rect().height() <= 96 * 2.0 + 0.01


def test_passage_matched_by_meaning_outlines_every_line(qtbot: Any) -> None:
    from PySide6.QtGui import QPixmap

    view = PictureView(256)
    qtbot.addWidget(view)
    view.resize(300, 256)
    unmatched = [RecognisedLine(ln.start, ln.end, ln.box, False) for ln in sticker_result("").lines]
    pm = QPixmap(64, 48)
    view.set_picture(pm, QSize(640, 480), unmatched)
    boxes = view.drawn_boxes()
    assert len(boxes) == 4 and not any(m for _p, m in boxes)
    view.grab()  # paints (dashed outlines) without error
    view.set_picture(pm, QSize(0, 0), unmatched)  # the original's size unknown: no box is guessed
    assert view.has_picture() and view.drawn_boxes() == []


def test_preview_of_a_picture_found_by_what_it_shows(qtbot: Any, thumbs: ThumbnailCache) -> None:
    pane = PreviewPane(thumbs)
    qtbot.addWidget(pane)
    pane.show()
    look = SearchResult(path="/photos/beach.jpg", kind="image", score=0.3, name="beach.jpg", matched_by="look",
                        thumbnail=str(Path(thumbs.thumb_dir) / "sticker.png"), width=640, height=480)
    pane.show_result(look)
    assert pane.match.text() == "Matched what it shows"
    assert not pane.passage.isVisibleTo(pane)
    qtbot.waitUntil(pane.image.has_picture, timeout=5000)
    assert pane.image.drawn_boxes() == []
    # the next result clears the boxes and the label
    pane.show_result(SearchResult(path="/p/notes.md", kind="text", score=0.4, passage="notes"))
    assert not pane.match.isVisibleTo(pane) and not pane.image.has_picture()


def test_preview_of_a_scanned_pdf_page(qtbot: Any) -> None:
    pane = PreviewPane(None)
    qtbot.addWidget(pane)
    pane.show()
    text = "Regional Tax Office\nNotice of assessment\nYou are entitled to a refund"
    at = text.index("refund")
    scan = SearchResult(path="/p/letter.pdf", kind="text", score=0.6, name="letter.pdf", passage=text,
                        highlights=[(at, at + 6)], passage_source="ocr", passage_page=0)
    pane.show_result(scan)
    assert pane.match.text() == "Matched the words on scanned page 1"
    assert pane.passage.toPlainText() == text  # its lines kept
    assert not pane.image.isVisibleTo(pane)


def test_picture_view_shows_its_text_without_a_picture(qtbot: Any) -> None:
    view = PictureView(256)
    qtbot.addWidget(view)
    view.setText("No preview")
    assert not view.has_picture() and view.text() == "No preview"
    view.grab()


def test_status_bar_shows_the_reading_stage() -> None:
    from desktop.status_panel import StatusPanel, describe
    from indexer.types import Progress

    p = Progress("reading", done=12, total=300, rate=0.5, eta_s=576,
                 message="reading words in pictures and scans: 12 of 300")
    assert describe(p) == "Reading words in pictures · 12 of 300 · 0.5/s · 9 min left"
    panel = StatusPanel()
    panel.set_progress(p)
    assert panel.bar.maximum() == 300 and panel.bar.value() == 12
    assert not panel.pause_button.isHidden(), "the stage can be paused like indexing"
    panel.set_progress(Progress("idle"))
    assert panel.bar.isHidden()
    panel.deleteLater()


def test_empty_window_while_words_are_read_invites_a_search(qtbot: Any, window: Any) -> None:
    from indexer.types import Progress

    window._on_progress(Progress("embedding", done=1, total=5))
    assert window.results.empty.title.text() == "Indexing your files…"
    window._on_progress(Progress("reading", done=3, total=40))
    assert window.results.empty.title.text() == "Type to search", "every file is searchable while words are read"
    assert "Reading words in pictures · 3 of 40" in window.status.progress_label.toolTip()


def test_settings_turn_recognition_off_and_on(qtbot: Any, window: Any) -> None:
    import json

    from desktop.app import Parts, show_settings
    from indexer.types import OcrProgress

    counts = OcrProgress(images_done=3, images_total=5, with_text=2, running=True,
                         message="words read in 3 of 5 pictures; 2 files with words")
    window.backend.session.words_progress = lambda: counts  # the fake runtime has no recognised-text tables
    parts = Parts(window, window.controller, window.backend, window.thumbnails, window.opener)
    show_settings(parts)
    dlg = parts.dialogs["settings"]
    qtbot.addWidget(dlg)
    assert dlg.recognise_text.isChecked(), "on by default"
    qtbot.waitUntil(lambda: dlg.words_label.text() != "", timeout=5000)  # read off the GUI thread
    assert dlg.words_label.text() == "Words read in 3 of 5 pictures; 2 files with words (reading now)"
    dlg.recognise_text.setChecked(False)
    dlg.save()
    assert window.backend.settings.recognise_text is False
    assert json.loads(window.backend.runtime.paths.settings.read_text())["recognise_text"] is False
    show_settings(parts)
    assert not dlg.recognise_text.isChecked()
    dlg.recognise_text.setChecked(True)
    dlg.save()
    assert json.loads(window.backend.runtime.paths.settings.read_text())["recognise_text"] is True


def test_boxes_from_a_real_index_land_on_the_words(qtbot: Any, make_runtime: Any, tmp_path: Path) -> None:
    """The whole chain: words read by the real engine, stored, found by the real searcher,
    drawn by the preview on the pipeline's own thumbnail, where the words are."""
    from PIL import Image, ImageDraw, ImageFont

    folder = tmp_path / "Photos"
    folder.mkdir()
    img = Image.new("RGB", (1200, 800), (245, 245, 240))
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(44)
    draw.text((80, 90), "Linksys EA7500", fill=(20, 20, 20), font=font)
    draw.text((600, 560), "WiFi password: 7hK9pq2M", fill=(20, 20, 20), font=font)  # lower right
    img.save(folder / "sticker.png")
    rt = make_runtime([str(folder)])
    rt.service().index_roots([str(folder)])  # the files, then the words in them
    response = rt.searcher().search("wifi password", kind="all", limit=5)
    result = next(r for r in response.results if r.path.endswith("sticker.png"))
    assert result.matched_by in ("words", "look+words") and result.passage_source == "ocr"
    assert (result.width, result.height) == (1200, 800)
    thumbs = ThumbnailCache(str(rt.paths.thumbnails))
    pane = PreviewPane(thumbs)
    qtbot.addWidget(pane)
    pane.resize(400, 700)
    pane.show()
    pane.show_result(result)
    assert "WiFi password" in pane.passage.toPlainText()
    qtbot.waitUntil(pane.image.has_picture, timeout=5000)
    boxes = [poly.boundingRect() for poly, matched in pane.image.drawn_boxes() if matched]
    assert len(boxes) == 1, "only the line with the matched words"
    pic = pane.image.picture_rect()
    box = boxes[0]
    # where the line was drawn, as a share of the picture: x 600..~1150 of 1200, y 560..~610 of 800
    assert (box.left() - pic.left()) / pic.width() == pytest.approx(600 / 1200, abs=0.04)
    assert (box.top() - pic.top()) / pic.height() == pytest.approx(560 / 800, abs=0.05)
    assert (box.bottom() - pic.top()) / pic.height() < 0.85
    thumbs.close()
