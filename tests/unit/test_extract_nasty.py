"""The whole nasty corpus through scan + extract: every file reaches its expected outcome.

This is the same path the pipeline takes (scan_root -> kind -> extract_*), minus
the models and the store, so a regression in any layer shows up here by name.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from indexer.ingest.chunk import chunk_text
from indexer.ingest.extract import extract_image, extract_text, sandbox
from indexer.ingest.scan import scan_root
from indexer.library.settings import Settings
from indexer.types import ExtractionError, NameOnly
from tests.support.nasty import Expected, make_nasty_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Expected]]]:
    root = tmp_path_factory.mktemp("nasty")
    yield root, make_nasty_corpus(root)
    sandbox.shutdown()


def _outcome(path: str, kind: str, settings: Settings) -> tuple[str, object]:
    try:
        if kind == "image":
            return "indexed", extract_image(path, settings)
        return "indexed", extract_text(path, settings)
    except NameOnly as exc:
        return "name_only", str(exc)
    except ExtractionError as exc:
        return "failed", str(exc)


def test_scan_reports_exactly_the_skipped_entries(corpus: tuple[Path, dict[str, Expected]]) -> None:
    root, expected = corpus
    skipped: dict[str, str] = {}
    done = threading.Event()
    found: list[str] = []

    def walk() -> None:
        for info in scan_root(str(root), Settings(), None, on_skip=lambda p, r: skipped.__setitem__(os.path.relpath(p, root), r)):
            found.append(os.path.relpath(info.path, root))
        done.set()

    threading.Thread(target=walk, daemon=True).start()
    assert done.wait(10), "scan blocked (FIFO opened?)"
    want_skipped = {n for n, e in expected.items() if e.outcome == "skipped"}
    assert set(skipped) == want_skipped
    for name in want_skipped:
        assert expected[name].reason in skipped[name]
    assert set(found) == set(expected) - want_skipped


def test_every_file_reaches_its_expected_outcome(corpus: tuple[Path, dict[str, Expected]]) -> None:
    root, expected = corpus
    settings = Settings()
    problems: list[str] = []
    for info in scan_root(str(root), settings, None):
        name = os.path.relpath(info.path, root)
        exp = expected[name]
        t0 = time.perf_counter()
        outcome, result = _outcome(info.path, info.kind, settings)
        elapsed = time.perf_counter() - t0
        if info.kind != exp.kind:
            problems.append(f"{name!r}: kind {info.kind} != {exp.kind}")
        if outcome != exp.outcome:
            problems.append(f"{name!r}: {outcome} ({result}) != {exp.outcome}")
            continue
        if elapsed > 5:
            problems.append(f"{name!r}: took {elapsed:.1f}s")
        if outcome in ("failed", "name_only") and exp.reason and exp.reason.lower() not in str(result).lower():
            problems.append(f"{name!r}: reason {result!r} lacks {exp.reason!r}")
        if outcome == "indexed" and info.kind == "text":
            text = result.text  # type: ignore[attr-defined]
            if exp.contains and exp.contains not in text:
                problems.append(f"{name!r}: text lacks {exp.contains!r}: {text[:120]!r}")
            if exp.absent and exp.absent in text:
                problems.append(f"{name!r}: text contains {exp.absent!r}")
            if exp.title and result.title != exp.title:  # type: ignore[attr-defined]
                problems.append(f"{name!r}: title {result.title!r} != {exp.title!r}")  # type: ignore[attr-defined]
            text.encode("utf-8")  # no lone surrogates reach the model or the store
            for c in chunk_text(text):
                assert text[c.start : c.end] == c.text
    assert not problems, "\n".join(problems)


def test_10k_frame_gif_under_a_second(corpus: tuple[Path, dict[str, Expected]]) -> None:
    root, _ = corpus
    t0 = time.perf_counter()
    r = extract_image(str(root / "frames10k.gif"), Settings())
    assert time.perf_counter() - t0 < 1.0
    assert r.image.mode == "RGB"


def test_rotated_photo_dimensions(corpus: tuple[Path, dict[str, Expected]]) -> None:
    root, _ = corpus
    r = extract_image(str(root / "rotated.jpg"), Settings())
    assert (r.width, r.height) == (200, 300)
