"""The pipeline: video -> T frames -> backbone tokens -> streaming moments -> Embedding."""

from __future__ import annotations

import contextlib
import os
import warnings
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch

from .accumulators import ClipStatistics, SlidingWindows
from .backbones import Backbone, create_backbone
from .embedding import Embedding, feature_settings
from .errors import ConfigError, SemanticMomentsError, first_line
from .memory import keep_large_buffers
from .moments import TemporalMoments, finalize_moments, patch_average
from .settings import FIELDS, Settings
from .video import samples_of
from .video import SampledClip, VideoReader, read_ahead, read_clip
from .windows import WindowPlan

Source = Union[str, "os.PathLike[str]", np.ndarray]


class SegmentClamped(UserWarning):
    """A segment asked for ends after its clip; the embedding's ``segment`` says what was embedded."""


@dataclass(frozen=True)
class EmbedResult:
    """One item of a batch: its embedding, or the error that made it fail (never both)."""

    source: str
    embedding: Embedding | None
    error: SemanticMomentsError | None


class SemanticMoments:
    """SemanticMoments video embeddings (Huberman et al., 2026), training-free.

    Example::

        model = SemanticMoments()                        # the "motion" preset: moments + flow + keypoints
        clip = model.embed("dog_jump.mp4")               # an Embedding
        similarity(clip, model.embed("cat_jump.mp4"))    # cosine, motion-weighted
        clip.vector(alpha=(1, 0, 0), flow_weight=0)      # appearance only, no re-embedding

    Args:
        backbone: a registry name (``semantic-moments backbones`` lists them) or a Backbone; None:
            the preset's.
        preset: named settings (``settings.py``): ``"motion"`` (the default: EfficientNet-Lite0
            ``blocks.7``, T = 16 at least 4 per second, moments plus token flow plus body and hand
            keypoints), ``"slow"`` (the same with T = 16 over the whole clip), ``"flow"`` (``motion``
            without keypoints) or ``"paper"`` (``blocks.10``, T = 32 over the whole clip, moments only).
        settings: a ``Settings`` instead of a preset (``Settings.preset("slow").replace(frames=32)``).
        overrides: any ``Settings`` field (``frames``, ``min_rate``, ``flow_weight``, ``orders``,
            ``alpha``, ``layer``, ``weights``, ...) overriding the preset's or the settings' value as
            ``Settings.resolve`` does; None keeps it. Other keywords go to the backbone's factory.
        device, dtype: where and how the backbone runs; chosen once, here.
        batch_size: frames per backbone forward pass.
        decode_workers: threads decoding upcoming clips while the backbone runs (batch embedding).
            None: 2 on the CPU (the backbone needs the cores), every core but one on a GPU (there
            decoding is the bottleneck).
        decode_threads: each video decoder's own threads. None: the cores shared out among the
            clips decoding at once, so many clips decode single-threaded (the least CPU in total)
            and a lone clip uses every core (the lowest latency).
    """

    def __init__(
        self,
        backbone: str | Backbone | None = None,
        *,
        preset: str | None = None,
        settings: Settings | None = None,
        device: str = "cpu",
        dtype: str = "float32",
        batch_size: int = 32,
        decode_workers: int | None = None,
        decode_threads: int | None = None,
        runtime: str | None = None,
        **overrides: Any,
    ) -> None:
        keep_large_buffers()  # once per process: batches reuse memory instead of faulting in new pages
        if settings is not None and preset is not None:
            raise ConfigError("give a preset or settings, not both (settings.replace(...) changes settings)")
        options = {"runtime": runtime} if runtime is not None else {}
        for name in [name for name in overrides if name not in FIELDS]:  # a backbone family's own option
            options[name] = overrides.pop(name)
        name = backbone.name if isinstance(backbone, Backbone) else backbone
        if isinstance(backbone, Backbone) and "layer" not in overrides:
            overrides["layer"] = backbone.info().get("layer")
        self.settings = Settings.resolve(settings if settings is not None else preset, backbone=name, **overrides)
        self.config = self.settings.config
        frames = self.settings.frames
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        if isinstance(backbone, Backbone):
            self.backbone = backbone
        else:
            chosen = self.settings
            self.backbone = create_backbone(chosen.backbone, weights=chosen.weights, pretrained=chosen.pretrained,
                                            layer=chosen.layer, device=device, dtype=dtype, **options)
        clip_length = self.backbone.clip_length
        if frames % clip_length:
            raise ConfigError(f"backbone {self.backbone.name} consumes clips of {clip_length} frames; "
                              f"frames must be a multiple of {clip_length}, got {frames}")
        if frames // self.backbone.frames_per_step < 2:
            raise ConfigError(f"frames={frames} gives fewer than 2 temporal steps on {self.backbone.name}")
        # Whole clips per forward pass for video backbones.
        self.batch_size = max(clip_length, batch_size // clip_length * clip_length)
        if decode_workers is not None and decode_workers < 1:
            raise ConfigError(f"decode_workers must be at least 1, got {decode_workers}")
        if decode_threads is not None and decode_threads < 1:
            raise ConfigError(f"decode_threads must be at least 1, got {decode_threads}")
        if decode_workers is None:
            decode_workers = max(2, available_cores() - 1) if self.backbone.device.type == "cuda" else 2
        self.decode_workers = int(decode_workers)
        self.decode_threads = decode_threads
        self._keypoint_sources: dict[str, Any] | None = None
        if self.config.keypoints:
            self.keypoint_sources()  # a missing MediaPipe or model file is said now, not per clip

    # -- one clip ---------------------------------------------------------------------------------

    def read(self, source: Source, segment: tuple[float, float] | None = None, *,
             decode_threads: int | None = None) -> SampledClip:
        """Sample T frames of ``source`` at the backbone's input size (no model work).

        ``decode_threads`` overrides the model's; by default a lone read uses every core."""
        threads = decode_threads or self.decode_threads or 0
        return read_clip(source, self.config.num_frames, self.backbone.preprocessing.image_size, segment, threads,
                         self.config.min_rate)

    def keypoint_sources(self) -> dict[str, Any]:
        """{name: source} of the settings' keypoint sources (``keypoints/sources.py``), made once."""
        if self._keypoint_sources is None:
            from .keypoints import create_keypoint_source

            self._keypoint_sources = {name: create_keypoint_source(name) for name in self.config.keypoints}
        return self._keypoint_sources

    def read_keypoint_frames(self, source: Source, segment: tuple[float, float] | None = None, *,
                             decode_threads: int | None = None) -> SampledClip | None:
        """The frames keypoints are found on: ``keypoint_frames`` over the whole clip (or segment), at
        the source's own size; None without keypoints."""
        if not self.config.keypoints:
            return None
        threads = decode_threads or self.decode_threads or 0
        return read_clip(source, self.config.keypoint_frames, None, segment, threads, None)

    def keypoint_moments(self, clip: SampledClip | None) -> dict[str, np.ndarray]:
        """{name: (D,) float32} moments of keypoints (``keypoints/kinematics.py``) of frames from
        ``read_keypoint_frames``; empty without keypoints."""
        if clip is None or not self.config.keypoints:
            return {}
        from .keypoints import detect, moments_of

        return moments_of(detect(self.keypoint_sources(), clip.frames), clip.pts_seconds)

    def _read_both(self, source: Source, segment: tuple[float, float] | None,
                   decode_threads: int | None) -> tuple[SampledClip, SampledClip | None]:
        """The backbone's frames and the keypoints' (None without keypoints)."""
        return (self.read(source, segment, decode_threads=decode_threads),
                self.read_keypoint_frames(source, segment, decode_threads=decode_threads))

    def _threads_per_decoder(self, clips: int) -> int:
        """``decode_threads``, or the cores shared among the clips that decode at once."""
        if self.decode_threads:
            return self.decode_threads
        return max(1, available_cores() // max(1, min(self.decode_workers, clips)))

    def _new_statistics(self, clip: SampledClip, max_order: int, candidates: bool = False) -> ClipStatistics:
        steps = len(clip.frames) // self.backbone.frames_per_step - 1
        return ClipStatistics(TemporalMoments(max_order), TemporalMoments(max_order), steps, self.config.flow_segments,
                              candidates)

    def _forward(self, frames: np.ndarray):
        """Backbone tokens of (N, H, W, 3) uint8 frames, N a multiple of the backbone's clip length."""
        return self.backbone.forward_tokens(self.backbone.preprocess(torch.from_numpy(frames)))

    def accumulate(self, clip: SampledClip, max_order: int = 4, candidates: bool = False) -> ClipStatistics:
        """Run the backbone over the clip once; streaming moments of both granularities and the
        token flow. Every convention, order subset, fusion and flow weight can be finalised from
        these without another pass. ``candidates``: also the token-flow descriptors the benchmark
        compares (``flow.candidate_maps``)."""
        statistics = self._new_statistics(clip, max_order, candidates)
        with torch.inference_mode():
            for start in range(0, len(clip.frames), self.batch_size):
                statistics.update(self._forward(clip.frames[start:start + self.batch_size]))
        return statistics

    def embed_clip(self, clip: SampledClip, segment: tuple[float, float] | None = None,
                   keypoint_clip: SampledClip | None = None) -> Embedding:
        """Embed frames that were already sampled (``read``; with keypoints, also
        ``read_keypoint_frames``: without them the keypoints are found on ``clip``'s frames)."""
        statistics = self.accumulate(clip, max_order=max(max(self.config.orders), 2))
        return self._embedding(clip, statistics, segment, keypoint_clip or clip)

    def _embedding(self, clip: SampledClip, statistics: ClipStatistics, segment: tuple[float, float] | None,
                   keypoint_clip: SampledClip | None = None,
                   keypoints: dict[str, np.ndarray] | None = None) -> Embedding:
        config = self.config
        accumulator = statistics.patch if config.granularity == "patch" else statistics.frame
        per_patch = finalize_moments(accumulator, config.orders, config.convention, config.standardized)
        moments = {order: value.float().cpu().numpy() for order, value in patch_average(per_patch).items()}
        motion_map = None
        flow: dict[int, np.ndarray] = {}
        if config.granularity == "patch":
            spread = accumulator.central_moment(2).sqrt().mean(dim=-1)
            motion_map = spread.reshape(statistics.grid).float().cpu().numpy()
            flow = {size: vector.float().numpy() for size, vector in statistics.flow_vectors(config.flow_grids).items()}
        if segment and clip.duration_seconds and segment[1] > clip.duration_seconds:
            # the part embedded ends where the clip does: recorded as such, and said
            warnings.warn(f"{clip.source}: the segment {segment[0]:g}-{segment[1]:g} s ends after the clip "
                          f"({clip.duration_seconds:.2f} s); embedded {segment[0]:g}-{clip.duration_seconds:.2f} s",
                          SegmentClamped, stacklevel=3)
            segment = (float(segment[0]), float(clip.duration_seconds))
        motion_level = statistics.motion_level()
        if motion_level < config.motion_floor:  # codec noise of a still clip: static, not motion
            moments = {order: value if order == 1 else np.zeros_like(value) for order, value in moments.items()}
            flow = {size: np.zeros_like(vector) for size, vector in flow.items()}
            motion_map = np.zeros_like(motion_map) if motion_map is not None else None
        return Embedding(
            moments=moments,
            config=config,
            backbone=self.backbone.info(),
            source=clip.source,
            content_hash=clip.content_hash,
            pts_seconds=clip.pts_seconds,
            frame_indices=clip.frame_indices,
            duration_seconds=clip.duration_seconds,
            fps=clip.fps,
            num_source_frames=clip.num_source_frames,
            segment=tuple(segment) if segment else None,
            motion_map=motion_map,
            flow=flow,
            motion_level=motion_level,
            keypoints=keypoints if keypoints is not None else self.keypoint_moments(keypoint_clip),
        )

    # -- the public verb --------------------------------------------------------------------------

    def embed(
        self,
        sources: Source | Sequence[Source],
        *,
        segment: tuple[float, float] | None = None,
        show_progress: bool = False,
    ) -> Embedding | list[Embedding]:
        """Embed one clip, or a list of clips (returns a list), raising on the first bad one.

        A source is a video file, a folder of images or an array (T, H, W, 3). ``segment`` is
        (start, end) seconds. Raises a SemanticMomentsError subclass naming the bad source; use
        ``iter_embed`` to skip bad items instead.
        """
        single = isinstance(sources, (str, os.PathLike)) or hasattr(sources, "__array__")  # arrays, tensors
        items = [np.asarray(sources) if hasattr(sources, "__array__") else sources] if single else list(sources)  # type: ignore[arg-type]
        results = []
        for result in self.iter_embed(items, segment=segment, show_progress=show_progress):
            if result.error is not None:
                raise result.error
            results.append(result.embedding)
        return results[0] if single else results  # type: ignore[return-value]

    def iter_embed(
        self,
        sources: Iterable[Source],
        *,
        segment: tuple[float, float] | None = None,
        show_progress: bool = False,
    ) -> Iterator[EmbedResult]:
        """Embed many clips in order, yielding an EmbedResult per source; bad items do not stop it.

        Upcoming clips are decoded in ``decode_workers`` threads while the backbone runs, and the
        frames of consecutive clips share backbone batches (``batch_size`` frames each), so short
        clips or small T still fill the batch. Results come in input order.
        """
        items = list(sources)
        progress = None
        if show_progress:
            from tqdm.auto import tqdm

            progress = tqdm(total=len(items), unit="clip", desc="embedding", dynamic_ncols=True)
        max_order = max(max(self.config.orders), 2)
        # clips decoding beyond the one handed out: one per worker, plus enough to fill a batch
        ahead = self.decode_workers + -(-self.batch_size // self.config.num_frames) - 1
        threads = self._threads_per_decoder(len(items))
        read = partial(self._read_both, segment=segment, decode_threads=threads)
        decoded = read_ahead(items, read, self.decode_workers, ahead=ahead)
        open_items: deque[_Work] = deque()  # decoded or failed, not yet yielded, in input order
        video_seconds = 0.0
        try:
            while True:
                while sum(work.remaining for work in open_items) < self.batch_size:
                    item = next(decoded, None)
                    if item is None:
                        break
                    open_items.append(self._start(_name(item[0]), item[1], max_order))
                if not open_items:
                    break
                if any(work.remaining for work in open_items):
                    self._run_batch(open_items)
                while open_items and open_items[0].remaining == 0:
                    result = self._finish(open_items.popleft(), segment)
                    if progress is not None:
                        if result.embedding is not None:
                            video_seconds += result.embedding.duration_seconds
                        # how fast video goes through: hours of video per hour of wall time (the ETA is tqdm's)
                        elapsed = progress.format_dict["elapsed"] or 1e-9
                        progress.set_postfix_str(f"{video_seconds / elapsed:.1f}x real time", refresh=False)
                        progress.update(1)
                        if progress.n == len(items):
                            progress.close()
                    yield result
        finally:
            decoded.close()  # also when the caller abandons the generator: the decode threads end
            if progress is not None:
                progress.close()

    def _start(self, name: str, read: tuple[SampledClip, SampledClip | None] | Exception, max_order: int) -> _Work:
        if isinstance(read, Exception):  # one bad clip must not end a batch
            return _Work(name, None, _as_error(name, read), None)
        clip, keypoint_clip = read
        return _Work(name, clip, None, self._new_statistics(clip, max_order), keypoint_clip=keypoint_clip)

    def _run_batch(self, open_items: deque[_Work]) -> None:
        """One backbone pass over the next ``batch_size`` frames, taken from the open items in order."""
        pieces, room = [], self.batch_size
        for work in open_items:
            if room == 0:
                break
            take = min(room, work.remaining)
            if take:
                pieces.append((work, work.consumed, work.consumed + take))
                room -= take
        try:
            with torch.inference_mode():
                output = self._forward(np.concatenate([work.clip.frames[a:b] for work, a, b in pieces]))
        except Exception as error:  # noqa: BLE001 - every clip of a failed batch is reported
            for work, _, _ in pieces:
                work.error, work.clip = _as_error(work.name, error), None
            return
        offset = 0
        for work, start, stop in pieces:
            count = stop - start
            work.statistics.update(output, offset, offset + count)
            work.consumed, offset = stop, offset + count

    def _finish(self, work: _Work, segment: tuple[float, float] | None) -> EmbedResult:
        if work.error is not None or work.clip is None:
            return EmbedResult(work.name, None, work.error)
        try:
            return EmbedResult(work.name, self._embedding(work.clip, work.statistics, segment, work.keypoint_clip), None)
        except Exception as error:  # noqa: BLE001
            return EmbedResult(work.name, None, _as_error(work.name, error))

    # -- long videos: one embedding per window ----------------------------------------------------

    def iter_windows(self, source: str | os.PathLike[str], windows: str | WindowPlan, *,
                     show_progress: bool = False) -> Iterator[Embedding]:
        """Embeddings of every window of a long video file, in order (``segment`` = the window's
        (start, end) seconds), then the whole video's embedding (``segment`` None) last.

        ``windows`` is a WindowPlan or ``"LEN[:STRIDE]"`` seconds (``windows.py``). The video is
        decoded once at T / LEN frames per second, each frame goes through the backbone once, and
        every window is an exact merge of per-stretch accumulators (``accumulators.SlidingWindows``),
        so a window's embedding equals embedding that segment as a clip. Memory is flat in the
        video's length. A video holding fewer than two windows (``WindowPlan.min_duration``) gives
        only its whole-video embedding, embedded as a clip. Raises a SemanticMomentsError naming the
        file for a bad video.
        """
        plan = WindowPlan.parse(windows, self.config.num_frames).require_rate(self.config.min_rate)
        if self.config.keypoints and self.config.keypoint_frames != self.config.num_frames:
            raise ConfigError(f"windows with keypoints need keypoint_frames = frames (a window's frames are both); "
                              f"got {self.config.keypoint_frames} and {self.config.num_frames}")
        if self.backbone.frames_per_step != 1:
            raise ConfigError(f"windows need an image backbone (one token map per frame); {self.backbone.name} "
                              f"consumes clips of {self.backbone.clip_length} frames")
        threads = self.decode_threads or 0
        size = self.backbone.preprocessing.image_size
        name = str(source)
        try:
            reader = VideoReader(source, threads=threads)  # its packet scan serves the duration and the samples
            if plan.require_count(reader.duration_seconds, name) < 2:  # count is 0 below the plan's min_duration
                reader.close()
                yield self.embed(source)  # type: ignore[misc]
                return
            native = None
            if self.config.keypoints:  # the same frames at the video's own size, for the keypoints
                native = samples_of(VideoReader(source, threads=threads, scanned=reader), plan.rate, None)
            video = samples_of(reader, plan.rate, size)
        except SemanticMomentsError:
            raise
        except Exception as error:  # noqa: BLE001
            raise _as_error(name, error) from None
        max_order = max(max(self.config.orders), 2)
        progress = None
        if show_progress:
            from tqdm.auto import tqdm

            progress = tqdm(total=round(video.samples.duration_seconds), unit="s", desc=f"windows of {Path(name).name}",
                            dynamic_ncols=True)
        with video, (native or contextlib.nullcontext()):
            total = len(video.frame_indices)
            sliding = SlidingWindows(plan.frames, plan.stride_frames, total, max_order, self.config.flow_segments)
            chunks = video.chunks_ahead(self.batch_size)  # a thread decodes the next batch meanwhile
            marks = _WindowLandmarks(self, native, total)
            try:
                for frames in chunks:
                    marks.advance(len(frames))
                    with torch.inference_mode():
                        output = self._forward(frames)
                        completed = sliding.update(output)
                    for first, statistics in completed:
                        window = video.clip(first, plan.frames)
                        yield self._embedding(window, statistics, plan.bounds(first),
                                              keypoints=marks.moments(first, plan.frames, window.pts_seconds))
                    if progress is not None:
                        progress.n = min(progress.total, round(sliding.frames / plan.rate))
                        progress.refresh()
                whole = self.read_keypoint_frames(source, decode_threads=threads)  # as embedding the video as a clip
                yield self._embedding(video.clip(0, total), sliding.whole(), None, keypoint_clip=whole)
            except SemanticMomentsError:
                raise
            except Exception as error:  # noqa: BLE001
                raise _as_error(name, error) from None
            finally:
                chunks.close()
                if progress is not None:
                    progress.close()

    def embed_windows(self, source: str | os.PathLike[str], windows: str | WindowPlan = "4:1", *,
                      show_progress: bool = False) -> tuple[Embedding, list[Embedding]]:
        """(whole-video embedding, [window embeddings]) of a long video (``iter_windows``)."""
        embeddings = list(self.iter_windows(source, windows, show_progress=show_progress))
        return embeddings[-1], embeddings[:-1]

    def options(self) -> dict[str, Any]:
        """Keyword arguments that make an equal model elsewhere (another process, a Ray worker):
        ``SemanticMoments(**model.options())``. Needs a registry backbone."""
        from .backbones import get_entry

        get_entry(self.backbone.info()["name"])  # raises for a backbone object that is not in the registry
        return {"settings": self.settings, "dtype": str(self.backbone.dtype).replace("torch.", ""),
                "batch_size": self.batch_size, "decode_workers": self.decode_workers,
                "decode_threads": self.decode_threads}

    def feature_settings(self) -> dict[str, Any]:
        """What the embeddings of this model share with any they can be compared to."""
        return feature_settings(self.backbone.info(), self.config)

    def __repr__(self) -> str:
        info = self.backbone.info()
        return (f"SemanticMoments(backbone={info['name']!r}, layer={info['layer']!r}, "
                f"frames={self.config.num_frames}, min_rate={self.config.min_rate}, orders={self.config.orders}, "
                f"alpha={self.config.alpha}, "
                f"convention={self.config.convention!r}, granularity={self.config.granularity!r}, "
                f"fusion={self.config.fusion!r}, flow_weight={self.config.flow_weight:g}, "
                f"keypoints={self.config.keypoints}, keypoint_weight={self.config.keypoint_weight:g}, "
                f"device={str(self.backbone.device)!r})")


class _WindowLandmarks:
    """The landmarks of a long video's sampled frames, found chunk by chunk in step with the backbone
    (the same frames at the video's own size); each window's moments of keypoints from its frames."""

    def __init__(self, model: SemanticMoments, native, total: int) -> None:
        from .keypoints import Landmarks

        self.model, self.native = model, native
        self.chunks = native.chunks(model.batch_size) if native is not None else None
        hands = "hands" in model.config.keypoints
        self.found = Landmarks(np.full((total, 33, 3), np.nan, np.float32),
                               np.full((total, 2, 21, 3), np.nan, np.float32) if hands else None)
        self.done = 0

    def advance(self, count: int) -> None:
        if self.chunks is None:
            return
        from .keypoints import detect

        frames = next(self.chunks)
        if len(frames) != count:
            raise SemanticMomentsError(f"{self.native.samples.source}: the keypoints' frames ran out of step")
        found = detect(self.model.keypoint_sources(), frames)
        self.found.pose[self.done:self.done + count] = found.pose
        if self.found.hands is not None:
            self.found.hands[self.done:self.done + count] = found.hands
        self.done += count

    def moments(self, first: int, count: int, times: np.ndarray) -> dict[str, np.ndarray] | None:
        """The moments of keypoints of frames first .. first + count - 1; None without keypoints."""
        if self.chunks is None:
            return None
        from .keypoints import moments_of

        return moments_of(self.found.slice(first, count), times)


@dataclass
class _Work:
    """One item of ``iter_embed`` on its way through the batches."""

    name: str
    clip: SampledClip | None
    error: SemanticMomentsError | None
    statistics: ClipStatistics | None
    consumed: int = 0  # frames already through the backbone
    keypoint_clip: SampledClip | None = None

    @property
    def remaining(self) -> int:
        return 0 if self.clip is None else len(self.clip.frames) - self.consumed


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _as_error(name: str, error: BaseException) -> SemanticMomentsError:
    if isinstance(error, SemanticMomentsError):
        return error
    message = first_line(error, "")
    return SemanticMomentsError(f"{name}: {type(error).__name__}: {message}")


def _name(source: Source) -> str:
    return "<array>" if isinstance(source, np.ndarray) else str(source)
