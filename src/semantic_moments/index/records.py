"""Writing an index: clip rows and window rows, and the bookkeeping builds read (files that failed,
paths taken out by hand). SQL over the ``RowStore``; every function runs inside the caller's
transaction (``RowStore.transaction``) unless it says it opens its own."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from ..embedding import Embedding
from ..errors import ConfigError
from .layout import RowLayout
from .rows import part_name
from .store import RowStore


@dataclass(frozen=True)
class Failure:
    """A file version that failed to embed: its size and mtime then, why, and the window plan of
    the build it failed in (None for a plain build)."""

    size_bytes: int
    mtime: float
    reason: str
    windows: dict[str, Any] | None = None


class IndexedFile(NamedTuple):
    """What a build compares a file with: its content hash, size and mtime when indexed."""

    content_hash: str
    size_bytes: int
    mtime: float


class FileRecord(NamedTuple):
    """A clip's file as recorded when indexed: size, mtime, the real path it led to, content hash."""

    size_bytes: int
    mtime: float
    real_path: str
    content_hash: str


def insert_clip(store: RowStore, layout: RowLayout, embedding: Embedding, key: str, size_bytes: int, mtime: float,
                where: str) -> int:
    """Store (or replace) one clip's row under the path ``key``; the first clip of an index also
    fixes its settings. Returns the clip id. ConfigError if the embedding does not fit ``layout``."""
    layout.require_compatible(embedding, where)
    orders = sorted(embedding.moments)
    parts = embedding.parts()
    row = np.concatenate([np.asarray(value, dtype=np.float32).ravel() for value in parts.values()])
    header = {"pts_seconds": embedding.pts_seconds.tolist(), "frame_indices": embedding.frame_indices.tolist(),
              "segment": list(embedding.segment) if embedding.segment else None, "backbone": embedding.backbone,
              "config": embedding.config.to_dict(),
              # the file the path led to when indexed: a later swap of the path for a link elsewhere shows
              "real_path": os.path.realpath(key) if os.path.exists(key) else None}
    motion_map = embedding.motion_map
    if store.setting("features") is None:
        store.set_setting("features", embedding.feature_settings())
        store.set_setting("config", embedding.config.to_dict())
        store.set_setting("orders", orders)
        store.set_setting("dim", embedding.dim)
        store.set_setting("parts", [[part_name(key), int(np.size(value))] for key, value in parts.items()])
    old = store.execute("SELECT id FROM clips WHERE path = ?", (key,)).fetchone()
    if old:
        store.execute("DELETE FROM clips WHERE id = ?", old)
    cursor = store.execute(
        "INSERT INTO clips (path, content_hash, size_bytes, mtime, duration_seconds, fps, num_source_frames,"
        " parts, motion_map, map_rows, map_columns, header) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        (key, embedding.content_hash, size_bytes, mtime, embedding.duration_seconds, embedding.fps,
         embedding.num_source_frames, row.tobytes(),
         motion_map.astype(np.float32).tobytes() if motion_map is not None else None,
         motion_map.shape[0] if motion_map is not None else None,
         motion_map.shape[1] if motion_map is not None else None, json.dumps(header)))
    return int(cursor.lastrowid)


def insert_windows(store: RowStore, clip_id: int, windows: Sequence[tuple[float, float, np.ndarray]], width: int,
                   source: str) -> None:
    """Store a long video's window rows, (start, end, raw row) each; ConfigError for an unusable one."""
    rows = []
    for start, end, raw in windows:
        raw = np.asarray(raw, dtype=np.float32).ravel()
        if raw.size != width or not np.isfinite(raw).all() or not 0 <= float(start) < float(end):
            raise ConfigError(f"{source}: window {start}-{end} s is unusable "
                              f"({raw.size} values, expected {width}, or times out of order)")
        rows.append((clip_id, float(start), float(end), raw.tobytes()))
    store.executemany("INSERT INTO windows (clip_id, start_seconds, end_seconds, parts) VALUES (?,?,?,?)", rows)


def delete_paths(store: RowStore, paths: Iterable[str]) -> int:
    """Delete clips (and their windows) by path; returns how many were there."""
    removed = 0
    for path in paths:
        row = store.execute("SELECT id FROM clips WHERE path = ?", (str(path),)).fetchone()
        if row:
            store.execute("DELETE FROM clips WHERE id = ?", row)
            removed += 1
    return removed


def failures(store: RowStore) -> dict[str, Failure]:
    """{path: Failure} of files that failed to embed, by file version."""
    rows = store.execute("SELECT path, size_bytes, mtime, reason, windows FROM failures").fetchall()
    return {path: Failure(int(size), float(mtime), reason, json.loads(windows) if windows else None)
            for path, size, mtime, reason, windows in rows}


def record_failure(store: RowStore, path: str, size_bytes: int, mtime: float, reason: str | None,
                   windows: dict[str, Any] | None = None) -> None:
    """Remember that this version of ``path`` failed (``reason``) under the window plan ``windows``,
    or forget it (``reason`` None)."""
    if reason is None:
        store.execute("DELETE FROM failures WHERE path = ?", (path,))
    else:
        store.execute("INSERT OR REPLACE INTO failures (path, size_bytes, mtime, reason, windows) VALUES (?,?,?,?,?)",
                      (path, size_bytes, mtime, reason, json.dumps(windows) if windows else None))


def removed_paths(store: RowStore) -> set[str]:
    """Paths taken out by hand (``Index.remove_ids``) that builds leave out."""
    return {row[0] for row in store.execute("SELECT path FROM removed")}


def remember_removed(store: RowStore, paths: Sequence[str]) -> None:
    store.executemany("INSERT OR REPLACE INTO removed (path, removed_at) VALUES (?, ?)",
                      [(path, time.time()) for path in paths])


def forget_removed(store: RowStore, paths: Iterable[str] | None = None) -> int:
    """Let builds index removed paths again (None: all); returns how many."""
    if paths is None:
        return store.execute("DELETE FROM removed").rowcount
    return sum(store.execute("DELETE FROM removed WHERE path = ?", (str(path),)).rowcount for path in paths)


def windowed(store: RowStore) -> dict[str, int]:
    """{path: number of windows} of the videos stored with windows."""
    rows = store.execute("SELECT c.path, COUNT(*) FROM windows w JOIN clips c ON c.id = w.clip_id "
                         "GROUP BY w.clip_id").fetchall()
    return {path: int(count) for path, count in rows}


def has_windows(store: RowStore) -> bool:
    """True when some video is stored with windows (no count)."""
    return bool(store.execute("SELECT EXISTS (SELECT 1 FROM windows)").fetchone()[0])


def window_count(store: RowStore) -> int:
    return int(store.execute("SELECT COUNT(*) FROM windows").fetchone()[0])


def signatures(store: RowStore, ids: Sequence[int]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """{clip id: (thumbnails (crops, N, pixels) uint8, times (N,) float64 seconds)} kept for these
    clips (those without are left out)."""
    import zlib

    found = {}
    for start in range(0, len(ids), 500):
        chunk = [int(clip_id) for clip_id in ids[start:start + 500]]
        marks = ",".join("?" * len(chunk))
        for clip_id, shape, times, data in store.execute(
                f"SELECT clip_id, shape, times, thumbnails FROM signatures WHERE clip_id IN ({marks})", chunk):
            try:
                thumbs = np.frombuffer(zlib.decompress(data), np.uint8).reshape(json.loads(shape))
                found[int(clip_id)] = (thumbs, np.frombuffer(times, np.float64).copy())
            except (zlib.error, ValueError, TypeError):
                continue  # damaged: made again from the file
    return found


def keep_signature(store: RowStore, clip_id: int, thumbs: np.ndarray, times: np.ndarray) -> None:
    """Keep a clip's frame signatures (inside the caller's transaction); they go with the clip."""
    import zlib

    thumbs = np.ascontiguousarray(thumbs, np.uint8)
    store.execute("INSERT OR REPLACE INTO signatures (clip_id, shape, times, thumbnails) "
                  "SELECT id, ?, ?, ? FROM clips WHERE id = ?",
                  (json.dumps(list(thumbs.shape)), np.asarray(times, np.float64).tobytes(), zlib.compress(thumbs.tobytes(), 6),
                   int(clip_id)))
