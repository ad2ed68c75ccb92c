"""The arrows between rooms, read from the source (every import, at the top or inside a function).

The window reaches the core through one door: the library session (plus the plain
data modules and the searcher the session hands out). The index store knows nothing
of the steps that feed or read it; search reads, it does not index. Qt stays in
desktop/ (tests/integration/test_e2e_foundation.py::test_core_packages_never_import_qt).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# What desktop/ may import from the core: the session module and plain data.
DESKTOP_DOORS = ("indexer.library.session", "indexer.types", "indexer.errors", "indexer.wording")


def _imports(folder: str) -> Iterator[tuple[str, str]]:
    """(file, imported module) for every absolute import in ``folder``'s Python files."""
    for path in sorted((ROOT / folder).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield str(path.relative_to(ROOT)), alias.name
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                if node.module in ("indexer", "models"):  # `from indexer import x` imports indexer.x
                    for alias in node.names:
                        yield str(path.relative_to(ROOT)), f"{node.module}.{alias.name}"
                else:
                    yield str(path.relative_to(ROOT)), node.module


def _within(module: str, *packages: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def test_the_window_reaches_the_core_only_through_the_session() -> None:
    wrong = [(f, m) for f, m in _imports("desktop")
             if _within(m, "indexer", "models") and not _within(m, *DESKTOP_DOORS)]
    assert not wrong, f"desktop/ must use {DESKTOP_DOORS} only: {wrong}"


def test_the_store_never_imports_the_steps_around_it() -> None:
    wrong = [(f, m) for f, m in _imports("indexer/store")
             if _within(m, "indexer.ingest", "indexer.search", "indexer.watch", "indexer.cli",
                        "indexer.library.session", "indexer.library.runtime")]
    assert not wrong, wrong


def test_search_reads_and_never_indexes() -> None:
    # Reading a query image the way the index reads images (ingest.extract) is reading.
    wrong = [(f, m) for f, m in _imports("indexer/search")
             if (_within(m, "indexer.ingest") and not _within(m, "indexer.ingest.extract"))
             or _within(m, "indexer.watch", "indexer.cli", "indexer.library.session", "indexer.library.runtime")]
    assert not wrong, wrong


def test_only_the_commands_and_the_window_use_the_composition_roots() -> None:
    # The session and the runtime build everything; the rooms they build never reach back.
    for folder in ("indexer/ingest", "indexer/watch", "indexer/store", "indexer/search", "models"):
        wrong = [(f, m) for f, m in _imports(folder)
                 if _within(m, "indexer.cli", "indexer.library.session", "indexer.library.runtime", "desktop")]
        assert not wrong, wrong


def test_duplicates_read_and_never_index() -> None:
    # The duplicate scan reads the store (through its read layer) and the data directory;
    # the session and the CLI reach it, never the other way round.
    wrong = [(f, m) for f, m in _imports("indexer/duplicates")
             if _within(m, "indexer.ingest", "indexer.watch", "indexer.search", "indexer.cli",
                        "indexer.library.session", "indexer.library.runtime", "desktop")]
    assert not wrong, wrong


def test_the_shared_library_reads_the_store_and_search_and_never_drives_them() -> None:
    # indexer/shared publishes a part from the local tables and searches other parts with
    # the Searcher; the session, the runtime and the CLI build and drive it (issue 19).
    wrong = [(f, m) for f, m in _imports("indexer/shared")
             if _within(m, "indexer.ingest", "indexer.watch", "indexer.cli", "indexer.duplicates",
                        "indexer.library.session", "indexer.library.runtime", "desktop", "PySide6")]
    assert not wrong, wrong
    for folder in ("indexer/ingest", "indexer/watch", "indexer/store", "indexer/search", "models"):
        back = [(f, m) for f, m in _imports(folder) if _within(m, "indexer.shared")]
        assert not back, back


def test_the_map_reads_the_store_and_never_indexes() -> None:
    # indexer/map reads vectors and passages through the store's read layer and writes only
    # its own files (<data dir>/map/); the session and the CLI reach it (issue 17).
    wrong = [(f, m) for f, m in _imports("indexer/map")
             if _within(m, "indexer.ingest", "indexer.watch", "indexer.cli", "indexer.duplicates", "indexer.shared",
                        "indexer.library.session", "indexer.library.runtime", "desktop", "PySide6")]
    assert not wrong, wrong
    for folder in ("indexer/ingest", "indexer/watch", "indexer/store", "indexer/search", "models"):
        back = [(f, m) for f, m in _imports(folder) if _within(m, "indexer.map")]
        assert not back, back
    # It never calls the store's writing side.
    writes = [(str(p), node.attr) for p in sorted((ROOT / "indexer/map").rglob("*.py"))
              for node in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
              if isinstance(node, ast.Attribute) and node.attr in ("write", "clear", "note_damaged", "retire",
                                                                   "delete", "add", "merge_insert", "optimize")
              and isinstance(node.value, ast.Name) and node.value.id in ("store", "table")]
    assert not writes, writes


def test_the_cluster_plugs_into_the_pipeline_and_nothing_reaches_back() -> None:
    # indexer/cluster runs the pipeline's reading and the models on Ray behind the
    # pipeline's WorkSource seam; the writer commits. The CLI builds it (issue 19).
    wrong = [(f, m) for f, m in _imports("indexer/cluster")
             if _within(m, "indexer.search", "indexer.watch", "indexer.cli", "indexer.duplicates", "indexer.shared",
                        "indexer.map", "indexer.library.session", "indexer.library.runtime", "desktop", "PySide6")]
    assert not wrong, wrong
    for folder in ("indexer/ingest", "indexer/watch", "indexer/store", "indexer/search", "indexer/library", "models",
                   "desktop"):
        back = [(f, m) for f, m in _imports(folder) if _within(m, "indexer.cluster")]
        assert not back, back
    # Ray is imported inside functions only (`lodestar --help` stays instant, and Ray stays optional).
    top = [(str(p), a.name) for p in sorted((ROOT / "indexer/cluster").rglob("*.py"))
           for node in ast.parse(p.read_text(encoding="utf-8")).body if isinstance(node, ast.Import) for a in node.names
           if a.name.split(".")[0] == "ray"]
    assert not top, top
