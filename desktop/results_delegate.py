"""Paints one result row: icon, name, how it matched · folder · date, highlighted passage.

Everything is laid out as plain text (QTextLayout with format ranges), so names
and passages from the person's files are never interpreted as markup.
"""

from __future__ import annotations

import os

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QPointF, QRect, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPalette, QTextCharFormat, QTextLayout
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from desktop.results_model import ResultRole, format_mtime, match_label
from indexer.types import SearchResult

PAD = 8
ICON = 40
PASSAGE_LINES = 2
LEAD_CONTEXT = 60  # characters kept before the first highlight when the passage is trimmed


def trim_passage(passage: str, highlights: list[tuple[int, int]]) -> tuple[str, list[tuple[int, int]]]:
    """Flatten whitespace and start near the first highlight so the match is visible."""
    # Collapse whitespace runs (code indentation, line breaks) and remap the highlight spans.
    out: list[str] = []
    new_pos: list[int] = []  # new index of each original character
    for ch in passage:
        if ch.isspace():
            if out and out[-1] == " ":
                new_pos.append(len(out) - 1)
                continue
            ch = " "
        new_pos.append(len(out))
        out.append(ch)
    new_pos.append(len(out))
    text = "".join(out)
    n = len(passage)
    spans = sorted((new_pos[max(0, s)], new_pos[min(n, e)]) for s, e in highlights if e > s and s < n)
    spans = [(s, e) for s, e in spans if e > s]
    if spans and spans[0][0] > LEAD_CONTEXT * 2:
        cut = text.rfind(" ", 0, spans[0][0] - LEAD_CONTEXT) + 1
        if cut > 0:
            text = "…" + text[cut:]
            spans = [(s - cut + 1, e - cut + 1) for s, e in spans if s >= cut]
    return text, spans


BADGE_COLORS = {"pdf": "#c0392b", "docx": "#2b579a", "doc": "#2b579a", "odt": "#2b579a", "md": "#6c5ce7",
                "txt": "#607d8b", "rst": "#6c5ce7", "html": "#e67e22", "htm": "#e67e22", "epub": "#16a085",
                "py": "#3572a5", "csv": "#2e7d32", "json": "#8d6e63"}


def paint_badge(painter: QPainter, rect: QRect, ext: str, font: QFont) -> None:
    """A file-type badge (e.g. PDF, TXT): readable in light and dark palettes, no theme icons needed."""
    label = ext.lower().lstrip(".")[:4] or "file"
    color = QColor(BADGE_COLORS.get(label, "#78909c"))
    painter.save()
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(color)
    painter.drawRoundedRect(rect.adjusted(2, 4, -2, -4), 6, 6)
    f = QFont(font)
    f.setBold(True)
    f.setPointSizeF(max(6.0, font.pointSizeF() * 0.75))
    painter.setFont(f)
    painter.setPen(QColor("white"))
    painter.drawText(rect, int(Qt.AlignmentFlag.AlignCenter), label.upper())
    painter.restore()


class DocumentDelegate(QStyledItemDelegate):
    """Two header lines plus up to two passage lines per row."""

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        fm = QFontMetrics(option.font)
        line = fm.lineSpacing()
        return QSize(300, PAD * 2 + line * (2 + PASSAGE_LINES) + 4)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex | QPersistentModelIndex) -> None:
        result: SearchResult | None = index.data(ResultRole)
        if result is None:
            super().paint(painter, option, index)
            return
        painter.save()
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        opt.text = ""
        opt.icon = type(opt.icon)()  # draw background/selection only; we paint the rest
        style = opt.widget.style() if opt.widget is not None else None
        if style is not None:
            style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, opt.widget)

        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        pal = option.palette
        text_role = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        text_color = pal.color(text_role)
        dim = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.PlaceholderText

        rect = option.rect.adjusted(PAD, PAD, -PAD, -PAD)
        icon_rect = QRect(rect.left(), rect.top(), ICON, ICON)
        if result.kind == "image":
            icon = index.data(Qt.ItemDataRole.DecorationRole)
            if icon is not None:
                icon.paint(painter, icon_rect, Qt.AlignmentFlag.AlignCenter)
        else:
            paint_badge(painter, icon_rect, result.ext or os.path.splitext(result.path)[1], option.font)
        left = rect.left() + ICON + PAD
        width = max(10, rect.right() - left)

        base = QFont(option.font)
        bold = QFont(base)
        bold.setBold(True)
        fm, bfm = QFontMetrics(base), QFontMetrics(bold)
        line = fm.lineSpacing()
        y = rect.top()

        # No score on the row: files are ranked with a length prior, but a score shows the
        # passage's evidence, so numbers in rank order would not read as sorted (issue 14.10).
        # The preview shows the selected file's score.
        painter.setFont(bold)
        painter.setPen(text_color)
        name = result.name or os.path.basename(result.path)
        painter.drawText(QRect(left, y, width, line), int(Qt.AlignmentFlag.AlignVCenter),
                         bfm.elidedText(name, Qt.TextElideMode.ElideMiddle, width))
        y += line
        painter.setFont(base)
        meta_left, meta_width = left, width
        how = match_label(result)
        if how:
            # How a picture (or a scanned page) was found comes first, in the link colour,
            # so "by its words" and "by what it shows" read apart at a glance (issue 16).
            how = fm.elidedText(how, Qt.TextElideMode.ElideRight, width)
            painter.setPen(pal.color(text_role if selected else QPalette.ColorRole.Link))
            painter.drawText(QRect(left, y, width, line), int(Qt.AlignmentFlag.AlignVCenter), how)
            used = fm.horizontalAdvance(how)
            meta_left, meta_width = left + used, max(0, width - used)
        painter.setPen(pal.color(dim))
        folder = result.folder or os.path.dirname(result.path)
        meta = "  ·  ".join(p for p in (folder, format_mtime(result.mtime)) if p)
        if how and meta:
            meta = "  ·  " + meta
        if meta_width > fm.horizontalAdvance("  ·  …"):
            painter.drawText(QRect(meta_left, y, meta_width, line), int(Qt.AlignmentFlag.AlignVCenter),
                             fm.elidedText(meta, Qt.TextElideMode.ElideMiddle, meta_width))
        y += line + 2
        if result.passage:
            self._paint_passage(painter, result, base, text_color, pal, selected, left, y, width)
        painter.restore()

    def _paint_passage(self, painter: QPainter, result: SearchResult, font: QFont, color: QColor, pal: QPalette,
                       selected: bool, left: int, top: int, width: int) -> None:
        text, spans = trim_passage(result.passage, result.highlights)
        layout = QTextLayout(text, font)
        fmt = QTextCharFormat()
        fmt.setFontWeight(QFont.Weight.Bold)
        if not selected:
            # A soft highlight that stays readable in light and dark palettes.
            bg = pal.color(QPalette.ColorRole.Highlight)
            bg.setAlpha(70)
            fmt.setBackground(bg)
        ranges = []
        for s, e in spans:
            r = QTextLayout.FormatRange()
            r.start, r.length, r.format = s, e - s, fmt
            ranges.append(r)
        layout.setFormats(ranges)
        fm = QFontMetrics(font)
        layout.beginLayout()
        y = 0.0
        lines = 0
        last_end = 0
        while lines < PASSAGE_LINES:
            tl = layout.createLine()
            if not tl.isValid():
                break
            # Leave room for an ellipsis on the last line.
            tl.setLineWidth(width - (fm.horizontalAdvance("…") if lines == PASSAGE_LINES - 1 else 0))
            tl.setPosition(QPointF(0, y))
            y += fm.lineSpacing()
            lines += 1
            last_end = tl.textStart() + tl.textLength()
        layout.endLayout()
        painter.setPen(color)
        layout.draw(painter, QPointF(left, top))
        if last_end < len(text) and lines:
            last = layout.lineAt(lines - 1)
            painter.drawText(QPointF(left + last.naturalTextWidth(), top + (lines - 1) * fm.lineSpacing()
                                     + fm.ascent()), "…")
