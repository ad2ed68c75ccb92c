"""Small helpers for user-visible wording, shared by the CLI and the window (no Qt)."""

from __future__ import annotations


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    """``plural(1, "file")`` → "1 file", ``plural(3, "file")`` → "3 files" (thousands separated)."""
    word = noun if n == 1 else (nouns or noun + "s")
    return f"{n:,} {word}"
