"""Token flow: where the backbone's features move, and which way. Pure torch, no I/O.

The temporal moments say *how much* each patch's features change, not *where to*: a hand moving left
and the same hand moving right give the same spread, and a raise followed by a lowering cancels in
any mean. Token flow adds the direction, from the same tokens and the same single backbone pass.

For each pair of consecutive frames (tokens F_t, F_{t+1} on the patch grid, d channels), brightness
constancy in feature space, F_{t+1}(x) ~ F_t(x - (u, v)), linearised around the pair's mean gives per
patch the least-squares displacement (Lucas-Kanade with the d channels as the equations)::

    [sum gx^2    sum gx gy] [u]     [sum gx D]
    [sum gx gy   sum gy^2 ] [v] = - [sum gy D],     D = F_{t+1} - F_t,

with gx, gy the central differences of (F_t + F_{t+1}) / 2 along columns and rows (in patches; zero
on the border) and a small ridge term. (u, v) is clipped to +-``MAX_SHIFT`` patches and weighted by
the change energy w = ||D||, so still patches contribute nothing whatever their texture. Each step
gives four half-wave rectified maps, relu(u w), relu(-u w), relu(v w), relu(-v w): rightward,
leftward, downward and upward motion, which do not cancel when a motion goes and comes back.

The maps are averaged over the steps of each of ``segments`` equal stretches of the clip (so a raise
then a lowering differs from a lowering then a raise), then over the cells of a g x g grid for every
g in ``grids`` (a spatial pyramid: where in the frame, coarse and finer). The result per grid is a
vector of segments * 4 * g * g values: ``flow_vectors`` returns {g: vector}.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from .errors import ConfigError
from .moments import fuse

MAX_SHIFT = 3.0  # patches per step; larger estimates are outside the linearisation's range
RIDGE = 1e-6


def cell_bounds(size: int, cells: int) -> list[tuple[int, int]]:
    """Split ``size`` patches into ``cells`` contiguous runs, the first ones one longer (NumPy's
    array_split rule)."""
    base, extra = divmod(size, cells)
    bounds, start = [], 0
    for cell in range(cells):
        stop = start + base + (1 if cell < extra else 0)
        bounds.append((start, stop))
        start = stop
    return bounds


def step_displacement(previous: torch.Tensor, current: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(u, v, w), each (s, rows, columns) float64: the clipped displacement (patches, along columns
    and rows) and the change energy of s frame pairs (module doc); ``previous``, ``current``:
    (s, rows, columns, d) tokens."""
    a, b = previous.to(torch.float64), current.to(torch.float64)
    middle = (a + b) / 2
    gx = torch.zeros_like(middle)
    gy = torch.zeros_like(middle)
    gx[:, :, 1:-1] = (middle[:, :, 2:] - middle[:, :, :-2]) / 2
    gy[:, 1:-1] = (middle[:, 2:] - middle[:, :-2]) / 2
    change = b - a
    a11, a22, a12 = (gx * gx).sum(-1), (gy * gy).sum(-1), (gx * gy).sum(-1)
    b1, b2 = -(gx * change).sum(-1), -(gy * change).sum(-1)
    determinant = a11 * a22 - a12 * a12 + RIDGE * (a11 + a22 + 1e-9)
    u = ((a22 * b1 - a12 * b2) / determinant).clamp(-MAX_SHIFT, MAX_SHIFT)
    v = ((a11 * b2 - a12 * b1) / determinant).clamp(-MAX_SHIFT, MAX_SHIFT)
    return u, v, change.pow(2).sum(-1).sqrt()


def step_flow(previous: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
    """Rectified, energy-weighted flow of consecutive frames.

    ``previous``, ``current``: (s, rows, columns, d) tokens of s frame pairs. Returns (s, 4, rows,
    columns) float64: relu(u w), relu(-u w), relu(v w), relu(-v w) (right, left, down, up).
    """
    u, v, energy = step_displacement(previous, current)
    uw, vw = u * energy, v * energy
    return torch.stack([uw.clamp(min=0), (-uw).clamp(min=0), vw.clamp(min=0), (-vw).clamp(min=0)], dim=1)


def orientation_histograms(dx: torch.Tensor, dy: torch.Tensor, weight: torch.Tensor, bins: int = 8) -> torch.Tensor:
    """(s, bins, rows, columns): each vector (dx, dy) of (s, rows, columns) maps, its length times
    ``weight`` shared linearly between the two nearest of ``bins`` orientation bins (HOG-style)."""
    position = torch.remainder(torch.atan2(dy, dx), 2 * torch.pi) / (2 * torch.pi) * bins
    low = torch.floor(position)
    share = position - low
    low = low.long() % bins
    magnitude = torch.sqrt(dx * dx + dy * dy) * weight
    out = torch.zeros(dx.shape[0], bins, *dx.shape[1:], dtype=torch.float64)
    out.scatter_add_(1, low.unsqueeze(1), (magnitude * (1 - share)).unsqueeze(1))
    out.scatter_add_(1, ((low + 1) % bins).unsqueeze(1), (magnitude * share).unsqueeze(1))
    return out


def spatial_gradient(maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Central differences of (s, rows, columns) maps along columns and rows (zero on the border)."""
    gx, gy = torch.zeros_like(maps), torch.zeros_like(maps)
    gx[:, :, 1:-1] = (maps[:, :, 2:] - maps[:, :, :-2]) / 2
    gy[:, 1:-1] = (maps[:, 2:] - maps[:, :-2]) / 2
    return gx, gy


def candidate_maps(previous: torch.Tensor, current: torch.Tensor) -> dict[str, torch.Tensor]:
    """Descriptors of token flow that were measured as candidates (``bench``; not in embeddings):
    ``hof``, 8-bin orientation histograms of the displacement weighted by the change energy, and
    ``mbh``, motion boundary histograms: 8-bin orientation histograms of the spatial gradient of u
    and of v (16 maps), weighted by the energy: relative motion, blind to what moves together. Each
    (s, channels, rows, columns) float64."""
    u, v, energy = step_displacement(previous, current)
    (ux, uy), (vx, vy) = spatial_gradient(u), spatial_gradient(v)
    return {"hof": orientation_histograms(u, v, energy),
            "mbh": torch.cat([orientation_histograms(ux, uy, energy), orientation_histograms(vx, vy, energy)], dim=1)}


class TokenFlow:
    """Streaming token-flow sums over chunks of frames (see the module doc).

    Args:
        grid: (rows, columns) of the patch grid.
        total_steps: frame pairs the clip will give (T - 1 for T frames); decides the segments.
        segments: equal stretches of the clip whose flows are kept apart.

    ``update(tokens)`` takes a chunk (t, P, d) in temporal order; the last frame of a chunk pairs
    with the first of the next, so chunking does not change the result.
    """

    def __init__(self, grid: tuple[int, int], total_steps: int, segments: int = 2, candidates: bool = False) -> None:
        if total_steps < 1:
            raise ConfigError(f"token flow needs at least 2 frames, got {total_steps + 1}")
        if segments < 1:
            raise ConfigError(f"segments must be at least 1, got {segments}")
        self.grid = (int(grid[0]), int(grid[1]))
        self.total_steps = int(total_steps)
        self.segments = int(segments)
        self.sums = torch.zeros(self.segments, 4, *self.grid, dtype=torch.float64)
        self.counts = torch.zeros(self.segments, dtype=torch.float64)
        self.steps = 0
        self._previous: torch.Tensor | None = None
        # candidates (bench only): {name: (segments, channels, rows, columns)} sums of candidate_maps
        self.candidates: dict[str, torch.Tensor] | None = {} if candidates else None

    def update(self, tokens: torch.Tensor) -> None:
        """Add a chunk (t, P, d) of frames, P = rows * columns."""
        rows, columns = self.grid
        if tokens.ndim != 3 or tokens.shape[1] != rows * columns:
            raise ConfigError(f"tokens must have shape (t, {rows * columns}, d), got {tuple(tokens.shape)}")
        frames = tokens.detach().reshape(tokens.shape[0], rows, columns, tokens.shape[2])
        if self._previous is not None:
            frames = torch.cat([self._previous[None].to(frames.device, frames.dtype), frames])
        if frames.shape[0] >= 2:
            first = self.steps
            self.add_steps(step_flow(frames[:-1], frames[1:]).cpu())
            if self.candidates is not None:
                for name, maps in candidate_maps(frames[:-1], frames[1:]).items():
                    sums = self.candidates.setdefault(name, torch.zeros(self.segments, maps.shape[1], *self.grid,
                                                                        dtype=torch.float64))
                    for offset in range(maps.shape[0]):
                        sums[self._segment(first + offset)] += maps[offset].cpu()
        self._previous = frames[-1].clone()

    def _segment(self, step: int) -> int:
        return min(step * self.segments // self.total_steps, self.segments - 1)

    def add_steps(self, maps: torch.Tensor) -> None:
        """Add the flow maps (s, 4, rows, columns) of the next s frame pairs (``step_flow``), in order."""
        for index in range(maps.shape[0]):
            segment = self._segment(self.steps)
            self.sums[segment] += maps[index]
            self.counts[segment] += 1
            self.steps += 1

    def merge(self, other: TokenFlow) -> None:
        """Add the sums of ``other`` (a later stretch already reduced); used to merge chunks."""
        self.sums += other.sums
        self.counts += other.counts
        self.steps += other.steps


def pool_cells(maps: torch.Tensor, cells: int) -> torch.Tensor:
    """(..., rows, columns) -> (..., cells * cells): the mean over each cell of a cells x cells grid."""
    rows, columns = maps.shape[-2:]
    if cells < 1 or cells > min(rows, columns):
        raise ConfigError(f"flow grid {cells} does not fit a {rows} x {columns} patch grid")
    return torch.stack([maps[..., r0:r1, c0:c1].mean(dim=(-2, -1))
                        for r0, r1 in cell_bounds(rows, cells) for c0, c1 in cell_bounds(columns, cells)], dim=-1)


def flow_vectors(flow: TokenFlow, grids: Sequence[int] = (2, 4)) -> dict[int, torch.Tensor]:
    """{g: (segments * 4 * g * g,) float64} mean flow per segment and direction, pooled on g x g cells.

    A segment with no steps (a clip shorter than ``segments`` + 1 frames) contributes zeros.
    """
    means = flow.sums / flow.counts.clamp(min=1).view(-1, 1, 1, 1)
    return {int(cells): pool_cells(means, cells).reshape(-1) for cells in grids}


def fuse_with_flow(moments: Mapping[int, torch.Tensor], flow: Mapping[int, torch.Tensor], alpha: Sequence[float],
                   flow_weight: float, fusion: str = "concat", convention: str = "reference",
                   extra: Mapping[str, torch.Tensor] | None = None, extra_weight: float = 0.0) -> torch.Tensor:
    """``moments.fuse`` of the moments (weights ``alpha``, in the mapping's order) followed, when
    ``flow_weight`` > 0, by every flow level g in ``flow`` as part ``"flow.g"`` with that weight, then
    the ``extra`` parts (the keypoints') with ``extra_weight``."""
    parts: dict = dict(moments)
    keys: list = list(moments)
    weights = list(alpha)
    if flow_weight > 0:
        for cells in sorted(flow, key=lambda key: (isinstance(key, str), str(key).zfill(8))):  # levels, then candidates
            parts[f"flow.{cells}"] = flow[cells]
            keys.append(f"flow.{cells}")
            weights.append(flow_weight)
    for name, value in (extra or {}).items():
        parts[name] = value
        keys.append(name)
        weights.append(extra_weight)
    return fuse(parts, keys, weights, fusion, convention)
