"""The index's SQLite file: its schema, atomic creation, read-only opening. No search logic.

Tables: ``settings`` (key -> JSON), ``clips`` (one row per clip: path, file identity, raw parts as
one float32 blob, motion map, header JSON), ``windows`` (one row per window of a long video: clip id,
start, end, raw parts; deleted with their clip by a trigger, whatever removes it) and ``failures``
(files that failed to embed, by version).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from .errors import IndexStoreError

SCHEMA = """
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS clips (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT UNIQUE NOT NULL,
    content_hash TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    mtime REAL NOT NULL,
    duration_seconds REAL,
    fps REAL,
    num_source_frames INTEGER,
    moments BLOB NOT NULL,
    motion_map BLOB,
    map_rows INTEGER,
    map_columns INTEGER,
    header TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS windows (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    clip_id INTEGER NOT NULL,
    start_seconds REAL NOT NULL,
    end_seconds REAL NOT NULL,
    moments BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS windows_by_clip ON windows (clip_id);
CREATE TRIGGER IF NOT EXISTS clip_windows_go_with_it AFTER DELETE ON clips
BEGIN DELETE FROM windows WHERE clip_id = OLD.id; END;
CREATE TABLE IF NOT EXISTS failures (
    path TEXT PRIMARY KEY,
    size_bytes INTEGER NOT NULL,
    mtime REAL NOT NULL,
    reason TEXT NOT NULL
);
"""


def create_database(database: Path) -> None:
    """Make an empty index database atomically: built under a temporary name with its schema, then
    renamed, so a process killed while creating it never leaves a 0-byte ``index.sqlite`` (which
    ``Index.open`` refuses as damaged)."""
    temporary = database.with_name(f".{database.name}.{os.getpid()}.new")
    try:
        connection = sqlite3.connect(str(temporary), isolation_level=None)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.executescript(SCHEMA)
        finally:
            connection.close()
        try:
            os.link(temporary, database)  # never replaces an index another process created meanwhile
        except FileExistsError:
            pass
        except OSError:  # a filesystem without hard links
            if not database.exists():
                os.replace(temporary, database)
    except sqlite3.DatabaseError as error:
        raise IndexStoreError(f"{database}: cannot create an index ({error})") from None
    finally:
        for leftover in (temporary, Path(f"{temporary}-wal"), Path(f"{temporary}-shm")):
            leftover.unlink(missing_ok=True)


def open_read_only(database: Path) -> sqlite3.Connection:
    """A read-only connection; ``immutable`` where the folder cannot hold SQLite's shared-memory file."""
    from urllib.parse import quote

    uri = f"file:{quote(str(database.resolve()))}"
    try:
        connection = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=30.0, isolation_level=None)
        connection.execute("SELECT COUNT(*) FROM settings").fetchone()
        return connection
    except sqlite3.OperationalError:
        return sqlite3.connect(f"{uri}?immutable=1", uri=True, isolation_level=None)
