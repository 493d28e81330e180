"""Keeping an index sound and portable: finding damage (``check``), dropping unusable rows
(``repair``) and writing the collection out as Parquet (``export_parquet``). Works on the
``RowStore`` and the ``RowLayout``; removal of clips is the caller's (``Index.remove``)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ..config import MomentsConfig
from ..embedding import MAX_MAP_SIDE, MAX_VALUE, Embedding
from ..errors import ConfigError, IndexStoreError
from ..files import require_new_output, write_atomically
from .layout import RowLayout
from .rows import row_problem
from .store import RowStore


class ClipRow(NamedTuple):
    """A whole ``clips`` row (the columns ``CLIP_ROW`` selects), read by name."""

    id: int
    path: str
    content_hash: str
    size_bytes: int
    mtime: float
    duration_seconds: float | None
    fps: float | None
    num_source_frames: int | None
    parts: bytes
    motion_map: bytes | None
    map_rows: int | None
    map_columns: int | None
    header: str


CLIP_ROW = ", ".join(ClipRow._fields)


class WindowRow(NamedTuple):
    clip_id: int
    id: int
    start_seconds: float
    end_seconds: float
    parts: bytes


def stored_embedding(layout: RowLayout, row: ClipRow) -> Embedding:
    """The Embedding a clip row holds: its parts split back by the layout, its times, settings and
    backbone from the row's header."""
    path, content_hash, duration, fps, frames = row.path, row.content_hash, row.duration_seconds, row.fps, \
        row.num_source_frames
    blob, motion_map, rows, columns, header = row.parts, row.motion_map, row.map_rows, row.map_columns, row.header
    header = json.loads(header)
    values = np.frombuffer(blob, dtype=np.float32)
    moments, flow, keypoints, start = {}, {}, {}, 0
    for name, size in layout.parts:
        part = values[start:start + size].copy()
        start += size
        kind, _, key = name.partition(".")
        if kind == "moment":
            moments[int(key)] = part
        elif kind == "flow":
            flow[int(key)] = part
        else:
            keypoints[key] = part
    segment = header.get("segment")
    return Embedding(moments=moments, config=MomentsConfig.from_dict(header["config"]), backbone=header["backbone"],
                     source=path, content_hash=content_hash,
                     pts_seconds=np.asarray(header.get("pts_seconds", []), dtype=np.float64),
                     frame_indices=np.asarray(header.get("frame_indices", []), dtype=np.int64),
                     duration_seconds=float(duration or 0.0), fps=fps, num_source_frames=int(frames or 0),
                     segment=tuple(segment) if segment else None,
                     motion_map=np.frombuffer(motion_map, dtype=np.float32).reshape(rows, columns).copy()
                     if motion_map is not None else None, flow=flow, keypoints=keypoints)


def is_export(path: Path) -> bool:
    """True for a Parquet file this package exported (its metadata names our settings)."""
    try:
        import pyarrow.parquet as pq

        return b"semantic_moments.features" in (pq.read_schema(path).metadata or {})
    except Exception:  # noqa: BLE001 - anything unreadable is not ours
        return False


def export_parquet(store: RowStore, layout: RowLayout, path: str | os.PathLike[str], overwrite: bool = False) -> int:
    """Write every clip, and every window of a long video, to a Parquet file that pandas, DuckDB,
    Spark or a vector database read: ``id`` (the clip's), ``kind`` (``clip`` or ``window``),
    ``window_id``, ``start_seconds``/``end_seconds`` (a clip: 0 and its duration), ``path``,
    ``content_hash``, ``size_bytes``, ``mtime``, ``duration_seconds``, ``fps``, ``num_source_frames``;
    ``vector``: the fused vector at the index's own weights (float32, unit length: its inner products
    are the cosines ``search`` ranks by), and one float32 list column per stored part (``moment_1``..,
    ``flow_2``..; raw, as stored). The file's metadata says what made the vectors: the index's
    settings as JSON (``semantic_moments.features``, ``.config``, ``.parts``, ``.weights``) and
    ``semantic_moments.model`` (backbone, weights, layer, preset, T, minimum rate, package version).
    Written atomically; an existing file is replaced only when it is an earlier export (or
    ``overwrite``), never a folder, device, link or anything inside an index folder (ConfigError).
    Returns the number of rows. Needs ``pyarrow``."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigError("Parquet export needs `pip install pyarrow`") from None
    require_new_output(path, is_export, overwrite, "export")  # before any work
    from .. import __version__
    from ..settings import PRESETS

    clips = [ClipRow(*row) for row in store.execute(f"SELECT {CLIP_ROW} FROM clips ORDER BY id")]
    windows = [WindowRow(*row) for row in store.execute(
        "SELECT w.clip_id, w.id, w.start_seconds, w.end_seconds, w.parts FROM windows w "
        "JOIN clips c ON c.id = w.clip_id ORDER BY w.clip_id, w.start_seconds")]
    by_id = {clip.id: clip for clip in clips}
    raw = np.concatenate([store.decode([(clip.id, clip.parts) for clip in clips], 1, layout.width),
                          store.decode([(window.clip_id, window.parts) for window in windows], 1, layout.width)])
    # one record per row of the file: (clip, kind, window id, start, end)
    records = [(clip, "clip", None, 0.0, clip.duration_seconds) for clip in clips] + \
              [(by_id[window.clip_id], "window", window.id, window.start_seconds, window.end_seconds)
               for window in windows]
    columns: dict[str, Any] = {name: [getattr(clip, name) for clip, *_ in records] for name in
                               ("id", "path", "content_hash", "size_bytes", "mtime", "duration_seconds", "fps",
                                "num_source_frames")}
    columns["kind"] = [kind for _, kind, *_ in records]
    columns["window_id"] = [window_id for _, _, window_id, _, _ in records]
    columns["start_seconds"] = [float(start) for *_, start, _ in records]
    columns["end_seconds"] = [float(end) if end is not None else None for *_, end in records]
    # each clip's embedding file bytes (what `index ingest` reads back: export, then ingest, is the same index)
    columns["embedding"] = pa.array([stored_embedding(layout, clip).to_bytes() if kind == "clip" else None
                                     for clip, kind, *_ in records], type=pa.binary())
    weights = layout.weights(None, None, str(store.path)) if layout.config is not None else ()
    if layout.config is not None:
        vectors = layout.unit_fused(raw, weights)
        columns["vector"] = pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1), type=pa.float32()),
                                                              vectors.shape[1])
    start = 0
    for name, size in layout.parts:
        values = pa.array(raw[:, start:start + size].reshape(-1), type=pa.float32())
        columns[name.replace(".", "_")] = pa.FixedSizeListArray.from_arrays(values, size)
        start += size
    features = layout.features or {}
    config = layout.config
    backbone = features.get("backbone") or {}
    preset = next((name for name, settings in PRESETS.items() if config is not None
                   and (settings.backbone, settings.layer, settings.frames, settings.min_rate, settings.keypoints)
                   == (backbone.get("name"), backbone.get("layer"), config.num_frames, config.min_rate,
                       config.keypoints)), None)
    model = {"backbone": backbone.get("name"), "weights": backbone.get("weights"), "layer": backbone.get("layer"),
             "preset": preset, "num_frames": config.num_frames if config else None,
             "min_rate": config.min_rate if config else None, "package_version": __version__}
    metadata = {f"semantic_moments.{key}": json.dumps(value) for key, value in
                (("features", layout.features), ("config", store.setting("config")), ("parts", layout.part_list()),
                 ("windows", store.setting("windows")),
                 ("weights", list(weights)), ("model", model))}
    table = pa.table(columns).replace_schema_metadata(metadata)
    write_atomically(path, lambda temporary: pq.write_table(table, temporary))
    return len(records)


CLIP_COLUMNS = "id, path, parts, duration_seconds, fps, motion_map, map_rows, map_columns"


MAX_PATH_CHARACTERS = 4096


def path_problem(path: object, video: bool = True) -> str | None:
    """Why ``path`` is not one a local build could have indexed, or None: it must be absolute,
    normalised text (no ``..``, no doubled separators: a relative or dotted path would be read against
    whatever folder a server runs in, or lead out of the indexed folders) of at most 4096 characters
    without NUL or line breaks, naming a video file (``VIDEO_SUFFIXES``; ``video=False``: any file, as
    ``index build --glob`` may index)."""
    from ..video import VIDEO_SUFFIXES

    if not isinstance(path, str) or not path:
        return f"path {str(path)[:80]!r} is not a text path"
    if len(path) > MAX_PATH_CHARACTERS or any(character in path for character in "\x00\n\r"):
        return f"path {path[:80]!r}... is longer than {MAX_PATH_CHARACTERS} characters or holds NUL/line breaks"
    if not os.path.isabs(path) or os.path.normpath(path) != path:
        return f"path {path!r} is not absolute and normalised"
    if video and os.path.splitext(path)[1].lower() not in VIDEO_SUFFIXES:
        return f"path {path!r} does not name a video file (a build indexes {', '.join(sorted(VIDEO_SUFFIXES))})"
    return None


def clip_problem(row: tuple[Any, ...], width: int) -> str | None:
    """Why a ``clips`` row (``CLIP_COLUMNS``) is unusable, or None: its parts (size, finite, within
    MAX_VALUE), a path that is not absolute text, a duration or fps that is not a finite positive
    number, a motion map that is not the patch grid it says it is."""
    clip_id, path, blob, duration, fps, motion_map, rows, columns = row
    problem = row_problem(blob, width)
    if problem:
        return problem
    if np.abs(np.frombuffer(blob, dtype=np.float32)).max(initial=0.0) > MAX_VALUE:
        return f"has values beyond {MAX_VALUE:g}"
    problem = path_problem(path, video=False)
    if problem:
        return f"has a {problem.replace('path ', 'path that is not indexable: ', 1)}"
    for name, value in (("duration", duration), ("fps", fps)):
        if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
            return f"has a {name} that is not a finite, non-negative number ({value!r})"
    if motion_map is not None:
        if not (isinstance(rows, int) and isinstance(columns, int) and 0 < rows <= MAX_MAP_SIDE
                and 0 < columns <= MAX_MAP_SIDE and isinstance(motion_map, bytes) and len(motion_map) == 4 * rows * columns):
            return f"has a motion map that is not a patch grid ({rows} x {columns})"
    return None


def check(store: RowStore) -> list[str]:
    """Every problem found: SQLite's integrity check, then each clip row (``clip_problem``) and
    window row. Empty when the index is sound."""
    problems = [f"sqlite: {row[0]}" for row in store.execute("PRAGMA integrity_check") if row[0] != "ok"]
    try:
        width = RowLayout.read(store).width  # also validates the stored config
    except IndexStoreError as error:
        return problems + [str(error)]
    for row in store.execute(f"SELECT {CLIP_COLUMNS} FROM clips"):
        problem = clip_problem(row, width)
        if problem:
            problems.append(f"clip {row[0]} {problem} ({str(row[1])[:200]})")
    for clip_id, path in _bad_windows(store, width):
        problems.append(f"clip {clip_id} has an unusable window row ({path})")
    return problems


def _bad_windows(store: RowStore, width: int) -> list[tuple[int, str]]:
    """(clip id, path) of the videos with a damaged window row (wrong size, NaN, times out of order)."""
    rows = store.execute("SELECT w.clip_id, c.path, w.parts, w.start_seconds, w.end_seconds FROM windows w "
                         "JOIN clips c ON c.id = w.clip_id").fetchall()
    bad = {}
    for clip_id, path, blob, start, end in rows:
        if row_problem(blob, width) or not (isinstance(start, (int, float)) and isinstance(end, (int, float))
                                            and math.isfinite(end) and 0 <= start < end):
            bad[clip_id] = path
    return sorted(bad.items())


def unusable_paths(store: RowStore, layout: RowLayout) -> list[str]:
    """The paths of clips ``check`` finds unusable: a bad row, or a bad window row of its video
    (the video is embedded again whole)."""
    width = layout.width
    bad = [row[1] for row in store.execute(f"SELECT {CLIP_COLUMNS} FROM clips") if clip_problem(row, width)]
    return bad + [path for _, path in _bad_windows(store, width) if path not in bad]
