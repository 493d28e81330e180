"""Copies, not just the same motion: per-frame signatures and their best temporal alignment. Pure NumPy.

Two takes of one action in front of a fixed camera move almost identically, so their motion vectors
score as high as a copy's. What a copy has and a retake has not is the same *pictures at the same
moments*. A clip's signature is a small greyscale thumbnail (``SIDE`` x ``SIDE``) of every frame (up
to ``MAX_FRAMES``, spread over the clip past that) with its presentation time. Two clips are compared
under the best time offset (every offset their frames suggest; the other clip's thumbnail at a time
between two of its frames is interpolated), and, for a cropped copy, the one's central crops (10%,
20%) against the other's whole frame. At each alignment the thumbnails lose the mean over the frames
both cover (what stays put: the scene), and the score is a low percentile (the 10th) of the per-frame
correlations: a copy matches at every frame, a retake drifts at some.

Found: re-encodes, downscales, changed bitrate, trims (a part of a clip, either end), mild crops (up to
about 20%). Not found, on purpose or by construction: a mirrored copy, a heavy crop, a speed change,
a copy with an overlay covering much of the frame, and a clip longer than ``MAX_FRAMES`` frames
trimmed by other than whole sampling steps (its frames are spread, so a trim shifts them apart).
"""

from __future__ import annotations

import numpy as np

SIDE = 32
MAX_FRAMES = 300
CROPS = (0.0, 0.1, 0.2)  # central crops (share of each side cut) compared against the other's whole frame
MIN_SHARED = 0.5  # the two must overlap on at least half the shorter clip's frames (and 4 frames)
PERCENTILE = 10
REFINED = 8  # offsets scored on every crop pair (the best on whole frames)
COPY_SCORE = 0.95  # measured on the arm actions: planted copies 0.986-0.991, retakes of one person at most 0.91 (docs)


def thumbnails(frames: np.ndarray) -> np.ndarray:
    """(len(CROPS), N, SIDE*SIDE) uint8 greyscale thumbnails (box-averaged) of (N, H, W, 3) uint8
    frames: of the whole frame, then of each central crop of ``CROPS``."""
    grey = np.asarray(frames, dtype=np.float32).mean(axis=-1)
    n, height, width = grey.shape
    result = []
    for share in CROPS:
        top, left = int(round(height * share / 2)), int(round(width * share / 2))
        part = grey[:, top:height - top, left:width - left]
        rows = np.linspace(0, part.shape[1], SIDE + 1).astype(int)
        columns = np.linspace(0, part.shape[2], SIDE + 1).astype(int)
        summed = np.add.reduceat(np.add.reduceat(part, rows[:-1], axis=1), columns[:-1], axis=2)
        counts = np.outer(np.diff(rows), np.diff(columns))
        result.append(np.clip(summed / np.maximum(counts, 1), 0, 255).round().astype(np.uint8).reshape(n, -1))
    return np.stack(result)


def _centred_unit(rows: np.ndarray) -> np.ndarray:
    rows = rows - rows.mean(axis=0)
    norms = np.sqrt(np.einsum("ij,ij->i", rows, rows))[:, None]
    return rows / np.maximum(norms, 1e-6)


def _low_percentile(values: np.ndarray) -> float:
    """``np.percentile(values, PERCENTILE)`` (linear interpolation), by one sort."""
    ordered = np.sort(values)
    position = PERCENTILE / 100 * (len(ordered) - 1)
    low = int(np.floor(position))
    high = min(low + 1, len(ordered) - 1)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (position - low))


def copy_score(thumbs_a: np.ndarray, times_a: np.ndarray, thumbs_b: np.ndarray,
               times_b: np.ndarray) -> tuple[float, float]:
    """(score in [-1, 1], offset seconds) of the best alignment of clip b's frames to clip a's: b's
    time t shows a's time t + offset (module doc). Thumbnails (len(CROPS), N, SIDE*SIDE) from
    ``thumbnails``, times (N,) seconds, increasing. (-1, 0) where no alignment shares enough frames.

    Every offset is scored on the whole frames; the ``REFINED`` best of them are scored again on
    every crop pair (the right alignment is among the best on whole frames even for a cropped copy,
    and the crops cost five times as much)."""
    times_a, times_b = np.asarray(times_a, np.float64), np.asarray(times_b, np.float64)
    needed = max(4, int(MIN_SHARED * min(len(times_a), len(times_b))))
    # where b's first frame is one of a's frames, or a's first frame one of b's: a trim at either end
    offsets = np.unique(np.round(np.concatenate([times_a - times_b[0], times_a[0] - times_b]), 4))
    a_all, b_all = np.asarray(thumbs_a, np.float32), np.asarray(thumbs_b, np.float32)
    pairs = [(a_all[0], b_all[crop]) for crop in range(len(CROPS))] + \
            [(a_all[crop], b_all[0]) for crop in range(1, len(CROPS))]

    def score_at(offset: float, chosen) -> float:
        wanted = times_a - offset  # the times of b that a's frames show
        inside = (wanted >= times_b[0] - 1e-6) & (wanted <= times_b[-1] + 1e-6)
        if inside.sum() < needed:
            return -1.0
        high = np.clip(np.searchsorted(times_b, wanted[inside]), 1, len(times_b) - 1)
        low = high - 1
        span = np.maximum(times_b[high] - times_b[low], 1e-9)
        weight = np.clip((wanted[inside] - times_b[low]) / span, 0, 1)[:, None]
        best = -1.0
        for a, b in chosen:
            between = (1 - weight) * b[low] + weight * b[high]
            correlations = np.einsum("ij,ij->i", _centred_unit(a[inside]), _centred_unit(between))
            best = max(best, _low_percentile(correlations))
        return best

    whole = np.array([score_at(offset, pairs[:1]) for offset in offsets])
    if not len(whole) or whole.max() <= -1.0:
        return -1.0, 0.0
    best, best_offset = -1.0, 0.0
    for position in np.argsort(-whole, kind="stable")[:REFINED]:
        score = max(float(whole[position]), score_at(offsets[position], pairs[1:]))
        if score > best:
            best, best_offset = score, float(offsets[position])
    return best, best_offset
