"""semantic-moments inside a real FiftyOne (its bundled MongoDB; no mock): embeddings through
``compute_embeddings``, the Brain's similarity index, an index imported with its windows."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import moving_square, need, need_data, on_ci, write_video

ARM = Path(__file__).resolve().parents[2] / "shared" / "data" / "ud810_arm_actions"
PER_ACTION = 3  # clips of each of the three actions: 9 clips keep the test short


@pytest.fixture(scope="module")
def fo(tmp_path_factory):
    """FiftyOne with its database in a folder of this test run (started once)."""
    os.environ.setdefault("FIFTYONE_DATABASE_DIR", str(tmp_path_factory.mktemp("fiftyone-db")))
    os.environ["FIFTYONE_DO_NOT_TRACK"] = "true"
    os.environ["FIFTYONE_SHOW_PROGRESS_BARS"] = "false"
    fiftyone = need("fiftyone")
    if shutil.which("ffprobe") is None:  # FiftyOne reads videos with FFmpeg
        if on_ci():
            pytest.fail("CI needs FFmpeg for FiftyOne's videos: `make setup` installs Debian's ffmpeg as root")
        pytest.skip("FiftyOne's videos need FFmpeg (ffmpeg, ffprobe) on PATH")
    from semantic_moments.integrations.fiftyone import connect

    connect()
    return fiftyone


def _arm_clips() -> list[Path]:
    folder = need_data(ARM, "the UD810 arm actions")
    return [clip for action in sorted(folder.iterdir()) if action.is_dir()
            for clip in sorted(action.glob("*.avi"))[:PER_ACTION]]


def test_a_database_that_cannot_start_is_one_clear_line():
    """First in the module: once a test has started FiftyOne's database, later processes share it."""
    need("fiftyone")
    script = ("from semantic_moments.integrations.fiftyone import connect\n"
              "from semantic_moments.errors import ConfigError\n"
              "try:\n    connect()\nexcept ConfigError as error:\n    print(error)\n")
    environment = {**os.environ, "FIFTYONE_DATABASE_DIR": "/proc/not-writable", "FIFTYONE_DO_NOT_TRACK": "true"}
    environment.pop("FIFTYONE_DATABASE_URI", None)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=environment,
                            timeout=120)
    lines = [line for line in result.stdout.splitlines() if "could not start" in line]
    assert result.returncode == 0 and len(lines) == 1, result.stdout + result.stderr
    assert lines[0].startswith("FiftyOne's database could not start (PermissionError") and "/proc/not-writable" in lines[0]


def test_motion_embeddings_sort_a_dataset_by_action_as_search_does(fo, default_model, tmp_path):
    from semantic_moments.index import Index
    from semantic_moments.integrations.fiftyone import FIELD, MotionModel, compute_similarity, index_dataset

    clips = _arm_clips()
    dataset = fo.Dataset()
    dataset.add_samples([fo.Sample(filepath=str(clip), ground_truth=fo.Classification(label=clip.parent.name))
                         for clip in clips])
    dataset.compute_embeddings(MotionModel(default_model), embeddings_field=FIELD)
    vectors = np.stack(dataset.values(FIELD))
    assert vectors.shape[0] == len(clips) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)

    results = compute_similarity(dataset)
    assert (results.config.metric, results.config.embeddings_field) == ("euclidean", FIELD)
    # the same clips indexed: FiftyOne's order is the index's search order at the same weights
    summary = index_dataset(dataset, tmp_path / "index", model=default_model, show_progress=False)
    assert len(summary.added) == len(clips) and not summary.failed
    with Index.open(tmp_path / "index") as index:
        # the vectors are the index's rows at its weights (what export writes)
        matrix, paths = index.matrix(), index.paths()
        rows = dict(zip([paths[clip_id] for clip_id in matrix.ids.tolist()],
                        index.layout.unit_fused(matrix.raw, index.weights())))
        np.testing.assert_allclose(vectors, np.stack([rows[path] for path in dataset.values("filepath")]), atol=1e-6)
        for sample in dataset.select(dataset.values("id")[::PER_ACTION]):  # the first clip of each action
            ranked = dataset.sort_by_similarity(sample.id, brain_key="motion", k=len(clips))
            labels = ranked.values("ground_truth.label")
            assert labels[:PER_ACTION] == [sample.ground_truth.label] * PER_ACTION  # itself, then its action
            hits = index.search(sample.filepath, k=len(clips) - 1)
            assert [hit.path for hit in hits] == ranked.values("filepath")[1:]
    # the map
    import fiftyone.brain as fob

    points = fob.compute_visualization(dataset, embeddings=FIELD, brain_key="motion_map", method="pca").points
    assert points.shape == (len(clips), 2) and np.isfinite(points).all()
    # several examples at once, as the App's "similar" on a selection does
    two = dataset.values("id")[:2]
    assert set(dataset.sort_by_similarity(two, brain_key="motion", k=2).values("id")) == set(two)


def test_an_index_with_windows_loads_without_embedding_again(fo, tiny_model, tmp_path):
    from semantic_moments.collection import build_index
    from semantic_moments.index import Index
    from semantic_moments.integrations.fiftyone import FIELD, WINDOWS, load_index

    fps = 16
    (tmp_path / "videos").mkdir()
    frames = np.concatenate([moving_square(48, 64, (230, 60, 40), "right"), moving_square(48, 64, (230, 60, 40), "down")])
    write_video(tmp_path / "videos" / "long.mp4", frames, fps=fps)
    write_video(tmp_path / "videos" / "short.mp4", moving_square(16, 64, (40, 200, 90), "down"), fps=fps)
    with Index.open(tmp_path / "index", create=True) as index:
        build_index(index, [tmp_path / "videos"], tiny_model, windows="2:1")
        entries = index.segment_entries()
        expected = sorted((float(start), float(end)) for start, end, window in
                          zip(entries.starts, entries.ends, entries.window_ids) if window >= 0)
        clip_vectors = index.layout.unit_fused(index.matrix().raw, index.weights())

    dataset = load_index(tmp_path / "index", name="windows-test", overwrite=True)
    assert len(dataset) == 2
    by_path = {Path(sample.filepath).name: sample for sample in dataset}
    np.testing.assert_allclose(np.stack([sample[FIELD] for sample in dataset.sort_by("index_id")]), clip_vectors,
                               atol=1e-6)
    windows = by_path["long.mp4"][WINDOWS].detections
    assert by_path["short.mp4"][WINDOWS] is None
    assert len(windows) == len(expected) == 5  # 6 s of video in 2 s windows every 1 s
    for detection, (start, end) in zip(windows, expected):
        first, last = detection.support
        assert (first - 1) / fps == pytest.approx(start, abs=1 / fps) and last / fps == pytest.approx(end, abs=1 / fps)
        assert np.linalg.norm(detection[FIELD]) == pytest.approx(1.0, abs=1e-5)
    assert len(dataset.to_clips(WINDOWS)) == 5  # the App lists the windows as clips and plays each

    with pytest.raises(Exception, match="already has a dataset named 'windows-test'"):
        load_index(tmp_path / "index", name="windows-test")

    # a copy of the short clip: the index's verified copies marked on the samples of the same files
    import shutil

    from semantic_moments.integrations.fiftyone import mark_copies

    shutil.copy(tmp_path / "videos" / "short.mp4", tmp_path / "videos" / "short copy.mp4")
    with Index.open(tmp_path / "index") as index:
        build_index(index, [tmp_path / "videos"], tiny_model)
    dataset = load_index(tmp_path / "index", name="windows-test", overwrite=True)
    assert mark_copies(dataset, tmp_path / "index") == 1
    marked = dataset.match_tags("copy")
    assert sorted(Path(path).name for path in marked.values("filepath")) == ["short copy.mp4", "short.mp4"]
    assert sorted(Path(entry[0]).name for entry in marked.values("copies")) == ["short copy.mp4", "short.mp4"]
    assert len(dataset.match_tags("copy", bool=False)) == 1  # the long video


def test_a_bad_file_is_recorded_on_its_sample_and_the_run_goes_on(fo, tiny_model, tmp_path):
    from semantic_moments.integrations.fiftyone import FIELD, MotionModel

    good = write_video(tmp_path / "good.mp4", moving_square(16, 64, (230, 60, 40), "right"), fps=16)
    bad = tmp_path / "bad.mp4"
    bad.write_text("this is not a video\n")
    dataset = fo.Dataset()
    dataset.add_samples([fo.Sample(filepath=str(good)), fo.Sample(filepath=str(bad))])
    dataset.compute_embeddings(MotionModel(tiny_model), embeddings_field=FIELD)
    values = dict(zip(dataset.values("filepath"), dataset.values(FIELD)))
    assert values[str(bad)] is None and np.asarray(values[str(good)]).ndim == 1
    # the model's own error for a file, in one line naming it
    with pytest.raises(Exception, match="bad.mp4"):
        MotionModel(tiny_model).embed(str(bad))
    # what FiftyOne passes: a reader of the whole file, or of a clips view's frame range (a segment)
    import eta.core.frameutils as etaf
    import eta.core.video as etav

    model = MotionModel(tiny_model)
    with etav.FFmpegVideoReader(str(good)) as reader:
        np.testing.assert_allclose(model.embed(reader), model.vector(tiny_model.embed(good)), atol=1e-6)
    with etav.FFmpegVideoReader(str(good), frames=etaf.FrameRange(5, 12)) as reader:
        np.testing.assert_allclose(model.embed(reader), model.vector(tiny_model.embed(good, segment=(4 / 16, 12 / 16))),
                                   atol=1e-6)


def test_only_the_integration_imports_fiftyone():
    source = Path(__file__).resolve().parents[1] / "src" / "semantic_moments"
    importers = [path.relative_to(source).as_posix() for path in source.rglob("*.py")
                 if "import fiftyone" in path.read_text() or "from fiftyone" in path.read_text()]
    assert importers == ["integrations/fiftyone.py"]
