"""Small helpers for user-visible wording, shared by the CLI and the window (no Qt)."""

from __future__ import annotations


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    """``plural(1, "file")`` → "1 file", ``plural(3, "file")`` → "3 files" (thousands separated)."""
    word = noun if n == 1 else (nouns or noun + "s")
    return f"{n:,} {word}"


def human_bytes(n: int) -> str:
    """``human_bytes(22202)`` → "22.2 KB" (decimal units, as file managers show them)."""
    value = float(n)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{n:,} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n:,} bytes"
