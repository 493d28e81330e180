"""Windows of long videos and segments of search results: plans and interval math. No I/O.

A long video is sampled once at a fixed rate chosen so that a window of ``length`` seconds holds
T frames, the T a clip is sampled with: rate = T / length frames per second. Sample j is the frame
displayed at (j + 0.5) / rate seconds (``video.sample_frame_indices``' rule), so window w, which
starts at w * stride seconds, holds samples w * S .. w * S + T - 1 (S = stride * rate, a whole
number of samples) and those are exactly the frames ``read_clip`` samples for the segment
[w * stride, w * stride + length]: a window's embedding equals embedding that segment as a clip.
A video holding fewer than two windows is embedded as one clip. The last stretch shorter than a
stride after the final window is covered by the video's own (whole-video) embedding only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import ConfigError

MAX_RATE = 60.0  # samples per second: a window must hold its T frames at no more than this rate
MAX_WINDOWS = 100_000  # per video; more is a mistaken stride, not a search need


@dataclass(frozen=True)
class WindowPlan:
    """How a long video is cut into windows.

    Attributes:
        length: seconds per window.
        stride: seconds from one window's start to the next's (a whole number of samples).
        frames: T, samples per window.
        min_duration: videos shorter than this (seconds) are embedded as one clip; at least
            length + stride (two windows).
    """

    length: float
    stride: float
    frames: int
    min_duration: float = 0.0

    @classmethod
    def parse(cls, spec: str | WindowPlan | dict[str, Any], frames: int, min_duration: float | None = None) -> WindowPlan:
        """A plan from ``"LEN[:STRIDE]"`` seconds (stride default: LEN / 4), a dict (``to_dict``) or
        a plan. The stride is rounded to whole samples; ConfigError for anything unusable."""
        if isinstance(spec, WindowPlan):
            return spec
        if isinstance(spec, dict):
            return cls(float(spec["length"]), float(spec["stride"]), int(spec["frames"]), float(spec.get("min_duration", 0)))
        text = str(spec).strip()
        try:
            pieces = [float(piece) for piece in text.split(":")]
        except ValueError:
            raise ConfigError(f"windows must be LEN or LEN:STRIDE in seconds (e.g. 4:1), got {spec!r}") from None
        if len(pieces) not in (1, 2) or not all(math.isfinite(piece) and piece > 0 for piece in pieces):
            raise ConfigError(f"windows must be LEN or LEN:STRIDE with positive seconds (e.g. 4:1), got {spec!r}")
        length = pieces[0]
        stride = pieces[1] if len(pieces) == 2 else length / 4
        if frames < 2:
            raise ConfigError(f"windows need at least 2 frames each, got {frames}")
        rate = frames / length
        if rate > MAX_RATE:
            raise ConfigError(f"windows of {length:g} s would sample {frames} frames at {rate:.3g} per second; a window "
                              f"needs at least {frames / MAX_RATE:g} s ({MAX_RATE:g} frames per second at most)")
        samples = max(1, round(stride * rate))
        if samples > frames:
            raise ConfigError(f"a stride of {stride:g} s is longer than a window of {length:g} s: parts of the video "
                              "would be in no window")
        stride = samples / rate
        return cls(length, stride, int(frames), max(length + stride, float(min_duration or 0.0)))

    @property
    def rate(self) -> float:
        """Samples per second."""
        return self.frames / self.length

    @property
    def stride_frames(self) -> int:
        return max(1, round(self.stride * self.rate))

    def samples(self, duration: float) -> int:
        """Samples a video of ``duration`` seconds gives (whole sample intervals only)."""
        return int(math.floor(duration * self.rate + 1e-9))

    def count(self, duration: float) -> int:
        """Windows a video of ``duration`` seconds holds (0 when shorter than ``min_duration``)."""
        samples = self.samples(duration)
        if duration < self.min_duration or samples < self.frames:
            return 0
        return (samples - self.frames) // self.stride_frames + 1

    def require_rate(self, min_rate: float | None) -> WindowPlan:
        """This plan, or ConfigError when its windows sample fewer than ``min_rate`` frames a second
        (the model's minimum rate, ``video/sample.py``): a window must embed as the same segment
        would, and a longer segment is sampled over its centre only."""
        if min_rate is not None and self.rate < min_rate * (1 - 1e-9):
            raise ConfigError(f"windows of {self.length:g} s would sample {self.frames} frames at {self.rate:g} per "
                              f"second; the model samples at least {min_rate:g} per second: use windows of at most "
                              f"{self.frames / min_rate:g} s")
        return self

    def require_count(self, duration: float, source: str) -> int:
        """``count(duration)``, or ConfigError naming ``source`` when it is above MAX_WINDOWS."""
        count = self.count(duration)
        if count > MAX_WINDOWS:
            raise ConfigError(f"{source}: {count} windows of {self.length:g} s every {self.stride:g} s; at most "
                              f"{MAX_WINDOWS} per video (use a longer stride)")
        return count

    def bounds(self, first_sample: int) -> tuple[float, float]:
        """(start, end) seconds of the window starting at sample ``first_sample``."""
        start = first_sample / self.rate
        return start, start + self.length

    def to_dict(self) -> dict[str, Any]:
        return {"length": self.length, "stride": self.stride, "frames": self.frames, "min_duration": self.min_duration}

    def describe(self) -> str:
        return (f"{self.length:g} s windows every {self.stride:g} s ({self.frames} frames at {self.rate:g}/s) in videos "
                f"of {self.min_duration:g} s or more")


def temporal_iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Intersection over union of two time intervals (start, end), seconds; 0 for disjoint ones."""
    overlap = min(a[1], b[1]) - max(a[0], b[0])
    if overlap <= 0:
        return 0.0
    union = max(a[1], b[1]) - min(a[0], b[0])
    return overlap / union if union > 0 else 0.0


OVERLAP = 0.3  # temporal IoU above which two windows of a video are the same moment


def best_first(scores: Sequence[float], starts: Sequence[float]) -> np.ndarray:
    """Indices by score, highest first, ties by start time (then by index)."""
    return np.lexsort((np.asarray(starts, dtype=np.float64), -np.asarray(scores, dtype=np.float64)))


def non_maximum_suppression(spans: Sequence[Sequence[float]], order: Iterable[int], keep: int,
                            threshold: float = OVERLAP, groups: Sequence[int] | None = None,
                            limit: int | None = None) -> list[int]:
    """Segments kept from candidates ``spans`` [(start, end)] visited in ``order`` (best first): a
    candidate is left out when its group (its video; one group without ``groups``) already holds
    ``keep`` or it overlaps a kept one of its group by temporal IoU above ``threshold``, so
    overlapping windows that found the same moment give it once. Stops after ``limit`` kept. Visiting
    all videos' windows in one score order keeps, per video, exactly its own greedy picks, so the
    first ``limit`` kept are the best ``limit`` results. Returns the kept indices, best first."""
    taken: dict[int, list[tuple[float, float]]] = {}
    kept: list[int] = []
    for index in order:
        index = int(index)
        span = (float(spans[index][0]), float(spans[index][1]))
        mine = taken.setdefault(int(groups[index]) if groups is not None else 0, [])
        if len(mine) >= keep or any(temporal_iou(span, other) > threshold for other in mine):
            continue
        mine.append(span)
        kept.append(index)
        if limit is not None and len(kept) >= limit:
            break
    return kept
