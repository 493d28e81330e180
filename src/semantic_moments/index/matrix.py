"""Every clip of an index as arrays: what exact search, calibration and the ANN file read.

``ClipMatrix.load`` reads the committed rows once; the index keeps one per generation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .layout import RowLayout
from .rows import present_parts, unit_blocks
from .store import RowStore


@dataclass(frozen=True)
class ClipMatrix:
    """Attributes:
        generation: the index generation the arrays were read at.
        ids: (N,) int64 clip ids, ascending.
        raw: (N, D) float32 raw rows (``rows.py``).
        units: (N, D) float32, every part a unit vector (zero parts stay zero).
        present: (N, K) float64, 1.0 where a clip's part k is not all zero.
    """

    generation: int
    ids: np.ndarray
    raw: np.ndarray
    units: np.ndarray
    present: np.ndarray

    @classmethod
    def load(cls, store: RowStore, layout: RowLayout) -> ClipMatrix:
        generation = store.generation
        rows = store.execute("SELECT id, parts FROM clips ORDER BY id").fetchall()
        sizes = layout.sizes or [1]
        ids = np.array([row[0] for row in rows], dtype=np.int64)
        raw = store.decode(rows, 1, layout.width)
        units = unit_blocks(raw, sizes)
        return cls(generation, ids, raw, units, present_parts(units, sizes))

    def __len__(self) -> int:
        return len(self.ids)

    def sample(self, count: int) -> np.ndarray:
        """Row positions of up to ``count`` evenly spaced clips (a fixed choice: the same every time)."""
        if len(self.ids) == 0:
            return np.zeros(0, dtype=int)
        return np.linspace(0, len(self.ids) - 1, min(count, len(self.ids))).astype(int)
