"""Embedding a collection on a Ray cluster with Ray Data.

The driver decides what to embed (``collection.build_index``: incremental, ``--prune``, ``--glob``,
exactly as a local build); Ray Data maps the file list over an actor pool: every actor builds the
model once (``SemanticMoments(**model.options())``), decodes its files itself and batches their
frames across clips like the local pipeline (``iter_embed``), on ``num_gpus`` per actor on GPU nodes,
``num_cpus`` otherwise. Each result row carries the embedding as bytes (``Embedding.to_bytes``) or
the error that made the file fail. Rows stream back in the order they finish, and the driver commits
each clip to the SQLite index as it arrives, so a crash of the driver, a worker or a node loses at
most the clips in flight, and a rerun of the build resumes. Actors are restarted and their tasks
retried by Ray when a worker dies; a clip committed twice replaces itself (paths are unique).

``write_parquet`` instead writes the rows as Parquet shards from the workers (columns: path,
size_bytes, mtime, content_hash, settings (JSON), duration_seconds, fps, moment_K and flow_G vectors,
motion_map, embedding (the file's bytes)), which ``index ingest`` loads with the same validation
as any embedding file.

Files must be reachable under the same path by every worker: a shared filesystem (NFS, Lustre,
a mounted bucket) works as is. Object-storage URIs are not read directly.
"""

from __future__ import annotations

import json
import math
import os
import socket
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..embedder import EmbedResult
from ..embedding import Embedding
from ..errors import ConfigError, SemanticMomentsError, one_line

CONNECT_TIMEOUT = 30.0  # seconds a cluster address may take to answer before the build is refused
FILES_PER_TASK = 8  # files one actor call embeds together (their frames share batches; a crash loses at most these)
SMALL_NODE_CPUS = 8  # nodes up to this many CPUs get 1-CPU actors, larger ones 2-CPU actors (memory)


HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])  # + empty SETTINGS


def _speaks_grpc(host: str, port: int, timeout: float) -> bool:
    """True when ``host:port`` answers the HTTP/2 preface with a SETTINGS frame, as every gRPC server
    (Ray's GCS and client server) does; OSError when nothing accepts a connection in time."""
    import time

    deadline = time.monotonic() + timeout
    with socket.create_connection((host, port), timeout=timeout) as connection:
        connection.sendall(HTTP2_PREFACE)
        received = b""
        while len(received) < 9:
            connection.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                chunk = connection.recv(9 - len(received))
            except (socket.timeout, ConnectionError):
                return False
            if not chunk:
                return False
            received += chunk
        return received[3] == 0x04  # the frame type of SETTINGS


def _require_ray():
    try:
        import ray
    except ImportError:
        raise ConfigError("--engine ray needs Ray: pip install 'semantic-moments[ray]'") from None
    return ray


class EmbedWorker:
    """A Ray Data actor: one model, reused for every batch of files it is given."""

    def __init__(self, options: dict[str, Any]) -> None:
        from ..embedder import SemanticMoments

        self.model = SemanticMoments(**options)
        self.node = f"{socket.gethostname()}:{os.getpid()}"
        try:
            import ray

            self.node = ray.get_runtime_context().get_node_id()
        except Exception:  # noqa: BLE001 - outside Ray (tests call the class directly)
            pass

    def __call__(self, batch: dict[str, Any]) -> dict[str, list]:
        paths = [str(path) for path in batch["path"]]
        rows: dict[str, list] = {name: [] for name in ("path", "ok", "error", "embedding", "size_bytes", "mtime",
                                                       "node")}
        for path, result in zip(paths, self.model.iter_embed(paths)):
            rows["path"].append(path)
            rows["ok"].append(result.error is None)
            rows["error"].append(str(result.error) if result.error is not None else "")
            rows["embedding"].append(result.embedding.to_bytes() if result.embedding is not None else b"")
            try:
                status = os.stat(path)
                rows["size_bytes"].append(int(status.st_size))
                rows["mtime"].append(float(status.st_mtime))
            except OSError:
                rows["size_bytes"].append(0)
                rows["mtime"].append(0.0)
            rows["node"].append(self.node)
        return rows


class _Interrupts:
    """While open (in the main thread), the first Ctrl-C only sets ``requested`` (the caller stops at
    its next step, keeping what it committed); a second one raises KeyboardInterrupt at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def __enter__(self) -> _Interrupts:
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        import signal
        import sys

        if self.requested:
            signal.signal(signal.SIGINT, self._previous or signal.default_int_handler)
            raise KeyboardInterrupt
        self.requested = True
        print("stopping after the clip in hand (Ctrl-C again to stop at once)...", file=sys.stderr)

    def __exit__(self, *exc_info: object) -> None:
        import signal

        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def _columns(batch: dict[str, Any]) -> dict[str, list]:
    """Parquet columns of embedded rows (the failed ones are left out)."""
    out: dict[str, list] = {name: [] for name in ("path", "size_bytes", "mtime", "content_hash", "settings",
                                                  "duration_seconds", "fps", "motion_map", "embedding")}
    vectors: dict[str, list] = {}
    for index, ok in enumerate(batch["ok"]):
        if not ok:
            continue
        data = bytes(batch["embedding"][index])
        embedding = Embedding.from_bytes(data, str(batch["path"][index]))
        out["path"].append(str(batch["path"][index]))
        out["size_bytes"].append(int(batch["size_bytes"][index]))
        out["mtime"].append(float(batch["mtime"][index]))
        out["content_hash"].append(embedding.content_hash)
        out["settings"].append(json.dumps(embedding.feature_settings(), sort_keys=True))
        out["duration_seconds"].append(embedding.duration_seconds)
        out["fps"].append(embedding.fps)
        out["motion_map"].append(embedding.motion_map.ravel().tolist() if embedding.motion_map is not None else None)
        out["embedding"].append(data)
        for key, vector in embedding.parts().items():
            name = f"moment_{key}" if isinstance(key, int) else str(key).replace(".", "_")
            vectors.setdefault(name, []).append(vector.astype("float32").tolist())
    return {**out, **vectors}


@dataclass
class RayEngine:
    """Embeds files on a Ray cluster (module doc).

    Args:
        options: the model's ``SemanticMoments.options()``.
        address: the cluster (``ray://host:10001``, ``host:6379`` or ``auto``); None: ``RAY_ADDRESS``
            or, without it, a Ray instance started on this machine.
        workers: actors in the pool; None: from the cluster's resources (one per GPU, or one per
            ``cpus_per_worker`` CPUs of each node).
        cpus_per_worker: CPUs each actor reserves (and its torch threads); None: 1 where the smallest
            node has up to 8 CPUs, else 2 (each actor holds a model and a decode pipeline: about
            0.7 GB of memory).
        gpus_per_worker: GPUs each actor reserves; None: 1 when the cluster has GPUs (the model runs
            on ``cuda``), else 0.
        files_per_task: files an actor embeds per call.
    """

    options: dict[str, Any]
    address: str | None = None
    workers: int | None = None
    cpus_per_worker: float | None = None
    gpus_per_worker: float | None = None
    files_per_task: int = FILES_PER_TASK
    _connected: bool = field(default=False, init=False, repr=False)  # this engine called ray.init

    def close(self) -> None:
        """Disconnect from Ray if this engine connected (a process that called ``ray.init`` itself
        stays connected)."""
        if self._connected:
            import ray

            ray.shutdown()
            self._connected = False

    def check_address(self, timeout: float = CONNECT_TIMEOUT) -> None:
        """ConfigError, in one line and within ``timeout`` seconds, unless the cluster address can be
        used: ``host:port`` must accept a connection, ``ray://`` needs ``ray[client]``. Nothing is
        started or created. None and ``auto`` are left to Ray (a local instance, or RAY_ADDRESS)."""
        address = self.address or os.environ.get("RAY_ADDRESS")
        if address is None or address == "auto" or address == "local":
            return
        _require_ray()
        target = address
        if address.startswith("ray://"):
            try:
                import ray.util.client  # noqa: F401
                import grpc  # noqa: F401 - what ray[client] adds
            except ImportError:
                raise ConfigError(f"--ray-address {address}: a ray:// address needs the Ray client: "
                                  "pip install 'ray[client]'") from None
            target = address[len("ray://"):]
        host, _, port = target.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"--ray-address {address}: not HOST:PORT, ray://HOST:PORT or auto")
        try:
            speaks = _speaks_grpc(host.strip("[]"), int(port), timeout)
        except OSError as error:
            raise ConfigError(f"--ray-address {address}: no Ray cluster answers there within {timeout:g} s "
                              f"({error.strerror or type(error).__name__})") from None
        if not speaks:  # a web server, a database...: ray.init would wait for minutes
            raise ConfigError(f"--ray-address {address}: something answers there, but not a Ray cluster (no gRPC "
                              "answer); give the head node's GCS port (6379 by default) or ray://HOST:10001")

    def check_resources(self) -> None:
        """ConfigError, before any work, when no node of the cluster can hold one worker of the
        requested size (``cpus_per_worker``, ``gpus_per_worker``): Ray would wait forever."""
        ray = self._connect()
        nodes = [node["Resources"] for node in ray.nodes() if node.get("Alive")]
        cpus = self.cpus_per_worker or 0.0
        gpus = self.gpus_per_worker or 0.0
        if not any(node.get("CPU", 0) >= cpus and node.get("GPU", 0) >= gpus for node in nodes):
            have = ", ".join(f"{node.get('CPU', 0):g} CPU/{node.get('GPU', 0):g} GPU" for node in nodes) or "no nodes"
            raise ConfigError(f"no node of the Ray cluster can hold a worker of {cpus:g} CPU and {gpus:g} GPU "
                              f"(nodes: {have}); lower --ray-cpus-per-worker / --ray-gpus-per-worker")

    def _connect(self):
        ray = _require_ray()
        if not ray.is_initialized():
            self._connected = True
            ray.init(address=self.address, ignore_reinit_error=True, log_to_driver=False, include_dashboard=False,
                     logging_level="ERROR")
        import logging

        ray.data.DataContext.get_current().enable_progress_bars = False
        logging.getLogger("ray.data").setLevel(logging.ERROR)  # the driver prints its own progress and failures
        return ray

    def _resources(self, ray) -> tuple[int, float, float, dict[str, Any]]:
        """(workers, cpus per worker, gpus per worker, model options for the workers)."""
        nodes = [node["Resources"] for node in ray.nodes() if node.get("Alive")]
        gpus = sum(node.get("GPU", 0) for node in nodes)
        gpus_per_worker = self.gpus_per_worker if self.gpus_per_worker is not None else (1.0 if gpus else 0.0)
        cpus_per_worker = self.cpus_per_worker
        if cpus_per_worker is None:  # small actors: measured faster than one actor using every core
            smallest = min((node.get("CPU", 1) for node in nodes), default=1)
            cpus_per_worker = 1.0 if smallest <= SMALL_NODE_CPUS else 2.0
        workers = self.workers
        if workers is None:
            if gpus_per_worker > 0:
                workers = max(1, int(gpus // gpus_per_worker))
            else:
                workers = max(1, sum(int(node.get("CPU", 0) // cpus_per_worker) for node in nodes))
        options = dict(self.options)
        if gpus_per_worker > 0 and str(options.get("device", "cpu")) == "cpu":
            options["device"] = "cuda"
            options.pop("decode_workers", None)  # the driver's CPU default; on a GPU the actor decodes wider
        return workers, cpus_per_worker, gpus_per_worker, options

    def _dataset(self, paths: Sequence[str]):
        if not paths:
            raise ConfigError("nothing to embed")
        ray = self._connect()
        workers, cpus, gpus, options = self._resources(ray)
        items = [{"path": str(path)} for path in paths]
        dataset = ray.data.from_items(items, override_num_blocks=max(1, -(-len(items) // self.files_per_task)))
        return dataset.map_batches(
            EmbedWorker, fn_constructor_kwargs={"options": options}, batch_size=self.files_per_task,
            batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=cpus,
            num_gpus=gpus or None)  # Ray Data restarts dead actors and retries their tasks by default

    def iter_results(self, paths: Sequence[str | os.PathLike[str]]) -> Iterator[tuple[EmbedResult, str]]:
        """(EmbedResult, worker node id) for every path, in the order they finish.

        Ctrl-C stops it at the next result with KeyboardInterrupt (Ray Data's iterator swallows the
        interrupt itself and would run the build to its end); a second Ctrl-C stops it at once."""
        with _Interrupts() as interrupts:
            for row in self._dataset([str(path) for path in paths]).iter_rows():
                yield self._result(row)
                if interrupts.requested:
                    raise KeyboardInterrupt

    @staticmethod
    def _result(row) -> tuple[EmbedResult, str]:
        name = str(row["path"])
        if not row["ok"]:
            return EmbedResult(name, None, SemanticMomentsError(str(row["error"]))), str(row["node"])
        try:
            return EmbedResult(name, Embedding.from_bytes(bytes(row["embedding"]), name), None), str(row["node"])
        except SemanticMomentsError as error:
            return EmbedResult(name, None, error), str(row["node"])

    def write_parquet(self, paths: Sequence[str | os.PathLike[str]], folder: str | os.PathLike[str]) -> tuple[int, dict[str, str]]:
        """Embed ``paths`` and write the Parquet shards into ``folder`` from the workers; returns
        (clips written, {path: reason} of the files that failed)."""
        dataset = self._dataset([str(path) for path in paths]).materialize()
        failed = {str(row["path"]): str(row["error"]) for row in
                  dataset.select_columns(["path", "ok", "error"]).iter_rows() if not row["ok"]}
        good = dataset.map_batches(_columns, batch_format="numpy")
        Path(folder).mkdir(parents=True, exist_ok=True)
        good.write_parquet(str(folder))
        return len(paths) - len(failed), failed


def indexable_path(path: object) -> str:
    """``path`` as an index stores it, or ValueError (``index.maintenance.path_problem``): what a
    local build could have indexed."""
    from ..index.maintenance import path_problem

    problem = path_problem(path)
    if problem:
        raise ValueError(problem)
    return str(path)


@dataclass(frozen=True)
class IngestRow:
    """One clip read from Parquet: where it was, its embedding (or the error that makes it unusable)
    and, from an ``index export`` of a windowed index, its windows as (start, end, raw row)."""

    path: str
    size_bytes: int
    mtime: float
    embedding: Embedding | None
    error: str | None
    windows: tuple[tuple[float, float, Any], ...] = ()
    window_plan: dict[str, Any] | None = None


def read_parquet(folder: str | os.PathLike[str]) -> Iterator[IngestRow]:
    """Every clip of a Parquet file or folder of shards written by ``write_parquet`` (``embed
    --engine ray``) or by ``index export``. A row that is not as a local build would have written it
    (a path that is not absolute, normalised text naming a video, a size or mtime that is not a
    finite number, an embedding that fails validation) gives its error instead; a shard that cannot
    be read (a stray file, a damaged page) gives one error row and the others are still read. Needs
    pyarrow (not Ray)."""
    try:
        import pyarrow.dataset as pads
    except ImportError:
        raise ConfigError("reading Parquet needs `pip install pyarrow`") from None
    location = Path(folder)
    if not location.exists():
        raise ConfigError(f"{location}: no such Parquet file or folder")
    files = sorted(path for path in location.rglob("*") if path.is_file() and not path.name.startswith((".", "_"))) \
        if location.is_dir() else [location]
    if not files:
        raise ConfigError(f"{location}: no Parquet files in the folder")
    for file in files:
        try:
            dataset = pads.dataset(str(file), format="parquet")
            missing = {"path", "size_bytes", "mtime", "embedding"} - set(dataset.schema.names)
            if missing:
                raise ValueError(f"not semantic-moments Parquet (missing columns {sorted(missing)})")
            if "kind" in dataset.schema.names:  # an export: clips and their windows
                yield from _export_rows(file, dataset)
                continue
            batches = dataset.to_batches(columns=["path", "size_bytes", "mtime", "embedding"])
            for batch in batches:
                yield from _parquet_rows(file, batch)
        except Exception as error:  # noqa: BLE001 - pyarrow raises several kinds for bad files and pages
            yield IngestRow(str(file), 0, 0.0, None,
                            f"{file}: not readable as semantic-moments Parquet ({one_line(str(error))})")


def _export_rows(file: Path, dataset) -> Iterator[IngestRow]:
    """The clips of an ``index export``, each with its windows (raw rows from the part columns)."""
    import numpy as np

    metadata = dataset.schema.metadata or {}
    parts = json.loads(metadata.get(b"semantic_moments.parts", b"[]"))
    plan = json.loads(metadata.get(b"semantic_moments.windows", b"null"))
    table = dataset.to_table()
    kinds = table.column("kind").to_pylist()
    ids = table.column("id").to_pylist()
    windows: dict[Any, list] = {}
    for row, (kind, clip_id) in enumerate(zip(kinds, ids)):
        if kind == "window":
            raw = np.concatenate([np.asarray(table.column(name.replace(".", "_"))[row].as_py(), dtype=np.float32)
                                  for name, _ in parts])
            windows.setdefault(clip_id, []).append((float(table.column("start_seconds")[row].as_py()),
                                                    float(table.column("end_seconds")[row].as_py()), raw))
    clips = table.filter(np.asarray([kind == "clip" for kind in kinds]))
    for batch in clips.to_batches():
        for item, clip_id in zip(_parquet_rows(file, batch), batch.column("id").to_pylist()):
            found = tuple(windows.get(clip_id, ()))
            yield IngestRow(item.path, item.size_bytes, item.mtime, item.embedding, item.error, found,
                            plan if found else None)


def _parquet_rows(file: Path, batch) -> Iterator[IngestRow]:
    for path, size, mtime, data in zip(*(batch.column(name).to_pylist() for name in
                                         ("path", "size_bytes", "mtime", "embedding"))):
        name = f"{file}: {str(path)[:200]}"
        try:
            path = indexable_path(path)
            if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size < 2**63:
                raise ValueError(f"size_bytes {size!r} is not a whole number of bytes")
            if isinstance(mtime, bool) or not isinstance(mtime, (int, float)) or not math.isfinite(mtime):
                raise ValueError(f"mtime {mtime!r} is not a finite number")
            if not isinstance(data, bytes):
                raise ValueError("no embedding bytes")
            yield IngestRow(path, int(size), float(mtime), Embedding.from_bytes(data, name), None)
        except ValueError as error:
            yield IngestRow(str(path)[:200], 0, 0.0, None, f"{name}: {error}")
        except SemanticMomentsError as error:
            yield IngestRow(str(path)[:200], 0, 0.0, None, str(error))