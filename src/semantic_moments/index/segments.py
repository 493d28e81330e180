"""Search inside long videos: the windows of an index scored against a query, merged into segments.

A long video indexed with windows (``index build --windows LEN:STRIDE``) has one row per window
(table ``windows``: clip id, start, end, raw parts as in ``clips``); every other clip counts as one
segment spanning the whole clip. A query is scored against all of them with the same exact cosine
and query-time weights as clip search (``Index.search``); the windows of one video that found the
same moment overlap, so segments are taken best first and a window overlapping an already taken
segment of its video by temporal IoU above ``overlap`` is left out (``windows.non_maximum_suppression``,
in one score order over all videos).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from ..windows import OVERLAP, non_maximum_suppression
from .layout import RowLayout
from .rows import NEGATIVE_WEIGHT, combined_scores, part_similarities, present_parts, unit_blocks, weighted_scores
from .store import RowStore


@dataclass(frozen=True)
class SegmentHit:
    """One result of a segment search: the video's clip id and path, the segment (seconds), its
    cosine ``score``, the similarity of each part (as ``SearchHit.per_part``), and the window's id
    (None when the segment is a whole clip indexed without windows)."""

    id: int
    path: str
    start: float
    end: float
    score: float
    per_part: dict[int | str, float]
    window: int | None


class SegmentEntries:
    """Every searchable segment of an index, as arrays (the index keeps one per generation).

    Attributes: ``window_ids`` (N,) (-1 for a whole clip), ``clip_ids`` (N,), ``starts``/``ends``
    (N,) seconds, ``units`` (N, D) unit blocks, ``present`` (N, K), ``raw`` (N, D) raw rows.
    """

    def __init__(self, store: RowStore, layout: RowLayout) -> None:
        self.generation = store.generation
        sizes = layout.sizes or [1]
        windows = store.execute(
            "SELECT id, clip_id, start_seconds, end_seconds, parts FROM windows ORDER BY clip_id, start_seconds"
        ).fetchall()
        whole = store.execute(
            "SELECT id, COALESCE(duration_seconds, 0), parts FROM clips WHERE id NOT IN (SELECT DISTINCT clip_id "
            "FROM windows) ORDER BY id" if windows else "SELECT id, COALESCE(duration_seconds, 0), parts FROM clips "
            "ORDER BY id").fetchall()
        self.window_ids = np.array([row[0] for row in windows] + [-1] * len(whole), dtype=np.int64)
        self.clip_ids = np.array([row[1] for row in windows] + [row[0] for row in whole], dtype=np.int64)
        self.starts = np.array([row[2] for row in windows] + [0.0] * len(whole), dtype=np.float64)
        self.ends = np.array([row[3] for row in windows] + [row[1] for row in whole], dtype=np.float64)
        raw = np.concatenate([store.decode([(row[1], row[4]) for row in windows], 1, layout.width),
                              store.decode([(row[0], row[2]) for row in whole], 1, layout.width)])
        self.units = unit_blocks(raw, sizes)
        self.raw = raw  # for fused vectors (percentiles; every score where the layout is not separable)
        self.separable = layout.separable
        self.present = present_parts(self.units, sizes)

    def as_matrix(self):
        """The entries as a ``ClipMatrix`` (window ids, -1 for whole clips), for collection statistics."""
        from .matrix import ClipMatrix

        return ClipMatrix(self.generation, self.window_ids, self.raw, self.units, self.present)

    def scores(self, layout: RowLayout, raw_query: np.ndarray, weights: tuple[float, ...]) -> np.ndarray:
        """(N,) exact cosine of every entry with the query under ``weights`` (``rows.py``)."""
        if len(self.units) == 0:
            return np.zeros(0)
        if not self.separable:  # other conventions/fusions: fuse everything exactly
            return layout.fused(self.raw, weights) @ layout.fused(raw_query[None], weights)[0]
        return weighted_scores(self.units, self.present, raw_query, weights, layout.sizes, layout.shared)


def check_request(k: int, per_video: int, overlap: float = OVERLAP) -> None:
    """ConfigError for a segment request that cannot be answered."""
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ConfigError(f"k must be a whole number of at least 1, got {k!r}")
    if not isinstance(per_video, (int, np.integer)) or per_video < 1:
        raise ConfigError(f"per_video must be a whole number of at least 1, got {per_video!r}")
    if not 0.0 <= overlap < 1.0:
        raise ConfigError(f"overlap must be in [0, 1), got {overlap}")


def search_segments(
    store: RowStore,
    layout: RowLayout,
    entries: SegmentEntries,
    raw_query: np.ndarray | Sequence[np.ndarray],
    weights: tuple[float, ...],
    k: int = 10,
    per_video: int = 1,
    exclude: Mapping[int, tuple[float, float] | None] | None = None,
    overlap: float = OVERLAP,
    negatives: Sequence[np.ndarray] = (),
    negative_weight: float = NEGATIVE_WEIGHT,
    allowed: set[int] | None = None,
) -> list[SegmentHit]:
    """The k best segments for the raw query row (or rows: several examples; module doc), at most
    ``per_video`` from one video.

    ``exclude`` maps clip ids to a (start, end) span whose overlapping windows are left out (a query
    cut from an indexed video should not find itself), or None to leave the whole clip out.
    ``negatives``, ``negative_weight``: as in ``Index.search`` (``rows.combined_scores``); ``allowed``: the clip
    ids results may come from (None: all).
    """
    check_request(k, per_video, overlap)
    positives = [raw_query] if isinstance(raw_query, np.ndarray) else list(raw_query)
    scores = combined_scores([entries.scores(layout, query, weights) for query in positives],
                             [entries.scores(layout, query, weights) for query in negatives], negative_weight)
    usable = np.ones(len(scores), dtype=bool) if allowed is None else np.isin(entries.clip_ids, list(allowed))
    for clip_id, span in (exclude or {}).items():
        mine = entries.clip_ids == clip_id
        if span is None:
            usable &= ~mine
        else:
            usable &= ~(mine & (entries.starts < span[1]) & (entries.ends > span[0]))
    order = np.flatnonzero(usable)[np.argsort(-scores[usable], kind="stable")]
    spans = np.stack([entries.starts, entries.ends], axis=1)
    picked = non_maximum_suppression(spans, order, per_video, overlap, groups=entries.clip_ids, limit=int(k))
    return _hits(store, layout, entries, picked, scores, positives)



def _hits(store: RowStore, layout: RowLayout, entries: SegmentEntries, picked: list[int], scores: np.ndarray,
          positives: list[np.ndarray]) -> list[SegmentHit]:
    if not picked:
        return []
    clip_ids = sorted({int(entries.clip_ids[i]) for i in picked})
    marks = ",".join("?" * len(clip_ids))
    paths = dict(store.execute(f"SELECT id, path FROM clips WHERE id IN ({marks})", clip_ids).fetchall())
    per_query = [part_similarities(entries.units[picked], query, layout.part_list()) for query in positives]
    similarities = [{key: float(np.mean([parts[row][key] for parts in per_query])) for key in per_query[0][row]
                     if all(key in parts[row] for parts in per_query)}
                    for row in range(len(picked))]
    hits = []
    for position, parts in zip(picked, similarities):
        window = int(entries.window_ids[position])
        clip_id = int(entries.clip_ids[position])
        hits.append(SegmentHit(clip_id, paths.get(clip_id, "?"), float(entries.starts[position]),
                               float(entries.ends[position]), float(scores[position]), parts,
                               window if window >= 0 else None))
    return hits


def timeline(layout: RowLayout, entries: SegmentEntries, raw_query: np.ndarray, weights: tuple[float, ...],
             clip_id: int) -> list[tuple[float, float, float]]:
    """[(start, end, score)] of every window of one indexed video (one whole-clip entry for a clip
    without windows), in time order: how the query's match runs along the video."""
    scores = entries.scores(layout, raw_query, weights)
    mine = np.flatnonzero(entries.clip_ids == int(clip_id))
    mine = mine[np.argsort(entries.starts[mine], kind="stable")]
    return [(float(entries.starts[i]), float(entries.ends[i]), float(scores[i])) for i in mine]


def score_window(store: RowStore, layout: RowLayout, raw_query: np.ndarray, window_id: int,
                 weights: tuple[float, ...]) -> SegmentHit | None:
    """The exact cosine of one window with the query, as a SegmentHit, or None for no such window."""
    row = store.execute("SELECT w.clip_id, c.path, w.start_seconds, w.end_seconds, w.parts FROM windows w "
                        "JOIN clips c ON c.id = w.clip_id WHERE w.id = ?", (int(window_id),)).fetchone()
    if row is None:
        return None
    raw = store.decode([(row[0], row[4])], 1, layout.width)
    score = float(layout.fused(raw, weights)[0] @ layout.fused(raw_query[None], weights)[0])
    parts = part_similarities(unit_blocks(raw, layout.sizes), raw_query, layout.part_list())[0]
    return SegmentHit(int(row[0]), row[1], float(row[2]), float(row[3]), score, parts, int(window_id))
