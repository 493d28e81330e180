"""A whole video sampled at a fixed rate and decoded chunk by chunk: what windowed indexing of long
videos reads (``SemanticMoments.iter_windows``). The sampling rule is ``sample.py``'s, applied to the
first N / rate seconds; memory holds one chunk of frames whatever the video's length."""

from __future__ import annotations

import dataclasses

import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..errors import VideoError
from .clips import SampledClip
from .decode import VideoReader
from .probe import hash_file
from .readahead import read_ahead
from .sample import require_motion, sample_frame_indices


@dataclass(frozen=True)
class VideoSamples:
    """A video sampled at a fixed rate, to be decoded chunk by chunk (``chunks``): the long-video
    counterpart of SampledClip, whose frames would not fit in memory.

    Attributes:
        samples: every sample's times and indices and the video's metadata, as a SampledClip without
            frames (``samples.frame_indices`` (N,), ``samples.duration_seconds``, ...).
        reader: the open VideoReader (``close`` it, or use as a context manager).
        size: (height, width) the frames are decoded at, or None: the video's own.
    """

    samples: SampledClip
    reader: VideoReader
    size: tuple[int, int] | None

    @property
    def frame_indices(self) -> np.ndarray:
        return self.samples.frame_indices

    def chunks(self, chunk: int = 64) -> Iterator[np.ndarray]:
        """The sampled frames in order, ``chunk`` at a time ((<= chunk, H, W, 3) uint8)."""
        return self.reader.iter_frames_at(self.frame_indices, self.size, chunk)

    def chunks_ahead(self, chunk: int = 64) -> Iterator[np.ndarray]:
        """``chunks``, each decoded in a thread while the caller works on the one before
        (``readahead.read_ahead``); a decoding error is raised here."""
        frames = self.chunks(chunk)
        decoded = read_ahead(range(-(-len(self.frame_indices) // chunk)), lambda _: next(frames), workers=1, ahead=1)
        try:
            for _, batch in decoded:
                if isinstance(batch, Exception):
                    raise batch
                yield batch
        finally:
            decoded.close()

    def clip(self, first: int, count: int) -> SampledClip:
        """Metadata of samples first .. first + count - 1 as a SampledClip without frames."""
        return dataclasses.replace(self.samples, pts_seconds=self.samples.pts_seconds[first:first + count],
                                   frame_indices=self.samples.frame_indices[first:first + count])

    def close(self) -> None:
        self.reader.close()

    def __enter__(self) -> VideoSamples:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def sample_video(path: str | os.PathLike[str], rate: float, size: tuple[int, int] | None = None,
                 decode_threads: int = 0) -> VideoSamples:
    """Plan ``rate`` samples per second over a whole video file: sample j is the frame displayed at
    (j + 0.5) / rate seconds (the module's rule applied to the first N / rate seconds, N whole
    sample intervals). Nothing is decoded until ``chunks`` is iterated."""
    return samples_of(VideoReader(path, threads=decode_threads), rate, size)


def samples_of(reader: VideoReader, rate: float, size: tuple[int, int] | None = None) -> VideoSamples:
    """``sample_video`` of a file already open (its packets scanned once); the samples own the
    reader: it is closed with them, or here on an error."""
    try:
        if reader.num_frames == 0:
            raise VideoError(f"{reader.path}: no decodable video frames")
        duration = reader.duration_seconds
        count = int(np.floor(duration * rate + 1e-9))
        if count < 2:
            raise VideoError(f"{reader.path}: {duration:.3f} s is too short for {rate:g} samples per second")
        times = reader.frame_times
        indices = sample_frame_indices(times, count, (0.0, count / rate), duration)
        require_motion(indices, str(reader.path), reader.num_frames)
        samples = SampledClip(frames=np.zeros((0, 1, 1, 3), np.uint8), pts_seconds=times[indices] - times[0],
                              frame_indices=indices, num_source_frames=reader.num_frames, duration_seconds=duration,
                              fps=reader.fps, source=str(reader.path), content_hash=hash_file(reader.path))
        return VideoSamples(samples, reader, size)
    except BaseException:
        reader.close()
        raise
