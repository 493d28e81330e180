"""The methods a benchmark compares: SemanticMoments settings (all options of the one implementation,
evaluated from cached features) and the classic baselines."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..flow import fuse_with_flow
from ..presets import preset_settings
from .baselines import blockwise
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
    min_rate: float | None = None
    candidate: str | None = None  # a candidate token-flow descriptor fused beside the flow: "hof" or "mbh"
    candidate_grids: tuple[int, ...] = (4,)

    @property
    def key(self) -> str:
        sampling = f", at least {self.min_rate:g}/s" if self.min_rate else ""
        return f"{self.name} [{self.backbone or 'pixels'}, T={self.frames}{sampling}]"

    def extractor(self) -> str:
        return extractor_name("baseline" if self.baseline else self.backbone, self.frames, self.min_rate)

    def vector(self, features: dict[str, np.ndarray]) -> np.ndarray:
        """The method's embedding of one clip from its cached features (see features.py)."""
        if self.baseline:
            return blockwise(self.baseline, features[f"{self.extractor()}/{self.baseline}"])
        prefix = f"{self.extractor()}/{self.granularity}/{self.convention}"
        moments = {order: torch.from_numpy(features[f"{prefix}/{order}"]).double() for order in self.orders}
        flow = {cells: torch.from_numpy(vector).double() for cells, vector in
                flow_from_cache(features, self.extractor(), self.flow_grids, self.flow_segments).items()
                } if self.flow_weight > 0 else {}
        if self.candidate:  # one more flow level of the candidate descriptor, weighted as the flow
            flow.update({f"{self.candidate}{cells}": torch.from_numpy(vector).double() for cells, vector in
                         flow_from_cache(features, self.extractor(), self.candidate_grids, self.flow_segments,
                                         self.candidate).items()})
        if float(features[f"{self.extractor()}/patch/motion_level"][0]) < self.motion_floor:  # still: static
            moments = {order: value if order == 1 else torch.zeros_like(value) for order, value in moments.items()}
            flow = {cells: torch.zeros_like(value) for cells, value in flow.items()}
        convention = "reference" if self.convention == "reference" else "paper"
        return fuse_with_flow(moments, flow, self.alpha, self.flow_weight, self.fusion, convention).float().numpy()


def extractor_name(source: str, frames: int, min_rate: float | None) -> str:
    """The prefix of an extractor's cached features: ``"efficientnet-lite0:blocks.7@16"`` (and
    ``"@4/s"`` with a minimum sampling rate)."""
    return f"{source}@{frames}" + (f"@{min_rate:g}/s" if min_rate else "")


MAIN_NAME = "SemanticMoments + token flow (default)"
PREVIOUS_NAME = "sampling: T=16 over the whole clip (the previous default; the slow preset)"
# where the T frames go, the alternatives weighed (T, at least so many per second; None: over the whole clip);
# those the default or the T sweep (at the default's rate) already run are left out. T=32 at least 4/s was the
# default for a while.
SAMPLING_CANDIDATES = ((32, None), (32, 4.0), (32, 8.0), (16, 8.0))
PAPER_NAME = "SemanticMoments (1,8,4), the paper's method"


def default_methods(backbones: Sequence[str], frames_sweep: Sequence[int] = (8, 16, 32),
                    main_frames: int | None = None) -> list[Method]:
    """The default (the ``motion`` preset), the paper's method, the baselines and the ablations on the
    first backbone; the main setting and mean pooling on every other backbone.

    Groups: ``main``; ``baseline`` (mean pooling; Farnebäck HOF, HOF+MBH and pixel difference, each on
    32 frames over the whole clip and on the default's own sampling, so that "beats optical flow"
    means against flow at its best); ``paper``; ``sampling`` (where the T frames go: the previous
    default and the alternatives the protocol weighed); ``ablation`` (parts, weights, conventions,
    and the candidate token-flow descriptors that were tried); ``frames`` (T); ``backbone``.
    ``backbones[0]`` without a layer gets the preset's layer when it is the preset's backbone.
    """
    settings = preset_settings(None)
    paper = preset_settings("paper")
    main_frames = main_frames or settings["frames"]
    rate = settings.get("min_rate")
    primary = backbones[0]
    if primary == settings["backbone"]:
        primary = f"{primary}:{settings['layer']}"
    flow = settings["flow_weight"]

    def variant(name: str, group: str, **changes) -> Method:
        return Method(name, group, **{"backbone": primary, "frames": main_frames, "flow_weight": flow,
                                      "min_rate": rate, **changes})

    main = variant(MAIN_NAME, "main")
    methods = [main, variant("mean pooling (appearance)", "baseline", orders=(1,), alpha=(1.0,), flow_weight=0.0)]
    for label, baseline in (("optical flow (Farneback HOF)", "optical-flow"), ("HOF+MBH (Farneback)", "hof-mbh"),
                            ("pixel difference", "pixel-difference")):
        methods.append(Method(label, "baseline", None, BASELINE_FRAMES, baseline=baseline))
        if (main_frames, rate) != (BASELINE_FRAMES, None):
            methods.append(Method(f"{label}, the default's sampling", "baseline", None, main_frames, baseline=baseline,
                                  min_rate=rate))
    if backbones[0] == paper["backbone"]:
        methods.append(Method(PAPER_NAME, "paper", f"{paper['backbone']}:{paper['layer']}", paper["frames"]))
    methods += [
        variant(PREVIOUS_NAME, "sampling", frames=16, min_rate=None),
        *(variant(f"sampling: T={frames}, {f'at least {per_second:g}/s' if per_second else 'over the whole clip'}",
                  "sampling", frames=frames, min_rate=per_second)
          for frames, per_second in SAMPLING_CANDIDATES
          if (frames, per_second) != (16, None)
          and not (per_second == rate and (frames == main_frames or frames in frames_sweep))),
        variant("moments only (1,8,4), no flow", "ablation", flow_weight=0.0),
        variant("token flow only", "ablation", alpha=(0.0, 0.0, 0.0), flow_weight=1.0),
        variant("flow + HOF of token flow (candidate, not kept)", "ablation", candidate="hof"),
        variant("flow + MBH of token flow (candidate, not kept)", "ablation", candidate="mbh", candidate_grids=(2,)),
        variant("flow: 1 segment (no temporal order)", "ablation", flow_segments=1),
        variant("flow: 4 segments", "ablation", flow_segments=4),
        variant("flow: grid 2 only", "ablation", flow_grids=(2,)),
        variant("flow: grid 4 only", "ablation", flow_grids=(4,)),
        variant("flow: grids 1,2 (coarser, placement-tolerant)", "ablation", flow_grids=(1, 2)),
        variant("flow: grids 1,2,4", "ablation", flow_grids=(1, 2, 4)),
        variant("flow weight 8", "ablation", flow_weight=8.0),
        variant("flow weight 64", "ablation", flow_weight=64.0),
        variant("moments: frame-level", "ablation", granularity="frame", flow_weight=0.0),
        variant("moments: additive fusion", "ablation", fusion="add", flow_weight=0.0),
        variant("moments: paper convention (raw)", "ablation", convention="paper", flow_weight=0.0),
        variant("moments: paper convention, standardized", "ablation", convention="paper-std", flow_weight=0.0),
    ]
    for orders, alpha in (((2,), (8.0,)), ((1, 2), (1.0, 8.0)), ((2, 3), (8.0, 4.0)), ((1, 2, 3, 4), (1.0, 8.0, 4.0, 4.0))):
        label = ",".join(str(order) for order in orders)
        methods.append(variant(f"moments: orders {label}", "ablation", orders=orders, alpha=alpha, flow_weight=0.0))
    for frames in frames_sweep:
        if frames != main_frames:
            methods.append(variant(main.name, "frames", frames=frames))
    for backbone in backbones[1:]:
        methods.append(variant(main.name, "backbone", backbone=backbone))
        methods.append(variant("moments only (1,8,4), no flow", "backbone", backbone=backbone, flow_weight=0.0))
        methods.append(variant("mean pooling (appearance)", "backbone", backbone=backbone, orders=(1,), alpha=(1.0,),
                               flow_weight=0.0))
    return methods
