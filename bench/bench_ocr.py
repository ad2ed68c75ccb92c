"""Words inside pictures and scans (issue 16): how well, how fast, and what it adds to search.

On the labelled set of bench/ocr_set.py (generated once per size and seed, in the scratch
folder), three parts, each printed as a markdown table:

1. **Recognition** (`indexer.ingest.ocr.Recogniser`, the product's engine and bounds):
   word recall (the share of the truth's words found among the recognised ones,
   case-blind, punctuation at word edges ignored) and character error rate (edit
   distance ÷ the truth's length, both texts with whitespace collapsed, lines in reading
   order), per condition; how many pictures with words the gate passes, how many
   photos without words it lets through.
2. **Throughput** on ``--cores`` cores (default 2): images/s for pictures with words
   (decode + gate + read, as the stage does) and for photos without (decode + gate);
   scanned PDF pages/s (render at the stage's resolution + read).
3. **Retrieval through the product**: a fresh data directory, ``lodestar index`` of the
   set, then ``lodestar eval queries.jsonl`` (MRR@10, Recall@10), split by condition and
   by query style (paraphrase / exact words).
4. **A photo library with little text** (``--library N``): N photos without words and
   N/20 with, indexed by ``lodestar index`` with a random-weight ViT-B-32 CLIP (the
   real model's compute; no weights can be downloaded here) with recognition off, then
   on: the extra time recognition adds (the run's own ``elapsed_s``, so the process start
   and model loading are left out), against the run without it: the CLIP stage (the
   issue's aim: at most half).

One command prints everything, with ``uptime`` before and after (run it on an idle
machine; the figures in docs/OCR.md come from it):

    .venv/bin/python bench/bench_ocr.py --n 150 --photos 50 --library 200 --json bench/out/ocr.json
    .venv/bin/python bench/bench_ocr.py --n 10 --photos 4 --library 0        # smoke run, ~1-2 min
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np
from _common import REPO, SCRATCH, machine, write_json
from ocr_set import make_ocr_set, read_jsonl

LODESTAR = [sys.executable, "-m", "indexer.cli.main"]
OCR_SETTING = "recognise_text"
"""The settings.json key that turns recognition off (Settings field)."""


# ------------------------------------------------------------------ measures
_EDGE = re.compile(r"^[^\w]+|[^\w]+$")


def words(text: str) -> list[str]:
    """Lower-case words, punctuation stripped at their edges (``'numpy'`` is ``numpy``)."""
    out = []
    for raw in text.lower().split():
        w = _EDGE.sub("", raw)
        if w:
            out.append(w)
    return out


def word_recall(truth: str, got: str) -> tuple[int, int]:
    """(truth words found, truth words): each recognised word counts once."""
    pool: dict[str, int] = {}
    for w in words(got):
        pool[w] = pool.get(w, 0) + 1
    found = 0
    want = words(truth)
    for w in want:
        if pool.get(w, 0) > 0:
            pool[w] -= 1
            found += 1
    return found, len(want)


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance; one numpy row per character of ``a`` (insertions by a running minimum)."""
    if not a:
        return len(b)
    if not b:
        return len(a)
    bb = np.frombuffer(b.encode("utf-32-le"), dtype=np.uint32)
    idx = np.arange(len(b) + 1, dtype=np.int64)
    prev = idx.copy()
    for i, ch in enumerate(a, 1):
        c = np.uint32(ord(ch))
        cur = np.empty_like(prev)
        cur[0] = i
        cur[1:] = np.minimum(prev[1:] + 1, prev[:-1] + (bb != c))
        cur = np.minimum.accumulate(cur - idx) + idx  # cur[j] = min(cur[j], cur[j-1] + 1)
        prev = cur
    return int(prev[-1])


def collapse(text: str) -> str:
    return " ".join(text.split())


def cer(truth: str, got: str) -> tuple[int, int]:
    t, g = collapse(truth), collapse(got)
    return edit_distance(t, g), len(t)


# ------------------------------------------------------------------ recognition
def _pdf_pages(path: Path, dpi: int) -> list[Any]:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(path))
    try:
        return [pdf[i].render(scale=dpi / 72.0).to_pil().convert("RGB") for i in range(len(pdf))]
    finally:
        pdf.close()


def recognition(set_dir: Path) -> dict[str, Any]:
    from indexer.ingest import ocr

    truth = read_jsonl(set_dir / "truth.jsonl")
    docs = set_dir / "docs"
    rec = ocr.Recogniser()
    t = time.perf_counter()
    rec.load()
    load_s = time.perf_counter() - t
    first = next(x for x in truth if x["condition"] != "scanned_pdf")  # warm the sessions up, untimed
    with open(docs / first["path"], "rb") as fh:
        ocr.read_image_file(rec, fh)
    rows: list[dict[str, Any]] = []
    for item in truth:
        path = docs / item["path"]
        gate_s = None
        if item["condition"] != "scanned_pdf":  # the gate alone, as the stage runs it: decode, then the detector
            t = time.perf_counter()
            with open(path, "rb") as fh:
                img, _w, _h = ocr.decode_for_ocr(fh, rec.gate_side)  # as read_image_file does
            rec.has_text(img)
            gate_s = time.perf_counter() - t
        t = time.perf_counter()
        if item["condition"] == "scanned_pdf":
            lines = []
            gated = True
            for page in _pdf_pages(path, ocr.PDF_DPI):
                lines += rec.read(page)
            got = "\n".join(line.text for line in lines)
        else:
            with open(path, "rb") as fh:
                gated, lines = ocr.read_image_file(rec, fh)
            got = "\n".join(line.text for line in ocr.reading_order(lines))
        seconds = time.perf_counter() - t
        found, total = word_recall(item["text"], got)
        dist, length = cer(item["text"], got)
        rows.append({"path": item["path"], "condition": item["condition"], "family": item["family"], "gate": gated,
                     "seconds": seconds, "gate_s": gate_s, "found": found, "words": total, "dist": dist, "chars": length,
                     "lines": len(lines), "read": got})
    return {"load_s": load_s, "rows": rows}


def summarise(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(r["condition"], []).append(r)
    text_rows = [r for r in rows if r["condition"] != "no_text"]
    if text_rows:
        groups["all with words"] = text_rows
    for name, rs in groups.items():
        secs = sum(r["seconds"] for r in rs)
        gates = [r["gate_s"] for r in rs if r.get("gate_s") is not None]
        entry: dict[str, Any] = {"images": len(rs), "seconds": secs, "per_s": len(rs) / secs if secs else 0.0,
                                 "gate_s": sum(gates) / len(gates) if gates else None,
                                 "gate_passed": sum(1 for r in rs if r["gate"])}
        if name != "no_text":
            entry["word_recall"] = sum(r["found"] for r in rs) / max(1, sum(r["words"] for r in rs))
            entry["cer"] = sum(r["dist"] for r in rs) / max(1, sum(r["chars"] for r in rs))
        out[name] = entry
    return out


# ------------------------------------------------------------------ the product
def _env(data_dir: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"LODESTAR_DATA_DIR": str(data_dir), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                "PYTHONPATH": str(REPO), "LODESTAR_ONNX_CACHE": str(SCRATCH / "onnx-cache")})
    env.update(extra or {})
    return env


def lodestar(args: Sequence[str], data_dir: Path, extra_env: dict[str, str] | None = None) -> tuple[float, str]:
    """Run one ``lodestar`` command in its own process: (seconds, stdout); a failure stops the bench."""
    t = time.perf_counter()
    proc = subprocess.run([*LODESTAR, *args, "--data-dir", str(data_dir)], cwd=REPO, env=_env(data_dir, extra_env),
                          capture_output=True, text=True)
    seconds = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"lodestar {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return seconds, proc.stdout


def _settings(data_dir: Path, **values: Any) -> None:
    """Write settings.json before the first run (the CLI merges its own keys in later)."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = data_dir / "settings.json"
    current = json.loads(path.read_text()) if path.is_file() else {}
    current.update(values)
    path.write_text(json.dumps(current))


def retrieval(set_dir: Path, work: Path) -> dict[str, Any]:
    docs, data = set_dir / "docs", work / "data-retrieval"
    shutil.rmtree(data, ignore_errors=True)
    _settings(data, allow_download=False)  # the words alone: no image model, and never a download attempt
    index_s, out = lodestar(["index", str(docs), "--json"], data)
    summary = json.loads(out)
    eval_s, out = lodestar(["eval", str(set_dir / "queries.jsonl"), "--root", str(docs), "--json", "--kind", "all"], data)
    report = json.loads(out)
    labelled = read_jsonl(set_dir / "queries.jsonl")
    by: dict[str, list[tuple[int | None, float]]] = {}
    for q, o in zip(labelled, report["queries"]):
        for key in ("all", f"condition: {q['condition']}", f"style: {q['style']}"):
            by.setdefault(key, []).append((o["rank"], o["recall"]))
    groups = {k: {"queries": len(v), "mrr": sum(1 / r for r, _ in v if r) / len(v), "recall": sum(x for _, x in v) / len(v)}
              for k, v in by.items()}
    misses = [{"query": o["query"], "rank": o["rank"], "top": o["top"][:3]} for o in report["queries"] if o["rank"] != 1]
    return {"index_s": index_s, "eval_s": eval_s, "summary": summary, "groups": groups, "misses": misses,
            "p50_ms": report.get("p50_ms"), "p95_ms": report.get("p95_ms")}


def library(n_photos: int, seed: int, work: Path) -> dict[str, Any]:
    """Index a photo library with little text with recognition off, then on (same CLIP), alternating."""
    from bench_image_index import random_clip_checkpoint

    lib = SCRATCH / f"ocr-library-{n_photos}-{seed}"
    if not (lib / ".complete").exists():
        make_ocr_set(lib, n=max(1, n_photos // 20), photos=n_photos, seed=seed, photo_size=(3000, 2250))
        (lib / ".complete").touch()
    ckpt = random_clip_checkpoint()
    env = {"LODESTAR_CLIP_CHECKPOINT": str(ckpt)}
    docs = lib / "docs"
    # A first run outside the timing: the light CLIP path exports its ONNX model once.
    warm = work / "data-warm"
    shutil.rmtree(warm, ignore_errors=True)
    _settings(warm, allow_download=False)
    lodestar(["index", str(docs / "clean"), "--json"], warm, env)
    results: dict[str, list[float]] = {"off": [], "on": []}
    walls: dict[str, list[float]] = {"off": [], "on": []}
    for _round in range(2):
        for mode in ("off", "on"):
            data = work / f"data-library-{mode}"
            shutil.rmtree(data, ignore_errors=True)
            _settings(data, allow_download=False, **{OCR_SETTING: mode == "on"})
            wall, out = lodestar(["index", str(docs), "--json"], data, env)
            # The run's own time (scan, read, CLIP, writes and, when on, the recognition
            # stage), without the process start and the models' loading.
            results[mode].append(float(json.loads(out)["elapsed_s"]))
            walls[mode].append(wall)
    off, on = min(results["off"]), min(results["on"])
    return {"photos": n_photos, "with_words": max(1, n_photos // 20), "off_s": off, "on_s": on,
            "extra_s": on - off, "extra_share": (on - off) / off if off else None, "runs": results,
            "wall_off_s": min(walls["off"]), "wall_on_s": min(walls["on"])}


# ------------------------------------------------------------------ output
def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return "uptime: not available"


def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.3f}" if abs(v) < 100 else f"{v:,.0f}"
        return "–" if v is None else str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(fmt(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def report_recognition(set_dir: Path, info: dict[str, Any], payload: dict[str, Any]) -> None:
    """Parts 1 and 2: recognition quality per condition and throughput, printed and kept in ``payload``."""
    rec = recognition(set_dir)
    groups = summarise(rec["rows"])
    payload["recognition"] = {"load_s": rec["load_s"], "groups": groups, "rows": rec["rows"]}
    order = ["clean", "rotated", "photographed", "screenshot", "scanned_pdf", "all with words", "no_text"]
    print(f"\n### Recognition (engine load {rec['load_s']:.2f} s)\n")
    print(md_table(["condition", "images", "word recall", "CER", "gate passed", "gate s/image", "images/s", "s/image"],
                   [[k, g["images"], g.get("word_recall"), g.get("cer"), f"{g['gate_passed']}/{g['images']}",
                     g["gate_s"], g["per_s"], g["seconds"] / max(1, g["images"])]
                    for k in order if (g := groups.get(k))]))
    with_words = groups.get("all with words", {})
    pictures = [r for r in rec["rows"] if r["condition"] not in ("no_text", "scanned_pdf")]
    pic_s = sum(r["seconds"] for r in pictures)
    none = groups.get("no_text", {})
    pdf = groups.get("scanned_pdf", {})
    print(f"\n### Throughput ({info.get('affinity')} cores)\n")
    print(md_table(["input", "count", "per second"], [
        ["pictures with words (decode + gate + read)", len(pictures), len(pictures) / pic_s if pic_s else None],
        ["photos without words (decode + gate)", none.get("images", 0), none.get("per_s")],
        ["scanned PDF pages (render + read)", pdf.get("images", 0), pdf.get("per_s")],
    ]))
    payload["throughput"] = {"with_words_per_s": len(pictures) / pic_s if pic_s else None,
                             "no_text_per_s": none.get("per_s"), "pdf_per_s": pdf.get("per_s"),
                             "word_recall_all": with_words.get("word_recall"), "cer_all": with_words.get("cer")}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=150, help="pictures with words in the labelled set")
    ap.add_argument("--photos", type=int, default=50, help="photos without words in the labelled set")
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--cores", type=int, default=2, help="CPUs this process (and its children) may use")
    ap.add_argument("--library", type=int, default=200, help="photos in the little-text library run (0: skip)")
    ap.add_argument("--skip-recognition", action="store_true", help="leave out parts 1 and 2")
    ap.add_argument("--skip-retrieval", action="store_true", help="leave out part 3")
    ap.add_argument("--json", help="write every figure (and each image's reading) here")
    args = ap.parse_args(argv)

    if args.cores and hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))[: args.cores]
        os.sched_setaffinity(0, cpus)  # before the engine is built: it sizes its threads from this
    print(f"uptime before: {uptime()}")
    info = machine()
    print(f"machine: {info['cpu']}, {info.get('affinity')} cores used, {info['ram_gb']} GB")
    set_dir = SCRATCH / f"ocr-set-{args.n}-{args.photos}-{args.seed}"
    if not (set_dir / ".complete").exists():
        summary = make_ocr_set(set_dir, args.n, args.photos, args.seed)
        (set_dir / ".complete").touch()
        print(f"set: {summary['images']} images, {summary['queries']} queries in {set_dir}")
    work = SCRATCH / "ocr-work"
    work.mkdir(parents=True, exist_ok=True)
    payload: dict[str, Any] = {"set": str(set_dir), "args": vars(args)}

    if not args.skip_recognition:
        report_recognition(set_dir, info, payload)

    if not args.skip_retrieval:
        r = retrieval(set_dir, work)
        payload["retrieval"] = r
        print(f"\n### Retrieval through the product (index {r['index_s']:.1f} s, eval {r['eval_s']:.1f} s, "
              f"query p50 {r['p50_ms']:.0f} ms)\n")
        print(md_table(["queries", "n", "MRR@10", "Recall@10"],
                       [[k, g["queries"], g["mrr"], g["recall"]] for k, g in sorted(r["groups"].items())]))
        for m in r["misses"][:10]:
            print(f"  miss (rank {m['rank'] or '-'}): {m['query']!r} → {m['top']}")
    if args.library:
        lib = library(args.library, args.seed + 1, work)
        payload["library"] = lib
        print(f"\n### A photo library with little text ({lib['photos']} photos, {lib['with_words']} with words; "
              "random-weight ViT-B-32)\n")
        print(md_table(["recognition", "run s (best of 2)", "process wall s"],
                       [["off", lib["off_s"], lib["wall_off_s"]], ["on", lib["on_s"], lib["wall_on_s"]]]))
        print(f"\nextra time: {lib['extra_s']:.1f} s = {100 * (lib['extra_share'] or 0):.0f}% of the run without "
              "recognition (aim: at most 50%)")
    print(f"\nuptime after: {uptime()}")
    write_json(args.json, payload)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
