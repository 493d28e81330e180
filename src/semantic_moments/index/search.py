"""Clip search: candidates (the ANN graph, or every row exactly) and their exact re-scoring.

``candidates`` finds the clips worth scoring for one raw query row; ``rescore`` scores candidates
exactly against one or several examples (and negative ones) by the rule of ``rows.combined_scores``.
Both work on the ``RowStore``, the ``RowLayout`` and a ``ClipMatrix``; ``Index.search`` is the façade.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .layout import RowLayout
from .matrix import ClipMatrix
from .rows import (NEGATIVE_WEIGHT, combined_scores, part_similarities, present_parts, unit_blocks, weighted_query,
                   weighted_scores)
from .store import RowStore


@dataclass(frozen=True)
class SearchHit:
    """One result: the clip's id and path, its cosine ``score`` under the query's alpha, and the
    similarity of each part on its own (``per_part``: {order: cosine, and "flow": cosine of the
    token flow where the index has it}; the mean over the examples where there are several)."""

    id: int
    path: str
    score: float
    per_part: dict[int | str, float]


def candidates(store: RowStore, layout: RowLayout, matrix: ClipMatrix, ann: tuple[Any, int] | None,
               raw_query: np.ndarray, weights: tuple[float, ...], count: int,
               allowed: set[int] | None = None) -> list[int]:
    """Clip ids worth re-scoring for ``raw_query``: the best ``count`` by the ANN graph (``ann``:
    (FAISS index, last id it covers), plus the clips committed after it, scanned exactly), or, without
    one, by exact scores over every row (only the ``allowed`` ids where given)."""
    if ann is None:
        if len(matrix) == 0:
            return []
        rows = np.arange(len(matrix)) if allowed is None else np.flatnonzero(np.isin(matrix.ids, list(allowed)))
        if len(rows) == 0:
            return []
        if layout.separable:  # the exact cosine (rows.py): a still query finds still clips
            scores = weighted_scores(matrix.units[rows], matrix.present[rows], raw_query, weights, layout.sizes,
                                     layout.shared)
        else:  # other conventions/fusions: score everything exactly
            scores = layout.fused(matrix.raw[rows], weights) @ layout.fused(raw_query[None], weights)[0]
        if count < len(scores):  # the best ``count`` in O(N), then only those sorted
            best = np.argpartition(-scores, count - 1)[:count]
            top = best[np.argsort(-scores[best], kind="stable")]
        else:
            top = np.argsort(-scores, kind="stable")
        return matrix.ids[rows[top]].tolist()
    graph, covered_up_to = ann
    _, found = graph.search(weighted_query(raw_query, weights, layout.sizes)[None], count)
    ids = [int(clip_id) for clip_id in found[0] if clip_id >= 0]
    rows = store.execute("SELECT id, parts FROM clips WHERE id > ?", (covered_up_to,)).fetchall()
    if rows:  # committed after the ANN file was written: scan them exactly
        newer = store.decode(rows, 1, layout.width)
        scores = layout.fused(newer, weights) @ layout.fused(raw_query[None], weights)[0]
        ids += [rows[i][0] for i in np.argsort(-scores, kind="stable")[:count]]
    return ids


def rescore(store: RowStore, layout: RowLayout, positives: np.ndarray | Sequence[np.ndarray], ids: list[int],
            weights: tuple[float, ...], negatives: Sequence[np.ndarray] = (),
            negative_weight: float = NEGATIVE_WEIGHT) -> list[SearchHit]:
    """The clips ``ids`` scored exactly against the examples ``positives`` (and ``negatives``),
    sorted by score, then id; clips removed meanwhile are left out."""
    if not ids:
        return []
    positives = [positives] if isinstance(positives, np.ndarray) else list(positives)
    marks = ",".join("?" * len(ids))
    rows = store.execute(f"SELECT id, path, parts FROM clips WHERE id IN ({marks})", ids).fetchall()
    if not rows:
        return []  # every candidate was removed meanwhile
    raw = store.decode(rows, 2, layout.width)
    units = unit_blocks(raw, layout.sizes)
    if any(layout.shared):  # keypoint parts count per pair: the pairwise rule, not one fused vector per row
        present = present_parts(units, layout.sizes)

        def cosines(query: np.ndarray) -> np.ndarray:
            return weighted_scores(units, present, query, weights, layout.sizes, layout.shared)
    else:
        fused = layout.fused(raw, weights)

        def cosines(query: np.ndarray) -> np.ndarray:
            return fused @ layout.fused(query[None], weights)[0]
    scores = combined_scores([cosines(query) for query in positives], [cosines(query) for query in negatives],
                             negative_weight)
    per_query = [part_similarities(units, query, layout.part_list()) for query in positives]
    similarities = [{key: float(np.mean([parts[row][key] for parts in per_query])) for key in per_query[0][row]
                     if all(key in parts[row] for parts in per_query)} for row in range(len(rows))]
    hits = [SearchHit(int(row[0]), row[1], float(score), parts) for row, score, parts in zip(rows, scores, similarities)]
    return sorted(hits, key=lambda hit: (-round(hit.score, 6), hit.id))
