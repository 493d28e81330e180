"""Retrieval and classification metrics over a cosine-similarity matrix. Pure NumPy, no I/O.

Conventions: ``similarity`` is an (N, N) matrix over every clip of a benchmark; a triplet is
(reference, positive, negative) row indices; ``distractors`` are indices of extra clips.

* **Recall@1** (the paper's metric): the positive is the reference's nearest neighbour over the whole
  pool, the reference itself masked.
* **triplet accuracy**: sim(ref, pos) > sim(ref, neg).
* **retrieval accuracy with distractors**: the positive is the nearest among {positive, negative,
  distractors}; **rank** is the positive's 1-based rank in that candidate set and, with one relevant
  item, average precision is 1 / rank (so mAP is the mean reciprocal rank).
* **kNN**: leave-one-out k-nearest-neighbour classification with a majority or distance-weighted
  vote; Acc@1 and Acc@5 (true class among the 5 best-voted).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def cosine_matrix(vectors: np.ndarray) -> np.ndarray:
    """(N, D) -> (N, N) cosine similarities in float64 (zero vectors give 0)."""
    matrix = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    unit = matrix / np.where(norms > 0, norms, 1.0)
    return unit @ unit.T


@dataclass(frozen=True)
class TripletScores:
    """Per-triplet outcomes (arrays of length n_triplets), ready to be averaged or bootstrapped."""

    recall_at_1: np.ndarray
    triplet_correct: np.ndarray
    retrieval_correct: np.ndarray
    positive_rank: np.ndarray
    average_precision: np.ndarray
    margin: np.ndarray  # sim(ref, pos) - sim(ref, neg)


def score_triplets(
    similarity: np.ndarray,
    triplets: np.ndarray,
    distractors: Sequence[Sequence[int]] | None = None,
    masked: Sequence[Sequence[int]] | None = None,
) -> TripletScores:
    """Score triplets (n, 3) of row indices.

    ``distractors[i]`` lists triplet i's distractor rows (None: retrieval is among positive and
    negative alone); ``masked[i]`` lists rows left out of triplet i's Recall@1 pool besides the
    reference (other correct answers, which are neither rewarded nor counted against).
    """
    triplets = np.asarray(triplets, dtype=np.int64).reshape(-1, 3)
    count = len(triplets)
    recall = np.zeros(count, dtype=bool)
    triplet_correct = np.zeros(count, dtype=bool)
    retrieval = np.zeros(count, dtype=bool)
    rank = np.zeros(count, dtype=np.int64)
    margin = np.zeros(count)
    for index, (reference, positive, negative) in enumerate(triplets):
        row = similarity[reference].astype(np.float64).copy()
        row[reference] = -np.inf
        if masked is not None and len(masked[index]):
            row[np.asarray(masked[index], dtype=np.int64)] = -np.inf
        # ties count against the positive: a method that maps everything to one point scores 0
        recall[index] = row[positive] > np.max(np.delete(row, [reference, positive]), initial=-np.inf)
        triplet_correct[index] = row[positive] > row[negative]
        margin[index] = row[positive] - row[negative]
        candidates = [negative] + list(distractors[index] if distractors is not None else [])
        competitors = row[np.asarray(candidates, dtype=np.int64)]
        rank[index] = 1 + int(np.sum(competitors >= row[positive]))
        retrieval[index] = rank[index] == 1
    return TripletScores(recall, triplet_correct, retrieval, rank, 1.0 / rank, margin)


@dataclass(frozen=True)
class KnnScores:
    """Per-query leave-one-out kNN outcomes (length N) and the appearance-trap rate per query."""

    majority_top1: np.ndarray
    majority_top5: np.ndarray
    weighted_top1: np.ndarray
    weighted_top5: np.ndarray
    appearance_trap: np.ndarray  # fraction of the k neighbours with the query's actor but not its class


def knn_classify(
    similarity: np.ndarray,
    labels: Sequence[str],
    actors: Sequence[str] | None = None,
    k: int = 20,
) -> KnnScores:
    """Leave-one-out kNN with majority and similarity-weighted votes. ``k`` is clamped to N - 1.

    Ties in a vote are broken by the summed similarity of the tied classes, then by name, so the
    result is deterministic.
    """
    labels = list(labels)
    count = len(labels)
    k = max(1, min(k, count - 1))
    results = {key: np.zeros(count, dtype=bool) for key in ("m1", "m5", "w1", "w5")}
    trap = np.zeros(count)
    for query in range(count):
        row = similarity[query].astype(np.float64).copy()
        row[query] = -np.inf
        neighbours = np.argsort(-row, kind="stable")[:k]
        majority: Counter[str] = Counter()
        weighted: dict[str, float] = {}
        for neighbour in neighbours:
            label = labels[neighbour]
            majority[label] += 1
            weighted[label] = weighted.get(label, 0.0) + max(float(row[neighbour]), 0.0)
        by_majority = sorted(majority, key=lambda name: (-majority[name], -weighted[name], name))
        by_weight = sorted(weighted, key=lambda name: (-weighted[name], -majority[name], name))
        truth = labels[query]
        results["m1"][query] = by_majority[0] == truth
        results["m5"][query] = truth in by_majority[:5]
        results["w1"][query] = by_weight[0] == truth
        results["w5"][query] = truth in by_weight[:5]
        if actors is not None:
            trap[query] = np.mean([actors[n] == actors[query] and labels[n] != truth for n in neighbours])
    return KnnScores(results["m1"], results["m5"], results["w1"], results["w5"], trap)


def bootstrap_interval(
    values: np.ndarray,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """(mean, low, high): the mean of per-item values and its percentile bootstrap interval."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(resamples, len(values)))].mean(axis=1)
    tail = (1.0 - confidence) / 2.0 * 100.0
    return float(values.mean()), float(np.percentile(means, tail)), float(np.percentile(means, 100.0 - tail))
