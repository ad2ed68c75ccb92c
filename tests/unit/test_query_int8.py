"""models/query_int8.py on small hand-built graphs: the rewrite, its arithmetic, the checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from models import query_int8  # noqa: E402


def _graph(path: Path, k: int = 100, n: int = 48, outlier: bool = True) -> dict[str, np.ndarray]:
    """x[?, k] → MatMul(W1) → MatMul(W1ᵀ-shaped W2) → y, plus x·xᵀ (no constant: left alone)."""
    rng = np.random.default_rng(7)
    w1 = rng.normal(0, 0.2, (k, n)).astype(np.float32)
    w2 = rng.normal(0, 0.2, (n, k)).astype(np.float32)
    if outlier:
        w2[3, :] *= 40  # one large input row: it coarsens its block of every column
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h"], name="first"),
        helper.make_node("MatMul", ["h", "w2"], ["y"], name="second"),
        helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0]),
        helper.make_node("MatMul", ["x", "xt"], ["gram"], name="no_constant"),
    ]
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, k]),
         helper.make_tensor_value_info("gram", TensorProto.FLOAT, [None, None])],
        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))
    return {"w1": w1, "w2": w2}


def _run(path: Path, x: np.ndarray) -> list[np.ndarray]:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})


def test_constant_matmuls_become_8bit_blocks_with_the_same_result(tmp_path: Path) -> None:
    src, dst = tmp_path / "fp32.onnx", tmp_path / "w8.onnx"
    _graph(src, k=100)  # 100 is not a multiple of the block: the last block is padded
    assert query_int8.quantize_weights(src, dst) == 2
    model = onnx.load(str(dst))
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("MatMulNBits") == 2 and ops.count("MatMul") == 1  # x·xᵀ has no constant weight
    assert {i.name for i in model.graph.initializer} == {"w1_w8", "w1_w8_scale", "w2_w8", "w2_w8_scale"}
    x = np.random.default_rng(1).normal(0, 1, (5, 100)).astype(np.float32)
    (y32, g32), (y8, g8) = _run(src, x), _run(dst, x)
    np.testing.assert_array_equal(g8, g32)
    cos = (y8 * y32).sum(1) / (np.linalg.norm(y8, axis=1) * np.linalg.norm(y32, axis=1))
    assert float(cos.min()) > 0.999, cos
    assert not np.array_equal(y8, y32)  # it did quantise


def test_agreement_is_mean_and_worst(tmp_path: Path) -> None:
    same = lambda t: np.array([1.0, 0.0, 0.0], np.float32)
    tilted = lambda t: np.array([1.0, 0.1 if t == "b" else 0.0, 0.0], np.float32)
    mean, lowest = query_int8.agreement(same, tilted, ["a", "b"])
    assert lowest == pytest.approx(1 / np.sqrt(1.01)) and mean == pytest.approx((1 + lowest) / 2)


def test_a_copy_is_made_once_refused_once_and_off_by_switch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src, dst = tmp_path / "fp32.onnx", tmp_path / "copy.onnx"
    _graph(src, k=64, n=64, outlier=False)
    x_of = lambda t: np.random.default_rng(len(t.encode())).normal(0, 1, (1, 64)).astype(np.float32)

    def runner(path: Path) -> Any:
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return lambda t: sess.run(None, {"x": x_of(t)})[0][0]

    fp32 = runner(src)
    made: list[Path] = []
    real = query_int8.quantize_weights
    monkeypatch.setattr(query_int8, "quantize_weights", lambda s, d, *a: made.append(d) or real(s, d, *a))
    run = query_int8.query_copy(src, "h1", dst, fp32, runner, "test tower")
    assert run is not None and made == [dst] and dst.is_file()
    assert query_int8.query_copy(src, "h1", dst, fp32, runner, "test tower") is not None and made == [dst]  # kept
    assert query_int8.query_copy(src, "h2", dst, fp32, runner, "test tower") is not None and len(made) == 2  # new weights

    monkeypatch.setattr(query_int8, "AGREE_MEAN", 1.01)
    dst.unlink()
    assert query_int8.query_copy(src, "h3", dst, fp32, runner, "test tower") is None
    assert not dst.exists() and (tmp_path / "copy.onnx.rejected").read_text().strip() == "h3"
    assert query_int8.query_copy(src, "h3", dst, fp32, runner, "test tower") is None and len(made) == 3  # not retried

    monkeypatch.setenv(query_int8.ENV, "0")
    monkeypatch.setattr(query_int8, "AGREE_MEAN", 0.999)
    assert query_int8.query_copy(src, "h4", dst, fp32, runner, "test tower") is None and len(made) == 3


def test_a_copy_that_cannot_be_made_keeps_fp32(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    src = tmp_path / "broken.onnx"
    src.write_bytes(b"not a graph")
    assert query_int8.query_copy(src, "h", tmp_path / "copy.onnx", lambda t: np.ones(3), lambda p: lambda t: np.ones(3),
                                 "test tower") is None
    assert "queries stay fp32" in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.onnx"]  # no copy, no half-written file
