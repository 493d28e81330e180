"""Per-clip features for benchmarks, computed once and cached on disk.

One backbone pass per clip and frame count yields every SemanticMoments variant the benchmark
compares: for both granularities (``patch``, ``frame``) and every convention, the patch-averaged
statistic of each order 1..4. They are stored as named (d,) float32 vectors
``"{granularity}/{convention}/{order}"`` with convention ``reference``, ``paper`` or ``paper-std``,
so any orders/alpha/fusion combination is a cheap function of the cache. Token flow (``flow.py``) is
kept as per-segment sums pooled on each grid of ``FLOW_GRIDS`` over ``FLOW_SEGMENTS`` stretches,
``"patch/flowsum/{g}"`` (segments, 4, g * g) and ``"patch/flowcount"`` (segments,), so any segment
count dividing ``FLOW_SEGMENTS`` is a sum of neighbours (``flow_from_cache``); the candidate
descriptors of token flow (``flow.candidate_maps``: ``hof``, ``mbh``) likewise as
``"patch/{name}sum/{g}"``. Baseline descriptors
(optical flow, pixel difference) are cached the same way under ``"baseline/{name}"``.

Cache files are safetensors named by a hash of (clip content hash, backbone identity, T, extractor
version) and written atomically; a corrupt or foreign cache file is recomputed, never trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from ..flow import pool_cells
from ..moments import finalize_moments, patch_average
from ..video import SampledClip, hash_file

EXTRACTOR_VERSION = "3"
CONVENTIONS = {"reference": ("reference", False), "paper": ("paper", False), "paper-std": ("paper", True)}
ORDERS = (1, 2, 3, 4)
FLOW_GRIDS = (1, 2, 3, 4)
FLOW_SEGMENTS = 4


def moment_features(model, clip: SampledClip) -> dict[str, np.ndarray]:
    """Every granularity x convention x order statistic and the token-flow sums of one clip, from
    one backbone pass. ``model`` must have been made with ``flow_segments=FLOW_SEGMENTS``."""
    statistics = model.accumulate(clip, max_order=4, candidates=True)
    features: dict[str, np.ndarray] = {}
    for granularity, accumulator in (("patch", statistics.patch), ("frame", statistics.frame)):
        for name, (convention, standardized) in CONVENTIONS.items():
            per_patch = finalize_moments(accumulator, ORDERS, convention, standardized)
            for order, vector in patch_average(per_patch).items():
                features[f"{granularity}/{name}/{order}"] = vector.float().cpu().numpy()
    flow = statistics.flow
    if flow is not None and min(statistics.grid) >= max(FLOW_GRIDS):
        for cells in FLOW_GRIDS:
            features[f"patch/flowsum/{cells}"] = pool_cells(flow.sums, cells).numpy().astype(np.float64)
            for name, sums in (flow.candidates or {}).items():
                features[f"patch/{name}sum/{cells}"] = pool_cells(sums, cells).numpy().astype(np.float64)
        features["patch/flowcount"] = flow.counts.numpy().astype(np.float64)
    features["patch/motion_level"] = np.array([statistics.motion_level()])
    return features


def flow_from_cache(features: dict[str, np.ndarray], prefix: str, grids: tuple[int, ...], segments: int,
                    name: str = "flow") -> dict[int, np.ndarray]:
    """{g: vector} equal to ``flow.flow_vectors`` of a clip embedded with ``segments`` segments,
    from the cached sums (``segments`` must divide FLOW_SEGMENTS); ``name`` another token-flow
    descriptor of the cache (``hof``, ``mbh``), averaged the same way."""
    if FLOW_SEGMENTS % segments:
        raise ValueError(f"flow segments must divide {FLOW_SEGMENTS}, got {segments}")
    group = FLOW_SEGMENTS // segments
    counts = features[f"{prefix}/patch/flowcount"].reshape(segments, group).sum(axis=1)
    vectors = {}
    for cells in grids:
        sums = features[f"{prefix}/patch/{name}sum/{cells}"]
        merged = sums.reshape(segments, group, *sums.shape[1:]).sum(axis=1)
        vectors[cells] = (merged / np.maximum(counts, 1).reshape(-1, 1, 1)).reshape(-1)
    return vectors


class FeatureCache:
    """Named feature vectors per (clip, extractor), in ``folder`` (None: no caching)."""

    def __init__(self, folder: str | os.PathLike[str] | None) -> None:
        self.folder = Path(folder) if folder else None
        if self.folder:
            self.folder.mkdir(parents=True, exist_ok=True)

    def content_hash(self, path: Path) -> str:
        return hash_file(path)  # remembered per file version, so read_clip's own hash costs nothing more

    def _file(self, path: Path, extractor: dict) -> Path | None:
        if self.folder is None:
            return None
        key = json.dumps({"clip": self.content_hash(path), "extractor": extractor, "v": EXTRACTOR_VERSION},
                         sort_keys=True)
        return self.folder / f"{hashlib.blake2b(key.encode(), digest_size=16).hexdigest()}.safetensors"

    def get(self, path: Path, extractor: dict) -> dict[str, np.ndarray] | None:
        file = self._file(path, extractor)
        if file is None or not file.exists():
            return None
        from safetensors.numpy import load_file

        try:
            return load_file(str(file))
        except Exception:  # noqa: BLE001 - a damaged cache entry is recomputed
            return None

    def put(self, path: Path, extractor: dict, features: dict[str, np.ndarray]) -> None:
        file = self._file(path, extractor)
        if file is None:
            return
        from safetensors.numpy import save

        handle, temporary = tempfile.mkstemp(dir=file.parent, suffix=".tmp")
        with os.fdopen(handle, "wb") as output:
            output.write(save({key: np.ascontiguousarray(value) for key, value in features.items()}))
        os.replace(temporary, file)


KEYPOINT_FRAMES = 16  # frames over the whole clip the keypoint extractor looks at


def keypoint_features(sources: dict, clip: SampledClip) -> dict[str, np.ndarray]:
    """The raw landmarks of one clip, cached so that every keypoint descriptor is a cheap function of
    them: ``pose`` (K, 33, 3), ``hands`` (K, 2, 21, 3) (``keypoints/mediapipe.py``) and ``times`` (K,)
    seconds. ``sources``: {"pose": source, "hands": source}."""
    from ..keypoints import detect

    found = detect(sources, clip.frames)
    return {"pose": found.pose, "hands": found.hands, "times": np.asarray(clip.pts_seconds, dtype=np.float64)}
