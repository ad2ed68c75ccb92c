"""The driver of a bulk index on Ray: connect, place the model actors, stream batches.

`RayCluster` connects to a cluster (or starts a local Ray instance for ``auto``) and
places, per worker, one text-model actor and one CLIP actor (a share of a GPU each when
the cluster has GPUs). `RaySource` is the pipeline's `WorkSource`: for each batch of
files the writer's service decided need work, a reading task (`worker.read_batch`) reads
them on the cluster; its passages go to a text actor and its pictures to a CLIP actor
straight from the object store, never through this process; the finished files stream
back, in the order batches finish, to `IndexService._process`, which commits them as
a local run does (every 256 files or 5 s, so a stopped run resumes where it stopped).

A file that cannot be read is recorded as failed with its reason on the worker, as
locally; a reading task that dies (a worker lost) is retried by Ray, then file by file,
and a file that still kills its worker is recorded as failed with that reason. A model
actor that fails (after Ray's restarts) fails the files it held, as a local model error
does. Nothing is lost silently.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from indexer.cluster.worker import EmbedderFactory, ImageActor, ReadBatch, ReadSpec, TextActor, read_batch, scan
from indexer.errors import UserError
from indexer.ingest.pipeline import IMAGE_BATCH, IndexService, Work
from indexer.library.settings import Settings
from indexer.store.tables import FileRecord, file_id
from indexer.types import FileInfo

log = logging.getLogger(__name__)

RAY_MISSING = "indexing on a Ray cluster needs Ray, which is not installed: pip install 'lodestar[cluster]'"
BATCH_FILES = IMAGE_BATCH
"""Files read by one task (one CLIP forward pass of pictures)."""
BATCH_TEXT_BYTES = 4 << 20
"""...or fewer, when their text adds up to this: one long file does not hold up the rest."""
WAIT_S = 0.5
"""How long the driver waits for a result before it looks at the stop request again."""


def import_ray() -> Any:
    """The ``ray`` module, or `UserError` saying in one line how to get it."""
    try:
        import ray
    except ImportError as exc:
        raise UserError(RAY_MISSING) from exc
    return ray


@dataclasses.dataclass(frozen=True)
class Placement:
    """How the cluster's resources are shared: ``workers`` actor pairs, each actor with
    ``actor_cpus`` CPUs and ``actor_gpus`` GPUs (``threads`` torch threads on a CPU), the
    reading tasks on what is left (``readers`` at once)."""

    workers: int
    cpus: float
    gpus: float
    actor_cpus: float
    actor_gpus: float
    threads: int
    readers: int

    def line(self) -> str:
        where = f"{self.gpus:g} GPU{'s' if self.gpus != 1 else ''}" if self.gpus else "CPUs only"
        return f"{self.workers} worker{'s' if self.workers != 1 else ''} ({self.cpus:g} CPUs, {where})"


def plan(resources: dict[str, float], nodes: int, workers: int | None, models: int) -> Placement:
    """Share ``resources`` (Ray's cluster_resources) between ``models`` actors per worker and reading.

    One worker per GPU, or per node without GPUs, unless ``workers`` is given. The actors
    reserve at most half the CPUs in Ray's books, so reading tasks always have room (a
    2-CPU machine too); their torch threads (CPU only) are their worker's share of the CPUs.
    """
    cpus = float(resources.get("CPU", 0.0))
    gpus = float(resources.get("GPU", 0.0))
    if workers is None:
        workers = int(gpus) if gpus >= 1 else max(1, nodes)
    workers = max(1, workers)
    actors = workers * max(1, models)
    actor_cpus = min(1.0, cpus / (2 * actors)) if cpus else 0.0
    actor_gpus = min(1.0, gpus / actors) if gpus else 0.0
    # On CPUs each model may use its worker's share, as a local run's model uses every core
    # beside the reading threads: a text-only or image-only stretch keeps one actor busy.
    threads = 0 if gpus else max(1, int(cpus // workers))
    readers = max(1, int(cpus - actors * actor_cpus))
    return Placement(workers, cpus, gpus, round(actor_cpus, 4), round(actor_gpus, 4), threads, readers)


def _short(exc: BaseException) -> str:
    """One line for a Ray error: the worker's own exception when there is one."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        exc = cause
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first}"[:300] if first else type(exc).__name__


PROBE_S = 5.0
"""How long the address of a cluster is given to answer before it is called unreachable."""


def probe(address: str) -> None:
    """A TCP connection to a cluster's address (``ray://host:10001`` or ``host:6379``), or
    `UserError` in one line: Ray's own connect retries a wrong address for minutes."""
    import socket

    rest = address.strip()
    default = 10001 if rest.startswith("ray://") else 6379
    rest = rest.removeprefix("ray://").split("/", 1)[0]
    host, _, port_text = rest.rpartition(":") if rest.count(":") == 1 or rest.startswith("[") else ("", "", "")
    if not host:
        host, port_text = rest, ""
    host = host.strip("[]")
    try:
        port = int(port_text) if port_text else default
    except ValueError:
        raise UserError(f"not a Ray address: {address} (expected host:port, ray://host:port or auto)") from None
    if not host or not 0 < port < 65536:
        raise UserError(f"not a Ray address: {address} (expected host:port, ray://host:port or auto)")
    try:
        with socket.create_connection((host, port), timeout=PROBE_S):
            pass
    except OSError as exc:
        why = "no answer" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise UserError(
            f"cannot reach the Ray cluster at {address}: {why}; check the address (`ray status` on its head node) "
            "or use --ray auto for a local instance"
        ) from exc


class RayCluster:
    """A connection to Ray and the model actors placed on it. Use as a context manager."""

    def __init__(
        self,
        address: str,
        text_factory: EmbedderFactory,
        image_factory: EmbedderFactory | None = None,
        *,
        workers: int | None = None,
        num_cpus: int | None = None,
    ) -> None:
        self.address = address.strip() or "auto"
        self.text_factory = text_factory
        self.image_factory = image_factory
        self.requested_workers = workers
        self.num_cpus = num_cpus
        self.ray: Any = None
        self.placement: Placement | None = None
        self.text_actors: list[Any] = []
        self.image_actors: list[Any] = []
        self._started_ray = False

    def __enter__(self) -> RayCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ connect
    def connect(self) -> None:
        """``auto``: this process's Ray if it has one, else a local instance with this machine's
        CPUs (``num_cpus``); anything else is a cluster's address (``ray://host:10001``, ``host:6379``)."""
        ray = import_ray()
        self.ray = ray
        if ray.is_initialized():
            return
        if self.address != "auto":
            probe(self.address)  # Ray itself retries an unreachable address for minutes
        quiet = {"include_dashboard": False, "logging_level": logging.WARNING, "log_to_driver": False}
        try:
            if self.address == "auto":  # a private instance: its notices (token auth) are not the person's concern
                ray.init(num_cpus=self.num_cpus, **{**quiet, "logging_level": logging.ERROR})
            else:
                ray.init(address=self.address, **quiet)
        except (ConnectionError, TimeoutError, ValueError, RuntimeError) as exc:
            where = "start a local Ray instance" if self.address == "auto" else f"reach the Ray cluster at {self.address}"
            raise UserError(f"cannot {where}: {_short(exc)}; check the address (`ray status` on its head node)") from exc
        self._started_ray = True

    def start(self, text_model: tuple[str, int], image_model: tuple[str, int] | None) -> Placement:
        """Connect, place the actors and check they load the library's models (same ids and sizes)."""
        if self.ray is None:
            self.connect()
        ray = self.ray
        nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
        with_images = image_model is not None and self.image_factory is not None
        placement = plan(ray.cluster_resources(), nodes, self.requested_workers, 2 if with_images else 1)
        self.placement = placement
        opts: dict[str, Any] = {
            "num_cpus": placement.actor_cpus, "max_restarts": 2, "max_task_retries": 2, "scheduling_strategy": "SPREAD",
        }
        if placement.actor_gpus:
            opts["num_gpus"] = placement.actor_gpus
        text_cls = ray.remote(TextActor)
        self.text_actors = [
            text_cls.options(**opts).remote(self.text_factory, placement.threads) for _ in range(placement.workers)
        ]
        if with_images:
            image_cls = ray.remote(ImageActor)
            self.image_actors = [
                image_cls.options(**opts).remote(self.image_factory, placement.threads) for _ in range(placement.workers)
            ]
        self._check("text", self.text_actors, text_model)
        if with_images:
            assert image_model is not None
            self._check("image", self.image_actors, image_model)
        return placement

    def _check(self, what: str, actors: list[Any], expected: tuple[str, int]) -> None:
        try:
            ids = self.ray.get([a.identity.remote() for a in actors])
        except self.ray.exceptions.RayError as exc:
            raise UserError(f"the cluster's workers cannot load the {what} model: {_short(exc)}") from exc
        for model_id, dim, _device in ids:
            if (model_id, dim) != tuple(expected):
                raise UserError(
                    f"the cluster's {what} model is {model_id} ({dim}), this library's is {expected[0]} ({expected[1]}): "
                    "every worker needs the same model files"
                )

    def devices(self) -> list[str]:
        """Where each actor runs its model ("cpu", "cuda"), text actors first."""
        return [d for _m, _n, d in self.ray.get([a.identity.remote() for a in [*self.text_actors, *self.image_actors]])]

    def source(self, **options: Any) -> RaySource:
        if not self.text_actors:
            raise RuntimeError("RayCluster.start() first")
        return RaySource(self, **options)

    def close(self) -> None:
        ray = self.ray
        if ray is None:
            return
        for actor in [*self.text_actors, *self.image_actors]:
            try:
                ray.kill(actor)
            except Exception:  # an actor already gone is what we want
                log.debug("actor already gone", exc_info=True)
        self.text_actors, self.image_actors = [], []
        if self._started_ray:
            ray.shutdown()
            self._started_ray = False
        self.ray = None


@dataclasses.dataclass
class _Batch:
    works: list[Work]
    old: dict[int, dict[str, np.ndarray]]  # index in works -> vectors the writer has, by chunk hash
    refs: list[Any] = dataclasses.field(default_factory=list)  # the reading task's three results
    read: ReadBatch | None = None
    text: Any = None  # the text actor's result (a ref), or None
    image: Any = None
    text_actor: int = -1
    image_actor: int = -1
    waiting: set[Any] = dataclasses.field(default_factory=set)


class RaySource:
    """`indexer.ingest.pipeline.WorkSource` on a `RayCluster` (set as ``IndexService.source``)."""

    def __init__(self, cluster: RayCluster, *, reader: Callable[..., Any] = read_batch, retries: int = 2) -> None:
        """``reader``: the reading task (`worker.read_batch`, or a test's wrapper around it);
        ``retries``: how often Ray runs a reading task again when its worker dies."""
        self.cluster = cluster
        ray = cluster.ray
        self._ray = ray
        self._read = ray.remote(reader).options(num_cpus=1, num_returns=3, max_retries=retries)
        self._scan = ray.remote(scan).options(num_cpus=1, max_retries=retries)
        self._text_load = [0] * len(cluster.text_actors)
        self._image_load = [0] * len(cluster.image_actors)

    # --------------------------------------------------------------- scan
    def scan(self, root: str, settings: Settings, data_dir: Path, unreadable: dict[str, str]) -> Iterable[FileInfo]:
        try:
            infos, missed = self._ray.get(self._scan.remote(root, settings, str(data_dir)))
        except self._ray.exceptions.RayError as exc:
            raise UserError(f"the cluster could not list {root}: {_short(exc)}") from exc
        unreadable.update(missed)
        return infos

    # -------------------------------------------------------------- works
    def works(self, service: IndexService, todo: Sequence[Work], cancel: threading.Event | None) -> Iterator[Work]:
        ray = self._ray
        # Pictures go to a CLIP actor; a cluster started without one leaves them waiting
        # (state pending, retried by the next run with one), as a library without CLIP does.
        image = service.image_embedder if self.cluster.image_actors else None
        reason = service.image_unavailable_reason or ("" if image is not None or service.image_embedder is None
                                                      else "the cluster was started without the image model")
        spec = ray.put(ReadSpec(
            service.settings, service.text_embedder.model_id, image.model_id if image is not None else "", reason,
        ))
        placement = self.cluster.placement
        readers = placement.readers if placement is not None else 1
        limit = 2 * readers + 2 * len(self.cluster.text_actors)  # batches in flight (bounded memory)
        queue: collections.deque[list[Work]] = collections.deque(self._batches(todo))
        reading: dict[Any, _Batch] = {}  # the reading task's first result -> its batch
        embedding: dict[Any, _Batch] = {}  # an actor's result -> its batch
        try:
            while queue or reading or embedding:
                if cancel is not None and cancel.is_set():
                    return  # the service commits what it has; the next run reads the rest
                while queue and len(reading) + len({id(b) for b in embedding.values()}) < limit:
                    reading_batch = self._submit(spec, queue.popleft(), service)
                    reading[reading_batch.refs[0]] = reading_batch
                ready, _ = ray.wait([*reading, *embedding], num_returns=1, timeout=WAIT_S)
                for ref in ready:
                    if ref in reading:
                        batch = reading.pop(ref)
                        failed = self._embed(batch, queue, service)
                        if failed is not None:
                            yield from failed
                            continue
                        for r in batch.waiting:
                            embedding[r] = batch
                        if not batch.waiting:
                            yield from self._finish(batch, service)
                    elif ref in embedding:
                        batch = embedding.pop(ref)
                        batch.waiting.discard(ref)
                        if not batch.waiting:
                            yield from self._finish(batch, service)
        finally:
            for ref in [*reading, *embedding]:
                try:
                    ray.cancel(ref)
                except Exception:  # noqa: BLE001 - an actor call or a finished task cannot be cancelled
                    pass

    def _batches(self, todo: Sequence[Work]) -> Iterator[list[Work]]:
        batch: list[Work] = []
        text_bytes = 0
        for work in todo:
            batch.append(work)
            text_bytes += work.info.size if work.info.kind == "text" else 0
            if len(batch) >= BATCH_FILES or text_bytes >= BATCH_TEXT_BYTES:
                yield batch
                batch, text_bytes = [], 0
        if batch:
            yield batch

    def _submit(self, spec: Any, works: list[Work], service: IndexService) -> _Batch:
        model = service.text_embedder.model_id
        old: dict[int, dict[str, np.ndarray]] = {}
        for i, w in enumerate(works):
            if w.info.kind == "text" and w.old is not None:
                vectors = service._old_chunk_vectors(w.old, model)  # unchanged passages are not embedded again
                if vectors:
                    old[i] = vectors
        skip = [list(old.get(i, ())) for i in range(len(works))]
        batch = _Batch(works, old)
        batch.refs = list(self._read.remote(spec, works, skip))
        return batch

    def _embed(self, batch: _Batch, queue: collections.deque[list[Work]], service: IndexService) -> list[Work] | None:
        """The batch is read: send its passages and pictures to the least busy actors.
        Returns the batch's files when they end here (the reading task failed)."""
        ray = self._ray
        try:
            batch.read = ray.get(batch.refs[0])
        except ray.exceptions.RayError as exc:
            if len(batch.works) > 1:  # find the file that kills its worker: one task each
                log.warning("a reading task failed (%s); reading its %d files one by one", _short(exc), len(batch.works))
                queue.extendleft([w] for w in reversed(batch.works))
                return []
            work = batch.works[0]
            _fail(work, service, f"a cluster worker failed while reading it: {_short(exc)}")
            return [work]
        read = batch.read
        if read.n_texts:
            i = self._text_load.index(min(self._text_load))
            batch.text, batch.text_actor = self.cluster.text_actors[i].embed.remote(batch.refs[1]), i
            self._text_load[i] += 1
            batch.waiting.add(batch.text)
        if read.image_of and self.cluster.image_actors:
            i = self._image_load.index(min(self._image_load))
            batch.image, batch.image_actor = self.cluster.image_actors[i].embed.remote(batch.refs[2]), i
            self._image_load[i] += 1
            batch.waiting.add(batch.image)
        return None

    def _finish(self, batch: _Batch, service: IndexService) -> Iterator[Work]:
        ray = self._ray
        read = batch.read
        assert read is not None
        fresh: dict[str, np.ndarray] = {}
        text_error = image_error = ""
        vectors: Any = None
        if batch.text is not None:
            self._text_load[batch.text_actor] -= 1
            try:
                fresh = ray.get(batch.text)
            except ray.exceptions.RayError as exc:
                log.error("text model failed on the cluster: %s", exc)
                text_error = f"text model failed on the cluster: {_short(exc)}"
        if batch.image is not None:
            self._image_load[batch.image_actor] -= 1
            try:
                vectors = ray.get(batch.image)
            except ray.exceptions.RayError as exc:
                log.error("image model failed on the cluster: %s", exc)
                image_error = f"image model failed on the cluster: {_short(exc)}"
        position = {w: p for p, w in enumerate(read.image_of)}
        batch.refs, batch.text, batch.image = [], None, None  # let Ray free the objects
        for i, work in enumerate(read.works):
            rec = work.record
            live = rec is not None and rec.state == "indexed" and not (work.touched_only or work.unsafe or work.vanished)
            if live and rec is not None and rec.kind == "text":
                old = batch.old.get(i, {})
                missing = [h for h in work.chunk_hashes if h not in fresh and h not in old]
                if text_error or missing:
                    _failed_content(work, text_error or "internal error: passages came back without vectors")
                else:
                    work.reuse = {h: fresh[h] if h in fresh else old[h] for h in work.chunk_hashes}
            elif live and rec is not None and rec.kind == "image" and i in position:
                if image_error or vectors is None:
                    _failed_content(work, image_error or "internal error: a picture came back without a vector")
                else:
                    work.image_vector = np.asarray(vectors[position[i]], dtype=np.float32)
            service.settle(work)
            yield work


def _failed_content(work: Work, reason: str) -> None:
    rec = work.record
    assert rec is not None
    rec.state, rec.reason = "failed", reason
    work.chunks, work.chunk_hashes, work.reuse = [], [], {}
    work.image, work.image_vector, work.thumb_png = None, None, b""


def _fail(work: Work, service: IndexService, reason: str) -> None:
    """The record of a file whose reading task died with it (as `IndexService._extract` would write it)."""
    info = work.info
    image = service.image_embedder
    work.record = FileRecord(
        fid=work.fid or file_id(info.path), path=info.path, root=info.root, kind=info.kind, size=info.size,
        mtime_ns=info.mtime_ns, text_model=service.text_embedder.model_id,
        image_model=image.model_id if image is not None else "", indexed_at=time.time(),
        state="failed", reason=reason,
    )
