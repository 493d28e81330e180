"""Classic motion descriptors without semantics, for the side-by-side comparison.

Both work on the same T uniformly sampled frames as SemanticMoments, at 128 x 128 grey.

* ``optical_flow``: dense Farnebäck flow (OpenCV) between consecutive sampled frames, summarised as a
  histogram of flow orientations weighted by magnitude (8 bins) in each cell of a 2 x 2 grid plus a
  global magnitude histogram (8 log-spaced bins); mean and standard deviation over time (HOF-style).
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


def optical_flow(frames: np.ndarray) -> np.ndarray:
    """HOF-style descriptor (2 * (2 * 2 * 8 + 8) = 80,) float32 of (T, H, W, 3) uint8 frames."""
    import cv2

    grey = _grey(frames)
    per_step = []
    magnitude_edges = np.concatenate([[0.0], np.logspace(-1.5, 1.5, 7), [np.inf]])
    for previous, current in zip(grey[:-1], grey[1:]):
        flow = cv2.calcOpticalFlowFarneback(previous, current, None, 0.5, 3, 15, 3, 5, 1.2, 0)
        magnitude, angle = cv2.cartToPolar(flow[..., 0], flow[..., 1])
        bins = np.minimum((angle / (2 * np.pi) * 8).astype(int), 7)
        cells = []
        half = SIZE // 2
        for row in (slice(0, half), slice(half, SIZE)):
            for column in (slice(0, half), slice(half, SIZE)):
                cells.append(np.bincount(bins[row, column].ravel(), weights=magnitude[row, column].ravel(),
                                         minlength=8) / (half * half))
        histogram = np.histogram(magnitude, bins=magnitude_edges)[0] / magnitude.size
        per_step.append(np.concatenate(cells + [histogram]))
    steps = np.stack(per_step)
    return np.concatenate([steps.mean(axis=0), steps.std(axis=0)]).astype(np.float32)


def pixel_difference(frames: np.ndarray) -> np.ndarray:
    """Motion-energy descriptor (2 * 64 = 128,) float32 of (T, H, W, 3) uint8 frames."""
    grey = _grey(frames).astype(np.float32) / 255.0
    steps = np.stack([_grid_mean(np.abs(current - previous), 8) for previous, current in zip(grey[:-1], grey[1:])])
    return np.concatenate([steps.mean(axis=0), steps.std(axis=0)]).astype(np.float32)


BASELINES = {"optical-flow": optical_flow, "pixel-difference": pixel_difference}
