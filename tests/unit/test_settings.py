"""A damaged settings file (or any damaged file in the data directory) never stops a
command: each wrong value falls back to its default with one clear line, every valid
one is kept, and the file as it was is kept aside before anything rewrites it."""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

import indexer.cli.main as cli
from indexer.library.settings import (
    DEVICES,
    SETTINGS_FILE,
    TEXT_BACKENDS,
    AppPaths,
    Settings,
    load_settings,
    open_paths,
    save_settings,
    set_reporter,
)

BOOLS = ("allow_download", "skip_hidden", "honour_gitignore", "start_at_login", "keep_running_in_tray", "welcome_done")
NUMBERS = ("max_text_mb", "max_text_file_mb", "max_document_mb", "max_image_mb", "reconcile_interval_s")


def _asides(paths: AppPaths) -> list[Path]:
    return sorted(paths.data_dir.glob(SETTINGS_FILE + ".bad-*"))


def _assert_sound(s: Settings) -> None:
    """Every field has its declared type and a usable value."""
    assert isinstance(s.folders, list) and all(isinstance(f, str) and os.path.isabs(f) for f in s.folders)
    assert isinstance(s.excludes, list) and all(isinstance(e, str) and e.strip() for e in s.excludes)
    for name in BOOLS:
        assert type(getattr(s, name)) is bool, name
    for name in NUMBERS:
        value = getattr(s, name)
        assert type(value) is float and math.isfinite(value) and value >= 0, name
        assert value > 0 or name == "reconcile_interval_s", name
    assert s.device in DEVICES or s.device.startswith("cuda:")
    assert s.text_backend in TEXT_BACKENDS
    for name in ("text_model", "clip_model"):
        assert isinstance(getattr(s, name), str) and getattr(s, name).strip()
    assert isinstance(s.clip_pretrained, str)
    assert s.clip_checkpoint == "" or os.path.isabs(s.clip_checkpoint)


# -- the cases from the issue, through the CLI -----------------------------------------------
BROKEN = {
    "not utf-8": b'{"folders": ["/data/caf\xe9"]}',
    "folders a number": b'{"folders": 5}',
    "folders a string": b'{"folders": "/some/path"}',
    "max_text_mb a string": b'{"max_text_mb": "x"}',
    "not json": b'{"folders": [',
    "a list": b'["/some/path"]',
    "nan": b'{"max_image_mb": NaN}',
    "deep": b"[" * 50_000,
}


@pytest.mark.parametrize("content", list(BROKEN.values()), ids=list(BROKEN))
def test_broken_settings_never_stop_a_command(tmp_path: Path, content: bytes, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    paths = open_paths(data)
    paths.settings.write_bytes(content)
    assert cli.main(["folders", "list", "--data-dir", str(data)]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err, "the person is told"
    assert len(err) == len(set(err)), "each line once"
    assert all(line.startswith("lodestar: settings.json") for line in err)
    assert "using the default" in err[0]
    (aside,) = _asides(paths)
    assert aside.read_bytes() == content, "the bad file is kept as it was"
    assert str(aside) in err[-1]
    # Reading it again (another command, the watcher's poll) keeps no second copy.
    load_settings(paths)
    assert _asides(paths) == [aside]


def test_a_string_folder_is_not_split_into_characters(tmp_path: Path) -> None:
    paths = open_paths(tmp_path / "data")
    paths.settings.write_text(json.dumps({"folders": "/some/path"}), encoding="utf-8")
    s = load_settings(paths)
    assert s.folders == [] and "/" not in s.folders
    assert s.invalid_fields == {"folders"}
    assert any('`folders` must be a list of absolute folder paths, not "/some/path"' in p for p in s.problems)


def test_a_partly_wrong_file_keeps_every_valid_value(tmp_path: Path) -> None:
    paths = open_paths(tmp_path / "data")
    original = {
        "folders": ["/home/me/Documents", "relative/path", 7, "/home/me/Pictures"],
        "excludes": ["*.log", ""],
        "max_text_mb": "x",
        "max_image_mb": 12,
        "skip_hidden": "no",
        "honour_gitignore": False,
        "device": "tpu",
        "text_backend": "onnx",
        "reconcile_interval_s": -5,
        "clip_checkpoint": "weights.safetensors",
        "welcome_done": True,
        "from_a_newer_version": {"kept": [1, 2]},
    }
    raw = json.dumps(original).encode()
    paths.settings.write_bytes(raw)
    s = load_settings(paths)
    _assert_sound(s)
    assert s.folders == ["/home/me/Documents", "/home/me/Pictures"]
    assert s.excludes == ["*.log"]
    assert (s.max_text_mb, s.max_image_mb) == (Settings().max_text_mb, 12.0)
    assert (s.skip_hidden, s.honour_gitignore, s.welcome_done) == (True, False, True)
    assert (s.device, s.text_backend) == ("auto", "onnx")
    assert s.reconcile_interval_s == Settings().reconcile_interval_s and s.clip_checkpoint == ""
    assert s.invalid_fields == {"folders", "excludes", "max_text_mb", "skip_hidden", "device",
                                "reconcile_interval_s", "clip_checkpoint"}
    assert len(s.problems) == len(s.invalid_fields) + 1  # one line each, and where the copy is
    assert all("\n" not in p for p in s.problems)
    # Saving (any command that changes settings) rewrites the file; the original is aside,
    # and a key this version does not know survives.
    save_settings(paths, s)
    (aside,) = _asides(paths)
    assert aside.read_bytes() == raw
    saved = json.loads(paths.settings.read_text(encoding="utf-8"))
    assert saved["from_a_newer_version"] == {"kept": [1, 2]}
    again = load_settings(paths)
    assert again.problems == [] and again.folders == s.folders


def test_an_unreadable_settings_file_is_moved_aside(tmp_path: Path) -> None:
    paths = open_paths(tmp_path / "data")
    paths.settings.mkdir()  # a folder where the file should be: reading it fails
    (paths.settings / "inside").write_text("x")
    s = load_settings(paths)
    assert s.folders == [] and s.problems and "could not be read" in s.problems[0]
    (aside,) = _asides(paths)
    assert (aside / "inside").read_text() == "x"
    save_settings(paths, s)  # now possible, and nothing was lost
    assert load_settings(paths).problems == []


def test_status_lists_the_settings_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    paths = open_paths(data)
    paths.settings.write_text(json.dumps({"max_text_mb": "x", "allow_download": False}), encoding="utf-8")
    assert cli.main(["status", "--data-dir", str(data)]) == 0
    out, err = capsys.readouterr()
    assert "Settings: settings.json: `max_text_mb` must be a number" in out
    assert err.count("`max_text_mb` must be a number") == 1


def test_the_window_shows_settings_problems(tmp_path: Path, qtbot: Any) -> None:
    from desktop.backend import Backend
    from indexer.library.session import LibrarySession

    class Rt:
        def __init__(self) -> None:
            self.paths = open_paths(tmp_path / "data")
            self.paths.settings.write_text('{"folders": "/x"}', encoding="utf-8")
            self.settings = load_settings(self.paths)
            self.on_notice: Any = None

    rt = Rt()
    backend = Backend(LibrarySession(rt))
    seen: list[str] = []
    backend.notice.connect(seen.append)
    backend._route_notices()
    assert seen == rt.settings.problems and len(seen) == 2
    rt.on_notice("Downloading the CLIP image model")  # an announcement, later, from a worker
    assert seen[-1] == "Downloading the CLIP image model"


def test_watch_keeps_its_folders_while_the_file_is_broken(tmp_path: Path) -> None:
    from indexer.library.session import follow_settings

    paths = open_paths(tmp_path / "data")
    live = Settings(folders=["/a", "/b"], max_text_mb=5.0)

    class Ws:
        def __init__(self) -> None:
            self.roots: list[list[str]] = []

        def set_roots(self, roots: list[str]) -> None:
            self.roots.append(list(roots))

        def request_reconcile(self) -> None:
            pass

    ws = Ws()
    for content in ('{"folders": "/a", "max_text_mb": 5', '{"folders": "/a", "max_text_mb": 5}', b"\xff",
                    '{"folders": ["/a", 3], "max_text_mb": 5}'):
        (paths.settings.write_bytes if isinstance(content, bytes) else paths.settings.write_text)(content)
        follow_settings(paths, live, ws)
        assert live.folders == ["/a", "/b"] and ws.roots == [], content
    paths.settings.write_text('{"folders": ["/a"], "max_text_mb": "x", "skip_hidden": false}')
    follow_settings(paths, live, ws)
    assert ws.roots == [["/a"]] and live.max_text_mb == 5.0 and live.skip_hidden is False


# -- property: anything at all as settings.json ---------------------------------------------------
SETTING_KEYS = [f for f in Settings.__dataclass_fields__]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
settings_objects = st.dictionaries(st.sampled_from(SETTING_KEYS), json_values, max_size=8)


def _check_any(content: bytes, parsed: Any = None) -> None:
    folder = tempfile.mkdtemp(prefix="lodestar-settings-")
    try:
        paths = open_paths(folder)
        paths.settings.write_bytes(content)
        s = load_settings(paths)  # never raises
        _assert_sound(s)
        if "/" in s.folders:  # only ever a folder the file named, never a piece of a string
            assert isinstance(parsed, dict) and isinstance(parsed.get("folders"), list)
            assert any(isinstance(f, str) and os.path.expanduser(f) == "/" for f in parsed["folders"])
        if s.problems:
            assert _asides(paths) and _asides(paths)[0].read_bytes() == content
        save_settings(paths, s)
        assert load_settings(paths).problems == []  # what is saved is always valid
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(settings_objects)
def test_any_settings_object_loads_soundly(data: dict[str, Any]) -> None:
    set_reporter(lambda _line: None)
    try:
        _check_any(json.dumps(data).encode("utf-8", "surrogatepass"), data)
    finally:
        set_reporter(None)


@hsettings(max_examples=100, deadline=None)
@given(json_values)
def test_any_json_value_loads_soundly(value: Any) -> None:
    set_reporter(lambda _line: None)
    try:
        _check_any(json.dumps(value).encode("utf-8", "surrogatepass"), value)
    finally:
        set_reporter(None)


@hsettings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_load_soundly(content: bytes) -> None:
    set_reporter(lambda _line: None)
    try:
        _check_any(content)
    finally:
        set_reporter(None)


# -- the other files in the data directory ------------------------------------------------------
GARBAGE = [b"\xff\xfe", b"{", b"[]", b"5", b'"x"', b"null", b"[" * 50_000,
           b'{"folders": 5, "pid": "x"}', b'{"folders": [{"path": 5}], "pid": 1e400}',
           (b'{"pid": 99999999999999999999, "folders": [{"path": "/a", "mode": [1], "last_reconcile": "x",'
            b' "files": -1, "failed": 1e400, "message": 5}, "/b", {"path": "rel"}]}'),
           b'{"at": "x", "reason": 5}', b'{"at": 1e400}', b'{"checked_at": "x", "message": [1]}',
           b'{"checked_at": 1e300, "message": "m"}', b'["/a", 5, "rel", null]']


@pytest.mark.parametrize("content", GARBAGE, ids=range(len(GARBAGE)))
def test_damaged_data_dir_files_never_stop_a_command(tmp_path: Path, content: bytes,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from indexer.library.runtime import last_download_failure
    from indexer.store.health import HEALTH_FILE, last_report
    from indexer.watch.watcher import (
        PENDING_REMOVALS_FILE,
        read_pending_removals,
        read_watch_status,
    )

    data = tmp_path / "data"
    paths = open_paths(data)
    save_settings(paths, Settings(folders=["/a"], allow_download=False))
    for name in (paths.status_file.name, PENDING_REMOVALS_FILE, "clip-download-failed.json", HEALTH_FILE):
        (data / name).write_bytes(content)
    for st_ in read_watch_status(paths):
        assert os.path.isabs(st_.path) and st_.mode in ("live", "polling", "unavailable", "stopped")
        assert st_.last_reconcile is None or isinstance(st_.last_reconcile, float)
        assert isinstance(st_.message, str) and st_.files >= 0 and st_.failed >= 0
    assert all(isinstance(p, str) and os.path.isabs(p) for p in read_pending_removals(paths))
    memo = last_download_failure(paths)
    assert memo is None or math.isfinite(memo["at"])
    report = last_report(paths)
    assert report is None or (isinstance(report["message"], str) and report["checked_at"] is None
                              or isinstance(report["checked_at"], float))
    assert cli.main(["folders", "list", "--data-dir", str(data)]) == 0
    assert cli.main(["status", "--data-dir", str(data)]) == 0
    capsys.readouterr()


def test_a_damaged_writer_note_still_names_the_writer(tmp_path: Path) -> None:
    from indexer.errors import WriterBusy
    from indexer.library.writer_lock import WriterLock

    paths = open_paths(tmp_path / "data")
    holder = WriterLock(paths, command="lodestar watch")
    holder.acquire()
    try:
        fd = os.open(paths.writer_lock, os.O_WRONLY | os.O_TRUNC)
        os.write(fd, b'{"pid": "x", "since": 1e400, "command": [1]}')
        os.close(fd)
        done = threading.Event()
        errors: list[BaseException] = []

        def other() -> None:  # flock is per open file: a second one from another thread conflicts
            try:
                WriterLock(paths).acquire()
            except WriterBusy as exc:
                errors.append(exc)
            finally:
                done.set()

        threading.Thread(target=other).start()
        assert done.wait(10)
        (exc,) = errors
        assert "Lodestar (pid ?, since ?) is already indexing" in str(exc)
    finally:
        holder.release()
