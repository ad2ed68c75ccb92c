"""Errors the models package raises for known environment problems."""

from __future__ import annotations


class ModelUnavailable(Exception):
    """A model can't be loaded here: missing weights, refused file, no download.

    ``reason`` says what went wrong, ``fix`` what the person can do about it; both
    are shown as-is in the CLI and the window (no traceback).
    """

    def __init__(self, reason: str, fix: str = "") -> None:
        self.reason = reason.rstrip(". ")
        self.fix = fix.strip()
        super().__init__(self.reason, self.fix)

    def __str__(self) -> str:
        return f"{self.reason}. {self.fix}" if self.fix else f"{self.reason}."
