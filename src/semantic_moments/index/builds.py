"""What builds keep in an index besides the rows: the windowing of long videos, the build lock, the
files indexed (to tell what changed), the files that failed and the paths taken out by hand.
``Index.builds`` is one ``BuildRecords``; searching never needs it."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import ConfigError, IndexStoreError
from . import records
from .records import Failure, FileRecord, IndexedFile
from .store import RowStore


class BuildRecords:
    """A build's bookkeeping over one index's ``RowStore`` (see module doc)."""

    def __init__(self, store: RowStore) -> None:
        self.store = store
        self.path: Path = store.path

    # -- the windowing of long videos -------------------------------------------------------------

    @property
    def window_plan(self) -> dict[str, Any] | None:
        """The windowing every long video of this index was embedded with (``WindowPlan.to_dict``), or None."""
        return self.store.setting("windows")

    def require_window_plan(self, plan: dict[str, Any]) -> None:
        """ConfigError unless the index can hold windows made as ``plan``: it has no plan, the same
        one, or another under which no window was ever stored (a plan no file succeeded with)."""
        current = self.window_plan
        if current is not None and current != plan and records.has_windows(self.store):
            raise ConfigError(f"the index {self.path} windows long videos as {current}; it cannot also hold windows "
                              f"made as {plan} (build a new index for other windows)")

    def set_window_plan(self, plan: dict[str, Any]) -> None:
        """Record the windowing of long videos (``require_window_plan`` says when it cannot)."""
        self.require_window_plan(plan)
        if self.window_plan != plan:
            with self.store.transaction():
                self.record_plan(plan)
                self.store.bump_generation()

    def record_plan(self, plan: dict[str, Any] | None) -> None:
        """Inside a transaction: store ``plan`` where the index has none, or another under which no
        window is stored."""
        current = self.store.setting("windows")
        if plan is not None and current != plan and (current is None or not records.has_windows(self.store)):
            self.store.set_setting("windows", plan)

    # -- one build at a time ----------------------------------------------------------------------

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the index's build lock (one build at a time; searches never take it). Raises
        IndexStoreError at once if another process holds it, and for a read-only index."""
        import fcntl

        if self.store.read_only:
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

    # -- the files indexed ------------------------------------------------------------------------

    def files(self) -> dict[str, IndexedFile]:
        """{path: (content_hash, size_bytes, mtime)} of every indexed clip."""
        rows = self.store.execute("SELECT path, content_hash, size_bytes, mtime FROM clips")
        return {path: IndexedFile(digest, size, mtime) for path, digest, size, mtime in rows}

    def file_record(self, clip_id: int) -> FileRecord | None:
        """(size_bytes, mtime, real path, content hash) recorded for a clip's file when it was indexed,
        or None. The real path is where the indexed path led then (through any links); older rows give
        the path."""
        row = self.store.execute("SELECT size_bytes, mtime, path, header, content_hash FROM clips WHERE id = ?",
                                 (clip_id,)).fetchone()
        if row is None:
            return None
        size_bytes, mtime, path, header, content_hash = row
        try:
            real = json.loads(header).get("real_path")
        except (json.JSONDecodeError, AttributeError, TypeError):
            real = None
        return FileRecord(int(size_bytes), float(mtime), real or path, content_hash)

    def touch(self, path: str, size_bytes: int, mtime: float) -> None:
        """Record a new mtime/size for a clip whose content is unchanged."""
        self.store.execute("UPDATE clips SET size_bytes = ?, mtime = ? WHERE path = ?", (size_bytes, mtime, path))

    def rename(self, old: str, new: str) -> None:
        """Record that the clip indexed as ``old`` is now reached as ``new`` (same file, same content)."""
        with self.store.transaction():
            self.store.execute("UPDATE clips SET path = ? WHERE path = ?", (new, old))
            self.store.bump_generation()

    # -- failures and removals --------------------------------------------------------------------

    def failures(self) -> dict[str, Failure]:
        """{path: Failure} of files that failed to embed, by file version."""
        return records.failures(self.store)

    def record_failure(self, path: str, size_bytes: int, mtime: float, reason: str | None,
                       windows: dict[str, Any] | None = None) -> None:
        """Remember that this version of ``path`` failed (``reason``) in a build with the window
        plan ``windows`` (None: without windows), or forget it (``reason`` None)."""
        with self.store.transaction():
            records.record_failure(self.store, path, size_bytes, mtime, reason, windows)

    def removed_paths(self) -> set[str]:
        """Paths taken out with ``Index.remove_ids`` that builds leave out."""
        return records.removed_paths(self.store)

    def forget_removed(self, paths: Iterable[str] | None = None) -> int:
        """Let builds index these removed paths again (None: all of them); returns how many."""
        with self.store.transaction():
            return records.forget_removed(self.store, paths)
