"""The light CLIP path (models/onnx_clip.py): ONNX Runtime + numpy, no torch/open_clip.

The tiny open_clip model goes through the normal checkpoint path; every test exports
into its own cache folder (LODESTAR_ONNX_CACHE), so none depends on another's export.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


def _images() -> list[Image.Image]:
    rng = np.random.default_rng(1)
    noise = lambda w, h: Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8), "RGB")
    return [noise(80, 48), noise(31, 97), noise(1600, 1200), noise(7, 5), noise(32, 32),
            Image.new("L", (30, 30), 128), Image.new("RGBA", (50, 40), (10, 200, 30, 90)),
            Image.new("P", (45, 60))]


TEXTS = ["a dog", "", "   ", "Café crème brûlée — 東京の夜景 🌃", "don't stop! it's 3.14 (really)...",
         "&amp; html &lt;b&gt; entities", "UPPER lower MiXeD", "tab\tand\nnewline  spaces",
         "a red bicycle leaning on a wall at sunset in winter " * 12, "ﬁ ligature ｆｕｌｌｗｉｄｔｈ", "42 1,000,000"]


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "onnx-cache"
    monkeypatch.setenv("LODESTAR_ONNX_CACHE", str(folder))
    monkeypatch.delenv("LODESTAR_CLIP_LIGHT", raising=False)
    return folder


def _clip(checkpoint: Path) -> Any:
    from models.clip import ClipEmbedder
    from tests.support.tiny_clip import TINY_CLIP_NAME, register_tiny_clip

    register_tiny_clip()
    return ClipEmbedder(model_name=TINY_CLIP_NAME, pretrained="", checkpoint=str(checkpoint), device="cpu")


@pytest.fixture
def exported(tiny_clip_checkpoint: Path, cache: Path) -> Any:
    """A first load: open_clip + the background export (finished)."""
    emb = _clip(tiny_clip_checkpoint)
    emb.load()
    assert not emb.light
    assert emb.wait_export(120) and emb.export_error is None, emb.export_error
    yield emb
    emb.close()


def _export_dir(cache: Path) -> Path:
    (folder,) = [p for p in cache.iterdir() if p.name.startswith("clip-")]
    return folder


def test_first_load_exports_then_light_path_matches_torch(exported: Any, tiny_clip_checkpoint: Path, cache: Path) -> None:
    folder = _export_dir(cache)
    assert {"image.onnx", "text.onnx", "bpe_simple_vocab_16e6.txt.gz", "config.json"} <= {p.name for p in folder.iterdir()}
    light = _clip(tiny_clip_checkpoint)
    light.load()
    assert light.light and light.device == "cpu" and light.weights_source == "checkpoint"
    assert light.model_id == exported.model_id and light.dim == exported.dim
    images = _images()
    a, b = exported.embed_documents(images), light.embed_documents(images)
    assert b.dtype == np.float32 and b.shape == a.shape
    np.testing.assert_allclose(b, a, atol=1e-5)
    # Queries run on the text tower's weight-int8 copy (models/query_int8.py): close, not equal.
    from models.query_int8 import AGREE_MIN

    assert light._ensure().onnx.text_int8
    for text in TEXTS:
        q, ref = light.embed_query(text), exported.embed_query(text)
        assert q.dtype == np.float32 and float(q @ ref) >= AGREE_MIN and abs(float(np.linalg.norm(q)) - 1) < 1e-5
    assert (folder / "text_query_w8.onnx").is_file() and (folder / "text_query_w8.onnx.sha256").is_file()
    # The pipeline's call: preprocessed arrays from a pool, then one list → one forward pass.
    pre = [light.preprocess(im) for im in images]
    assert all(isinstance(p, np.ndarray) and p.dtype == np.float32 and p.shape == (3, 32, 32) for p in pre)
    np.testing.assert_allclose(light.embed_tensors(pre), a, atol=1e-5)
    np.testing.assert_allclose(light.embed_tensors(np.stack(pre)), a, atol=1e-5)
    # ... and the torch path takes numpy input as well.
    np.testing.assert_allclose(exported.embed_tensors(pre), a, atol=1e-5)
    assert light.embed_documents([]).shape == (0, light.dim)
    light.close()
    assert not light.loaded and not light.light


def test_preprocessing_matches_torchvision(exported: Any, cache: Path) -> None:
    from models.onnx_clip import preprocess_image

    spec = json.loads((_export_dir(cache) / "config.json").read_text())
    for im in _images():
        want = exported.preprocess(im).numpy()
        got = preprocess_image(im.convert("RGB"), spec)
        assert got.shape == want.shape
        assert float(np.abs(got - want).max()) < 1e-5


def test_preprocessing_matches_torchvision_at_vit_b_32_settings() -> None:
    """The real model's transform (224 px, bicubic, OpenAI mean/std) on odd sizes."""
    import open_clip

    from models.onnx_clip import preprocess_image

    transform = open_clip.image_transform(224, is_train=False)
    spec = {"resize": {"mode": "shortest", "size": 224, "interpolation": "bicubic"}, "crop": 224,
            "mean": list(open_clip.OPENAI_DATASET_MEAN), "std": list(open_clip.OPENAI_DATASET_STD)}
    for im in _images():
        want = transform(im.convert("RGB")).numpy()
        got = preprocess_image(im.convert("RGB"), spec)
        assert float(np.abs(got - want).max()) < 1e-5


def test_tokenizer_ids_equal_open_clip(exported: Any, cache: Path) -> None:
    from open_clip.tokenizer import SimpleTokenizer

    from models.onnx_clip import ClipTokenizer

    ours = ClipTokenizer(_export_dir(cache) / "bpe_simple_vocab_16e6.txt.gz", 77)
    theirs = SimpleTokenizer()
    got, want = ours(TEXTS), theirs(TEXTS).numpy()
    assert got.dtype == np.int64 and got.shape == (len(TEXTS), 77)
    np.testing.assert_array_equal(got, want)
    long = got[TEXTS.index(TEXTS[8])]
    assert long[-1] == theirs.eot_token_id and (long > 0).all()  # truncated, end-of-text kept


def test_light_process_imports_no_torch(exported: Any, tiny_clip_checkpoint: Path, cache: Path) -> None:
    code = f"""
import sys, json
import numpy as np
from PIL import Image
from models.clip import ClipEmbedder
emb = ClipEmbedder(model_name="lodestar-tiny-clip", pretrained="", checkpoint={str(tiny_clip_checkpoint)!r})
emb.load()
q = emb.embed_query("a red square")
im = Image.new("RGB", (64, 40), (220, 20, 20))
v = emb.embed_documents([im, Image.new("L", (30, 30), 128)])
p = emb.preprocess(im)
bad = [m for m in ("torch", "torchvision", "open_clip", "transformers") if m in sys.modules]
print(json.dumps({{"light": emb.light, "bad": bad, "q": q.tolist(), "v": v.tolist(), "dim": emb.dim}}))
"""
    env = dict(os.environ, LODESTAR_ONNX_CACHE=str(cache), PYTHONPATH=str(ROOT), LODESTAR_DEVICE="cpu")
    env.pop("LODESTAR_CLIP_LIGHT", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["light"] and res["bad"] == [] and res["dim"] == exported.dim
    assert float(np.asarray(res["q"]) @ exported.embed_query("a red square")) >= 0.995  # the query copy
    want = exported.embed_documents([Image.new("RGB", (64, 40), (220, 20, 20)), Image.new("L", (30, 30), 128)])
    np.testing.assert_allclose(res["v"], want, atol=1e-5)


def test_corrupt_export_falls_back_to_torch_and_is_rewritten(
    exported: Any, tiny_clip_checkpoint: Path, cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    graph = _export_dir(cache) / "text.onnx"
    data = bytearray(graph.read_bytes())
    data[len(data) // 2] ^= 0xFF
    graph.write_bytes(bytes(data))
    emb = _clip(tiny_clip_checkpoint)
    with caplog.at_level(logging.WARNING, logger="models.clip"):
        emb.load()
    assert not emb.light
    assert any("unusable" in r.getMessage() and "checksum" in r.getMessage() for r in caplog.records)
    np.testing.assert_allclose(emb.embed_query("a dog"), exported.embed_query("a dog"), atol=1e-5)
    assert emb.wait_export(120) and emb.export_error is None  # re-exported over the bad file
    again = _clip(tiny_clip_checkpoint)
    again.load()
    assert again.light
    assert float(again.embed_query("a dog") @ exported.embed_query("a dog")) >= 0.995  # the query copy


def test_a_later_start_opens_the_kept_query_copy_only(exported: Any, tiny_clip_checkpoint: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Once the text tower's copy is kept, its fp32 graph is never loaded again."""
    import onnxruntime as ort

    first = _clip(tiny_clip_checkpoint)
    first.load()  # makes and keeps the copy
    assert first._ensure().onnx.text_int8
    first.close()
    opened: list[str] = []
    real = ort.InferenceSession
    monkeypatch.setattr(ort, "InferenceSession", lambda path, *a, **kw: opened.append(Path(path).name) or real(path, *a, **kw))
    later = _clip(tiny_clip_checkpoint)
    later.load()
    assert later.light and later._ensure().onnx.text_int8
    assert sorted(opened) == ["image.onnx", "text_query_w8.onnx"], opened
    later.close()


def test_query_copy_off_keeps_the_fp32_text_tower(exported: Any, tiny_clip_checkpoint: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LODESTAR_QUERY_INT8", "0")
    light = _clip(tiny_clip_checkpoint)
    light.load()
    assert light.light and not light._ensure().onnx.text_int8
    for text in TEXTS:
        np.testing.assert_allclose(light.embed_query(text), exported.embed_query(text), atol=1e-5)
    light.close()


def test_light_path_can_be_turned_off(exported: Any, tiny_clip_checkpoint: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LODESTAR_CLIP_LIGHT", "0")
    emb = _clip(tiny_clip_checkpoint)
    emb.load()
    assert not emb.light and emb.export_thread is None
    import torch

    assert isinstance(emb.preprocess(Image.new("RGB", (40, 40))), torch.Tensor)


def test_pipeline_indexes_images_on_the_light_path(exported: Any, tiny_clip_checkpoint: Path, tmp_path: Path) -> None:
    """Same folder through the real pipeline and store, light vs torch embedder: the
    same files indexed, the same vectors stored."""
    from indexer.ingest.pipeline import IndexService
    from indexer.library.settings import Settings, open_paths
    from indexer.store.tables import Store
    from tests.support.fakes import HashTextEmbedder

    folder = tmp_path / "photos"
    folder.mkdir()
    for i, im in enumerate(_images()[:4]):
        im.convert("RGB").save(folder / f"p{i}.png")
    light = _clip(tiny_clip_checkpoint)
    light.load()
    assert light.light
    vectors: dict[str, dict[str, np.ndarray]] = {}
    for name, emb in (("light", light), ("torch", exported)):
        text = HashTextEmbedder()
        paths = open_paths(tmp_path / f"data-{name}")
        store = Store(paths.store, text_model=(text.model_id, text.dim), image_model=(emb.model_id, emb.dim))
        try:
            svc = IndexService(store, paths, Settings(folders=[str(folder)], allow_download=False), text, emb)
            svc.index_roots([str(folder)])
            assert store.counts()["images"] == 4
            rows = {Path(r.path).name: store.image_row(fid) for fid, r in store.files().items()}
            vectors[name] = {k: v.vector for k, v in rows.items() if v is not None}
        finally:
            store.close()
    assert sorted(vectors["light"]) == sorted(vectors["torch"]) == [f"p{i}.png" for i in range(4)]
    for k, v in vectors["light"].items():
        np.testing.assert_allclose(v, vectors["torch"][k], atol=1e-5)


def test_a_first_start_exports_both_models_at_once(tiny_clip_checkpoint: Path, cache: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A new machine's first start exports the text model and CLIP on two threads at once;
    torch's exporter keeps process-wide state, so without `models.exports.TORCH_EXPORT` one
    of them failed ("GLOBALS.in_onnx_export must be False") and stayed on torch."""
    from models.text import TextEmbedder

    monkeypatch.delenv("LODESTAR_TEXT_LIGHT", raising=False)
    text = TextEmbedder(device="cpu", adopt_export=False)
    text.load()  # its export starts in the background (seconds: the real MiniLM)
    clip = _clip(tiny_clip_checkpoint)
    clip.load()  # and CLIP's beside it
    try:
        assert text.wait_export(300) and clip.wait_export(300)
        assert text.export_error is None, text.export_error
        assert clip.export_error is None, clip.export_error
        assert any(p.name == "model.onnx" for p in cache.rglob("*"))
        assert {"image.onnx", "text.onnx"} <= {p.name for p in _export_dir(cache).iterdir()}
    finally:
        clip.close()
        text.close()
