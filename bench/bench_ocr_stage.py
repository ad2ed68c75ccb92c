"""What reading the words in pictures costs (issue 16): the recognition stage against the
CLIP stage on a photo library with little text, and images per second for pictures with
and without text.

A library is generated once in the scratch folder: ``--photos`` phone-sized JPEGs
(4000×3000, smooth colour fields and grain: nothing to read) and ``--texts`` pictures with
words (screenshots 1000×600 of an error log, photographed receipts 1600×1200 with a
slight rotation, blur and JPEG). Then, on a fresh data directory:

1. ``clip``: ``IndexService.index_roots`` with a random-weight ViT-B-32 (same compute as
   the real weights; none can be downloaded here) and the real text model, recognition
   off: hash, decode, thumbnail, CLIP forward, writes: the CLIP stage.
2. ``ocr``: ``IndexService.recognise`` on that index: the gate on every picture, the
   full read of those that pass, passages embedded and written: the recognition stage.

ratio = ocr seconds ÷ clip seconds (aim ≤ 0.5 on such a library). Then per picture, on
the same files: gate + read throughput for the pictures with words and for the photos.

    .venv/bin/python bench/bench_ocr_stage.py                       # 200 photos + 10 with words
    .venv/bin/python bench/bench_ocr_stage.py --photos 4 --texts 2  # smoke run
    .venv/bin/python bench/bench_ocr_stage.py --json bench/out/ocr_stage.json
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _common import SCRATCH, machine, table, write_json
from bench_image_index import make_photos, random_clip_checkpoint

LOG_LINES = [
    "Traceback (most recent call last):",
    '  File "/srv/app/main.py", line 12, in <module>',
    "    import numpy as np",
    "ModuleNotFoundError: No module named 'numpy'",
    "ERROR 2026-11-30 18:02:11 worker-3 job 4711 failed after 3 retries",
]
RECEIPT_LINES = ["CORNER BAKERY", "Invoice 4711", "2 x Sourdough 9.80", "1 x Coffee 3.20", "Total EUR 13.00",
                 "Thank you for your visit"]


def make_text_pictures(folder: Path, n: int) -> Path:
    """Screenshots and photographed receipts with known words; generated once."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFilter, ImageFont

    marker = folder / f".complete-{n}"
    if marker.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(5)
    for i in range(n):
        if i % 2 == 0:
            img = Image.new("RGB", (1000, 600), (30, 30, 36))
            d = ImageDraw.Draw(img)
            font = ImageFont.load_default(size=18)
            for j, line in enumerate(LOG_LINES * 3):
                d.text((16, 16 + j * 26), line, font=font, fill=(220, 220, 220))
            img.save(folder / f"Screenshot {i:03d}.png")
        else:
            paper = Image.new("RGB", (900, 1100), (246, 242, 232))
            d = ImageDraw.Draw(paper)
            font = ImageFont.load_default(size=44)
            for j, line in enumerate(RECEIPT_LINES):
                d.text((60, 80 + j * 110), line, font=font, fill=(25, 25, 25))
            photo = Image.new("RGB", (1600, 1200), (90, 70, 50))
            photo.paste(paper.rotate(float(rng.uniform(-4, 4)), expand=True, fillcolor=(90, 70, 50)), (300, 40))
            photo = photo.filter(ImageFilter.GaussianBlur(1.0))
            arr = np.asarray(photo, np.int16) + rng.integers(-8, 9, (1200, 1600, 1), dtype=np.int16)
            Image.fromarray(arr.clip(0, 255).astype(np.uint8)).save(folder / f"IMG_receipt_{i:03d}.jpg", quality=85)
    marker.touch()
    return folder


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return ""


def run(photos: int, texts: int, clip_batch: int, gate_side: int | None = None) -> dict[str, Any]:
    from indexer.ingest.ocr import Recogniser, read_image_file
    from indexer.ingest.pipeline import IndexService
    from indexer.library.settings import Settings, open_paths
    from indexer.store import recognised
    from indexer.store.tables import Store
    from models.clip import ClipEmbedder
    from models.text import TextEmbedder

    lib = SCRATCH / f"ocr-library-{photos}-{texts}"
    photo_dir = make_photos(lib / "photos", photos)
    text_dir = make_text_pictures(lib / "words", texts)
    checkpoint = random_clip_checkpoint("ViT-B-32")
    clip = ClipEmbedder(checkpoint=str(checkpoint), allow_download=False, device="cpu", batch_size=clip_batch)
    clip.load()
    text = TextEmbedder()
    text.load()
    recogniser = Recogniser(gate_side=gate_side) if gate_side else Recogniser()
    recogniser.load()

    with tempfile.TemporaryDirectory(prefix="lodestar-bench-ocr-") as tmp:
        paths = open_paths(Path(tmp) / "data")
        settings = Settings(folders=[str(lib)])
        store = Store(paths.store, text_model=(text.model_id, text.dim), image_model=(clip.model_id, clip.dim))
        service = IndexService(store, paths, settings, text, clip, threads=2)
        started = time.perf_counter()
        summary = service.index_roots([str(lib)])
        clip_s = time.perf_counter() - started
        service.recogniser = recogniser
        started = time.perf_counter()
        stage = service.recognise()
        ocr_s = time.perf_counter() - started
        states = recognised.states(store)
        with_text = sum(1 for s in states.values() if s.state == "text")
        service.close()

    def per_picture(folder: Path, pattern: str) -> tuple[int, float, int]:
        files = sorted(p for p in folder.glob(pattern) if p.is_file() and not p.name.startswith("."))
        passed = 0
        started = time.perf_counter()
        for p in files:
            with open(p, "rb") as fh:
                looked, _lines = read_image_file(recogniser, fh)  # type: ignore[arg-type]
            passed += looked
        return len(files), time.perf_counter() - started, passed

    n_text, text_s, text_passed = per_picture(text_dir, "*.*")
    n_photo, photo_s, photo_passed = per_picture(photo_dir, "*.jpg")
    return {
        "photos": photos, "texts": texts, "gate_side": recogniser.gate_side, "indexed": summary.new, "clip_stage_s": round(clip_s, 2),
        "ocr_stage_s": round(ocr_s, 2), "ratio": round(ocr_s / clip_s, 3) if clip_s else None,
        "stage": {"read": stage.read, "skipped_by_gate": stage.skipped, "with_text": stage.with_text,
                  "failed": stage.failed} if stage is not None else None,
        "files_with_words": with_text,
        "text_pictures_per_s": round(n_text / text_s, 2) if text_s else None,
        "text_pictures_gate_passed": f"{text_passed}/{n_text}",
        "photos_per_s": round(n_photo / photo_s, 2) if photo_s else None,
        "photos_gate_passed": f"{photo_passed}/{n_photo}",
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=200, help="photos without text (default 200)")
    ap.add_argument("--texts", type=int, default=10, help="pictures with words (default 10)")
    ap.add_argument("--clip-batch", type=int, default=16)
    ap.add_argument("--gate-side", type=int, default=None, help="the gate's downscale (default: ocr.GATE_MAX_SIDE)")
    ap.add_argument("--json", default=None, help="also write the figures here")
    args = ap.parse_args()
    before = uptime()
    print(f"uptime before: {before}", flush=True)
    result = run(args.photos, args.texts, args.clip_batch, args.gate_side)
    after = uptime()
    print(f"uptime after:  {after}")
    rows = [
        ["CLIP stage (index_roots, recognition off)", f"{result['clip_stage_s']:.1f} s", f"{result['indexed']} files"],
        ["recognition stage (recognise)", f"{result['ocr_stage_s']:.1f} s",
         f"ratio {result['ratio']} (aim <= 0.5)"],
        ["pictures with words, gate + read", f"{result['text_pictures_per_s']} /s",
         f"gate passed {result['text_pictures_gate_passed']}"],
        ["photos without words, gate", f"{result['photos_per_s']} /s",
         f"gate passed {result['photos_gate_passed']}"],
    ]
    print(table(f"Recognition stage vs CLIP stage ({args.photos} photos, {args.texts} with words, "
                f"gate at {result['gate_side']} px)",
                ["what", "time", "note"], rows))
    print(f"stage: {result['stage']}; files with words: {result['files_with_words']}")
    write_json(args.json, {"machine": machine(), "uptime_before": before, "uptime_after": after, **result})
    return 0


if __name__ == "__main__":
    os.environ.setdefault("LODESTAR_CLIP_LIGHT", "0")  # time the model as loaded, no background export
    os.environ.setdefault("LODESTAR_TEXT_LIGHT", "0")
    sys.exit(main())
