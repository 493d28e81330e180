"""A persistent motion index: embeddings of a collection, searchable by example, with query-time alpha.

On disk an index is a folder:

* ``index.sqlite``: the source of truth (SQLite in WAL mode). Table ``settings`` holds the feature
  settings every embedding must share (backbone, layer, convention, granularity, T, orders); table
  ``clips`` one row per clip: path, content hash, size, mtime, duration, fps, the raw parts (the
  moments M(k), then the token-flow levels ``flow.G`` where the embeddings have them, one float32
  row laid out as the ``parts`` setting says) and the motion map. Every add/remove is its own transaction, so an interrupted build
  (Ctrl-C, ``kill -9``, power loss) leaves a valid index holding everything committed, and readers
  never see a half-written row. Long videos indexed with windows also have one row per window
  (``segments.py``). The schema is in ``store.py``; the row layout and exact scoring in ``rows.py``.
* ``ann-<generation>.faiss``: a FAISS index over the clips' per-moment unit vectors, derived from the
  SQLite rows and replaced atomically; exact (flat) for small collections, HNSW past
  ``APPROXIMATE_FROM`` clips. Clips committed after it was written are scanned exactly and removed
  clips are filtered out, so search is correct while a build is running.

Query-time alpha, exactly. Let x_k be the unit vector of part k: M(k), or a token-flow level (the
reference convention normalises each part; the flow levels share one weight, ``flow_weight``). The
fused embedding is (alpha_1 x_1 | alpha_2 x_2 | ...) / norm, so

    cos(q, x; alpha) = sum_k alpha_k^2 <q_k, x_k> / (||alpha||_q ||alpha||_x),

where ||alpha||_x = sqrt(sum of alpha_k^2 over the moments of x that are not zero). One
inner-product index over (x_1 | x_2 | x_3) therefore serves every alpha: the query is weighted by
alpha^2, and the candidates are re-scored with the exact norms. For the ``paper`` convention the
candidates come from the same index and are re-scored exactly with the stored raw moments.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .config import MomentsConfig, validate_alpha, validate_flow_weight
from .embedding import Embedding
from . import calibration, maintenance, segments
from .ann import HNSW_EF_SEARCH, AnnFile, write_ann
from .errors import ConfigError, IndexStoreError
from .store import SCHEMA, create_database, open_read_only
from .rows import part_key, part_name, part_similarities, present_parts, unit_blocks, weighted_query, weighted_scores

RESCORE_FACTOR = 4  # candidates fetched per requested result, then re-scored exactly
FIXED_SETTINGS = frozenset({"features", "config", "orders", "dim", "parts"})  # written with the first clip, never changed


@dataclass(frozen=True)
class SearchHit:
    """One result: the clip's id and path, its cosine ``score`` under the query's alpha, and the
    similarity of each part on its own (``per_moment``: {order: cosine, and "flow": cosine of the
    token flow where the index has it})."""

    id: int
    path: str
    score: float
    per_moment: dict[int | str, float]


def motion_alpha(motion: float, base: Sequence[float] = (1.0, 8.0, 4.0)) -> tuple[float, ...]:
    """One knob from appearance-only (0) to motion-only (1); 0.5 gives the paper's (1, 8, 4)."""
    if not 0.0 <= motion <= 1.0:
        raise ConfigError(f"motion must be between 0 (appearance only) and 1 (motion only), got {motion}")
    return tuple([2.0 * (1.0 - motion) * base[0]] + [2.0 * motion * weight for weight in base[1:]])


class Index:
    """A folder holding a searchable collection of SemanticMoments embeddings (see module doc).

    ``Index.open(path)`` opens one, ``Index.open(path, create=True)`` also creates it; ``add``, ``remove``,
    ``search``; ``close`` (or use
    as a context manager). Several processes may search while one adds.
    """

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self._db = connection
        self._ann = AnnFile(path)
        self.ef_search = HNSW_EF_SEARCH  # HNSW breadth: higher finds more true neighbours, slower
        self._matrix_cache: tuple | None = None  # generation, ids, raw, units, parts present
        self._fixed: dict[str, Any] = {}  # FIXED_SETTINGS once committed: no query reads them from SQLite again
        self.read_only = False
        self._config: MomentsConfig | None = None
        self._percentile_cache: tuple[Any, np.ndarray] | None = None  # (generation, weights, sample), sorted pair scores
        self._spread_cache: tuple[Any, dict[str, float]] | None = None  # per-part cosine spreads, per generation
        self._segment_cache: tuple[int, Any] | None = None  # generation, segments._Entries (window search)

    # -- opening ----------------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | os.PathLike[str], create: bool = False) -> Index:
        """Open the index folder ``path``; ``create=True`` makes a new one where none exists
        (otherwise a mistyped path raises IndexStoreError instead of silently starting an empty index).

        An existing but empty (0-byte) or unreadable ``index.sqlite`` is never replaced by a new
        index: IndexStoreError says so. Without write permission the index opens read-only:
        searching works, building says it cannot."""
        path = Path(path)
        database = path / "index.sqlite"
        if not database.exists():
            if not create:
                raise IndexStoreError(f"{path}: no index here (build one with `semantic-moments index build`)")
            if path.exists() and not path.is_dir():
                raise IndexStoreError(f"{path}: exists and is not an index folder")
            path.mkdir(parents=True, exist_ok=True)
            create_database(database)
        elif database.stat().st_size == 0:
            raise IndexStoreError(f"{path}: index.sqlite is empty (0 bytes): the index is damaged; remove the folder "
                                  "to start a new one")
        read_only = database.exists() and not (os.access(database, os.W_OK) and os.access(path, os.W_OK))
        try:
            if read_only:
                connection = open_read_only(database)
            else:
                connection = sqlite3.connect(str(database), timeout=30.0, isolation_level=None)
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute("PRAGMA synchronous=NORMAL")
                connection.executescript(SCHEMA)
        except sqlite3.DatabaseError as error:
            raise IndexStoreError(f"{database}: not a readable index ({error})") from None
        index = cls(path, connection)
        index.read_only = read_only
        return index

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- settings ---------------------------------------------------------------------------------

    def _setting(self, key: str) -> Any:
        if key in self._fixed:
            return self._fixed[key]
        try:
            row = self._db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
            value = json.loads(row[0]) if row else None
        except (sqlite3.DatabaseError, json.JSONDecodeError, TypeError) as error:
            raise self._damaged(f"setting {key!r} is unreadable ({error})") from None
        if value is not None and key in FIXED_SETTINGS and not self._db.in_transaction:
            self._fixed[key] = value  # committed (outside a transaction that could still roll back)
        return value

    def _set(self, key: str, value: Any) -> None:
        self._db.execute("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", (key, json.dumps(value)))

    @property
    def feature_settings(self) -> dict[str, Any] | None:
        """What every embedding in the index shares (None for an empty new index)."""
        return self._setting("features")

    @property
    def config(self) -> MomentsConfig | None:
        if self._config is not None:
            return self._config
        data = self._setting("config")
        try:
            config = MomentsConfig.from_dict(data) if data else None
        except ConfigError as error:
            raise self._damaged(f"setting 'config' is invalid ({error})") from None
        if config is not None and "config" in self._fixed:  # committed: it never changes again
            self._config = config
        return config

    def _damaged(self, detail: str) -> IndexStoreError:
        return IndexStoreError(f"index {self.path} is damaged: {detail} (run `semantic-moments index check`, "
                               "then `index repair`)")

    @property
    def generation(self) -> int:
        """Increases with every committed change; readers use it to notice new data."""
        return int(self._setting("generation") or 0)

    def require_settings(self, theirs: dict[str, Any], what: str) -> None:
        """Raise ConfigError, naming both sides, unless ``theirs`` matches the index's feature settings."""
        settings = self.feature_settings
        if settings is not None and settings != theirs:
            differing = sorted(key for key in set(settings) | set(theirs) if settings.get(key) != theirs.get(key))
            details = "; ".join(f"{key}: index has {settings.get(key)}, {what} has {theirs.get(key)}" for key in differing)
            raise ConfigError(f"{what} was made with other settings than the index {self.path} ({details})")

    def _require_compatible(self, embedding: Embedding) -> None:
        self.require_settings(embedding.feature_settings(), embedding.source)
        if self.feature_settings is None:
            return
        if tuple(self._setting("orders")) != tuple(sorted(embedding.moments)):
            raise ConfigError(f"{embedding.source}: has moment orders {sorted(embedding.moments)}, the index "
                              f"{self.path} stores {self._setting('orders')}")
        theirs = [[part_name(key), int(np.size(value))] for key, value in embedding.parts().items()]
        if theirs != self.parts:
            raise ConfigError(f"{embedding.source}: has parts {theirs}, the index {self.path} stores {self.parts}")

    @property
    def parts(self) -> list[list[Any]]:
        """[[name, size], ...] of the stored row: ``moment.K`` per order, then ``flow.G`` per level."""
        parts = self._setting("parts")
        if parts is None and self._setting("orders"):  # an index from before token flow
            parts = [[f"moment.{order}", int(self._setting("dim"))] for order in self._setting("orders")]
        return parts or []

    def _sizes(self) -> list[int]:
        return [int(size) for _, size in self.parts]

    def raw_of(self, embedding: Embedding) -> np.ndarray:
        """The stored row (sum of the part sizes,) float32 of an embedding made with the index's settings."""
        self._require_compatible(embedding)
        parts = embedding.parts()
        if not self.parts:  # an empty index stores the parts in the embedding's own order (``_insert``)
            return np.concatenate([np.asarray(value, dtype=np.float32).ravel() for value in parts.values()])
        return np.concatenate([np.asarray(parts[part_key(name)], dtype=np.float32).ravel() for name, _ in self.parts])

    # -- writing ----------------------------------------------------------------------------------

    def add(self, embedding: Embedding, path: str | None = None, size_bytes: int = 0, mtime: float = 0.0) -> int:
        """Add (or replace) one clip's embedding, committed at once; returns its id.

        Raises ConfigError if the embedding was made with other settings than the index's.
        """
        return self.add_many([(embedding, path, size_bytes, mtime)])[0]

    def add_many(self, items: Iterable[tuple[Embedding, str | None, int, float]]) -> list[int]:
        """Add (embedding, path, size_bytes, mtime) items in one transaction (bulk loading)."""
        ids = []
        with self._transaction():
            for embedding, path, size_bytes, mtime in items:
                ids.append(self._insert(embedding, path or embedding.source, size_bytes, mtime))
            self._set("generation", self.generation + 1)
        return ids

    def add_video(self, embedding: Embedding, windows: Sequence[tuple[float, float, np.ndarray]], path: str | None = None,
                  size_bytes: int = 0, mtime: float = 0.0) -> int:
        """Add (or replace) a long video: its whole-video embedding and its windows, (start, end,
        raw row (``raw_of``)) each, in one transaction; returns the clip id (``segments.py``)."""
        width = sum(self._sizes()) if self.parts else None
        with self._transaction():
            clip_id = self._insert(embedding, path or embedding.source, size_bytes, mtime)
            width = width or sum(self._sizes())
            rows = []
            for start, end, raw in windows:
                raw = np.asarray(raw, dtype=np.float32).ravel()
                if raw.size != width or not np.isfinite(raw).all() or not 0 <= float(start) < float(end):
                    raise ConfigError(f"{path or embedding.source}: window {start}-{end} s is unusable "
                                      f"({raw.size} values, expected {width}, or times out of order)")
                rows.append((clip_id, float(start), float(end), raw.tobytes()))
            self._db.executemany("INSERT INTO windows (clip_id, start_seconds, end_seconds, moments) VALUES (?,?,?,?)",
                                 rows)
            self._set("generation", self.generation + 1)
        return clip_id

    @property
    def window_plan(self) -> dict[str, Any] | None:
        """The windowing every long video of this index was embedded with (``WindowPlan.to_dict``), or None."""
        return self._setting("windows")

    def set_window_plan(self, plan: dict[str, Any]) -> None:
        """Record the windowing of long videos; ConfigError if the index already has another one."""
        current = self.window_plan
        if current is not None and current != plan:
            raise ConfigError(f"the index {self.path} windows long videos as {current}; it cannot also hold windows "
                              f"made as {plan} (build a new index for other windows)")
        if current is None:
            with self._transaction():
                self._set("windows", plan)
                self._set("generation", self.generation + 1)

    def windowed(self) -> dict[str, int]:
        """{path: number of windows} of the videos stored with windows."""
        try:
            rows = self._db.execute("SELECT c.path, COUNT(*) FROM windows w JOIN clips c ON c.id = w.clip_id "
                                    "GROUP BY w.clip_id").fetchall()
        except sqlite3.OperationalError:  # a read-only index from before windows
            return {}
        return {path: int(count) for path, count in rows}

    def has_windows(self) -> bool:
        """True when some video is stored with windows (what ``--segments auto`` asks; no count)."""
        try:
            return bool(self._db.execute("SELECT EXISTS (SELECT 1 FROM windows)").fetchone()[0])
        except sqlite3.OperationalError:
            return False

    def window_count(self) -> int:
        """Windows stored (0 for an index without long videos)."""
        try:
            return int(self._db.execute("SELECT COUNT(*) FROM windows").fetchone()[0])
        except sqlite3.OperationalError:
            return 0

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """One write transaction: committed whole or rolled back whole (also on KeyboardInterrupt).

        SQLite errors (disk full, read-only, I/O) become one IndexStoreError naming the cause; the
        index keeps everything committed before."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            yield
            self._db.execute("COMMIT")
        except BaseException as error:
            if self._db.in_transaction:
                try:
                    self._db.execute("ROLLBACK")
                except sqlite3.Error:
                    pass  # SQLite rolled back already (disk full, I/O error)
            if isinstance(error, sqlite3.Error):
                raise IndexStoreError(f"{self.path}: could not write the index ({error}); what was committed "
                                      "before is intact") from None
            raise

    @contextmanager
    def build_lock(self) -> Iterator[None]:
        """Hold the index's build lock (one build at a time; searches never take it). Raises
        IndexStoreError at once if another process holds it, and for a read-only index."""
        import fcntl

        if self.read_only:
            raise IndexStoreError(f"{self.path}: the index is read-only (no write permission); search works, "
                                  "build needs write access")
        handle = open(self.path / ".build.lock", "a+")
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise IndexStoreError(f"{self.path}: another build is running on this index; wait for it to "
                                      "finish (searches work meanwhile)") from None
            yield
        finally:
            handle.close()

    def _insert(self, embedding: Embedding, key: str, size_bytes: int, mtime: float) -> int:
        self._require_compatible(embedding)
        orders = sorted(embedding.moments)
        parts = embedding.parts()
        row = np.concatenate([np.asarray(value, dtype=np.float32).ravel() for value in parts.values()])
        header = {"pts_seconds": embedding.pts_seconds.tolist(), "frame_indices": embedding.frame_indices.tolist(),
                  "segment": list(embedding.segment) if embedding.segment else None, "backbone": embedding.backbone,
                  "config": embedding.config.to_dict(),
                  # the file the path led to when indexed: a later swap of the path for a link elsewhere shows
                  "real_path": os.path.realpath(key) if os.path.exists(key) else None}
        motion_map = embedding.motion_map
        if self.feature_settings is None:
            self._set("features", embedding.feature_settings())
            self._set("config", embedding.config.to_dict())
            self._set("orders", orders)
            self._set("dim", embedding.dim)
            self._set("parts", [[part_name(key), int(np.size(value))] for key, value in parts.items()])
        old = self._db.execute("SELECT id FROM clips WHERE path = ?", (key,)).fetchone()
        if old:
            self._db.execute("DELETE FROM clips WHERE id = ?", old)
        cursor = self._db.execute(
            "INSERT INTO clips (path, content_hash, size_bytes, mtime, duration_seconds, fps, num_source_frames,"
            " moments, motion_map, map_rows, map_columns, header) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (key, embedding.content_hash, size_bytes, mtime, embedding.duration_seconds, embedding.fps,
             embedding.num_source_frames, row.tobytes(),
             motion_map.astype(np.float32).tobytes() if motion_map is not None else None,
             motion_map.shape[0] if motion_map is not None else None,
             motion_map.shape[1] if motion_map is not None else None, json.dumps(header)))
        return int(cursor.lastrowid)

    def remove(self, paths: Iterable[str]) -> int:
        """Remove clips by path; returns how many were removed."""
        removed = 0
        with self._transaction():
            for path in paths:
                row = self._db.execute("SELECT id FROM clips WHERE path = ?", (str(path),)).fetchone()
                if row:
                    self._db.execute("DELETE FROM clips WHERE id = ?", row)
                    removed += 1
            if removed:
                self._set("generation", self.generation + 1)
        return removed

    def failures(self) -> dict[str, tuple[int, float, str]]:
        """{path: (size_bytes, mtime, reason)} of files that failed to embed, by file version."""
        try:
            rows = self._db.execute("SELECT path, size_bytes, mtime, reason FROM failures").fetchall()
        except sqlite3.OperationalError:  # a read-only index from before this table
            return {}
        return {path: (int(size), float(mtime), reason) for path, size, mtime, reason in rows}

    def record_failure(self, path: str, size_bytes: int, mtime: float, reason: str | None) -> None:
        """Remember that this version of ``path`` failed (``reason``), or forget it (None)."""
        with self._transaction():
            if reason is None:
                self._db.execute("DELETE FROM failures WHERE path = ?", (path,))
            else:
                self._db.execute("INSERT OR REPLACE INTO failures (path, size_bytes, mtime, reason) VALUES (?,?,?,?)",
                                 (path, size_bytes, mtime, reason))

    def touch(self, path: str, size_bytes: int, mtime: float) -> None:
        """Record a new mtime/size for a clip whose content is unchanged."""
        self._db.execute("UPDATE clips SET size_bytes = ?, mtime = ? WHERE path = ?", (size_bytes, mtime, path))

    # -- reading ----------------------------------------------------------------------------------

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM clips").fetchone()[0])

    @property
    def ann(self) -> dict[str, Any] | None:
        """The approximate index in use (file, kind, entries, last id covered), or None for exact search."""
        return self._setting("ann")

    # -- reading scores against the collection (calibration.py) and upkeep (maintenance.py) -----

    def motion_weights(self, motion: float, sample: int = 1000) -> tuple[tuple[float, ...], float]:
        """(alpha, flow weight) of the appearance-to-motion knob (``calibration.motion_weights``)."""
        return calibration.motion_weights(self, motion, sample)

    def percentile(self, scores: Sequence[float], alpha: Sequence[float] | None = None,
                   flow_weight: float | None = None, sample: int = 1000) -> list[float]:
        """Each score's percentile among all indexed pairs (``calibration.percentile``)."""
        return calibration.percentile(self, scores, alpha, flow_weight, sample)

    def search_segments(self, query: Embedding | np.ndarray | str | int, k: int = 10, per_video: int = 1,
                        alpha: Sequence[float] | None = None, flow_weight: float | None = None,
                        exclude: dict[int, tuple[float, float] | None] | None = None) -> list:
        """The k best segments of long videos (and whole clips) for ``query`` (``segments.search_segments``)."""
        return segments.search_segments(self, query, k, per_video, alpha, flow_weight, exclude)

    def timeline(self, query: Embedding | np.ndarray | str | int, clip_id: int, alpha: Sequence[float] | None = None,
                 flow_weight: float | None = None) -> list[tuple[float, float, float]]:
        """[(start, end, score)] along one video (``segments.timeline``)."""
        return segments.timeline(self, query, clip_id, alpha, flow_weight)

    def durations_of(self, ids: Sequence[int]) -> dict[int, float]:
        """{id: duration_seconds} of the given clips (0 where unknown; missing ids left out)."""
        ids = [int(clip_id) for clip_id in ids]
        marks = ",".join("?" * len(ids))
        return {int(clip_id): float(duration or 0.0) for clip_id, duration in
                self._db.execute(f"SELECT id, duration_seconds FROM clips WHERE id IN ({marks})", ids)} if ids else {}

    def durations(self) -> dict[str, float]:
        """{path: duration_seconds} of every indexed clip (0 where unknown)."""
        return {path: float(duration or 0.0) for path, duration in
                self._db.execute("SELECT path, duration_seconds FROM clips")}

    def check(self) -> list[str]:
        """Every problem found (``maintenance.check``); empty when the index is sound."""
        return maintenance.check(self)

    def repair(self) -> list[str]:
        """Remove unusable rows; returns their paths (``maintenance.repair``)."""
        return maintenance.repair(self)

    def export_parquet(self, path: str | os.PathLike[str]) -> int:
        """Write every clip to Parquet; returns the count (``maintenance.export_parquet``)."""
        return maintenance.export_parquet(self, path)

    def motion_alpha(self, motion: float) -> tuple[float, ...]:
        """``motion_alpha`` around this index's own weights (the paper's when it has none yet)."""
        config = self.config
        return motion_alpha(motion, config.alpha if config else (1.0, 8.0, 4.0))

    def motion_flow_weight(self, motion: float) -> float:
        """The flow weight that goes with ``motion_alpha(motion)``: 0 at 0, the index's own at 0.5."""
        config = self.config
        motion_alpha(motion)  # validates the range
        return 2.0 * motion * (config.flow_weight if config else 0.0)

    @property
    def orders(self) -> tuple[int, ...]:
        """The moment orders stored for every clip (empty for a new index)."""
        return tuple(self._setting("orders") or ())

    def remove_ids(self, ids: Iterable[int]) -> list[str]:
        """Remove clips by id; returns the paths removed (ids not in the index are ignored)."""
        paths = [found[1] for found in (self.lookup(int(clip_id)) for clip_id in ids) if found]
        self.remove(paths)
        return paths

    def browse(self, text: str = "", offset: int = 0, limit: int = 60) -> tuple[int, list[tuple[int, str, float]]]:
        """(total, [(id, path, duration_seconds)]) of clips whose path contains ``text`` (any case),
        sorted by path, ``limit`` of them from ``offset``."""
        where = "WHERE instr(lower(path), lower(?)) > 0"
        total = self._db.execute(f"SELECT COUNT(*) FROM clips {where}", (text,)).fetchone()[0]
        rows = self._db.execute(f"SELECT id, path, duration_seconds FROM clips {where} ORDER BY path LIMIT ? OFFSET ?",
                                (text, limit, offset)).fetchall()
        return int(total), [(int(r[0]), r[1], r[2]) for r in rows]

    def score(self, query: np.ndarray | int, clip_id: int, alpha: Sequence[float] | None = None,
              flow_weight: float | None = None) -> SearchHit | None:
        """How ``query`` (a raw row, see ``raw_of``, or an indexed clip's id) scores against one clip,
        or None if the clip is not in the index."""
        raw_query = self.moments_of(query) if isinstance(query, int) else self._raw_array(query)
        hits = self._rescore(raw_query, [clip_id], self._weights(alpha, flow_weight))
        return hits[0] if hits else None

    def files(self) -> dict[str, tuple[str, int, float]]:
        """{path: (content_hash, size_bytes, mtime)} of every indexed clip."""
        rows = self._db.execute("SELECT path, content_hash, size_bytes, mtime FROM clips")
        return {path: (digest, size, mtime) for path, digest, size, mtime in rows}

    def lookup(self, key: str | int) -> tuple[int, str] | None:
        """(id, path) of an indexed clip by id or path, or None."""
        if isinstance(key, (int, np.integer)) or (isinstance(key, str) and key.isdigit()):
            if not 0 <= int(key) < 2**63:  # outside SQLite's integers: no such id
                return None
            row = self._db.execute("SELECT id, path FROM clips WHERE id = ?", (int(key),)).fetchone()
            if row:
                return int(row[0]), row[1]
        row = self._db.execute("SELECT id, path FROM clips WHERE path = ?", (str(key),)).fetchone()
        for variant in ((os.path.abspath(key), str(Path(key).resolve())) if row is None and isinstance(key, str) else ()):
            row = self._db.execute("SELECT id, path FROM clips WHERE path = ?", (variant,)).fetchone()
            if row:
                break
        return (int(row[0]), row[1]) if row else None

    def file_record(self, clip_id: int) -> tuple[int, float, str] | None:
        """(size_bytes, mtime, real path) recorded for a clip's file when it was indexed, or None. The
        real path is where the indexed path led then (through any links); older rows give the path."""
        row = self._db.execute("SELECT size_bytes, mtime, path, header FROM clips WHERE id = ?", (clip_id,)).fetchone()
        if row is None:
            return None
        try:
            real = json.loads(row[3]).get("real_path")
        except (json.JSONDecodeError, AttributeError, TypeError):
            real = None
        return int(row[0]), float(row[1]), real or row[2]

    def rename(self, old: str, new: str) -> None:
        """Record that the clip indexed as ``old`` is now reached as ``new`` (same file, same content)."""
        with self._transaction():
            self._db.execute("UPDATE clips SET path = ? WHERE path = ?", (new, old))
            self._set("generation", self.generation + 1)

    def moments_of(self, clip_id: int) -> np.ndarray:
        """The raw row (sum of the part sizes,) float32 of a clip: its parts laid out as ``parts``."""
        row = self._db.execute("SELECT id, moments FROM clips WHERE id = ?", (clip_id,)).fetchone()
        if row is None:
            raise IndexStoreError(f"{self.path}: no clip with id {clip_id}")
        return self._rows([row], 1)[0]

    def motion_map_of(self, clip_id: int) -> np.ndarray | None:
        row = self._db.execute("SELECT motion_map, map_rows, map_columns FROM clips WHERE id = ?", (clip_id,)).fetchone()
        if row is None or row[0] is None:
            return None
        return np.frombuffer(row[0], dtype=np.float32).reshape(row[1], row[2])

    def _matrix(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ids (N,), raw rows (N, D), unit blocks (N, D)) of every clip, cached per generation."""
        generation = self.generation
        if self._matrix_cache is None or self._matrix_cache[0] != generation:
            rows = self._db.execute("SELECT id, moments FROM clips ORDER BY id").fetchall()
            sizes = self._sizes() or [1]
            ids = np.array([row[0] for row in rows], dtype=np.int64)
            raw = self._rows(rows, 1)
            units = unit_blocks(raw, sizes)
            self._matrix_cache = (generation, ids, raw, units, present_parts(units, sizes))
        return self._matrix_cache[1], self._matrix_cache[2], self._matrix_cache[3]

    def _present(self) -> np.ndarray:
        """(N, K) 1.0 where a clip's part k is not all zero (same order as ``_matrix``)."""
        self._matrix()
        return self._matrix_cache[4]

    # -- search -----------------------------------------------------------------------------------

    def _rows(self, rows: list[tuple[Any, ...]], column: int) -> np.ndarray:
        """(N, D) float32 raw rows from SQLite rows holding the id in column 0 and the blob in
        ``column``; raises the damaged-index error for a row of the wrong size or with NaN/inf."""
        width = sum(self._sizes()) or 1
        if not rows:
            return np.zeros((0, width), np.float32)
        if any(not isinstance(row[column], bytes) or len(row[column]) != 4 * width for row in rows):
            row = next(row for row in rows if self._row_problem(row[column], width))
            raise self._damaged(f"clip {row[0]} {self._row_problem(row[column], width)}")
        matrix = np.frombuffer(b"".join(row[column] for row in rows), dtype=np.float32).reshape(len(rows), width)
        if not np.isfinite(matrix).all():
            row = next(row for row in rows if self._row_problem(row[column], width))
            raise self._damaged(f"clip {row[0]} {self._row_problem(row[column], width)}")
        return matrix

    @staticmethod
    def _row_problem(blob: Any, width: int) -> str | None:
        """Why a stored row is unusable, or None."""
        if not isinstance(blob, bytes) or len(blob) != 4 * width:
            size = len(blob) if isinstance(blob, (bytes, str)) else type(blob).__name__
            return f"has a row of {size} bytes, expected {4 * width}"
        if not np.isfinite(np.frombuffer(blob, dtype=np.float32)).all():
            return "has NaN or infinite values"
        return None

    def _raw_array(self, query: np.ndarray) -> np.ndarray:
        """A raw query row from an array: (D,) as stored, or (K, d) moments of an index without flow."""
        flat = np.asarray(query, dtype=np.float32).reshape(-1)
        if flat.size != sum(self._sizes()):
            raise ConfigError(f"a raw query needs {sum(self._sizes())} values laid out as {self.parts}, got "
                              f"shape {tuple(np.shape(query))}")
        return flat

    def _weights(self, alpha: Sequence[float] | None, flow_weight: float | None = None) -> tuple[float, ...]:
        """One weight per stored part: ``alpha`` per order (default: the index's), then the flow
        weight (default: the index's) for every flow level."""
        config = self.config
        if config is None:
            raise IndexStoreError(f"{self.path}: the index is empty")
        orders = tuple(self._setting("orders"))
        alpha = tuple(float(weight) for weight in (alpha if alpha is not None else config.alpha_for(orders)))
        validate_alpha(alpha, orders)
        flow = config.flow_weight if flow_weight is None else validate_flow_weight(flow_weight)
        levels = len(self.parts) - len(orders)
        if flow > 0 and levels == 0:
            raise ConfigError(f"{self.path}: the index stores no token flow to weight")
        weights = alpha + (flow,) * levels
        top = max(weights)
        return tuple(weight / top for weight in weights)  # only ratios matter; no over/underflow

    def _fused(self, raw: np.ndarray, weights: tuple[float, ...]) -> np.ndarray:
        """(N, D) raw rows -> (N, D') unit fused vectors, by the one implementation in moments.py."""
        import torch

        from .moments import fuse

        config = self.config
        keys, tensors, start = [], {}, 0
        for name, size in self.parts:
            key = part_key(name)
            keys.append(key)
            tensors[key] = torch.from_numpy(np.array(raw[:, start:start + size], dtype=np.float64))
            start += size
        fused = fuse(tensors, keys, weights, config.fusion, config.convention).numpy()
        norms = np.linalg.norm(fused, axis=1, keepdims=True)
        return fused / np.where(norms > 0, norms, 1.0)

    def _separable(self) -> bool:
        """True when the alpha^2-weighted inner product over unit blocks ranks exactly (module doc)."""
        config = self.config
        return config is not None and config.convention == "reference" and config.fusion == "concat"

    def _weighted_query(self, query: np.ndarray, weights: tuple[float, ...]) -> np.ndarray:
        return weighted_query(query, weights, self._sizes())

    def search(
        self,
        query: Embedding | np.ndarray | str | int,
        k: int = 10,
        alpha: Sequence[float] | None = None,
        exclude: Iterable[int] = (),
        flow_weight: float | None = None,
    ) -> list[SearchHit]:
        """The k clips most similar to ``query`` under ``alpha`` and ``flow_weight`` (default: the index's).

        ``query`` is an Embedding (checked against the index's settings), a raw row (``raw_of``), or
        the id/path of an indexed clip (which is then left out of its own results). Scores are exact
        cosine similarities of the fused embeddings; results are sorted by score, then id.
        """
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise ConfigError(f"k must be a whole number of at least 1, got {k!r}")
        if k > 1000:  # never more results than clips (counting rows costs a scan: only for large k)
            k = min(int(k), max(len(self), 1))
        excluded = set(exclude)
        if isinstance(query, Embedding):
            raw_query = self.raw_of(query)
        elif isinstance(query, np.ndarray):
            raw_query = self._raw_array(query)
        else:
            found = self.lookup(query)
            if found is None:
                raise IndexStoreError(f"{query}: not in the index {self.path}")
            excluded.add(found[0])
            raw_query = self.moments_of(found[0])
        weights = self._weights(alpha, flow_weight)
        candidates = self._candidates(raw_query, weights, k * RESCORE_FACTOR + len(excluded))
        candidates = [clip_id for clip_id in candidates if clip_id not in excluded]
        return self._rescore(raw_query, candidates, weights)[:k]

    def _candidates(self, raw_query: np.ndarray, alpha: tuple[float, ...], count: int) -> list[int]:
        ann = self._load_ann()
        if ann is None:
            ids, raw, units = self._matrix()
            if len(ids) == 0:
                return []
            if self._separable():  # the exact cosine (rows.py): a still query finds still clips
                scores = weighted_scores(units, self._present(), raw_query, alpha, self._sizes())
            else:  # other conventions/fusions: score everything exactly
                scores = self._fused(raw, alpha) @ self._fused(raw_query[None], alpha)[0]
            if count < len(scores):  # the best ``count`` in O(N), then only those sorted
                best = np.argpartition(-scores, count - 1)[:count]
                top = best[np.argsort(-scores[best], kind="stable")]
            else:
                top = np.argsort(-scores, kind="stable")
            return ids[top].tolist()
        index, covered_up_to = ann
        _, found = index.search(self._weighted_query(raw_query, alpha)[None], count)
        candidates = [int(clip_id) for clip_id in found[0] if clip_id >= 0]
        rows = self._db.execute("SELECT id, moments FROM clips WHERE id > ?", (covered_up_to,)).fetchall()
        if rows:  # committed after the ANN file was written: scan them exactly
            newer = self._rows(rows, 1)
            scores = self._fused(newer, alpha) @ self._fused(raw_query[None], alpha)[0]
            candidates += [rows[i][0] for i in np.argsort(-scores, kind="stable")[:count]]
        return candidates

    def _rescore(self, raw_query: np.ndarray, candidates: list[int], alpha: tuple[float, ...]) -> list[SearchHit]:
        if not candidates:
            return []
        marks = ",".join("?" * len(candidates))
        rows = self._db.execute(f"SELECT id, path, moments FROM clips WHERE id IN ({marks})", candidates).fetchall()
        if not rows:
            return []  # every candidate was removed meanwhile
        raw = self._rows(rows, 2)
        scores = self._fused(raw, alpha) @ self._fused(raw_query[None], alpha)[0]
        similarities = part_similarities(unit_blocks(raw, self._sizes()), raw_query, self.parts)
        hits = [SearchHit(int(row[0]), row[1], float(score), parts)
                for row, score, parts in zip(rows, scores, similarities)]
        return sorted(hits, key=lambda hit: (-round(hit.score, 6), hit.id))

    # -- the approximate index (ann.py) ----------------------------------------------------------

    def write_ann(self, kind: str = "auto") -> str:
        """Bring the ANN file up to date with the committed rows; returns the kind used (``ann.py``)."""
        return write_ann(self, kind)

    def _load_ann(self):
        """(FAISS index, last id it covers) of the current ANN file, or None for exact search."""
        return self._ann.load(self._setting("ann"), self.ef_search)
