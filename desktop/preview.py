"""Preview pane: the stored thumbnail, or the passage in context, plus file facts.

A picture found by its words (issue 16) shows how it matched, the boxes of the matched
lines drawn on it (desktop/picture_view.py) and the recognised passage below, highlighted
as a document's passage is.

User-controlled text (names, passages, metadata) is always shown as plain text;
highlights are applied as character formats, never as HTML.
"""

from __future__ import annotations

import os
import re

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QColor, QPalette, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import QFormLayout, QLabel, QPlainTextEdit, QSizePolicy, QVBoxLayout, QWidget

from desktop.picture_view import PictureView
from desktop.results_model import format_mtime, format_size, match_label
from desktop.thumbnails import ThumbnailCache
from indexer.types import SearchResult

PREVIEW_PX = 256


def _plain_label(parent: QWidget) -> QLabel:
    label = QLabel(parent)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
    return label


_KEEP_LINE = re.compile(r"^(\s|[-*+•>#|]|\d+[.)]\s|```)")  # indented/code, lists, quotes, headings, tables


def reflow(text: str) -> str:
    """Join hard-wrapped prose lines so the pane wraps them to its width.

    A single line break between two prose lines becomes a space (the same length, so
    character offsets and highlights stay valid); blank lines, indented or code lines,
    list items, quotes, headings and table rows keep their breaks.
    """
    lines = text.split("\n")
    out = list(text)
    pos = 0
    for i, line in enumerate(lines[:-1]):
        pos += len(line)
        nxt = lines[i + 1]
        if (line.strip() and nxt.strip() and not _KEEP_LINE.match(line) and not _KEEP_LINE.match(nxt)
                and not line.rstrip().endswith(("```", ":")) and "\t" not in line):
            out[pos] = " "
        pos += 1
    return "".join(out)


class PreviewPane(QWidget):
    def __init__(self, thumbnails: ThumbnailCache | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._thumbs = thumbnails
        self._result: SearchResult | None = None
        self.show_scores = True  # False while a listing by filters is shown (no relevance)
        self.setAccessibleName("Preview")
        self.setMinimumWidth(240)
        lay = QVBoxLayout(self)
        self.title = _plain_label(self)
        font = self.title.font()
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.15)
        self.title.setFont(font)
        self.image = PictureView(PREVIEW_PX, self)
        self.image.setAccessibleName("Image preview")
        self.match = _plain_label(self)  # how the file was found: by what it shows, by its words
        self.match.setAccessibleName("How it matched")
        self.match.setWordWrap(True)
        self.match.setForegroundRole(QPalette.ColorRole.Link)
        self.passage = QPlainTextEdit(self)
        self.passage.setReadOnly(True)
        self.passage.setAccessibleName("Passage")
        self.passage.setFrameShape(QPlainTextEdit.Shape.NoFrame)
        form = QFormLayout()
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.DontWrapRows)
        self.path_label = _plain_label(self)
        self.path_label.setWordWrap(True)
        self.size_label = _plain_label(self)
        self.modified_label = _plain_label(self)
        self.score_label = _plain_label(self)
        form.addRow("Path", self.path_label)
        form.addRow("Size", self.size_label)
        form.addRow("Modified", self.modified_label)
        form.addRow("Score", self.score_label)
        self.facts = QWidget(self)
        self.facts.setLayout(form)
        lay.addWidget(self.title)
        lay.addWidget(self.image)
        lay.addWidget(self.match)
        lay.addWidget(self.passage, 1)
        lay.addWidget(self.facts)
        lay.addStretch()  # keeps things at the top when there is no passage
        if thumbnails is not None:
            thumbnails.loaded.connect(self._on_thumbnail)
        self.show_result(None)

    def show_result(self, result: SearchResult | None) -> None:
        self._result = result
        for w in (self.title, self.path_label, self.size_label, self.modified_label, self.score_label, self.match):
            w.clear()
        self.passage.clear()
        self.image.clear()
        self.facts.setVisible(result is not None)
        if result is None:
            self.title.setText("Nothing selected")
            self.image.hide()
            self.passage.hide()
            self.match.hide()
            return
        self.title.setText(result.name or os.path.basename(result.path))
        self.title.setToolTip(result.path)
        self.path_label.setText(result.path)
        dims = f"  ·  {result.width}×{result.height}" if result.width and result.height else ""
        self.size_label.setText(format_size(result.size) + dims if result.size else dims.strip(" ·"))
        self.modified_label.setText(format_mtime(result.mtime))
        self.score_label.setText(f"{result.score:.3f}" if self.show_scores else "—")
        is_image = result.kind == "image"
        how = match_label(result)
        self.match.setText(how)
        self.match.setVisible(bool(how))
        self.image.setVisible(is_image)
        # A picture's passage is the text recognised in it (shown below the picture).
        self.passage.setVisible(bool(result.passage))
        if is_image:
            self._load_image()
        if result.passage:
            self._show_passage(result)

    def current(self) -> SearchResult | None:
        return self._result

    def _load_image(self) -> None:
        r = self._result
        if r is None or self._thumbs is None or not r.thumbnail:
            self.image.setText("No preview")
            return
        pm = self._thumbs.pixmap(r.thumbnail)
        if pm is None:
            self.image.setText("Loading preview…")
            return
        # Boxes are in pixels of the original picture: the view scales them with the thumbnail.
        self.image.set_picture(pm, QSize(r.width, r.height), r.lines if r.passage_source == "ocr" else ())

    def _on_thumbnail(self, path: str) -> None:
        if self._result is not None and self._result.thumbnail == path:
            self._load_image()

    def _show_passage(self, r: SearchResult) -> None:
        # Same length as the passage: the highlight spans still apply. Recognised text keeps
        # its lines: each is a line of the picture (and has a box there).
        self.passage.setPlainText(r.passage if r.passage_source == "ocr" else reflow(r.passage))
        fmt = QTextCharFormat()
        bg = QColor(self.palette().color(QPalette.ColorRole.Highlight))
        bg.setAlpha(80)
        fmt.setBackground(bg)
        fmt.setFontWeight(700)
        n = len(r.passage)
        first = None
        for start, end in r.highlights:
            start, end = max(0, start), min(n, end)
            if end <= start:
                continue
            cur = QTextCursor(self.passage.document())
            cur.setPosition(start)
            cur.setPosition(end, QTextCursor.MoveMode.KeepAnchor)
            cur.mergeCharFormat(fmt)
            first = start if first is None else min(first, start)
        if first is not None:
            cur = QTextCursor(self.passage.document())
            cur.setPosition(first)
            self.passage.setTextCursor(cur)
            self.passage.ensureCursorVisible()
