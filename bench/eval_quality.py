"""Search quality as a user gets it: a fresh index built by `lodestar index`, scored by `lodestar eval`.

For each labelled set (``docs/`` + ``queries.jsonl``; pyfaq and pyfaq-long from
``../shared/eval``, plus any built by ``bench/build_sets.py``), in one run:

1. a data directory ``WORK/<set>`` is built with the product's own command and default
   settings (``LODESTAR_DATA_DIR=WORK/<set> lodestar index DOCS``), then stamped with the
   commit, a digest of uncommitted changes to the product's code, a digest of the settings
   and of the documents. An existing data directory is reused only when its stamp matches
   this checkout exactly; one built by another commit, other code, other settings or other
   files is refused (``--fresh`` rebuilds it);
2. ``lodestar eval QUERIES --root DOCS --json`` scores it (MRR@10, Recall@10);
3. the four references of ../shared/eval/README.md (whole document, best 1000/200 chunk,
   keyword BM25 over those chunks, RRF k=60 of the two; `bench/quality_refs.py`, outside the
   product) are measured beside it with the same model. Their vectors go through the
   text-keyed cache of quality_refs (a vector depends only on the model and the text);
   ``--no-cache`` embeds them again.

One command for every set, from the repository root (the lead runs it alone; a fresh
pyfaq index takes ~5.5 min on 2 idle cores, the whole command ~14 min)::

    .venv/bin/python bench/build_sets.py /tmp/lodestar-sets
    .venv/bin/python bench/eval_quality.py --extra-sets /tmp/lodestar-sets --fresh

``--text-backend onnx-int8`` indexes and queries with that setting instead (issue 13.2:
quality of the int8 path against the default's figures).
"""

from __future__ import annotations

import argparse
import atexit
import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import EVAL_DIR, REPO, SCRATCH
from quality_refs import CACHE_ROOT, VectorCache, cache_for, model_embedder, references

STAMP = "bench-eval-stamp.json"
PRODUCT_CODE = ("indexer", "models", "pyproject.toml")


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, check=True, capture_output=True, text=True).stdout


def code_identity() -> dict[str, str]:
    """The commit, and a digest of uncommitted changes to the product's code (empty when clean)."""
    commit = _git("rev-parse", "HEAD").strip()
    diff = _git("diff", "HEAD", "--", *PRODUCT_CODE)
    untracked = _git("ls-files", "--others", "--exclude-standard", "--", *PRODUCT_CODE).split()
    h = hashlib.sha256(diff.encode())
    for rel in sorted(untracked):
        if rel.endswith(".py"):
            h.update(rel.encode() + b"\0" + (REPO / rel).read_bytes())
    return {"commit": commit, "uncommitted": h.hexdigest()[:16] if diff or untracked else ""}


def settings_digest(data_dir: Path) -> str:
    """Digest of the settings the index was built with (every field but the folder list)."""
    from indexer.library.settings import load_settings, open_paths

    s = load_settings(open_paths(data_dir))
    d = {k: v for k, v in dataclasses.asdict(s).items() if k not in ("folders", "problems", "invalid_fields")}
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]


def docs_digest(docs: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(docs.rglob("*")):
        if p.is_file():
            st = p.stat()
            h.update(f"{p.relative_to(docs).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def lodestar(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("lodestar")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "indexer.cli.main"]
    env = {**os.environ, "LODESTAR_DATA_DIR": str(data_dir)}
    return subprocess.run([*cmd, *args], env=env, capture_output=True, text=True)


def build_index(set_dir: Path, data_dir: Path, backend: str | None, fresh: bool) -> tuple[bool, float]:
    """(reused, seconds): index ``set_dir/docs`` into ``data_dir`` unless a matching stamp is there."""
    docs = (set_dir / "docs").resolve()
    want = {**code_identity(), "docs": docs_digest(docs), "text_backend": backend or "default"}
    stamp_file = data_dir / STAMP
    if data_dir.exists() and not fresh:
        try:
            have = json.loads(stamp_file.read_text())
        except (OSError, ValueError):
            have = None
        if have is not None and have.get("settings") == settings_digest(data_dir) and all(have.get(k) == v for k, v in want.items()):
            return True, 0.0
        why = "has no stamp" if have is None else ", ".join(
            f"{k} {have.get(k) or '-'} (now {v or '-'})" for k, v in {**want, "settings": settings_digest(data_dir)}.items()
            if have.get(k) != v
        )
        raise SystemExit(f"{data_dir} was not built by this checkout ({why}); rerun with --fresh to rebuild it")
    if data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True)
    if backend:
        (data_dir / "settings.json").write_text(json.dumps({"text_backend": backend}) + "\n")
    t = time.perf_counter()
    proc = lodestar("index", str(docs), data_dir=data_dir)
    seconds = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"lodestar index {docs} failed ({proc.returncode}): {(proc.stderr or proc.stdout).strip()[-400:]}")
    stamp = {**want, "settings": settings_digest(data_dir), "built": time.strftime("%Y-%m-%d %H:%M:%S"), "index_s": round(seconds, 1)}
    stamp_file.write_text(json.dumps(stamp, indent=2) + "\n")
    return False, seconds


def product_figures(set_dir: Path, data_dir: Path) -> dict[str, Any]:
    docs = (set_dir / "docs").resolve()
    proc = lodestar("eval", str(set_dir / "queries.jsonl"), "--root", str(docs), "--json", data_dir=data_dir)
    if proc.returncode != 0:
        raise SystemExit(f"lodestar eval failed for {set_dir} ({proc.returncode}): {(proc.stderr or proc.stdout).strip()[-400:]}")
    data = json.loads(proc.stdout)
    data.pop("queries", None)
    return data


def find_sets(names: list[str], eval_dir: Path, extra: Path | None) -> list[tuple[str, Path]]:
    out = [(n, eval_dir / n) for n in names if n]
    if extra is not None:
        out += [(p.name, p) for p in sorted(extra.iterdir()) if (p / "queries.jsonl").is_file() and (p / "docs").is_dir()]
    for _name, p in out:
        if not (p / "queries.jsonl").is_file():
            raise SystemExit(f"no labelled set at {p} (docs/ and queries.jsonl); see ../shared/eval/README.md")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default="pyfaq,pyfaq-long", help="sets under --eval-dir (comma-separated; '' for none)")
    ap.add_argument("--eval-dir", type=Path, default=EVAL_DIR)
    ap.add_argument("--extra-sets", type=Path, help="a folder of more sets (bench/build_sets.py output)")
    ap.add_argument("--work", type=Path, default=SCRATCH / "eval-quality", help="where the data directories are built")
    ap.add_argument("--fresh", action="store_true", help="rebuild every data directory")
    ap.add_argument("--text-backend", choices=("torch", "onnx", "onnx-int8"), help="index and query with this text_backend setting")
    ap.add_argument("--no-cache", action="store_true", help="embed the references' texts again (a fresh cache)")
    ap.add_argument("--no-refs", action="store_true", help="skip the references")
    ap.add_argument("--json", type=Path, help="also write every figure here")
    args = ap.parse_args()
    sets = find_sets(args.sets.split(","), args.eval_dir, args.extra_sets)
    ident = code_identity()
    print(f"commit {ident['commit'][:12]}{' + uncommitted ' + ident['uncommitted'] if ident['uncommitted'] else ''}; "
          f"text_backend {args.text_backend or 'default'}; load {os.getloadavg()[0]:.2f}", flush=True)
    embed = None
    cache: VectorCache | None = None
    if not args.no_refs:
        if args.no_cache:
            fresh = tempfile.mkdtemp(prefix="lodestar-qcache-")
            atexit.register(shutil.rmtree, fresh, True)
            cache = VectorCache(Path(fresh))
        else:
            cache = cache_for("torch", CACHE_ROOT)
    results: dict[str, Any] = {"code": ident, "text_backend": args.text_backend or "default", "sets": {}}
    for name, set_dir in sets:
        suffix = f"-{args.text_backend}" if args.text_backend else ""
        data_dir = args.work / f"{name}{suffix}"
        reused, secs = build_index(set_dir, data_dir, args.text_backend, args.fresh)
        print(f"{name}: {'reused ' + str(data_dir) + ' (same commit, code, settings, files)' if reused else f'indexed in {secs:.0f} s'}", flush=True)
        row: dict[str, Any] = {"product": product_figures(set_dir, data_dir), "data_dir": str(data_dir)}
        if cache is not None:
            try:
                row["refs"] = references(set_dir, cache, embed)
            except KeyError:
                embed = model_embedder("torch")
                row["refs"] = references(set_dir, cache, embed)
        results["sets"][name] = row
    print()
    head = f"{'set':<12} {'queries':>7}  {'Lodestar':>13}"
    if cache is not None:
        head += "".join(f"  {r:>13}" for r in ("whole doc", "best chunk", "keyword", "RRF")) + "  beats all"
    print(head)
    print(f"{'':<12} {'':>7}  {'MRR / R@10':>13}" + ("  " + "  ".join(f"{'MRR / R@10':>13}" for _ in range(4)) if cache is not None else ""))
    for name, row in results["sets"].items():
        p = row["product"]
        line = f"{name:<12} {p['n']:>7}  {p['mrr']:.3f} / {p['recall']:.3f}"
        if "refs" in row:
            refs = row["refs"]
            line += "".join(f"  {refs[r]['mrr']:.3f} / {refs[r]['recall']:.3f}" for r in ("whole", "chunk", "keyword", "rrf"))
            beats = all(p["mrr"] > r["mrr"] and p["recall"] > r["recall"] for r in refs.values())
            row["beats_all"] = beats
            line += f"  {'yes' if beats else 'no'}"
        print(line)
    print(f"load {os.getloadavg()[0]:.2f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
