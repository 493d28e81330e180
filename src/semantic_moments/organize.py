"""Organising a collection by motion: near-duplicates and repeats, groups, a 2-D map.

All three work on the index's fused vectors at query-time weights (``fused_vectors``: one unit
vector per clip whose inner products are the exact cosines ``search`` ranks by), so "near" means the
same here as in search.

* ``copies``: pairs of clips that are the same footage (re-encoded, resized, trimmed, mildly
  cropped): candidates from the motion vectors as ``duplicates`` finds them, each verified by its
  frames' signatures under the best time alignment (``copies.py``), so a retake of the same action
  (the same person, the same room) is not a copy.
* ``duplicates``: pairs of clips whose motion is nearly the same, from each clip's nearest
  neighbours by FAISS (exact inner-product search up to ``ann.APPROXIMATE_FROM`` clips, an HNSW
  graph beyond), never all pairs in Python; ``groups`` joins connected pairs into sets. In an index
  with windows, ``duplicate_segments`` does the same for windows: the same motion at two places of
  one or two videos.
* ``clusters``: k-means (scikit-learn) on the fused vectors, or HDBSCAN; ``choose_k`` picks k by the
  silhouette; each group is named by its most central clip; ``purity`` scores groups against labels.
* ``map_2d``: every clip as a point, UMAP (umap-learn, cosine) or PCA where UMAP is not installed or
  the collection is tiny.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import ConfigError, IndexStoreError, SemanticMomentsError
from .index import Index
from .index.ann import APPROXIMATE_FROM, HNSW_EF_SEARCH, new_hnsw
from .windows import temporal_iou

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


COPY_CANDIDATES = 10  # each clip's nearest clips by motion that are checked frame by frame
COPY_MOTION_FLOOR = 0.8  # candidates must move at least this alike (a copy scores 0.95-1.00)
# a clip against the windows of long videos: a window holds more than the clip (a 2 s part of a 4 s
# window moves like it at 0.7-0.75 on the arm actions), so the floor is lower and fewer are checked
PART_MOTION_FLOOR = 0.6
PART_CANDIDATES = 3
APPEARANCE_CANDIDATES = 3  # and the long videos whose frames look most like a clip (``_appearance_candidates``)
PART_OF = 0.8  # a copy shorter than this share of the other is a part of it (with the span it covers)


def copies(index: Index, min_score: float | None = None, top: int | None = None,
           alpha: Sequence[float] | None = None, flow_weight: float | None = None,
           neighbours: int = COPY_CANDIDATES, show_progress: bool = False) -> tuple[list[DuplicatePair], dict[str, str]]:
    """(pairs of clips that are the same footage, best first; {path: why it was not checked}).

    Candidates are each clip's ``neighbours`` nearest clips by motion (at least COPY_MOTION_FLOOR);
    each is verified on its frame signatures (``copies.copy_score``) and kept at ``min_score``
    (default ``copies.COPY_SCORE``) or as the best ``top``. In an index with windows, a clip is also
    held against the windows of the long videos it moves like: a clip that is a part of one is a pair
    of kind ``"part"`` with the span it covers (``span_a``, seconds of the long video ``a``).

    Signatures are made from the files the first time and kept in the index (they go with their
    clip); a file that cannot be read now is skipped and reported. Raises IndexStoreError for an
    empty index."""
    from .copies import COPY_SCORE, copy_score

    motion = duplicates(index, COPY_MOTION_FLOOR, None, alpha, flow_weight, neighbours)
    threshold = COPY_SCORE if min_score is None and top is None else min_score
    parts = _part_candidates(index, alpha, flow_weight) if index.has_windows() else []
    wanted = {pair.a for pair in motion} | {pair.b for pair in motion} | {clip_id for clip_id, _ in parts}
    if index.has_windows():  # parts are also looked for by their pictures: every clip's signature is needed
        wanted |= {int(clip_id) for clip_id in index.matrix().ids}
    signatures, unread = _signatures(index, sorted(wanted), show_progress)
    if index.has_windows():
        seen = {(clip_id, hit.id) for clip_id, hit in parts}
        parts += [(clip_id, hit) for clip_id, hit in _appearance_candidates(index, signatures)
                  if (clip_id, hit.id) not in seen]
    found = []
    for pair in motion:
        if pair.a not in signatures or pair.b not in signatures:
            continue
        (a, path_a, thumbs_a, times_a), (b, path_b, thumbs_b, times_b) = sorted(
            [(pair.a, pair.path_a, *signatures[pair.a]), (pair.b, pair.path_b, *signatures[pair.b])],
            key=lambda side: -_clip_seconds(side[3]))  # the longer first: a part is of it
        score, offset = copy_score(thumbs_a, times_a, thumbs_b, times_b)
        if threshold is None or score >= threshold:
            part = _clip_seconds(times_b) < PART_OF * _clip_seconds(times_a)
            covered = (round(max(offset, 0.0), 3), round(offset + _clip_seconds(times_b), 3)) if part else None
            found.append(DuplicatePair(a, b, path_a, path_b, score, pair.percentile, span_a=covered,
                                       kind="part" if part else "copy", motion_score=pair.score, offset_seconds=offset))
    paths = index.paths()
    listed = {frozenset({pair.a, pair.b}) for pair in found}
    for clip_id, hit, (span_thumbs, span_times) in _part_spans(parts, signatures, paths, unread):
        if frozenset({clip_id, hit.id}) in listed:  # found whole already (a much shorter copy is a part)
            continue
        thumbs, times = signatures[clip_id]
        score, offset = copy_score(span_thumbs, span_times, thumbs, times)
        if threshold is None or score >= threshold:
            covered = (round(max(offset, 0.0), 3), round(offset + _clip_seconds(times), 3))
            percentile = index.percentile([hit.score], alpha, flow_weight, kind="segments")[0]
            found.append(DuplicatePair(hit.id, clip_id, paths[hit.id], paths[clip_id], score, percentile,
                                       span_a=covered, kind="part", motion_score=hit.score, offset_seconds=offset))
    found.sort(key=lambda pair: (-pair.score, pair.a, pair.b))
    return found[:top or None], unread


def _appearance_candidates(index: Index, signatures: dict[int, tuple]) -> list[tuple[int, Any]]:
    """(clip id, SegmentHit) pairs found by pictures, for parts the motion vectors miss (a 1 s clip in
    a 4 s window moves unlike the window): each clip without windows against the APPEARANCE_CANDIDATES
    long videos holding the frame most like the clip's mean frame (zero-mean, unit thumbnails: a
    correlation), the window of that frame scored as ``score_window`` does."""
    entries = index.segment_entries()
    windowed = entries.window_ids >= 0
    videos = sorted({int(video) for video in entries.clip_ids[windowed]} & set(signatures))
    clips = [clip_id for clip_id in signatures if clip_id not in set(videos)]
    if not videos or not clips:
        return []

    def unit(rows: np.ndarray) -> np.ndarray:
        rows = rows - rows.mean(axis=1, keepdims=True)
        return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-6)

    frames = unit(np.concatenate([signatures[video][0][0] for video in videos]).astype(np.float32))
    owners = np.concatenate([np.full(len(signatures[video][1]), video) for video in videos])
    times = np.concatenate([signatures[video][1] for video in videos])
    means = unit(np.stack([signatures[clip_id][0][0].astype(np.float32).mean(axis=0) for clip_id in clips]))
    found = []
    for clip_id, similarities in zip(clips, means @ frames.T):
        best = {}
        for position in np.argsort(-similarities):
            best.setdefault(int(owners[position]), position)
            if len(best) == min(APPEARANCE_CANDIDATES, len(videos)):
                break
        for video, position in best.items():
            mine = np.flatnonzero(windowed & (entries.clip_ids == video))
            middle = (entries.starts[mine] + entries.ends[mine]) / 2
            window = int(entries.window_ids[mine[np.argmin(np.abs(middle - times[position]))]])
            hit = index.score_window(clip_id, window)
            if hit is not None:
                found.append((clip_id, hit))
    return found


SPAN_DECODE_SECONDS = 60.0  # stretches of a long video decoded at once (every frame), for its candidate parts


def _part_spans(parts: list[tuple[int, Any]], signatures: dict[int, tuple], paths: dict[int, str],
                unread: dict[str, str]):
    """(clip id, SegmentHit, (thumbnails, times) of the long video around the hit) for each part
    candidate whose clip has a signature. Each long video is decoded once per merged stretch (the
    hits' windows widened by their clip's length on each side, merged while they overlap, at most
    SPAN_DECODE_SECONDS each), every frame of it; a video that cannot be read goes to ``unread``."""
    by_video: dict[int, list[tuple[int, Any, float, float]]] = {}
    for clip_id, hit in parts:
        if clip_id in signatures:
            length = _clip_seconds(signatures[clip_id][1])
            by_video.setdefault(hit.id, []).append((clip_id, hit, max(hit.start - length, 0.0), hit.end + length))
    for video_id, items in by_video.items():
        items.sort(key=lambda item: item[2])
        stretches: list[list[float]] = []
        for _, _, start, end in items:
            if stretches and start <= stretches[-1][1] and end - stretches[-1][0] <= SPAN_DECODE_SECONDS:
                stretches[-1][1] = max(stretches[-1][1], end)
            else:
                stretches.append([start, end])
        decoded = {}
        for start, end in stretches:
            try:
                decoded[(start, end)] = _span_signature(paths[video_id], start, end, every_frame=True)
            except SemanticMomentsError as error:
                unread[paths[video_id]] = str(error)
        for clip_id, hit, start, end in items:
            stretch = next(((first, last) for first, last in decoded if first <= start and end <= last), None)
            if stretch is None:
                continue
            thumbs, times = decoded[stretch]
            inside = (times >= start - 1e-6) & (times <= end + 1e-6)
            if inside.sum() >= 2:
                yield clip_id, hit, (thumbs[:, inside], times[inside])


def _clip_seconds(times: np.ndarray) -> float:
    """A clip's length from its frames' times: the last frame lasts as long as the one before."""
    return float(times[-1] + (times[-1] - times[-2] if len(times) > 1 else 0.0))


def _part_candidates(index: Index, alpha, flow_weight) -> list[tuple[int, Any]]:
    """(clip id, SegmentHit) pairs: each clip without windows against the PART_CANDIDATES long videos
    it moves most like (at least PART_MOTION_FLOOR), the best window of each."""
    from .index import Where

    windowed = Where(windowed=True)
    entries = index.segment_entries()
    long_videos = set(entries.clip_ids[entries.window_ids >= 0].tolist())
    found = []
    for clip_id in [int(clip_id) for clip_id in index.matrix().ids]:
        if clip_id in long_videos:
            continue
        for hit in index.search_segments(clip_id, k=PART_CANDIDATES, per_video=1, alpha=alpha,
                                         flow_weight=flow_weight, where=windowed):
            if hit.window is not None and hit.score >= PART_MOTION_FLOOR:
                found.append((clip_id, hit))
    return found


def _signatures(index: Index, ids: Sequence[int], show_progress: bool) -> tuple[dict[int, tuple], dict[str, str]]:
    """{clip id: (thumbnails, times)} of every frame of each clip (``copies.MAX_FRAMES`` at most):
    those the index keeps, the others made from the files and then kept; {path: reason} of files
    that cannot be read now."""
    found = index.frame_signatures(ids)
    missing = [clip_id for clip_id in ids if clip_id not in found]
    paths = index.paths()
    made, unread = {}, {}
    progress = None
    if show_progress and missing:
        from tqdm.auto import tqdm

        progress = tqdm(total=len(missing), unit="clip", desc="frame signatures", dynamic_ncols=True)
    for clip_id in missing:
        try:
            made[clip_id] = _span_signature(paths[clip_id])
        except SemanticMomentsError as error:
            unread[paths[clip_id]] = str(error)
        if progress is not None:
            progress.update(1)
    if progress is not None:
        progress.close()
    index.keep_frame_signatures(made)
    return {**found, **made}, unread


def _span_signature(path: str, start: float | None = None, end: float | None = None,
                    every_frame: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(thumbnails, times) of a file's frames (all, or those from ``start`` to ``end`` seconds),
    ``copies.MAX_FRAMES`` at most spread evenly (``every_frame``: all of the stretch); times in
    seconds from the video's first frame.
    Raises VideoError (a SemanticMomentsError) for a file that cannot be read."""
    from .copies import MAX_FRAMES, thumbnails
    from .errors import VideoError
    from .video import VideoReader, sample_frame_indices

    try:
        with VideoReader(path, threads=1) as reader:  # one packet scan serves the count and the frames
            if reader.num_frames == 0:
                raise VideoError(f"{path}: no decodable video frames")
            times = reader.frame_times - reader.frame_times[0]
            if start is None:
                indices = sample_frame_indices(reader.frame_times, max(2, min(reader.num_frames, MAX_FRAMES)), None,
                                               reader.duration_seconds)
            else:
                inside = np.flatnonzero((times >= max(start, 0.0) - 1e-6) & (times <= end + 1e-6))
                if len(inside) < 2:
                    raise VideoError(f"{path}: no frames between {start:g} and {end:g} s")
                wanted = len(inside) if every_frame else min(len(inside), MAX_FRAMES)
                indices = inside[np.unique(np.linspace(0, len(inside) - 1, wanted).round().astype(int))]
            frames, used = reader.decode_frames(indices, (160, 160))
    except OSError as error:
        raise VideoError(f"{path}: cannot be read ({error})") from None
    return thumbnails(frames), times[used]


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
