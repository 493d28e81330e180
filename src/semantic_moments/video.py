"""Opening clips and sampling T frames from them. No model code.

A source is a video file (anything FFmpeg reads, through PyAV), a folder of images (one frame per
file, in name order) or an in-memory array (T, H, W, 3). `read_clip` samples ``num_frames`` frames
uniformly over the clip (or a ``[start, end]`` segment in seconds) and returns them resized to the
backbone's input size.

Sampling rule (the same for every source): the segment is cut into T equal intervals and the frame
*displayed* at the centre of each interval is taken, i.e. the last frame whose timestamp is at or
before t_i = start + (i + 0.5) (end - start) / T. This is uniform in time, so variable-frame-rate
clips are sampled correctly; a clip with fewer than T frames repeats frames (never returns fewer
than T). A clip with fewer than two distinct frames in the segment is an error: it has no motion.

Frame timestamps come from demuxing the packets, never from the container's frame count, and a
frame that fails to decode is not counted: if a sampled frame cannot be decoded (a truncated or
corrupt file), the clip is decoded once more from the start and sampled over the frames that really
decode.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

from .errors import ConfigError, VideoError

T = TypeVar("T")
R = TypeVar("R")

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
MAX_FRAME_PIXELS = 8192 * 8192  # larger frames are refused instead of exhausting memory


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


def sample_frame_indices(
    frame_times: np.ndarray,
    num_frames: int,
    segment: tuple[float, float] | None = None,
    duration: float | None = None,
) -> np.ndarray:
    """Indices (num_frames,) into ``frame_times`` (sorted, seconds) under the module's sampling rule.

    ``segment`` is ``(start, end)`` in seconds; ``duration`` is the clip's end time (defaults to
    one frame interval past the last frame). Raises VideoError when the segment holds no frame.
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
    centres = start + (np.arange(num_frames) + 0.5) * (end - start) / num_frames
    indices = np.searchsorted(frame_times, centres, side="right") - 1
    lowest = int(np.searchsorted(frame_times, start, side="right") - 1)
    return np.clip(indices, max(lowest, 0), len(frame_times) - 1).astype(np.int64)


def hash_file(path: str | os.PathLike[str]) -> str:
    """BLAKE2b-128 hex digest of a file's bytes.

    Remembered per version of the file (path, size, mtime, ctime, inode: any write changes ctime),
    so a file looked at twice in one run (an index build compares it, then embeds it) is read once.
    """
    stat = os.stat(path)
    return hash_file_version(os.path.abspath(path), stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino)


@functools.lru_cache(maxsize=4096)
def hash_file_version(path: str, size: int, mtime_ns: int, ctime_ns: int, inode: int) -> str:
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def require_motion(indices: np.ndarray, source: str, num_available: int, segment=None) -> None:
    """Raise VideoError unless the sample holds 2 distinct frames; the message counts the frames
    of the sampled range (the segment's, where there is one), not the whole clip's."""
    distinct = len(np.unique(indices))
    if distinct < 2:
        where = (f"the segment {segment[0]:g}-{segment[1]:g} s holds {distinct}" if segment
                 else f"only {num_available}")
        raise VideoError(f"{source}: {where} decodable frame(s); motion needs at least 2 distinct frames")


class VideoReader:
    """One video file opened with PyAV; frames handed out by index, like decord/torchcodec.

    On open, the video packets are demuxed (not decoded) to learn every frame's timestamp and the
    keyframes, so sampling can seek straight to the frames it needs. Use as a context manager.
    Raises VideoError naming the file for anything unreadable.

    ``threads`` is the decoder's own thread count: 0 lets FFmpeg choose (frame and slice threads,
    one per core: the lowest latency for one file), 1 decodes on the calling thread only (the least
    CPU in total, about 10-15% less for H.264: the choice when several files decode at once).
    ``scanned``: another open reader of the same file, whose packet scan this one reuses.
    """

    def __init__(self, path: str | os.PathLike[str], threads: int = 0, scanned: VideoReader | None = None) -> None:
        import av  # local: importing the package must stay light

        if threads < 0:
            raise ConfigError(f"decoder threads must be 0 (automatic) or more, got {threads}")
        self.path = Path(path)
        if not self.path.exists():
            raise VideoError(f"{self.path}: no such file")
        if not self.path.is_file():
            raise VideoError(f"{self.path}: not a file")
        if self.path.stat().st_size == 0:
            raise VideoError(f"{self.path}: empty file (0 bytes)")
        try:
            self._container = av.open(str(self.path), metadata_errors="ignore")
        except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as error:
            raise VideoError(f"{self.path}: not a readable video ({_describe(error)})") from None
        if not self._container.streams.video:
            kinds = sorted({stream.type for stream in self._container.streams}) or ["no streams"]
            self._container.close()
            raise VideoError(f"{self.path}: no video stream (contains {', '.join(kinds)})")
        self._stream = self._container.streams.video[0]
        width, height = self._stream.codec_context.width, self._stream.codec_context.height
        self.frame_size = (int(height), int(width))  # as stored, before rotation metadata
        if width * height > MAX_FRAME_PIXELS:
            self._container.close()
            raise VideoError(f"{self.path}: frame size {width}x{height} is larger than supported")
        self._stream.thread_type = "NONE" if threads == 1 else "AUTO"
        self._stream.codec_context.thread_count = threads
        self._time_base = float(self._stream.time_base) if self._stream.time_base else None
        self._seek_margin = 0  # keyframes to seek back beyond the one wanted; grows if seeks land late
        if scanned is not None:  # a second reader of the same file: its packets are known already
            self._pts, self._keyframes, self._frame_times = scanned._pts, scanned._keyframes, scanned._frame_times
            self._seek_margin = scanned._seek_margin
        else:
            self._scan_packets()

    def _scan_packets(self) -> None:
        timestamps: list[int] = []
        keyframes: list[int] = []
        try:
            for packet in self._container.demux(self._stream):
                if packet.size == 0:
                    continue
                stamp = packet.pts if packet.pts is not None else packet.dts
                if stamp is None:
                    timestamps = []
                    break
                timestamps.append(stamp)
                if packet.is_keyframe:
                    keyframes.append(stamp)
        except Exception:  # noqa: BLE001 - a damaged tail: keep what demuxed, decoding decides
            pass
        self._pts = np.array(sorted(set(timestamps)), dtype=np.int64)
        self._keyframes = np.array(sorted(set(keyframes)), dtype=np.int64)
        self._frame_times: np.ndarray | None = None
        if len(self._pts) and self._time_base is not None and len(self._keyframes):
            self._frame_times = self._pts * self._time_base
        else:  # no usable timestamps (raw streams, some AVIs): count frames by decoding
            self._decode_all_timestamps()

    def _decode_all_timestamps(self) -> None:
        times = [time for time, _ in self._iter_decoded()]
        self._pts = np.arange(len(times), dtype=np.int64)
        self._keyframes = np.zeros(0, dtype=np.int64)
        self._frame_times = np.array(times, dtype=np.float64)
        if len(self._frame_times) > 1 and np.any(np.diff(self._frame_times) <= 0):
            self._frame_times = np.arange(len(times), dtype=np.float64) / (self.fps or 1.0)

    @property
    def num_frames(self) -> int:
        """Frames found by demuxing (or decoding, where packets carry no timestamps)."""
        return len(self._pts)

    @property
    def frame_times(self) -> np.ndarray:
        """(num_frames,) float64 presentation times, seconds, sorted."""
        assert self._frame_times is not None
        return self._frame_times

    @property
    def fps(self) -> float | None:
        rate = self._stream.average_rate or self._stream.guessed_rate
        return float(rate) if rate else None

    @property
    def duration_seconds(self) -> float:
        times = self.frame_times
        if len(times) == 0:
            return 0.0
        step = 1.0 / self.fps if self.fps else (float(np.median(np.diff(times))) if len(times) > 1 else 0.0)
        return float(times[-1] - times[0]) + step

    def _iter_decoded(self, seek_pts: int | None = None, keep: set[int] | None = None):
        """Yield (time_seconds, frame) for every frame that decodes, from ``seek_pts`` or the start.

        With ``keep`` (packet timestamps of the wanted frames), frames that no other frame refers to
        are skipped by the decoder unless wanted: reference frames are always decoded, so the wanted
        frames come out exactly as in a full decode, at a fraction of the work.
        """
        import av

        if seek_pts is None:  # from the very start: a fresh demuxer, no timestamp seek to go wrong
            self._reopen()
        else:
            try:
                self._container.seek(int(seek_pts), stream=self._stream, backward=True, any_frame=False)
            except av.error.FFmpegError:
                pass  # unseekable input: demuxing simply continues from where it is
        context = self._stream.codec_context
        try:
            for packet in self._container.demux(self._stream):
                if keep is not None:
                    stamp = packet.pts if packet.pts is not None else packet.dts
                    context.skip_frame = "DEFAULT" if stamp in keep else "NONREF"
                try:
                    decoded = packet.decode()
                except av.error.FFmpegError:
                    continue  # a corrupt packet: skip it, its frame is not counted
                for frame in decoded:
                    yield (float(frame.time) if frame.time is not None else float("nan")), frame
        except av.error.FFmpegError:
            return  # a truncated tail ends the stream; frames already yielded are kept
        finally:
            context.skip_frame = "DEFAULT"

    def get_frames_at(self, indices: Sequence[int], size: tuple[int, int] | None = None) -> np.ndarray:
        """Decode frames by index into ``frame_times``; (len(indices), H, W, 3) uint8 RGB.

        ``size`` is (height, width) of the output, applied after rotation metadata is honoured.
        Frames are decoded in order; the decoder seeks to the keyframe before a wanted frame when
        that skips frames. Raises VideoError if a wanted frame does not decode.
        """
        wanted = sorted(set(int(index) for index in indices))
        if wanted and (wanted[0] < 0 or wanted[-1] >= self.num_frames):
            raise VideoError(f"{self.path}: frame index out of range 0..{self.num_frames - 1}")
        if len(self._keyframes) == 0:  # no timestamps: positions are decode order
            decoded = self._decode_by_position(wanted, size)
        else:
            decoded = self._decode_by_pts(wanted, size)
        missing = [index for index in wanted if index not in decoded]
        if missing:
            raise VideoError(f"{self.path}: frame {missing[0]} (of {self.num_frames}) failed to decode")
        return np.stack([decoded[int(index)] for index in indices])

    def iter_frames_at(self, indices: Sequence[int], size: tuple[int, int] | None = None,
                       chunk: int = 64) -> Iterator[np.ndarray]:
        """Decode frames by index, in one forward pass, handing them out ``chunk`` at a time:
        (<= chunk, H, W, 3) uint8 arrays that together are ``get_frames_at(indices, size)``.
        ``indices`` must be sorted (repeats allowed). Memory holds one chunk, whatever the video's
        length. Raises VideoError if a wanted frame does not decode."""
        wanted = [int(index) for index in indices]
        if any(later < earlier for earlier, later in zip(wanted, wanted[1:])):
            raise ConfigError("iter_frames_at needs sorted frame indices")
        if wanted and (wanted[0] < 0 or wanted[-1] >= self.num_frames):
            raise VideoError(f"{self.path}: frame index out of range 0..{self.num_frames - 1}")
        distinct = sorted(set(wanted))
        decoded = self._iter_by_position(distinct, size) if len(self._keyframes) == 0 else self._iter_by_pts(distinct, size)
        out: list[np.ndarray] = []
        position = 0
        for index, image in decoded:
            if position < len(wanted) and wanted[position] < index:
                raise VideoError(f"{self.path}: frame {wanted[position]} (of {self.num_frames}) failed to decode")
            while position < len(wanted) and wanted[position] == index:
                out.append(image)
                position += 1
                if len(out) == chunk:
                    yield np.stack(out)
                    out = []
        if position < len(wanted):
            raise VideoError(f"{self.path}: frame {wanted[position]} (of {self.num_frames}) failed to decode")
        if out:
            yield np.stack(out)

    def _decode_by_position(self, wanted: list[int], size: tuple[int, int] | None) -> dict[int, np.ndarray]:
        return dict(self._iter_by_position(wanted, size))

    def _iter_by_position(self, wanted: list[int], size: tuple[int, int] | None) -> Iterator[tuple[int, np.ndarray]]:
        targets = set(wanted)
        for position, (_, frame) in enumerate(self._iter_decoded()):
            if position in targets:
                yield position, self._to_rgb(frame, size)
            if position >= wanted[-1]:
                break

    def _decode_by_pts(self, wanted: list[int], size: tuple[int, int] | None) -> dict[int, np.ndarray]:
        return dict(self._iter_by_pts(wanted, size))

    def _iter_by_pts(self, wanted: list[int], size: tuple[int, int] | None) -> Iterator[tuple[int, np.ndarray]]:
        """(index, frame) of the wanted frames (sorted, distinct) that decode, in order."""
        # Frames come out of the decoder in presentation order, so one forward pass per seek serves
        # every wanted frame up to the next keyframe worth seeking to.
        targets = [int(self._pts[index]) for index in wanted]
        keep = set(targets)
        position = 0
        while position < len(targets):
            seek_pts = self._keyframe_before(targets[position], self._seek_margin)
            if self._seek_margin and seek_pts == self._keyframes[0]:
                seek_pts = None  # even the first keyframe was overshot: from the start
            first = True
            for _, frame in self._iter_decoded(seek_pts=seek_pts, keep=keep):
                pts = frame.pts if frame.pts is not None else frame.dts
                if pts is None:
                    continue
                if first and pts > targets[position] and seek_pts is not None:
                    # Timestamp seeking in some containers (MPEG-TS, whose clock starts at an
                    # offset) lands a GOP late: from now on this file seeks from earlier keyframes
                    # (or decodes from the start).
                    self._seek_margin = self._seek_margin * 2 + 1
                    break
                first = False
                while position < len(targets) and targets[position] < pts:
                    position += 1  # a wanted frame that did not decode: reported by the caller
                if position < len(targets) and targets[position] == pts:
                    yield wanted[position], self._to_rgb(frame, size)
                    position += 1
                if position >= len(targets):
                    break
                if self._keyframe_before(targets[position], self._seek_margin) > pts:
                    break  # cheaper to seek than to decode the gap
            else:
                break  # the stream ended before the remaining wanted frames

    def _reopen(self) -> None:
        """Open the file again, positioned at its start (decoder settings kept)."""
        import av

        threads, thread_type = self._stream.codec_context.thread_count, self._stream.thread_type
        self._container.close()
        self._container = av.open(str(self.path), metadata_errors="ignore")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = thread_type
        self._stream.codec_context.thread_count = threads

    def _keyframe_before(self, pts: int, step_back: int = 0) -> int:
        """The last keyframe at or before ``pts``, or ``step_back`` keyframes before that one."""
        index = int(np.searchsorted(self._keyframes, pts, side="right")) - 1 - step_back
        return int(self._keyframes[max(index, 0)])

    def _to_rgb(self, frame, size: tuple[int, int] | None) -> np.ndarray:
        if frame.width * frame.height > MAX_FRAME_PIXELS:
            raise VideoError(f"{self.path}: frame size {frame.width}x{frame.height} is larger than supported")
        quarter_turns = int(round(getattr(frame, "rotation", 0) or 0) / 90) % 4
        if size is None:
            image = frame.to_ndarray(format="rgb24")
        else:
            height, width = size if quarter_turns % 2 == 0 else (size[1], size[0])
            image = frame.to_ndarray(format="rgb24", width=width, height=height, interpolation="AREA")
        # FFmpeg's display matrix angle is counter-clockwise; rot90 with k > 0 turns counter-clockwise.
        return np.ascontiguousarray(np.rot90(image, k=quarter_turns)) if quarter_turns else image

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _describe(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.split(": '")[0] if ": '" in text else text


def read_video(
    path: str | os.PathLike[str],
    num_frames: int,
    size: tuple[int, int] | None = None,
    segment: tuple[float, float] | None = None,
    decode_threads: int = 0,
) -> SampledClip:
    """Sample ``num_frames`` frames from a video file (see the module docstring for the rule);
    ``decode_threads`` as ``VideoReader``'s ``threads``."""
    with VideoReader(path, threads=decode_threads) as reader:
        if reader.num_frames == 0:
            raise VideoError(f"{reader.path}: no decodable video frames")
        indices = sample_frame_indices(reader.frame_times, num_frames, segment, reader.duration_seconds)
        require_motion(indices, str(reader.path), reader.num_frames, segment)
        try:
            frames = _frames_in_two_halves(reader, indices, size) if decode_threads == 1 else None
            if frames is None:
                frames = reader.get_frames_at(indices, size)
            times = reader.frame_times
        except VideoError:
            # Some frames the packets promised do not decode: count what really decodes, resample.
            reader._decode_all_timestamps()
            if reader.num_frames < 2:
                raise VideoError(
                    f"{reader.path}: only {reader.num_frames} decodable frame(s); file is corrupt or truncated"
                ) from None
            indices = sample_frame_indices(reader.frame_times, num_frames, segment, reader.duration_seconds)
            require_motion(indices, str(reader.path), reader.num_frames, segment)
            frames = reader.get_frames_at(indices, size)
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


def _frames_in_two_halves(reader: VideoReader, indices: np.ndarray, size: tuple[int, int] | None) -> np.ndarray | None:
    """The sampled frames of a long clip decoded as two halves at once, the second by its own
    single-threaded reader starting at a keyframe: the same frames as one pass (the decoder restarts at
    a keyframe either way), about half the time when a core is free, almost no extra CPU (the second
    reader reuses the first one's packet scan). None when the frames span fewer than SPLIT_FROM_GOPS keyframe intervals or
    the file has no keyframe index (then one pass)."""
    keyframes = reader._keyframes
    if len(keyframes) < SPLIT_FROM_GOPS + 1 or len(indices) < 4:
        return None
    targets = reader._pts[np.asarray(indices)]
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
            return other.get_frames_at(indices[cut:], size)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="decode-half") as pool:
        later = pool.submit(second_half)
        head = reader.get_frames_at(indices[:cut], size)
        return np.concatenate([head, later.result()])


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
) -> SampledClip:
    """Sample frames from a folder of images (one frame per file, sorted by name).

    Times are ``index / fps`` when ``fps`` is given, else the frame index itself (then a segment is
    in frames).
    """
    from PIL import Image, UnidentifiedImageError

    folder = Path(folder)
    files = sorted(path for path in folder.iterdir() if path.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise VideoError(f"{folder}: folder holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    times = np.arange(len(files), dtype=np.float64) / (fps or 1.0)
    indices = sample_frame_indices(times, num_frames, segment, len(files) / (fps or 1.0))
    require_motion(indices, str(folder), len(files), segment)
    images: dict[int, np.ndarray] = {}
    digest = hashlib.blake2b(digest_size=16)
    for index in sorted(set(indices.tolist())):
        try:
            with Image.open(files[index]) as image:
                images[index] = np.asarray(image.convert("RGB"))
        except (UnidentifiedImageError, OSError) as error:
            raise VideoError(f"{files[index]}: not a readable image ({_describe(error)})") from None
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
) -> SampledClip:
    """Sample frames from an in-memory clip (T, H, W, 3): uint8, or float in [0, 1]."""
    array = np.asarray(array)
    if array.ndim != 4 or array.shape[-1] != 3:
        raise VideoError(f"<array>: expected shape (T, H, W, 3), got {array.shape}")
    if array.dtype != np.uint8:
        if not np.issubdtype(array.dtype, np.floating):
            raise VideoError(f"<array>: expected uint8 or float in [0, 1], got dtype {array.dtype}")
        array = (np.clip(array, 0.0, 1.0) * 255.0).round().astype(np.uint8)
    times = np.arange(len(array), dtype=np.float64) / (fps or 1.0)
    indices = sample_frame_indices(times, num_frames, segment, len(array) / (fps or 1.0))
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
) -> SampledClip:
    """Sample ``num_frames`` frames from a video file, an image folder or an array (T, H, W, 3).

    ``decode_threads``: the video decoder's threads (0: FFmpeg's choice; see ``VideoReader``)."""
    if isinstance(source, np.ndarray) or hasattr(source, "__array__") and not isinstance(source, (str, os.PathLike)):
        return read_array(np.asarray(source), num_frames, size, segment)
    path = Path(source)
    if path.is_dir():
        return read_image_folder(path, num_frames, size, segment)
    return read_video(path, num_frames, size, segment, decode_threads)


def read_ahead(sources: Sequence[T], read: Callable[[T], R], workers: int,
               ahead: int | None = None) -> Iterator[tuple[T, R | Exception]]:
    """Yield (source, read(source)) in input order, or (source, the exception it raised), reading in
    ``workers`` threads and keeping ``ahead`` reads (default: ``workers``) in flight beyond the one
    handed out, so decoding goes on while the caller works on the current clip."""
    ahead = workers if ahead is None else ahead
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="decode") as pool:
        pending: deque[tuple[T, Future[R]]] = deque()
        position = 0
        while position < len(sources) or pending:
            while position < len(sources) and len(pending) <= ahead:
                pending.append((sources[position], pool.submit(read, sources[position])))
                position += 1
            source, future = pending.popleft()
            try:
                result: R | Exception = future.result()
            except Exception as error:  # noqa: BLE001 - handed to the caller, which reports it
                result = error
            yield source, result


def write_video(path: str | os.PathLike[str], frames: np.ndarray, fps: float = 16.0, crf: int = 18) -> Path:
    """Encode (T, H, W, 3) uint8 frames as H.264 (yuv420p; odd sizes are padded to even), atomically."""
    import tempfile
    from fractions import Fraction

    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = np.asarray(frames, dtype=np.uint8)
    pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
    if pad_h or pad_w:
        frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(handle)
    try:
        with av.open(temporary, "w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
            stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
            stream.options = {"crf": str(crf), "preset": "veryfast"}
            for frame in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
