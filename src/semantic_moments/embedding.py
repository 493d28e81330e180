"""The result of embedding one clip, its file format, and cosine similarity.

An `Embedding` keeps every M(k) separately (patch-averaged, before any normalisation or weighting),
so the weights alpha, the orders used and the fusion can be changed later without running the
backbone again: ``embedding.vector(alpha=(1, 0, 0), flow_weight=0, keypoint_weight=0)`` is the
appearance-only embedding (alpha alone leaves the token flow and the keypoints at their weights).

File format (``*.moments.safetensors``): a safetensors file with float32 tensors ``moment.K``
(d,) for each computed order K, ``pts_seconds`` (T,) float64, ``frame_indices`` (T,) int64 and,
for patch granularity, ``motion_map`` (rows, columns) float32: the per-patch temporal standard
deviation averaged over channels (where in the frame the features change) and ``flow.G`` float32 for
each token-flow pyramid level G (``flow.py``; patch granularity) and ``keypoints.NAME`` float32 for
each keypoint part (``keypoints/``: ``pose``, ``hands``; all zeros where the part saw nothing). Its
string metadata
holds ``format = "semantic-moments/embedding"``, ``format_version = "1"`` and ``header``, a JSON
object with ``config`` (MomentsConfig), ``backbone`` (name, layer, dim, weights, image_size, ...),
``source``, ``content_hash``, ``segment``, ``duration_seconds``, ``fps``, ``num_source_frames`` and
``package_version``. Files are written atomically (temporary file, then rename).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .config import MomentsConfig, validate_alpha, validate_flow_weight
from .errors import ConfigError, EmbeddingFileError, first_line
from .flow import fuse_with_flow

FORMAT_NAME = "semantic-moments/embedding"
FORMAT_VERSION = "1"
FILE_SUFFIX = ".moments.safetensors"


@dataclass(frozen=True)
class Embedding:
    """SemanticMoments of one clip.

    Attributes:
        moments: {k: (d,) float32} patch-averaged M(k) for every computed order, unweighted and
            unnormalised (the convention's per-patch statistic, see ``moments.py``).
        config: the MomentsConfig that made it (its alpha/orders/fusion are the defaults of ``vector``).
        backbone: what identifies the features (``Backbone.info()``).
        source: file path, folder path or ``"<array>"``.
        content_hash: BLAKE2b of the source bytes.
        pts_seconds: (T,) times of the sampled frames, seconds from the first frame.
        frame_indices: (T,) indices of the sampled frames among the source's decodable frames.
        duration_seconds, fps, num_source_frames: of the whole source.
        segment: (start, end) seconds, when only a segment was embedded.
        motion_map: (rows, columns) float32 temporal std per patch, averaged over channels.
        flow: {g: (segments * 4 * g * g,) float32} token flow per pyramid level (``flow.py``), for
            patch granularity; empty for frame granularity and for files from before token flow.
        motion_level: how much the tokens change relative to their size (``ClipStatistics``);
            below ``config.motion_floor`` the clip was embedded as static.
        keypoints: {name: (D,) float32} moments of keypoints per source (``keypoints/kinematics.py``),
            all zeros where the source found nothing in the clip; empty without keypoints.
    """

    moments: dict[int, np.ndarray]
    config: MomentsConfig
    backbone: dict[str, Any]
    source: str = "<array>"
    content_hash: str = ""
    pts_seconds: np.ndarray = field(default_factory=lambda: np.zeros(0))
    frame_indices: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    duration_seconds: float = 0.0
    fps: float | None = None
    num_source_frames: int = 0
    segment: tuple[float, float] | None = None
    motion_map: np.ndarray | None = None
    flow: dict[int, np.ndarray] = field(default_factory=dict)
    motion_level: float | None = None
    keypoints: dict[str, np.ndarray] = field(default_factory=dict)

    def __repr__(self) -> str:
        return (f"Embedding(source={self.source!r}, backbone={self.backbone.get('name')!r}, "
                f"orders={sorted(self.moments)}, dim={self.dim}, flow={sorted(self.flow)}, "
                f"frames={self.config.num_frames}, segment={self.segment})")

    def parts(self) -> dict[int | str, np.ndarray]:
        """Every stored part in fusion order: the moments by order, then ``"flow.G"`` per level."""
        parts: dict[int | str, np.ndarray] = {order: self.moments[order] for order in sorted(self.moments)}
        parts.update({f"flow.{size}": self.flow[size] for size in sorted(self.flow)})
        parts.update({f"keypoints.{name}": self.keypoints[name] for name in self.config.keypoints if name in self.keypoints})
        return parts

    @property
    def dim(self) -> int:
        """Channels d of every M(k)."""
        return int(next(iter(self.moments.values())).shape[0])

    def vector(
        self,
        alpha: Sequence[float] | None = None,
        orders: Sequence[int] | None = None,
        fusion: str | None = None,
        flow_weight: float | None = None,
        keypoint_weight: float | None = None,
        keypoint_parts: Sequence[str] | None = None,
    ) -> np.ndarray:
        """The fused embedding (D,) float32; by default with the config's orders, alpha, fusion, flow
        weight and keypoint weight. ``keypoint_parts``: the keypoint parts to include (default: all;
        ``similarity`` leaves out those one of two clips does not hold).

        Giving ``orders`` without ``alpha`` uses the config's weight for each order (the paper's for
        orders outside it). The token flow joins with ``flow_weight`` per pyramid level when that is
        positive. Raises ConfigError for orders that were not computed, or a flow weight on an
        embedding without token flow.
        """
        orders = tuple(orders) if orders is not None else self.config.orders
        if alpha is None:
            alpha = self.config.alpha_for(orders)
        alpha = tuple(float(weight) for weight in alpha)
        validate_alpha(alpha, orders)
        flow_weight = self.config.flow_weight if flow_weight is None else validate_flow_weight(flow_weight)
        missing = [order for order in orders if order not in self.moments]
        if missing:
            raise ConfigError(f"{self.source}: moments of order {missing} were not computed (have {sorted(self.moments)})")
        if flow_weight > 0 and not self.flow:
            raise ConfigError(f"{self.source}: has no token flow to weight (made with frame granularity or an older version)")
        moments = {order: torch.from_numpy(self.moments[order]).double() for order in orders}
        flow = {size: torch.from_numpy(vector).double() for size, vector in self.flow.items()}
        keypoint_weight = self.config.keypoint_weight if keypoint_weight is None else validate_flow_weight(
            keypoint_weight, "keypoint_weight")
        names = self.config.keypoints if keypoint_parts is None else tuple(keypoint_parts)
        extra = {f"keypoints.{name}": torch.from_numpy(self.keypoints[name]).double()
                 for name in names if name in self.keypoints} if keypoint_weight > 0 else {}
        fused = fuse_with_flow(moments, flow, alpha, flow_weight, fusion or self.config.fusion, self.config.convention,
                               extra=extra, extra_weight=keypoint_weight)
        return fused.float().numpy()

    def feature_settings(self) -> dict[str, Any]:
        """What must agree for two embeddings to be comparable (see ``feature_settings``); an embedding
        without token flow (a file from before it) says so."""
        settings = feature_settings(self.backbone, self.config)
        return settings if self.flow else {**settings, "flow": None}

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write atomically to ``path`` (see the module docstring for the format); returns the path."""
        from .files import write_atomically

        data = self.to_bytes()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)

        def write(temporary: str) -> None:
            with open(temporary, "wb") as output:
                output.write(data)
                output.flush()
                os.fsync(output.fileno())

        return write_atomically(path, write)

    def to_bytes(self) -> bytes:
        """The file's bytes (module docstring), e.g. to send an embedding between processes or store
        it in a Parquet column; ``from_bytes`` reads them back with the same validation as ``load``."""
        from safetensors.numpy import save

        from . import __version__

        tensors: dict[str, np.ndarray] = {f"moment.{order}": np.ascontiguousarray(value, dtype=np.float32)
                                          for order, value in self.moments.items()}
        tensors["pts_seconds"] = np.ascontiguousarray(self.pts_seconds, dtype=np.float64)
        tensors["frame_indices"] = np.ascontiguousarray(self.frame_indices, dtype=np.int64)
        if self.motion_map is not None:
            tensors["motion_map"] = np.ascontiguousarray(self.motion_map, dtype=np.float32)
        for size, vector in self.flow.items():
            tensors[f"flow.{size}"] = np.ascontiguousarray(vector, dtype=np.float32)
        for name, vector in self.keypoints.items():
            tensors[f"keypoints.{name}"] = np.ascontiguousarray(vector, dtype=np.float32)
        header = {
            "config": self.config.to_dict(),
            "backbone": self.backbone,
            "source": self.source,
            "content_hash": self.content_hash,
            "segment": list(self.segment) if self.segment else None,
            "duration_seconds": self.duration_seconds,
            "fps": self.fps,
            "num_source_frames": self.num_source_frames,
            "motion_level": self.motion_level,
            "package_version": __version__,
        }
        metadata = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "header": json.dumps(header)}
        return save(tensors, metadata=metadata)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Embedding:
        """Read a file written by ``save``. Raises EmbeddingFileError naming the file and the cause."""
        path = Path(path)
        if not path.is_file():
            raise EmbeddingFileError(f"{path}: no such embedding file")
        return cls.from_bytes(path.read_bytes(), str(path))

    @classmethod
    def from_bytes(cls, data: bytes, name: str = "<bytes>") -> Embedding:
        """An embedding from ``to_bytes`` output (or a file's contents); errors name ``name``."""
        path = name
        try:
            from safetensors.numpy import load as load_tensors

            size = int.from_bytes(bytes(data[:8]), "little")
            if len(data) < 8 + size:
                raise ValueError("truncated header")
            metadata = json.loads(bytes(data[8:8 + size])).get("__metadata__") or {}
            tensors = load_tensors(bytes(data))
        except Exception as error:  # noqa: BLE001 - safetensors raises several kinds for bad files
            raise EmbeddingFileError(f"{path}: not a safetensors embedding file ({first_line(error)})") from None
        if metadata.get("format") != FORMAT_NAME:
            raise EmbeddingFileError(f"{path}: not a semantic-moments embedding (format {metadata.get('format')!r})")
        if metadata.get("format_version") != FORMAT_VERSION:
            raise EmbeddingFileError(f"{path}: embedding format version {metadata.get('format_version')!r} is not supported")
        try:
            header = json.loads(metadata["header"])
            if not isinstance(header, dict):
                raise ValueError(f"header is a JSON {type(header).__name__}, not an object")
            for key in ("config", "backbone"):
                if not isinstance(header.get(key), dict):
                    raise ValueError(f"header {key!r} is not an object")
            moments = {int(key.split(".")[1]): value for key, value in tensors.items() if key.startswith("moment.")}
            flow = {int(key.split(".")[1]): value for key, value in tensors.items() if key.startswith("flow.")}
            keypoints = {key.split(".", 1)[1]: value for key, value in tensors.items() if key.startswith("keypoints.")}
            _check_vectors(moments, {key: value for key, value in tensors.items()
                                     if key.startswith(("flow.", "keypoints."))}, tensors)
            segment = header.get("segment")
            _check_header(header, tensors)
            return cls(
                moments=moments,
                config=MomentsConfig.from_dict(header["config"]),
                backbone=header["backbone"],
                source=header["source"],
                content_hash=header["content_hash"],
                pts_seconds=tensors["pts_seconds"],
                frame_indices=tensors["frame_indices"],
                duration_seconds=float(header["duration_seconds"]),
                fps=header["fps"],
                num_source_frames=int(header["num_source_frames"]),
                segment=tuple(segment) if segment else None,
                motion_map=tensors.get("motion_map"),
                flow=flow,
                motion_level=header.get("motion_level"),
                keypoints=keypoints,
            )
        except (KeyError, ValueError, TypeError, ConfigError) as error:
            raise EmbeddingFileError(f"{path}: malformed embedding header ({first_line(error)})") from None


def _check_vectors(moments: dict[int, np.ndarray], others: dict[str, np.ndarray], tensors: dict[str, np.ndarray]) -> None:
    """Raise ValueError unless the stored vectors have consistent shapes and finite values."""
    if not moments:
        raise ValueError("no moment vectors")
    sizes = {value.shape for value in moments.values()}
    if len(sizes) != 1 or len(next(iter(sizes))) != 1 or next(iter(sizes))[0] == 0:
        raise ValueError(f"moment vectors must be one non-empty length, got shapes {sorted(sizes)}")
    named = [(f"moment.{key}", value) for key, value in moments.items()] + list(others.items())
    for name, value in named:
        if value.ndim != 1 or not np.isfinite(value).all():
            raise ValueError(f"{name} is not a finite vector")
        if np.abs(value).max(initial=0.0) > MAX_VALUE:
            raise ValueError(f"{name} holds values beyond {MAX_VALUE:g}")
    for name in ("pts_seconds", "frame_indices"):
        if name not in tensors or tensors[name].ndim != 1:
            raise ValueError(f"{name} missing or not a vector")


MAX_VALUE = 1e6  # no backbone statistic comes near: larger values are damage or forgery
MAX_MAP_SIDE = 256  # motion maps are the patch grid (14 x 14 for the default)


MAX_SECONDS = 1e6  # about 11.6 days: no clip is longer; larger values are damage or forgery
MAX_SOURCE_FRAMES = 10**9
MAX_SAMPLES = 100_000  # sampled frames of one clip (T is tens)
MAX_TEXT = 4096  # characters of a source path or content hash


def _number(value: object, name: str) -> float:
    """``value`` as a float, or ValueError unless it is a real number (not a bool, not text)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} {str(value)[:40]!r} is not a number")
    return float(value)


def _check_header(header: dict, tensors: dict[str, np.ndarray]) -> None:
    """Raise ValueError unless the times, counts, texts and motion map are what a real embedding holds."""
    duration = _number(header["duration_seconds"], "duration_seconds")
    if not (np.isfinite(duration) and 0 <= duration <= MAX_SECONDS):
        raise ValueError(f"duration_seconds {duration} is not between 0 and {MAX_SECONDS:g} seconds")
    fps = header.get("fps")
    if fps is not None and not (0 < _number(fps, "fps") <= 10_000):
        raise ValueError(f"fps {fps!r} is not a positive frame rate")
    frames = header["num_source_frames"]
    if isinstance(frames, bool) or not isinstance(frames, int) or not 0 <= frames <= MAX_SOURCE_FRAMES:
        raise ValueError(f"num_source_frames {str(frames)[:40]!r} is not a count of frames up to {MAX_SOURCE_FRAMES:g}")
    for key in ("source", "content_hash"):
        if not isinstance(header.get(key), str) or len(header[key]) > MAX_TEXT:
            raise ValueError(f"{key} is not text of at most {MAX_TEXT} characters")
    times = tensors["pts_seconds"]
    if len(times) > MAX_SAMPLES or len(tensors["frame_indices"]) != len(times):
        raise ValueError(f"pts_seconds and frame_indices must be one length, at most {MAX_SAMPLES}")
    if not (np.isfinite(times).all() and (times >= 0).all() and (times <= MAX_SECONDS).all()):
        raise ValueError("pts_seconds holds negative, non-finite or impossible times")
    segment = header.get("segment")
    if segment is not None and not (len(segment) == 2 and all(np.isfinite(float(x)) for x in segment)
                                    and 0 <= float(segment[0]) < float(segment[1])):
        raise ValueError(f"segment {segment!r} is not 0 <= start < end seconds")
    motion_map = tensors.get("motion_map")
    if motion_map is not None and (motion_map.ndim != 2 or max(motion_map.shape) > MAX_MAP_SIDE
                                   or not np.isfinite(motion_map).all()):
        raise ValueError(f"motion_map of shape {motion_map.shape} is not a finite patch grid "
                         f"(at most {MAX_MAP_SIDE} a side)")



def feature_settings(backbone: dict[str, Any], config: MomentsConfig) -> dict[str, Any]:
    """What must agree for two embeddings to be comparable: backbone features and moment
    definition (not alpha, orders or fusion, which can be changed afterwards)."""
    identity = {key: backbone.get(key) for key in ("name", "layer", "dim", "weights", "image_size")}
    settings = {"backbone": identity, "convention": config.convention, "standardized": config.standardized,
                "granularity": config.granularity, "num_frames": config.num_frames,
                "flow": {"grids": list(config.flow_grids), "segments": config.flow_segments} if config.flow_parts()
                else None}
    if config.min_rate is not None:  # absent for whole-clip sampling, as in files made before it existed
        settings["min_rate"] = config.min_rate
    if config.keypoints:  # absent without keypoints, likewise
        settings["keypoints"] = {"sources": list(config.keypoints), "frames": config.keypoint_frames}
    return settings


def require_comparable(a: Embedding, b: Embedding) -> None:
    """Raise ConfigError, naming both sides, unless a and b were made with the same features."""
    settings_a, settings_b = a.feature_settings(), b.feature_settings()
    if settings_a != settings_b:
        differing = sorted(key for key in set(settings_a) | set(settings_b) if settings_a.get(key) != settings_b.get(key))
        details = "; ".join(f"{key}: {settings_a.get(key)} vs {settings_b.get(key)}" for key in differing)
        raise ConfigError(f"cannot compare {a.source} with {b.source}: made with different settings ({details})")


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two vectors; 0.0 when either is all zeros."""
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.dot(a.astype(np.float64), b.astype(np.float64)) / norm) if norm > 0 else 0.0


def similarity(
    a: Embedding,
    b: Embedding,
    alpha: Sequence[float] | None = None,
    orders: Sequence[int] | None = None,
    fusion: str | None = None,
    flow_weight: float | None = None,
) -> float:
    """Cosine similarity of two clips' fused embeddings (same settings required).

    Both are fused the same way: with ``alpha``/``orders``/``fusion``/``flow_weight`` where given,
    else with ``a``'s configured ones (never each with its own).
    """
    require_comparable(a, b)
    orders = tuple(orders) if orders is not None else a.config.orders
    alpha = tuple(alpha) if alpha is not None else a.config.alpha_for(orders)
    fusion = fusion or a.config.fusion
    flow_weight = a.config.flow_weight if flow_weight is None else flow_weight
    shared = shared_keypoints(a, b)
    return cosine(a.vector(alpha, orders, fusion, flow_weight, keypoint_parts=shared),
                  b.vector(alpha, orders, fusion, flow_weight, keypoint_parts=shared))


def shared_keypoints(a: Embedding, b: Embedding) -> tuple[str, ...]:
    """The keypoint parts a pair is compared on: under ``keypoint_fusion="shared"`` those both clips
    hold (a part that saw nothing in one clip says nothing about the pair), else all."""
    names = a.config.keypoints
    if a.config.keypoint_fusion != "shared":
        return names
    return tuple(name for name in names if np.any(a.keypoints.get(name, 0)) and np.any(b.keypoints.get(name, 0)))


def similarity_matrix(embeddings: Sequence[Embedding], alpha: Sequence[float] | None = None,
                      orders: Sequence[int] | None = None, fusion: str | None = None,
                      flow_weight: float | None = None) -> np.ndarray:
    """(N, N) cosine similarities of every pair of clips, each fused as ``similarity`` fuses them (the
    first embedding's settings where none are given); every embedding must be comparable."""
    if not embeddings:
        return np.zeros((0, 0))
    first = embeddings[0]
    for other in embeddings[1:]:
        require_comparable(first, other)
    orders = tuple(orders) if orders is not None else first.config.orders
    alpha = tuple(alpha) if alpha is not None else first.config.alpha_for(orders)
    fusion = fusion or first.config.fusion
    flow_weight = first.config.flow_weight if flow_weight is None else flow_weight
    vectors = np.stack([np.asarray(e.vector(alpha, orders, fusion, flow_weight), dtype=np.float64) for e in embeddings])
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors = vectors / np.where(norms > 0, norms, 1.0)
    return vectors @ vectors.T


def moment_similarities(a: Embedding, b: Embedding) -> dict[int | str, float]:
    """Cosine similarity of each part on its own: {k: similarity} for the orders both hold, and
    {"flow": similarity} of the token flow (all pyramid levels, each normalised) where both have it."""
    require_comparable(a, b)
    result: dict[int | str, float] = {order: cosine(a.moments[order], b.moments[order])
                                      for order in sorted(set(a.moments) & set(b.moments))}
    if a.flow and b.flow:
        result["flow"] = cosine(_unit_levels(a.flow), _unit_levels(b.flow))
    for name in shared_keypoints(a, b):
        result[name] = cosine(a.keypoints[name], b.keypoints[name])
    return result


def _unit_levels(flow: dict[int, np.ndarray]) -> np.ndarray:
    """The flow levels, each L2-normalised, concatenated."""
    return np.concatenate([vector / max(float(np.linalg.norm(vector)), 1e-12) for _, vector in sorted(flow.items())])
