"""The index's SQLite file: its schema, atomic creation, opening, settings, transactions and the
decoding of stored rows. No search logic.

The schema is versioned (``SCHEMA_VERSION``, kept in SQLite's ``user_version``): an index from an
older version is upgraded in place when opened for writing (``upgrade``: the tables and columns it
lacks are added, in one transaction) and read as the current schema when opened read-only
(``read_as_current``: TEMP stand-ins, nothing written); one from a newer version is refused. No other
part of the package handles old layouts.

Tables: ``settings`` (key -> JSON), ``clips`` (one row per clip: path, file identity, raw parts as
one float32 blob, motion map, header JSON), ``windows`` (one row per window of a long video: clip id,
start, end, raw parts; deleted with their clip by a trigger, whatever removes it) and ``failures``
(files that failed to embed, by version), ``signatures`` (each clip's frame signatures, for copies)
and ``removed`` (paths taken out with ``index remove``, which
builds leave out until asked to take them back).

``RowStore`` is the one object the index's other parts (``layout``, ``matrix``, ``ann``,
``calibration``, ``segments``, ``maintenance``) read and write through; none of them knows ``Index``.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import IndexStoreError
from .rows import row_problem

# The tables, current version. An index records the schema version it was written with
# (``PRAGMA user_version``; 0: made before versions were recorded).
TABLES = {
    "settings": "(key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "clips": """(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT UNIQUE NOT NULL,
    content_hash TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    mtime REAL NOT NULL,
    duration_seconds REAL,
    fps REAL,
    num_source_frames INTEGER,
    parts BLOB NOT NULL,
    motion_map BLOB,
    map_rows INTEGER,
    map_columns INTEGER,
    header TEXT NOT NULL
)""",
    "windows": """(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    clip_id INTEGER NOT NULL,
    start_seconds REAL NOT NULL,
    end_seconds REAL NOT NULL,
    parts BLOB NOT NULL
)""",
    "failures": """(
    path TEXT PRIMARY KEY,
    size_bytes INTEGER NOT NULL,
    mtime REAL NOT NULL,
    reason TEXT NOT NULL,
    windows TEXT
)""",
    "removed": "(path TEXT PRIMARY KEY, removed_at REAL NOT NULL)",
    # a clip's frame signatures (``copies.py``), made the first time copies are looked for and kept
    "signatures": """(
    clip_id INTEGER PRIMARY KEY,
    shape TEXT NOT NULL,
    times BLOB NOT NULL,
    thumbnails BLOB NOT NULL
)""",
}
STATEMENTS = tuple(f"CREATE TABLE IF NOT EXISTS {name} {columns}" for name, columns in TABLES.items()) + (
    "CREATE INDEX IF NOT EXISTS windows_by_clip ON windows (clip_id)",
    # a clip's windows go with it, whatever removes it
    "CREATE TRIGGER IF NOT EXISTS clip_windows_go_with_it AFTER DELETE ON clips "
    "BEGIN DELETE FROM windows WHERE clip_id = OLD.id; END",
    "CREATE TRIGGER IF NOT EXISTS clip_signatures_go_with_it AFTER DELETE ON clips "
    "BEGIN DELETE FROM signatures WHERE clip_id = OLD.id; END",
)
SCHEMA_VERSION = 2  # 1: rows in 'parts', windows, failures.windows, removed; 2: signatures
# What changed since the first versions: columns added to a table, (table, column, declaration), and
# columns renamed, (table, old name, new name): a row of raw parts was once called "moments", the name
# of the statistics M(k) that are only some of its parts. Tables added are those of TABLES an older
# index lacks.
ADDED_COLUMNS = (("failures", "windows", "TEXT"),)
RENAMED_COLUMNS = (("clips", "moments", "parts"), ("windows", "moments", "parts"))


def schema_version(connection: sqlite3.Connection) -> int:
    return int(connection.execute("PRAGMA user_version").fetchone()[0])


def _changes(connection: sqlite3.Connection) -> tuple[list[str], list[tuple[str, str, str]], list[tuple[str, str, str]]]:
    """What an index lacks against the current schema: (tables, added columns, renamed columns)."""
    tables = {row[0] for row in connection.execute("SELECT name FROM main.sqlite_master WHERE type = 'table'")}
    columns = {table: {row[1] for row in connection.execute(f"PRAGMA main.table_info({table})")} for table in tables}
    return ([name for name in TABLES if name not in tables],
            [change for change in ADDED_COLUMNS if change[0] in tables and change[1] not in columns[change[0]]],
            [change for change in RENAMED_COLUMNS if change[0] in tables and change[1] in columns[change[0]]])


def is_older(connection: sqlite3.Connection, database: Path) -> bool:
    """True for an index from before SCHEMA_VERSION; IndexStoreError for one from a newer version."""
    version = schema_version(connection)
    if version > SCHEMA_VERSION:
        raise IndexStoreError(f"{database}: made by a newer semantic-moments (index schema {version}, this version "
                              f"reads up to {SCHEMA_VERSION}); upgrade semantic-moments")
    return version < SCHEMA_VERSION


def upgrade(connection: sqlite3.Connection, database: Path) -> None:
    """Bring an index opened for writing to SCHEMA_VERSION in one transaction: the tables it lacks
    created, columns added (SQLite's ADD COLUMN: nothing rewritten) and renamed, the version recorded.
    An index from a newer version is refused."""
    if not is_older(connection, database):
        return
    connection.execute("BEGIN IMMEDIATE")
    try:
        _, added, renamed = _changes(connection)
        for table, old, new in renamed:
            connection.execute(f"ALTER TABLE {table} RENAME COLUMN {old} TO {new}")
        for table, column, declaration in added:
            connection.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
        for statement in STATEMENTS:  # the tables, index and trigger it lacks
            connection.execute(statement)
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise


def read_as_current(connection: sqlite3.Connection, database: Path) -> None:
    """Let a read-only connection to an older index read as the current schema: an empty TEMP table
    for each table it lacks, and a TEMP view of each table whose columns changed (a renamed column
    under its new name, an added one as NULL). TEMP names come first in SQLite's lookup; nothing is
    written to the index."""
    if not is_older(connection, database):
        return
    tables, added, renamed = _changes(connection)
    for name in tables:
        connection.execute(f"CREATE TEMP TABLE {name} {TABLES[name]}")
    columns: dict[str, list[str]] = {}
    for table, old, new in renamed:
        columns.setdefault(table, []).append(f"{old} AS {new}")
    for table, column, _ in added:
        columns.setdefault(table, []).append(f"NULL AS {column}")
    for table, extra in columns.items():
        connection.execute(f"CREATE TEMP VIEW {table} AS SELECT *, {', '.join(extra)} FROM main.{table}")


# Settings written with the first clip and never changed: cached once committed.
FIXED_SETTINGS = frozenset({"features", "config", "orders", "dim", "parts"})


def create_database(database: Path) -> None:
    """Make an empty index database atomically: built under a temporary name with its schema, then
    renamed, so a process killed while creating it never leaves a 0-byte ``index.sqlite`` (which
    ``RowStore.open`` refuses as damaged)."""
    temporary = database.with_name(f".{database.name}.{os.getpid()}.new")
    try:
        connection = sqlite3.connect(str(temporary), isolation_level=None)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            for statement in STATEMENTS:
                connection.execute(statement)
            connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
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


class RowStore:
    """One index folder's SQLite database: settings, rows, transactions (see the module doc).

    ``execute`` runs SQL against the schema above; ``setting``/``set_setting`` read and write the
    JSON settings; ``transaction`` commits whole or not at all; ``decode`` turns stored blobs into a
    float32 matrix, raising the damaged-index error for a bad row.
    """

    def __init__(self, path: Path, connection: sqlite3.Connection, read_only: bool = False) -> None:
        self.path = path
        self.connection = connection
        self.read_only = read_only
        self._fixed: dict[str, Any] = {}  # FIXED_SETTINGS once committed: never read from SQLite again

    @classmethod
    def open(cls, path: str | os.PathLike[str], create: bool = False) -> RowStore:
        """Open the index folder ``path``; ``create=True`` makes a new one where none exists
        (otherwise a mistyped path raises IndexStoreError instead of silently starting an empty index).

        An existing but empty (0-byte) or unreadable ``index.sqlite`` is never replaced by a new
        index: IndexStoreError says so. Without write permission the store opens read-only."""
        path = Path(path)
        database = path / "index.sqlite"
        if path.exists() and not path.is_dir():
            raise IndexStoreError(f"{path}: is a file, not an index folder (an index is a folder holding "
                                  "index.sqlite; give the folder, or another name to build a new one)")
        if not database.exists():
            if not create:
                raise IndexStoreError(f"{path}: no index here (build one with `semantic-moments index build`)")
            path.mkdir(parents=True, exist_ok=True)
            create_database(database)
        elif database.stat().st_size == 0:
            raise IndexStoreError(f"{path}: index.sqlite is empty (0 bytes): the index is damaged; remove the folder "
                                  "to start a new one")
        read_only = database.exists() and not (os.access(database, os.W_OK) and os.access(path, os.W_OK))
        try:
            if read_only:
                connection = open_read_only(database)
                read_as_current(connection, database)
            else:
                connection = sqlite3.connect(str(database), timeout=30.0, isolation_level=None)
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute("PRAGMA synchronous=NORMAL")
                upgrade(connection, database)
        except sqlite3.DatabaseError as error:
            raise IndexStoreError(f"{database}: not a readable index ({error})") from None
        return cls(path, connection, read_only)

    def close(self) -> None:
        self.connection.close()

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self.connection.execute(sql, parameters)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> sqlite3.Cursor:
        return self.connection.executemany(sql, rows)

    @property
    def in_transaction(self) -> bool:
        return self.connection.in_transaction

    # -- settings ---------------------------------------------------------------------------------

    def setting(self, key: str) -> Any:
        """A setting's JSON value, or None; raises the damaged-index error for an unreadable one."""
        if key in self._fixed:
            return self._fixed[key]
        try:
            row = self.connection.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
            value = json.loads(row[0]) if row else None
        except (sqlite3.DatabaseError, json.JSONDecodeError, TypeError) as error:
            raise self.damaged(f"setting {key!r} is unreadable ({error})") from None
        if value is not None and key in FIXED_SETTINGS and not self.connection.in_transaction:
            self._fixed[key] = value  # committed (outside a transaction that could still roll back)
        return value

    def is_fixed(self, key: str) -> bool:
        """True once ``key`` (one of FIXED_SETTINGS) is committed: it never changes again."""
        return key in self._fixed

    def set_setting(self, key: str, value: Any) -> None:
        self.connection.execute("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", (key, json.dumps(value)))

    @property
    def generation(self) -> int:
        """Increases with every committed change; readers use it to notice new data."""
        return int(self.setting("generation") or 0)

    def bump_generation(self) -> None:
        """Count one more change (inside the transaction that makes it)."""
        self.set_setting("generation", self.generation + 1)

    # -- writing ----------------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction: committed whole or rolled back whole (also on KeyboardInterrupt).

        SQLite errors (disk full, read-only, I/O) become one IndexStoreError naming the cause; the
        index keeps everything committed before."""
        try:
            self.connection.execute("BEGIN IMMEDIATE")
            yield
            self.connection.execute("COMMIT")
        except BaseException as error:
            if self.connection.in_transaction:
                try:
                    self.connection.execute("ROLLBACK")
                except sqlite3.Error:
                    pass  # SQLite rolled back already (disk full, I/O error)
            if isinstance(error, sqlite3.Error):
                raise IndexStoreError(f"{self.path}: could not write the index ({error}); what was committed "
                                      "before is intact") from None
            raise

    # -- reading ----------------------------------------------------------------------------------

    def damaged(self, detail: str) -> IndexStoreError:
        """The error every reader raises for damage it finds."""
        return IndexStoreError(f"index {self.path} is damaged: {detail} (run `semantic-moments index check`, "
                               "then `index repair`)")

    def decode(self, rows: Sequence[tuple[Any, ...]], column: int, width: int) -> np.ndarray:
        """(N, width) float32 raw rows from SQLite rows holding the id in column 0 and the blob in
        ``column``; raises the damaged-index error for a row of the wrong size or with NaN/inf."""
        width = width or 1
        if not rows:
            return np.zeros((0, width), np.float32)
        if any(not isinstance(row[column], bytes) or len(row[column]) != 4 * width for row in rows):
            row = next(row for row in rows if row_problem(row[column], width))
            raise self.damaged(f"clip {row[0]} {row_problem(row[column], width)}")
        matrix = np.frombuffer(b"".join(row[column] for row in rows), dtype=np.float32).reshape(len(rows), width)
        if not np.isfinite(matrix).all():
            row = next(row for row in rows if row_problem(row[column], width))
            raise self.damaged(f"clip {row[0]} {row_problem(row[column], width)}")
        return matrix
