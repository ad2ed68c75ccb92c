"""Folders & settings: watched folders with their state, exclusions, models, login start, data."""

from __future__ import annotations

import logging
import os

from PySide6.QtCore import QSettings, Qt, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop.backend import Backend
from desktop.folder_dialog import choose_folder
from indexer.types import FolderStatus, OcrProgress

log = logging.getLogger(__name__)

MODE_LABELS = {"live": "Live", "polling": "Polling", "unavailable": "Unavailable", "stopped": "Not watching"}


class SettingsDialog(QDialog):
    def __init__(self, backend: Backend, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.backend = backend
        self.setWindowTitle("Folders & settings")
        self.setAccessibleName("Folders and settings")
        lay = QVBoxLayout(self)

        folders_box = QGroupBox("Watched folders", self)
        fl = QVBoxLayout(folders_box)
        self.table = QTableWidget(0, 4, self)
        self.table.setHorizontalHeaderLabels(["Folder", "State", "Files", "Problems"])
        self.table.setAccessibleName("Watched folders")
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in (1, 2, 3):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        row = QHBoxLayout()
        self.add_button = QPushButton("Add folder…", self)
        self.remove_button = QPushButton("Remove", self)
        self.remove_button.setAccessibleName("Remove folder")
        self.add_button.clicked.connect(self.add_folder)
        self.remove_button.clicked.connect(self.remove_selected)
        row.addWidget(self.add_button)
        row.addWidget(self.remove_button)
        row.addStretch(1)
        fl.addWidget(self.table)
        fl.addLayout(row)

        ex_box = QGroupBox("Skip these (one pattern per line, e.g. *.log or Archive)", self)
        el = QVBoxLayout(ex_box)
        self.excludes = QPlainTextEdit(self)
        self.excludes.setAccessibleName("Exclusion patterns")
        self.excludes.setMaximumHeight(80)
        el.addWidget(self.excludes)

        model_box = QGroupBox("Models", self)
        form = QFormLayout(model_box)
        self.text_model = QLineEdit(self)
        self.text_model.setAccessibleName("Text model")
        ck_row = QHBoxLayout()
        self.clip_checkpoint = QLineEdit(self)
        self.clip_checkpoint.setAccessibleName("CLIP checkpoint file")
        self.clip_checkpoint.setPlaceholderText("optional .safetensors file")
        browse = QPushButton("Choose…", self)
        browse.clicked.connect(self.choose_checkpoint)
        ck_row.addWidget(self.clip_checkpoint, 1)
        ck_row.addWidget(browse)
        self.allow_download = QCheckBox("Allow downloading the image model weights", self)
        form.addRow("Text model", self.text_model)
        form.addRow("CLIP weights", ck_row)
        form.addRow("", self.allow_download)
        self.recognise_text = QCheckBox("Read the words in pictures and scanned PDFs", self)
        self.recognise_text.setToolTip(
            "Screenshots, photos of documents and scans are found by the words in them. "
            "Off: nothing more is read; words read before stay searchable.")
        form.addRow("", self.recognise_text)
        self.words_label = QLabel(self)  # "words read in 120 of 300 pictures; 14 files with words"
        self.words_label.setTextFormat(Qt.TextFormat.PlainText)
        self.words_label.setWordWrap(True)
        self.words_label.setEnabled(False)  # drawn muted: a count, not a control
        self.words_label.setAccessibleName("Words in pictures read so far")
        form.addRow("", self.words_label)

        gen_box = QGroupBox("General", self)
        gl = QVBoxLayout(gen_box)
        self.start_at_login = QCheckBox("Start Lodestar when I log in", self)
        self.keep_in_tray = QCheckBox("Keep watching in the tray when the window is closed", self)
        data_row = QHBoxLayout()
        self.data_label = QLabel(self)
        self.data_label.setTextFormat(Qt.TextFormat.PlainText)
        self.data_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        open_data = QPushButton("Open data folder", self)
        open_data.clicked.connect(self.open_data_dir)
        self.clear_button = QPushButton("Clear index…", self)
        self.clear_button.clicked.connect(self.clear_index)
        data_row.addWidget(self.data_label, 1)
        data_row.addWidget(open_data)
        data_row.addWidget(self.clear_button)
        gl.addWidget(self.start_at_login)
        gl.addWidget(self.keep_in_tray)
        gl.addLayout(data_row)
        share_row = QHBoxLayout()
        share_row.addWidget(QLabel("Search this library from other computers too (S3 storage)", self), 1)
        self.share_button = QPushButton("Share between computers…", self)
        self.share_button.clicked.connect(self.open_sharing)
        share_row.addWidget(self.share_button)
        gl.addLayout(share_row)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Close, self)
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        for w in (folders_box, ex_box, model_box, gen_box, buttons):
            lay.addWidget(w)
        backend.folderStatus.connect(self._show_status)
        backend.wordsProgress.connect(self._show_words)
        backend.foldersChanged.connect(lambda _f: self.refresh())
        self.resize(720, 640)
        qs = QSettings()
        geom = qs.value("settings/geometry")
        if geom is not None:
            self.restoreGeometry(geom)

    # -- folders ------------------------------------------------------------------
    def refresh(self) -> None:
        s = self.backend.settings
        self._show_status(self.backend.folder_status())
        self.backend.load_folder_status()
        self.excludes.setPlainText("\n".join(s.excludes))
        self.text_model.setText(s.text_model)
        self.clip_checkpoint.setText(s.clip_checkpoint)
        self.allow_download.setChecked(bool(s.allow_download))
        self.recognise_text.setChecked(bool(s.recognise_text))
        self.backend.load_words_progress()
        self.start_at_login.setChecked(bool(s.start_at_login))
        self.keep_in_tray.setChecked(bool(s.keep_running_in_tray))
        self.data_label.setText(f"Index: {self.backend.data_dir()}")

    def _show_words(self, progress: OcrProgress) -> None:
        text = progress.message
        if progress.running:
            text += " (reading now)"
        self.words_label.setText(text[:1].upper() + text[1:])
        self.words_label.setVisible(bool(text))

    def _show_status(self, statuses: list[FolderStatus]) -> None:
        by_path = {st.path: st for st in statuses}
        folders = self.backend.folders()
        self.table.setRowCount(len(folders))
        for row, folder in enumerate(folders):
            st = by_path.get(folder, FolderStatus(path=folder))
            cells = [folder, MODE_LABELS.get(st.mode, st.mode), f"{st.files:,}", f"{st.failed:,}"]
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)  # plain text, never markup
                if col == 0:
                    item.setToolTip(folder)
                elif col == 1 and st.message:
                    item.setToolTip(st.message)
                self.table.setItem(row, col, item)

    def add_folder(self) -> None:
        path = choose_folder(self, "Add a folder to search")
        if not path:
            return
        # The session's one rule: Lodestar's own data is refused; a folder holding it is
        # fine (the walk always skips the data folder).
        refused = self.backend.folder_refusal(path)
        if refused:
            QMessageBox.warning(self, "Folders", refused)
            return
        self.backend.add_folder(path)
        self.refresh()

    def selected_folder(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        item = self.table.item(rows[0].row(), 0)
        return item.text() if item else None

    def remove_selected(self) -> None:
        folder = self.selected_folder()
        if folder is None:
            return
        self.backend.remove_folder(folder)
        self.refresh()

    # -- other settings ----------------------------------------------------------
    def choose_checkpoint(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose CLIP weights", os.path.expanduser("~"),
                                              "Safetensors (*.safetensors)")
        if path:
            self.clip_checkpoint.setText(path)

    def save(self) -> None:
        s = self.backend.settings
        clip_changed = (self.clip_checkpoint.text().strip() != s.clip_checkpoint
                        or self.allow_download.isChecked() != s.allow_download)
        s.excludes = [line.strip() for line in self.excludes.toPlainText().splitlines() if line.strip()]
        s.text_model = self.text_model.text().strip() or s.text_model
        s.clip_checkpoint = self.clip_checkpoint.text().strip()
        s.allow_download = self.allow_download.isChecked()
        s.recognise_text = self.recognise_text.isChecked()
        s.keep_running_in_tray = self.keep_in_tray.isChecked()
        if self.start_at_login.isChecked() != s.start_at_login:
            s.start_at_login = self.start_at_login.isChecked()
            problem = _apply_autostart(self.backend, s.start_at_login)
            if problem:
                QMessageBox.warning(self, "Start at login", problem)
        self.backend.save_settings()
        if clip_changed:
            self.backend.load_clip()
        self.accept()

    def open_sharing(self) -> None:
        from desktop.share_dialog import ShareDialog

        dialog = ShareDialog(self.backend, self)
        dialog.refresh()
        dialog.exec()

    def open_data_dir(self) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(self.backend.data_dir()))

    def clear_index(self) -> None:
        answer = QMessageBox.question(
            self, "Clear index",
            "Delete the whole index? Your files are not touched; Lodestar will index them again.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
        if answer == QMessageBox.StandardButton.Yes:
            self.backend.clear_index()

    def done(self, result: int) -> None:
        QSettings().setValue("settings/geometry", self.saveGeometry())
        super().done(result)


def _apply_autostart(backend: Backend, enabled: bool) -> str:
    """Turn start-at-login on/off; returns an error message or ""."""
    try:
        backend.set_start_at_login(enabled)
    except OSError as exc:
        log.warning("could not change start-at-login: %s", exc)
        return f"Could not change start at login: {exc.strerror or exc}"
    return ""
