"""The layout every stored row of an index shares, and what follows from it: the parts and their
sizes, the moment orders, the feature config; the weights of a query (one per part), and the fused
vectors of raw rows. Reads settings through the ``RowStore``; no search, no SQL of its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..config import MomentsConfig, validate_alpha, validate_flow_weight
from ..embedding import Embedding
from ..errors import ConfigError, IndexStoreError
from .rows import part_key, part_name
from .store import RowStore


@dataclass(frozen=True)
class RowLayout:
    """How a stored row is laid out (``rows.py``) and the settings it was made with.

    Attributes:
        parts: ((name, size), ...): ``moment.K`` per order, then ``flow.G`` per token-flow level;
            empty for a new, empty index.
        orders: the moment orders stored.
        config: the MomentsConfig every row was made with (None for an empty index).
        features: the feature settings every embedding must share (None for an empty index).
    """

    parts: tuple[tuple[str, int], ...]
    orders: tuple[int, ...]
    config: MomentsConfig | None
    features: Mapping[str, Any] | None

    @classmethod
    def read(cls, store: RowStore) -> RowLayout:
        """The layout recorded in ``store``'s settings (an index from before token flow has no
        ``parts`` setting: its moments are its parts)."""
        orders = tuple(store.setting("orders") or ())
        parts = store.setting("parts")
        if parts is None and orders:
            parts = [[f"moment.{order}", int(store.setting("dim"))] for order in orders]
        data = store.setting("config")
        try:
            config = MomentsConfig.from_dict(data) if data else None
        except ConfigError as error:
            raise store.damaged(f"setting 'config' is invalid ({error})") from None
        return cls(tuple((str(name), int(size)) for name, size in parts or ()), orders, config,
                   store.setting("features"))

    @classmethod
    def of_embedding(cls, embedding: Embedding) -> RowLayout:
        """The layout an index holding ``embedding`` stores it in (its parts in fusion order)."""
        parts = tuple((part_name(key), int(np.size(value))) for key, value in embedding.parts().items())
        return cls(parts, tuple(sorted(embedding.moments)), embedding.config, embedding.feature_settings())

    @property
    def sizes(self) -> list[int]:
        return [size for _, size in self.parts]

    @property
    def width(self) -> int:
        """Values in a stored row."""
        return sum(self.sizes)

    @property
    def flow_levels(self) -> int:
        return sum(name.startswith("flow.") for name, _ in self.parts)

    @property
    def shared(self) -> tuple[bool, ...]:
        """Per part: True for a keypoint part that counts in a pair only where both rows hold it
        (``keypoint_fusion="shared"``)."""
        rule = self.config is not None and self.config.keypoint_fusion == "shared"
        return tuple(rule and name.startswith("keypoints.") for name, _ in self.parts)

    @property
    def separable(self) -> bool:
        """True when the weighted inner product over unit blocks ranks exactly (``rows.py``)."""
        return self.config is not None and self.config.convention == "reference" and self.config.fusion == "concat"

    def weights(self, alpha: Sequence[float] | None, flow_weight: float | None = None, where: str = "the index") -> tuple[float, ...]:
        """One weight per stored part: ``alpha`` per order (default: the config's), the flow weight
        (default: the config's) for every flow level and the config's keypoint weight for every
        keypoint part, scaled so the largest is 1 (only ratios matter; no over/underflow)."""
        config = self.config
        if config is None:
            raise IndexStoreError(f"{where}: the index is empty")
        alpha = tuple(float(weight) for weight in (alpha if alpha is not None else config.alpha_for(self.orders)))
        validate_alpha(alpha, self.orders)
        flow = config.flow_weight if flow_weight is None else validate_flow_weight(flow_weight)
        if flow > 0 and self.flow_levels == 0:
            raise ConfigError(f"{where}: the index stores no token flow to weight")
        keypoint = self.config.keypoint_weight
        weights = tuple(float(dict(zip(self.orders, alpha))[part_key(name)]) if name.startswith("moment.")
                        else flow if name.startswith("flow.") else keypoint for name, _ in self.parts) \
            if self.parts else alpha + (flow,) * self.flow_levels
        top = max(weights)
        return tuple(weight / top for weight in weights)

    def fused(self, raw: np.ndarray, weights: Sequence[float]) -> np.ndarray:
        """(N, D) raw rows -> (N, D') unit fused vectors, by the one implementation in moments.py."""
        import torch

        from ..moments import fuse

        config = self.config
        keys, tensors, start = [], {}, 0
        for name, size in self.parts:
            key = part_key(name)
            keys.append(key)
            tensors[key] = torch.from_numpy(np.array(raw[:, start:start + size], dtype=np.float64))
            start += size
        fused = fuse(tensors, keys, tuple(weights), config.fusion, config.convention).numpy()
        norms = np.linalg.norm(fused, axis=1, keepdims=True)
        return fused / np.where(norms > 0, norms, 1.0)

    def unit_fused(self, raw: np.ndarray, weights: Sequence[float]) -> np.ndarray:
        """(N, D') float32 unit vectors of raw rows whose inner products are the exact fused cosines
        search ranks by (a still clip's zero parts carry no weight): what vector databases and
        nearest-neighbour libraries take."""
        from .rows import unit_blocks

        if not self.separable:
            return self.fused(raw, weights).astype(np.float32)
        scaled = unit_blocks(raw, self.sizes) * np.repeat(np.asarray(weights, dtype=np.float64), self.sizes)
        norms = np.linalg.norm(scaled, axis=1, keepdims=True)
        return (scaled / np.where(norms > 0, norms, 1.0)).astype(np.float32)

    def raw_array(self, query: np.ndarray) -> np.ndarray:
        """A raw query row from an array: (D,) as stored, or (K, d) moments of an index without flow."""
        flat = np.asarray(query, dtype=np.float32).reshape(-1)
        if flat.size != self.width:
            raise ConfigError(f"a raw query needs {self.width} values laid out as {self.part_list()}, got "
                              f"shape {tuple(np.shape(query))}")
        return flat

    def part_list(self) -> list[list[Any]]:
        """[[name, size], ...] (as stored in the ``parts`` setting)."""
        return [[name, size] for name, size in self.parts]

    def require_compatible(self, embedding: Embedding, where: str) -> None:
        """ConfigError, naming both sides, unless ``embedding`` can be stored in rows of this layout."""
        require_settings(self.features, embedding.feature_settings(), embedding.source, where)
        if self.features is None:
            return
        if self.orders != tuple(sorted(embedding.moments)):
            raise ConfigError(f"{embedding.source}: has moment orders {sorted(embedding.moments)}, the index "
                              f"{where} stores {list(self.orders)}")
        theirs = [[part_name(key), int(np.size(value))] for key, value in embedding.parts().items()]
        if theirs != self.part_list():
            raise ConfigError(f"{embedding.source}: has parts {theirs}, the index {where} stores {self.part_list()}")

    def raw_of(self, embedding: Embedding) -> np.ndarray:
        """The row (width,) float32 of an embedding, laid out as the parts (in the embedding's own
        order for an empty index, as the first row will be stored)."""
        parts = embedding.parts()
        if not self.parts:
            return np.concatenate([np.asarray(value, dtype=np.float32).ravel() for value in parts.values()])
        return np.concatenate([np.asarray(parts[part_key(name)], dtype=np.float32).ravel() for name, _ in self.parts])


def require_settings(settings: Mapping[str, Any] | None, theirs: Mapping[str, Any], what: str, where: str) -> None:
    """Raise ConfigError, naming both sides, unless ``theirs`` matches the index's ``settings``."""
    if settings is not None and settings != theirs:
        differing = sorted(key for key in set(settings) | set(theirs) if settings.get(key) != theirs.get(key))
        details = "; ".join(f"{key}: index has {settings.get(key)}, {what} has {theirs.get(key)}" for key in differing)
        raise ConfigError(f"{what} was made with other settings than the index {where} ({details})")
