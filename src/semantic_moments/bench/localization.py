"""Localisation benchmark: where in a long video does the query's motion happen?

Long videos are made by concatenating labelled clips of ONE actor (the same person, or the same
synthetic scene) with still stretches between them, with the true (start, end, class) of every
clip recorded; a query is another clip of a class by ANOTHER actor, so appearance cannot give the
answer away. The gallery of a query is every long video of the other actors.

* real (``make_real``): the arm-action set (``../shared/data/ud810_arm_actions``): per person and
  per left-out class, the trials 1-2 of the two other classes in a seeded order (4 clips, about
  25 s); the trial-3 clips are the queries. 9 videos, 9 queries.
* real (``make_real_signers``): WLASL: every signer with at least 5 clips gives videos of 5 of their
  signs; the clips of the other signers are the queries (harder: 40 signs, many sources).
* synthetic (``make_synthetic``): per scene, 3 of 5 motion families (one fixed motion each) in a
  seeded order; queries are the same motions over other scenes.

Metrics per query (bootstrap intervals over queries): R@1 of the right video (the best video holds
the class), R@1 of the right segment (the best segment overlaps a true segment of the class by
temporal IoU >= 0.5), and AP at tIoU 0.3/0.5/0.7 over every segment kept by non-maximum
suppression (up to 10 per video), ActivityNet-style (each true segment matched once, in score
order); the mean over queries is mAP. Methods score windows of the same plan: SemanticMoments
(the default, moments + token flow), its moments alone, mean pooling (appearance: M(1)),
Farnebäck optical flow and pixel differences per window, and the whole-video embedding (one
segment: the whole video; it can find the video, not the moment).
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..windows import WindowPlan, best_first, non_maximum_suppression, temporal_iou
from .metrics import bootstrap_interval

STILL_SECONDS = 2.5
THRESHOLDS = (0.3, 0.5, 0.7)
METHODS = ("SemanticMoments (default)", "moments only (no flow)", "mean pooling (appearance)",
           "optical flow (Farneback)", "pixel difference", "whole-video embedding")


@dataclass
class Manifest:
    name: str
    videos: list[dict[str, Any]]  # {"path", "actor", "segments": [[start, end, class], ...]}
    queries: list[dict[str, Any]]  # {"path", "actor", "class"}
    root: Path

    def save(self) -> Path:
        path = self.root / "localization.json"
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps({"name": self.name, "videos": self.videos, "queries": self.queries}, indent=1))
        os.replace(temporary, path)
        return path


def load(path: str | os.PathLike[str]) -> Manifest:
    path = Path(path)
    data = json.loads(path.read_text())
    return Manifest(data["name"], data["videos"], data["queries"], path.parent)


def _concatenate(out: Path, clips: Sequence[np.ndarray], labels: Sequence[str], fps: float,
                 rng: np.random.Generator) -> list[list[Any]]:
    """Write clips with still stretches (each clip's first frame held) between and around them;
    returns the true [start, end, class] of every clip."""
    from ..video import write_video

    pieces, segments, time = [], [], 0.0
    still = int(round(STILL_SECONDS * fps))
    for frames, label in zip(clips, labels):
        hold = still + int(rng.integers(0, still // 2 + 1))
        pieces.append(np.repeat(frames[:1], hold, axis=0))
        time += hold / fps
        pieces.append(frames)
        segments.append([round(time, 4), round(time + len(frames) / fps, 4), label])
        time += len(frames) / fps
    pieces.append(np.repeat(clips[-1][-1:], still, axis=0))
    write_video(out, np.concatenate(pieces), fps=fps)
    return segments


def make_real(labels_csv: Path, out: Path, seed: int = 0, prefix: str = "ud810_arm_actions/",
              size: tuple[int, int] = (240, 320)) -> Path:
    """The real localisation set (module doc) from ``labels.csv``; returns the manifest path."""
    from ..video import VideoReader, read_clip

    rows = [row for row in csv.DictReader(open(labels_csv)) if row["path"].startswith(prefix)]
    root = labels_csv.parent
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    classes = sorted({row["class"] for row in rows})
    people = sorted({row["actor_or_source"].split("|")[0] for row in rows})
    videos, queries = [], []
    fps = 30.0
    for person in people:
        mine = [row for row in rows if row["actor_or_source"].split("|")[0] == person]
        for row in mine:
            if row["actor_or_source"].endswith("|T3"):
                queries.append({"path": str((root / row["path"]).resolve()), "actor": person, "class": row["class"]})
        for left_out in classes:
            chosen = [row for row in mine if row["class"] != left_out and not row["actor_or_source"].endswith("|T3")]
            chosen = [chosen[i] for i in rng.permutation(len(chosen))]
            clips = []
            for row in chosen:
                with VideoReader(root / row["path"], threads=1) as reader:
                    count, fps = reader.num_frames, reader.fps or fps
                clips.append(read_clip(root / row["path"], count, size, decode_threads=1).frames)  # every frame
            name = f"{person}_without_{left_out}.mp4"
            segments = _concatenate(out / name, clips, [row["class"] for row in chosen], fps, rng)
            videos.append({"path": name, "actor": person, "segments": segments})
    return Manifest("arm actions (real, ud810)", videos, queries, out).save()


def make_real_signers(labels_csv: Path, out: Path, seed: int = 0, prefix: str = "wlasl100_subset/",
                      clips_per_video: int = 5, size: tuple[int, int] = (240, 320)) -> Path:
    """The WLASL localisation set: every signer with at least ``clips_per_video`` clips gives long
    videos of ``clips_per_video`` of their signs each (frames resized to one size, one frame rate);
    the clips of the other signers whose sign is in some video are the queries."""
    from ..video import VideoReader, read_clip

    rows = [row for row in csv.DictReader(open(labels_csv)) if row["path"].startswith(prefix)]
    root = labels_csv.parent
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    signer = lambda row: row["actor_or_source"].split("|")[0]  # noqa: E731
    counts: dict[str, int] = {}
    for row in rows:
        counts[signer(row)] = counts.get(signer(row), 0) + 1
    videos, shown = [], set()
    fps = 25.0
    for person in sorted(name for name, count in counts.items() if count >= clips_per_video):
        mine = [row for row in rows if signer(row) == person]
        mine = [mine[i] for i in rng.permutation(len(mine))]
        for number in range(len(mine) // clips_per_video):
            chosen = mine[number * clips_per_video:(number + 1) * clips_per_video]
            clips = []
            for row in chosen:
                with VideoReader(root / row["path"], threads=1) as reader:
                    seconds = reader.duration_seconds
                count = max(2, int(round(seconds * fps)))  # every clip at one frame rate, time kept
                clips.append(read_clip(root / row["path"], count, size, decode_threads=1).frames)
            name = f"{person}_{number}.mp4"
            segments = _concatenate(out / name, clips, [row["class"] for row in chosen], fps, rng)
            videos.append({"path": name, "actor": person, "segments": segments})
            shown.update(row["class"] for row in chosen)
    queries = [{"path": str((root / row["path"]).resolve()), "actor": signer(row), "class": row["class"]}
               for row in rows if counts[signer(row)] < clips_per_video and row["class"] in shown]
    return Manifest("WLASL signs (real)", videos, queries, out).save()


def make_synthetic(out: Path, seed: int = 0, scenes: int = 6, size: int = 128, fps: float = 16.0,
                   seconds: float = 3.0) -> Path:
    """The synthetic localisation set (module doc); returns the manifest path."""
    from ..video import write_video
    from .synthetic import Motion, random_scene, render

    rng = np.random.default_rng(seed)
    families = ("line", "circle", "spin", "zoom", "oscillate")
    motions = {family: Motion(family, direction=0.6, amount=0.33, cycles=1.0, sign=1.0) for family in families}
    frames = int(round(seconds * fps))
    out.mkdir(parents=True, exist_ok=True)
    videos, queries = [], []
    for number in range(scenes):
        scene = random_scene(rng)
        chosen = [str(family) for family in rng.choice(families, size=3, replace=False)]
        clips = [render(scene, motions[family], frames, size) for family in chosen]
        name = f"scene{number}.mp4"
        videos.append({"path": name, "actor": f"scene{number}",
                       "segments": _concatenate(out / name, clips, chosen, fps, rng)})
    for number, family in enumerate(families * 2):
        scene = random_scene(rng)
        name = f"query{number}_{family}.mp4"
        write_video(out / name, render(scene, motions[family], frames, size), fps=fps)
        queries.append({"path": name, "actor": f"query-scene{number}", "class": family})
    return Manifest("synthetic motions", videos, queries, out).save()


# -- scoring ----------------------------------------------------------------------------------------


def _unit(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float64)
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    return matrix / np.where(norms > 0, norms, 1.0)


def extract(manifest: Manifest, model, plan: WindowPlan, show_progress: bool = False) -> dict[str, Any]:
    """Per method: window vectors and bounds per video, and a vector per query."""
    from ..video import sample_video
    from ..video import read_clip
    from .baselines import optical_flow, pixel_difference

    variants = {"SemanticMoments (default)": {}, "moments only (no flow)": {"flow_weight": 0.0},
                "mean pooling (appearance)": {"alpha": (1.0, 0.0, 0.0), "flow_weight": 0.0}}
    features: dict[str, Any] = {method: {"windows": [], "queries": []} for method in METHODS}
    items = manifest.videos
    if show_progress:
        from tqdm.auto import tqdm

        items = tqdm(items, desc=f"{manifest.name}: videos", unit="video")
    for video in items:
        path = manifest.root / video["path"]
        embeddings = list(model.iter_windows(path, plan))
        whole, windows = embeddings[-1], embeddings[:-1]
        bounds = np.array([window.segment for window in windows])
        for method, options in variants.items():
            features[method]["windows"].append((bounds, _unit(np.stack([w.vector(**options) for w in windows]))))
        features["whole-video embedding"]["windows"].append(
            (np.array([[0.0, whole.duration_seconds]]), _unit(whole.vector()[None])))
        with sample_video(path, plan.rate, (160, 160), decode_threads=1) as samples:
            frames = np.concatenate(list(samples.chunks(256)))
        step = plan.stride_frames
        starts = range(0, len(frames) - plan.frames + 1, step)
        for method, function in (("optical flow (Farneback)", optical_flow), ("pixel difference", pixel_difference)):
            vectors = np.stack([function(frames[s:s + plan.frames]) for s in starts])
            features[method]["windows"].append((np.array([plan.bounds(s) for s in starts]), vectors))
    for query in manifest.queries:
        path = manifest.root / query["path"]
        embedding = model.embed(path)
        for method, options in variants.items():
            features[method]["queries"].append(_unit(embedding.vector(**options)))
        features["whole-video embedding"]["queries"].append(_unit(embedding.vector()))
        clip = read_clip(path, plan.frames, (160, 160), decode_threads=1)
        features["optical flow (Farneback)"]["queries"].append(optical_flow(clip.frames))
        features["pixel difference"]["queries"].append(pixel_difference(clip.frames))
    for method in ("optical flow (Farneback)", "pixel difference"):  # standardised over all windows, then unit
        stacked = np.concatenate([vectors for _, vectors in features[method]["windows"]])
        mean, spread = stacked.mean(axis=0), stacked.std(axis=0) + 1e-6
        features[method]["windows"] = [(bounds, _unit((vectors - mean) / spread))
                                       for bounds, vectors in features[method]["windows"]]
        features[method]["queries"] = [_unit((np.asarray(q) - mean) / spread) for q in features[method]["queries"]]
    return features


def average_precision(detections: Sequence[tuple[float, int, float, float]], truths: Sequence[tuple[int, float, float]],
                      threshold: float) -> float:
    """AP of (score, video, start, end) detections against true (video, start, end) segments: each
    true segment matched at most once, best scores first; precision interpolated (VOC/ActivityNet)."""
    if not truths:
        return float("nan")
    matched = [False] * len(truths)
    hits = []
    for score, video, start, end in sorted(detections, key=lambda d: -d[0]):
        best, which = threshold, None
        for number, (true_video, true_start, true_end) in enumerate(truths):
            if true_video == video and not matched[number]:
                overlap = temporal_iou((start, end), (true_start, true_end))
                if overlap >= best:
                    best, which = overlap, number
        if which is not None:
            matched[which] = True
        hits.append(which is not None)
    hits_array = np.array(hits, dtype=np.float64)
    true_positives = np.cumsum(hits_array)
    precision = true_positives / np.arange(1, len(hits_array) + 1)
    recall = true_positives / len(truths)
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # interpolated
    previous, total = 0.0, 0.0
    for p, r in zip(precision, recall):
        total += p * (r - previous)
        previous = r
    return float(total)


def evaluate(manifest: Manifest, features: dict[str, Any], resamples: int = 1000,
             per_video: int = 10) -> dict[str, dict[str, tuple[float, float, float]]]:
    """{method: {metric: (mean, low, high)}} (module doc)."""
    results: dict[str, dict[str, tuple[float, float, float]]] = {}
    for method in METHODS:
        windows, queries = features[method]["windows"], features[method]["queries"]
        per_query: dict[str, list[float]] = {"video R@1": [], "segment R@1 (tIoU 0.5)": [],
                                             **{f"AP@{t}": [] for t in THRESHOLDS}}
        for query, vector in zip(manifest.queries, queries):
            gallery = [i for i, video in enumerate(manifest.videos) if video["actor"] != query["actor"]]
            truths = [(i, start, end) for i in gallery for start, end, label in manifest.videos[i]["segments"]
                      if label == query["class"]]
            detections = []
            best_video = (-np.inf, None)
            for i in gallery:
                bounds, vectors = windows[i]
                scores = vectors @ vector
                kept = non_maximum_suppression(bounds, best_first(scores, bounds[:, 0]), per_video)
                detections += [(float(scores[k]), i, float(bounds[k][0]), float(bounds[k][1])) for k in kept]
                if scores.max() > best_video[0]:
                    best_video = (float(scores.max()), i)
            holds = {i for i, _, _ in truths}
            per_query["video R@1"].append(float(best_video[1] in holds))
            top = max(detections, key=lambda d: d[0])
            per_query["segment R@1 (tIoU 0.5)"].append(float(any(
                v == top[1] and temporal_iou((top[2], top[3]), (s, e)) >= 0.5 for v, s, e in truths)))
            for threshold in THRESHOLDS:
                per_query[f"AP@{threshold}"].append(average_precision(detections, truths, threshold))
        results[method] = {metric: bootstrap_interval(np.array(values), resamples) for metric, values in per_query.items()}
        results[method]["mAP (mean over tIoU)"] = bootstrap_interval(
            np.mean([per_query[f"AP@{t}"] for t in THRESHOLDS], axis=0), resamples)
    return results


def chance_video_recall(manifest: Manifest) -> float:
    """R@1 of the right video by picking a gallery video at random (the floor of that metric)."""
    rates = []
    for query in manifest.queries:
        gallery = [video for video in manifest.videos if video["actor"] != query["actor"]]
        rates.append(np.mean([any(label == query["class"] for _, _, label in video["segments"]) for video in gallery]))
    return float(np.mean(rates))


def plot_timeline(manifest: Manifest, features: dict[str, Any], path: Path, query_number: int = 0) -> Path:
    """Score along the first gallery video of a query for each method, the true segments marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    query = manifest.queries[query_number]
    target = next(i for i, video in enumerate(manifest.videos) if video["actor"] != query["actor"]
                  and any(label == query["class"] for _, _, label in video["segments"]))
    figure, axis = plt.subplots(figsize=(9, 3.2))
    for start, end, label in manifest.videos[target]["segments"]:
        colour = "tab:green" if label == query["class"] else "0.85"
        axis.axvspan(start, end, color=colour, alpha=0.35 if label == query["class"] else 0.6, lw=0)
    for method in METHODS[:5]:
        bounds, vectors = features[method]["windows"][target]
        scores = vectors @ features[method]["queries"][query_number]
        centres = bounds.mean(axis=1)
        spread = scores.max() - scores.min()
        axis.plot(centres, (scores - scores.min()) / (spread if spread > 0 else 1), label=method, lw=1.4)
    axis.set_xlabel("time in the long video (s)")
    axis.set_ylabel("window score (min-max per method)")
    axis.set_title(f"query: {query['class']} by {query['actor']}; green: its true segments, grey: other actions",
                   fontsize=9)
    axis.legend(fontsize=7, loc="upper left", ncol=2)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def report(results: dict[str, dict[str, dict[str, tuple[float, float, float]]]], manifests: Sequence[Manifest],
           plan: WindowPlan, plots: Sequence[str]) -> str:
    """Markdown tables, one per set."""
    lines = ["# Localisation benchmark", "",
             f"Windows: {plan.describe()}. Query: a clip of a class by another actor; gallery: the long videos of "
             "the other actors. Mean [95% bootstrap interval over queries].", ""]
    for manifest in manifests:
        table = results[manifest.name]
        metrics = list(next(iter(table.values())))
        lines += [f"## {manifest.name}: {len(manifest.videos)} videos, {len(manifest.queries)} queries", "",
                  f"Chance R@1 of the right video: {chance_video_recall(manifest):.2f}.", "",
                  "| method | " + " | ".join(metrics) + " |", "|---" * (len(metrics) + 1) + "|"]
        for method, values in table.items():
            lines.append(f"| {method} | " + " | ".join(f"{m:.2f} [{lo:.2f}, {hi:.2f}]" for m, lo, hi in values.values())
                         + " |")
        lines.append("")
    lines += [f"![score along a video]({plot})" for plot in plots]
    return "\n".join(lines) + "\n"
