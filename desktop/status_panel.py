"""Status bar content: model state, indexing progress (done/total, rate, ETA), pause, problems."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QMenu,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QToolButton,
    QWidget,
)

from indexer.types import Progress
from indexer.wording import plural

PHASE_LABELS = {
    "scanning": "Scanning", "extracting": "Reading", "embedding": "Indexing", "writing": "Saving",
    "optimizing": "Tidying the index", "idle": "Up to date", "paused": "Paused",
    # after the files themselves: their words, so photos and scans are found by what they say (issue 16)
    "reading": "Reading words in pictures",
}


def format_eta(seconds: float | None) -> str:
    if seconds is None or seconds < 0:
        return ""
    s = int(seconds)
    if s < 60:
        return f"{s} s left"
    if s < 3600:
        return f"{s // 60} min left"
    return f"{s // 3600} h {s % 3600 // 60} min left"


def describe(p: Progress) -> str:
    parts = [PHASE_LABELS.get(p.phase, p.phase.capitalize())]
    if p.phase == "reading" and p.total:
        parts.append(f"{p.done:,} of {p.total:,}")  # pictures and scanned PDFs
    elif p.total:
        parts.append(f"{p.done:,}/{plural(p.total, 'file')}")
    elif p.done:
        parts.append(plural(p.done, "file"))
    if p.rate > 0 and p.phase not in ("idle", "paused"):
        parts.append(f"{p.rate:.1f}/s")
    eta = format_eta(p.eta_s) if p.phase not in ("idle", "paused") else ""
    if eta:
        parts.append(eta)
    if p.failed:
        # Files this run could not read; the Problems button counts every file that
        # needs attention (waiting ones too), so the words must differ.
        parts.append(f"{plural(p.failed, 'file')} failed")
    if p.message and p.phase != "reading":  # the stage's message repeats its label and counts
        parts.append(p.message)
    return " · ".join(parts)


class StatusPanel(QWidget):
    pauseToggled = Signal(bool)  # True = pause
    problemsRequested = Signal()
    clipDownloadRequested = Signal()
    clipFileRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(4, 0, 4, 0)
        self.models_label = QLabel(self)
        self.models_label.setTextFormat(Qt.TextFormat.PlainText)
        self.models_label.setAccessibleName("Model status")
        self.models_label.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Preferred)
        self.models_label.setMaximumWidth(420)  # a long state never widens the window (tooltip has it all)
        self.progress_label = QLabel(self)
        self.progress_label.setTextFormat(Qt.TextFormat.PlainText)
        self.progress_label.setAccessibleName("Indexing status")
        self.progress_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.bar = QProgressBar(self)
        self.bar.setMaximumWidth(160)
        self.bar.setTextVisible(False)
        self.bar.setAccessibleName("Indexing progress")
        self.bar.hide()
        self.pause_button = QPushButton("Pause", self)
        self.pause_button.setCheckable(True)
        self.pause_button.setAccessibleName("Pause indexing")
        self.pause_button.toggled.connect(self._on_pause)
        self.pause_button.hide()
        self.problems_button = QPushButton("Problems", self)
        self.problems_button.setFlat(True)
        self.problems_button.setAccessibleName("Show problems")
        self.problems_button.clicked.connect(self.problemsRequested)
        sep = QFrame(self)
        sep.setFrameShape(QFrame.Shape.VLine)
        sep.setFrameShadow(QFrame.Shadow.Plain)
        sep.setEnabled(False)  # drawn in the disabled (muted) colour in light and dark palettes
        lay.setSpacing(10)
        # Shown while CLIP weights are missing: the fix is one click away.
        self.clip_button = QToolButton(self)
        self.clip_button.setText("Get image model…")
        self.clip_button.setAccessibleName("Get the image model")
        self.clip_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.clip_button)
        menu.addAction("Download", self.clipDownloadRequested.emit)
        menu.addAction("Choose file…", self.clipFileRequested.emit)
        self.clip_button.setMenu(menu)
        self.clip_button.hide()
        lay.addWidget(self.models_label)
        lay.addWidget(self.clip_button)
        lay.addWidget(sep)
        lay.addWidget(self.progress_label, 1)
        lay.addWidget(self.bar)
        lay.addWidget(self.pause_button)
        lay.addWidget(self.problems_button)
        self.last_progress: Progress | None = None

    def show_clip_fix(self, visible: bool) -> None:
        self.clip_button.setVisible(visible)

    def set_models_text(self, text: str) -> None:
        self.models_label.setText(text)
        self.models_label.setToolTip(text)

    def set_writer_text(self, text: str) -> None:
        self.progress_label.setText(text)
        self.progress_label.setToolTip(text)

    def set_progress(self, p: Progress) -> None:
        self.last_progress = p
        text = describe(p)
        self.progress_label.setText(self.progress_label.fontMetrics().elidedText(
            text, Qt.TextElideMode.ElideRight, max(80, self.progress_label.width())))
        self.progress_label.setToolTip(p.current or text)
        busy = p.phase not in ("idle",)
        self.bar.setVisible(busy and p.phase != "paused")
        if p.total:
            self.bar.setRange(0, p.total)
            self.bar.setValue(min(p.done, p.total))
        else:
            self.bar.setRange(0, 0)  # indeterminate while scanning
        self.pause_button.setVisible(busy)
        self.pause_button.blockSignals(True)
        self.pause_button.setChecked(p.phase == "paused")
        self.pause_button.setText("Resume" if p.phase == "paused" else "Pause")
        self.pause_button.blockSignals(False)

    def set_problem_count(self, n: int) -> None:
        """The store's count of files needing attention (the Problems dialog lists the same)."""
        self.problems_button.setText(f"Problems ({n:,})" if n else "Problems")

    def _on_pause(self, checked: bool) -> None:
        self.pause_button.setText("Resume" if checked else "Pause")
        self.pauseToggled.emit(checked)
