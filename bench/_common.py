"""Shared helpers for the benchmarks: machine facts, tables, JSON output, corpora.

Every benchmark reports ratios against a baseline measured in the same process
and run (the machine is shared and noisy; absolute figures alone mean little).
"""

from __future__ import annotations

import json
import os
import platform
import random
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SCRATCH = Path(os.environ.get("LODESTAR_BENCH_DIR") or Path(tempfile.gettempdir()) / "lodestar-bench")
"""Generated corpora, caches and indexes, kept between runs (LODESTAR_BENCH_DIR moves them)."""
EVAL_DIR = Path(os.environ.get("LODESTAR_EVAL") or REPO.parent / "shared" / "eval")
"""The labelled sets (pyfaq, pyfaq-long): ``../shared/eval`` beside the repository unless LODESTAR_EVAL says."""
PYFAQ_DOCS = Path(os.environ.get("LODESTAR_PYFAQ") or EVAL_DIR / "pyfaq") / "docs"
PYFAQ_QUERIES = PYFAQ_DOCS.parent / "queries.jsonl"


def machine() -> dict[str, Any]:
    """nproc, CPU model, RAM, Python/torch versions: printed with every result."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    info: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "nproc": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu": cpu,
        "ram_gb": ram_gb,
        "python": platform.python_version(),
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:
        pass
    return info


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"
        return str(v)

    cells = [[fmt(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(header)]
    lines = [title, "  ".join(h.ljust(w) for h, w in zip(header, widths)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in cells]
    return "\n".join(lines)


def write_json(path: str | None, payload: dict[str, Any]) -> None:
    if not path:
        return
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"machine": machine(), **payload}
    out.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"wrote {out}")


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t = time.perf_counter()
    value = fn()
    return time.perf_counter() - t, value


def tree_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


# ------------------------------------------------------------------ corpora
_WORDS: list[str] | None = None


def _vocabulary() -> list[str]:
    global _WORDS
    if _WORDS is None:
        words: set[str] = set()
        if PYFAQ_DOCS.is_dir():
            for p in sorted(PYFAQ_DOCS.rglob("*.txt"))[:200]:
                words.update(w for w in p.read_text(errors="ignore").split() if w.isalpha() and 2 < len(w) < 14)
        if len(words) < 500:
            words.update(f"word{i}" for i in range(2000))
        _WORDS = sorted(words)
    return _WORDS


def make_text_corpus(root: Path, n_files: int, kb_per_file: int = 6, seed: int = 7) -> Path:
    """Deterministic markdown-ish files (headings, paragraphs) under ``root``; reused if present."""
    marker = root / f".complete-{n_files}-{kb_per_file}-{seed}"
    if marker.exists():
        return root
    root.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    words = _vocabulary()
    for i in range(n_files):
        sub = root / f"d{i // 100:03d}"
        sub.mkdir(exist_ok=True)
        parts = [f"# Notes {i}: {' '.join(rng.choices(words, k=4))}\n"]
        size = 0
        while size < kb_per_file * 1024:
            if rng.random() < 0.15:
                parts.append(f"\n## {' '.join(rng.choices(words, k=3)).title()}\n")
            sentences = [" ".join(rng.choices(words, k=rng.randint(6, 18))).capitalize() + "." for _ in range(rng.randint(2, 6))]
            para = " ".join(sentences) + "\n\n"
            parts.append(para)
            size += len(para)
        (sub / f"note{i:05d}.md").write_text("".join(parts), encoding="utf-8")
    marker.touch()
    return root
