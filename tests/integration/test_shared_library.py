"""A library shared on S3 storage (issue 19), against a real S3 server on 127.0.0.1 (moto's).

Simulated computers are data directories on this machine, each with its own folder and
index (the real text model, the tiny CLIP); they publish their parts to one bucket and
search each other's.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.support.s3_server import BUCKET, S3, s3_server
from tests.support.s3_server import free_port as _free_port


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[S3]:
    server = s3_server(monkeypatch, tmp_path)
    try:
        yield server
    finally:
        server.stop()


def _computer(make_runtime: Any, tmp_path: Path, name: str, files: dict[str, str], images: tuple[str, ...] = ()) -> Any:
    folder = tmp_path / f"{name}-files"
    folder.mkdir()
    for fname, text in files.items():
        (folder / fname).write_text(text, encoding="utf-8")
    for i, fname in enumerate(images):
        Image.new("RGB", (64, 48), (200, 40 * i, 30)).save(folder / fname)
    rt = make_runtime([str(folder)], data_dir=tmp_path / f"{name}-data")
    rt.service().index_roots([str(folder)])
    return rt


ALPHA = {
    "sourdough.txt": "Feed the sourdough starter with flour and water, then bake the bread in a hot Dutch oven.",
    "taxes.txt": "The tax return is due in April; keep the receipts for the deductions.",
}
BETA = {
    "volcano.md": "The volcano erupted at dawn and lava flowed down toward the village by the sea.",
    "garden.txt": "Tomatoes need full sun, deep watering and a stake to climb.",
}


def _share(rt: Any, name: str) -> None:
    from indexer.shared.library import share

    share(rt.paths.data_dir, f"s3://{BUCKET}/home", computer=name)


def _searcher(rt: Any) -> Any:
    """The runtime's searcher, waiting as long as a loaded CI machine needs for the other parts
    (the 4 s a person waits is about latency, which bench/bench_shared.py measures)."""
    searcher = rt.searcher()
    searcher.part_timeout_s = 60.0
    return searcher


def _search(rt: Any, query: str, **kw: Any) -> Any:
    return _searcher(rt).search(query, **kw)


def test_two_computers_publish_at_once_and_a_third_finds_both_by_computer(make_runtime: Any, tmp_path: Path,
                                                                          s3: S3) -> None:
    from indexer.shared.library import status, sync
    from indexer.shared.search import SharedSearcher

    alpha = _computer(make_runtime, tmp_path, "alpha", ALPHA)
    beta = _computer(make_runtime, tmp_path, "beta", BETA, images=("sunset.png",))
    gamma = _computer(make_runtime, tmp_path, "gamma", {"notes.txt": "Meeting notes about the quarterly budget."})
    for rt, name in ((alpha, "alpha"), (beta, "beta"), (gamma, "gamma")):
        _share(rt, name)
    assert isinstance(gamma.searcher(), SharedSearcher)

    # Alpha and beta publish at the same time while gamma searches over and over.
    reports: dict[str, Any] = {}
    errors: list[BaseException] = []
    done = threading.Event()

    def publish(rt: Any, name: str) -> None:
        try:
            reports[name] = sync(rt.paths.data_dir)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def searching() -> None:
        try:
            while not done.is_set():
                _search(gamma, "baking bread")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=publish, args=(alpha, "alpha")), threading.Thread(target=publish, args=(beta, "beta"))]
    seeker = threading.Thread(target=searching)
    seeker.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    done.set()
    seeker.join(60)
    assert not errors, errors
    assert not reports["alpha"].problem and not reports["beta"].problem
    assert reports["alpha"].files == 2 and reports["beta"].files == 3
    assert sync(gamma.paths.data_dir).files == 1

    gamma.searcher()._listing = None  # the parts were listed before alpha and beta published
    resp = _search(gamma, "how to bake sourdough bread")
    top = resp.results[0]
    assert Path(top.path).name == "sourdough.txt" and top.computer == "alpha", resp
    assert "Dutch oven" in top.passage
    resp = _search(gamma, "lava from the volcano")
    assert (Path(resp.results[0].path).name, resp.results[0].computer) == ("volcano.md", "beta")
    # This computer's own files answer beside the others', unlabelled.
    resp = _search(gamma, "quarterly budget meeting")
    assert (Path(resp.results[0].path).name, resp.results[0].computer) == ("notes.txt", "")
    # From alpha, beta's files too (and alpha's own first for its own words).
    resp = _search(alpha, "tomatoes in the garden")
    assert (Path(resp.results[0].path).name, resp.results[0].computer) == ("garden.txt", "beta")
    # A picture of another computer: found by its name, its thumbnail fetched to paint here.
    resp = _search(gamma, "sunset", kind="image")
    pictures = [r for r in resp.results if r.kind == "image"]
    assert pictures and pictures[0].computer == "beta" and Path(pictures[0].path).name == "sunset.png"
    assert pictures[0].thumbnail and Path(pictures[0].thumbnail).read_bytes().startswith(b"\x89PNG")
    assert Path(pictures[0].thumbnail).is_relative_to(gamma.paths.thumbnails)  # where the window decodes thumbnails

    st = status(gamma.paths.data_dir)
    assert st.reachable and {(p.computer, p.files, p.reachable) for p in st.parts} == {
        ("alpha", 2, True), ("beta", 3, True), ("gamma", 1, True)}


def test_the_bucket_gone_mid_write_leaves_the_local_index_working_and_it_catches_up(
        make_runtime: Any, tmp_path: Path, s3: S3, monkeypatch: pytest.MonkeyPatch) -> None:
    import indexer.shared.publish as publish_mod
    from indexer.shared.library import status
    from indexer.shared.publish import publish
    from indexer.shared.search import SharedSearcher

    many = {f"note{i}.txt": f"Note {i}: the lighthouse keeper logged the storm number {i}." for i in range(6)}
    alpha = _computer(make_runtime, tmp_path, "alpha", {**ALPHA, **many})
    _share(alpha, "alpha")
    beta = _computer(make_runtime, tmp_path, "beta", BETA)
    _share(beta, "beta")
    assert not publish(beta.paths.data_dir).problem

    # The server goes away after alpha's first batch of files is on the bucket.
    real_save = publish_mod.save_state
    saves = []

    def save_then_vanish(data_dir: Any, state: Any) -> None:
        real_save(data_dir, state)
        saves.append(len(state.rows))
        if len(saves) == 2:
            s3.stop()

    monkeypatch.setattr(publish_mod, "save_state", save_then_vanish)
    started = time.monotonic()
    report = publish(alpha.paths.data_dir, batch_files=2)
    monkeypatch.setattr(publish_mod, "save_state", real_save)
    assert report.problem.startswith("cannot reach the storage at http://127.0.0.1:"), report.problem
    assert "\n" not in report.problem
    assert time.monotonic() - started < 60

    # Locally all is well: a search answers with this computer's files, and says why the others are missing.
    searcher = _searcher(alpha)
    assert isinstance(searcher, SharedSearcher)
    t0 = time.monotonic()
    resp = searcher.search("sourdough bread")
    assert time.monotonic() - t0 < 15
    assert Path(resp.results[0].path).name == "sourdough.txt" and resp.results[0].computer == ""
    assert "Other computers were not searched" in resp.note
    st = status(alpha.paths.data_dir)
    assert not st.reachable and st.problem.startswith("cannot reach the storage")
    assert st.publish_problem.startswith("cannot reach the storage")
    assert [(p.computer, p.this_computer) for p in st.parts] == [("alpha", True)]

    # Back: the next publish sends only what is missing.
    s3.start()
    report = publish(alpha.paths.data_dir, batch_files=2)
    assert not report.problem and not report.whole
    assert report.published == len(ALPHA) + len(many) - 2
    assert status(alpha.paths.data_dir).parts[0].files == len(ALPHA) + len(many)

    # The bucket itself deleted and made again (emptied): the part is published again whole.
    client = s3.client()
    client.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": k} for k in s3.keys()]})
    client.delete_bucket(Bucket=BUCKET)
    gone = publish(alpha.paths.data_dir)
    assert "there is no bucket 'family-library'" in gone.problem, gone.problem
    client.create_bucket(Bucket=BUCKET)
    again = publish(alpha.paths.data_dir)
    assert again.whole and not again.problem and again.files == len(ALPHA) + len(many)
    assert not publish(beta.paths.data_dir).problem
    beta_searcher = _searcher(beta)
    resp = beta_searcher.search("lighthouse keeper storm log")
    assert resp.results and resp.results[0].computer == "alpha"


def test_wrong_credentials_missing_bucket_and_no_server_each_say_one_line(
        make_runtime: Any, tmp_path: Path, s3: S3, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from indexer.cli.main import main

    data = tmp_path / "data"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    import moto.settings

    monkeypatch.setattr(moto.settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)  # the server checks keys now
    assert main(["--data-dir", str(data), "library", "share", f"s3://{BUCKET}/home"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("lodestar: the storage at http://127.0.0.1:") and "credentials" in err[0], err
    assert "not-the-secret" not in err[0]
    monkeypatch.setattr(moto.settings, "INITIAL_NO_AUTH_ACTION_COUNT", float("inf"))
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")

    assert main(["--data-dir", str(data), "library", "share", "s3://no-such-bucket/home"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"lodestar: there is no bucket 'no-such-bucket' at {s3.endpoint}: create it first, or check the name"]

    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{_free_port()}")
    assert main(["--data-dir", str(data), "library", "share", f"s3://{BUCKET}/home"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lodestar: cannot reach the storage at http://127.0.0.1:"), err

    assert main(["--data-dir", str(data), "library", "share", "https://example.com/x"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["lodestar: a shared library is an S3 address like s3://BUCKET/PREFIX, not 'https://example.com/x'"]
    # Nothing was remembered, and no credential was ever written to the data folder.
    assert not (data / "shared.json").exists()
    for f in data.rglob("*"):
        if f.is_file():
            assert b"not-the-secret" not in f.read_bytes() and b"testing" not in f.read_bytes()


def test_cli_share_status_json_and_leave_remove_only_this_part(make_runtime: Any, tmp_path: Path, s3: S3,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    from indexer.cli.main import main

    alpha = _computer(make_runtime, tmp_path, "alpha", ALPHA)
    beta = _computer(make_runtime, tmp_path, "beta", BETA)
    a, b = str(alpha.paths.data_dir), str(beta.paths.data_dir)
    alpha.close()
    beta.close()
    assert main(["--data-dir", a, "library", "share", f"s3://{BUCKET}/home", "--computer", "alpha"]) == 0
    out = capsys.readouterr().out
    assert "Privacy: Sharing sends this computer's passages" in out and "thumbnails" in out
    assert "Created the shared library s3://family-library/home as 'alpha'." in out
    assert "Published 2 files." in out
    assert main(["--data-dir", b, "library", "share", f"s3://{BUCKET}/home/", "--computer", "beta"]) == 0
    assert "Joined the shared library" in capsys.readouterr().out

    assert main(["--data-dir", a, "library", "status", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) >= {"shared", "uri", "computer", "part_id", "reachable", "problem", "last_published",
                         "publish_problem", "parts"}
    assert data["shared"] and data["reachable"] and data["uri"] == f"s3://{BUCKET}/home"
    parts = {p["computer"]: p for p in data["parts"]}
    assert set(parts) == {"alpha", "beta"}
    assert set(parts["alpha"]) >= {"part_id", "computer", "files", "updated_at", "reachable", "this_computer", "models"}
    assert parts["alpha"]["this_computer"] and not parts["beta"]["this_computer"]
    assert parts["beta"]["files"] == 2 and parts["beta"]["reachable"]
    assert parts["alpha"]["models"]["text"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert main(["--data-dir", a, "library", "status"]) == 0
    text = capsys.readouterr().out
    assert "alpha (this computer): 2 files" in text and "beta: 2 files" in text

    # `lodestar search` on one computer finds the other's files, saying where they are.
    assert main(["--data-dir", b, "search", "sourdough bread"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert "sourdough.txt" in first and first.endswith("(on alpha)"), first

    # `lodestar index` on a data folder that shares publishes what it indexed.
    folder = tmp_path / "alpha-files"
    (folder / "bread-2.txt").write_text("A second loaf: rye flour, caraway and a long cold proof.", encoding="utf-8")
    assert main(["--data-dir", a, "index", str(folder)]) == 0
    assert "Shared library: 3 files of this computer published." in capsys.readouterr().out
    assert main(["--data-dir", b, "library", "status", "--json"]) == 0
    assert {p["computer"]: p["files"] for p in json.loads(capsys.readouterr().out)["parts"]} == {"alpha": 3, "beta": 2}

    alpha_part = f"home/parts/{data['part_id']}/"
    assert s3.keys(alpha_part)
    assert main(["--data-dir", a, "library", "leave", "--yes"]) == 0
    assert "was removed from s3://family-library/home" in capsys.readouterr().out
    assert s3.keys(alpha_part) == []
    assert s3.keys(f"home/parts/{parts['beta']['part_id']}/part.json")
    assert not (Path(a) / "shared.json").exists()
    assert main(["--data-dir", a, "library", "status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["shared"] is False
    # Beta lists only itself now; alpha's own index is untouched.
    assert main(["--data-dir", b, "library", "status", "--json"]) == 0
    assert [p["computer"] for p in json.loads(capsys.readouterr().out)["parts"]] == ["beta"]
    again = make_runtime([str(folder)], data_dir=Path(a))
    resp = again.searcher().search("sourdough bread")
    assert Path(resp.results[0].path).name == "sourdough.txt" and not resp.note
