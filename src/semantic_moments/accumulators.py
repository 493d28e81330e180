"""Streaming statistics of backbone tokens: of one clip, and of every window of a long video. Pure
torch, no I/O.

``ClipStatistics`` is what one backbone pass over a clip yields (temporal moments of both
granularities and the token flow); every embedding variant is finalised from it.

``SlidingWindows`` gives the same statistics for every window of ``window`` consecutive frames,
starting every ``stride`` frames, of a video fed frame by frame in order, while each frame goes
through the backbone once and is added once: frames are accumulated per chunk of
c = gcd(window, stride) frames, and a window is the exact merge (Pébay's pairwise formulas,
``TemporalMoments.merge``) of its window / c chunks. The flow of a frame pair is computed once and
kept until no later window needs it. Memory holds window / c chunk accumulators and window - 1 flow
maps, whatever the video's length; a window equals embedding its frames as a clip (tested).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from math import gcd

import torch

from .backbones.base import TokenOutput
from .errors import ConfigError
from .flow import TokenFlow, flow_vectors, step_flow
from .moments import TemporalMoments


class ClipStatistics:
    """Everything one backbone pass over a clip yields, streamed: temporal moments of the patch
    tokens (P, d) and of the per-frame tokens (1, d), and the token flow over the patch grid.

    Args:
        patch, frame: moment accumulators for the two granularities.
        steps: frame pairs the clip will give (temporal samples - 1), for the flow's segments.
        segments: the flow's temporal segments.
        candidates: also accumulate the token-flow descriptors measured as candidates
            (``flow.candidate_maps``; the benchmark's, not the embeddings').
    """

    def __init__(self, patch: TemporalMoments, frame: TemporalMoments, steps: int, segments: int,
                 candidates: bool = False) -> None:
        self.patch, self.frame = patch, frame
        self.flow: TokenFlow | None = None  # made at the first batch, when the patch grid is known
        self.grid: tuple[int, int] = (1, 1)
        self._steps, self._segments, self._candidates = steps, segments, candidates

    def update(self, output: TokenOutput, start: int = 0, stop: int | None = None) -> None:
        """Add the tokens of temporal samples ``start:stop`` of a backbone output."""
        patch = output.patch[start:stop]
        self.patch.update(patch)
        self.frame.update(output.pooled[start:stop, None, :])
        self.grid = output.grid
        if self.flow is None and self._steps >= 1:
            self.flow = TokenFlow(output.grid, self._steps, self._segments, self._candidates)
        if self.flow is not None:
            self.flow.update(patch)

    def motion_level(self) -> float:
        """How much the patch tokens change over the clip, relative to their size: the mean temporal
        standard deviation over patches and channels divided by the RMS of the temporal mean.
        Measured on Lite0 ``blocks.7``: 0.017 for still H.264 clips (codec noise), 0.034 and up for
        every moving clip of the benchmark sets (median 0.16)."""
        mean = self.patch.central_moment(1)
        spread = self.patch.central_moment(2).clamp(min=0).sqrt()
        size = mean.pow(2).mean().sqrt()
        return float(spread.mean() / size) if size > 0 else 0.0

    def flow_vectors(self, grids: Sequence[int]) -> dict[int, torch.Tensor]:
        """{g: vector} of the token flow (``flow.flow_vectors``); empty where the grid is too coarse."""
        if self.flow is None or min(self.grid) < max(grids):
            return {}
        return flow_vectors(self.flow, grids)


class SlidingWindows:
    """Statistics of every window of a video's frames, streamed (see the module doc).

    Args:
        window: frames per window (the T a clip would be sampled with), at least 2.
        stride: frames from one window's start to the next's, at least 1.
        total: frames the video will give (for the whole-video flow's segments), at least ``window``.
        max_order: highest moment order kept.
        segments: the flow's temporal segments, per window and for the whole video.

    ``update(output, start, stop)`` adds frames in order (like ``ClipStatistics.update``) and returns
    [(first frame, ClipStatistics)] of the windows completed by them; ``whole()`` gives the
    statistics of all frames added (the video's own embedding) once the last frame is in.
    """

    def __init__(self, window: int, stride: int, total: int, max_order: int = 3, segments: int = 2) -> None:
        if window < 2 or stride < 1 or total < window:
            raise ConfigError(f"windows need window >= 2 frames, stride >= 1 and a video of at least one window; got "
                              f"window {window}, stride {stride}, {total} frames")
        self.window, self.stride, self.total = int(window), int(stride), int(total)
        self.chunk = gcd(self.window, self.stride)
        self.max_order, self.segments = max_order, segments
        self.frames = 0  # frames added so far
        self.grid: tuple[int, int] | None = None
        self._chunks: deque[tuple[TemporalMoments, TemporalMoments]] = deque(maxlen=self.window // self.chunk)
        self._current = self._new_chunk()
        self._steps: deque[tuple[int, torch.Tensor]] = deque()  # (index of the pair's first frame, maps (4, r, c))
        self._previous: torch.Tensor | None = None
        self._whole = ClipStatistics(TemporalMoments(max_order), TemporalMoments(max_order), total - 1, segments)
        self._whole_flow: TokenFlow | None = None

    def _new_chunk(self) -> tuple[TemporalMoments, TemporalMoments]:
        return TemporalMoments(self.max_order), TemporalMoments(self.max_order)

    def update(self, output: TokenOutput, start: int = 0, stop: int | None = None) -> list[tuple[int, ClipStatistics]]:
        """Add temporal samples ``start:stop`` of a backbone output; the windows they complete."""
        patch, pooled = output.patch[start:stop], output.pooled[start:stop]
        if self.frames + patch.shape[0] > self.total:
            raise ConfigError(f"more frames than the {self.total} announced")
        if self.grid is None:
            self.grid = output.grid
            self._whole.grid = output.grid
            self._whole_flow = TokenFlow(output.grid, self.total - 1, self.segments)
            self._whole.flow = self._whole_flow
        self._add_steps(patch)
        completed = []
        position = 0
        while position < patch.shape[0]:
            take = min(patch.shape[0] - position, self.chunk - self._current[0].count)
            self._current[0].update(patch[position:position + take])
            self._current[1].update(pooled[position:position + take, None, :])
            position += take
            self.frames += take
            if self._current[0].count == self.chunk:
                self._close_chunk()
                first = self.frames - self.window
                if first >= 0 and first % self.stride == 0:
                    completed.append((first, self._window(first)))
        self._drop_steps_before(self._next_window_start())
        return completed

    def _add_steps(self, patch: torch.Tensor) -> None:
        rows, columns = self.grid  # type: ignore[misc]
        frames = patch.detach().reshape(patch.shape[0], rows, columns, patch.shape[-1])
        if self._previous is not None:
            frames = torch.cat([self._previous[None].to(frames.device, frames.dtype), frames])
        if frames.shape[0] >= 2:
            maps = step_flow(frames[:-1], frames[1:]).cpu()
            first = self.frames - (1 if self._previous is not None else 0)
            for offset in range(maps.shape[0]):
                self._steps.append((first + offset, maps[offset]))
            self._whole_flow.add_steps(maps)  # type: ignore[union-attr]
        self._previous = frames[-1].clone()

    def _close_chunk(self) -> None:
        self._chunks.append(self._current)
        self._whole.patch.merge(self._current[0])
        self._whole.frame.merge(self._current[1])
        self._current = self._new_chunk()

    def _next_window_start(self) -> int:
        """The first frame of the next window not yet given out."""
        done = self.frames - self.window
        return 0 if done < 0 else (done // self.stride + 1) * self.stride

    def _drop_steps_before(self, frame: int) -> None:
        while self._steps and self._steps[0][0] < frame:
            self._steps.popleft()

    def _window(self, first: int) -> ClipStatistics:
        """The statistics of frames first .. first + window - 1 (its chunks are the last ones closed)."""
        patch, frame = TemporalMoments(self.max_order), TemporalMoments(self.max_order)
        for chunk_patch, chunk_frame in self._chunks:
            patch.merge(chunk_patch)
            frame.merge(chunk_frame)
        statistics = ClipStatistics(patch, frame, self.window - 1, self.segments)
        statistics.grid = self.grid  # type: ignore[assignment]
        flow = TokenFlow(self.grid, self.window - 1, self.segments)  # type: ignore[arg-type]
        wanted = [maps for index, maps in self._steps if first <= index < first + self.window - 1]
        if len(wanted) != self.window - 1:
            raise AssertionError(f"window at {first}: {len(wanted)} flow steps kept, {self.window - 1} needed")
        flow.add_steps(torch.stack(wanted))
        statistics.flow = flow
        return statistics

    def whole(self) -> ClipStatistics:
        """Statistics of every frame added (all must be in: ``total``)."""
        if self.frames != self.total:
            raise ConfigError(f"{self.frames} of {self.total} frames were added")
        if self._current[0].count:  # the frames after the last full chunk
            self._whole.patch.merge(self._current[0])
            self._whole.frame.merge(self._current[1])
            self._current = self._new_chunk()
        return self._whole
