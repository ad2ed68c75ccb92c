"""A real store and pipeline on the fake hash embedders, for the reliability tests.

Kept out of conftest.py so tests import it by a unique module name (several
conftest.py files exist in the suite).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from indexer.library.settings import AppPaths, Settings, open_paths, save_settings
from tests.support.fakes import HashImageEmbedder, HashTextEmbedder


@dataclasses.dataclass
class Stack:
    """One data dir + one watched root with a real Store and IndexService."""

    paths: AppPaths
    settings: Settings
    root: Path
    text: HashTextEmbedder
    image: HashImageEmbedder
    store: Any
    service: Any

    def searcher(self) -> Any:
        from indexer.search.ranking import Searcher

        return Searcher(self.store, self.text, self.image, paths=self.paths, settings=self.settings)


def make_stack(base: Path, *, data_dir: Path | None = None, **service_kw: Any) -> Stack:
    from indexer.ingest.pipeline import IndexService
    from indexer.store.tables import Store

    root = base / "root"
    root.mkdir(exist_ok=True)
    root = Path(os.path.realpath(root))
    paths = open_paths(data_dir or base / "data")
    settings = Settings(folders=[str(root)], reconcile_interval_s=3600)
    save_settings(paths, settings)
    text, image = HashTextEmbedder(), HashImageEmbedder()
    store = Store(paths.store, text_model=(text.model_id, text.dim), image_model=(image.model_id, image.dim))
    service = IndexService(store, paths, settings, text, image, **service_kw)
    return Stack(paths, settings, root, text, image, store, service)
