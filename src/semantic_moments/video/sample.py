"""The sampling rule: which frames of a clip are taken. Pure: timestamps in, indices out; no files.

Sampling rule (the same for every source): the segment is cut into T equal intervals and the frame
*displayed* at the centre of each interval is taken, i.e. the last frame whose timestamp is at or
before t_i = start + (i + 0.5) (end - start) / T. This is uniform in time, so variable-frame-rate
clips are sampled correctly; a clip with fewer than T frames repeats frames (never returns fewer
than T). A clip with fewer than two distinct frames in the segment is an error: it has no motion.

A minimum rate r (``min_rate``, samples per second) keeps consecutive samples at most 1 / r seconds
apart, so that the token flow between them measures motion rather than two unrelated moments: a
segment longer than T / r seconds is sampled over its central T / r seconds. Shorter segments are
sampled exactly as without it. (Measured, README "Quality": spreading 16 samples over a long clip
left the flow between them meaningless; repetitions and long clips are where it mattered.)
"""

from __future__ import annotations

import numpy as np

from ..errors import VideoError


def sampled_span(start: float, end: float, num_frames: int, min_rate: float | None = None) -> tuple[float, float]:
    """The part of [start, end] (seconds) that T = ``num_frames`` samples cover: all of it, or its
    central T / ``min_rate`` seconds when it is longer (module doc)."""
    if min_rate is None or end - start <= num_frames / min_rate:
        return start, end
    middle, half = (start + end) / 2, num_frames / min_rate / 2
    return middle - half, middle + half


def sample_frame_indices(
    frame_times: np.ndarray,
    num_frames: int,
    segment: tuple[float, float] | None = None,
    duration: float | None = None,
    min_rate: float | None = None,
) -> np.ndarray:
    """Indices (num_frames,) into ``frame_times`` (sorted, seconds) under the module's sampling rule.

    ``segment`` is ``(start, end)`` in seconds; ``duration`` is the clip's end time (defaults to
    one frame interval past the last frame); ``min_rate``: see the module doc (None: uniform over the
    whole segment). Raises VideoError when the segment holds no frame.
    """
    if len(frame_times) == 0:
        raise VideoError("no frames to sample")
    first = float(frame_times[0])
    if duration is None:
        step = float(np.median(np.diff(frame_times))) if len(frame_times) > 1 else 1.0
        duration = float(frame_times[-1]) + step - first
    start, end = first, first + duration
    if segment is not None:
        seg_start, seg_end = float(segment[0]), float(segment[1])
        if not (0 <= seg_start < seg_end):
            raise VideoError(f"segment must satisfy 0 <= start < end, got {seg_start}-{seg_end} seconds")
        if first + seg_start >= start + duration:
            raise VideoError(f"segment starts at {seg_start:.3f}s, after the clip ends ({duration:.3f}s)")
        start, end = first + seg_start, min(first + seg_end, start + duration)
    start, end = sampled_span(start, end, num_frames, min_rate)
    centres = start + (np.arange(num_frames) + 0.5) * (end - start) / num_frames
    indices = np.searchsorted(frame_times, centres, side="right") - 1
    lowest = int(np.searchsorted(frame_times, start, side="right") - 1)
    return np.clip(indices, max(lowest, 0), len(frame_times) - 1).astype(np.int64)


def require_motion(indices: np.ndarray, source: str, num_available: int, segment=None, decoded: bool = False) -> None:
    """Raise VideoError unless the sample holds 2 distinct frames; the message counts the frames
    of the sampled range (the segment's, where there is one), not the whole clip's. ``decoded``:
    ``indices`` are the frames that really decoded (a damaged file may give fewer)."""
    distinct = len(np.unique(indices))
    if distinct < 2:
        if decoded:
            raise VideoError(f"{source}: only {distinct} distinct sampled frame(s) decode; the file is corrupt or "
                             "truncated")
        where = (f"the segment {segment[0]:g}-{segment[1]:g} s holds {distinct}" if segment
                 else f"only {num_available}")
        raise VideoError(f"{source}: {where} decodable frame(s); motion needs at least 2 distinct frames")
