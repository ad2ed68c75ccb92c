"""Checks shared by the text-model tests (torch path and light path)."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np


def assert_concurrent_use_agrees(embedder: Any, atol: float) -> None:
    """Indexing and searching share one model: concurrent documents, queries and token
    counts must neither fail nor mix, and give what they give one at a time."""
    docs = [f"note number {i} about gardening and tomatoes" for i in range(40)]
    expected_docs = embedder.embed_documents(docs)
    expected_q = embedder.embed_query("tomato plants")
    results: dict[str, Any] = {}
    errors: list[BaseException] = []

    def index() -> None:
        try:
            results["docs"] = embedder.embed_documents(docs)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    def search() -> None:
        try:
            results["q"] = [embedder.embed_query("tomato plants") for _ in range(5)]
            results["counts"] = [embedder.count_tokens(docs[:8]) for _ in range(5)]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=index), threading.Thread(target=search)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    np.testing.assert_allclose(results["docs"], expected_docs, atol=atol)
    for q in results["q"]:
        np.testing.assert_allclose(q, expected_q, atol=atol)
    assert all(c == results["counts"][0] for c in results["counts"])
