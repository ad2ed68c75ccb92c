"""End to end: index a folder of documents and images, then search it.

Real embedded text model (all-MiniLM-L6-v2) and a tiny real open_clip model.
"""

from __future__ import annotations

import json
import os
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

import indexer
import models
from indexer.cli.main import main as cli_main

ROOT = Path(__file__).resolve().parents[2]

DOCS = {
    "gardening.md": "# Tomatoes\n\nWater tomato plants deeply twice a week and stake them so the "
    "stems do not snap when the fruit gets heavy. Mulch keeps the soil moist.",
    "finance.txt": "Quarterly budget review. Operating expenses rose by four percent because of "
    "higher cloud hosting invoices; revenue grew faster, so the margin improved.",
    "astronomy.txt": "The telescope's primary mirror gathers starlight. Jupiter's moons are easy to "
    "spot with binoculars on a clear night far from city lights.",
    "cooking.md": "Knead the bread dough for ten minutes, let it rise until doubled, then bake at "
    "220 degrees until the crust sounds hollow when tapped.",
}


def _image(path: Path, color: tuple[int, int, int], size: tuple[int, int] = (64, 48), pattern: int = 0) -> Path:
    img = Image.new("RGB", size, color)
    for x in range(0, size[0], 4 + pattern):
        for y in range(size[1]):
            img.putpixel((x, y), (255 - color[0], 255 - color[1], 255 - color[2]))
    img.save(path)
    return path


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "home"
    root.mkdir()
    for name, text in DOCS.items():
        (root / name).write_text(text, encoding="utf-8")
    pics = root / "pictures"
    pics.mkdir()
    _image(pics / "red.png", (220, 20, 20), pattern=0)
    _image(pics / "green.jpg", (20, 200, 40), pattern=3)
    _image(pics / "blue.webp", (20, 40, 220), pattern=7)
    return root


def _index(rt: Any, root: Path) -> Any:
    rt.settings.folders = [str(root)]
    return rt.service().index_roots([str(root)])


def test_paraphrased_question_finds_the_right_document(make_runtime: Any, corpus: Path) -> None:
    rt = make_runtime([str(corpus)])
    summary = _index(rt, corpus)
    assert summary.failed == 0
    assert summary.new == len(DOCS) + 3
    resp = rt.searcher().search("how often should I irrigate my vegetables", kind="text")
    assert resp.results, resp.message
    assert Path(resp.results[0].path).name == "gardening.md"
    assert "tomato" in resp.results[0].passage.lower()
    resp = rt.searcher().search("did the company spend more money on servers", kind="text")
    assert Path(resp.results[0].path).name == "finance.txt"
    # One result per file.
    paths = [r.path for r in resp.results]
    assert len(paths) == len(set(paths))


def test_similar_image_returns_itself_first(make_runtime: Any, corpus: Path) -> None:
    rt = make_runtime([str(corpus)])
    _index(rt, corpus)
    for name in ("red.png", "green.jpg", "blue.webp"):
        resp = rt.searcher().similar_image(str(corpus / "pictures" / name), limit=3)
        assert resp.results, resp.message
        assert Path(resp.results[0].path).name == name
        assert resp.results[0].thumbnail and os.path.isfile(resp.results[0].thumbnail)


def test_bad_files_fail_with_reasons_and_the_rest_is_indexed(make_runtime: Any, corpus: Path) -> None:
    (corpus / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00garbage" * 10)
    (corpus / "binary.txt").write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 4)
    rt = make_runtime([str(corpus)])
    summary = _index(rt, corpus)
    files = {Path(r.path).name: r for r in rt.store.files().values()}
    assert files["broken.jpg"].state == "failed"
    assert files["broken.jpg"].reason
    assert files["binary.txt"].state in ("failed", "name_only")
    assert files["binary.txt"].reason
    assert files["gardening.md"].state == "indexed"
    assert files["red.png"].state == "indexed"
    assert summary.failed >= 1


def test_odd_names_survive_index_search_and_removal(make_runtime: Any, tmp_path: Path) -> None:
    root = tmp_path / "odd"
    root.mkdir()
    names = ["O'Brien's notes.txt", 'say "hello".txt', "café – naïve 日本.txt", "x' OR '1'='1.txt"]
    for i, name in enumerate(names):
        (root / name).write_text(f"Document number {i} about the migration of arctic terns {i}.", encoding="utf-8")
    rt = make_runtime([str(root)])
    _index(rt, root)
    found = {Path(r.path).name for r in rt.searcher().search("arctic tern migration", kind="text", limit=10).results}
    assert found == set(names)
    # Removing one file removes exactly that file (the apostrophes never widen a delete).
    os.unlink(root / names[3])
    rt.service().sync_paths([str(root / names[3])])
    found = {Path(r.path).name for r in rt.searcher().search("arctic tern migration", kind="text", limit=10).results}
    assert found == set(names[:3])
    assert len(rt.store.files()) == 3


def test_a_renamed_watched_folder_is_followed_with_the_real_models(make_runtime: Any, corpus: Path) -> None:
    """Issue 13.1's acceptance through the runtime a person's window uses: the folder renamed
    while closed, the next start follows it (no model call), searches answer at the new
    paths, pictures included, and the duplicates' preferred folders follow too."""
    from indexer.duplicates.actions import load_decisions, set_preferred

    rt = make_runtime([str(corpus)])
    service = rt.service()
    _index(rt, corpus)
    set_preferred(rt.paths.data_dir, [str(corpus / "pictures")])
    told: list[str] = []
    rt.on_notice = told.append  # the window's notice bar
    before = service.model_calls
    moved = corpus.parent / "home (2026)"
    os.rename(corpus, moved)
    assert service.follow_moved_roots() == [(str(corpus), str(moved))]
    assert told == [f"{corpus} was moved to {moved}: its index followed, nothing was read again"]
    assert rt.settings.folders == [str(moved)]
    summary = service.index_roots([str(moved)])
    assert service.model_calls == before and summary.new == 0 and summary.unchanged == len(rt.store.files())
    hits = rt.searcher().search("bake bread dough", kind="text").results
    assert hits and hits[0].path == str(moved / "cooking.md")
    images = rt.searcher().search("red", kind="image").results
    assert images and all(r.path.startswith(str(moved / "pictures") + os.sep) for r in images)
    assert load_decisions(rt.paths.data_dir).preferred == [str(moved / "pictures")]


def test_rename_reuses_vectors_with_zero_model_calls(make_runtime: Any, corpus: Path) -> None:
    rt = make_runtime([str(corpus)])
    service = rt.service()
    _index(rt, corpus)
    before = service.model_calls
    shutil.move(str(corpus / "pictures"), str(corpus / "photos"))
    os.rename(corpus / "cooking.md", corpus / "bread.md")
    summary = service.index_roots([str(corpus)])
    assert service.model_calls == before
    assert summary.moved == 4
    names = {Path(r.path).name for r in rt.searcher().search("bake bread dough", kind="text").results}
    assert "bread.md" in names and "cooking.md" not in names
    assert all("pictures" not in r.path for r in rt.store.files().values())
    resp = rt.searcher().similar_image(str(corpus / "photos" / "red.png"), limit=1)
    assert Path(resp.results[0].path).parent.name == "photos"


def test_unchanged_tree_is_not_read_again(make_runtime: Any, corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rt = make_runtime([str(corpus)])
    _index(rt, corpus)
    import indexer.ingest.pipeline as pipeline

    def fail(*_a: Any, **_k: Any) -> None:
        raise AssertionError("an unchanged file was read")

    monkeypatch.setattr(pipeline, "_hash_file", fail)
    summary = rt.service().index_roots([str(corpus)])
    assert summary.unchanged == len(DOCS) + 3
    assert summary.new == summary.updated == 0


def test_edit_reembeds_only_changed_chunks(make_runtime: Any, tmp_path: Path) -> None:
    from tests.support.fakes import HashTextEmbedder

    root = tmp_path / "long"
    root.mkdir()
    paragraphs = [f"Paragraph {i} talks about topic number {i} " + "with filler words " * 40 for i in range(12)]
    doc = root / "long.txt"
    doc.write_text("\n\n".join(paragraphs), encoding="utf-8")
    rt = make_runtime([str(root)])
    fake = HashTextEmbedder()
    rt._text = fake
    rt.service().index_roots([str(root)])
    first = fake.texts_embedded
    assert first >= 3
    paragraphs[-1] = "A completely new closing paragraph about volcanoes and lava."
    doc.write_text("\n\n".join(paragraphs), encoding="utf-8")
    rt.service().index_roots([str(root)])
    assert 0 < fake.texts_embedded - first < first


def test_without_clip_weights_images_wait_and_text_works(make_runtime: Any, corpus: Path, capsys: Any) -> None:
    rt = make_runtime([str(corpus)], clip=False)
    summary = _index(rt, corpus)
    assert summary.pending == 3
    files = {Path(r.path).name: r for r in rt.store.files().values()}
    assert files["red.png"].state == "pending"
    assert "weights" in files["red.png"].reason.lower() or "checkpoint" in files["red.png"].reason.lower()
    assert rt.searcher().search("telescope mirror", kind="text").results
    # Waiting images are still found by their names (issue 14.5), shown as pending.
    resp = rt.searcher().search("a red picture", kind="image")
    assert [(Path(r.path).name, r.state) for r in resp.results] == [("red.png", "pending")]
    resp = rt.searcher().search("telescope", kind="image")
    assert not resp.results and resp.note.startswith("Images were not searched:")
    rt.close()
    code = cli_main(["status", "--data-dir", str(rt.paths.data_dir)])
    out = capsys.readouterr().out
    assert code == 0
    assert "NOT AVAILABLE" in out and "To fix" in out


def test_cli_index_search_status_json(make_runtime: Any, corpus: Path, capsys: Any) -> None:
    rt = make_runtime([])
    data_dir = str(rt.paths.data_dir)
    rt.close()
    # The CLI builds its own runtime: give it the tiny CLIP via the checkpoint setting.
    assert cli_main(["index", str(corpus), "--json", "--data-dir", data_dir]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["new"] == len(DOCS) + 3 and summary["failed"] == 0
    assert cli_main(["search", "knead", "the", "dough", "--kind", "text", "--json", "--data-dir", data_dir]) == 0
    out = json.loads(capsys.readouterr().out)
    assert Path(out["results"][0]["path"]).name == "cooking.md"
    assert cli_main(["similar", str(corpus / "pictures" / "red.png"), "--json", "--data-dir", data_dir]) == 0
    out = json.loads(capsys.readouterr().out)
    assert Path(out["results"][0]["path"]).name == "red.png"
    assert cli_main(["status", "--json", "--data-dir", data_dir]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["counts"]["files"] == len(DOCS) + 3
    assert status["folders"][0]["path"] == str(corpus.resolve())


def test_cli_reports_expected_problems_in_one_line(tmp_path: Path, capsys: Any) -> None:
    code = cli_main(["index", str(tmp_path / "nope"), "--data-dir", str(tmp_path / "d")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().count("\n") == 0 and "no such file or folder" in err


def test_help_is_instant_and_imports_nothing_heavy() -> None:
    code = (
        "import sys, time; t=time.perf_counter();"
        "from indexer.cli.main import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit: pass\n"
        "heavy=[m for m in ('torch','lancedb','PySide6','open_clip','sentence_transformers') if m in sys.modules]\n"
        "assert not heavy, heavy\nprint(time.perf_counter()-t)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    assert float(out.stdout.strip().splitlines()[-1]) < 1.0


def test_core_packages_never_import_qt() -> None:
    names = []
    for pkg in (indexer, models):
        for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
            names.append(info.name)
    code = "import importlib, sys\n" + "".join(f"importlib.import_module({n!r})\n" for n in names) + (
        "bad=[m for m in sys.modules if m.split('.')[0] in ('PySide6','PyQt5','PyQt6','shiboken6')]\n"
        "assert not bad, bad\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    for folder in ("indexer", "models"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            assert "import PySide6" not in text and "from PySide6" not in text, path


def test_data_dir_is_private(make_runtime: Any, corpus: Path) -> None:
    rt = make_runtime([str(corpus)])
    _index(rt, corpus)
    for dirpath, _dirnames, filenames in os.walk(rt.paths.data_dir):
        assert os.stat(dirpath).st_mode & 0o077 == 0, dirpath
        for name in filenames:
            assert os.stat(os.path.join(dirpath, name)).st_mode & 0o077 == 0, name
