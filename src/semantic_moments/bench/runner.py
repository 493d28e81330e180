"""Run benchmark manifests: features once per clip (cached), every method scored side by side."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SemanticMomentsError
from ..video import SampledClip, read_ahead, read_clip
from .baselines import BASELINES, SIZE
from .baselines import describe as describe_baselines
from .features import FLOW_SEGMENTS, KEYPOINT_FRAMES, FeatureCache, keypoint_features, moment_features
from .manifest import Manifest
from .variants import clip_source, read_variant
from .methods import Method, extractor_name
from .metrics import bootstrap_interval, cosine_matrix, knn_classify, score_triplets

TRIPLET_METRICS = ("recall_at_1", "triplet_accuracy", "retrieval_accuracy", "mean_rank", "map")


@dataclass
class BenchmarkResult:
    """Everything one manifest produced: rows of numbers, failures, and per-triplet margins."""

    manifest: Manifest
    rows: list[dict[str, Any]] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    dropped_triplets: list[str] = field(default_factory=list)
    margins: dict[str, np.ndarray] = field(default_factory=dict)  # method key -> per-triplet margin
    triplet_ids: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what a reader must know to trust the numbers


def _progress(iterable, enabled: bool, **options):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, **options)


def _mirrored(clip: SampledClip) -> SampledClip:
    """The clip flipped left-right (a manifest's ``PATH#hflip`` twin)."""
    import dataclasses

    return dataclasses.replace(clip, frames=np.ascontiguousarray(clip.frames[:, :, ::-1]))


def _read(path: str, file: Path, frames: int, size: tuple[int, int] | None, min_rate: float | None) -> SampledClip:
    """A manifest clip's frames as the method reads them: a time variant by its own timeline
    (``variants.py``), then mirrored where the path says so."""
    _, mirrored, variant = clip_source(path)
    if variant is not None:
        clip = read_variant(file, variant, frames, size, min_rate)
    else:
        clip = read_clip(file, frames, size=size, decode_threads=1, min_rate=min_rate)
    return _mirrored(clip) if mirrored else clip


def _identity(identity: dict[str, Any], path: str) -> dict[str, Any]:
    """The cache identity of a clip's features: the extractor's, plus how the clip was changed."""
    _, mirrored, variant = clip_source(path)
    return {**identity, **({"hflip": True} if mirrored else {}), **({"variant": variant} if variant else {})}


def extract_features(
    manifest: Manifest,
    methods: Sequence[Method],
    cache: FeatureCache,
    model_options: dict[str, Any],
    progress: bool = True,
) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, str]]:
    """Features of every clip for every extractor the methods need: {clip: {key: vector}}, failures.

    A clip that fails anywhere is reported once and left out of every method, so all methods are
    scored on the same clips.
    """
    from ..backbones import create_backbone
    from ..embedder import SemanticMoments

    paths = manifest.all_paths()
    features: dict[str, dict[str, np.ndarray]] = {path: {} for path in paths}
    failures: dict[str, str] = {}
    extractors = sorted({(m.backbone, m.frames, m.min_rate, m.baseline is not None) for m in methods
                         if m.settings is not None or m.baseline}, key=str)
    if any(method.keypoint_parts for method in methods):
        extractors.append(("keypoints", KEYPOINT_FRAMES, None, False))
    backbones: dict[str, Any] = {}
    keypoint_sources: dict[str, Any] = {}
    for backbone_name, frames, min_rate, is_baseline in extractors:
        sampling = {"min_rate": min_rate} if min_rate else {}
        if backbone_name == "keypoints":
            from ..keypoints import create_keypoint_source

            if not keypoint_sources:
                keypoint_sources.update({name: create_keypoint_source(name) for name in ("pose", "hands")})
            identity = {"keypoints": {name: source.entry.sha256 for name, source in keypoint_sources.items()},
                        "frames": frames}
            model = None
            prefix = extractor_name("keypoints", frames, None)
            size = None
        elif is_baseline:
            identity: dict[str, Any] = {"baseline": sorted(BASELINES), "frames": frames, "size": SIZE, **sampling}
            model = None
            prefix = extractor_name("baseline", frames, min_rate)
            size: tuple[int, int] | None = (SIZE, SIZE)
        else:
            if backbone_name not in backbones:
                name, _, layer = backbone_name.partition(":")
                options = dict(model_options.get(name, {}))
                backbones[backbone_name] = create_backbone(name, layer=layer or None, **options)
            model = SemanticMoments(backbones[backbone_name], frames=frames, batch_size=32, flow_segments=FLOW_SEGMENTS,
                                    min_rate=min_rate or 0)
            identity = {**backbones[backbone_name].info(), "frames": frames, **sampling}
            prefix = extractor_name(backbone_name, frames, min_rate)
            size = model.backbone.preprocessing.image_size
        todo: list[tuple[str, Path]] = []
        for path in paths:  # cached features first: no decoding, no model
            if path in failures:
                continue
            file = manifest.resolve(path)
            cached = cache.get(file, _identity(identity, path)) if file.is_file() else None
            if cached is None:
                todo.append((path, file))
            else:
                features[path].update({f"{prefix}/{key}": value for key, value in cached.items()})
        # Clips decode single-threaded in read-ahead threads while the model runs on the current one.
        read = partial(_read, frames=frames, size=size, min_rate=min_rate)
        ahead = read_ahead(todo, lambda entry, read=read: read(entry[0], entry[1]), workers=2)
        for (path, file), clip in _progress(ahead, progress, total=len(todo), desc=f"{manifest.name}: {prefix}",
                                             unit="clip", dynamic_ncols=True):
            try:
                if isinstance(clip, Exception):
                    raise clip
                if backbone_name == "keypoints":
                    computed = keypoint_features(keypoint_sources, clip)
                elif model is None:
                    computed = describe_baselines(clip.frames)
                else:
                    computed = moment_features(model, clip)
                cache.put(file, _identity(identity, path), computed)
            except SemanticMomentsError as error:
                failures[path] = str(error)
                continue
            except Exception as error:  # noqa: BLE001 - a bad clip is reported, the run goes on
                failures[path] = f"{file}: {type(error).__name__}: {error}"
                continue
            features[path].update({f"{prefix}/{key}": value for key, value in computed.items()})
    return features, failures


def _summaries(values: dict[str, np.ndarray], resamples: int) -> dict[str, tuple[float, float, float]]:
    return {name: bootstrap_interval(value, resamples) for name, value in values.items()}


def evaluate(
    manifest: Manifest,
    methods: Sequence[Method],
    features: dict[str, dict[str, np.ndarray]],
    failures: dict[str, str],
    bootstrap: int = 1000,
    knn_k: int = 20,
) -> BenchmarkResult:
    """Score every method on the clips that worked; one row per (method, category, metric)."""
    result = BenchmarkResult(manifest, failures=dict(failures))
    valid = [path for path in manifest.all_paths() if path not in failures]
    row_of = {path: index for index, path in enumerate(valid)}
    triplets = [t for t in manifest.triplets if all(p in row_of for p in (t.reference, t.positive, t.negative))]
    result.dropped_triplets = [t.id for t in manifest.triplets if t not in triplets]
    result.triplet_ids = [t.id for t in triplets]
    indices = np.array([[row_of[t.reference], row_of[t.positive], row_of[t.negative]] for t in triplets],
                       dtype=np.int64).reshape(-1, 3)
    shared = [row_of[p] for p in manifest.distractors if p in row_of]
    distractors, masked = [], []
    for triplet, (reference, positive, negative) in zip(triplets, indices):
        ignored = {row_of[p] for p in triplet.ignore if p in row_of}
        own = {row_of[p] for p in triplet.distractors if p in row_of}
        distractors.append(sorted((set(shared) | own) - ignored - {reference, positive, negative}))
        masked.append(sorted(ignored))
    categories = sorted({t.category for t in triplets})
    labelled = [clip for clip in manifest.clips if clip.path in row_of]
    if 0 < len(triplets) < 30:
        result.notes.append(f"only {len(triplets)} triplets: intervals are wide; no single number decides")
    if labelled:
        # A majority vote of K neighbours cannot be right when a class has fewer than K other clips:
        # K is capped at the smallest class's size - 1 (and said so).
        smallest = min(Counter(clip.label for clip in labelled).values())
        effective_k = max(1, min(knn_k, smallest - 1))
        if effective_k < knn_k:
            result.notes.append(f"kNN uses K = {effective_k}, not {knn_k}: the smallest class has {smallest} clips")
        knn_k = effective_k
    for method in methods:
        similarity = method.similarity([features[path] for path in valid])
        base = {"dataset": manifest.name, "method": method.name, "group": method.group,
                "backbone": method.backbone or "-", "frames": method.frames, "key": method.key}
        if len(triplets):
            scores = score_triplets(similarity, indices, distractors if manifest.distractors or any(
                t.distractors for t in triplets) else None, masked)
            result.margins[method.key] = scores.margin
            per_triplet = {"recall_at_1": scores.recall_at_1, "triplet_accuracy": scores.triplet_correct,
                           "retrieval_accuracy": scores.retrieval_correct, "mean_rank": scores.positive_rank,
                           "map": scores.average_precision}
            category_of = np.array([t.category for t in triplets])
            for category in ["all"] + (categories if len(categories) > 1 else []):
                selected = np.ones(len(triplets), bool) if category == "all" else category_of == category
                for metric, (mean, low, high) in _summaries({k: v[selected] for k, v in per_triplet.items()},
                                                            bootstrap).items():
                    result.rows.append({**base, "category": category, "metric": metric, "value": mean,
                                        "low": low, "high": high, "n": int(selected.sum())})
        if len(labelled) >= 3:
            rows = [row_of[clip.path] for clip in labelled]
            knn = knn_classify(similarity[np.ix_(rows, rows)], [c.label for c in labelled],
                               [c.actor for c in labelled], k=knn_k)
            for metric, values in (("knn_majority_acc1", knn.majority_top1), ("knn_majority_acc5", knn.majority_top5),
                                   ("knn_weighted_acc1", knn.weighted_top1), ("knn_weighted_acc5", knn.weighted_top5),
                                   ("appearance_trap_rate", knn.appearance_trap)):
                mean, low, high = bootstrap_interval(values, bootstrap)
                result.rows.append({**base, "category": "all", "metric": metric, "value": mean, "low": low,
                                    "high": high, "n": len(labelled)})
    return result


def run_benchmarks(
    manifests: Sequence[Manifest],
    methods: Sequence[Method],
    cache_dir: str | Path | None,
    model_options: dict[str, Any] | None = None,
    bootstrap: int = 1000,
    knn_k: int = 20,
    progress: bool = True,
) -> list[BenchmarkResult]:
    cache = FeatureCache(cache_dir)
    results = []
    for manifest in manifests:
        features, failures = extract_features(manifest, methods, cache, model_options or {}, progress)
        results.append(evaluate(manifest, methods, features, failures, bootstrap, knn_k))
    return results
