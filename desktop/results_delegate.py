"""Paints one document result: icon, name, folder · date, score, highlighted passage.

Everything is laid out as plain text (QTextLayout with format ranges), so names
and passages from the person's files are never interpreted as markup.
"""

from __future__ import annotations

import os

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QPointF, QRect, QSize, Qt
from PySide6.QtGui import QFont, QFontMetrics, QPainter, QPalette, QTextCharFormat, QTextLayout
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from desktop.results_model import ResultRole, format_mtime
from indexer.types import SearchResult

PAD = 8
ICON = 40
PASSAGE_LINES = 2
LEAD_CONTEXT = 60  # characters kept before the first highlight when the passage is trimmed


def trim_passage(passage: str, highlights: list[tuple[int, int]]) -> tuple[str, list[tuple[int, int]]]:
    """Flatten whitespace and start near the first highlight so the match is visible."""
    text = "".join(" " if ch in "\r\n\t\f\v" else ch for ch in passage)
    spans = sorted((max(0, s), min(len(text), e)) for s, e in highlights if e > s and s < len(text))
    if spans and spans[0][0] > LEAD_CONTEXT * 2:
        cut = text.rfind(" ", 0, spans[0][0] - LEAD_CONTEXT) + 1
        if cut > 0:
            text = "…" + text[cut:]
            spans = [(s - cut + 1, e - cut + 1) for s, e in spans if s >= cut]
    return text, spans


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
        icon = index.data(Qt.ItemDataRole.DecorationRole)
        if icon is not None:
            icon.paint(painter, QRect(rect.left(), rect.top(), ICON, ICON), Qt.AlignmentFlag.AlignCenter)
        left = rect.left() + ICON + PAD
        width = max(10, rect.right() - left)

        base = QFont(option.font)
        bold = QFont(base)
        bold.setBold(True)
        fm, bfm = QFontMetrics(base), QFontMetrics(bold)
        line = fm.lineSpacing()
        y = rect.top()

        score = f"{result.score:.2f}"
        score_w = fm.horizontalAdvance(score) + PAD
        painter.setFont(base)
        painter.setPen(pal.color(dim))
        painter.drawText(QRect(rect.right() - score_w, y, score_w, line),
                         int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter), score)
        painter.setFont(bold)
        painter.setPen(text_color)
        name = result.name or os.path.basename(result.path)
        painter.drawText(QRect(left, y, width - score_w, line), int(Qt.AlignmentFlag.AlignVCenter),
                         bfm.elidedText(name, Qt.TextElideMode.ElideMiddle, width - score_w))
        y += line
        painter.setFont(base)
        painter.setPen(pal.color(dim))
        folder = result.folder or os.path.dirname(result.path)
        meta = "  ·  ".join(p for p in (folder, format_mtime(result.mtime)) if p)
        painter.drawText(QRect(left, y, width, line), int(Qt.AlignmentFlag.AlignVCenter),
                         fm.elidedText(meta, Qt.TextElideMode.ElideMiddle, width))
        y += line + 2
        if result.passage:
            self._paint_passage(painter, result, base, text_color, pal, selected, left, y, width)
        painter.restore()

    def _paint_passage(self, painter: QPainter, result: SearchResult, font: QFont, color, pal: QPalette,
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
