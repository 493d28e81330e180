"""Benchmarks: metrics, the synthetic generator, manifests, and a reduced end-to-end run."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from conftest import moving_square, write_video

from semantic_moments.bench import manifest as manifests
from semantic_moments.bench.methods import MAIN_NAME, PAPER_NAME
from semantic_moments.bench.metrics import bootstrap_interval, cosine_matrix, knn_classify, score_triplets
from semantic_moments.bench.synthetic import CATEGORIES, make_triplets, render
from semantic_moments.cli import main
from semantic_moments.errors import ConfigError

# -- metrics -------------------------------------------------------------------------------------


def test_triplet_metrics_on_a_hand_built_matrix():
    # clips: 0 ref, 1 pos, 2 neg, 3 distractor, 4 another correct answer (ignored)
    similarity = np.array([
        [1.0, 0.7, 0.5, 0.6, 0.9],
        [0.7, 1.0, 0.1, 0.1, 0.1],
        [0.5, 0.1, 1.0, 0.1, 0.1],
        [0.6, 0.1, 0.1, 1.0, 0.1],
        [0.9, 0.1, 0.1, 0.1, 1.0],
    ])
    scores = score_triplets(similarity, np.array([[0, 1, 2]]), distractors=[[3]], masked=[[4]])
    assert scores.recall_at_1.tolist() == [True]  # clip 4 is masked, so the positive is nearest
    assert scores.triplet_correct.tolist() == [True]
    assert scores.positive_rank.tolist() == [1] and scores.average_precision.tolist() == [1.0]
    unmasked = score_triplets(similarity, np.array([[0, 1, 2]]), distractors=[[3]])
    assert unmasked.recall_at_1.tolist() == [False]
    similarity[0, 3] = 0.8  # a distractor beats the positive
    worse = score_triplets(similarity, np.array([[0, 1, 2]]), distractors=[[3]], masked=[[4]])
    assert worse.retrieval_correct.tolist() == [False] and worse.positive_rank.tolist() == [2]
    assert worse.average_precision.tolist() == [0.5] and worse.triplet_correct.tolist() == [True]


def test_ties_count_against_the_positive():
    flat = np.ones((3, 3))
    scores = score_triplets(flat, np.array([[0, 1, 2]]))
    assert not scores.recall_at_1[0] and not scores.triplet_correct[0] and scores.positive_rank[0] == 2


def test_knn_votes_and_appearance_trap():
    vectors = np.array([[1, 0.0], [0.9, 0.1], [0.8, 0.2], [0, 1.0], [0.1, 0.9]])
    labels = ["a", "a", "b", "b", "b"]
    actors = ["x", "y", "x", "y", "z"]
    result = knn_classify(cosine_matrix(vectors), labels, actors, k=2)
    # query 0's neighbours are 1 (a) and 2 (b, same actor x: a trap)
    assert result.appearance_trap[0] == pytest.approx(0.5)
    # query 1 ties one vote each (0: a, 2: b); the tie goes to the higher summed similarity, a
    assert result.majority_top1.tolist() == [True, True, False, True, True]
    # query 2's neighbours are both class a: its class b gets no vote, so not even Acc@5 holds
    assert result.weighted_top5.tolist() == [True, True, False, True, True]


def test_bootstrap_interval_brackets_the_mean():
    values = np.array([1, 0, 1, 1, 0, 1, 1, 1, 0, 1], dtype=float)
    mean, low, high = bootstrap_interval(values, resamples=500)
    assert mean == pytest.approx(0.7) and low < mean < high and 0 <= low and high <= 1


# -- synthetic generator ---------------------------------------------------------------------------


def test_synthetic_triplets_follow_the_design():
    triplets = make_triplets(20, seed=5)
    assert [t.category for t in triplets[:5]] == list(CATEGORIES)
    again = make_triplets(20, seed=5)
    for triplet, twin in zip(triplets, again):
        reference = render(*triplet.reference, 8, 64)
        np.testing.assert_array_equal(reference, render(*twin.reference, 8, 64))  # deterministic
        negative = render(*triplet.negative, 8, 64)
        positive = render(*triplet.positive, 8, 64)
        # the hard negative starts from the same frame, with the same appearance...
        np.testing.assert_array_equal(reference[0], negative[0])
        # ...but moves differently (periodic motions may return to the start pose, so compare the
        # whole clip); the positive looks different (one factor changed)
        assert np.abs(reference.astype(int) - negative.astype(int)).mean() > 0.5
        assert np.abs(reference[0].astype(int) - positive[0].astype(int)).mean() > 0.5
        assert triplet.reference[1] == triplet.positive[1], "the positive has exactly the reference's motion"


# -- manifests -------------------------------------------------------------------------------------


@pytest.fixture
def labelled_tree(tmp_path):
    """6 clips: 3 classes x 2 actors; class = motion direction, actor = colour."""
    rows = []
    colours = {"red": (230, 40, 40), "blue": (40, 60, 230)}
    for label, direction in (("right", "right"), ("down", "down"), ("still", "still")):
        for actor, colour in colours.items():
            frames = moving_square(16, 64, colour, direction) if direction != "still" else \
                np.repeat(moving_square(1, 64, colour, "right"), 16, axis=0) + (np.arange(16) % 2)[:, None, None, None].astype(np.uint8)
            path = f"{label}/{actor}_{label}.mp4"
            write_video((tmp_path / path).parent.mkdir(exist_ok=True) or tmp_path / path, frames)
            rows.append({"path": path, "class": label, "actor_or_source": f"{actor}|studio"})
    with open(tmp_path / "labels.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "class", "actor_or_source"])
        writer.writeheader()
        writer.writerows(rows)
    return tmp_path


def test_real_manifest_from_labels_follows_the_rules(labelled_tree):
    built = manifests.build_from_labels(labelled_tree / "labels.csv", seed=1)
    label_of = {clip.path: clip for clip in built.clips}
    assert len(built.triplets) == 6 and len(built.distractors) == 6
    for triplet in built.triplets:
        reference, positive, negative = (label_of[p] for p in (triplet.reference, triplet.positive, triplet.negative))
        assert positive.label == reference.label and positive.actor != reference.actor
        assert negative.actor == reference.actor and negative.label != reference.label
    saved = built.save(labelled_tree / "out" / "manifest.json")
    loaded = manifests.load_manifest(saved)
    assert loaded.triplets == built.triplets and loaded.clips == built.clips
    assert loaded.resolve(loaded.triplets[0].reference).is_file()


def test_manifest_from_a_triplet_csv_with_distractors(labelled_tree):
    with open(labelled_tree / "triplets.csv", "w") as handle:
        handle.write("reference,positive,negative,category\nright/red_right.mp4,right/blue_right.mp4,down/red_down.mp4,walk\n")
    built = manifests.build_from_triplet_csv(labelled_tree / "triplets.csv", labelled_tree / "still")
    assert built.triplets[0].category == "walk"
    assert sorted(built.distractors) == ["still/blue_still.mp4", "still/red_still.mp4"]


def test_bad_manifests_are_refused_clearly(tmp_path):
    with pytest.raises(ConfigError, match="no such manifest"):
        manifests.load_manifest(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match="bad.json: not a JSON manifest"):
        manifests.load_manifest(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ConfigError, match="not a semantic-moments benchmark manifest"):
        manifests.load_manifest(tmp_path / "other.json")
    (tmp_path / "partial.json").write_text(json.dumps({"format": manifests.FORMAT_NAME, "triplets": [{"reference": "a"}]}))
    with pytest.raises(ConfigError, match="partial.json: malformed manifest entry"):
        manifests.load_manifest(tmp_path / "partial.json")


# -- end to end ------------------------------------------------------------------------------------


def _rows(report_dir):
    with open(report_dir / "results.csv") as handle:
        return list(csv.DictReader(handle))


def test_reduced_synthetic_benchmark_end_to_end(tmp_path, monkeypatch, capsys):
    data, report = tmp_path / "synthetic", tmp_path / "report"
    assert main(["bench", "make-synthetic", str(data), "--triplets", "5", "--seed", "2", "--size", "112",
                 "--seconds", "1.5", "--fps", "12", "--quiet"]) == 0
    assert len(list(data.rglob("*.mp4"))) == 15
    argv = ["bench", "run", str(data / "manifest.json"), "--report", str(report), "--backbone", "efficientnet-lite0",
            "--frames", "8", "--frames-sweep", "4,8", "--bootstrap", "100", "--quiet"]
    assert main(argv) == 0
    rows = _rows(report)
    value = {(row["method"], row["frames"], row["category"], row["metric"]): float(row["value"]) for row in rows}
    main_method = MAIN_NAME
    for method in (main_method, "mean pooling (appearance)", "optical flow (Farneback HOF)", "pixel difference",
                   PAPER_NAME, "token flow only", "moments only (1,8,4), no flow", "flow: 1 segment (no temporal order)",
                   "moments: frame-level", "moments: additive fusion", "moments: orders 1,2", "HOF+MBH (Farneback)",
                   "optical flow (Farneback HOF), the default's sampling", "pixel difference, the default's sampling",
                   "sampling: T=16 over the whole clip (the slow preset)", "keypoints: none (the flow preset)",
                   "keypoints only: body + hands", "keypoints: body + hands, weight 16",
                   "keypoints: body + hands, weight 8, missing = zeros",
                   "flow + HOF of token flow (candidate, not kept)", "flow + MBH of token flow (candidate, not kept)"):
        assert any(key[0] == method for key in value), f"{method} missing from the report"
    assert (main_method, "4", "all", "recall_at_1") in value, "the frame-count sweep is reported"
    assert {key[2] for key in value} == {"all", *CATEGORIES}
    # the method's claim on this reduced set: motion beats appearance
    assert value[(main_method, "8", "all", "triplet_accuracy")] > value[("mean pooling (appearance)", "8", "all", "triplet_accuracy")]
    text = (report / "report.md").read_text()
    assert "| method |" in text and "per category" in text
    assert (report / "synthetic-seed2_categories.png").stat().st_size > 1000
    cached = sorted((report / "feature-cache").glob("*.safetensors"))
    # 15 clips x (blocks.7: T=8 and T=4 at the preset's rate; the sampling rows: T=16 over the whole clip, T=32 over
    # the whole clip, at least 4/s and at least 8/s, T=16 at 8/s; the paper's blocks.10 at T=32; baselines on 32
    # uniform frames and on the default's sampling; the keypoints' landmarks)
    assert len(cached) == 15 * 11

    # a second run reads every feature from the cache: the backbone is never called
    import semantic_moments.bench.runner as runner

    monkeypatch.setattr(runner, "moment_features", lambda *args: pytest.fail("recomputed a cached clip"))
    assert main(argv + ["--no-plots"]) == 0
    assert _rows(report) == rows


def test_real_benchmark_with_knn_skips_bad_clips(labelled_tree, tmp_path):
    manifest = manifests.build_from_labels(labelled_tree / "labels.csv", seed=0)
    (labelled_tree / "down" / "blue_down.mp4").write_text("corrupted")
    path = manifest.save(tmp_path / "real.json")
    report = tmp_path / "report"
    assert main(["bench", "run", str(path), "--report", str(report), "--backbone", "test-tiny", "--frames", "8",
                 "--frames-sweep", "8", "--bootstrap", "50", "--knn-k", "3", "--quiet", "--no-plots"]) == 0
    rows = _rows(report)
    metrics = {row["metric"] for row in rows}
    assert {"knn_majority_acc1", "knn_weighted_acc5", "appearance_trap_rate", "recall_at_1"} <= metrics
    results = json.loads((report / "results.json").read_text())
    failures = results["failures"][manifest.name]
    assert list(failures) == ["down/blue_down.mp4"] and "not a readable video" in failures["down/blue_down.mp4"]
    assert results["dropped_triplets"][manifest.name], "triplets using the bad clip are dropped and listed"
    assert "1 clip(s) failed" in (report / "report.md").read_text()


def test_mirrored_twins_make_sided_classes_and_are_read_flipped(labelled_tree, tmp_path):
    built = manifests.build_from_labels(labelled_tree / "labels.csv", seed=0, mirror_asymmetric=["right"])
    labels = {clip.path: clip.label for clip in built.clips}
    assert len(labels) == 12 and built.name.endswith("-mirrored")
    assert labels["right/red_right.mp4#hflip"] == "right (mirrored)" and labels["down/red_down.mp4#hflip"] == "down"
    assert built.resolve("right/red_right.mp4#hflip") == built.resolve("right/red_right.mp4")
    with pytest.raises(ConfigError, match="no clips of the class"):
        manifests.build_from_labels(labelled_tree / "labels.csv", mirror_asymmetric=["jump"])
    path = built.save(tmp_path / "mirrored.json")
    report = tmp_path / "report"
    assert main(["bench", "run", str(path), "--report", str(report), "--backbone", "test-tiny", "--frames", "8",
                 "--frames-sweep", "8", "--bootstrap", "50", "--quiet", "--no-plots", "--methods", "main,baseline"]) == 0
    results = json.loads((report / "results.json").read_text())
    assert not results["failures"][built.name]
    assert {row["group"] for row in results["rows"]} == {"main", "baseline"}  # --methods chose these groups
    # a clip and its mirror twin are cached apart: 12 clips x (test-tiny at T=8 and the preset's rate, the pixel
    # baselines on 32 uniform frames and on that sampling, the default's keypoints' landmarks)
    assert len(list((report / "feature-cache").glob("*.safetensors"))) == 12 * 4


def test_labels_with_paths_relative_to_another_folder_say_so(labelled_tree, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "labels.csv").write_text((labelled_tree / "labels.csv").read_text())
    with pytest.raises(ConfigError, match="6 listed paths are not there: right/red_right.mp4.*--root"):
        manifests.build_from_labels(elsewhere / "labels.csv")
    assert len(manifests.build_from_labels(elsewhere / "labels.csv", root=labelled_tree).clips) == 6


def test_plots_say_all_zero_and_keep_their_legend(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from semantic_moments.bench.report import write_report
    from semantic_moments.bench.runner import BenchmarkResult

    manifest = manifests.Manifest("flat", "real", tmp_path, ())
    rows = [{"dataset": "flat", "method": "m", "group": group, "backbone": "b", "frames": frames, "key": f"m{frames}",
             "category": "all", "metric": "recall_at_1", "value": 0.0, "low": 0.0, "high": 0.0, "n": 5}
            for group, frames in (("main", 16), ("frames", 8))]
    texts, limits, saved = [], [], []
    monkeypatch.setattr(Axes, "text", lambda self, x, y, s, **kw: texts.append(s))
    real_ylim, real_save = Axes.set_ylim, Figure.savefig
    monkeypatch.setattr(Axes, "set_ylim", lambda self, *a, **kw: limits.append(a) or real_ylim(self, *a, **kw))
    monkeypatch.setattr(Figure, "savefig", lambda self, *a, **kw: saved.append(kw) or real_save(self, *a, **kw))
    write_report([BenchmarkResult(manifest, rows=rows)], tmp_path / "report", {}, plots=True, failure_examples=0)
    assert texts.count("all zero") == 2  # the category bars and the flat frame-count curve
    assert (-0.02, 1.02) in limits, "a flat curve is drawn on Recall@1's own range"
    assert saved[0].get("bbox_inches") == "tight", "the legend outside the axes is kept whole"
