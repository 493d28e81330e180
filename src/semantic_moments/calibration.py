"""Reading scores against the collection: a score's percentile among all indexed pairs, and the
appearance-to-motion knob balanced by each part's share of the score's spread.

Both are computed from up to ``sample`` evenly spaced indexed clips and cached on the index per
generation, so they follow the collection as it grows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from .errors import IndexStoreError

if TYPE_CHECKING:
    from .index import Index


def percentile(index: Index, scores: Sequence[float], alpha: Sequence[float] | None = None,
               flow_weight: float | None = None, sample: int = 1000) -> list[float]:
    """Where each score lies among the scores of all pairs of indexed clips under the same
    weights: the percentage of pairs scoring lower (0-100). The pairs come from up to ``sample``
    clips (a fixed, evenly spaced choice), computed once per generation and weights. A raw cosine
    means little alone (every pair of a collection may score 0.7-0.9); its percentile says how
    unusual a match is in this collection."""
    weights = index._weights(alpha, flow_weight)
    key = (index.generation, weights, sample)
    if index._percentile_cache is None or index._percentile_cache[0] != key:
        ids, raw, _ = index._matrix()
        chosen = raw[np.linspace(0, len(raw) - 1, min(sample, len(raw))).astype(int)] if len(raw) else raw
        fused = index._fused(chosen, weights) if len(chosen) else np.zeros((0, 1))
        pairs = (fused @ fused.T)[np.triu_indices(len(fused), 1)]
        index._percentile_cache = (key, np.sort(pairs))
    pairs = index._percentile_cache[1]
    if len(pairs) == 0:
        return [float("nan")] * len(scores)
    return [float(100.0 * np.searchsorted(pairs, score, side="left") / len(pairs)) for score in scores]


def motion_weights(index: Index, motion: float, sample: int = 1000) -> tuple[tuple[float, ...], float]:
    """(alpha, flow weight) of the one appearance-to-motion knob, ``motion`` in [0, 1].

    0 is appearance only (M(1)), 1 motion only (M(2..), flow), 0.5 the index's own weights. In
    between, the knob moves the share of the score's *spread over this collection* that the motion
    parts carry, linearly from 0 to the index's own share (at 0.5) and on to 1: raw weights would
    not do (with the default weights M(1) carries under 1% of the squared weight, so a raw knob
    acts only near 0). The spread of a part is the standard deviation of its cosine over pairs of
    up to ``sample`` indexed clips, cached per generation.
    """
    from .index import motion_alpha

    motion_alpha(motion)  # validates the range
    config = index.config
    if config is None:
        raise IndexStoreError(f"{index.path}: the index is empty")
    alpha, flow = config.alpha_for(tuple(index._setting("orders"))), config.flow_weight
    spreads = part_spreads(index, sample)
    names = [name for name, _ in index.parts]
    weights = dict(zip(names, index._weights(alpha, flow)))
    appearance = [name for name in names if name == "moment.1"]
    moving = [name for name in names if name != "moment.1"]
    energy_a = sum(weights[name] ** 2 * spreads[name] for name in appearance)
    energy_b = sum(weights[name] ** 2 * spreads[name] for name in moving)
    if energy_a <= 0 or energy_b <= 0:  # nothing to balance (e.g. every clip still): the plain knob
        return motion_alpha(motion, alpha), index.motion_flow_weight(motion)
    default_share = energy_b / (energy_a + energy_b)
    share = 2 * motion * default_share if motion <= 0.5 else default_share + (2 * motion - 1) * (1 - default_share)
    scale_a, scale_b = np.sqrt((1 - share) / energy_a), np.sqrt(share / energy_b)
    scaled = {name: weights[name] * (scale_a if name in appearance else scale_b) for name in names}
    orders = tuple(index._setting("orders"))
    new_alpha = tuple(float(scaled[f"moment.{order}"]) for order in orders)
    new_flow = float(next((scaled[name] for name in names if name.startswith("flow.")), 0.0))
    if not any(weight > 0 for weight in new_alpha):  # motion only with the flow alone: keep alpha valid
        new_alpha = tuple(1e-12 if order == orders[-1] else 0.0 for order in orders)
    return new_alpha, new_flow

def part_spreads(index: Index, sample: int) -> dict[str, float]:
    """{part name: std of the part's cosine over pairs of up to ``sample`` clips}, per generation."""
    key = ("spreads", index.generation, sample)
    if index._spread_cache is None or index._spread_cache[0] != key:
        ids, raw, units = index._matrix()
        chosen = units[np.linspace(0, len(units) - 1, min(sample, len(units))).astype(int)] if len(units) else units
        spreads, start = {}, 0
        upper = np.triu_indices(len(chosen), 1)
        for name, size in index.parts:
            block = chosen[:, start:start + size].astype(np.float64)
            spreads[name] = float((block @ block.T)[upper].std()) if len(chosen) > 1 else 0.0
            start += size
        index._spread_cache = (key, spreads)
    return index._spread_cache[1]
