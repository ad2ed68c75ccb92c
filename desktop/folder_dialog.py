"""The one folder picker: it opens in the home folder on every platform (issue 14.13).

On Linux the platform's dialog (GTK, or the desktop portal) may ignore the start
folder or select the home folder inside its parent — for /root that is the
file-system root. Qt's own dialog always opens in the folder it is given.
"""

from __future__ import annotations

import sys

from PySide6.QtCore import QDir
from PySide6.QtWidgets import QFileDialog, QWidget


def folder_dialog_options(platform: str = sys.platform) -> QFileDialog.Option:
    options = QFileDialog.Option.ShowDirsOnly
    if platform.startswith("linux"):
        options |= QFileDialog.Option.DontUseNativeDialog
    return options


def choose_folder(parent: QWidget | None, caption: str, *, platform: str = sys.platform) -> str:
    """The folder the person picked, or "" when they cancelled."""
    return QFileDialog.getExistingDirectory(parent, caption, QDir.homePath(), folder_dialog_options(platform))
