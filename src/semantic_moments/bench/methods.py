"""The methods a benchmark compares: SemanticMoments settings (all options of the one implementation,
evaluated from cached features) and the classic baselines."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..moments import fuse

BASELINE_FRAMES = 32


@dataclass(frozen=True)
class Method:
    """One row of the comparison.

    ``group`` orders the report: ``main`` (the paper's setting), ``baseline``, ``ablation``,
    ``frames`` (the frame-count sweep) or ``backbone`` (the main setting on another backbone).
    ``convention`` is ``reference``, ``paper`` or ``paper-std`` (paper, standardized).
    """

    name: str
    group: str
    backbone: str | None
    frames: int
    granularity: str = "patch"
    convention: str = "reference"
    orders: tuple[int, ...] = (1, 2, 3)
    alpha: tuple[float, ...] = (1.0, 8.0, 4.0)
    fusion: str = "concat"
    baseline: str | None = None

    @property
    def key(self) -> str:
        return f"{self.name} [{self.backbone or 'pixels'}, T={self.frames}]"

    def extractor(self) -> str:
        return f"baseline@{self.frames}" if self.baseline else f"{self.backbone}@{self.frames}"

    def vector(self, features: dict[str, np.ndarray]) -> np.ndarray:
        """The method's embedding of one clip from its cached features (see features.py)."""
        if self.baseline:
            return features[f"{self.extractor()}/{self.baseline}"]
        prefix = f"{self.extractor()}/{self.granularity}/{self.convention}"
        vectors = {order: torch.from_numpy(features[f"{prefix}/{order}"]).double() for order in self.orders}
        convention = "reference" if self.convention == "reference" else "paper"
        return fuse(vectors, self.orders, self.alpha, self.fusion, convention).float().numpy()


def default_methods(backbones: Sequence[str], frames_sweep: Sequence[int] = (8, 16, 32, 64),
                    main_frames: int = 32) -> list[Method]:
    """The paper's setting, baselines and ablations on the first backbone; the main setting and
    mean pooling on every other backbone."""
    primary = backbones[0]
    main = Method("SemanticMoments (1,8,4) patch-concat", "main", primary, main_frames)
    methods = [
        main,
        Method("mean pooling (appearance)", "baseline", primary, main_frames, orders=(1,), alpha=(1.0,)),
        Method("optical flow (Farneback HOF)", "baseline", None, BASELINE_FRAMES, baseline="optical-flow"),
        Method("pixel difference", "baseline", None, BASELINE_FRAMES, baseline="pixel-difference"),
        Method("frame-level moments", "ablation", primary, main_frames, granularity="frame"),
        Method("additive fusion", "ablation", primary, main_frames, fusion="add"),
        Method("paper convention (raw moments)", "ablation", primary, main_frames, convention="paper"),
        Method("paper convention, standardized", "ablation", primary, main_frames, convention="paper-std"),
    ]
    for orders, alpha in (((2,), (8.0,)), ((1, 2), (1.0, 8.0)), ((1, 3), (1.0, 4.0)), ((2, 3), (8.0, 4.0)),
                          ((1, 2, 3, 4), (1.0, 8.0, 4.0, 4.0))):
        label = ",".join(str(order) for order in orders)
        methods.append(Method(f"orders {label}", "ablation", primary, main_frames, orders=orders, alpha=alpha))
    for alpha in ((1.0, 1.0, 1.0), (1.0, 4.0, 2.0), (1.0, 16.0, 8.0)):
        label = ",".join(f"{weight:g}" for weight in alpha)
        methods.append(Method(f"alpha {label}", "ablation", primary, main_frames, alpha=alpha))
    for frames in frames_sweep:
        if frames != main_frames:
            methods.append(Method(main.name, "frames", primary, frames))
    for backbone in backbones[1:]:
        methods.append(Method(main.name, "backbone", backbone, main_frames))
        methods.append(Method("mean pooling (appearance)", "backbone", backbone, main_frames, orders=(1,), alpha=(1.0,)))
    return methods
