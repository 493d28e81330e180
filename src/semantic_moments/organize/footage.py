"""Copies: the same footage, not just the same motion (package doc). Candidates from the motion
vectors (``motion.duplicates``) and, for parts of long videos, from windows and pictures; each
verified on frame signatures (``copies.py``: the math), which are made from the files once and kept
in the index."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import SemanticMomentsError
from ..index import Index
from .motion import DuplicatePair, duplicates

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
    from ..copies import COPY_SCORE, copy_score

    motion = duplicates(index, COPY_MOTION_FLOOR, None, alpha, flow_weight, neighbours)
    threshold = COPY_SCORE if min_score is None and top is None else min_score
    windowed = index.has_windows()
    paths = index.paths()
    parts = _part_candidates(index, alpha, flow_weight) if windowed else []
    wanted = {pair.a for pair in motion} | {pair.b for pair in motion} | {clip_id for clip_id, _ in parts}
    if windowed:  # parts are also looked for by their pictures: every clip's signature is needed
        wanted |= {int(clip_id) for clip_id in index.matrix().ids}
    signatures, unread = _signatures(index, sorted(wanted), paths, show_progress)
    if windowed:
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
            covered = _covered(offset, times_b) if part else None
            found.append(DuplicatePair(a, b, path_a, path_b, score, pair.percentile, span_a=covered,
                                       kind="part" if part else "copy", motion_score=pair.score, offset_seconds=offset))
    listed = {frozenset({pair.a, pair.b}) for pair in found}
    for clip_id, hit, (span_thumbs, span_times) in _part_spans(parts, signatures, paths, unread):
        if frozenset({clip_id, hit.id}) in listed:  # found whole already (a much shorter copy is a part)
            continue
        thumbs, times = signatures[clip_id]
        score, offset = copy_score(span_thumbs, span_times, thumbs, times)
        if threshold is None or score >= threshold:
            percentile = index.percentile([hit.score], alpha, flow_weight, kind="segments")[0]
            found.append(DuplicatePair(hit.id, clip_id, paths[hit.id], paths[clip_id], score, percentile,
                                       span_a=_covered(offset, times), kind="part", motion_score=hit.score, offset_seconds=offset))
    found.sort(key=lambda pair: (-pair.score, pair.a, pair.b))
    return found[:top or None], unread


def _appearance_candidates(index: Index, signatures: dict[int, tuple]) -> list[tuple[int, Any]]:
    """(clip id, SegmentHit) pairs found by pictures, for parts the motion vectors miss (a 1 s clip in
    a 4 s window moves unlike the window): each clip without windows against the APPEARANCE_CANDIDATES
    long videos holding the frame most like the clip's mean frame (zero-mean, unit thumbnails: a
    correlation), the window of that frame scored as ``score_window`` does."""
    entries = index.segment_entries()
    windowed = entries.window_ids >= 0
    long_videos = {int(video) for video in entries.clip_ids[windowed]} & set(signatures)
    videos = sorted(long_videos)
    clips = [clip_id for clip_id in signatures if clip_id not in long_videos]
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


def _covered(offset: float, times: np.ndarray) -> tuple[float, float]:
    """(start, end) seconds of the other video that a clip with frames at ``times`` covers when its
    time t shows the other's t + ``offset``."""
    return round(max(offset, 0.0), 3), round(offset + _clip_seconds(times), 3)


def _clip_seconds(times: np.ndarray) -> float:
    """A clip's length from its frames' times: the last frame lasts as long as the one before."""
    return float(times[-1] + (times[-1] - times[-2] if len(times) > 1 else 0.0))


def _part_candidates(index: Index, alpha, flow_weight) -> list[tuple[int, Any]]:
    """(clip id, SegmentHit) pairs: each clip without windows against the PART_CANDIDATES long videos
    it moves most like (at least PART_MOTION_FLOOR), the best window of each."""
    from ..index import Where

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


def _signatures(index: Index, ids: Sequence[int], paths: dict[int, str],
                show_progress: bool) -> tuple[dict[int, tuple], dict[str, str]]:
    """{clip id: (thumbnails, times)} of every frame of each clip (``copies.MAX_FRAMES`` at most):
    those the index keeps, the others made from the files and then kept; {path: reason} of files
    that cannot be read now."""
    found = index.frame_signatures(ids)
    missing = [clip_id for clip_id in ids if clip_id not in found]
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
    from ..copies import MAX_FRAMES, thumbnails
    from ..errors import VideoError
    from ..video import VideoReader, sample_frame_indices

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


