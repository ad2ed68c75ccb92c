"""Light text path: tokenizers + ONNX Runtime from the cached fp32 export, no torch.

The real bundled all-MiniLM-L6-v2. One session-wide export into a private cache
(LODESTAR_ONNX_CACHE); the corrupt-cache test makes the second and last one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support.embedder_checks import assert_concurrent_use_agrees

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

pytest.importorskip("onnxruntime")
pytest.importorskip("tokenizers")

REPO = Path(__file__).resolve().parents[2]
EXPORT_TIMEOUT = 600.0

TEXTS = [
    "The cat is sleeping on the sofa.",
    "",
    "   ",
    "  leading and trailing spaces  ",
    "Ünïcödé: naïve café, straße, Ørsted, Ελληνικά, русский текст",
    "中文分词测试：今天天气很好。日本語のテキストも。한국어 문장",
    "emoji 🙂🚀 and symbols ∑∫√ ≠ ≤ → ™ ©",
    "def count_tokens(self, texts: Sequence[str]) -> list[int]:\n    return [len(t) for t in texts]",
    "ERR_QUUX_4711 at 0x7ffee4c3; see https://example.org/a/b?c=d&e=f#g",
    "tabs\tand\nnewlines\r\nand\u00a0non-breaking\u2009spaces\u200bzero-width",
    "word " * 300,  # > 256 tokens: truncated
    ("Quarterly VAT returns must be filed by the end of the month following the quarter. " * 25),
    "a",
    "A" * 1000,  # one long unknown-ish word
]


@pytest.fixture(autouse=True)
def no_network(strict_network: list[Any]) -> list[Any]:
    return strict_network


@pytest.fixture(scope="session")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """First load in a private cache: sentence-transformers, then the background export."""
    from models.text import TextEmbedder

    cache = tmp_path_factory.mktemp("onnx-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LODESTAR_ONNX_CACHE", str(cache))
        mp.delenv("LODESTAR_TEXT_LIGHT", raising=False)
        emb = TextEmbedder(device="cpu", adopt_export=False)  # stays on torch: the reference
        emb.load()
        assert emb.wait_export(EXPORT_TIMEOUT), "background export did not finish"
    yield {"cache": cache, "torch": emb}
    emb.close()


@pytest.fixture
def light_env(exported: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LODESTAR_ONNX_CACHE", str(exported["cache"]))
    monkeypatch.delenv("LODESTAR_TEXT_LIGHT", raising=False)
    return exported["cache"]


@pytest.fixture
def light(light_env: Path) -> Any:
    from models.text import TextEmbedder

    emb = TextEmbedder(device="cpu")
    emb.load()
    assert emb.light
    return emb


def test_first_load_uses_sentence_transformers_and_writes_the_export(exported: dict[str, Any]) -> None:
    emb = exported["torch"]
    assert not emb.light and emb.loaded and emb.device == "cpu"
    assert emb.export_error is None, emb.export_error
    files = sorted(p.name for p in exported["cache"].rglob("*") if p.is_file())
    assert files == ["model.onnx", "model.onnx.sha256"], files
    assert "sentence_transformers" in sys.modules


def test_a_first_run_moves_to_the_export_once_it_is_written(
    exported: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new machine's first index runs on ONNX Runtime as soon as the export lands."""
    from models.text import TextEmbedder

    monkeypatch.setenv("LODESTAR_ONNX_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("LODESTAR_TEXT_LIGHT", raising=False)
    emb = TextEmbedder(device="cpu")
    emb.load()
    assert emb.engine == "torch"
    before = emb.embed_documents(TEXTS)
    assert emb.wait_export(EXPORT_TIMEOUT) and emb.export_error is None, emb.export_error
    assert emb.engine == "onnxruntime" and emb.light
    _assert_same_vectors(emb.embed_documents(TEXTS), before)
    assert emb.count_tokens(TEXTS) == exported["torch"].count_tokens(TEXTS)


def test_second_start_is_light_and_never_imports_torch(light_env: Path, exported: dict[str, Any]) -> None:
    from models.device import surely_cpu

    device = "auto" if surely_cpu("auto") else "cpu"  # the default setting, unless this machine has a GPU
    code = f"""
import json, sys
from models.text import TextEmbedder
texts = json.loads(sys.stdin.read())
emb = TextEmbedder(device={device!r})
emb.load()
out = {{
    "light": emb.light, "loaded": emb.loaded, "device": emb.device, "dim": emb.dim,
    "max_seq_length": emb.max_seq_length, "model_id": emb.model_id,
    "q": emb.embed_query(texts[0]).tolist(),
    "docs": emb.embed_documents(texts).tolist(),
    "counts": emb.count_tokens(texts),
    "tokenizer": type(emb.tokenizer).__module__,
}}
out["heavy"] = [m for m in ("torch", "transformers", "sentence_transformers") if m in sys.modules]
emb.close()
out["loaded_after_close"] = emb.loaded
print(json.dumps(out))
"""
    env = dict(os.environ, LODESTAR_ONNX_CACHE=str(light_env), HF_HUB_OFFLINE="1")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, input=json.dumps(TEXTS), env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["heavy"] == [], out["heavy"]
    assert out["light"] and out["loaded"] and not out["loaded_after_close"]
    assert (out["device"], out["dim"], out["max_seq_length"]) == ("cpu", 384, 256)
    assert out["model_id"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert out["tokenizer"].startswith("tokenizers")
    torch_emb = exported["torch"]
    _assert_same_vectors(np.array(out["docs"], dtype=np.float32), torch_emb.embed_documents(TEXTS))
    _assert_query_copy(np.array([out["q"]], dtype=np.float32), torch_emb.embed_query(TEXTS[0])[None])
    assert out["counts"] == torch_emb.count_tokens(TEXTS)


def _assert_same_vectors(a: np.ndarray, b: np.ndarray) -> None:
    assert a.shape == b.shape and a.dtype == b.dtype == np.float32
    assert float(np.abs(a - b).max()) < 1e-5, float(np.abs(a - b).max())
    cos = (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    assert float(cos.min()) > 0.99999, cos


def _assert_query_copy(a: np.ndarray, b: np.ndarray) -> None:
    """A query from the weight-int8 copy (models/query_int8.py): close to fp32, not equal."""
    from models.query_int8 import AGREE_MIN

    assert a.shape == b.shape and a.dtype == b.dtype == np.float32
    cos = (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    assert float(cos.min()) >= AGREE_MIN, cos
    assert float(np.abs(a - b).max()) > 0, "the query copy was not used"


def test_light_vectors_and_counts_equal_torch(light: Any, exported: dict[str, Any]) -> None:
    torch_emb = exported["torch"]
    _assert_same_vectors(light.embed_documents(TEXTS), torch_emb.embed_documents(TEXTS))
    for text in TEXTS:
        _assert_query_copy(light.embed_query(text)[None], torch_emb.embed_query(text)[None])
    # batches bigger than one CPU slice, mixed lengths
    many = [f"{t} #{i}" for i, t in enumerate(TEXTS * 5)]
    _assert_same_vectors(light.embed_documents(many), torch_emb.embed_documents(many))
    assert light.count_tokens(TEXTS) == torch_emb.count_tokens(TEXTS)
    assert light.count_tokens(["hello world", "", "hello " * 600]) == [2, 0, 600]
    assert light.count_tokens([]) == []
    assert light.embed_documents([]).shape == (0, 384)
    assert (light.dim, light.max_seq_length, light.model_id) == (torch_emb.dim, torch_emb.max_seq_length, torch_emb.model_id)


def test_light_token_ids_equal_sentence_transformers(light: Any, exported: dict[str, Any]) -> None:
    """Same input ids as sentence-transformers' own tokenize, without its padding."""
    st_model = exported["torch"]._backend.model
    tok = light._backend.encoder.tokenizer
    for batch in (TEXTS, TEXTS[:1], TEXTS[10:12], ["", "x", "  padded  "]):
        ours = tok.ids(batch)
        theirs = st_model.tokenize(batch)
        for row, ids in enumerate(ours):
            mask = theirs["attention_mask"][row].numpy().astype(bool)
            assert ids == theirs["input_ids"][row].numpy()[mask].tolist()
    assert len(tok.ids(["word " * 300])[0]) == 256  # tokenizer.json says 128: overridden


def test_a_vector_does_not_depend_on_its_neighbours(light: Any) -> None:
    """Each text runs alone: the same passage gets the same vector in any company."""
    target = TEXTS[3]
    alone = light.embed_documents([target])[0]
    crowd = light.embed_documents([*TEXTS[:3], target, "word " * 250])[3]
    np.testing.assert_array_equal(alone, crowd)


def test_corrupt_export_falls_back_and_re_exports(
    exported: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A truncated cached graph: warning, sentence-transformers, background re-export.

    In a child process that exits right after one query, while the export still runs:
    exit must wait for it (an export thread cut off inside torch aborts the process).
    """
    from models.onnx_text import _sha256
    from models.text import TextEmbedder

    cache = tmp_path / "cache"
    shutil.copytree(exported["cache"], cache)
    (onnx,) = cache.rglob("model.onnx")
    good = onnx.read_bytes()
    onnx.write_bytes(good[: len(good) // 3])  # truncated, with a matching checksum: ONNX Runtime must refuse it
    onnx.with_name("model.onnx.sha256").write_text(_sha256(onnx) + "\n")
    code = """
import json, logging, sys
logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
from models.text import TextEmbedder
emb = TextEmbedder(device="cpu")
emb.load()
print(json.dumps({"light": emb.light, "q": emb.embed_query("still works").tolist(),
                  "exporting": emb.export_thread is not None}))
"""
    env = dict(os.environ, LODESTAR_ONNX_CACHE=str(cache), HF_HUB_OFFLINE="1")
    env.pop("LODESTAR_TEXT_LIGHT", None)
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=EXPORT_TIMEOUT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not out["light"] and out["exporting"]
    assert "unusable" in proc.stderr, proc.stderr[-3000:]
    np.testing.assert_allclose(np.array(out["q"], dtype=np.float32), exported["torch"].embed_query("still works"), atol=1e-6)
    assert onnx.stat().st_size == len(good) and _sha256(onnx) == onnx.with_name("model.onnx.sha256").read_text().strip()
    assert not list(cache.rglob(".model*")), list(cache.rglob("*"))  # no half-written file left
    monkeypatch.setenv("LODESTAR_ONNX_CACHE", str(cache))
    monkeypatch.delenv("LODESTAR_TEXT_LIGHT", raising=False)
    again = TextEmbedder(device="cpu")
    again.load()
    assert again.light
    _assert_same_vectors(again.embed_documents(TEXTS), exported["torch"].embed_documents(TEXTS))


def test_checksum_mismatch_is_refused_without_a_load(exported: dict[str, Any], tmp_path: Path) -> None:
    from models.errors import ModelUnavailable
    from models.onnx_text import open_light
    from models.text import bundled_model_dir

    (src,) = exported["cache"].rglob("model.onnx")
    onnx = tmp_path / "model.onnx"
    shutil.copy(src, onnx)
    with pytest.raises(ModelUnavailable):  # no sidecar
        open_light(bundled_model_dir(), onnx, 256)
    onnx.with_name("model.onnx.sha256").write_text("0" * 64 + "\n")
    with pytest.raises(ModelUnavailable):
        open_light(bundled_model_dir(), onnx, 256)


def test_env_switch_forces_torch(light_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from models.text import TextEmbedder

    monkeypatch.setenv("LODESTAR_TEXT_LIGHT", "0")
    emb = TextEmbedder(device="cpu")
    emb.load()
    assert not emb.light and emb.engine == "torch" and emb.export_thread is None
    assert type(emb.tokenizer).__module__.startswith("transformers")


def test_other_backends_and_devices_skip_the_light_path(light_env: Path) -> None:
    from models.device import surely_cpu
    from models.text import TextEmbedder

    assert surely_cpu("cpu") and surely_cpu(" CPU ")
    assert not surely_cpu("cuda") and not surely_cpu("cuda:1") and not surely_cpu("mps")
    assert surely_cpu("auto") == surely_cpu("no-such-device")  # unknown means auto
    assert not TextEmbedder(device="cuda")._light_fits("/nonexistent")
    emb = TextEmbedder(device="cpu", backend="onnx")  # the onnx backend keeps its own path
    emb.load()
    assert not emb.light and emb.engine == "onnxruntime" and emb.export_thread is None


def test_queries_run_on_a_checked_weight_int8_copy(light_env: Path, exported: dict[str, Any],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Queries use the copy made beside the export (documents never do); it is checked
    against its sidecar at each start, rebuilt when damaged, and off with LODESTAR_QUERY_INT8=0."""
    from models import query_int8
    from models.text import TextEmbedder

    (copy,) = light_env.rglob("model_query_w8.onnx")
    side = copy.with_name(copy.name + ".sha256")
    assert side.is_file() and not copy.with_name(copy.name + ".rejected").exists()
    calls: list[Path] = []
    real = query_int8.quantize_weights
    monkeypatch.setattr(query_int8, "quantize_weights", lambda src, dst, *a: calls.append(dst) or real(src, dst, *a))
    emb = TextEmbedder(device="cpu")
    emb.load()
    assert emb.light and emb._backend.query is not None and calls == []  # the kept copy, not a new one
    fp32 = emb._backend.encoder.encode(TEXTS[:4], 1)
    queries = np.stack([emb.embed_query(t) for t in TEXTS[:4]])
    _assert_query_copy(queries, fp32)
    np.testing.assert_array_equal(emb.embed_documents(TEXTS[:4]), fp32)
    emb.close()

    copy.write_bytes(copy.read_bytes()[:-64] + bytes(64))  # damaged: refused by its checksum, made again
    again = TextEmbedder(device="cpu")
    again.load()
    assert calls == [copy] and again._backend.query is not None
    _assert_query_copy(np.stack([again.embed_query(t) for t in TEXTS[:4]]), fp32)
    again.close()

    monkeypatch.setenv(query_int8.ENV, "0")
    off = TextEmbedder(device="cpu")
    off.load()
    assert off._backend.query is None
    np.testing.assert_array_equal(np.stack([off.embed_query(t) for t in TEXTS[:4]]), fp32)
    off.close()


def test_a_query_copy_that_disagrees_is_refused_once(tmp_path: Path, exported: dict[str, Any],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Weights this recipe does not suit keep fp32 queries, and are not tried again at every start."""
    from models import query_int8
    from models.text import TextEmbedder

    cache = tmp_path / "cache"
    shutil.copytree(exported["cache"], cache)
    for old in cache.rglob("model_query_w8.onnx*"):
        old.unlink()
    monkeypatch.setenv("LODESTAR_ONNX_CACHE", str(cache))
    monkeypatch.delenv("LODESTAR_TEXT_LIGHT", raising=False)
    monkeypatch.setattr(query_int8, "AGREE_MEAN", 1.01)  # no copy can agree this well
    emb = TextEmbedder(device="cpu")
    emb.load()
    assert emb.light and emb._backend.query is None
    (rejected,) = cache.rglob("model_query_w8.onnx.rejected")
    assert not list(cache.rglob("model_query_w8.onnx"))
    emb.close()
    monkeypatch.setattr(query_int8, "quantize_weights", lambda *a: pytest.fail("tried again"))
    again = TextEmbedder(device="cpu")
    again.load()
    assert again._backend.query is None
    np.testing.assert_array_equal(again.embed_query(TEXTS[0]), again.embed_documents(TEXTS[:1])[0])
    again.close()


def test_light_concurrent_queries_and_documents_agree(light: Any) -> None:
    assert_concurrent_use_agrees(light, atol=1e-6)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux driver files")
def test_surely_cpu_sees_gpu_drivers(monkeypatch: pytest.MonkeyPatch) -> None:
    import models.device as device

    present: set[str] = set()
    monkeypatch.setattr(device.os.path, "exists", lambda p: str(p) in present)
    assert device.surely_cpu("auto")
    for marker in ("/proc/driver/nvidia/version", "/dev/kfd"):
        present = {marker}
        assert not device.surely_cpu("auto"), marker
        assert device.surely_cpu("cpu")


def test_close_lets_the_encoder_threads_go(light_env: Path) -> None:
    from models.text import TextEmbedder

    emb = TextEmbedder(device="cpu")
    emb.load()
    emb.embed_documents(TEXTS)
    encoder = emb._backend.encoder
    assert (encoder._pool is not None) == (encoder.workers > 1)
    emb.close()
    assert encoder._pool is None and not emb.loaded
    assert emb.embed_documents(TEXTS[:2]).shape == (2, 384)  # loads again on use


def test_a_query_copy_cut_short_by_a_killed_process_is_swept(light_env: Path) -> None:
    """A process killed while writing the copy leaves ``.model_query_w8.<pid>.<thread>.onnx``
    (59 MB): the next start deletes it once it is old enough to be nobody's work in progress."""
    from models.exports import STALE_TMP_S
    from models.text import TextEmbedder

    (copy,) = light_env.rglob("model_query_w8.onnx")
    stale = copy.with_name(".model_query_w8.4242.1.onnx")
    fresh = copy.with_name(".model_query_w8.4243.1.onnx")  # another process's, being written now
    for path in (stale, fresh):
        path.write_bytes(b"\0" * 1024)
    old = time.time() - STALE_TMP_S - 60
    os.utime(stale, (old, old))
    emb = TextEmbedder(device="cpu")
    try:
        emb.load()
        assert emb.light and emb._backend.query is not None
        assert not stale.exists() and fresh.is_file()
        assert copy.is_file() and copy.with_name("model.onnx").is_file()
    finally:
        emb.close()
        fresh.unlink(missing_ok=True)
