"""semantic-moments inside FiftyOne: motion embeddings, similarity and indexes for video datasets.

FiftyOne's own tools then work by motion::

    import fiftyone.brain as fob
    from semantic_moments.integrations.fiftyone import MotionModel

    dataset.compute_embeddings(MotionModel(), embeddings_field="motion")
    fob.compute_similarity(dataset, embeddings="motion", brain_key="motion", backend="sklearn",
                           metric="euclidean")
    view = dataset.sort_by_similarity(dataset.first().id, brain_key="motion")

- ``MotionModel``: a FiftyOne video model (``fiftyone.core.models.Model`` + ``EmbeddingsMixin``)
  for ``compute_embeddings``; each sample's vector is the fused motion embedding at the model's
  weights (``fused_vector``). FiftyOne runs it sample by sample with its progress bar and, with
  ``skip_failures`` (its default), stores None and logs the one-line reason for a file that cannot
  be read, and goes on.
- ``load_index``: an existing index as a FiftyOne dataset without embedding anything again: clips
  as video samples with their vectors, windows of long videos as temporal detections carrying
  their own vectors (the App jumps to them; ``dataset.to_clips(WINDOWS)`` lists them as clips).
- ``compute_similarity``: the Brain's similarity index with the settings that rank as the fused
  cosine (the ``sklearn`` backend centres vectors before its ``cosine`` metric; on unit vectors
  ``euclidean`` ranks exactly as the cosine).
- ``mark_copies``: the verified copies an index finds (the same footage, not just the same motion)
  tagged on the samples of the same files, so the App filters them.
- ``index_dataset``: a dataset's videos indexed (``collection.build_index``), for the CLI, the page
  and segment search.

A fixed vector per sample is what FiftyOne's similarity backends take, so the query-time weights
(``--alpha``, ``--flow-weight``, the motion knob) are chosen when the vectors are made: give them
to ``MotionModel``/``load_index``. Inner products of these vectors are the index's exact fused
cosines, with one difference: where one of two clips saw no body or no hands, the index compares
the pair without that part, while a fixed vector counts the missing part as absent on its side
(``keypoint_fusion="zero"``). Between clips that hold the same parts the rankings are the same.

FiftyOne reads videos with FFmpeg (``ffmpeg``/``ffprobe`` on PATH); this module decodes with the
project's own reader, so vectors equal those of ``semantic-moments embed``. Only this module
imports FiftyOne (``pip install 'semantic-moments[fiftyone]'``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

try:
    import fiftyone as fo
    import fiftyone.core.models as fom
except ImportError as error:  # one line naming what to install
    raise ImportError(f"semantic_moments.integrations.fiftyone needs FiftyOne ({error}): "
                      "pip install 'semantic-moments[fiftyone]'") from None

from ..embedder import SemanticMoments
from ..embedding import Embedding
from ..errors import ConfigError, first_line
from ..index import Index
from ..index.layout import RowLayout

FIELD = "motion"              # where the vectors go by default
WINDOWS = "motion_windows"    # the windows of long videos, as temporal detections
WINDOW_LABEL = "window"


def connect() -> None:
    """Start FiftyOne's database (or reach the user's ``database_uri``); a ConfigError in one line,
    with the cause, where it cannot."""
    import fiftyone.core.odm as foo

    try:
        foo.get_db_conn()
    except Exception as error:  # noqa: BLE001 - FiftyOne raises many kinds; the user needs one line
        raise ConfigError(f"FiftyOne's database could not start ({type(error).__name__}: {first_line(error)}); "
                          "see https://docs.voxel51.com/installation/troubleshooting.html, or set "
                          "FIFTYONE_DATABASE_URI to a MongoDB of your own") from None


def fused_vector(embedding: Embedding, alpha: Sequence[float] | None = None,
                 flow_weight: float | None = None) -> np.ndarray:
    """(D',) float32 unit vector of one embedding at the given weights (default: its settings'), laid
    out as an index stores it, so that inner products are the index's fused cosines."""
    layout = RowLayout.of_embedding(embedding)
    return layout.unit_fused(layout.raw_of(embedding)[None], layout.weights(alpha, flow_weight, embedding.source))[0]


class MotionModel(fom.Model, fom.EmbeddingsMixin):
    """A FiftyOne video model whose embeddings are semantic-moments motion vectors.

    Args:
        model: a ``SemanticMoments`` to use; default: one made from ``preset`` and ``options``.
        preset: a settings preset (``motion``, the default; ``slow``, ``flow``, ``paper``).
        alpha, flow_weight: query-time weights fixed into the vectors (default: the settings').
        **options: settings fields and execution options (``SemanticMoments`` keywords).

    ``embed(video_reader)`` embeds the reader's file (``video_reader.inpath``); a clips view's
    frame range becomes a segment in seconds. ``embed_all`` embeds several files with decoding
    ahead of the backbone.
    """

    def __init__(self, model: SemanticMoments | None = None, *, preset: str | None = None,
                 alpha: Sequence[float] | None = None, flow_weight: float | None = None, **options: Any) -> None:
        if model is not None and (preset is not None or options):
            raise ConfigError("give a SemanticMoments model or a preset and options, not both")
        self.model = model if model is not None else SemanticMoments(preset=preset, **options)
        self.alpha = tuple(alpha) if alpha is not None else None
        self.flow_weight = flow_weight

    # -- what FiftyOne asks of a model ------------------------------------------------------------

    @property
    def media_type(self) -> str:
        return "video"

    @property
    def has_embeddings(self) -> bool:
        return True

    @property
    def ragged_batches(self) -> bool:
        return False

    @property
    def transforms(self) -> None:
        return None

    @property
    def preprocess(self) -> bool:
        return False

    @preprocess.setter
    def preprocess(self, value: bool) -> None:
        pass

    def predict(self, arg: Any) -> Any:
        raise ConfigError("MotionModel gives embeddings, not labels: use compute_embeddings(model, "
                          "embeddings_field=...)")

    def predict_all(self, args: Any) -> Any:
        return self.predict(args)

    def embed(self, arg: Any) -> np.ndarray:
        """(D',) float32 motion vector of one video: an ``eta`` video reader (what FiftyOne passes),
        or a path."""
        path, segment = _source_of(arg)
        return self.vector(self.model.embed(path, segment=segment))

    def embed_all(self, args: Iterable[Any]) -> np.ndarray:
        """(N, D') vectors of several videos, whole files decoded ahead of the backbone; raises on the
        first bad one (as ``embed``)."""
        sources = [_source_of(arg) for arg in args]
        if not sources:
            return np.empty((0, 0), np.float32)
        if all(segment is None for _, segment in sources):
            embeddings = self.model.embed([path for path, _ in sources])
        else:
            embeddings = [self.model.embed(path, segment=segment) for path, segment in sources]
        return np.stack([self.vector(embedding) for embedding in embeddings])

    def vector(self, embedding: Embedding) -> np.ndarray:
        """The vector FiftyOne stores for ``embedding`` (``fused_vector`` at this model's weights)."""
        return fused_vector(embedding, self.alpha, self.flow_weight)

    def __repr__(self) -> str:
        return f"MotionModel({self.model!r}, alpha={self.alpha}, flow_weight={self.flow_weight})"


def _source_of(arg: Any) -> tuple[str, tuple[float, float] | None]:
    """(path, segment seconds or None) of a video reader FiftyOne opened, or of a path."""
    if isinstance(arg, (str, os.PathLike)):
        return os.fspath(arg), None
    path = getattr(arg, "inpath", None)
    if path is None:
        raise ConfigError(f"MotionModel embeds videos: expected a video reader or a path, got {type(arg).__name__}")
    frames = str(getattr(arg, "frames", "") or "*")
    match = re.fullmatch(r"(\d+)-(\d+)", frames)
    if match is None:  # the whole video ("*"), or several ranges: the whole video
        return os.fspath(path), None
    rate = float(getattr(arg, "frame_rate", 0) or 0)
    if rate <= 0:
        raise ConfigError(f"{path}: a frame range ({frames}) needs the video's frame rate, which FFmpeg did not give")
    first, last = int(match.group(1)), int(match.group(2))
    total = getattr(arg, "total_frame_count", None)
    if first == 1 and total is not None and last >= int(total):
        return os.fspath(path), None
    return os.fspath(path), ((first - 1) / rate, last / rate)


def compute_similarity(samples: Any, field: str = FIELD, brain_key: str = "motion", **options: Any) -> Any:
    """FiftyOne Brain's similarity index of ``samples``' motion vectors (``field``), ranking exactly as
    the fused cosine: the ``sklearn`` backend with the Euclidean metric. (Its ``cosine`` metric
    subtracts the collection's mean vector first, which changes the ranking; on unit vectors the
    Euclidean distance orders as the cosine does.) ``options`` go to ``compute_similarity``, e.g.
    another ``backend``. Then ``samples.sort_by_similarity(id, brain_key=brain_key)`` and the App's
    "similar" button sort by motion."""
    import fiftyone.brain as fob

    options = {"backend": "sklearn", "metric": "euclidean", **options}
    return fob.compute_similarity(samples, embeddings=field, brain_key=brain_key, **options)


def load_index(index: Index | str | os.PathLike[str], name: str | None = None, *, field: str = FIELD,
               windows_field: str = WINDOWS, alpha: Sequence[float] | None = None,
               flow_weight: float | None = None, overwrite: bool = False, persistent: bool = False) -> Any:
    """A FiftyOne video dataset of an index's clips, with their motion vectors in ``field`` and, for
    windowed videos, every window in ``windows_field`` as a ``TemporalDetection`` (label
    ``"window"``, its vector in the detection's ``field`` attribute). Nothing is embedded again.

    ``name``: the dataset's name (default: the index folder's); an existing dataset of that name is
    refused unless ``overwrite``. Clips whose files are gone are left out, with a warning.
    """
    import warnings

    owned = not isinstance(index, Index)
    index = Index.open(index) if owned else index
    try:
        if index.config is None:
            raise ConfigError(f"{index.path}: the index is empty")
        name = name or Path(index.path).name
        connect()
        if fo.dataset_exists(name) and not overwrite:
            raise ConfigError(f"FiftyOne already has a dataset named {name!r}: give another name or overwrite=True")
        layout = index.layout
        weights = layout.weights(alpha, flow_weight, str(index.path))
        matrix = index.matrix()
        paths = index.paths()
        vectors = dict(zip(matrix.ids.tolist(), layout.unit_fused(matrix.raw, weights)))
        entries = index.segment_entries()
        windowed = entries.window_ids >= 0
        window_vectors = layout.unit_fused(entries.raw[windowed], weights) if windowed.any() else None
        windows: dict[int, list[tuple[float, float, np.ndarray]]] = {}
        for row, (clip_id, start, end) in enumerate(zip(entries.clip_ids[windowed], entries.starts[windowed],
                                                        entries.ends[windowed])):
            windows.setdefault(int(clip_id), []).append((float(start), float(end), window_vectors[row]))
        samples, missing = [], []
        for clip_id in matrix.ids.tolist():
            path = paths[clip_id]
            if not os.path.exists(path):
                missing.append(path)
                continue
            sample = fo.Sample(filepath=os.path.abspath(path))
            sample[field] = vectors[clip_id]
            sample["index_id"] = int(clip_id)
            samples.append(sample)
        if missing:
            warnings.warn(f"{len(missing)} indexed file(s) no longer exist and are left out (first: {missing[0]})",
                          stacklevel=2)
        dataset = fo.Dataset(name, overwrite=overwrite, persistent=persistent)
        dataset.add_samples(samples, progress=False)
        if windows:
            _add_windows(dataset, windows, field, windows_field)
        dataset.info["semantic_moments"] = {"index": str(index.path), "weights": list(map(float, weights)),
                                            "field": field, "windows_field": windows_field}
        dataset.save()
        return dataset
    finally:
        if owned:
            index.close()


def _add_windows(dataset: Any, windows: dict[int, list[tuple[float, float, np.ndarray]]], field: str,
                 windows_field: str) -> None:
    """Windows as temporal detections on their video samples (frame supports from FFprobe's metadata)."""
    view = dataset.match(fo.ViewField("index_id").is_in(list(windows)))
    view.compute_metadata(progress=False)
    for sample in view.iter_samples(autosave=True, progress=False):
        detections = []
        for start, end, vector in windows[sample["index_id"]]:
            detection = fo.TemporalDetection.from_timestamps([start, end], sample=sample, label=WINDOW_LABEL)
            detection[field] = vector
            detections.append(detection)
        sample[windows_field] = fo.TemporalDetections(detections=detections)


def mark_copies(samples: Any, index: Index | str | os.PathLike[str], *, tag: str = "copy",
                field: str = "copies", min_score: float | None = None) -> int:
    """Mark the verified copies an index finds (``organize.copies``: the same footage, frame by frame;
    a part of a long video with its span) on the samples of the same files: each gets ``tag`` and, in
    ``field``, one entry per copy: ``"path"`` (or ``"path@start-end"`` for the span of a long video a
    part covers). Returns the number of pairs marked; the App then filters by the tag."""
    from ..organize import copies

    owned = not isinstance(index, Index)
    index = Index.open(index) if owned else index
    try:
        pairs, _ = copies(index, min_score)
    finally:
        if owned:
            index.close()
    by_path = {os.path.abspath(path): sample_id for sample_id, path in zip(samples.values("id"), samples.values("filepath"))}
    marks: dict[str, list[str]] = {}
    count = 0
    for pair in pairs:
        a, b = by_path.get(os.path.abspath(pair.path_a)), by_path.get(os.path.abspath(pair.path_b))
        if a is None or b is None:
            continue
        count += 1
        span = f"@{pair.span_a[0]:g}-{pair.span_a[1]:g}" if pair.span_a else ""
        marks.setdefault(a, []).append(pair.path_b)
        marks.setdefault(b, []).append(pair.path_a + span)
    if marks:
        view = samples.select(list(marks))
        view.tag_samples(tag)
        view.set_values(field, [marks[sample_id] for sample_id in view.values("id")])
    return count


def index_dataset(samples: Any, index: Index | str | os.PathLike[str], *, model: SemanticMoments | None = None,
                  preset: str | None = None, windows: str | None = None, show_progress: bool = True,
                  **options: Any):
    """Index the videos of a FiftyOne dataset or view (their ``filepath``s) into ``index``, creating it
    if needed; only new or changed files are embedded (``collection.build_index``). Returns the
    ``BuildSummary`` (failed files are listed there, not raised)."""
    from ..collection import build_index, model_for_index
    from ..settings import FIELDS

    if samples.media_type != "video":
        raise ConfigError(f"index_dataset takes a video dataset, got media type {samples.media_type!r}")
    owned = not isinstance(index, Index)
    index = Index.open(index, create=True) if owned else index
    try:
        if model is None:  # settings fields are checked against the index's; the rest is how the model runs
            overrides = {name: options.pop(name) for name in list(options) if name in FIELDS}
            model = model_for_index(index, preset, options, **overrides)
        paths = sorted(set(samples.values("filepath")))
        return build_index(index, paths, model, show_progress=show_progress, windows=windows)
    finally:
        if owned:
            index.close()
