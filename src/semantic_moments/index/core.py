"""A persistent motion index: embeddings of a collection, searchable by example, with query-time alpha.

On disk an index is a folder:

* ``index.sqlite``: the source of truth (SQLite in WAL mode). Table ``settings`` holds the feature
  settings every embedding must share (backbone, layer, convention, granularity, T, orders); table
  ``clips`` one row per clip: path, content hash, size, mtime, duration, fps, the raw parts (the
  moments M(k), then the token-flow levels ``flow.G`` where the embeddings have them, one float32
  row laid out as the ``parts`` setting says) and the motion map. Every add/remove is its own
  transaction, so an interrupted build (Ctrl-C, ``kill -9``, power loss) leaves a valid index
  holding everything committed, and readers never see a half-written row. Long videos indexed with
  windows also have one row per window (``segments.py``). The schema is in ``store.py``; the row
  layout in ``layout.py``, exact scoring in ``rows.py``.
* ``ann-<generation>-<milliseconds>.faiss`` (``ann.py``): past ``APPROXIMATE_FROM`` clips, a FAISS HNSW
  graph over the clips' unit parts, derived from the SQLite rows and replaced atomically (smaller
  collections are searched exactly, with no file). Clips committed after it was written are scanned
  exactly and removed clips are filtered out, so search is correct while a build is running.

Query-time weights are exact: every part of a row is a unit block, and the fused cosine under any
weights is a weighted sum of block inner products with the norms of the parts each side holds
(``rows.py``), so one inner-product ANN over the unit blocks serves every alpha; candidates are then
re-scored exactly.

``Index`` is the façade over the package's parts, which never import it: ``RowStore`` (SQLite),
``RowLayout`` (the row layout and weights), ``ClipMatrix`` (the rows as arrays), ``ann``,
``calibration``, ``segments`` and ``maintenance``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..config import MomentsConfig
from ..embedding import Embedding
from ..errors import ConfigError, IndexStoreError
from . import maintenance, records, segments
from .ann import HNSW_EF_SEARCH, AnnFile, write_ann
from .builds import BuildRecords
from .calibration import Calibration, knob_range, motion_alpha, motion_flow_weight, motion_weights
from .layout import RowLayout, require_settings
from .matrix import ClipMatrix
from .request import SearchAnswer, SearchRequest
from .rows import NEGATIVE_WEIGHT, validate_negative_weight
from .search import SearchHit, candidates, rescore
from .segments import SegmentEntries, SegmentHit
from .store import RowStore
from .where import Where

RESCORE_FACTOR = 4  # candidates fetched per requested result, then re-scored exactly


class Index:
    """A folder holding a searchable collection of SemanticMoments embeddings (see module doc).

    ``Index.open(path)`` opens one, ``Index.open(path, create=True)`` also creates it; ``add``, ``remove``,
    ``search``; ``close`` (or use
    as a context manager). Several processes may search while one adds.
    """

    def __init__(self, store: RowStore) -> None:
        self.store = store
        self.path = store.path
        self._ann = AnnFile(store.path)
        self.ef_search = HNSW_EF_SEARCH  # HNSW breadth: higher finds more true neighbours, slower
        self.approximate = True  # False: ignore the ANN file and score every row exactly (e.g. to measure recall)
        self._layout: RowLayout | None = None  # once the fixed settings are committed
        self._matrix: ClipMatrix | None = None  # of the generation it was read at
        self._entries: SegmentEntries | None = None  # window search, likewise
        self._calibration = Calibration()
        self.builds = BuildRecords(store)  # what builds keep: window plan, lock, files, failures, removals

    # -- opening ----------------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | os.PathLike[str], create: bool = False) -> Index:
        """Open the index folder ``path``; ``create=True`` makes a new one where none exists
        (otherwise a mistyped path raises IndexStoreError instead of silently starting an empty index).

        An existing but empty (0-byte) or unreadable ``index.sqlite`` is never replaced by a new
        index: IndexStoreError says so. Without write permission the index opens read-only:
        searching works, building says it cannot."""
        return cls(RowStore.open(path, create))

    @property
    def read_only(self) -> bool:
        return self.store.read_only

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- settings ---------------------------------------------------------------------------------

    @property
    def layout(self) -> RowLayout:
        """How rows are laid out and the settings they were made with (read once they are fixed)."""
        if self._layout is not None:
            return self._layout
        layout = RowLayout.read(self.store)
        if self.store.is_fixed("config"):  # committed: it never changes again
            self._layout = layout
        return layout

    @property
    def feature_settings(self) -> dict[str, Any] | None:
        """What every embedding in the index shares (None for an empty new index)."""
        return self.store.setting("features")

    @property
    def config(self) -> MomentsConfig | None:
        return self.layout.config

    @property
    def generation(self) -> int:
        """Increases with every committed change; readers use it to notice new data."""
        return self.store.generation

    def require_settings(self, theirs: dict[str, Any], what: str) -> None:
        """Raise ConfigError, naming both sides, unless ``theirs`` matches the index's feature settings."""
        require_settings(self.feature_settings, theirs, what, str(self.path))

    @property
    def parts(self) -> list[list[Any]]:
        """[[name, size], ...] of the stored row: ``moment.K`` per order, then ``flow.G`` per level."""
        return self.layout.part_list()

    def raw_of(self, embedding: Embedding) -> np.ndarray:
        """The stored row (sum of the part sizes,) float32 of an embedding made with the index's settings."""
        layout = self.layout
        layout.require_compatible(embedding, str(self.path))
        return layout.raw_of(embedding)

    def weights(self, alpha: Sequence[float] | None = None, flow_weight: float | None = None) -> tuple[float, ...]:
        """One weight per stored part for ``alpha`` and ``flow_weight`` (default: the index's own),
        scaled so the largest is 1 (``RowLayout.weights``)."""
        return self.layout.weights(alpha, flow_weight, str(self.path))

    # -- writing ----------------------------------------------------------------------------------

    def add(self, embedding: Embedding, path: str | None = None, size_bytes: int = 0, mtime: float = 0.0,
            window_plan: dict[str, Any] | None = None) -> int:
        """Add (or replace) one clip's embedding, committed at once; returns its id. ``window_plan``
        (``WindowPlan.to_dict``) is recorded with it where the index has none yet (a build's plan is
        kept only once a file succeeds).

        Raises ConfigError if the embedding was made with other settings than the index's.
        """
        return self.add_many([(embedding, path, size_bytes, mtime)], window_plan)[0]

    def add_many(self, items: Iterable[tuple[Embedding, str | None, int, float]],
                 window_plan: dict[str, Any] | None = None) -> list[int]:
        """Add (embedding, path, size_bytes, mtime) items in one transaction (bulk loading)."""
        ids = []
        with self.store.transaction():
            for embedding, path, size_bytes, mtime in items:
                ids.append(self._insert(embedding, path or embedding.source, size_bytes, mtime))
            self.builds.record_plan(window_plan)
            self.store.bump_generation()
        return ids

    def add_video(self, embedding: Embedding, windows: Sequence[tuple[float, float, np.ndarray]], path: str | None = None,
                  size_bytes: int = 0, mtime: float = 0.0, window_plan: dict[str, Any] | None = None) -> int:
        """Add (or replace) a long video: its whole-video embedding and its windows, (start, end,
        raw row (``raw_of``)) each, in one transaction; returns the clip id (``segments.py``).
        ``window_plan``: as in ``add``."""
        width = self.layout.width if self.layout.parts else None
        with self.store.transaction():
            self.builds.record_plan(window_plan)
            clip_id = self._insert(embedding, path or embedding.source, size_bytes, mtime)
            records.insert_windows(self.store, clip_id, windows, width or RowLayout.read(self.store).width,
                                   path or embedding.source)
            self.store.bump_generation()
        return clip_id

    def windowed(self) -> dict[str, int]:
        """{path: number of windows} of the videos stored with windows."""
        return records.windowed(self.store)

    def has_windows(self) -> bool:
        """True when some video is stored with windows (what ``--segments auto`` asks; no count)."""
        return records.has_windows(self.store)

    def window_count(self) -> int:
        """Windows stored (0 for an index without long videos)."""
        return records.window_count(self.store)

    def _insert(self, embedding: Embedding, key: str, size_bytes: int, mtime: float) -> int:
        return records.insert_clip(self.store, self.layout, embedding, key, size_bytes, mtime, str(self.path))

    def remove(self, paths: Iterable[str]) -> int:
        """Remove clips by path; returns how many were removed."""
        with self.store.transaction():
            removed = records.delete_paths(self.store, paths)
            if removed:
                self.store.bump_generation()
        return removed

    def remove_ids(self, ids: Iterable[int], remember: bool = True) -> list[str]:
        """Remove clips by id; returns the paths removed (ids not in the index are ignored). With
        ``remember`` (the default) builds leave those paths out from now on (``removed_paths``),
        until ``forget_removed``."""
        paths = [found[1] for found in (self.lookup(int(clip_id)) for clip_id in ids) if found]
        self.remove(paths)
        if remember and paths:
            with self.store.transaction():
                records.remember_removed(self.store, paths)
        return paths

    # -- reading ----------------------------------------------------------------------------------

    def __len__(self) -> int:
        return int(self.store.execute("SELECT COUNT(*) FROM clips").fetchone()[0])

    @property
    def ann(self) -> dict[str, Any] | None:
        """The approximate index in use (file, kind, entries, last id covered), or None for exact search."""
        return self.store.setting("ann")

    @property
    def orders(self) -> tuple[int, ...]:
        """The moment orders stored for every clip (empty for a new index)."""
        return self.layout.orders

    def browse(self, text: str = "", offset: int = 0, limit: int = 60) -> tuple[int, list[tuple[int, str, float]]]:
        """(total, [(id, path, duration_seconds)]) of clips whose path contains ``text`` (any case),
        sorted by path, ``limit`` of them from ``offset``."""
        where, parameters = Where(contains=text).sql()
        total = self.store.execute(f"SELECT COUNT(*) FROM clips WHERE {where}", parameters).fetchone()[0]
        rows = self.store.execute(f"SELECT id, path, duration_seconds FROM clips WHERE {where} ORDER BY path "
                                  "LIMIT ? OFFSET ?", [*parameters, limit, offset]).fetchall()
        return int(total), [(int(r[0]), r[1], r[2]) for r in rows]

    def paths(self) -> dict[int, str]:
        """{id: path} of every indexed clip."""
        return dict(self.store.execute("SELECT id, path FROM clips").fetchall())

    def lookup(self, key: str | int) -> tuple[int, str] | None:
        """(id, path) of an indexed clip by id or path, or None."""
        execute = self.store.execute
        if isinstance(key, (int, np.integer)) or (isinstance(key, str) and key.isdigit()):
            if not 0 <= int(key) < 2**63:  # outside SQLite's integers: no such id
                return None
            row = execute("SELECT id, path FROM clips WHERE id = ?", (int(key),)).fetchone()
            if row:
                return int(row[0]), row[1]
        row = execute("SELECT id, path FROM clips WHERE path = ?", (str(key),)).fetchone()
        for variant in ((os.path.abspath(key), str(Path(key).resolve())) if row is None and isinstance(key, str) else ()):
            row = execute("SELECT id, path FROM clips WHERE path = ?", (variant,)).fetchone()
            if row:
                break
        return (int(row[0]), row[1]) if row else None

    def lookup_content(self, content_hash: str) -> tuple[int, str] | None:
        """(id, path) of an indexed clip whose file has this content hash (the lowest id), or None."""
        row = self.store.execute("SELECT id, path FROM clips WHERE content_hash = ? ORDER BY id LIMIT 1",
                                 (content_hash,)).fetchone()
        return (int(row[0]), row[1]) if row else None

    def row_of(self, clip_id: int) -> np.ndarray:
        """The raw row (sum of the part sizes,) float32 of a clip: its parts laid out as ``parts``."""
        row = self.store.execute("SELECT id, parts FROM clips WHERE id = ?", (clip_id,)).fetchone()
        if row is None:
            raise IndexStoreError(f"{self.path}: no clip with id {clip_id}")
        return self.store.decode([row], 1, self.layout.width)[0]

    def frame_signatures(self, ids: Sequence[int]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """{clip id: (thumbnails, times)} of the clips whose frame signatures (``copies.py``) are kept."""
        return records.signatures(self.store, ids)

    def keep_frame_signatures(self, found: dict[int, tuple[np.ndarray, np.ndarray]]) -> None:
        """Keep frame signatures made from the clips' files (a read-only index keeps nothing)."""
        if found and not self.read_only:
            with self.store.transaction():
                for clip_id, (thumbs, times) in found.items():
                    records.keep_signature(self.store, clip_id, thumbs, times)

    def motion_map_of(self, clip_id: int) -> np.ndarray | None:
        row = self.store.execute("SELECT motion_map, map_rows, map_columns FROM clips WHERE id = ?",
                                 (clip_id,)).fetchone()
        if row is None or row[0] is None:
            return None
        return np.frombuffer(row[0], dtype=np.float32).reshape(row[1], row[2])

    def durations_of(self, ids: Sequence[int]) -> dict[int, float]:
        """{id: duration_seconds} of the given clips (0 where unknown; missing ids left out)."""
        ids = [int(clip_id) for clip_id in ids]
        marks = ",".join("?" * len(ids))
        return {int(clip_id): float(duration or 0.0) for clip_id, duration in
                self.store.execute(f"SELECT id, duration_seconds FROM clips WHERE id IN ({marks})", ids)} if ids else {}

    def durations(self) -> dict[str, float]:
        """{path: duration_seconds} of every indexed clip (0 where unknown)."""
        return {path: float(duration or 0.0) for path, duration in
                self.store.execute("SELECT path, duration_seconds FROM clips")}

    def matrix(self) -> ClipMatrix:
        """Every clip's row as arrays (``ClipMatrix``), read once per generation."""
        if self._matrix is None or self._matrix.generation != self.generation:
            self._matrix = ClipMatrix.load(self.store, self.layout)
        return self._matrix

    # -- search -----------------------------------------------------------------------------------

    def _raw_query(self, query: Embedding | np.ndarray | str | int) -> tuple[np.ndarray, int | None]:
        """(raw row, the clip id of an indexed query or None)."""
        if isinstance(query, Embedding):
            return self.raw_of(query), None
        if isinstance(query, np.ndarray):
            return self.layout.raw_array(query), None
        found = self.lookup(query)
        if found is None:
            raise IndexStoreError(f"{query}: not in the index {self.path}")
        return self.row_of(found[0]), found[0]

    def score(self, query: np.ndarray | int, clip_id: int, alpha: Sequence[float] | None = None,
              flow_weight: float | None = None) -> SearchHit | None:
        """How ``query`` (a raw row, see ``raw_of``, or an indexed clip's id) scores against one clip,
        or None if the clip is not in the index."""
        raw_query = self.row_of(query) if isinstance(query, int) else self.layout.raw_array(query)
        hits = rescore(self.store, self.layout, raw_query, [clip_id], self.weights(alpha, flow_weight))
        return hits[0] if hits else None

    def score_window(self, query: np.ndarray | int, window_id: int, alpha: Sequence[float] | None = None,
                     flow_weight: float | None = None) -> SegmentHit | None:
        """How ``query`` (a raw row, or an indexed clip's id) scores against one window of a long
        video (what a segment result found), or None if there is no such window."""
        raw_query = self.row_of(query) if isinstance(query, int) else self.layout.raw_array(query)
        return segments.score_window(self.store, self.layout, raw_query, window_id, self.weights(alpha, flow_weight))

    def motion_knob_range(self, queries: int = 20, k: int = 10, agreement: float = 0.9) -> float:
        """The knob value above which the ranking no longer moves (``calibration.knob_range``), over up
        to ``queries`` evenly spaced indexed clips."""
        matrix = self.matrix()
        chosen = [int(clip_id) for clip_id in matrix.ids[matrix.sample(queries)]]

        def top(motion: float, query: int) -> set[int]:
            alpha, flow = self.motion_weights(motion)
            return {hit.id for hit in self.search(query, k=k, alpha=alpha, flow_weight=flow)}

        return knob_range(chosen, top, agreement) if len(matrix) >= 3 else 1.0

    def _examples(self, query, negatives=(), include_own: bool = False) -> tuple[list[np.ndarray], list[np.ndarray], set[int]]:
        """(positive raw rows, negative raw rows, clip ids to leave out of the results): an indexed
        query (or negative) is left out of its own results unless ``include_own``."""
        positives = list(query) if isinstance(query, (list, tuple)) else [query]
        if not positives:
            raise ConfigError("give at least one example to search with")
        raws, negative_raws, own = [], [], set()
        for example in positives:
            raw, clip_id = self._raw_query(example)
            raws.append(raw)
            if clip_id is not None and not include_own:
                own.add(clip_id)
        for example in negatives:
            raw, clip_id = self._raw_query(example)
            negative_raws.append(raw)
            if clip_id is not None:
                own.add(clip_id)
        return raws, negative_raws, own

    def search(
        self,
        query: Embedding | np.ndarray | str | int | Sequence[Embedding | np.ndarray | str | int],
        k: int = 10,
        alpha: Sequence[float] | None = None,
        exclude: Iterable[int] = (),
        flow_weight: float | None = None,
        *,
        negatives: Sequence[Embedding | np.ndarray | str | int] = (),
        negative_weight: float = NEGATIVE_WEIGHT,
        where: Where | None = None,
        include_own: bool = False,
    ) -> list[SearchHit]:
        """The k clips most similar to ``query`` under ``alpha`` and ``flow_weight`` (default: the index's).

        ``query`` is an Embedding (checked against the index's settings), a raw row (``raw_of``), or
        the id/path of an indexed clip (which is then left out of its own results unless
        ``include_own``), or a list of them: several examples of what is wanted. ``negatives``:
        examples of what is not. A clip scores the mean of its exact cosines with the examples minus
        ``negative_weight`` times the mean of its cosines with the negatives (``combined_scores``);
        with one example and no negative that is the plain cosine. ``where`` restricts the results
        (``Where``: a path glob or folder, a duration range, windowed or not). Results are sorted by
        score, then id.
        """
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise ConfigError(f"k must be a whole number of at least 1, got {k!r}")
        if k > 1000:  # never more results than clips (counting rows costs a scan: only for large k)
            k = min(int(k), max(len(self), 1))
        positives, negative_rows, own = self._examples(query, negatives, include_own)
        excluded = set(exclude) | own
        weights = self.weights(alpha, flow_weight)
        validate_negative_weight(negative_weight)
        allowed = self.matching_ids(where) if where is not None and not where.empty else None
        count = k * RESCORE_FACTOR + len(excluded)
        ann = self._ann.load(self.store.setting("ann"), self.ef_search) if self.approximate and allowed is None else None
        matrix = self.matrix() if ann is None else None
        found: dict[int, None] = {}
        for raw in positives:  # a negative can push everything found down: then look further
            found.update(dict.fromkeys(candidates(self.store, self.layout, matrix, ann, raw, weights,
                                                  count * (4 if negative_rows else 1), allowed)))
        chosen = [clip_id for clip_id in found if clip_id not in excluded]
        return rescore(self.store, self.layout, positives, chosen, weights, negative_rows, negative_weight)[:k]

    def answer(self, request: SearchRequest) -> SearchAnswer:
        """Run one search request (``request.py``): the weights, clips or segments, the examples' own
        clips left out, the search, and each hit's percentile among the index's scores."""
        if request.alpha is not None or request.motion is None:
            alpha, flow_weight = request.alpha, request.flow_weight
        else:
            alpha, flow_weight = self.motion_weights(request.motion)
        alpha = tuple(float(weight) for weight in alpha) if alpha is not None else None
        segments = request.segments if request.segments is not None else self.has_windows()
        exclude = request.exclusions(segments)
        options = dict(alpha=alpha, flow_weight=flow_weight, negatives=[example.query for example in request.negatives],
                       negative_weight=request.negative_weight, where=request.where, include_own=True)
        queries = [example.query for example in request.examples]
        if segments:
            hits = self.search_segments(queries, k=request.k, per_video=request.per_video, exclude=exclude, **options)
        else:
            hits = self.search(queries, k=request.k, exclude=exclude, **options)
        percentiles = self.percentile([hit.score for hit in hits], alpha, flow_weight,
                                      kind="segments" if segments else "clips")
        return SearchAnswer(hits, percentiles, segments, alpha, flow_weight, request.cancelled())

    def matching_ids(self, where: Where) -> set[int]:
        """Ids of the clips ``where`` lets through (``Where``)."""
        sql, parameters = where.sql()
        return {int(row[0]) for row in self.store.execute(f"SELECT id FROM clips WHERE {sql}", parameters)}

    # -- long videos (segments.py) ----------------------------------------------------------------

    def segment_entries(self) -> SegmentEntries:
        """Every window and whole clip of segment search as arrays (``SegmentEntries``), per generation."""
        if self._entries is None or self._entries.generation != self.generation:
            self._entries = SegmentEntries(self.store, self.layout)
        return self._entries

    def search_segments(self, query, k: int = 10, per_video: int = 1,
                        alpha: Sequence[float] | None = None, flow_weight: float | None = None,
                        exclude: dict[int, tuple[float, float] | None] | None = None, *,
                        negatives: Sequence[Embedding | np.ndarray | str | int] = (),
                        negative_weight: float = NEGATIVE_WEIGHT, where: Where | None = None,
                        include_own: bool = False) -> list[SegmentHit]:
        """The k best segments of long videos (and whole clips) for ``query``, at most ``per_video``
        from one video (``segments.search_segments``).

        ``query``, ``negatives``, ``negative_weight``, ``where``: as in ``search``; an indexed query's
        own video is left out unless ``include_own``. ``exclude`` maps clip ids to a (start, end) span
        whose overlapping windows are left out (a query cut from an indexed video should not find
        itself), or None to leave the whole clip out.
        """
        segments.check_request(k, per_video)
        positives, negative_rows, own = self._examples(query, negatives, include_own)
        excluded: dict[int, tuple[float, float] | None] = {clip_id: None for clip_id in own}
        excluded.update(exclude or {})
        weights = self.weights(alpha, flow_weight)
        validate_negative_weight(negative_weight)
        allowed = self.matching_ids(where) if where is not None and not where.empty else None
        return segments.search_segments(self.store, self.layout, self.segment_entries(), positives, weights, k,
                                        per_video, excluded, negatives=negative_rows, negative_weight=negative_weight,
                                        allowed=allowed)

    def timeline(self, query: Embedding | np.ndarray | str | int, clip_id: int, alpha: Sequence[float] | None = None,
                 flow_weight: float | None = None) -> list[tuple[float, float, float]]:
        """[(start, end, score)] along one video, in time order (``segments.timeline``)."""
        raw_query, _ = self._raw_query(query)
        if self.lookup(int(clip_id)) is None:
            raise IndexStoreError(f"no clip with id {clip_id} in the index {self.path}")
        return segments.timeline(self.layout, self.segment_entries(), raw_query, self.weights(alpha, flow_weight),
                                 clip_id)

    # -- the approximate index (ann.py) -----------------------------------------------------------

    def write_ann(self, kind: str = "auto") -> str:
        """Bring the ANN file up to date with the committed rows; returns the kind used (``ann.py``)."""
        return write_ann(self.store, self.layout, kind)

    # -- reading scores against the collection (calibration.py) and upkeep (maintenance.py) -----

    def motion_alpha(self, motion: float) -> tuple[float, ...]:
        """``motion_alpha`` around this index's own weights (the paper's when it has none yet)."""
        config = self.config
        return motion_alpha(motion, config.alpha if config else (1.0, 8.0, 4.0))

    def motion_flow_weight(self, motion: float) -> float:
        """The flow weight that goes with ``motion_alpha(motion)``: 0 at 0, the index's own at 0.5."""
        config = self.config
        return motion_flow_weight(motion, config.flow_weight if config else 0.0)

    def part_spreads(self, sample: int = 1000) -> dict[str, float]:
        """{part name: std of the part's cosine over pairs of up to ``sample`` clips}, per generation."""
        return self._calibration.part_spreads(self.matrix(), self.layout, sample)

    def motion_weights(self, motion: float, sample: int = 1000) -> tuple[tuple[float, ...], float]:
        """(alpha, flow weight) of the appearance-to-motion knob (``calibration.motion_weights``)."""
        motion_alpha(motion)  # validates the range before any work
        if self.config is None:
            raise IndexStoreError(f"{self.path}: the index is empty")
        return motion_weights(self.layout, self.part_spreads(sample), motion, str(self.path))

    def percentile(self, scores: Sequence[float], alpha: Sequence[float] | None = None,
                   flow_weight: float | None = None, sample: int = 1000, kind: str = "clips") -> list[float]:
        """Each score's percentile among all indexed pairs of its kind (``Calibration.percentile``):
        ``"clips"`` (clip search) or ``"segments"`` (segment search: pairs of windows and whole clips,
        the entries segment search scores)."""
        weights = self.weights(alpha, flow_weight)
        if kind == "segments":
            entries = self.segment_entries()
            return self._calibration.percentile(entries.as_matrix(), self.layout, weights, scores, sample, kind)
        if kind != "clips":
            raise ConfigError(f"kind must be 'clips' or 'segments', got {kind!r}")
        return self._calibration.percentile(self.matrix(), self.layout, weights, scores, sample)

    def check(self) -> list[str]:
        """Every problem found (``maintenance.check``); empty when the index is sound."""
        return maintenance.check(self.store)

    def repair(self) -> list[str]:
        """Remove the rows ``check`` finds unusable (their files are embedded again by the next
        build) and rewrite the ANN file; returns the paths removed. SQLite-level damage is not
        repairable here: rebuild the index from its folders."""
        bad = maintenance.unusable_paths(self.store, self.layout)
        self.remove(bad)
        self.store.set_setting("ann", None)
        return bad

    def export_parquet(self, path: str | os.PathLike[str], overwrite: bool = False) -> int:
        """Write every clip to Parquet; returns the count (``maintenance.export_parquet``: an existing
        file is replaced only when it is an earlier export, or ``overwrite``)."""
        return maintenance.export_parquet(self.store, self.layout, path, overwrite)
