"""Reading scores against the collection: a score's percentile among all indexed pairs, and the
appearance-to-motion knob balanced by each part's share of the score's spread.

Both are computed from up to ``sample`` evenly spaced indexed clips of a ``ClipMatrix`` and cached
per generation (``Calibration``), so they follow the collection as it grows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..errors import ConfigError, IndexStoreError
from .layout import RowLayout
from .matrix import ClipMatrix


def motion_alpha(motion: float, base: Sequence[float] = (1.0, 8.0, 4.0)) -> tuple[float, ...]:
    """One knob from appearance-only (0) to motion-only (1); 0.5 gives the paper's (1, 8, 4)."""
    if not 0.0 <= motion <= 1.0:
        raise ConfigError(f"motion must be between 0 (appearance only) and 1 (motion only), got {motion}")
    return tuple([2.0 * (1.0 - motion) * base[0]] + [2.0 * motion * weight for weight in base[1:]])


def motion_flow_weight(motion: float, flow_weight: float) -> float:
    """The flow weight that goes with ``motion_alpha(motion)``: 0 at 0, ``flow_weight`` at 0.5."""
    motion_alpha(motion)  # validates the range
    return 2.0 * motion * flow_weight


class Calibration:
    """The collection statistics of one index, cached per (generation, weights, sample)."""

    def __init__(self) -> None:
        self._pairs: dict[str, tuple[Any, np.ndarray]] = {}  # kind -> (key, sorted pair scores)
        self._spreads: tuple[Any, dict[str, float]] | None = None  # key, per-part cosine spreads

    def percentile(self, matrix: ClipMatrix, layout: RowLayout, weights: tuple[float, ...], scores: Sequence[float],
                   sample: int = 1000, kind: str = "clips") -> list[float]:
        """Where each score lies among the scores of all pairs of indexed clips under the same
        weights: the percentage of pairs scoring lower (0-100). The pairs come from up to
        ``sample`` clips (a fixed, evenly spaced choice), computed once per generation and weights.
        A raw cosine means little alone (every pair of a collection may score 0.7-0.9); its
        percentile says how unusual a match is in this collection. ``kind`` names the population
        (clips, or the windows and clips of segment search), each cached apart."""
        key = (matrix.generation, weights, sample)
        if kind not in self._pairs or self._pairs[kind][0] != key:
            chosen = matrix.raw[matrix.sample(sample)]
            fused = layout.fused(chosen, weights) if len(chosen) else np.zeros((0, 1))
            pairs = (fused @ fused.T)[np.triu_indices(len(fused), 1)]
            self._pairs[kind] = (key, np.sort(pairs))
        pairs = self._pairs[kind][1]
        if len(pairs) == 0:
            return [float("nan")] * len(scores)
        return [float(100.0 * np.searchsorted(pairs, score, side="left") / len(pairs)) for score in scores]

    def part_spreads(self, matrix: ClipMatrix, layout: RowLayout, sample: int = 1000) -> dict[str, float]:
        """{part name: std of the part's cosine over pairs of up to ``sample`` clips}, per generation."""
        key = ("spreads", matrix.generation, sample)
        if self._spreads is None or self._spreads[0] != key:
            chosen = matrix.units[matrix.sample(sample)]
            spreads, start = {}, 0
            upper = np.triu_indices(len(chosen), 1)
            for name, size in layout.parts:
                block = chosen[:, start:start + size].astype(np.float64)
                spreads[name] = float((block @ block.T)[upper].std()) if len(chosen) > 1 else 0.0
                start += size
            self._spreads = (key, spreads)
        return self._spreads[1]


def motion_weights(layout: RowLayout, spreads: dict[str, float], motion: float,
                   where: str = "the index") -> tuple[tuple[float, ...], float]:
    """(alpha, flow weight) of the one appearance-to-motion knob, ``motion`` in [0, 1].

    0 is appearance only (M(1)), 1 motion only (M(2..), flow), 0.5 the index's own weights. In
    between, the knob moves the share of the score's *spread over this collection* that the motion
    parts carry, linearly from 0 to the index's own share (at 0.5) and on to 1: raw weights would
    not do (with the default weights M(1) carries under 1% of the squared weight, so a raw knob
    acts only near 0). ``spreads``: the std of each part's cosine over the collection's pairs
    (``Calibration.part_spreads``).
    """
    motion_alpha(motion)  # validates the range
    config = layout.config
    if config is None:
        raise IndexStoreError(f"{where}: the index is empty")
    alpha, flow = config.alpha_for(layout.orders), config.flow_weight
    names = [name for name, _ in layout.parts]
    weights = dict(zip(names, layout.weights(alpha, flow, where)))
    appearance = [name for name in names if name == "moment.1"]
    moving = [name for name in names if name != "moment.1"]
    energy_a = sum(weights[name] ** 2 * spreads[name] for name in appearance)
    energy_b = sum(weights[name] ** 2 * spreads[name] for name in moving)
    if energy_a <= 0 or energy_b <= 0:  # nothing to balance (e.g. every clip still): the plain knob
        return motion_alpha(motion, alpha), motion_flow_weight(motion, flow)
    default_share = energy_b / (energy_a + energy_b)
    share = 2 * motion * default_share if motion <= 0.5 else default_share + (2 * motion - 1) * (1 - default_share)
    scale_a, scale_b = np.sqrt((1 - share) / energy_a), np.sqrt(share / energy_b)
    scaled = {name: weights[name] * (scale_a if name in appearance else scale_b) for name in names}
    orders = layout.orders
    new_alpha = tuple(float(scaled[f"moment.{order}"]) for order in orders)
    new_flow = float(next((scaled[name] for name in names if name.startswith("flow.")), 0.0))
    if not any(weight > 0 for weight in new_alpha):  # motion only with the flow alone: keep alpha valid
        new_alpha = tuple(1e-12 if order == orders[-1] else 0.0 for order in orders)
    return new_alpha, new_flow


def knob_range(queries: Sequence[int], top: Callable[[float, int], set[int]], agreement: float = 0.9) -> float:
    """The knob value above which the ranking no longer moves: the smallest ``m`` (in steps of 0.05
    from 0.5) from which every higher setting's top results (``top(m, query)``) agree with the
    motion-only ones by at least ``agreement`` on average over ``queries``; 1.0 when the whole
    range acts."""
    steps = [round(0.5 + 0.05 * step, 2) for step in range(11)]
    tops = {m: [top(m, query) for query in queries] for m in steps}
    acts_up_to = 1.0
    for m in reversed(steps[:-1]):
        overlap = np.mean([len(a & b) / max(len(b), 1) for a, b in zip(tops[m], tops[1.0])])
        if overlap < agreement:
            break
        acts_up_to = m
    return acts_up_to
