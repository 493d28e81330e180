"""Keeping an index sound and portable: finding damage (``check``), dropping unusable rows
(``repair``) and writing the collection out as Parquet (``export_parquet``). Works on the
``RowStore`` and the ``RowLayout``; removal of clips is the caller's (``Index.remove``)."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

from ..errors import ConfigError, IndexStoreError
from .layout import RowLayout
from .rows import row_problem
from .store import RowStore


def export_parquet(store: RowStore, layout: RowLayout, path: str | os.PathLike[str]) -> int:
    """Write every clip to a Parquet file that pandas, DuckDB, Spark or a vector database read:
    ``id``, ``path``, ``content_hash``, ``size_bytes``, ``mtime``, ``duration_seconds``, ``fps``,
    ``num_source_frames``, one float32 list column per stored part (``moment_1``.., ``flow_2``..;
    raw, as stored), and the index's settings as JSON in the file's metadata
    (``semantic_moments.features``, ``.config``, ``.parts``). Written atomically; returns the
    number of clips. Needs ``pyarrow``."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigError("Parquet export needs `pip install pyarrow`") from None
    rows = store.execute("SELECT id, path, content_hash, size_bytes, mtime, duration_seconds, fps, "
                         "num_source_frames, moments FROM clips ORDER BY id").fetchall()
    raw = store.decode([(row[0], row[8]) for row in rows], 1, layout.width)
    columns: dict[str, Any] = {name: [row[i] for row in rows] for i, name in enumerate(
        ("id", "path", "content_hash", "size_bytes", "mtime", "duration_seconds", "fps", "num_source_frames"))}
    start = 0
    for name, size in layout.parts:
        values = pa.array(raw[:, start:start + size].reshape(-1), type=pa.float32())
        columns[name.replace(".", "_")] = pa.FixedSizeListArray.from_arrays(values, size)
        start += size
    metadata = {f"semantic_moments.{key}": json.dumps(value) for key, value in
                (("features", layout.features), ("config", store.setting("config")), ("parts", layout.part_list()))}
    table = pa.table(columns).replace_schema_metadata(metadata)
    target = Path(path)
    temporary = target.with_name(f".{target.name}.tmp")
    pq.write_table(table, temporary)
    os.replace(temporary, target)
    return len(rows)


def check(store: RowStore) -> list[str]:
    """Every problem found: SQLite's integrity check, then each row's size and finiteness.
    Empty when the index is sound."""
    problems = [f"sqlite: {row[0]}" for row in store.execute("PRAGMA integrity_check") if row[0] != "ok"]
    try:
        width = RowLayout.read(store).width  # also validates the stored config
    except IndexStoreError as error:
        return problems + [str(error)]
    for clip_id, path, blob in store.execute("SELECT id, path, moments FROM clips"):
        problem = row_problem(blob, width)
        if problem:
            problems.append(f"clip {clip_id} {problem} ({path})")
    for clip_id, path in _bad_windows(store, width):
        problems.append(f"clip {clip_id} has an unusable window row ({path})")
    return problems


def _bad_windows(store: RowStore, width: int) -> list[tuple[int, str]]:
    """(clip id, path) of the videos with a damaged window row (wrong size, NaN, times out of order)."""
    try:
        rows = store.execute("SELECT w.clip_id, c.path, w.moments, w.start_seconds, w.end_seconds FROM windows w "
                             "JOIN clips c ON c.id = w.clip_id").fetchall()
    except sqlite3.OperationalError:  # an index from before windows
        return []
    bad = {}
    for clip_id, path, blob, start, end in rows:
        if row_problem(blob, width) or not (isinstance(start, (int, float)) and isinstance(end, (int, float))
                                            and 0 <= start < end):
            bad[clip_id] = path
    return sorted(bad.items())


def unusable_paths(store: RowStore, layout: RowLayout) -> list[str]:
    """The paths of clips ``check`` finds unusable: a bad row, or a bad window row of its video
    (the video is embedded again whole)."""
    width = layout.width
    bad = [path for clip_id, path, blob in store.execute("SELECT id, path, moments FROM clips")
           if row_problem(blob, width)]
    return bad + [path for _, path in _bad_windows(store, width) if path not in bad]
