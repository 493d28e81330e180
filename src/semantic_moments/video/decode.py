"""Decoding video files with PyAV: ``VideoReader`` hands out frames by index, like decord/torchcodec,
decoding only what the wanted frames need; ``write_video`` encodes frames (tests, benchmarks).

Frame timestamps come from demuxing the packets, never from the container's frame count.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from ..errors import ConfigError, VideoError

MAX_FRAME_PIXELS = 8192 * 8192  # larger frames are refused instead of exhausting memory
PACKED_PLACEHOLDER_BYTES = 19  # FFmpeg's MAX_NVOP_SIZE: MPEG-4 packets this small stand for a packed B-frame
DECODE_BUDGET = 3  # full decodes one read may cost in seeking before it decodes in one pass


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
            raise VideoError(f"{self.path}: not a readable video ({describe_error(error)})") from None
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
        self.frames_decoded = 0  # pictures the decoder has produced since open: what the reads cost
        self._skip_unreferenced = True  # off once a wanted frame fails to come out while skipping
        if scanned is not None:  # a second reader of the same file: its packets are known already
            self._pts, self._keyframes, self._frame_times = scanned._pts, scanned._keyframes, scanned._frame_times
            self._seek_margin = scanned._seek_margin
            self._skip_unreferenced = scanned._skip_unreferenced
        else:
            self._scan_packets()

    def _scan_packets(self) -> None:
        timestamps: list[int] = []
        keyframes: list[int] = []
        placeholders = 0
        try:
            for packet in self._container.demux(self._stream):
                if packet.size == 0:
                    continue
                placeholders += packet.size <= PACKED_PLACEHOLDER_BYTES and not packet.is_keyframe
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
        packed = placeholders and self._stream.codec_context.name == "mpeg4"
        if len(self._pts) and self._time_base is not None and len(self._keyframes) and not packed:
            self._frame_times = self._pts * self._time_base
        else:
            # No usable timestamps (raw streams, some AVIs), or MPEG-4 with packed B-frames (XviD/DivX in
            # AVI: a B-frame rides in the packet before a placeholder, and the demuxer's timestamps
            # come out swapped): the decoder's output order is the display order, so count frames by
            # decoding and address them by position.
            self._decode_all_timestamps()

    def _decode_all_timestamps(self) -> None:
        times = [time for time, _ in self._iter_decoded()]
        self._pts = np.arange(len(times), dtype=np.int64)
        self._keyframes = np.zeros(0, dtype=np.int64)
        self._frame_times = np.array(times, dtype=np.float64)
        if len(self._frame_times) > 1 and np.any(np.diff(self._frame_times) <= 0):
            self._frame_times = np.arange(len(times), dtype=np.float64) / (self.fps or 1.0)

    @property
    def packet_pts(self) -> np.ndarray:
        """(num_frames,) int64 timestamps of the frames, in the stream's time base, sorted (or
        positions in decode order where packets carry none)."""
        return self._pts

    @property
    def keyframe_pts(self) -> np.ndarray:
        """Timestamps of the keyframes, sorted; empty where packets carry no timestamps."""
        return self._keyframes

    def recount_frames(self) -> None:
        """Count the frames by decoding them all (the frames that really decode), instead of
        trusting the packet scan; frames are then addressed by position."""
        self._decode_all_timestamps()

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
    def declared_seconds(self) -> float | None:
        """The length the container states (stream, else container duration), or None: not trusted
        for sampling, only to tell a truncated file (``truncation``)."""
        if self._stream.duration and self._time_base:
            return float(self._stream.duration * self._time_base)
        if self._container.duration:
            return float(self._container.duration) / 1_000_000
        return None

    def truncation(self) -> str | None:
        """A one-line note where the file holds much less video than its container states (a copy or
        download cut short), else None."""
        declared, found = self.declared_seconds, self.duration_seconds
        if declared is None or declared <= found * 1.1 + 1.0:
            return None
        return (f"{self.path}: truncated? the container says {declared:.1f} s, only {found:.1f} s of video can be "
                "read (embedded as it is)")

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
            self._seek(int(seek_pts))
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
                self.frames_decoded += len(decoded)
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
        that skips frames. A wanted frame that does not decode is replaced by the frame a player
        shows at its time (``decode_frames``). Raises VideoError if no wanted frame decodes.
        """
        return self.decode_frames(indices, size)[0]

    def decode_frames(self, indices: Sequence[int], size: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(frames (len(indices), H, W, 3) uint8, used (len(indices),) int64): ``get_frames_at``,
        and the index of the frame each one really is.

        A wanted frame whose packet gives no picture (the placeholder packets of packed B-frames, a
        damaged or truncated tail) is replaced by the frame displayed at its time: the nearest
        earlier frame that decodes (the next one before the first decoded frame), exactly what
        sampling over the frames that really decode would pick; ``used`` names it."""
        wanted = sorted(set(int(index) for index in indices))
        if wanted and (wanted[0] < 0 or wanted[-1] >= self.num_frames):
            raise VideoError(f"{self.path}: frame index out of range 0..{self.num_frames - 1}")
        decoded = {index: (used, image) for index, used, image in self._iter_wanted(wanted, size)}
        return (np.stack([decoded[int(index)][1] for index in indices]),
                np.array([decoded[int(index)][0] for index in indices], dtype=np.int64))

    def iter_frames_at(self, indices: Sequence[int], size: tuple[int, int] | None = None,
                       chunk: int = 64) -> Iterator[np.ndarray]:
        """Decode frames by index, in one forward pass, handing them out ``chunk`` at a time:
        (<= chunk, H, W, 3) uint8 arrays that together are ``get_frames_at(indices, size)``.
        ``indices`` must be sorted (repeats allowed). Memory holds one chunk, whatever the video's
        length. Raises VideoError if no wanted frame decodes."""
        wanted = [int(index) for index in indices]
        if any(later < earlier for earlier, later in zip(wanted, wanted[1:])):
            raise ConfigError("iter_frames_at needs sorted frame indices")
        if wanted and (wanted[0] < 0 or wanted[-1] >= self.num_frames):
            raise VideoError(f"{self.path}: frame index out of range 0..{self.num_frames - 1}")
        out: list[np.ndarray] = []
        position = 0
        for index, _, image in self._iter_wanted(sorted(set(wanted)), size):
            while position < len(wanted) and wanted[position] == index:
                out.append(image)
                position += 1
                if len(out) == chunk:
                    yield np.stack(out)
                    out = []
        if out:
            yield np.stack(out)

    def _iter_wanted(self, wanted: list[int], size: tuple[int, int] | None) -> Iterator[tuple[int, int, np.ndarray]]:
        """(wanted index, index of the frame used, RGB) for every wanted frame (sorted, distinct), in
        order; a frame that does not decode is replaced by the one displayed at its time."""
        if not wanted:
            return
        frames = self._iter_by_position(wanted) if len(self._keyframes) == 0 else self._iter_by_pts(wanted)
        pending: list[int] = []  # wanted before any frame decoded: shown as the first one that does
        last: tuple[int, np.ndarray] | None = None
        for index, used, frame in frames:
            if frame is None:  # did not decode
                if last is None:
                    pending.append(index)
                else:
                    yield index, last[0], last[1]
                continue
            image = self._to_rgb(frame, size)
            for early in pending:
                yield early, used, image
            pending = []
            last = (used, image)
            yield index, used, image
        if last is None:
            raise VideoError(f"{self.path}: none of the {len(wanted)} wanted frame(s) decodes; the file is corrupt "
                             "or truncated")

    def _iter_by_position(self, wanted: list[int]) -> Iterator[tuple[int, int, object | None]]:
        """(wanted index, used index, frame or None) by decode position (files without timestamps)."""
        targets = set(wanted)
        position = -1
        for position, (_, frame) in enumerate(self._iter_decoded()):
            if position in targets:
                yield position, position, frame
            if position >= wanted[-1]:
                return
        for index in wanted:
            if index > position:
                yield index, index, None

    def _iter_by_pts(self, wanted: list[int]) -> Iterator[tuple[int, int, object | None]]:
        """(wanted index, index of the frame used, frame or None when it did not decode) of the
        wanted frames (sorted, distinct), in order.

        One forward pass per seek serves every wanted frame up to the next keyframe worth seeking
        to. Frames nothing refers to are skipped unless wanted; where a wanted frame then fails to
        come out (packed B-frames carry a picture in another frame's packet), the reader stops
        skipping for good and decodes that stretch again. Two guards keep any file finite: a seek
        that lands no later than an earlier seek to the same keyframe did is not repeated (decoding
        goes on forward instead), and a read that has decoded more than ``DECODE_BUDGET`` times the
        clip's frames stops seeking and finishes in one pass from the start, with a warning."""
        targets = [int(self._pts[index]) for index in wanted]
        position = 0
        previous: tuple[int, object] | None = None  # the latest frame out of the decoder: (index, frame)
        landed: dict[int, int] = {}  # keyframe sought -> timestamp of the first frame after the seek
        decoded, budget, seeking = 0, DECODE_BUDGET * self.num_frames + 8, True
        while position < len(targets):
            seek_pts = self._keyframe_before(targets[position], self._seek_margin) if seeking else None
            if self._seek_margin and seek_pts == self._keyframes[0]:
                seek_pts = None  # even the first keyframe was overshot: from the start
            first, redo = True, False
            keep = set(targets) if self._skip_unreferenced else None
            for frame in self._iter_stamped(seek_pts, keep):
                decoded += 1
                if seeking and decoded > budget:
                    warnings.warn(f"{self.path}: seeking cost more than {DECODE_BUDGET} full decodes; decoding the "
                                  "rest in one pass from the start", RuntimeWarning, stacklevel=2)
                    seeking = False
                    break
                pts = frame.pts if frame.pts is not None else frame.dts
                if first and seek_pts is not None:
                    if pts > targets[position]:
                        # Timestamp seeking in some containers (MPEG-TS, whose clock starts at an
                        # offset) lands a GOP late: from now on this file seeks from earlier keyframes
                        # (or decodes from the start).
                        self._seek_margin = self._seek_margin * 2 + 1
                        break
                    landed[seek_pts] = pts
                first = False
                if position < len(targets) and targets[position] < pts and keep is not None:
                    redo = True  # a wanted frame did not come out while skipping: that stretch again, whole
                    break
                while position < len(targets) and targets[position] < pts:
                    # a wanted frame that gave no picture: the one displayed at its time is the previous
                    yield wanted[position], previous[0] if previous else wanted[position], previous[1] if previous else None
                    position += 1
                previous = (int(np.searchsorted(self._pts, pts)), frame)
                if position < len(targets) and targets[position] == pts:
                    yield wanted[position], wanted[position], frame
                    position += 1
                if position >= len(targets):
                    break
                if seeking:
                    keyframe = self._keyframe_before(targets[position], self._seek_margin)
                    if keyframe > pts and landed.get(keyframe, keyframe) > pts:
                        break  # cheaper to seek than to decode the gap (and the seek gets past here)
            else:
                redo = keep is not None and position < len(targets)
                if not redo:  # the stream ended: the remaining wanted frames show the last frame that decoded
                    for index in wanted[position:]:
                        yield index, previous[0] if previous else index, previous[1] if previous else None
                    return
            if redo:
                self._skip_unreferenced = False
                landed.clear()  # the same keyframes are sought again, now decoding everything

    def _iter_stamped(self, seek_pts: int | None, keep: set[int] | None) -> Iterator[object]:
        """Decoded frames that carry a timestamp, in the decoder's (presentation) order."""
        for _, frame in self._iter_decoded(seek_pts=seek_pts, keep=keep):
            if frame.pts is not None or frame.dts is not None:
                yield frame

    def _seek(self, pts: int) -> None:
        """Position the demuxer at the keyframe at or before ``pts`` (where the container's index
        says it is: some land a keyframe early or late, which the reading loop copes with)."""
        import av

        try:
            self._container.seek(pts, stream=self._stream, backward=True, any_frame=False)
        except av.error.FFmpegError:
            pass  # unseekable input: demuxing simply continues from where it is

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


def describe_error(error: BaseException) -> str:
    """The cause of a decoding error in plain words: FFmpeg's message without its errno number and
    the file name it repeats ("Invalid data found when processing input")."""
    reason = getattr(error, "strerror", None)
    if isinstance(reason, str) and reason.strip():
        return reason.strip().splitlines()[0]
    text = str(error).strip() or type(error).__name__
    text = re.sub(r"^\[Errno -?\d+\]\s*", "", text.splitlines()[0])
    return text.split(": '")[0] if ": '" in text else text


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
