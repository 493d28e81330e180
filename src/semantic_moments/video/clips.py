"""Opening clips and sampling T frames from them: video files, folders of images, arrays.

``read_clip`` samples ``num_frames`` frames uniformly over the clip (or a ``[start, end]`` segment in
seconds; the rule is ``sample.py``'s) and returns them resized to the backbone's input size.

Frame timestamps come from demuxing the packets, never from the container's frame count. A
sampled frame whose packet gives no picture (a truncated or damaged file, the placeholders of packed
B-frames) is replaced by the frame displayed at its time, the nearest earlier one that decodes
(``VideoReader.decode_frames``): what sampling over the frames that really decode picks. Clips and
the windows of long videos read through the same path.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import VideoError
from .decode import VideoReader, describe_error
from .probe import hash_file
from .sample import require_motion, sample_frame_indices

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
# what a folder scan takes for video (the suffixes FFmpeg commonly reads)
VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".wmv", ".flv",
                            ".ts", ".mts", ".m2ts", ".3gp", ".ogv", ".gif"})


class VideoTruncated(UserWarning):
    """A file holds much less video than its container says (``VideoReader.truncation``)."""


@dataclass(frozen=True)
class SampledClip:
    """T frames sampled from one clip.

    Attributes:
        frames: (T, H, W, 3) uint8 RGB, H x W the requested size (or the source's).
        pts_seconds: (T,) float64, presentation time of each sampled frame, seconds.
        frame_indices: (T,) int64, index of each sampled frame among the source's decodable frames.
        num_source_frames: frames the source holds (counted by demuxing or decoding, not read from
            the header).
        duration_seconds: length of the whole source, seconds (frame count / fps for arrays).
        fps: average frame rate of the source, or None where it has none (images, arrays).
        source: the file or folder path, or ``"<array>"``.
        content_hash: BLAKE2b (hex, 32 chars) of the source's bytes.
    """

    frames: np.ndarray
    pts_seconds: np.ndarray
    frame_indices: np.ndarray
    num_source_frames: int
    duration_seconds: float
    fps: float | None
    source: str
    content_hash: str


def read_video(
    path: str | os.PathLike[str],
    num_frames: int,
    size: tuple[int, int] | None = None,
    segment: tuple[float, float] | None = None,
    decode_threads: int = 0,
    min_rate: float | None = None,
) -> SampledClip:
    """Sample ``num_frames`` frames from a video file (see the module docstring for the rule);
    ``decode_threads`` as ``VideoReader``'s ``threads``; ``min_rate`` as in ``sample.py``."""
    with VideoReader(path, threads=decode_threads) as reader:
        if reader.num_frames == 0:
            raise VideoError(f"{reader.path}: no decodable video frames")
        note = reader.truncation()
        if note:
            import warnings

            warnings.warn(note, VideoTruncated, stacklevel=2)
        indices = sample_frame_indices(reader.frame_times, num_frames, segment, reader.duration_seconds, min_rate)
        require_motion(indices, str(reader.path), reader.num_frames, segment)
        decoded = _frames_in_two_halves(reader, indices, size) if decode_threads == 1 else None
        frames, indices = decoded if decoded is not None else reader.decode_frames(indices, size)
        require_motion(indices, str(reader.path), reader.num_frames, segment, decoded=True)
        times = reader.frame_times
        return SampledClip(
            frames=frames,
            pts_seconds=times[indices] - times[0],
            frame_indices=indices,
            num_source_frames=reader.num_frames,
            duration_seconds=reader.duration_seconds,
            fps=reader.fps,
            source=str(reader.path),
            content_hash=hash_file(reader.path),
        )


SPLIT_FROM_GOPS = 4  # a single-threaded read whose sampled frames span this many keyframe intervals is split


def _frames_in_two_halves(reader: VideoReader, indices: np.ndarray,
                          size: tuple[int, int] | None) -> tuple[np.ndarray, np.ndarray] | None:
    """The sampled frames of a long clip decoded as two halves at once, the second by its own
    single-threaded reader starting at a keyframe: the same frames as one pass (the decoder restarts at
    a keyframe either way), about half the time when a core is free, almost no extra CPU (the second
    reader reuses the first one's packet scan). None when the frames span fewer than SPLIT_FROM_GOPS keyframe intervals or
    the file has no keyframe index (then one pass)."""
    keyframes = reader.keyframe_pts
    if len(keyframes) < SPLIT_FROM_GOPS + 1 or len(indices) < 4:
        return None
    targets = reader.packet_pts[np.asarray(indices)]
    gop = np.searchsorted(keyframes, targets, side="right")  # which keyframe interval each sampled frame is in
    if gop[-1] - gop[0] < SPLIT_FROM_GOPS:
        return None
    middle = (gop[0] + gop[-1]) // 2
    cut = int(np.searchsorted(gop, middle, side="right"))  # the halves share no keyframe interval
    if not 0 < cut < len(indices):
        return None
    from concurrent.futures import ThreadPoolExecutor

    def second_half() -> np.ndarray:
        with VideoReader(reader.path, threads=1, scanned=reader) as other:
            return other.decode_frames(indices[cut:], size)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="decode-half") as pool:
        later = pool.submit(second_half)
        head, used = reader.decode_frames(indices[:cut], size)
        tail, used_tail = later.result()
        return np.concatenate([head, tail]), np.concatenate([used, used_tail])


def resize_frames(frames: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """(N, H, W, 3) uint8 -> (N, height, width, 3) uint8 with antialiased bilinear resizing."""
    if size is None or frames.shape[1:3] == tuple(size):
        return frames
    import torch
    import torch.nn.functional as functional

    frames = np.ascontiguousarray(frames) if frames.flags.writeable else frames.copy()
    tensor = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
    resized = functional.interpolate(tensor, size=tuple(size), mode="bilinear", antialias=True, align_corners=False)
    return resized.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def read_image_folder(
    folder: str | os.PathLike[str],
    num_frames: int,
    size: tuple[int, int] | None = None,
    segment: tuple[float, float] | None = None,
    fps: float | None = None,
    min_rate: float | None = None,
) -> SampledClip:
    """Sample frames from a folder of images (one frame per file, sorted by name).

    Times are ``index / fps`` when ``fps`` is given, else the frame index itself (then a segment is
    in frames, and ``min_rate``, in samples per second, does not apply).
    """
    from PIL import Image, UnidentifiedImageError

    folder = Path(folder)
    files = sorted(path for path in folder.iterdir() if path.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise VideoError(f"{folder}: folder holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    times = np.arange(len(files), dtype=np.float64) / (fps or 1.0)
    indices = sample_frame_indices(times, num_frames, segment, len(files) / (fps or 1.0), min_rate if fps else None)
    require_motion(indices, str(folder), len(files), segment)
    images: dict[int, np.ndarray] = {}
    digest = hashlib.blake2b(digest_size=16)
    for index in sorted(set(indices.tolist())):
        try:
            with Image.open(files[index]) as image:
                images[index] = np.asarray(image.convert("RGB"))
        except (UnidentifiedImageError, OSError) as error:
            raise VideoError(f"{files[index]}: not a readable image ({describe_error(error)})") from None
    shapes = {image.shape for image in images.values()}
    if size is None and len(shapes) > 1:
        raise VideoError(f"{folder}: images differ in size {sorted(shapes)}; pass a size to resize them")
    for path in files:
        digest.update(path.name.encode())
        digest.update(hash_file(path).encode())
    frames = np.stack([resize_frames(images[index][None], size)[0] for index in indices.tolist()])
    return SampledClip(
        frames=frames,
        pts_seconds=times[indices],
        frame_indices=indices,
        num_source_frames=len(files),
        duration_seconds=len(files) / (fps or 1.0),
        fps=fps,
        source=str(folder),
        content_hash=digest.hexdigest(),
    )


def read_array(
    array: np.ndarray,
    num_frames: int,
    size: tuple[int, int] | None = None,
    segment: tuple[float, float] | None = None,
    fps: float | None = None,
    min_rate: float | None = None,
) -> SampledClip:
    """Sample frames from an in-memory clip (T, H, W, 3): uint8, or float in [0, 1]. Without
    ``fps`` times are frame indices and ``min_rate`` does not apply."""
    array = np.asarray(array)
    if array.ndim != 4 or array.shape[-1] != 3:
        raise VideoError(f"<array>: expected shape (T, H, W, 3), got {array.shape}")
    if array.dtype != np.uint8:
        if not np.issubdtype(array.dtype, np.floating):
            raise VideoError(f"<array>: expected uint8 or float in [0, 1], got dtype {array.dtype}")
        array = (np.clip(array, 0.0, 1.0) * 255.0).round().astype(np.uint8)
    times = np.arange(len(array), dtype=np.float64) / (fps or 1.0)
    indices = sample_frame_indices(times, num_frames, segment, len(array) / (fps or 1.0), min_rate if fps else None)
    require_motion(indices, "<array>", len(array), segment)
    return SampledClip(
        frames=resize_frames(array[indices], size),
        pts_seconds=times[indices],
        frame_indices=indices,
        num_source_frames=len(array),
        duration_seconds=len(array) / (fps or 1.0),
        fps=fps,
        source="<array>",
        content_hash=hashlib.blake2b(np.ascontiguousarray(array).tobytes(), digest_size=16).hexdigest(),
    )


def read_clip(
    source: str | os.PathLike[str] | np.ndarray,
    num_frames: int,
    size: tuple[int, int] | None = None,
    segment: tuple[float, float] | None = None,
    decode_threads: int = 0,
    min_rate: float | None = None,
) -> SampledClip:
    """Sample ``num_frames`` frames from a video file, an image folder or an array (T, H, W, 3).

    ``decode_threads``: the video decoder's threads (0: FFmpeg's choice; see ``VideoReader``);
    ``min_rate``: at least this many samples per second (``sample.py``; files only)."""
    if isinstance(source, np.ndarray) or hasattr(source, "__array__") and not isinstance(source, (str, os.PathLike)):
        return read_array(np.asarray(source), num_frames, size, segment)
    path = Path(source)
    if path.is_dir():
        return read_image_folder(path, num_frames, size, segment)
    return read_video(path, num_frames, size, segment, decode_threads, min_rate)
