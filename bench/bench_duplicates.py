"""Duplicates (issue 18): quality per tier on a generated set, and the cost of a scan at scale.

Quality: tests/support/duplicate_set.py writes a folder with known groups in every tier
(copies; re-saves at JPEG 75/50/30, halved, quartered, PNG, WebP, cropped 5 %, turned,
tilted; bursts seconds apart; look-alikes days apart; documents as .txt/.md/.docx/.pdf
and an edited version, next to look-alike documents). It is indexed with the text
model and a random-weight CLIP (tests' tiny model: it says nothing of real image
understanding), then scanned; precision and recall are counted over pairs per tier.
The picture tier is also scored on perceptual hashes alone (``resaved (hash only)``),
which does not depend on CLIP.

Scale (``--scale N``): N synthetic pictures (64-bit hashes with planted near-copies,
512-d vectors with planted bursts, one photo a minute) and N synthetic documents
(MinHash signatures with planted versions) go through the same candidate generation
and grouping as a scan; time and peak memory per tier. The per-file work a first scan
adds (a thumbnail's perceptual hashes and header facts, a document's signature) is
timed on the generated files and multiplied out; later scans read it from the caches.

    .venv/bin/python bench/bench_duplicates.py --scenes 4 --documents 3 --scale 2000 \\
        --json /tmp/dups.json --markdown /tmp/dups.md
    .venv/bin/python bench/bench_duplicates.py --scenes 20 --documents 20 --scale 100000   # idle machine
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
from _common import SCRATCH, machine, write_json


def _runtime(data: Path, folder: Path, image_model: str) -> Any:
    from indexer.library.runtime import Runtime
    from indexer.library.settings import Settings, open_paths, save_settings
    from tests.support.fakes import HashImageEmbedder

    paths = open_paths(data)
    settings = Settings(folders=[str(folder)], allow_download=False)
    save_settings(paths, settings)
    rt = Runtime(paths, settings)
    if image_model == "tiny-clip":
        from models.clip import ClipEmbedder
        from tests.support.tiny_clip import TINY_CLIP_NAME, make_tiny_clip_checkpoint, register_tiny_clip

        register_tiny_clip()
        ckpt = make_tiny_clip_checkpoint(data.parent / f"{TINY_CLIP_NAME}.safetensors")
        rt._image = ClipEmbedder(model_name=TINY_CLIP_NAME, pretrained="", checkpoint=str(ckpt))
        rt._image.load()
    else:
        rt._image = HashImageEmbedder()
    rt.image_ready = lambda *a, **k: (True, "")
    return rt


def quality(scenes: int, documents: int, image_model: str) -> dict[str, Any]:
    from indexer.duplicates.scan import DuplicateScan
    from indexer.duplicates.tiers import Rules
    from indexer.store.read import StoreReader
    from tests.support.duplicate_set import make_duplicate_set, score

    base = SCRATCH / f"duplicates-{scenes}-{documents}"
    shutil.rmtree(base, ignore_errors=True)
    truth = make_duplicate_set(base / "files", scenes=scenes, documents=documents)
    rt = _runtime(base / "data", base / "files", image_model)
    t = time.perf_counter()
    summary = rt.service().index_roots([str(base / "files")])
    index_s = time.perf_counter() - t
    scan = DuplicateScan(rt.store, StoreReader(rt.store), rt.paths.data_dir)
    t = time.perf_counter()
    groups = scan.run()
    first_s = time.perf_counter() - t
    t = time.perf_counter()
    scan.run()
    again_s = time.perf_counter() - t
    figures = score(groups, truth)
    hash_only = DuplicateScan(rt.store, StoreReader(rt.store), rt.paths.data_dir, rules=Rules(resaved_clip=-1.0))
    figures["resaved (hash only)"] = score(hash_only.run(("resaved",)), truth)["resaved"]
    files = sum(1 for p in (base / "files").rglob("*") if p.is_file())
    rt.close()
    return {"files": files, "failed": summary.failed, "index_s": round(index_s, 2), "scan_first_s": round(first_s, 3),
            "scan_again_s": round(again_s, 3), "image_model": image_model, "tiers": figures}


def per_file_costs(folder: Path, thumbs: Path) -> dict[str, float]:
    """Seconds per picture (hashes + header) and per document signature, on generated files."""
    from indexer.duplicates.scan import picture_facts
    from indexer.duplicates.tiers import Signer, shingle_hashes

    pngs = sorted(thumbs.glob("*.png"))[:40]
    originals = sorted(folder.rglob("*.jpg"))[:40]
    t = time.perf_counter()
    for png, jpg in zip(pngs, originals):
        picture_facts(png, str(jpg))
    picture = (time.perf_counter() - t) / max(1, min(len(pngs), len(originals)))
    texts = [p.read_text(errors="replace") for p in sorted(folder.rglob("*.txt"))][:20]
    signer = Signer()
    t = time.perf_counter()
    for text in texts:
        signer.sign(shingle_hashes([text]))
    document = (time.perf_counter() - t) / max(1, len(texts))
    return {"picture_s": picture, "document_s": document,
            "words_per_document": float(np.mean([len(t.split()) for t in texts])) if texts else 0.0}


def _measure(fn: Any) -> tuple[float, float, Any]:
    """(seconds, peak MB of Python/numpy allocations, result)."""
    tracemalloc.start()
    t = time.perf_counter()
    value = fn()
    seconds = time.perf_counter() - t
    peak = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    return seconds, peak, value


def scale(n: int, seed: int = 3) -> dict[str, Any]:
    from indexer.duplicates.tiers import (
        Rules,
        Signer,
        components,
        document_pairs,
        same_picture_pairs,
        similar_shot_pairs,
        star_groups,
    )

    rng = np.random.default_rng(seed)
    rules = Rules()
    planted = n // 20
    hashes = rng.integers(0, 2**63, n, dtype=np.uint64)
    turned = rng.integers(0, 2**63, (n, 3), dtype=np.uint64)
    src = rng.choice(n // 2, planted, replace=False)
    dst = n // 2 + np.arange(planted)
    flips = np.zeros(planted, np.uint64)
    for _ in range(3):
        flips |= np.uint64(1) << rng.integers(0, 64, planted).astype(np.uint64)
    hashes[dst] = hashes[src] ^ flips
    vectors = rng.normal(size=(n, 512)).astype(np.float32)
    vectors[dst] = vectors[src] + rng.normal(scale=0.05, size=(planted, 512)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors16 = vectors.astype(np.float16)
    del vectors
    times = np.arange(n) * 60.0  # a photo a minute: ten in each burst window
    times[dst] = times[src] + 5
    has = np.ones(n, bool)
    out: dict[str, Any] = {"n": n, "planted": planted}
    s, mb, (pairs, _b, _s) = _measure(lambda: same_picture_pairs(hashes, turned, vectors16, has, rules))
    found = {(int(a), int(b)) for a, b in pairs.tolist()}
    out["resaved"] = {"seconds": round(s, 2), "peak_mb": round(mb, 1), "groups": len(star_groups(n, pairs.tolist())),
                      "planted_found": sum((min(a, b), max(a, b)) in found for a, b in zip(src.tolist(), dst.tolist()))}
    s, mb, (pairs, _sims) = _measure(lambda: similar_shot_pairs(times, vectors16, has, rules))
    found = {(int(a), int(b)) for a, b in pairs.tolist()}
    out["burst"] = {"seconds": round(s, 2), "peak_mb": round(mb, 1), "groups": len(components(n, pairs.tolist())),
                    "planted_found": sum((min(a, b), max(a, b)) in found for a, b in zip(src.tolist(), dst.tolist()))}
    signer = Signer(rules.num_perm)
    shingles = rng.integers(0, 2**32, (n, 300), dtype=np.uint64)
    shingles[dst, :240] = shingles[src, :240]  # versions sharing 80 % of their shingles
    t = time.perf_counter()
    sigs = np.stack([signer.sign(row) for row in shingles])
    sign_s = time.perf_counter() - t
    s, mb, (pairs, _share) = _measure(lambda: document_pairs(sigs, rules))
    found = {(int(a), int(b)) for a, b in pairs.tolist()}
    out["document"] = {"seconds": round(s, 2), "peak_mb": round(mb, 1), "sign_seconds": round(sign_s, 2),
                       "groups": len(components(n, pairs.tolist())),
                       "planted_found": sum((min(a, b), max(a, b)) in found for a, b in zip(src.tolist(), dst.tolist()))}
    out["vectors_mb"] = round(vectors16.nbytes / 1e6, 1)
    out["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out


def markdown(result: dict[str, Any]) -> str:
    lines = [f"Machine: {result['machine']['cpu']}, {result['machine']['affinity']} cores; {result['machine']['date']}"
             + (" (taken under load)" if result.get("under_load") else ""), ""]
    q = result.get("quality")
    if q:
        lines += [f"Generated set: {q['files']} files, image model: {q['image_model']}; first scan {q['scan_first_s']} s, "
                  f"again {q['scan_again_s']} s", "", "| tier | expected pairs | found pairs | precision | recall |",
                  "|---|---|---|---|---|"]
        for tier, f in q["tiers"].items():
            if "precision" in f:
                lines.append(f"| {tier} | {f['expected_pairs']} | {f['found_pairs']} | {f['precision']} | {f['recall']} |")
        lines.append(f"\nLook-alikes put in a group: {q['tiers']['lookalikes_grouped']['count']}\n")
    s = result.get("scale")
    if s:
        lines += [f"Scale: {s['n']:,} pictures and {s['n']:,} documents ({s['planted']:,} planted pairs each)", "",
                  "| tier | seconds | peak MB | planted pairs found |", "|---|---|---|---|"]
        for tier in ("resaved", "burst", "document"):
            lines.append(f"| {tier} | {s[tier]['seconds']} | {s[tier]['peak_mb']} | {s[tier]['planted_found']:,} |")
        lines.append(f"\nSigning {s['n']:,} documents of 300 shingles: {s['document']['sign_seconds']} s; "
                     f"vectors in memory: {s['vectors_mb']} MB (float16); process peak RSS {s['max_rss_mb']} MB.")
    c = result.get("per_file")
    if c:
        lines.append(f"First-scan work per file: {c['picture_s'] * 1000:.1f} ms a picture (hashes of its thumbnail, "
                     f"its header), {c['document_s'] * 1000:.1f} ms a document of ~{c['words_per_document']:.0f} words; "
                     f"for 100,000 of each: ~{c['picture_s'] * 1e5 / 60:.0f} min and ~{c['document_s'] * 1e5 / 60:.0f} min, once.")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenes", type=int, default=3)
    ap.add_argument("--documents", type=int, default=2)
    ap.add_argument("--image-model", choices=("tiny-clip", "fake"), default="tiny-clip",
                    help="random-weight tiny CLIP (default) or the tests' pixel embedder")
    ap.add_argument("--scale", type=int, default=0, help="synthetic pictures and documents to time (e.g. 100000)")
    ap.add_argument("--under-load", action="store_true", help="mark the figures as taken on a busy machine")
    ap.add_argument("--json")
    ap.add_argument("--markdown")
    args = ap.parse_args()
    result: dict[str, Any] = {"machine": machine(), "under_load": args.under_load}
    if args.scenes or args.documents:
        result["quality"] = quality(args.scenes, args.documents, args.image_model)
        base = SCRATCH / f"duplicates-{args.scenes}-{args.documents}"
        result["per_file"] = per_file_costs(base / "files", base / "data" / "thumbnails")
    if args.scale:
        result["scale"] = scale(args.scale)
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=1, default=str))
    text = markdown(result)
    print(text)
    write_json(args.json, result)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
