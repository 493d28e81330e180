"""Classic motion descriptors without semantics, for the side-by-side comparison.

They work on sampled frames (T uniform, or a method's own sampling), at 128 x 128 grey.

* ``optical_flow``: dense Farnebäck flow (OpenCV) between consecutive sampled frames, summarised as a
  histogram of flow orientations weighted by magnitude (8 bins) in each cell of a 2 x 2 grid plus a
  global magnitude histogram (8 log-spaced bins); mean and standard deviation over time (HOF-style).
* ``hof_mbh``: the same HOF beside motion boundary histograms (MBH, Dalal et al. 2006, the strongest
  hand-crafted descriptor of the dense-trajectories line, Wang et al. 2011/2013): for each flow
  component u and v, the orientation histogram (8 bins) of its spatial gradient, weighted by the
  gradient's magnitude, per cell of a 2 x 2 grid; MBH ignores what moves together (camera, whole
  body) and keeps relative motion. Mean and standard deviation over time of both.
* ``pixel_difference``: absolute grey-level difference of consecutive frames averaged in an 8 x 8
  grid; mean and standard deviation over time (a motion-energy map).
"""

from __future__ import annotations

import numpy as np

SIZE = 128


def _grey(frames: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) uint8 -> (T, 128, 128) uint8 grey."""
    import cv2

    return np.stack([cv2.resize(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), (SIZE, SIZE), interpolation=cv2.INTER_AREA)
                     for frame in frames])


def _grid_mean(values: np.ndarray, cells: int) -> np.ndarray:
    """(H, W) -> (cells * cells,) means over a regular grid."""
    height, width = values.shape
    return values[: height - height % cells, : width - width % cells].reshape(
        cells, height // cells, cells, width // cells).mean(axis=(1, 3)).ravel()


def _flows(frames: np.ndarray) -> list[np.ndarray]:
    """Farnebäck flow (128, 128, 2) of each pair of consecutive frames of (T, H, W, 3) uint8 frames."""
    import cv2

    grey = _grey(frames)
    return [cv2.calcOpticalFlowFarneback(previous, current, None, 0.5, 3, 15, 3, 5, 1.2, 0)
            for previous, current in zip(grey[:-1], grey[1:])]


def _cell_histograms(dx: np.ndarray, dy: np.ndarray) -> list[np.ndarray]:
    """Orientation histograms (8 bins) of the vectors (dx, dy), weighted by their length, per cell of
    a 2 x 2 grid, each normalised by the cell's area."""
    import cv2

    magnitude, angle = cv2.cartToPolar(dx.astype(np.float32), dy.astype(np.float32))
    bins = np.minimum((angle / (2 * np.pi) * 8).astype(int), 7)
    half = SIZE // 2
    return [np.bincount(bins[row, column].ravel(), weights=magnitude[row, column].ravel(), minlength=8) / (half * half)
            for row in (slice(0, half), slice(half, SIZE)) for column in (slice(0, half), slice(half, SIZE))]


def _hof(flow: np.ndarray) -> np.ndarray:
    magnitude_edges = np.concatenate([[0.0], np.logspace(-1.5, 1.5, 7), [np.inf]])
    magnitude = np.hypot(flow[..., 0], flow[..., 1])
    histogram = np.histogram(magnitude, bins=magnitude_edges)[0] / magnitude.size
    return np.concatenate(_cell_histograms(flow[..., 0], flow[..., 1]) + [histogram])


def _mbh(flow: np.ndarray) -> np.ndarray:
    parts = []
    for component in (flow[..., 0], flow[..., 1]):
        dy, dx = np.gradient(component)
        parts += _cell_histograms(dx, dy)
    return np.concatenate(parts)


def _over_time(per_step: list[np.ndarray]) -> np.ndarray:
    steps = np.stack(per_step)
    return np.concatenate([steps.mean(axis=0), steps.std(axis=0)]).astype(np.float32)


def _hof_and_mbh(flows: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(HOF descriptor, HOF+MBH descriptor) of a clip's flows, each flow's HOF computed once."""
    hofs = [_hof(flow) for flow in flows]
    return _over_time(hofs), _over_time([np.concatenate([hof, _mbh(flow)]) for hof, flow in zip(hofs, flows)])


def optical_flow(frames: np.ndarray) -> np.ndarray:
    """HOF-style descriptor (2 * (2 * 2 * 8 + 8) = 80,) float32 of (T, H, W, 3) uint8 frames."""
    return _over_time([_hof(flow) for flow in _flows(frames)])


def hof_mbh(frames: np.ndarray) -> np.ndarray:
    """HOF and MBH (2 * (40 + 2 * 2 * 2 * 8) = 208,) float32 of (T, H, W, 3) uint8 frames."""
    return _hof_and_mbh(_flows(frames))[1]


def pixel_difference(frames: np.ndarray) -> np.ndarray:
    """Motion-energy descriptor (2 * 64 = 128,) float32 of (T, H, W, 3) uint8 frames."""
    grey = _grey(frames).astype(np.float32) / 255.0
    return _over_time([_grid_mean(np.abs(current - previous), 8) for previous, current in zip(grey[:-1], grey[1:])])


BASELINES = {"optical-flow": optical_flow, "hof-mbh": hof_mbh, "pixel-difference": pixel_difference}
# each block of a descriptor L2-normalised before the cosine, so that a block of small values (MBH's
# gradients of the flow beside HOF's flow) still counts: (sizes of the cached vector's blocks)
BLOCKS = {"hof-mbh": (40, 64, 40, 64)}  # HOF mean, MBH mean, HOF std, MBH std


def blockwise(name: str, vector: np.ndarray) -> np.ndarray:
    """The baseline's vector with each block normalised (``BLOCKS``); other baselines unchanged."""
    if name not in BLOCKS:
        return vector
    out, start = [], 0
    for size in BLOCKS[name]:
        block = np.asarray(vector[start:start + size], dtype=np.float64)
        norm = np.linalg.norm(block)
        out.append(block / norm if norm > 0 else block)
        start += size
    return np.concatenate(out).astype(np.float32)


def describe(frames: np.ndarray) -> dict[str, np.ndarray]:
    """Every baseline's descriptor of (T, H, W, 3) uint8 frames, the flow computed once."""
    hof, hof_and_mbh = _hof_and_mbh(_flows(frames))
    return {"optical-flow": hof, "hof-mbh": hof_and_mbh, "pixel-difference": pixel_difference(frames)}
