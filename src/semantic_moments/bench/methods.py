"""The methods a benchmark compares: SemanticMoments settings (all options of the one implementation,
evaluated from cached features) and the classic baselines."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..flow import fuse_with_flow
from ..presets import preset_settings
from .features import flow_from_cache

BASELINE_FRAMES = 32


@dataclass(frozen=True)
class Method:
    """One row of the comparison.

    ``group`` orders the report: ``main`` (the paper's setting), ``baseline``, ``ablation``,
    ``frames`` (the frame-count sweep) or ``backbone`` (the main setting on another backbone).
    ``convention`` is ``reference``, ``paper`` or ``paper-std`` (paper, standardized).
    ``backbone`` is a registry name, optionally with a layer: ``"efficientnet-lite0:blocks.10"``.
    ``flow_weight`` > 0 adds the token flow (``flow.py``) on ``flow_grids`` over ``flow_segments``.
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
    flow_weight: float = 0.0
    flow_grids: tuple[int, ...] = (2, 4)
    flow_segments: int = 2
    motion_floor: float = 0.025

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
        moments = {order: torch.from_numpy(features[f"{prefix}/{order}"]).double() for order in self.orders}
        flow = {cells: torch.from_numpy(vector).double() for cells, vector in
                flow_from_cache(features, self.extractor(), self.flow_grids, self.flow_segments).items()
                } if self.flow_weight > 0 else {}
        if float(features[f"{self.extractor()}/patch/motion_level"][0]) < self.motion_floor:  # still: static
            moments = {order: value if order == 1 else torch.zeros_like(value) for order, value in moments.items()}
            flow = {cells: torch.zeros_like(value) for cells, value in flow.items()}
        convention = "reference" if self.convention == "reference" else "paper"
        return fuse_with_flow(moments, flow, self.alpha, self.flow_weight, self.fusion, convention).float().numpy()


MAIN_NAME = "SemanticMoments + token flow (default)"
PAPER_NAME = "SemanticMoments (1,8,4), the paper's method"


def default_methods(backbones: Sequence[str], frames_sweep: Sequence[int] = (8, 16, 32),
                    main_frames: int | None = None) -> list[Method]:
    """The default (the ``motion`` preset), the paper's method, the baselines and the ablations on the
    first backbone; the main setting and mean pooling on every other backbone.

    ``backbones[0]`` without a layer gets the preset's layer when it is the preset's backbone.
    """
    settings = preset_settings(None)
    paper = preset_settings("paper")
    main_frames = main_frames or settings["frames"]
    primary = backbones[0]
    if primary == settings["backbone"]:
        primary = f"{primary}:{settings['layer']}"
    flow = settings["flow_weight"]
    main = Method(MAIN_NAME, "main", primary, main_frames, flow_weight=flow)
    methods = [
        main,
        Method("mean pooling (appearance)", "baseline", primary, main_frames, orders=(1,), alpha=(1.0,)),
        Method("optical flow (Farneback HOF)", "baseline", None, BASELINE_FRAMES, baseline="optical-flow"),
        Method("pixel difference", "baseline", None, BASELINE_FRAMES, baseline="pixel-difference"),
    ]
    if backbones[0] == paper["backbone"]:
        methods.append(Method(PAPER_NAME, "paper", f"{paper['backbone']}:{paper['layer']}", paper["frames"]))
    methods += [
        Method("moments only (1,8,4), no flow", "ablation", primary, main_frames),
        Method("token flow only", "ablation", primary, main_frames, alpha=(0.0, 0.0, 0.0), flow_weight=1.0),
        Method("flow: 1 segment (no temporal order)", "ablation", primary, main_frames, flow_weight=flow, flow_segments=1),
        Method("flow: 4 segments", "ablation", primary, main_frames, flow_weight=flow, flow_segments=4),
        Method("flow: grid 2 only", "ablation", primary, main_frames, flow_weight=flow, flow_grids=(2,)),
        Method("flow: grid 4 only", "ablation", primary, main_frames, flow_weight=flow, flow_grids=(4,)),
        Method("flow: grids 1,2,4", "ablation", primary, main_frames, flow_weight=flow, flow_grids=(1, 2, 4)),
        Method("flow weight 4", "ablation", primary, main_frames, flow_weight=4.0),
        Method("flow weight 64", "ablation", primary, main_frames, flow_weight=64.0),
        Method("moments: frame-level", "ablation", primary, main_frames, granularity="frame"),
        Method("moments: additive fusion", "ablation", primary, main_frames, fusion="add"),
        Method("moments: paper convention (raw)", "ablation", primary, main_frames, convention="paper"),
        Method("moments: paper convention, standardized", "ablation", primary, main_frames, convention="paper-std"),
    ]
    for orders, alpha in (((2,), (8.0,)), ((1, 2), (1.0, 8.0)), ((2, 3), (8.0, 4.0)), ((1, 2, 3, 4), (1.0, 8.0, 4.0, 4.0))):
        label = ",".join(str(order) for order in orders)
        methods.append(Method(f"moments: orders {label}", "ablation", primary, main_frames, orders=orders, alpha=alpha))
    for frames in frames_sweep:
        if frames != main_frames:
            methods.append(Method(main.name, "frames", primary, frames, flow_weight=flow))
    for backbone in backbones[1:]:
        methods.append(Method(main.name, "backbone", backbone, main_frames, flow_weight=flow))
        methods.append(Method("moments only (1,8,4), no flow", "backbone", backbone, main_frames))
        methods.append(Method("mean pooling (appearance)", "backbone", backbone, main_frames, orders=(1,), alpha=(1.0,)))
    return methods
