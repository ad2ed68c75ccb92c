"""Cold start of the `lodestar` window vs an empty PySide6 QWidget, same run.

Each launch is a fresh subprocess under QT_QPA_PLATFORM=offscreen. The app is
run with LODESTAR_STARTUP_PROBE=quit (desktop/startup_probe.py), which prints
``window-shown <t>`` at the main window's first show event and ``first-query <t>``
when the answer to a query typed at once arrives, then quits. Times are from
just before ``Popen`` (interpreter start included) to those stamps.

The data directory holds a small ready index (pyfaq sample, real text model,
random-weight ViT-B-32 checkpoint so CLIP loads like the real one); welcome done.

Baseline: ``python -c`` that imports PySide6.QtWidgets and shows an empty QWidget.
Runs alternate baseline/app; medians are reported.
Targets: window shown ≤ 1.5 s, first query answered ≤ 3 s.

    .venv/bin/python bench/bench_startup.py --json bench/out/startup.json
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PYFAQ_DOCS, machine, table, write_json  # noqa: E402

BASELINE = r"""
import sys, time
from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication, QWidget
app = QApplication(sys.argv[:1])
w = QWidget()
class F(QObject):
    def eventFilter(self, o, e):
        if e.type() == QEvent.Type.Show:
            print(f"window-shown {time.time():.6f}", file=sys.stderr, flush=True)
            QTimer.singleShot(0, app.quit)
        return False
f = F(w)
w.installEventFilter(f)
w.show()
app.exec()
"""


def prepare(data: Path, corpus: Path, checkpoint: Path | None) -> None:
    from indexer.config import Settings, open_paths, save_settings
    from indexer.runtime import open_runtime

    paths = open_paths(data)
    save_settings(paths, Settings(folders=[str(corpus)], allow_download=False, welcome_done=True,
                                  clip_checkpoint=str(checkpoint or data / "no-clip.safetensors")))
    rt = open_runtime(data)
    s = rt.service().index_roots([str(corpus)])
    print(f"prepared index: {s.new} files")
    rt.close()


def launch(cmd: list[str], env: dict[str, str], timeout: float, need_query: bool = False) -> dict[str, float]:
    """Start ``cmd``, collect the probe stamps from its stderr, stop it once they are in.

    The app is terminated (then killed) after its first answer: shutdown time is not
    what is measured, and waiting for it would only add a loaded machine's noise.
    """
    import threading

    t0 = time.time()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    stamps: dict[str, float] = {}
    tail: list[str] = []
    done = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            parts = line.split()
            if len(parts) == 2 and parts[0] in ("window-shown", "first-query"):
                stamps[parts[0]] = float(parts[1]) - t0
                if parts[0] == "first-query" or not need_query:
                    done.set()
            else:
                tail.append(line)
                del tail[:-40]
        done.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    done.wait(timeout)
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    reader.join(5)
    if "window-shown" not in stamps:
        raise RuntimeError(f"no window-shown stamp from {cmd[:3]}; rc={proc.returncode}\n{''.join(tail)[-2000:]}")
    if need_query and "first-query" not in stamps:
        print(f"warning: no first-query within {timeout:.0f}s; stderr tail:\n{''.join(tail)[-1500:]}")
    return stamps


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--files", type=int, default=20, help="pyfaq files in the ready index")
    ap.add_argument("--no-clip", action="store_true", help="no CLIP checkpoint (text-only app)")
    ap.add_argument("--timeout", type=float, default=180.0)
    ap.add_argument("--json", dest="json_out")
    args = ap.parse_args(argv)

    from bench_image_index import random_clip_checkpoint
    from bench_text_index import pyfaq_sample

    _name, corpus = pyfaq_sample(PYFAQ_DOCS, args.files)
    checkpoint = None if args.no_clip else random_clip_checkpoint()
    exe = Path(sys.executable).parent / "lodestar"
    app_cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "indexer.cli"]
    shown_b: list[float] = []
    shown_a: list[float] = []
    query_a: list[float] = []
    with tempfile.TemporaryDirectory(prefix="lodestar-bench-start-") as tmp:
        data = Path(tmp) / "data"
        prepare(data, corpus, checkpoint)
        env = dict(os.environ, QT_QPA_PLATFORM="offscreen", LODESTAR_STARTUP_PROBE="quit",
                   XDG_CONFIG_HOME=str(Path(tmp) / "config"), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
        env.pop("LODESTAR_CLIP_CHECKPOINT", None)
        for _ in range(args.runs):
            shown_b.append(launch([sys.executable, "-c", BASELINE], env, args.timeout)["window-shown"])
            st = launch(app_cmd + ["--data-dir", str(data)], env, args.timeout, need_query=True)
            shown_a.append(st["window-shown"])
            query_a.append(st.get("first-query", float("nan")))
    med = statistics.median
    b, a, q = med(shown_b), med(shown_a), med(query_a)
    m = machine()
    print(f"machine: {m['cpu']} nproc={m['nproc']} ram={m['ram_gb']}GB  clip={'random ViT-B-32' if checkpoint else 'none'}")
    print(
        table(
            f"Cold start (median of {args.runs}, alternating, offscreen Qt)",
            ["what", "seconds", "vs empty QWidget", "target"],
            [
                ["empty QWidget shown (baseline)", b, 1.0, ""],
                ["lodestar window shown", a, a / b, "≤1.5 s " + ("met" if a <= 1.5 else "MISSED")],
                ["lodestar first query answered", q, q / b, "≤3 s " + ("met" if q <= 3 else "MISSED")],
            ],
        )
    )
    write_json(args.json_out, {
        "benchmark": "startup", "runs": args.runs, "baseline_shown_s": shown_b, "app_shown_s": shown_a,
        "app_first_query_s": query_a, "median_baseline_s": b, "median_shown_s": a, "median_first_query_s": q,
        "ratio_shown": a / b, "ratio_first_query": q / b, "clip": bool(checkpoint),
        "met_shown": a <= 1.5, "met_first_query": q <= 3.0,
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
