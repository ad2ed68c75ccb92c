"""The cluster room without a cluster: how resources are shared, and `--ray` without Ray."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from indexer.cluster.ray_index import RAY_MISSING, plan


def test_without_ray_the_flag_says_in_one_line_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from indexer.cli.main import main

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("hello", encoding="utf-8")
    data = tmp_path / "data"
    assert main(["--data-dir", str(data), "index", "--ray", "auto", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err == f"lodestar: {RAY_MISSING}\n" and "pip install 'lodestar[cluster]'" in err
    assert not data.exists()  # nothing was opened or created


def test_ray_workers_must_be_positive(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("ray")
    from indexer.cli.main import main

    assert main(["--data-dir", str(tmp_path / "d"), "index", "--ray", "auto", "--ray-workers", "0", str(tmp_path)]) == 2
    assert "--ray-workers must be at least 1" in capsys.readouterr().err


def test_a_small_machine_keeps_half_its_cpus_for_reading() -> None:
    p = plan({"CPU": 2.0}, nodes=1, workers=None, models=2)
    assert (p.workers, p.actor_cpus, p.actor_gpus, p.threads, p.readers) == (1, 0.5, 0.0, 2, 1)
    two = plan({"CPU": 2.0}, nodes=1, workers=2, models=2)
    assert (two.workers, two.actor_cpus, two.threads, two.readers) == (2, 0.25, 1, 1)
    assert "2 workers (2 CPUs, CPUs only)" == two.line()


def test_one_worker_per_gpu_or_per_node() -> None:
    gpu = plan({"CPU": 16.0, "GPU": 1.0}, nodes=1, workers=None, models=2)
    assert (gpu.workers, gpu.actor_cpus, gpu.actor_gpus, gpu.threads, gpu.readers) == (1, 1.0, 0.5, 0, 14)
    assert gpu.line() == "1 worker (16 CPUs, 1 GPU)"
    eight = plan({"CPU": 64.0, "GPU": 8.0}, nodes=2, workers=None, models=2)
    assert (eight.workers, eight.actor_gpus) == (8, 0.5)
    nodes = plan({"CPU": 32.0}, nodes=4, workers=None, models=1)
    assert (nodes.workers, nodes.actor_cpus, nodes.threads, nodes.readers) == (4, 1.0, 8, 28)


def test_an_unreachable_cluster_is_one_line_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import socket
    import time

    pytest.importorskip("ray")
    from indexer.cli.main import main
    from indexer.cluster.ray_index import probe
    from indexer.errors import UserError

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    folder = tmp_path / "docs"
    folder.mkdir()
    started = time.monotonic()
    code = main(["--data-dir", str(tmp_path / "data"), "index", "--ray", f"127.0.0.1:{port}", str(folder)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and time.monotonic() - started < 30
    assert err[-1].startswith(f"lodestar: cannot reach the Ray cluster at 127.0.0.1:{port}: ") and "--ray auto" in err[-1]
    for bad in ("ray://", "host:notaport", "host:70000"):
        with pytest.raises(UserError, match="not a Ray address"):
            probe(bad)
    with pytest.raises(UserError, match="cannot reach"):
        probe(f"ray://127.0.0.1:{port}")
