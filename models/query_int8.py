"""Weight-int8 copies of the query towers: the same vectors within 0.1 %, half the time.

A query is one short text (a handful of tokens), so embedding it reads every weight of
the tower once for very little arithmetic: the text model's 42 MB and CLIP's text tower's
151 MB of fp32 weights dominate a query's time (memory-bound). Here each ``MatMul`` with a
constant weight becomes ONNX Runtime's ``MatMulNBits`` with 8-bit weights, symmetric, in
blocks of 64 along the input dimension, and ``accuracy_level`` 4: the activations are
quantised per row *and per block* as well (not once for the whole tensor, as dynamic int8
does), so one outlier channel costs precision in its own block only.

Measured (docs/PERFORMANCE.md, "Query latency: weight-int8 query towers"): the text model's
query 4.3 → 2.1 ms and the ViT-B-32 text tower 9.5 → 5.4 ms on two cores; query vectors
at cosine 0.9995 to fp32 on 670 labelled queries, whose five sets' MRR@10 and Recall@10
are unchanged. Documents and images keep their fp32 vectors; only queries use these.

A copy is used only after it agrees with the fp32 tower on ``PROBES`` (``AGREE_MEAN``,
``AGREE_MIN``), on
this machine's own weights: a tower it does not suit (for example one with activation
outliers this recipe handles badly) keeps fp32, and the refusal is remembered beside it
(``.rejected``, keyed by the fp32 file's hash) so it is not tried at every start.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from models.exports import drop_stale_tmp, light_enabled
from models.weights import sha256_of

log = logging.getLogger(__name__)

BLOCK = 64
"""Weights per quantisation block along the input dimension (ONNX Runtime allows 16-256)."""
ACCURACY_LEVEL = 4
"""MatMulNBits: int8 arithmetic, activations quantised per row and block."""
AGREE_MEAN = 0.999
"""Mean cosine to the fp32 tower's vectors required over ``PROBES`` (measured 0.9994 for the text model)."""
AGREE_MIN = 0.995
"""Lowest cosine allowed on any one probe (measured 0.9983, on "x" and "数据")."""
ENV = "LODESTAR_QUERY_INT8"
"""``0`` keeps every query tower in fp32 (benchmarks compare both in one run)."""
PROBES: tuple[str, ...] = (
    "budget review", "how do I read a file line by line in python", "photos from the beach at sunset",
    "a dog playing in the snow", "invoice 2024", "tax return", "ERR_QUUX_4711", "meeting notes from march",
    "what is the capital of france", "red car", "recipe for chocolate cake", "how to merge two dictionaries",
    "quarterly sales report", "birthday party", "a diagram of the network", "passport scan",
    "lecture slides on linear algebra", "mountains", "unit tests fail on windows", "contract termination clause",
    "a cat sleeping on a sofa", "résumé", "数据", "x",
)


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _rejected(path: Path) -> Path:
    return path.with_name(path.name + ".rejected")


def quantize_weights(src: Path, dst: Path, block: int = BLOCK) -> int:
    """Write ``src`` with every MatMul by a constant 2-D fp32 weight as an 8-bit
    ``MatMulNBits`` to ``dst`` (atomically). Returns how many were replaced."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(src))
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    uses: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1
    nodes = []
    replaced: set[str] = set()
    new_inits = []
    for node in graph.node:
        weight = inits.get(node.input[1]) if node.op_type == "MatMul" and len(node.input) == 2 else None
        w = numpy_helper.to_array(weight) if weight is not None else None
        if w is None or w.ndim != 2 or w.dtype != np.float32 or min(w.shape) < 16:
            nodes.append(node)
            continue
        k, n = w.shape
        blocks = -(-k // block)
        wt = np.zeros((n, blocks * block), np.float32)
        wt[:, :k] = w.T
        wt = wt.reshape(n, blocks, block)
        absmax = np.abs(wt).max(axis=2)
        scale = np.where(absmax > 0, absmax / 127.0, 1.0).astype(np.float32)
        # Stored unsigned around MatMulNBits' default zero point for 8 bits, 128.
        q = (np.clip(np.rint(wt / scale[..., None]), -127, 127) + 128).astype(np.uint8)
        base = f"{weight.name}_w8"  # type: ignore[union-attr]
        new_inits += [numpy_helper.from_array(q, base), numpy_helper.from_array(scale.reshape(-1), f"{base}_scale")]
        nodes.append(helper.make_node(
            "MatMulNBits", [node.input[0], base, f"{base}_scale"], list(node.output), name=f"{node.name}_w8",
            domain="com.microsoft", K=k, N=n, bits=8, block_size=block, accuracy_level=ACCURACY_LEVEL))
        if uses.get(node.input[1]) == 1:
            replaced.add(node.input[1])
    del graph.node[:]
    graph.node.extend(nodes)
    kept = [i for i in graph.initializer if i.name not in replaced]
    del graph.initializer[:]
    graph.initializer.extend(kept + new_inits)
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    # Named like the exports' own half-written files, which the next export sweeps up.
    tmp = dst.with_name(f".{dst.stem}.{os.getpid()}.{threading.get_ident()}{dst.suffix}")
    try:
        onnx.save(model, str(tmp))
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
    return len(new_inits) // 2


def agreement(fp32: Callable[[str], np.ndarray], int8: Callable[[str], np.ndarray],
              probes: Sequence[str] = PROBES) -> tuple[float, float]:
    """(mean, lowest) cosine between the two towers' vectors over ``probes``."""
    cosines: list[float] = []
    for text in probes:
        a = np.asarray(fp32(text), np.float64).ravel()
        b = np.asarray(int8(text), np.float64).ravel()
        norms = float(np.linalg.norm(a) * np.linalg.norm(b))
        cosines.append(float(a @ b) / max(norms, 1e-12))
    return float(np.mean(cosines)), min(cosines)


def query_copy(src: Path, src_hash: str, dst: Path, fp32: Callable[[str], np.ndarray],
               open_int8: Callable[[Path], Callable[[str], np.ndarray]], what: str) -> Callable[[str], np.ndarray] | None:
    """The weight-int8 query tower for ``src`` (made once, checked, kept at ``dst``), or None
    when it is refused or cannot be made: the caller keeps ``fp32``.

    ``src_hash`` is the fp32 file's sha256 (already checked by the caller). ``fp32``
    embeds one text with the fp32 tower; ``open_int8(path)`` opens a copy and
    returns the same kind of function. Any failure logs and returns None.
    """
    if not light_enabled(ENV):
        return None
    try:
        # A copy or sidecar half-written when a process was killed (each start: one glob).
        drop_stale_tmp(dst.parent, f".{dst.stem}.*{dst.suffix}", f".{dst.name}.sha256.*")
        rejected = _rejected(dst)
        if rejected.is_file() and rejected.read_text(encoding="ascii").strip() == src_hash:
            return None  # refused for these weights before: fp32 it stays
        side = _sidecar(dst)
        ready = dst.is_file() and side.is_file()
        if ready:
            want = side.read_text(encoding="ascii").split()
            ready = len(want) == 2 and want[0] == src_hash and want[1] == sha256_of(dst)
        if ready:
            return open_int8(dst)
        count = quantize_weights(src, dst)
        run = open_int8(dst)
        mean, lowest = agreement(fp32, run)
        if count == 0 or mean < AGREE_MEAN or lowest < AGREE_MIN:
            log.info("%s: the weight-int8 query copy agrees with fp32 to %.5f on average, %.5f at worst "
                     "(needs %.3f and %.3f): queries stay fp32", what, mean, lowest, AGREE_MEAN, AGREE_MIN)
            dst.unlink(missing_ok=True)
            rejected.write_text(src_hash + "\n", encoding="ascii")
            return None
        tmp = side.with_name(f".{side.name}.{os.getpid()}.{threading.get_ident()}")
        tmp.write_text(f"{src_hash} {sha256_of(dst)}\n", encoding="ascii")
        os.replace(tmp, side)
        log.info("%s: queries run on a weight-int8 copy (%d matrices; probe cosine %.5f mean, %.5f lowest)",
                 what, count, mean, lowest)
        return run
    except Exception as exc:  # noqa: BLE001 - only a query's speed depends on it
        log.warning("%s: no weight-int8 query copy (%s): queries stay fp32", what, exc)
        return None
