"""The embedder contracts (models/base.py): the real embedders and the test fakes
satisfy them, and the store keeps the passages of each text model apart, so a
second text model needs no surgery (issue 12.4)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from indexer.search.ranking import Searcher
from indexer.store.tables import ChunkRow, FileRecord, Store, WriteBatch, file_id
from models.base import ImageEmbedder, TextEmbedder
from models.clip import ClipEmbedder
from models.text import TextEmbedder as SentenceTextEmbedder
from tests.support.fakes import HashImageEmbedder, HashTextEmbedder


def test_fakes_satisfy_the_contracts() -> None:
    text: TextEmbedder = HashTextEmbedder()  # mypy checks these assignments too
    image: ImageEmbedder = HashImageEmbedder()
    assert isinstance(text, TextEmbedder) and isinstance(image, ImageEmbedder)
    assert not isinstance(text, ImageEmbedder)  # a text model cannot stand in for the image model


def test_real_embedders_satisfy_the_contracts_without_loading() -> None:
    text: TextEmbedder = SentenceTextEmbedder(device="cpu")
    image: ImageEmbedder = ClipEmbedder(device="cpu")
    assert isinstance(text, TextEmbedder) and isinstance(image, ImageEmbedder)
    assert not text.loaded and not image.loaded  # asking what they are loads nothing
    assert text.device is None and image.device is None


def test_fake_image_embedder_batches_what_it_preprocessed() -> None:
    from PIL import Image

    emb = HashImageEmbedder()
    pictures = [Image.new("RGB", (40, 30), (200, 30, 10)), Image.new("L", (16, 16), 90)]
    batch = emb.embed_tensors([emb.preprocess(p) for p in pictures])
    np.testing.assert_allclose(batch, emb.embed_documents(pictures))
    np.testing.assert_allclose(np.linalg.norm(batch, axis=1), 1.0, rtol=1e-5)
    assert emb.embed_tensors([]).shape == (0, emb.dim)


# ------------------------------------------------------------ two text models
def _index(store: Store, root: Path, name: str, text: str, emb: HashTextEmbedder, content_hash: str) -> str:
    """Writes ``text`` as one passage of ``root/name``, embedded by ``emb``; returns its fid."""
    path = root / name
    path.write_text(text, encoding="utf-8")
    rec = FileRecord(fid=file_id(str(path)), path=str(path), root=str(root), kind="text", size=len(text),
                     mtime_ns=path.stat().st_mtime_ns, content_hash=content_hash, state="indexed",
                     text_model=emb.model_id, n_chunks=1)
    row = ChunkRow(ord=0, text=text, start=0, end=len(text), chunk_hash=content_hash,
                   vector=emb.embed_documents([text])[0])
    store.write(WriteBatch(files=[rec], chunks={rec.fid: [row]}))
    return rec.fid


def test_a_store_keeps_two_text_models_apart(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    root.mkdir()
    first, second = HashTextEmbedder(dim=16, model_id="fake/first"), HashTextEmbedder(dim=8, model_id="fake/second")
    store = Store(tmp_path / "index.lance", text_model=(first.model_id, first.dim),
                  more_text_models=[(second.model_id, second.dim)])
    glaciers = _index(store, root, "one.txt", "glaciers and fjords", first, "a" * 32)
    tomatoes = _index(store, root, "two.txt", "tomatoes in the garden", second, "b" * 32)

    assert store.chunks_table_name(first.model_id) != store.chunks_table_name(second.model_id)
    assert store.chunks_table_name() == store.chunks_table_name(first.model_id)  # the default model
    assert [r.vector.shape for r in store.chunk_rows(glaciers, model_id=first.model_id)] == [(16,)]
    assert [r.vector.shape for r in store.chunk_rows(tomatoes, model_id=second.model_id)] == [(8,)]
    assert store.chunk_rows(glaciers, model_id=second.model_id) == []
    assert store.chunk_rows(tomatoes, model_id=first.model_id) == []
    assert store.counts()["chunks"] == 2
    with pytest.raises(KeyError):
        store.chunks_table(model_id="fake/unknown")

    # Search asks for the passages of the model it is given, never the other's.
    for emb, query, found in ((second, "tomatoes garden", "two.txt"), (first, "glaciers fjords", "one.txt")):
        hits = Searcher(store, emb, None).search(query, kind="text").results
        assert [Path(h.path).name for h in hits] == [found], (emb.model_id, hits)
    assert Searcher(store, first, None).search("tomatoes garden", kind="text").results == []

    # Re-embedded by the other model: its passages move tables, none stay behind.
    _index(store, root, "one.txt", "glaciers and fjords", second, "c" * 32)
    assert store.chunk_rows(glaciers, model_id=first.model_id) == []
    assert len(store.chunk_rows(glaciers, model_id=second.model_id)) == 1
    assert store.drop_other_model_tables() == []  # both models are the store's: nothing dropped
