"""Motion near-duplicates, groups and the map: everything here works on the index's fused vectors at
query-time weights (``fused_vectors``), so "near" means the same as in search (package doc)."""


from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, IndexStoreError
from ..index import Index
from ..index.ann import APPROXIMATE_FROM, HNSW_EF_SEARCH, new_hnsw
from ..windows import temporal_iou

NEIGHBOURS = 10  # nearest neighbours looked at per clip for duplicates
DUPLICATE_SCORE = 0.95  # default --min-score


def fused_vectors(raw: np.ndarray, index: Index, weights: tuple[float, ...]) -> np.ndarray:
    """(N, D') float32 unit vectors of raw rows whose inner products are the exact fused cosines
    (``RowLayout.unit_fused``)."""
    return index.layout.unit_fused(raw, weights)


def nearest_neighbours(vectors: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """(scores (N, count), positions (N, count)) of each vector's nearest others by inner product:
    FAISS exact search, or an HNSW graph from ``APPROXIMATE_FROM`` vectors on (-1: none)."""
    try:
        import faiss
    except ImportError:
        raise ConfigError("duplicates need FAISS: pip install 'semantic-moments[index]'") from None
    count = min(count + 1, len(vectors))
    if len(vectors) >= APPROXIMATE_FROM:
        graph = new_hnsw(vectors.shape[1])
        graph.hnsw.efSearch = max(HNSW_EF_SEARCH // 4, count * 4)
    else:
        graph = faiss.IndexFlatIP(vectors.shape[1])
    graph.add(np.ascontiguousarray(vectors))
    scores, positions = graph.search(np.ascontiguousarray(vectors), count)
    return scores, positions


@dataclass(frozen=True)
class DuplicatePair:
    """Two clips (or segments) whose motion is nearly the same: ids, paths, spans (seconds; whole
    clips: None), the cosine ``score`` and its ``percentile`` among the collection's pairs."""

    a: int
    b: int
    path_a: str
    path_b: str
    score: float
    percentile: float
    span_a: tuple[float, float] | None = None
    span_b: tuple[float, float] | None = None
    kind: str = "same motion"  # or "copy": the same footage, "part": b is a part of a (``copies``)
    motion_score: float | None = None  # a copy's motion cosine (its ``score`` is the frames')
    offset_seconds: float | None = None  # a copy or part: b's time t shows a's time t + offset


def duplicates(index: Index, min_score: float | None = DUPLICATE_SCORE, top: int | None = None,
               alpha: Sequence[float] | None = None, flow_weight: float | None = None,
               neighbours: int = NEIGHBOURS) -> list[DuplicatePair]:
    """Pairs of clips whose motion is nearly the same, best first: each clip's ``neighbours``
    nearest clips, kept when their cosine is at least ``min_score`` (or the best ``top`` pairs).
    Raises IndexStoreError for an empty index."""
    if len(index) == 0:
        raise IndexStoreError(f"{index.path}: the index is empty")
    if min_score is None and top is None:
        raise ConfigError("give a minimum score or a number of pairs")
    weights = index.weights(alpha, flow_weight)
    matrix = index.matrix()
    vectors = fused_vectors(matrix.raw, index, weights)
    scores, positions = nearest_neighbours(vectors, neighbours)
    pairs: dict[tuple[int, int], float] = {}
    for row in range(len(vectors)):
        for score, other in zip(scores[row], positions[row]):
            if other < 0 or other == row or (min_score is not None and score < min_score):
                continue
            key = (min(row, other), max(row, other))
            pairs[key] = max(pairs.get(key, -1.0), float(score))
    ordered = sorted(pairs.items(), key=lambda item: (-item[1], item[0]))[:top or None]
    paths = index.paths()
    percentiles = index.percentile([score for _, score in ordered], alpha, flow_weight)
    return [DuplicatePair(int(matrix.ids[a]), int(matrix.ids[b]), paths[int(matrix.ids[a])], paths[int(matrix.ids[b])],
                          score, percentile) for ((a, b), score), percentile in zip(ordered, percentiles)]


def duplicate_segments(index: Index, min_score: float | None = DUPLICATE_SCORE, top: int | None = None,
                       alpha: Sequence[float] | None = None, flow_weight: float | None = None,
                       neighbours: int = NEIGHBOURS, overlap: float = 0.3) -> list[DuplicatePair]:
    """Pairs of windows (the same motion at two places of one or two videos), best first; windows
    of one video that overlap are never a pair, and of the window pairs between the same stretches
    of two videos only the best is kept (temporal IoU above ``overlap`` on both sides)."""
    if not index.has_windows():
        return []
    entries = index.segment_entries()
    keep = entries.window_ids >= 0
    rows = np.flatnonzero(keep)
    weights = index.weights(alpha, flow_weight)
    vectors = fused_vectors(entries.raw[rows], index, weights)
    scores, positions = nearest_neighbours(vectors, neighbours)
    found: list[tuple[float, int, int]] = []
    for row in range(len(rows)):
        for score, other in zip(scores[row], positions[row]):
            if other < 0 or other <= row or (min_score is not None and score < min_score):
                continue
            a, b = rows[row], rows[other]
            if entries.clip_ids[a] == entries.clip_ids[b] and entries.starts[a] < entries.ends[b] and \
                    entries.starts[b] < entries.ends[a]:
                continue  # overlapping windows of one video: the same stretch, not a repeat
            found.append((float(score), int(a), int(b)))
    found.sort(key=lambda item: -item[0])
    kept: list[tuple[float, int, int]] = []
    for score, a, b in found:
        span_a, span_b = (entries.starts[a], entries.ends[a]), (entries.starts[b], entries.ends[b])
        if any({entries.clip_ids[a], entries.clip_ids[b]} == {entries.clip_ids[x], entries.clip_ids[y]}
               and temporal_iou(span_a, (entries.starts[x], entries.ends[x])) > overlap
               and temporal_iou(span_b, (entries.starts[y], entries.ends[y])) > overlap for _, x, y in kept):
            continue
        kept.append((score, a, b))
        if top and len(kept) >= top:
            break
    paths = index.paths()
    percentiles = index.percentile([score for score, _, _ in kept], alpha, flow_weight, kind="segments")
    return [DuplicatePair(int(entries.clip_ids[a]), int(entries.clip_ids[b]), paths[int(entries.clip_ids[a])],
                          paths[int(entries.clip_ids[b])], score, percentile,
                          (float(entries.starts[a]), float(entries.ends[a])),
                          (float(entries.starts[b]), float(entries.ends[b])))
            for (score, a, b), percentile in zip(kept, percentiles)]


def groups(pairs: Sequence[DuplicatePair]) -> list[list[int]]:
    """Connected pairs joined into sets of clip ids (union-find), largest first."""
    parent: dict[int, int] = {}

    def root(item: int) -> int:
        parent.setdefault(item, item)
        while parent[item] != item:
            parent[item] = parent[parent[item]]
            item = parent[item]
        return item

    for pair in pairs:
        parent[root(pair.a)] = root(pair.b)
    sets: dict[int, list[int]] = {}
    for item in parent:
        sets.setdefault(root(item), []).append(item)
    return sorted((sorted(members) for members in sets.values()), key=lambda members: (-len(members), members[0]))


@dataclass(frozen=True)
class Clustering:
    """Every clip's group: ``ids`` (N,), ``labels`` (N,) (-1: no group, HDBSCAN's noise), the most
    central clip of each group (``names``: {label: clip id}), the method and k."""

    ids: np.ndarray
    labels: np.ndarray
    names: dict[int, int]
    method: str
    k: int


def clusters(index: Index, k: int | None = None, method: str = "kmeans", alpha: Sequence[float] | None = None,
             flow_weight: float | None = None, seed: int = 0) -> Clustering:
    """Motion groups of every indexed clip: k-means with ``k`` groups (None: ``choose_k``) or
    ``method="hdbscan"`` (its own number of groups, some clips in none). Needs scikit-learn."""
    try:
        from sklearn.cluster import KMeans
    except ImportError:
        raise ConfigError("groups need scikit-learn: pip install 'semantic-moments[organize]'") from None
    matrix = index.matrix()
    if len(matrix) < 2:
        raise IndexStoreError(f"{index.path}: groups need at least 2 clips, the index holds {len(matrix)}")
    vectors = fused_vectors(matrix.raw, index, index.weights(alpha, flow_weight)).astype(np.float64)
    if method == "hdbscan":
        if k is not None:
            raise ConfigError("k applies to k-means; HDBSCAN finds its own number of groups (leave k out)")
        labels = hdbscan_labels(vectors)
    elif method == "kmeans":
        k = choose_k(vectors, seed=seed) if k is None else int(k)
        if not 1 <= k <= len(vectors):
            raise ConfigError(f"k must be between 1 and the number of clips ({len(vectors)}), got {k}")
        distinct = len(np.unique(vectors.round(6), axis=0))
        labels = KMeans(n_clusters=min(k, distinct), n_init=4, random_state=seed).fit_predict(vectors)
    else:
        raise ConfigError(f"method must be kmeans or hdbscan, got {method!r}")
    k = len(set(labels.tolist()) - {-1})  # the groups there are (fewer distinct clips than k: fewer groups)
    names = {}
    for label in sorted(set(labels.tolist()) - {-1}):
        members = np.flatnonzero(labels == label)
        centre = vectors[members].mean(axis=0)
        names[int(label)] = int(matrix.ids[members[np.argmax(vectors[members] @ centre)]])
    return Clustering(matrix.ids.copy(), np.asarray(labels), names, method, k)


def hdbscan_labels(vectors: np.ndarray) -> np.ndarray:
    """(N,) HDBSCAN groups of (N, D) vectors (-1: in none). A collection that is one group (six
    copies of a clip) is one group, not all noise: only then is HDBSCAN asked again allowing a single
    group; asked first, that lumps a real collection's groups into one (the arm actions: 6 -> 1)."""
    from sklearn.cluster import HDBSCAN

    size = max(2, min(5, len(vectors) // 10))
    labels = HDBSCAN(min_cluster_size=size, metric="euclidean", copy=True).fit_predict(vectors)
    if (labels < 0).all():
        labels = HDBSCAN(min_cluster_size=size, metric="euclidean", copy=True,
                         allow_single_cluster=True).fit_predict(vectors)
    return labels


def choose_k(vectors: np.ndarray, largest: int = 30, seed: int = 0, sample: int = 2000) -> int:
    """The k of k-means with the best mean silhouette (cosine) among 2..``largest`` (on up to
    ``sample`` vectors): the stated criterion of ``clusters --auto``."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    if len(vectors) < 3:
        return 1
    chosen = vectors[np.linspace(0, len(vectors) - 1, min(sample, len(vectors))).astype(int)]
    distinct = len(np.unique(chosen.round(6), axis=0))
    best, best_score = 1, -2.0  # one group unless some split scores
    for k in range(2, min(largest, len(chosen) - 1, distinct - 1) + 1):
        labels = KMeans(n_clusters=k, n_init=2, random_state=seed).fit_predict(chosen)
        if len(set(labels)) < 2:
            continue
        score = silhouette_score(chosen, labels, metric="cosine")
        if score > best_score:
            best, best_score = k, score
    return best


def purity(labels: np.ndarray, classes: Sequence[str]) -> float:
    """The share of clips whose group's most common class is their own (noise, -1, counts wrong)."""
    labels = np.asarray(labels)
    classes = np.asarray(classes)
    correct = 0
    for label in set(labels.tolist()) - {-1}:
        members = classes[labels == label]
        _, counts = np.unique(members, return_counts=True)
        correct += int(counts.max())
    return correct / max(len(labels), 1)


def map_2d(index: Index, alpha: Sequence[float] | None = None, flow_weight: float | None = None,
           method: str = "auto", seed: int = 0) -> tuple[np.ndarray, np.ndarray, str, float]:
    """(ids (N,), points (N, 2) in [0, 1], method used, seconds taken) of every clip: UMAP (cosine)
    from 20 clips on where umap-learn is installed, else PCA (``method`` forces one)."""
    matrix = index.matrix()
    vectors = fused_vectors(matrix.raw, index, index.weights(alpha, flow_weight)).astype(np.float64)
    started = time.perf_counter()
    if method == "auto":
        try:
            import umap  # noqa: F401

            method = "umap" if len(vectors) >= 20 else "pca"
        except ImportError:
            method = "pca"
    if len(vectors) < 3:  # one clip in the middle; two side by side (apart unless identical)
        points = np.array([[0.0, 0.0], [1.0 if len(vectors) == 2 and not np.allclose(vectors[0], vectors[1]) else 0.0,
                                        0.0]])[:len(vectors)]
    elif method == "umap":
        import umap

        points = umap.UMAP(n_neighbors=min(15, len(vectors) - 1), metric="cosine", random_state=seed,
                           n_jobs=1).fit_transform(vectors)
    elif method == "pca":
        centred = vectors - vectors.mean(axis=0)
        _, _, components = np.linalg.svd(centred, full_matrices=False)
        points = centred @ components[:2].T
    else:
        raise ConfigError(f"map method must be auto, umap or pca, got {method!r}")
    low, high = points.min(axis=0), points.max(axis=0)
    points = np.where(high > low, (points - low) / np.where(high > low, high - low, 1.0), 0.5)  # a flat axis: the middle
    return matrix.ids.copy(), points, method, time.perf_counter() - started
