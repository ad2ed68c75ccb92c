"""Cold start of the `lodestar` window vs an empty PySide6 QWidget, same run.

Each launch is a fresh subprocess under QT_QPA_PLATFORM=offscreen. The app is
run through bench/startup_probe.py (`lodestar` with its window hooked from outside),
which prints ``window-shown <t>`` at the main window's first show event and
``first-query <t>`` when the answer to a query typed at once arrives, then quits. Times are from
just before ``Popen`` (interpreter start included) to those stamps.

The data directory holds a small ready index (pyfaq sample, real text model,
random-weight ViT-B-32 checkpoint so CLIP loads like the real one); welcome done.

Baseline: ``python -c`` that imports PySide6.QtWidgets and shows an empty QWidget.
Runs alternate baseline/app; medians are reported.
Targets: window shown ≤ 1.5 s, first query answered ≤ 3 s.

Text model path: the launches use a private ONNX cache (``--onnx-cache``, default a
fresh folder) that ``prepare`` fills — the index run loads sentence-transformers and
its background export is awaited — so every measured launch is a *second* launch,
on the light text path (tokenizers + ONNX Runtime). ``--text-path both`` (default)
alternates it with the sentence-transformers path (LODESTAR_TEXT_LIGHT=0) in the
same run. The load average is recorded around every launch.

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
from _common import PYFAQ_DOCS, machine, table, write_json

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


def prepare(data: Path, corpus: Path, checkpoint: Path | None, onnx_cache: Path) -> None:
    from indexer.library.runtime import open_runtime
    from indexer.library.settings import Settings, open_paths, save_settings

    paths = open_paths(data)
    save_settings(paths, Settings(folders=[str(corpus)], allow_download=False, welcome_done=True,
                                  clip_checkpoint=str(checkpoint or data / "no-clip.safetensors")))
    os.environ["LODESTAR_ONNX_CACHE"] = str(onnx_cache)
    os.environ.pop("LODESTAR_TEXT_LIGHT", None)
    rt = open_runtime(data)
    s = rt.service().index_roots([str(corpus)])
    emb = rt.text_embedder
    wait = getattr(emb, "wait_export", None)
    if callable(wait):
        wait(600)  # the first load's background export: the launches below are second launches
    exports = sorted(str(p.relative_to(onnx_cache)) for p in onnx_cache.rglob("model.onnx"))
    print(f"prepared index: {s.new} files; text model light={getattr(emb, 'light', None)}; "
          f"cached exports in {onnx_cache}: {exports or 'NONE'}")
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
    ap.add_argument("--text-path", choices=("light", "torch", "both"), default="both",
                    help="light: cached ONNX export (default app path); torch: LODESTAR_TEXT_LIGHT=0; both: alternate")
    ap.add_argument("--onnx-cache", help="ONNX export cache for the launches (default: fresh, filled by prepare)")
    ap.add_argument("--json", dest="json_out")
    args = ap.parse_args(argv)

    from bench_image_index import random_clip_checkpoint
    from bench_text_index import pyfaq_sample

    _name, corpus = pyfaq_sample(PYFAQ_DOCS, args.files)
    checkpoint = None if args.no_clip else random_clip_checkpoint()
    app_cmd = [sys.executable, str(Path(__file__).resolve().parent / "startup_probe.py")]
    paths_run = ["light", "torch"] if args.text_path == "both" else [args.text_path]
    shown_b: list[float] = []
    shown: dict[str, list[float]] = {k: [] for k in paths_run}
    query: dict[str, list[float]] = {k: [] for k in paths_run}
    loads: list[float] = []
    with tempfile.TemporaryDirectory(prefix="lodestar-bench-start-") as tmp:
        data = Path(tmp) / "data"
        onnx_cache = Path(args.onnx_cache) if args.onnx_cache else Path(tmp) / "onnx-cache"
        prepare(data, corpus, checkpoint, onnx_cache)
        env = dict(os.environ, QT_QPA_PLATFORM="offscreen",
                   XDG_CONFIG_HOME=str(Path(tmp) / "config"), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
                   LODESTAR_ONNX_CACHE=str(onnx_cache))
        env.pop("LODESTAR_CLIP_CHECKPOINT", None)
        env.pop("LODESTAR_TEXT_LIGHT", None)
        for _ in range(args.runs):
            loads.append(os.getloadavg()[0])
            shown_b.append(launch([sys.executable, "-c", BASELINE], env, args.timeout)["window-shown"])
            for kind in paths_run:
                loads.append(os.getloadavg()[0])
                kenv = dict(env, LODESTAR_TEXT_LIGHT="0") if kind == "torch" else env
                st = launch(app_cmd + ["--data-dir", str(data)], kenv, args.timeout, need_query=True)
                shown[kind].append(st["window-shown"])
                query[kind].append(st.get("first-query", float("nan")))
                print(f"  {kind}: shown {st['window-shown']:.2f} s, first query {st.get('first-query', float('nan')):.2f} s"
                      f" (load {os.getloadavg()[0]:.1f})", flush=True)
        loads.append(os.getloadavg()[0])
    med = statistics.median
    b = med(shown_b)
    m = machine()
    print(f"machine: {m['cpu']} nproc={m['nproc']} ram={m['ram_gb']}GB  clip={'random ViT-B-32' if checkpoint else 'none'}")
    print(f"load average (1 min) around the launches: min {min(loads):.1f}, median {med(loads):.1f}, max {max(loads):.1f}")
    rows: list[list[Any]] = [["empty QWidget shown (baseline)", b, 1.0, ""]]
    result: dict[str, Any] = {}
    for kind in paths_run:
        a, q = med(shown[kind]), med(query[kind])
        label = "light text path" if kind == "light" else "sentence-transformers (LODESTAR_TEXT_LIGHT=0)"
        rows.append([f"lodestar window shown, {label}", a, a / b, "≤1.5 s " + ("met" if a <= 1.5 else "MISSED")])
        rows.append([f"lodestar first query answered, {label}", q, q / b, "≤3 s " + ("met" if q <= 3 else "MISSED")])
        result[kind] = {"app_shown_s": shown[kind], "app_first_query_s": query[kind], "median_shown_s": a,
                        "median_first_query_s": q, "ratio_shown": a / b, "ratio_first_query": q / b,
                        "met_shown": a <= 1.5, "met_first_query": q <= 3.0}
    print(table(f"Cold start (median of {args.runs}, alternating, offscreen Qt)",
                ["what", "seconds", "vs empty QWidget", "target"], rows))
    main_kind = paths_run[0]
    write_json(args.json_out, {
        "benchmark": "startup", "runs": args.runs, "baseline_shown_s": shown_b, "median_baseline_s": b,
        "clip": bool(checkpoint), "load_avg_1min": loads, "text_paths": result,
        # the default app path, under the keys earlier runs used
        **{k: result[main_kind][k] for k in ("app_shown_s", "app_first_query_s", "median_shown_s",
                                               "median_first_query_s", "ratio_shown", "ratio_first_query",
                                               "met_shown", "met_first_query")},
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
