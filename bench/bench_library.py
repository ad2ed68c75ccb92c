"""A real library, indexed from scratch with the product's own command (issue 13.4).

Generates a mixed library (default 5,000 documents of mixed formats and sizes and
2,000 photos at camera resolution, 4032x3024 JPEG), then runs ``lodestar index`` on
it in a fresh data directory, exactly as a user would, while this process watches
the store from outside as a reader (every 0.25 s) and the child's memory:

- time to the first searchable file (a text file whose passages are committed);
- time to all text files, to all images, to the end of the run;
- peak RSS of the indexer (its process tree: the document sandbox included);
- then the whole library folder is renamed and indexed again: the time it takes and
  the model calls it makes (target: seconds, none).

The same-run baselines: the raw model time on a sample of the same library (fp32
``SentenceTransformer.encode`` of 2,000 of its passages, batch 64; the CLIP image tower
on 64 of its photos, decode included), extrapolated to the whole library, so the
pipeline's rate reads as a ratio of the bare models' rate.

CLIP runs ViT-B-32 with random weights (same compute as the real one; no weights can
be downloaded here). Photos are 40 distinct generated scenes written as 2,000 files
that differ in a JPEG comment: every file has its own bytes (no twins), and decoding
and embedding cost what a camera photo costs.

    .venv/bin/python bench/bench_library.py                       # 5,000 docs + 2,000 photos
    .venv/bin/python bench/bench_library.py --docs 500 --photos 100 --no-baseline   # smoke
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PYFAQ_DOCS, SCRATCH, machine

PHOTO_SIZE = (4032, 3024)
DISTINCT_SCENES = 40


# -- the library ----------------------------------------------------------------------
def _sentences() -> list[str]:
    out: list[str] = []
    for path in sorted(PYFAQ_DOCS.rglob("*.txt")):
        text = path.read_text(encoding="utf-8", errors="replace")
        out.extend(s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if 30 <= len(s.strip()) <= 400)
    for path in sorted(Path("/usr/share/common-licenses").glob("*"))[:8]:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        out.extend(s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if 30 <= len(s.strip()) <= 400)
    return out


def _size_class(rng: random.Random) -> int:
    """Target characters: most notes are short, a few documents are long (a real mix)."""
    r = rng.random()
    if r < 0.55:
        return rng.randint(200, 2_000)
    if r < 0.90:
        return rng.randint(2_000, 12_000)
    if r < 0.98:
        return rng.randint(12_000, 60_000)
    return rng.randint(60_000, 200_000)


def _body(rng: random.Random, sentences: list[str], chars: int) -> list[str]:
    paras: list[str] = []
    total = 0
    while total < chars:
        para = " ".join(rng.choice(sentences) for _ in range(rng.randint(2, 6)))
        paras.append(para)
        total += len(para) + 2
    return paras


def _write_doc(path: Path, kind: str, title: str, paras: list[str]) -> None:
    from xml.sax.saxutils import escape

    from tests.support.nasty import docx_bytes, pdf_from_objects

    if kind in ("txt", "py"):
        text = f"{title}\n\n" + "\n\n".join(paras)
        if kind == "py":
            text = f'"""{title}"""\n\n' + "\n".join(f"# {p}\ndef f{i}():\n    return {i}\n" for i, p in enumerate(paras))
        path.write_text(text, encoding="utf-8")
    elif kind == "md":
        path.write_text(f"# {title}\n\n" + "\n\n".join(f"## Part {i}\n\n{p}" if i % 4 == 0 else p
                                                       for i, p in enumerate(paras)), encoding="utf-8")
    elif kind == "html":
        body = "".join(f"<p>{escape(p)}</p>" for p in paras)
        path.write_text(f"<html><head><title>{escape(title)}</title></head><body><h1>{escape(title)}</h1>{body}"
                        "</body></html>", encoding="utf-8")
    elif kind == "docx":
        path.write_bytes(docx_bytes([("Heading1", escape(title))] + [("Normal", escape(p)) for p in paras],
                                    title=escape(title)))
    elif kind == "pdf":
        # Pages of ~2,500 characters; Helvetica text layers, wrapped at ~90 characters.
        words = " ".join(paras).encode("latin-1", "replace").decode("latin-1").split()
        lines, cur = [], ""
        for w in words:
            if len(cur) + len(w) + 1 > 90:
                lines.append(cur)
                cur = w
            else:
                cur = f"{cur} {w}".strip()
        lines.append(cur)
        pages = [lines[i : i + 28] for i in range(0, len(lines), 28)] or [[title]]
        n = len(pages)
        objs: list[bytes] = [b"<< /Type /Catalog /Pages 2 0 R >>",
                             ("<< /Type /Pages /Kids [{}] /Count {} >>".format(
                                 " ".join(f"{4 + 2 * i} 0 R" for i in range(n)), n)).encode(),
                             b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
        for i, page in enumerate(pages):
            ops = ["BT", "/F1 10 Tf", "50 760 Td"]
            for j, line in enumerate(page):
                if j:
                    ops.append("0 -14 Td")
                esc = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
                ops.append(f"({esc}) Tj")
            ops.append("ET")
            stream = "\n".join(ops).encode("latin-1")
            objs.append(("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> "
                         f"/Contents {5 + 2 * i} 0 R >>").encode())
            objs.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
        path.write_bytes(pdf_from_objects(objs))


def _scene(seed: int) -> bytes:
    """A camera-sized photo-like JPEG: smooth light, shapes, texture and sensor noise."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFilter

    rng = np.random.default_rng(seed)
    w, h = PHOTO_SIZE
    small = rng.integers(0, 255, (12, 16, 3), dtype=np.uint8)
    img = Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(img)
    for _ in range(12):
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        r = int(rng.integers(80, 900))
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x - r, y - r // 2, x + r, y + r // 2), fill=colour)
    img = img.filter(ImageFilter.GaussianBlur(6))
    arr = np.asarray(img, dtype=np.int16) + rng.normal(0, 6, (h, w, 3)).astype(np.int16)
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=88)
    return buf.getvalue()


def _with_comment(jpeg: bytes, note: str) -> bytes:
    """The same picture with a COM segment after SOI: other bytes, same decode cost."""
    payload = note.encode("ascii")
    seg = b"\xff\xfe" + (len(payload) + 2).to_bytes(2, "big") + payload
    return jpeg[:2] + seg + jpeg[2:]


def build_library(root: Path, n_docs: int, n_photos: int, seed: int = 13) -> dict[str, int]:
    marker = root.parent / f".{root.name}.lodestar-bench-library.json"  # outside: not indexed
    want = {"docs": n_docs, "photos": n_photos, "seed": seed, "version": 2}
    if marker.is_file() and json.loads(marker.read_text()) == want:
        return want
    if root.exists():
        shutil.rmtree(root)
    rng = random.Random(seed)
    sentences = _sentences()
    kinds = ["txt"] * 30 + ["md"] * 25 + ["html"] * 10 + ["pdf"] * 15 + ["docx"] * 10 + ["py"] * 10
    now = time.time()
    for i in range(n_docs):
        kind = rng.choice(kinds)
        year = 2020 + i % 6
        folder = root / "Documents" / str(year) / rng.choice(["work", "notes", "projects", "letters", "reading"])
        folder.mkdir(parents=True, exist_ok=True)
        title = " ".join(rng.choice(sentences).split()[:6]).strip(".,;:")
        path = folder / f"{i:05d} {re.sub(r'[^A-Za-z0-9 ]+', '', title)[:40].strip() or 'note'}.{kind}"
        _write_doc(path, kind, title, _body(rng, sentences, _size_class(rng)))
        age = rng.random() ** 2 * 3 * 365 * 86400  # most files old, some recent
        os.utime(path, (now - age, now - age))
    scenes = [_scene(seed * 1000 + s) for s in range(min(DISTINCT_SCENES, max(1, n_photos)))]
    for i in range(n_photos):
        folder = root / "Pictures" / f"{2020 + i % 6}-{1 + i % 12:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"IMG_{i:05d}.jpg"
        path.write_bytes(_with_comment(scenes[i % len(scenes)], f"lodestar-bench {i}"))
        age = rng.random() * 3 * 365 * 86400
        os.utime(path, (now - age, now - age))
    marker.write_text(json.dumps(want))
    return want


# -- watching a run from outside ----------------------------------------------------------
class Watch:
    """Polls the store as a reader and the child's memory until stopped."""

    def __init__(self, data_dir: Path, pid: int, n_docs: int, n_photos: int) -> None:
        self.data_dir, self.pid, self.n_docs, self.n_photos = data_dir, pid, n_docs, n_photos
        self.t0 = time.perf_counter()
        self.first_searchable: float | None = None
        self.all_text: float | None = None
        self.all_images: float | None = None
        self.peak_rss = 0
        self.settled_docs = 0
        self.samples: list[tuple[float, int, int]] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.thread.join()

    def _rss(self) -> int:
        """RSS of the indexer and its descendants (the document sandbox), from /proc."""
        parents: dict[int, int] = {}
        rss: dict[int, int] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                status = (entry / "status").read_text()
            except OSError:
                continue
            fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            parents[int(entry.name)] = int(fields.get("PPid", "0").strip() or 0)
            rss[int(entry.name)] = int(fields.get("VmRSS", "0 kB").split()[0]) * 1024
        tree, todo = set(), [self.pid]
        while todo:
            pid = todo.pop()
            tree.add(pid)
            todo.extend(c for c, p in parents.items() if p == pid and c not in tree)
        return sum(rss.get(p, 0) for p in tree)

    def _counts(self) -> tuple[int, int]:
        import lancedb

        store = self.data_dir / "index.lance"
        if not (store / "files.lance").exists():
            return 0, 0
        try:
            db = lancedb.connect(str(store))
            files = db.open_table("files")
            docs = files.count_rows("state = 'indexed' AND kind = 'text' AND n_chunks > 0")
            settled = files.count_rows("kind = 'text' AND state IN ('indexed', 'failed', 'name_only')")
            images = files.count_rows("state = 'indexed' AND kind = 'image'")
            self.settled_docs = int(settled)
            return int(docs), int(images)
        except Exception:  # noqa: BLE001 - a table mid-creation: try again next tick
            return -1, -1

    def _run(self) -> None:
        last = 0.0
        while not self._stop.is_set():
            self.peak_rss = max(self.peak_rss, self._rss())
            now = time.perf_counter()
            if now - last >= 0.25:
                last = now
                docs, images = self._counts()
                t = now - self.t0
                if docs >= 0:
                    self.samples.append((round(t, 2), docs, images))
                    if docs >= 1 and self.first_searchable is None:
                        self.first_searchable = t
                    if self.settled_docs >= self.n_docs and self.all_text is None:
                        self.all_text = t
                    if images >= self.n_photos and self.all_images is None:
                        self.all_images = t
            self._stop.wait(0.1)


def passage_count(data_dir: Path) -> int:
    import lancedb

    db = lancedb.connect(str(data_dir / "index.lance"))
    names = list(db.list_tables().tables)
    return sum(int(db.open_table(n).count_rows()) for n in names if str(n).startswith("chunks__"))


def run_index(lib: Path, data_dir: Path, checkpoint: Path, n_docs: int, n_photos: int) -> dict[str, Any]:
    exe = Path(sys.executable).parent / "lodestar"
    env = dict(os.environ, LODESTAR_DATA_DIR=str(data_dir), LODESTAR_CLIP_CHECKPOINT=str(checkpoint))
    t0 = time.perf_counter()
    proc = subprocess.Popen([str(exe), "index", str(lib), "--json"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    watch = Watch(data_dir, proc.pid, n_docs, n_photos)
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    watch.stop()
    if proc.returncode:
        raise SystemExit(f"lodestar index failed ({proc.returncode}): {err[-2000:]}")
    summary = json.loads(out[out.index("{"):])
    docs, images = watch._counts()
    return {
        "wall_s": round(wall, 1),
        "first_searchable_s": None if watch.first_searchable is None else round(watch.first_searchable, 1),
        "all_text_s": None if watch.all_text is None else round(watch.all_text, 1),
        "all_images_s": None if watch.all_images is None else round(watch.all_images, 1),
        "peak_rss_mb": round(watch.peak_rss / 2**20),
        "docs_indexed": docs, "images_indexed": images, "summary": summary,
    }


# -- same-run baselines ---------------------------------------------------------------------
def baselines(lib: Path, checkpoint: Path, n_passages: int = 2000, n_photos: int = 64) -> dict[str, Any]:
    """Raw models on a sample of this library: passages/s of fp32 encode, photos/s of CLIP."""
    import numpy as np
    from sentence_transformers import SentenceTransformer

    from indexer.ingest.chunk import chunk_text, embedding_input
    from indexer.ingest.extract import extract_text
    from indexer.library.settings import Settings
    from models.text import bundled_model_dir

    settings = Settings()
    rng = random.Random(1)
    docs = sorted(p for p in (lib / "Documents").rglob("*") if p.suffix in (".txt", ".md"))
    rng.shuffle(docs)
    passages: list[str] = []
    for p in docs:
        ex = extract_text(str(p), settings)
        passages += [embedding_input(c, ex.title) for c in chunk_text(ex.text, ex.title)]
        if len(passages) >= n_passages:
            break
    passages = passages[:n_passages]
    st = SentenceTransformer(str(bundled_model_dir()), device="cpu")
    st.encode(passages[:64], batch_size=64)
    t = time.perf_counter()
    st.encode(passages, batch_size=64, normalize_embeddings=True)
    text_rate = len(passages) / (time.perf_counter() - t)
    del st

    from bench_image_index import make_clip
    from PIL import Image

    clip = make_clip(checkpoint, 32)
    photos = sorted((lib / "Pictures").rglob("*.jpg"))[:n_photos]
    t = time.perf_counter()
    batch = []
    for p in photos:
        with Image.open(p) as im:
            im.draft("RGB", (224, 224))
            batch.append(clip.preprocess(im.convert("RGB")))
    for i in range(0, len(batch), 32):
        clip.embed_tensors(batch[i : i + 32])
    image_rate = len(photos) / (time.perf_counter() - t)
    return {"raw_text_passages_per_s": round(text_rate, 1), "raw_clip_photos_per_s": round(image_rate, 2),
            "sample_passages": len(passages), "sample_photos": len(photos), "np": np.__version__}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=5000)
    ap.add_argument("--photos", type=int, default=2000)
    ap.add_argument("--no-baseline", action="store_true", help="skip the raw-model baselines")
    ap.add_argument("--json", type=Path, help="write the figures here too")
    args = ap.parse_args()

    from bench_image_index import random_clip_checkpoint

    load_before = os.getloadavg()
    work = SCRATCH / f"library-{args.docs}-{args.photos}"
    lib = work / "Library"
    moved = work / "Library (moved)"
    if moved.exists():
        moved.rename(lib)
    t = time.perf_counter()
    build_library(lib, args.docs, args.photos)
    gen_s = time.perf_counter() - t
    checkpoint = random_clip_checkpoint()
    data_dir = work / "data"
    shutil.rmtree(data_dir, ignore_errors=True)

    first = run_index(lib, data_dir, checkpoint, args.docs, args.photos)
    passages = passage_count(data_dir)  # before the rename, which copies every row to the new paths
    lib.rename(moved)
    try:
        again = run_index(moved, data_dir, checkpoint, args.docs, args.photos)
    finally:
        moved.rename(lib)
    base = {} if args.no_baseline else baselines(lib, checkpoint)
    load_after = os.getloadavg()

    s = first["summary"]
    result = {"machine": machine(), "load_before": load_before, "load_after": load_after,
              "library": {"docs": args.docs, "photos": args.photos, "generate_s": round(gen_s, 1)},
              "first_index": first, "after_rename": again, "baselines": base}
    print(f"load average before {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}; "
          f"after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
    print(f"library: {args.docs} documents + {args.photos} photos {PHOTO_SIZE[0]}x{PHOTO_SIZE[1]}")
    print("| step | time | notes |\n|---|---|---|")
    print(f"| first searchable file | {first['first_searchable_s']} s | a text file's passages committed |")
    print(f"| all text | {first['all_text_s']} s | {first['docs_indexed']} documents with passages |")
    print(f"| all images | {first['all_images_s']} s | {first['images_indexed']} photos |")
    print(f"| whole run | {first['wall_s']} s | peak RSS {first['peak_rss_mb']} MB; model calls {s.get('model_calls')} |")
    print(f"| the library renamed, indexed again | {again['wall_s']} s | model calls "
          f"{again['summary'].get('model_calls')}; peak RSS {again['peak_rss_mb']} MB |")
    if base:
        print(f"| raw models (same run) | text {base['raw_text_passages_per_s']} passages/s | "
              f"CLIP {base['raw_clip_photos_per_s']} photos/s |")
        if passages:
            model_s = passages / base["raw_text_passages_per_s"] + args.photos / base["raw_clip_photos_per_s"]
            print(f"| bare models for this library | {model_s:.0f} s | {passages} passages + {args.photos} photos; "
                  f"pipeline ÷ bare models = {model_s / first['wall_s']:.2f} |")
    print(json.dumps({"summary": s}, default=str)[:600])
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
