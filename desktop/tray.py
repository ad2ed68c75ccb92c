"""Tray icon: keeps Lodestar watching when the window is closed; Open / status / Quit."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtWidgets import QApplication, QMenu, QSystemTrayIcon

from desktop.icons import app_icon
from desktop.status_panel import describe
from indexer.types import Progress

if TYPE_CHECKING:
    from desktop.app import Parts


class Tray(QSystemTrayIcon):
    def __init__(self, parts: Parts, app: QApplication) -> None:
        super().__init__(app_icon(), app)
        self.parts = parts
        self.menu = QMenu()
        self.status_action = self.menu.addAction("Starting…")
        self.status_action.setEnabled(False)
        self.menu.addSeparator()
        self.menu.addAction("Open Lodestar", self.open_window)
        self.menu.addAction("Quit", parts.window.quitRequested.emit)
        self.setContextMenu(self.menu)
        self.setToolTip("Lodestar")
        self.activated.connect(self._on_activated)
        parts.backend.progress.connect(self._on_progress)
        parts.backend.writerChanged.connect(self._on_writer_changed)

    @classmethod
    def create(cls, parts: Parts, app: QApplication) -> Tray | None:
        if not QSystemTrayIcon.isSystemTrayAvailable():
            return None
        tray = cls(parts, app)
        tray.show()
        return tray

    def open_window(self) -> None:
        w = self.parts.window
        w.show()
        w.raise_()
        w.activateWindow()

    def _on_writer_changed(self, message: str) -> None:
        if message:
            self.status_action.setText(message)

    def _on_activated(self, reason: Any) -> None:
        if reason == QSystemTrayIcon.ActivationReason.Trigger:
            self.open_window()

    def _on_progress(self, p: Progress) -> None:
        text = describe(p)
        self.status_action.setText(text)
        self.setToolTip(f"Lodestar — {text}")
