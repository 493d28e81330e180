"""The approximate-search file of an index: a FAISS HNSW graph over the clips' per-part unit vectors.

It is derived from the SQLite rows (the source of truth) and replaced atomically: written under a
new name, recorded in the index's ``ann`` setting only after the rename, the old file deleted after
(readers that loaded it keep it). Exact search needs none; see ``Index`` for how both are used.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from .layout import RowLayout
from .rows import unit_blocks
from .store import RowStore

APPROXIMATE_FROM = 50_000  # clips; below, exact search is fast enough and needs no training
HNSW_NEIGHBOURS = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 512  # measured: recall@10 0.95 at 1M clips, p50 1.4 ms (benchmarks/index_search.py)
ANN_CHUNK = 50_000
STALE_FRACTION = 0.2  # removed clips still in the graph before it is rebuilt


def new_hnsw(dim: int):
    """An empty FAISS HNSW graph over inner products with this project's build parameters."""
    import faiss

    graph = faiss.IndexHNSWFlat(dim, HNSW_NEIGHBOURS, faiss.METRIC_INNER_PRODUCT)
    graph.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    return graph


def write_ann(store: RowStore, layout: RowLayout, kind: str = "auto") -> str:
    """Bring the ANN file of the index in ``store`` up to date with its committed rows; returns the
    kind used.

    ``auto``: HNSW from APPROXIMATE_FROM clips on, else none (exact search over the rows).
    ``exact``: none. ``hnsw``: HNSW whatever the size. Clips added since the last file are
    appended to its graph; the graph is rebuilt only when removed clips make up more than
    ``STALE_FRACTION`` of it.
    """
    if kind not in ("auto", "exact", "hnsw"):
        raise ConfigError(f"ANN kind must be auto, exact or hnsw, got {kind!r}")
    count = int(store.execute("SELECT COUNT(*) FROM clips").fetchone()[0])
    use = "hnsw" if kind == "hnsw" or (kind == "auto" and count >= APPROXIMATE_FROM) else "exact"
    previous = store.setting("ann")
    if use == "exact" or count == 0:
        store.set_setting("ann", None)
    else:
        try:
            import faiss
        except ImportError:
            raise ConfigError("approximate search needs FAISS: pip install 'semantic-moments[index]'") from None
        graph, covered_up_to = _appendable(store, previous)
        cursor = store.execute("SELECT id, parts FROM clips WHERE id > ? ORDER BY id", (covered_up_to,))
        while rows := cursor.fetchmany(ANN_CHUNK):  # chunks keep the peak memory near the graph's own
            units = unit_blocks(store.decode(rows, 1, layout.width), layout.sizes)
            if graph is None:
                graph = faiss.IndexIDMap2(new_hnsw(units.shape[1]))
            graph.add_with_ids(units, np.array([row[0] for row in rows], dtype=np.int64))
            covered_up_to = int(rows[-1][0])
        name = f"ann-{store.generation}-{int(time.time() * 1000)}.faiss"
        temporary = store.path / f".{name}.tmp"
        faiss.write_index(graph, str(temporary))
        os.replace(temporary, store.path / name)
        store.set_setting("ann", {"file": name, "covered_up_to": covered_up_to, "entries": int(graph.ntotal),
                                  "kind": use})
    if previous and previous["file"] != (store.setting("ann") or {}).get("file"):
        (store.path / previous["file"]).unlink(missing_ok=True)
    return use


def _appendable(store: RowStore, previous: dict | None):
    """(the previous graph, the last id it covers) if it can be extended, else (None, 0)."""
    if not previous or previous.get("kind") != "hnsw":
        return None, 0
    covered = store.execute("SELECT COUNT(*) FROM clips WHERE id <= ?", (previous["covered_up_to"],)).fetchone()[0]
    stale = previous.get("entries", 0) - covered
    if stale > STALE_FRACTION * max(previous.get("entries", 0), 1):
        return None, 0
    import faiss

    try:
        return faiss.read_index(str(store.path / previous["file"])), int(previous["covered_up_to"])
    except RuntimeError:
        return None, 0


class AnnFile:
    """The loaded ANN file of one index folder, reloaded when the index records a newer one."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._loaded: tuple[str, Any, int] | None = None  # file name, FAISS index, last id covered

    def load(self, record: dict | None, ef_search: int):
        """(FAISS index, last id it covers) for the ``ann`` setting ``record``, or None for exact search."""
        if not record:
            self._loaded = None
            return None
        import faiss

        if self._loaded is None or self._loaded[0] != record["file"]:
            try:
                graph = faiss.read_index(str(self.folder / record["file"]))
            except RuntimeError:
                return None  # replaced or deleted meanwhile: exact search is always correct
            self._loaded = (record["file"], graph, int(record["covered_up_to"]))
        faiss.downcast_index(self._loaded[1].index).hnsw.efSearch = ef_search
        return self._loaded[1], self._loaded[2]
