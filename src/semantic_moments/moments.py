"""The paper's math, in the order of its equations. Pure torch, no I/O.

Notation: a clip gives patch tokens F with shape (T, P, d): T sampled frames, P patches per frame,
d channels. For every patch p and channel c the temporal samples F[:, p, c] have

* the 1st moment  mu   = mean_t F[t]
* the k-th central moment  m_k = mean_t (F[t] - mu)^k,   k >= 2

`TemporalMoments` accumulates these over chunks of frames (Welford/Pébay pairwise updates in
float64), so memory is O(P * d) whatever T is, and the result equals the two-pass formula.
`finalize_moments` turns them into the per-patch statistic of a convention, `patch_average` gives
M(k) in R^d, and `fuse` gives the embedding alpha_1 M(1) | alpha_2 M(2) | alpha_3 M(3).

Conventions (both exact; see MomentsConfig):

=========  =======================  =====================================  =========================
order k    paper                    paper, standardized=True               reference (authors' code)
=========  =======================  =====================================  =========================
1          mu                       mu                                     mu
2          m_2 (variance)           m_2                                    unbiased std s
3          m_3                      m_3 / (sqrt(m_2)^3 + eps)              m_3 / (s^3 + eps)
4          m_4                      m_4 / (m_2^2 + eps)                    m_4 / (s^4 + eps)
=========  =======================  =====================================  =========================

with eps = 1e-6. In the reference convention each patch-averaged M(k) is L2-normalised before
fusion and the fused vector is L2-normalised again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as functional

from .errors import ConfigError

STANDARDIZE_EPS = 1e-6


class TemporalMoments:
    """Streaming per-patch temporal moments of tokens given in chunks of frames.

    ``update(tokens)`` takes a chunk (t, P, d) of any float dtype and device; state is kept in
    float64 on the chunk's device: count n, mean (P, d) and the central sums
    S_k = sum_t (F[t] - mu)^k for k = 2..max_order, each (P, d). Chunks are merged with Pébay's
    pairwise formulas (Chan et al. for k = 2), which are numerically stable for long clips and large
    feature magnitudes, unlike raw power sums.
    """

    def __init__(self, max_order: int = 3) -> None:
        if not 1 <= max_order <= 4:
            raise ConfigError(f"max_order must be in 1..4, got {max_order}")
        self.max_order = max_order
        self.count = 0
        self.mean: torch.Tensor | None = None
        self.central_sums: dict[int, torch.Tensor] = {}

    def update(self, tokens: torch.Tensor) -> None:
        """Add a chunk of frames. ``tokens``: (t, P, d) float, t >= 1."""
        if tokens.ndim != 3 or tokens.shape[0] == 0:
            raise ConfigError(f"tokens must have shape (t, P, d) with t >= 1, got {tuple(tokens.shape)}")
        if self.mean is not None and tokens.shape[1:] != self.mean.shape:
            raise ConfigError(f"chunk shape {tuple(tokens.shape[1:])} does not match earlier chunks {tuple(self.mean.shape)}")
        chunk = tokens.detach().to(torch.float64)
        count_b = chunk.shape[0]
        mean_b = chunk.mean(dim=0)
        deviation = chunk - mean_b
        sums_b = {order: deviation.pow(order).sum(dim=0) for order in range(2, self.max_order + 1)}
        if self.mean is None:
            self.count, self.mean, self.central_sums = count_b, mean_b, sums_b
            return
        self._merge(count_b, mean_b, sums_b)

    def merge(self, other: TemporalMoments) -> None:
        """Add the frames ``other`` accumulated (any order of stretches gives the same moments);
        ``other`` is not changed. Windows of a long video are merges of per-stretch accumulators."""
        if other.max_order < self.max_order:
            raise ConfigError(f"cannot merge moments of max_order {other.max_order} into {self.max_order}")
        if other.mean is None:
            return
        sums = {order: other.central_sums[order] for order in range(2, self.max_order + 1)}
        if self.mean is None:
            self.count, self.mean, self.central_sums = other.count, other.mean.clone(), {k: v.clone() for k, v in sums.items()}
            return
        if other.mean.shape != self.mean.shape:
            raise ConfigError(f"cannot merge moments of shape {tuple(other.mean.shape)} into {tuple(self.mean.shape)}")
        self._merge(other.count, other.mean, sums)

    def copy(self) -> TemporalMoments:
        """An independent accumulator holding the same frames."""
        clone = TemporalMoments(self.max_order)
        clone.merge(self)
        return clone

    def _merge(self, count_b: int, mean_b: torch.Tensor, sums_b: dict[int, torch.Tensor]) -> None:
        assert self.mean is not None
        count_a, sums_a = self.count, self.central_sums
        count = count_a + count_b
        delta = mean_b - self.mean
        merged: dict[int, torch.Tensor] = {}
        if self.max_order >= 2:
            merged[2] = sums_a[2] + sums_b[2] + delta.pow(2) * (count_a * count_b / count)
        if self.max_order >= 3:
            merged[3] = (
                sums_a[3]
                + sums_b[3]
                + delta.pow(3) * (count_a * count_b * (count_a - count_b) / count**2)
                + 3.0 * delta * (count_a * sums_b[2] - count_b * sums_a[2]) / count
            )
        if self.max_order >= 4:
            merged[4] = (
                sums_a[4]
                + sums_b[4]
                + delta.pow(4) * (count_a * count_b * (count_a**2 - count_a * count_b + count_b**2) / count**3)
                + 6.0 * delta.pow(2) * (count_a**2 * sums_b[2] + count_b**2 * sums_a[2]) / count**2
                + 4.0 * delta * (count_a * sums_b[3] - count_b * sums_a[3]) / count
            )
        self.mean = self.mean + delta * (count_b / count)
        self.count = count
        self.central_sums = merged

    def central_moment(self, order: int) -> torch.Tensor:
        """m_k = S_k / n for k >= 2, or the mean for k = 1; (P, d) float64."""
        if self.mean is None:
            raise ConfigError("no frames were added to the moment accumulator")
        if order == 1:
            return self.mean
        return self.central_sums[order] / self.count


def finalize_moments(
    accumulator: TemporalMoments,
    orders: Sequence[int],
    convention: str = "reference",
    standardized: bool = False,
) -> dict[int, torch.Tensor]:
    """Per-patch statistic of every order, as the convention defines it (table above).

    Returns {k: (P, d) float64}. Raises ConfigError for an unknown convention, an order above the
    accumulator's, or fewer than 2 frames where the reference convention needs an unbiased std.
    """
    if max(orders) > accumulator.max_order:
        raise ConfigError(f"orders {tuple(orders)} need an accumulator of max_order >= {max(orders)}")
    count = accumulator.count
    if convention == "reference":
        if count < 2 and max(orders) >= 2:
            raise ConfigError("the unbiased standard deviation needs at least 2 frames")
        spread = (accumulator.central_moment(2) * (count / max(count - 1, 1))).sqrt() if max(orders) >= 2 else None
    elif convention == "paper":
        spread = accumulator.central_moment(2).sqrt() if standardized and max(orders) >= 3 else None
    else:
        raise ConfigError(f"convention must be 'reference' or 'paper', got {convention!r}")
    standardize = convention == "reference" or standardized

    statistics: dict[int, torch.Tensor] = {}
    for order in orders:
        moment = accumulator.central_moment(order)
        if order == 2 and convention == "reference":
            statistics[order] = spread  # type: ignore[assignment]
        elif order >= 3 and standardize:
            statistics[order] = moment / (spread.pow(order) + STANDARDIZE_EPS)  # type: ignore[union-attr]
        else:
            statistics[order] = moment
    return statistics


def patch_average(per_patch: Mapping[int, torch.Tensor]) -> dict[int, torch.Tensor]:
    """M(k) = mean over patches of the per-patch statistic: {k: (P, d)} -> {k: (d,)}."""
    return {order: statistic.mean(dim=0) for order, statistic in per_patch.items()}


def fuse(
    moment_vectors: Mapping[Any, torch.Tensor],
    orders: Sequence[Any],
    alpha: Sequence[float],
    fusion: str = "concat",
    convention: str = "reference",
) -> torch.Tensor:
    """The embedding from patch-averaged moments M(k), each (..., d), and any further parts.

    concat: alpha_1 M(1) | alpha_2 M(2) | ...  -> (..., sum of the parts' sizes)
    add:    alpha_1 M(1) + alpha_2 M(2) + ...  -> (..., d), parts of one size only
    ``orders`` names the parts in order: moment orders, and ``"flow.G"`` for token flow
    (``flow.py``), whose size differs from d. The reference convention L2-normalises each part
    first and the result last; a zero part (a static clip has M(2) = 0) stays zero.
    """
    if len(alpha) != len(orders):
        raise ConfigError(f"alpha needs one weight per order: orders {tuple(orders)}, alpha {tuple(alpha)}")
    missing = [order for order in orders if order not in moment_vectors]
    if missing:
        raise ConfigError(f"moments of order {missing} were not computed (have {sorted(moment_vectors)})")
    normalize = convention == "reference"
    top = max((float(weight) for weight in alpha), default=0.0)
    if normalize and top > 0:  # only the ratios matter here; 1e200 or 1e-300 weights must not over/underflow
        alpha = [float(weight) / top for weight in alpha]
    parts = []
    for order, weight in zip(orders, alpha):
        vector = moment_vectors[order]
        if normalize:
            vector = functional.normalize(vector, dim=-1)
        parts.append(weight * vector)
    if fusion == "concat":
        fused = torch.cat(parts, dim=-1)
    elif fusion == "add":
        fused = torch.stack(parts, dim=0).sum(dim=0)
    else:
        raise ConfigError(f"fusion must be 'concat' or 'add', got {fusion!r}")
    return functional.normalize(fused, dim=-1) if normalize else fused


def moments(
    tokens: torch.Tensor | Iterable[torch.Tensor],
    orders: Sequence[int] = (1, 2, 3),
    convention: str = "reference",
    standardized: bool = False,
) -> dict[int, torch.Tensor]:
    """M(k) for each order from tokens (T, P, d), or from an iterable of chunks (t_i, P, d).

    Returns {k: (d,) float64}. Equal to the two-pass formulas over all T frames at once.
    """
    accumulator = TemporalMoments(max_order=max(orders))
    chunks = [tokens] if isinstance(tokens, torch.Tensor) else tokens
    for chunk in chunks:
        accumulator.update(chunk)
    return patch_average(finalize_moments(accumulator, orders, convention, standardized))
