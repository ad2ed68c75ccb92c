"""Scanner: exclusions, symlinks, special files, odd names, permissions, speed."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from indexer.ingest.scan import Exclusions, GitIgnore, scan_root, stat_file
from indexer.library.settings import IGNORE_MARKER, Settings
from tests.support.timing import cpu_seconds


def _touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _scan(root: Path, settings: Settings | None = None, data_dir: Path | None = None):
    skipped: list[tuple[str, str]] = []
    files = list(scan_root(str(root), settings or Settings(), data_dir, on_skip=lambda p, r: skipped.append((p, r))))
    return {os.path.relpath(f.path, root) for f in files}, files, skipped


def test_basic_walk_kinds_and_sizes(tmp_path: Path) -> None:
    _touch(tmp_path / "a.txt", b"hello")
    _touch(tmp_path / "sub" / "deep" / "b.PNG", b"12")
    _touch(tmp_path / "sub" / "c.bin", b"")
    rels, files, skipped = _scan(tmp_path)
    assert rels == {"a.txt", "sub/deep/b.PNG", "sub/c.bin"}
    by = {os.path.basename(f.path): f for f in files}
    assert by["a.txt"].kind == "text" and by["a.txt"].size == 5
    assert by["b.PNG"].kind == "image"
    assert by["c.bin"].kind == "other"
    assert all(f.root == str(tmp_path) and f.mtime_ns > 0 for f in files)
    assert skipped == []


def test_default_excludes_hidden_and_user_globs(tmp_path: Path) -> None:
    _touch(tmp_path / "keep.md")
    _touch(tmp_path / "node_modules" / "x.js")
    _touch(tmp_path / ".git" / "config")
    _touch(tmp_path / ".hidden" / "secret.txt")
    _touch(tmp_path / ".env.txt")
    _touch(tmp_path / "proj" / "__pycache__" / "m.pyc")
    _touch(tmp_path / "proj" / "pkg.egg-info" / "PKG-INFO")
    _touch(tmp_path / "notes.swp")
    _touch(tmp_path / "drafts" / "a.txt")
    _touch(tmp_path / "big.iso")
    settings = Settings(excludes=["*.iso", "drafts"])
    rels, _, _ = _scan(tmp_path, settings)
    assert rels == {"keep.md"}
    rels, _, _ = _scan(tmp_path, Settings(skip_hidden=False))
    assert ".hidden/secret.txt" in rels and ".env.txt" in rels
    assert ".git/config" not in rels  # .git is a default exclude regardless of hidden


def test_gitignore_scoped_anchored_dir_only_negation(tmp_path: Path) -> None:
    _touch(tmp_path / ".gitignore", b"*.log\n!keep.log\n/top.txt\nout/\n# comment\n\ndocs/**/gen\n")
    _touch(tmp_path / "a.log")
    _touch(tmp_path / "keep.log")
    _touch(tmp_path / "top.txt")
    _touch(tmp_path / "sub" / "top.txt")  # anchored pattern: only at the .gitignore's level
    _touch(tmp_path / "out" / "o.txt")
    _touch(tmp_path / "sub" / "out")  # a *file* named out: dir-only pattern must not match
    _touch(tmp_path / "docs" / "a" / "b" / "gen" / "x.md")
    _touch(tmp_path / "docs" / "real.md")
    _touch(tmp_path / "proj" / ".gitignore", b"secret.txt\n")
    _touch(tmp_path / "proj" / "secret.txt")
    _touch(tmp_path / "other" / "secret.txt")  # sibling folder: not in the scope of proj/.gitignore
    rels, _, _ = _scan(tmp_path)
    assert rels == {"keep.log", "sub/top.txt", "sub/out", "docs/real.md", "other/secret.txt"}
    rels, _, _ = _scan(tmp_path, Settings(honour_gitignore=False))
    assert {"a.log", "top.txt", "out/o.txt", "proj/secret.txt"} <= rels


def test_gitignore_matcher_unit() -> None:
    gi = GitIgnore("/r", ["**/tmp", "a/**/z.txt", "*.o", "!important.o", "lib/*.c", "f?o.txt", "x[0-9].md"])
    assert gi.match("/r/tmp", True) and gi.match("/r/q/w/tmp", True)
    assert gi.match("/r/a/z.txt", False) and gi.match("/r/a/b/c/z.txt", False)
    assert gi.match("/r/deep/m.o", False) is True
    assert gi.match("/r/important.o", False) is False
    assert gi.match("/r/lib/m.c", False) and gi.match("/r/lib/sub/m.c", False) is None
    assert gi.match("/r/foo.txt", False) and gi.match("/r/fooo.txt", False) is None
    assert gi.match("/r/x1.md", False) and gi.match("/r/xa.md", False) is None


def test_ignore_marker_skips_tree(tmp_path: Path) -> None:
    _touch(tmp_path / "a.txt")
    _touch(tmp_path / "private" / IGNORE_MARKER, b"")
    _touch(tmp_path / "private" / "diary.txt")
    _touch(tmp_path / "private" / "deeper" / "more.txt")
    rels, _, _ = _scan(tmp_path)
    assert rels == {"a.txt"}
    excl = Exclusions(Settings(), None, roots=[str(tmp_path)])
    assert excl.is_excluded(str(tmp_path / "private" / "deeper" / "more.txt"), False)
    assert excl.is_excluded(str(tmp_path / "private"), True)
    assert not excl.is_excluded(str(tmp_path / "a.txt"), False)


def test_data_dir_inside_root_is_never_scanned(tmp_path: Path) -> None:
    data = tmp_path / "lodestar-data"
    _touch(data / "index.lance" / "data.txt")
    _touch(data / "settings.json")
    _touch(tmp_path / "mine.txt")
    rels, _, _ = _scan(tmp_path, data_dir=data)
    assert rels == {"mine.txt"}
    excl = Exclusions(Settings(), data, roots=[str(tmp_path)])
    assert excl.is_excluded(str(data / "index.lance" / "data.txt"), False)
    assert excl.is_excluded(str(data), True)


def test_is_excluded_matches_walk_for_event_paths(tmp_path: Path) -> None:
    root = tmp_path / ".visible-root"  # a hidden root itself is fine: only parts below count
    _touch(root / ".gitignore", b"*.bak\nbuild-out/\n")
    _touch(root / "x.bak")
    _touch(root / "build-out" / "y.txt")
    _touch(root / "node_modules" / "pkg" / "i.js")
    _touch(root / "ok" / "z.txt")
    excl = Exclusions(Settings(), None, roots=[str(root)])
    rels, _, _ = _scan(root)
    assert rels == {"ok/z.txt"}
    for p, d in [("x.bak", False), ("build-out/y.txt", False), ("node_modules/pkg/i.js", False), ("build-out", True)]:
        assert excl.is_excluded(str(root / p), d), p
    assert not excl.is_excluded(str(root / "ok" / "z.txt"), False)
    assert not excl.is_excluded(str(root / "ok"), True)
    assert any("gitignore" in line for line in excl.describe())


def test_symlinks_never_followed_and_reported(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    _touch(outside / "id_rsa", b"secret")
    root = tmp_path / "root"
    _touch(root / "real.txt")
    os.symlink(outside / "id_rsa", root / "leak.txt")
    os.symlink(outside, root / "linkdir")
    os.symlink(root / "nowhere", root / "dangling.txt")
    os.symlink("..", root / "loop")
    rels, _, skipped = _scan(root)
    assert rels == {"real.txt"}
    reasons = {os.path.basename(p): r for p, r in skipped}
    assert set(reasons) == {"leak.txt", "linkdir", "dangling.txt", "loop"}
    assert all("symbolic link" in r for r in reasons.values())
    # stat_file refuses paths reached through a symlinked folder or that are symlinks.
    assert stat_file(str(root / "linkdir" / "id_rsa"), str(root)) is None
    assert stat_file(str(root / "leak.txt"), str(root)) is None
    assert stat_file(str(root / "real.txt"), str(root)) is not None
    assert stat_file(str(outside / "id_rsa"), str(root)) is None  # outside the root
    assert stat_file(str(root / "missing.txt"), str(root)) is None


def test_fifo_reported_not_opened(tmp_path: Path) -> None:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this platform")
    os.mkfifo(tmp_path / "pipe.txt")
    _touch(tmp_path / "a.txt")
    rels, _, skipped = _scan(tmp_path)  # would block forever if it opened the FIFO
    assert rels == {"a.txt"}
    assert skipped and "FIFO" in skipped[0][1]
    assert stat_file(str(tmp_path / "pipe.txt"), str(tmp_path)) is None


def test_odd_names_round_trip(tmp_path: Path) -> None:
    if sys.platform == "darwin":
        pytest.skip("APFS rejects invalid UTF-8 names")
    raw = os.fsencode(str(tmp_path)) + b"/bad_\xff.txt"
    with open(raw, "wb") as fh:
        fh.write(b"x")
    _touch(tmp_path / "new\nline.txt")
    _touch(tmp_path / "Icon\r")
    _touch(tmp_path / "O'Brien \u202egnp.txt")
    _, files, skipped = _scan(tmp_path)
    assert skipped == []
    assert len(files) == 4
    encoded = {os.fsencode(f.path) for f in files}
    assert raw in encoded  # surrogateescape round-trips to the exact bytes
    for f in files:
        assert os.path.exists(f.path)
        assert stat_file(f.path, str(tmp_path)) == f


def test_permission_denied_reported_walk_continues(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _touch(tmp_path / "locked" / "x.txt")
    _touch(tmp_path / "open" / "y.txt")
    locked = str(tmp_path / "locked")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # root ignores mode bits: simulate the kernel's answer instead.
        real_scandir = os.scandir

        def scandir(path):  # type: ignore[no-untyped-def]
            if os.fspath(path) == locked:
                raise PermissionError(13, "Permission denied", locked)
            return real_scandir(path)

        monkeypatch.setattr("indexer.ingest.scan.os.scandir", scandir)
    os.chmod(locked, 0)
    try:
        rels, _, skipped = _scan(tmp_path)
    finally:
        os.chmod(locked, 0o700)
    assert rels == {"open/y.txt"}
    assert [os.path.basename(p) for p, _ in skipped] == ["locked"]
    assert "Permission denied" in skipped[0][1]


def test_missing_root_reported(tmp_path: Path) -> None:
    rels, _, skipped = _scan(tmp_path / "gone")
    assert rels == set() and len(skipped) == 1


def test_deep_tree_no_recursion_limit(tmp_path: Path) -> None:
    p = tmp_path
    for i in range(60):  # deep enough to prove iteration; PATH_MAX bounds real depth
        p = p / f"d{i}"
    _touch(p / "leaf.txt")
    rels, _, _ = _scan(tmp_path)
    assert len(rels) == 1


def test_scan_speed_10k_files(tmp_path: Path) -> None:
    for d in range(100):
        sub = tmp_path / f"dir{d:03}"
        sub.mkdir()
        for f in range(100):
            (sub / f"f{f:03}.txt").touch()
    t0 = time.perf_counter()
    n = sum(1 for _ in scan_root(str(tmp_path), Settings(), None))
    elapsed = time.perf_counter() - t0
    assert n == 10_000
    assert elapsed < 5.0, f"scanning 10k files took {elapsed:.2f}s"


def test_subfolder_rescan_applies_parent_gitignore(tmp_path: Path) -> None:
    _touch(tmp_path / ".gitignore", b"*.log\n")
    _touch(tmp_path / "a" / ".gitignore", b"secret/\n")
    _touch(tmp_path / "a" / "b" / "x.log")
    _touch(tmp_path / "a" / "b" / "secret" / "k.txt")
    _touch(tmp_path / "a" / "b" / "keep.txt")
    settings = Settings(folders=[str(tmp_path)])
    full = {f.path for f in scan_root(str(tmp_path), settings, None)}
    sub = {f.path for f in scan_root(str(tmp_path / "a" / "b"), settings, None)}
    assert sub == full == {str(tmp_path / "a" / "b" / "keep.txt")}


@pytest.mark.slow
def test_scan_speed_100k_files(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """The figure in docs/EXTRACTION.md: `pytest -m slow -s tests/unit/test_scan.py -k 100k`."""
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("benchmark: run with -m slow")
    for d in range(1000):
        sub = tmp_path / f"d{d // 100:02}" / f"s{d:04}"
        sub.mkdir(parents=True)
        for f in range(100):
            (sub / f"file{f:03}.{('txt', 'jpg', 'md', 'bin')[f % 4]}").touch()
    t0 = time.perf_counter()
    n = sum(1 for _ in scan_root(str(tmp_path), Settings(), None))
    scan_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    m = 0
    for dirpath, _dirs, names in os.walk(tmp_path):
        for name in names:
            os.lstat(os.path.join(dirpath, name))
            m += 1
    walk_s = time.perf_counter() - t0
    print(f"\nscan_root: {n} files in {scan_s:.2f} s; bare os.walk+lstat: {walk_s:.2f} s")
    assert n == m == 100_000
    assert scan_s < 30


def test_scan_never_opens_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _touch(tmp_path / "a.txt")
    _touch(tmp_path / "sub" / "b.jpg")
    _touch(tmp_path / ".gitignore", b"*.log\n")  # the one file the walk may read
    real_open = os.open
    opened: list[str] = []

    def spy(path, flags, *a):  # type: ignore[no-untyped-def]
        opened.append(os.fspath(path))
        return real_open(path, flags, *a)

    monkeypatch.setattr(os, "open", spy)
    monkeypatch.setattr("builtins.open", lambda *a, **k: pytest.fail(f"open({a[0]!r}) during scan"))
    rels, _, _ = _scan(tmp_path)
    assert rels == {"a.txt", "sub/b.jpg"}
    assert opened == [str(tmp_path / ".gitignore")]


def test_hostile_gitignore_patterns_match_in_linear_time() -> None:
    """Issue 11.3 (every regex on input is linear): a .gitignore is input too. As one
    regex, ``a*a*a*a*a*a*b`` against a 255-letter name backtracked for minutes."""
    gi = GitIgnore("/r", ["a*a*a*a*a*a*b", "**/a*a*a*a*a*a*b/**", "x/**/x/**/x/**/y", "*a**a**a**a**b*", "[z-a]"])
    for rel in ("a" * 255, "a/" * 2000 + "a" * 255, "x/" * 2000 + "z", "ab" * 120 + "a/" + "a" * 200):
        assert gi.match("/r/" + rel, False) is None
        assert cpu_seconds(gi.match, "/r/" + rel, False) < 0.5, rel[:20]
    assert gi.match("/r/" + "a" * 250 + "b", False) is True
    assert gi.match("/r/x/q/x/x/w/y", False) is True


@settings(max_examples=300, deadline=None)
@given(glob=st.text(alphabet="ab*?", min_size=1, max_size=8), name=st.text(alphabet="ab", max_size=10))
def test_gitignore_name_globs_agree_with_fnmatch(glob: str, name: str) -> None:
    import fnmatch

    from indexer.ingest.scan import _segment_regex

    assert bool(_segment_regex(glob).fullmatch(name)) == fnmatch.fnmatchcase(name, glob), (glob, name)
