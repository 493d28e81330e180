"""Stored rows and the exact cosine under query-time weights. Pure NumPy, no I/O.

An index stores each clip (or window) as one float32 row: its raw parts laid out one after another
(``moment.K`` per order, then ``flow.G`` per token-flow level; the ``parts`` setting gives names and
sizes). In the reference convention every part is L2-normalised before weighting, so with unit
blocks x_k and weights w_k the fused cosine is

    cos(q, x; w) = sum_k w_k^2 <q_k, x_k> / (||w||_q ||w||_x),

||w||_x = sqrt(sum of w_k^2 over the parts of x that are not zero) (a still clip's motion parts are
zero and carry no weight). ``weighted_scores`` computes it for many rows at once.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import ConfigError

import numpy as np


def part_key(name: str) -> int | str:
    """``"moment.2"`` -> 2; ``"flow.4"`` stays ``"flow.4"``."""
    return int(name.split(".")[1]) if name.startswith("moment.") else name


def part_name(key: int | str) -> str:
    """2 -> ``"moment.2"``; ``"flow.4"`` stays."""
    return f"moment.{key}" if isinstance(key, int) else str(key)


def unit_blocks(raw: np.ndarray, sizes: Sequence[int]) -> np.ndarray:
    """(N, sum(sizes)) raw parts -> float32, every part a unit vector (an all-zero part stays zero)."""
    raw = np.asarray(raw, dtype=np.float64)
    units = np.empty(raw.shape, dtype=np.float32)
    start = 0
    for size in sizes:
        block = raw[:, start:start + size]
        norms = np.linalg.norm(block, axis=1, keepdims=True)
        units[:, start:start + size] = np.where(norms > 1e-12, block / np.maximum(norms, 1e-12), 0.0)
        start += size
    return units


def present_parts(units: np.ndarray, sizes: Sequence[int]) -> np.ndarray:
    """(N, K) float64: 1.0 where row n's part k is not all zero."""
    if len(units) == 0:
        return np.zeros((0, len(sizes)))
    bounds = np.cumsum([0, *sizes])
    return np.stack([np.abs(units[:, a:b]).sum(axis=1) > 0 for a, b in zip(bounds[:-1], bounds[1:])],
                    axis=1).astype(np.float64)


def weighted_query(raw_query: np.ndarray, weights: Sequence[float], sizes: Sequence[int]) -> np.ndarray:
    """(D,) float32 unit blocks of the query times w_k^2: one inner product with a row's unit blocks
    gives the numerator of the fused cosine."""
    units = unit_blocks(np.asarray(raw_query)[None], sizes)[0]
    return (units * np.repeat(np.square(weights), sizes)).astype(np.float32)


def weighted_scores(units: np.ndarray, present: np.ndarray, raw_query: np.ndarray, weights: Sequence[float],
                    sizes: Sequence[int], shared: Sequence[bool] | None = None) -> np.ndarray:
    """(N,) the exact fused cosine (module doc) of every row with the query; parts marked ``shared``
    count only where both hold them (``fused_cosines``)."""
    if len(units) == 0:
        return np.zeros(0)
    if shared is not None and any(shared):
        return fused_cosines(unit_blocks(np.asarray(raw_query)[None], sizes), units, weights, sizes, shared,
                             present_b=present)[0]
    squared = np.square(weights)
    query_present = present_parts(unit_blocks(np.asarray(raw_query)[None], sizes), sizes)[0]
    norms = np.sqrt(present @ squared) * float(np.sqrt(query_present @ squared))
    return (units @ weighted_query(raw_query, weights, sizes)) / np.where(norms > 0, norms, 1.0)


def fused_cosines(units_a: np.ndarray, units_b: np.ndarray, weights: Sequence[float], sizes: Sequence[int],
                  shared: Sequence[bool] | None = None, present_a: np.ndarray | None = None,
                  present_b: np.ndarray | None = None) -> np.ndarray:
    """(Na, Nb) fused cosines of unit-block rows (module doc), where a part marked ``shared`` counts in
    a pair only when both rows hold it (a keypoint part that saw nothing in one clip says nothing
    about the pair); the other parts count on each side that holds them, as ``weighted_scores``.
    ``present_a``/``present_b``: ``present_parts`` of either side where already known (an index's
    matrix keeps its rows')."""
    squared = np.square(np.asarray(weights, dtype=np.float64))
    shared = np.zeros(len(sizes), bool) if shared is None else np.asarray(shared, bool)
    present_a = present_parts(units_a, sizes) if present_a is None else present_a
    present_b = present_parts(units_b, sizes) if present_b is None else present_b
    numerator = (np.asarray(units_a, np.float64) * np.repeat(squared, sizes)) @ np.asarray(units_b, np.float64).T
    own_a = present_a[:, ~shared] @ squared[~shared]
    own_b = present_b[:, ~shared] @ squared[~shared]
    both = (present_a[:, shared] * squared[shared]) @ present_b[:, shared].T
    denominator = np.sqrt((own_a[:, None] + both) * (own_b[None, :] + both))
    return numerator / np.where(denominator > 0, denominator, 1.0)


def part_similarities(units: np.ndarray, raw_query: np.ndarray, parts: Sequence[Sequence]) -> list[dict[int | str, float]]:
    """Per row, the cosine of each part with the query's: {order: cosine}, ``"flow"``: the mean over
    the flow levels (the levels together, as they are weighted together), and each keypoint part by
    its source's name (``"pose"``, ``"hands"``) where both hold it (absent where one saw nothing)."""
    sizes = [int(size) for _, size in parts]
    query_units = unit_blocks(np.asarray(raw_query)[None], sizes)
    products = np.atleast_2d(units) * query_units
    held = present_parts(np.atleast_2d(units), sizes) * present_parts(query_units, sizes)
    keys, per_part, start = [], [], 0
    for name, size in parts:
        keys.append(part_key(name))
        per_part.append(products[:, start:start + int(size)].sum(axis=1))
        start += int(size)
    flow = [i for i, key in enumerate(keys) if isinstance(key, str) and key.startswith("flow.")]
    keypoints = [i for i, key in enumerate(keys) if isinstance(key, str) and key.startswith("keypoints.")]
    result = []
    for row in range(products.shape[0]):
        similarities: dict[int | str, float] = {key: float(per_part[i][row]) for i, key in enumerate(keys)
                                                if isinstance(key, int)}
        if flow:
            similarities["flow"] = float(sum(per_part[i][row] for i in flow) / len(flow))
        for i in keypoints:  # "pose", "hands": only where both saw something
            if held[row, i]:
                similarities[str(keys[i]).split(".", 1)[1]] = float(per_part[i][row])
        result.append(similarities)
    return result


def row_problem(blob: object, width: int) -> str | None:
    """Why a stored row (a float32 blob of ``width`` values) is unusable, or None."""
    if not isinstance(blob, bytes) or len(blob) != 4 * width:
        size = len(blob) if isinstance(blob, (bytes, str)) else type(blob).__name__
        return f"has a row of {size} bytes, expected {4 * width}"
    if not np.isfinite(np.frombuffer(blob, dtype=np.float32)).all():
        return "has NaN or infinite values"
    return None


NEGATIVE_WEIGHT = 0.5  # how much a negative example's similarity counts against a clip (search, documented there)
MAX_NEGATIVE_WEIGHT = 10.0  # beyond, the examples stop mattering: scores are the negatives' alone


def validate_negative_weight(weight: float) -> float:
    """The weight as a float; ConfigError unless it is finite and non-negative."""
    try:
        value = float(weight)
    except (TypeError, ValueError):
        raise ConfigError(f"negative_weight must be a number, got {weight!r}") from None
    if not 0.0 <= value <= MAX_NEGATIVE_WEIGHT:
        raise ConfigError(f"negative_weight must be between 0 and {MAX_NEGATIVE_WEIGHT:g}, got {weight!r}")
    return value


def combined_scores(positive: Sequence[np.ndarray], negative: Sequence[np.ndarray],
                    negative_weight: float = NEGATIVE_WEIGHT) -> np.ndarray:
    """(N,) the ranking score of several examples: the mean cosine with the positives minus
    ``negative_weight`` times the mean cosine with the negatives; one positive alone: its cosine."""
    score = np.mean(np.stack(positive), axis=0)
    if len(negative):
        score = score - negative_weight * np.mean(np.stack(negative), axis=0)
    return score
