"""More labelled retrieval sets, built from material already on this machine (docs/SEARCH.md).

Each set is a folder ``OUT/<set>/`` with ``docs/`` and ``queries.jsonl`` in the format of
``../shared/eval`` (``{"query": ..., "relevant": ["path relative to docs/"]}``), so
``lodestar index`` + ``lodestar eval`` and ``bench/eval_quality.py`` read them as they
read pyfaq. In every set the query was written by someone else, for another purpose,
independently of the document's text, and every other document of the set is a
distractor:

- ``pypkg``: installed Python distributions (``*.dist-info/METADATA`` of this
  interpreter's site-packages). Query: the one-line ``Summary:``; document: the long
  description, with any verbatim copy of the summary line removed. Descriptions under
  ``--min-chars`` and repeated summaries or descriptions are skipped.
- ``stdlib``: standard-library modules. Query: the first line of the module docstring;
  document: the rest of that docstring and the docstrings of its public classes,
  functions and methods (``def name(args)`` headers), as a reader of ``help()`` sees them.
- ``debdoc``: Debian packages' upstream READMEs under ``/usr/share/doc/<package>/``
  (``README``, ``README.md``, ``README.txt``, ``README.rst``, gzipped or not; never
  ``README.Debian`` or changelogs). Query: the package's one-line description
  (``dpkg-query ${binary:Summary}``). READMEs shared by several packages are kept once,
  for the first package by name.

File names are neutral (``doc-0001.txt``): a name never gives the answer away. Output is
deterministic for a given machine (sorted inputs, no randomness). Run from the repo root::

    .venv/bin/python bench/build_sets.py /tmp/lodestar-sets            # all three sets
    .venv/bin/python bench/build_sets.py /tmp/lodestar-sets --sets stdlib
    .venv/bin/python bench/build_sets.py tests/data/quality_pyfaq --pyfaq-subset ../shared/eval/pyfaq   # the CI slice

The sets are not committed (they depend on what is installed); the commands above rebuild
them, and ``bench/eval_quality.py --extra-sets DIR`` scores them beside pyfaq.
"""

from __future__ import annotations

import argparse
import ast
import email.parser
import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

SETS = ("pypkg", "stdlib", "debdoc")
MIN_CHARS = 600  # documents shorter than this are not documents (a license line, a stub)
MAX_CHARS = 60_000  # longer ones are cut: a README is not a manual
MIN_QUERY_WORDS = 3


def _norm(s: str) -> str:
    return " ".join(s.split()).strip()


def _digest(s: str) -> str:
    return hashlib.blake2b(_norm(s).lower().encode(), digest_size=12).hexdigest()


def _strip_line(doc: str, line: str) -> str:
    """``doc`` without verbatim copies of ``line`` (whitespace-insensitive, any case)."""
    target = _norm(line).lower().rstrip(".")
    if not target:
        return doc
    kept = [ln for ln in doc.splitlines() if _norm(ln).lower().strip("#*=- ").rstrip(".") != target]
    return "\n".join(kept)


def _clean_query(q: str) -> str:
    q = _norm(q)
    return q


def _ok_query(q: str) -> bool:
    return len(re.findall(r"[A-Za-z]{2,}", q)) >= MIN_QUERY_WORDS and len(q) <= 300


# ------------------------------------------------------------------ pypkg
def pypkg_pairs(site_packages: Path) -> Iterator[tuple[str, str]]:
    parser = email.parser.Parser()
    for meta in sorted(site_packages.glob("*.dist-info/METADATA")):
        try:
            msg = parser.parsestr(meta.read_text(encoding="utf-8", errors="replace"))
        except (OSError, UnicodeError):
            continue
        summary = _clean_query(msg.get("Summary") or "")
        body = msg.get_payload()
        if not isinstance(body, str) or not body.strip():
            body = msg.get("Description") or ""
        if not isinstance(body, str):
            continue
        yield summary, _strip_line(body, summary)


# ------------------------------------------------------------------ stdlib
def _signature(node: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    try:
        return f"{node.name}({ast.unparse(node.args)})"
    except (ValueError, TypeError):
        return f"{node.name}(...)"


def _public(name: str) -> bool:
    return not name.startswith("_") or (name.startswith("__") and name.endswith("__") and name == "__init__")


def module_document(tree: ast.Module) -> tuple[str, str] | None:
    """(first line of the module docstring, the rest + public docstrings) or None."""
    doc = ast.get_docstring(tree)
    if not doc:
        return None
    lines = doc.strip().splitlines()
    query = _clean_query(lines[0])
    parts = ["\n".join(lines[1:]).strip()]
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _public(node.name):
            d = ast.get_docstring(node)
            if d:
                parts.append(f"def {_signature(node)}\n\n{d}")
        elif isinstance(node, ast.ClassDef) and _public(node.name):
            d = ast.get_docstring(node)
            parts.append(f"class {node.name}\n\n{d or ''}".rstrip())
            for sub in node.body:
                if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)) and _public(sub.name):
                    sd = ast.get_docstring(sub)
                    if sd:
                        parts.append(f"def {node.name}.{_signature(sub)}\n\n{sd}")
    return query, "\n\n".join(p for p in parts if p)


def stdlib_pairs(stdlib: Path) -> Iterator[tuple[str, str]]:
    skip = {"test", "tests", "idlelib", "lib2to3", "site-packages", "turtledemo", "ensurepip", "__pycache__"}
    for path in sorted(stdlib.rglob("*.py")):
        rel = path.relative_to(stdlib)
        if any(p in skip or p.startswith("_") and p != "__init__.py" for p in rel.parts):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (OSError, SyntaxError, UnicodeError, ValueError):
            continue
        got = module_document(tree)
        if got is not None:
            yield got


# ------------------------------------------------------------------ debdoc
_README = re.compile(r"^README(\.(md|txt|rst))?(\.gz)?$")


def _summaries() -> dict[str, str]:
    try:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f", "${Package}\t${binary:Summary}\n"],
            check=True, capture_output=True, text=True, timeout=60,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    pairs = (line.split("\t", 1) for line in out.splitlines() if "\t" in line)
    return {p: s for p, s in pairs}


def debdoc_pairs(doc_root: Path) -> Iterator[tuple[str, str]]:
    summaries = _summaries()
    for pkg in sorted(summaries):
        folder = doc_root / pkg
        if folder.is_symlink() or not folder.is_dir():
            continue  # a link to another package's docs: that package speaks for them
        try:
            names = sorted(n for n in os.listdir(folder) if _README.match(n))
        except OSError:
            continue
        texts = []
        for name in names:
            p = folder / name
            if p.is_symlink() or not p.is_file():
                continue
            try:
                raw = gzip.decompress(p.read_bytes()) if name.endswith(".gz") else p.read_bytes()
            except (OSError, EOFError, gzip.BadGzipFile):
                continue
            texts.append(raw.decode("utf-8", errors="replace"))
        if texts:
            summary = summaries[pkg]
            yield _clean_query(summary), _strip_line("\n\n".join(texts), summary)


# ------------------------------------------------------------------ writing
def write_set(out: Path, name: str, pairs: Iterator[tuple[str, str]], ext: str) -> dict[str, int]:
    root = out / name
    if root.exists():
        shutil.rmtree(root)
    (root / "docs").mkdir(parents=True)
    seen_q: set[str] = set()
    seen_d: set[str] = set()
    lines = []
    skipped = 0
    for query, doc in pairs:
        doc = doc.strip()
        if len(doc) > MAX_CHARS:
            doc = doc[:MAX_CHARS]
        qk, dk = _digest(query), _digest(doc)
        if not _ok_query(query) or len(doc) < MIN_CHARS or qk in seen_q or dk in seen_d:
            skipped += 1
            continue
        seen_q.add(qk)
        seen_d.add(dk)
        rel = f"doc-{len(lines) + 1:04d}.{ext}"
        (root / "docs" / rel).write_text(doc + "\n", encoding="utf-8")
        lines.append(json.dumps({"query": query, "relevant": [rel]}, ensure_ascii=False))
    (root / "queries.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {"queries": len(lines), "skipped": skipped, "bytes": sum(p.stat().st_size for p in (root / "docs").iterdir())}


# ------------------------------------------------------------------ pyfaq subset (the CI floor)
_SLICE_README = """# quality_pyfaq: the CI slice of the pyfaq set

40 queries (every 108/40-th FAQ question of `../shared/eval/pyfaq`), their 40 answers and
40 reference pages of at most 2,500 bytes as distractors, taken deterministically by

    .venv/bin/python bench/build_sets.py tests/data/quality_pyfaq --pyfaq-subset ../shared/eval/pyfaq

From the Python 3.11 documentation (Debian package `python3.11-doc`), under the PSF
license. Used by `tests/integration/test_quality_floor.py`; see docs/SEARCH.md.
"""


def pyfaq_subset(src: Path, out: Path, n_queries: int = 40, n_distractors: int = 40, max_bytes: int = 2_500) -> dict[str, int]:
    """A fixed slice of pyfaq for tests/integration/test_quality_floor.py: every
    (108 / n)-th query with its answer, and ``n_distractors`` reference pages of at most
    ``max_bytes`` spread evenly over the sorted list (small enough to index in CI)."""
    queries = [json.loads(line) for line in (src / "queries.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    picked = [queries[i * len(queries) // n_queries] for i in range(n_queries)]
    answers = {p for q in picked for p in q["relevant"]}
    pages = sorted(
        p.relative_to(src / "docs").as_posix()
        for p in (src / "docs").rglob("*.txt")
        if not p.relative_to(src / "docs").as_posix().startswith("faq/") and p.stat().st_size <= max_bytes
    )
    distractors = [pages[i * len(pages) // n_distractors] for i in range(n_distractors)]
    if out.exists():
        shutil.rmtree(out)
    for rel in sorted(answers) + distractors:
        (out / "docs" / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src / "docs" / rel, out / "docs" / rel)
    (out / "queries.jsonl").write_text("".join(json.dumps(q, ensure_ascii=False) + "\n" for q in picked), encoding="utf-8")
    (out / "README.md").write_text(_SLICE_README, encoding="utf-8")  # where it comes from, and its license
    return {"queries": len(picked), "skipped": 0, "bytes": sum(p.stat().st_size for p in (out / "docs").rglob("*") if p.is_file())}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path, help="folder to write the sets into (each set's folder is replaced)")
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--site-packages", type=Path, default=Path(sysconfig.get_paths()["purelib"]))
    ap.add_argument("--stdlib", type=Path, default=Path(sysconfig.get_paths()["stdlib"]))
    ap.add_argument("--doc-root", type=Path, default=Path("/usr/share/doc"))
    ap.add_argument("--pyfaq-subset", type=Path, metavar="PYFAQ",
                    help="instead: write the fixed 40-query pyfaq slice of the CI floor test from PYFAQ into OUT")
    args = ap.parse_args()
    if args.pyfaq_subset:
        stats = pyfaq_subset(args.pyfaq_subset, args.out)
        print(f"pyfaq subset: {stats['queries']} queries, {stats['bytes'] / 1e3:.0f} kB -> {args.out}")
        return 0
    makers = {
        "pypkg": lambda: write_set(args.out, "pypkg", pypkg_pairs(args.site_packages), "md"),
        "stdlib": lambda: write_set(args.out, "stdlib", stdlib_pairs(args.stdlib), "txt"),
        "debdoc": lambda: write_set(args.out, "debdoc", debdoc_pairs(args.doc_root), "txt"),
    }
    for name in args.sets.split(","):
        if name not in makers:
            print(f"unknown set {name!r}; the sets are {', '.join(SETS)}", file=sys.stderr)
            return 2
        stats = makers[name]()
        print(f"{name:<8} {stats['queries']:>5} queries  {stats['bytes'] / 1e6:6.2f} MB  ({stats['skipped']} skipped)  -> {args.out / name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
