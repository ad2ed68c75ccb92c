"""Hostile text never drives the terminal (issue 11.2).

File names, passages, folder paths, model messages and error messages can hold
terminal escape sequences (``ESC ]0;title BEL`` retitles the window, ``ESC [2J``
clears the screen), carriage returns that overwrite a printed path, newlines that
split one result over two lines, C1 controls (``U+009B`` is CSI on 8-bit terminals)
and bidi overrides that reorder what is shown. Every command's human-readable
output must show them as visible escapes; JSON output must stay valid JSON.

The property tests run each command through its real `cli.main` with fakes in
place of the index and models, so they are fast; the last test indexes and searches
a real file with such a name, with the real text model.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import types
from pathlib import Path
from typing import Any

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from indexer.cli._common import SafeLogFormatter, json_text, safe, say  # noqa: E402
from indexer.cli.main import main as cli_main  # noqa: E402
from indexer.library.settings import AppPaths, Settings, save_settings  # noqa: E402
from indexer.types import FolderStatus, IndexSummary, Progress, SearchResponse, SearchResult  # noqa: E402

# Everything a terminal may act on. Newline is allowed in captured output only as
# the end of a line, which the assertions account for.
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
NASTY = [
    "\x1b]0;owned\x07", "\x1b[2J", "\x1b[H", "\r", "\n", "\r\n", "\t", "\x00", "\x07", "\x08", "\x7f",
    "\x9b2J", "\x85", "\x9d0;t\x9c", "\u202e", "\u2066", "\u2069", "\u2028", "\u2029", "\udc80", "\udcff",
]
# Text with control characters mixed into ordinary (and non-ASCII) characters.
hostile = st.lists(
    st.one_of(st.sampled_from(NASTY), st.characters(min_codepoint=1, max_codepoint=0x2FFF), st.text(max_size=3)),
    min_size=1,
    max_size=12,
).map("".join)
# Something that survives as a path component (no "/", no NUL; never empty or a dot name).
hostile_name = hostile.map(lambda s: "f" + s.replace("/", "_").replace("\x00", "_"))
SETTINGS = settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli_main(argv)
    return code, out.getvalue(), err.getvalue()


def assert_inert(*texts: str) -> None:
    """No control character except the newline that ends each line."""
    for text in texts:
        assert text == "" or text.endswith("\n"), repr(text)
        for line in text.split("\n"):
            bad = CONTROL.search(line)
            assert bad is None, f"raw {bad.group(0)!r} reaches the terminal in {line!r}"


def strings(data: Any) -> list[str]:
    """Every string in a decoded JSON document, keys included."""
    if isinstance(data, str):
        return [data]
    if isinstance(data, dict):
        return [t for k, v in data.items() for t in (*strings(k), *strings(v))]
    if isinstance(data, list):
        return [t for v in data for t in strings(v)]
    return []


class Holder:
    """What the fakes hand out this example."""

    value: Any = None


class FakeRuntime:
    def __init__(self, paths: AppPaths, **parts: Any) -> None:
        self.paths = paths
        self.settings = Settings()
        self.clip_checkpoint = None
        for k, v in parts.items():
            setattr(self, k, v)

    def close(self) -> None:
        pass


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir(mode=0o700)
    return d


# ------------------------------------------------------------------ the helpers


@settings(max_examples=300, deadline=None, database=None)
@given(hostile)
def test_safe_makes_any_text_one_inert_line(text: str) -> None:
    shown = safe(text)
    assert CONTROL.search(shown) is None and "\n" not in shown
    # Ordinary text is left alone: nothing is dropped silently.
    for ch in text:
        if not CONTROL.match(ch):
            assert ch in shown
    out = io.StringIO()
    say(text, file=out)
    assert out.getvalue() == shown + "\n"


@settings(max_examples=300, deadline=None, database=None)
@given(hostile)
def test_json_stays_valid_and_keeps_the_text(text: str) -> None:
    doc = json_text({"path": text, text: [text]})
    assert CONTROL.search(doc.replace("\n", "")) is None
    assert json.loads(doc) == {"path": text, text: [text]}
    doc.encode("utf-8")  # printable on a UTF-8 stdout, lone surrogates included


def test_visible_escapes_read_as_what_they_were() -> None:
    assert safe("a\x1b]0;t\x07b\x1b[2J\rc\nd\te\u202ef\x9b\udc80") == "a\\x1b]0;t\\x07b\\x1b[2J\\rc\\nd\\te\\u202ef\\x9b\\x80"


def test_log_lines_are_neutralised() -> None:
    import logging

    record = logging.LogRecord("indexer.ingest.scan", logging.WARNING, __file__, 1, "cannot read %s", ("a\x1b[2J\nb",), None)
    line = SafeLogFormatter("%(levelname)s %(name)s: %(message)s").format(record)
    assert line == "WARNING indexer.ingest.scan: cannot read a\\x1b[2J\\nb"
    try:
        raise OSError("bad \x1b]0;t\x07 name")
    except OSError:
        import sys

        record.exc_info, record.exc_text = sys.exc_info(), None
    text = SafeLogFormatter("%(message)s").format(record)
    assert_inert(text + "\n")
    assert "Traceback" in text and "bad \\x1b]0;t\\x07 name" in text


# ------------------------------------------------------------ every command


def test_search_and_similar_keep_one_result_to_its_lines(monkeypatch: pytest.MonkeyPatch, data_dir: Path, tmp_path: Path) -> None:
    import indexer.cli.search as search_cmd
    import indexer.cli.similar as similar_cmd

    holder = Holder()

    class Searcher:
        def search(self, *_a: Any, **_k: Any) -> SearchResponse:
            return holder.value

        similar_image = search

    def fake_runtime(_args: Any, **_k: Any) -> FakeRuntime:
        return FakeRuntime(AppPaths(data_dir), searcher=lambda: Searcher(), image_ready=lambda **_k: (True, ""))

    monkeypatch.setattr(search_cmd, "runtime_from_args", fake_runtime)
    monkeypatch.setattr(similar_cmd, "runtime_from_args", fake_runtime)
    image = tmp_path / "query.png"
    image.write_bytes(b"not read by the fake")

    @SETTINGS
    @given(st.lists(st.tuples(hostile_name, hostile), min_size=1, max_size=4), hostile, hostile)
    def check(results: list[tuple[str, str]], message: str, query: str) -> None:
        holder.value = SearchResponse(
            query=query,
            message="m" + message,
            results=[
                SearchResult(path=f"/home/x/{name}", kind="text", score=0.5, mtime=1.7e9, passage="p " + passage)
                for name, passage in results
            ],
        )
        for argv in (["search", "q" + query], ["similar", str(image)]):
            code, out, err = run_cli([*argv, "--data-dir", str(data_dir)])
            assert code == 0, err
            assert_inert(out, err)
            lines = out.splitlines()
            # The message, then two lines per result: its path, then its passage.
            assert len(lines) == 1 + 2 * len(results), lines
            assert lines[0] == safe("m" + message)
            for i, (name, _passage) in enumerate(results, 1):
                path_line, passage_line = lines[2 * i - 1], lines[2 * i]
                assert path_line.startswith(f"{i:>2}. /home/x/{safe(name)}  [text, ")
                assert passage_line.startswith("      p")
            # JSON: valid, and the names come back as they are.
            code, out, _ = run_cli([*argv, "--json", "--data-dir", str(data_dir)])
            assert code == 0
            assert_inert(out)
            assert len(json.loads(out)["results"]) == len(results)

    check()


def test_status_folders_and_models_lines(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    import indexer.cli.models as models_cmd
    import indexer.cli.status as status_cmd
    import indexer.watch.watcher
    import models.weights

    holder = Holder()

    class Embedder:
        dim = 384

        @property
        def model_id(self) -> str:
            return holder.value

    def fake_runtime(_args: Any, **_k: Any) -> FakeRuntime:
        return FakeRuntime(AppPaths(data_dir), text_embedder=Embedder(), image_embedder=Embedder())

    class Data(dict):  # type: ignore[type-arg]
        def __missing__(self, _key: str) -> list[Any]:
            return []  # a section added to status later: empty here

    def fake_collect(_rt: Any, _problems: int = 10) -> dict[str, Any]:
        h = holder.value
        return Data({
            "data_dir": "/d/" + h, "store_bytes": 10, "index_health": h,
            "counts": {"files": 1, "chunks": 1, "images": 0, "by_kind": {h: 1}, "by_state": {h: 1}},
            "folders": [{"path": "/f/" + h, "files": 1, "failed": 0, "mode": h, "last_reconcile": None, "message": h}],
            "text_model": {"id": h, "dim": 384, "available": True},
            "image_model": {"id": h, "available": False, "source": h, "message": h, "fix": h},
            "exclusions": [h], "problems": [{"path": "/p/" + h, "state": "failed", "reason": h}], "problem_count": 1,
            "words_in_pictures": {"message": h, "failed": 1},
        })

    monkeypatch.setattr(status_cmd, "runtime_from_args", fake_runtime)
    monkeypatch.setattr(status_cmd, "collect", fake_collect)
    monkeypatch.setattr(models_cmd, "runtime_from_args", fake_runtime)
    monkeypatch.setattr(models.weights, "weights_status", lambda *_a, **_k: {"message": holder.value, "fix": holder.value})
    monkeypatch.setattr(
        indexer.watch.watcher, "read_watch_status", lambda _paths: [FolderStatus(path=holder.value, mode="live", message=holder.value)]
    )

    @SETTINGS
    @given(hostile_name)
    def check(h: str) -> None:
        holder.value = h
        folder = h  # undecodable bytes (lone surrogates) included
        save_settings(AppPaths(data_dir), Settings(folders=["/f/" + folder, folder]))
        for argv, shown in ((["status"], h), (["models"], h), (["folders", "list"], folder)):
            code, out, err = run_cli([*argv, "--data-dir", str(data_dir)])
            assert code == 0, err
            assert_inert(out, err)
            assert safe(shown) in out
            code, out, err = run_cli([*argv, "--json", "--data-dir", str(data_dir)])
            assert code == 0, err
            assert_inert(out, err)
            assert any(shown in text for text in strings(json.loads(out)))

    check()


def test_index_progress_summary_and_failures(monkeypatch: pytest.MonkeyPatch, data_dir: Path, tmp_path: Path) -> None:
    import indexer.cli.index as index_cmd
    import indexer.library.writer_lock

    holder = Holder()
    folder = tmp_path / "docs"
    folder.mkdir()

    class Service:
        def __init__(self, progress: Any) -> None:
            self.progress = progress

        def follow_moved_roots(self) -> list[tuple[str, str]]:
            return []

        def index_roots(self, _roots: Any, cancel: Any = None) -> IndexSummary:
            if self.progress is not None:
                self.progress(Progress(phase="scanning", message="scanning " + holder.value))
                self.progress(Progress(phase="idle"))
            return IndexSummary(new=1, failed=1, pending=1, failures=[("/d/" + holder.value, holder.value)])

    class Lock:
        def __init__(self, *_a: Any, **_k: Any) -> None:
            pass

        def acquire(self, *_a: Any, **_k: Any) -> None:
            pass

        def release(self) -> None:
            pass

    def fake_runtime(_args: Any, **_k: Any) -> FakeRuntime:
        return FakeRuntime(AppPaths(data_dir), service=lambda progress=None, **_k: Service(progress),
                           image_ready=lambda *_a, **_k: (False, holder.value),
                           store=types.SimpleNamespace(files=dict))  # nothing waits for the image model

    monkeypatch.setattr(index_cmd, "runtime_from_args", fake_runtime)
    monkeypatch.setattr(indexer.library.writer_lock, "WriterLock", Lock)

    @SETTINGS
    @given(hostile_name)
    def check(h: str) -> None:
        holder.value = h
        code, out, err = run_cli(["index", str(folder), "--data-dir", str(data_dir)])
        assert code == 0, err
        assert_inert(out, err)
        assert f"  failed: /d/{safe(h)}: {safe(h)}" in out.splitlines()
        assert safe("scanning " + h) in err
        code, out, err = run_cli(["index", str(folder), "--json", "--data-dir", str(data_dir)])
        assert code == 0, err
        assert_inert(out, err)
        assert json.loads(out)["failures"] == [{"path": "/d/" + h, "reason": h}]

    check()


def test_eval_misses_autostart_and_watch_lines(monkeypatch: pytest.MonkeyPatch, data_dir: Path, tmp_path: Path) -> None:
    import indexer.cli.eval as eval_cmd
    import indexer.library.autostart
    import indexer.search.ranking
    from indexer.cli import watch as watch_cmd

    holder = Holder()
    root = tmp_path / "root"
    root.mkdir()
    queries = tmp_path / "q.jsonl"

    class Searcher:
        def __init__(self, *_a: Any, **_k: Any) -> None:
            pass

        def search(self, *_a: Any, **_k: Any) -> SearchResponse:
            return SearchResponse(results=[SearchResult(path=str(root / holder.value), kind="text", score=1.0)])

        def close(self) -> None:
            pass

    class Store:
        def files(self) -> dict[str, Any]:
            return {"fid": object()}

    class AutostartStatus:
        enabled = True

        @property
        def location(self) -> str:
            return holder.value

        command = property(lambda self: holder.value)

    monkeypatch.setattr(eval_cmd, "runtime_from_args", lambda _a, **_k: FakeRuntime(AppPaths(data_dir), store=Store(), text_embedder=None))
    monkeypatch.setattr(indexer.search.ranking, "Searcher", Searcher)
    monkeypatch.setattr(indexer.library.autostart, "status", lambda: AutostartStatus())

    @SETTINGS
    @given(hostile_name, hostile)
    def check(name: str, query: str) -> None:
        holder.value = name
        queries.write_text(json.dumps({"query": "q" + query, "relevant": ["other.txt"]}) + "\n", encoding="utf-8")
        code, out, err = run_cli(["eval", str(queries), "--root", str(root), "--misses", "--data-dir", str(data_dir)])
        assert code == 0, err
        assert_inert(out, err)
        assert safe("q" + query) in out
        code, out, err = run_cli(["autostart", "status", "--data-dir", str(data_dir)])
        assert code == 0, err
        assert_inert(out, err)
        assert safe(name) in out
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            st_ = FolderStatus(path="/w/" + name, mode="live", message=query, last_reconcile=1.7e9)
            watch_cmd._say_mode_changes({}, [st_])
            watch_cmd._report([st_])
        assert_inert(buf.getvalue())
        assert len(buf.getvalue().splitlines()) == 2

    check()


def test_error_lines_quote_hostile_paths_inertly(tmp_path: Path) -> None:
    @SETTINGS
    @given(hostile_name)
    def check(name: str) -> None:
        missing = str(tmp_path / name)
        for argv in (
            ["index", missing, "--data-dir", str(tmp_path / "d")],
            ["folders", "add", missing, "--data-dir", str(tmp_path / "d")],
            ["status", "--data-dir", missing],
            ["search", "words", "--data-dir", missing],
            ["similar", missing, "--data-dir", str(tmp_path / "d")],
        ):
            code, out, err = run_cli(argv)
            assert code == 2, (argv, out, err)
            assert_inert(out, err)
            assert out == "" and err.count("\n") == 1 and err.startswith("lodestar: ")
            assert safe(name) in err
            assert not os.path.lexists(missing)

    check()


# ------------------------------------------------------- end to end, real model


def test_real_file_with_escapes_in_its_name_is_shown_inert(make_runtime: Any, tmp_path: Path) -> None:
    root = tmp_path / "docs"
    root.mkdir()
    name = "evil\x1b]0;owned\x07\x1b[2J\rname\nsecond line\u202etxt.txt"
    (root / name).write_text(
        "Glaciers carve deep valleys as the ice slowly grinds over bedrock.\x1b[2J\r\nA second line.", encoding="utf-8"
    )
    (root / "plain.txt").write_text("Bread dough rises in a warm kitchen before baking.", encoding="utf-8")
    rt = make_runtime([])
    data_dir = str(rt.paths.data_dir)
    rt.close()

    code, out, err = run_cli(["index", str(root), "--data-dir", data_dir])
    assert code == 0, err
    assert_inert(out, err)
    code, out, err = run_cli(["search", "glacier", "valleys", "--kind", "text", "--data-dir", data_dir])
    assert code == 0, err
    assert_inert(out, err)
    lines = out.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith(" 1. "))
    assert safe(str(root / name)) in lines[first]  # the whole name on the result's own line
    assert "\\x1b]0;owned\\x07\\x1b[2J\\rname\\nsecond line\\u202etxt.txt" in lines[first]
    assert lines[first + 1].startswith("      Glaciers carve") and "\\x1b[2J" in lines[first + 1]

    code, out, err = run_cli(["search", "glacier", "valleys", "--kind", "text", "--json", "--data-dir", data_dir])
    assert code == 0, err
    assert_inert(out, err)
    assert json.loads(out)["results"][0]["path"] == str(root / name)

    code, out, err = run_cli(["status", "--data-dir", data_dir])
    assert code == 0, err
    assert_inert(out, err)
