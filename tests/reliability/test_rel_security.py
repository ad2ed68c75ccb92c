"""Promises 8, 9 and 11: boundaries, privacy and no local attack surface.

Covered elsewhere, by the owners of those parts (referenced in docs/RELIABILITY.md):
the window's opener refuses paths outside the roots (tests/gui/test_window.py::
test_open_refuses_path_outside_roots, tests/gui/test_components.py::test_opener_containment),
names and passages render as plain text (tests/gui/test_components.py::
test_preview_renders_metadata_literally, ::test_model_text_is_plain), and weights load
from safetensors only (tests/integration/test_weights.py::test_pickled_object_is_refused_without_running_it,
::test_models_never_unpickle_or_trust_remote_code).
"""

from __future__ import annotations

import io
import os
import socket
import stat
from pathlib import Path
from typing import Any

import pytest

from tests.support import nasty
from tests.support.rel_stack import Stack, make_stack


def _modes(top: Path) -> dict[str, int]:
    out = {str(top): stat.S_IMODE(top.stat().st_mode)}
    for dirpath, dirs, files in os.walk(top):
        for n in dirs + files:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            if not stat.S_ISLNK(st.st_mode):
                out[p] = stat.S_IMODE(st.st_mode)
    return out


def test_private_permissions_reasserted_on_every_start(tmp_path: Path) -> None:
    old = os.umask(0o022)  # a typical desktop umask: new files would be world-readable
    try:
        s = make_stack(tmp_path)
        (s.root / "a.txt").write_text("private letter about the orchard", encoding="utf-8")
        (s.root / "p.jpg").write_bytes(nasty.rotated_photo())
        s.service.index_roots([str(s.root)])
        s.store.close()
        data = s.paths.data_dir
        # Loosen things the way a backup restore or a careless copy would.
        os.chmod(data, 0o755)
        os.chmod(data / "settings.json", 0o644)
        thumb = next(s.paths.thumbnails.iterdir())
        os.chmod(thumb, 0o644)
        some_data_file = next(p for p in s.paths.store.rglob("*.lance") if p.is_file())
        os.chmod(some_data_file, 0o666)
        os.chmod(s.paths.store, 0o775)
        assert any(m & 0o077 for m in _modes(data).values())

        # The next start goes through the real start-up path: open_runtime tightens what
        # is there, and the Runtime's umask makes what it writes from now on private too.
        from indexer.library.runtime import open_runtime
        from tests.support.fakes import HashImageEmbedder, HashTextEmbedder

        os.umask(0o022)
        rt = open_runtime(data)
        rt._text, rt._image = HashTextEmbedder(), HashImageEmbedder()
        try:
            (s.root / "b.txt").write_text("another letter, written after the restart", encoding="utf-8")
            (s.root / "q.jpg").write_bytes(nasty.rotated_photo()[:-2] + b"\xff\xd9")
            rt.service().index_roots([str(s.root)])
        finally:
            rt.close()
        loose = {p: oct(m) for p, m in _modes(data).items() if m & 0o077}
        assert not loose, loose
        assert stat.S_IMODE(data.stat().st_mode) == 0o700
        assert stat.S_IMODE((data / "settings.json").stat().st_mode) == 0o600
    finally:
        os.umask(old)


def test_symlinks_never_lead_outside_the_roots(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("the vault combination is zebra quasar", encoding="utf-8")
    (outside / "inner").mkdir()
    (outside / "inner" / "deep.txt").write_text("zebra quasar deep secret", encoding="utf-8")
    s = make_stack(tmp_path)
    (s.root / "mine.txt").write_text("my own notes about gardening", encoding="utf-8")
    (s.root / "link.txt").symlink_to(outside / "secret.txt")
    (s.root / "linkdir").symlink_to(outside, target_is_directory=True)

    s.service.index_roots([str(s.root)])
    # The watcher hands over any path it saw: the link, the linked folder, and paths
    # *through* the linked folder (which os.lstat would happily follow).
    s.service.sync_paths([
        str(s.root / "link.txt"),
        str(s.root / "linkdir"),
        str(s.root / "linkdir" / "secret.txt"),
        str(s.root / "linkdir" / "inner"),
        str(s.root / "linkdir" / "inner" / "deep.txt"),
    ])
    indexed = {r.path for r in s.store.files().values()}
    assert indexed == {str(s.root / "mine.txt")}, indexed
    assert not s.searcher().search("zebra quasar vault combination").results
    s.store.close()


def test_no_network_and_no_listening_socket(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """Index, search, similar and optimize: no connection out, no socket bound or listening."""
    calls: list[tuple[str, int, Any]] = []
    real_bind, real_listen, real_connect = socket.socket.bind, socket.socket.listen, socket.socket.connect

    def bind(self: socket.socket, address: Any) -> Any:
        calls.append(("bind", self.family, address))
        return real_bind(self, address)

    def listen(self: socket.socket, *args: Any) -> Any:
        calls.append(("listen", self.family, args))
        return real_listen(self, *args)

    def connect(self: socket.socket, address: Any) -> Any:
        calls.append(("connect", self.family, address))
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "bind", bind)
    monkeypatch.setattr(socket.socket, "listen", listen)
    monkeypatch.setattr(socket.socket, "connect", connect)
    s = stack
    (s.root / "a.txt").write_text("notes about the northern lights", encoding="utf-8")
    (s.root / "p.jpg").write_bytes(nasty.rotated_photo())
    (s.root / "d.pdf").write_bytes(nasty.minimal_pdf(["A tiny pdf about aurora."]))  # the document sandbox too
    s.service.index_roots([str(s.root)])
    s.service.sync_paths([str(s.root / "a.txt")])
    searcher = s.searcher()
    assert searcher.search("northern lights").results
    assert searcher.similar_to(str(s.root / "p.jpg")).results is not None
    s.service.optimize()
    bad = [c for c in calls if c[1] != socket.AF_UNIX]
    assert not bad, bad


def test_stored_thumbnail_carries_no_exif_gps_or_text(stack: Stack) -> None:
    from PIL import Image

    s = stack
    photo = nasty.rotated_photo()
    assert b"Exif" in photo and b"passwd" in photo  # the source has EXIF, GPS and a description
    (s.root / "holiday.jpg").write_bytes(photo)
    s.service.index_roots([str(s.root)])
    rec = s.store.get_file(str(s.root / "holiday.jpg"))
    assert rec is not None and rec.state == "indexed"
    row = s.store.image_row(rec.fid, rec.content_hash)
    assert row is not None
    data = (s.paths.thumbnails / row.thumb).read_bytes()
    img = Image.open(io.BytesIO(data))
    assert img.format == "PNG"
    assert not img.info.get("exif") and not img.getexif()
    assert not {k for k in img.info if k not in ("dpi", "gamma", "transparency")}, img.info
    # No metadata chunk of any kind survives in the file itself.
    for chunk in (b"eXIf", b"tEXt", b"iTXt", b"zTXt", b"iCCP"):
        assert chunk not in data, chunk
    assert b"passwd" not in data and b"Exif" not in data
    assert stat.S_IMODE((s.paths.thumbnails / row.thumb).stat().st_mode) == 0o600


def test_user_files_are_never_modified(stack: Stack) -> None:
    """Promise 3: index, sync, optimize, search and removing a folder leave the user's files as they were."""
    s = stack
    (s.root / "a.txt").write_text("letters from the lighthouse", encoding="utf-8")
    (s.root / "sub").mkdir()
    (s.root / "sub" / "p.jpg").write_bytes(nasty.rotated_photo())
    (s.root / "sub" / "d.pdf").write_bytes(nasty.minimal_pdf(["A pdf about tides."]))
    (s.root / "broken.docx").write_bytes(b"PK\x03\x04 not a zip")

    def snapshot() -> dict[str, tuple[bytes, int, int]]:
        out = {}
        for p in sorted(s.root.rglob("*")):
            st_ = p.lstat()
            out[str(p)] = (p.read_bytes() if p.is_file() else b"", st_.st_mtime_ns, st_.st_mode)
        return out

    before = snapshot()
    s.service.index_roots([str(s.root)])
    s.service.sync_paths([str(s.root / "a.txt"), str(s.root / "sub")])
    s.searcher().search("lighthouse tides")
    s.service.optimize()
    s.service.remove_root(str(s.root))
    assert snapshot() == before
    assert {p.name for p in s.root.rglob("*")} == {"a.txt", "sub", "p.jpg", "d.pdf", "broken.docx"}
