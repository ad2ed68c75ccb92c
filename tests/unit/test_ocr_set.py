"""The labelled set of pictures with words (bench/ocr_set.py) and the bench's measures
(bench/bench_ocr.py): the figures in docs/OCR.md stand on them (issue 16)."""

from __future__ import annotations

import importlib.util
import json
import random
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _load(name: str) -> ModuleType:
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))  # the bench scripts import each other by name
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def ocr_set() -> ModuleType:
    return _load("ocr_set")


@pytest.fixture(scope="module")
def small_set(ocr_set: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    """One picture per condition and two photos without words (seed 3)."""
    root = tmp_path_factory.mktemp("ocr-set") / "a"
    return root, ocr_set.make_ocr_set(root, n=5, photos=2, seed=3, photo_size=(160, 120))


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_set_is_the_same_for_a_seed_and_differs_for_another(ocr_set: ModuleType, small_set: tuple[Path, dict[str, object]],
                                                                tmp_path: Path) -> None:
    root, summary = small_set
    ocr_set.make_ocr_set(tmp_path / "b", n=5, photos=2, seed=3, photo_size=(160, 120))
    assert _files(root) == _files(tmp_path / "b"), "same seed, same bytes (the PDFs' dates are fixed too)"
    ocr_set.make_ocr_set(tmp_path / "c", n=1, photos=0, seed=4)
    ocr_set.make_ocr_set(tmp_path / "d", n=1, photos=0, seed=3)
    assert _files(tmp_path / "c") != _files(tmp_path / "d")
    assert summary["per_condition"] == {"clean": 1, "rotated": 1, "photographed": 1, "screenshot": 1,
                                        "scanned_pdf": 1, "no_text": 2}


def test_truth_and_queries_hold_together(ocr_set: ModuleType, small_set: tuple[Path, dict[str, object]]) -> None:
    from PIL import Image

    root, _summary = small_set
    truth = ocr_set.read_jsonl(root / "truth.jsonl")
    queries = ocr_set.read_jsonl(root / "queries.jsonl")
    by_path = {t["path"]: t for t in truth}
    assert len(by_path) == len(truth) == 7
    for t in truth:
        assert (root / "docs" / t["path"]).is_file()
        assert t["path"].split("/")[0] == t["condition"]
        if t["condition"] == "no_text":
            assert t["text"] == "" and t["lines"] == []
        else:
            assert t["text"].strip() and t["text"] == "\n".join(t["lines"])
        if t["path"].endswith((".png", ".jpg")):
            with Image.open(root / "docs" / t["path"]) as img:
                assert list(img.size) == t["size"]
    assert len({q["query"].lower() for q in queries}) == len(queries), "every query is asked once"
    assert len(queries) >= 5
    for q in queries:
        (rel,) = q["relevant"]
        assert by_path[rel]["condition"] != "no_text", "every answer is a picture with words"
        assert q["style"] in ("paraphrase", "exact")
    # the format `lodestar eval` reads
    from indexer.search.eval import load_queries

    assert len(load_queries(root / "queries.jsonl")) == len(queries)
    photographed = [t for t in truth if t["condition"] == "photographed"]
    assert photographed and all(max(t["size"]) >= 1600 for t in photographed), "phone-photo sized"


def test_word_recall_and_character_error_rate() -> None:
    bench = _load("bench_ocr")
    assert bench.word_recall("No module named 'numpy'", "no module named numpy.") == (4, 4)
    assert bench.word_recall("total 4.99 total", "TOTAL 4.99") == (2, 3), "each recognised word counts once"
    assert bench.cer("WiFi  password:\nX1", "WiFi passw0rd: X1") == (1, len("WiFi password: X1"))
    assert bench.edit_distance("kitten", "sitting") == 3
    assert bench.edit_distance("", "abc") == 3 and bench.edit_distance("abc", "") == 3

    def reference(a: str, b: str) -> int:
        row = list(range(len(b) + 1))
        for i, x in enumerate(a, 1):
            prev, row[0] = row[:], i
            for j, y in enumerate(b, 1):
                row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (x != y))
        return row[-1]

    rng = random.Random(5)
    for _ in range(200):
        a = "".join(rng.choice("abé ") for _ in range(rng.randint(0, 12)))
        b = "".join(rng.choice("abé ") for _ in range(rng.randint(0, 12)))
        assert bench.edit_distance(a, b) == reference(a, b), (a, b)
    assert json.dumps(bench.md_table(["a", "b"], [[1, 0.5]])).count("|") >= 6
