"""The methods a benchmark compares: SemanticMoments settings (all options of the one implementation,
evaluated from cached features) and the classic baselines."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..flow import fuse_with_flow
from ..settings import Settings
from ..index.rows import fused_cosines, unit_blocks
from ..keypoints.kinematics import hand_moments, pose_moments
from .baselines import blockwise
from .features import KEYPOINT_FRAMES, flow_from_cache
from .metrics import cosine_matrix

BASELINE_FRAMES = 32


@dataclass(frozen=True)
class Method:
    """One row of the comparison: a SemanticMoments setting (``settings``) or a classic baseline.

    ``group`` orders the report: ``main`` (the default), ``baseline``, ``paper``, ``sampling``,
    ``ablation``, ``frames`` (the frame-count sweep) or ``backbone`` (the main setting on another
    backbone) or ``keypoints``. A baseline (``baseline`` names it, ``settings`` None) reads
    ``baseline_sampling`` = (frames, minimum rate or None). ``candidate``: a candidate token-flow
    descriptor fused beside the flow (``"hof"`` or ``"mbh"``) on ``candidate_grids``. The moments of
    keypoints come from ``settings`` (its keypoints, weight and fusion rule); ``keypoints_alone``
    names the parts of a row that is keypoints only (``settings`` None).
    """

    name: str
    group: str
    settings: Settings | None = None
    baseline: str | None = None
    baseline_sampling: tuple[int, float | None] = (BASELINE_FRAMES, None)
    candidate: str | None = None
    candidate_grids: tuple[int, ...] = (4,)
    keypoints_alone: tuple[str, ...] = ()

    @property
    def keypoint_parts(self) -> tuple[str, ...]:
        return self.settings.keypoints if self.settings is not None else self.keypoints_alone

    @property
    def backbone(self) -> str | None:
        """``"name"`` or ``"name:layer"`` (None for a baseline)."""
        if self.settings is None:
            return None
        return f"{self.settings.backbone}:{self.settings.layer}" if self.settings.layer else self.settings.backbone

    @property
    def frames(self) -> int:
        return self.settings.frames if self.settings is not None else self.baseline_sampling[0]

    @property
    def min_rate(self) -> float | None:
        return self.settings.min_rate if self.settings is not None else self.baseline_sampling[1]

    @property
    def key(self) -> str:
        sampling = f", at least {self.min_rate:g}/s" if self.min_rate else ""
        keypoints = f" + {'+'.join(self.keypoint_parts)}" if self.keypoint_parts and (self.settings or self.baseline) else ""
        return f"{self.name} [{self.backbone or ('keypoints' if self.keypoint_parts and not self.baseline else 'pixels')}" \
               f"{keypoints}, T={self.frames}{sampling}]"

    def extractor(self) -> str:
        return extractor_name("baseline" if self.baseline else self.backbone, self.frames, self.min_rate)

    @property
    def uses_backbone(self) -> bool:
        return self.settings is not None

    def similarity(self, features: Sequence[dict[str, np.ndarray]]) -> np.ndarray:
        """(N, N) similarities of the clips: the cosine of ``vector``, or, with keypoint parts, the
        fused cosine of the index (``index/rows.py``): the method's own vector as one block weighing
        what its parts weigh together, then each keypoint part with ``keypoint_weight``."""
        if not self.keypoint_parts:
            return cosine_matrix(np.stack([self.vector(clip) for clip in features]))
        blocks, sizes, weights = [], [], []
        if self.settings is not None or self.baseline:
            blocks.append(np.stack([self.vector(clip) for clip in features]))
            config = self.settings.config if self.settings is not None else None
            weights.append(float(np.sqrt(sum(weight ** 2 for weight in config.alpha)
                                         + len(config.flow_parts()) * config.flow_weight ** 2 * (config.flow_weight > 0)))
                           if config is not None else 1.0)
        prefix = extractor_name("keypoints", KEYPOINT_FRAMES, None)
        for part in self.keypoint_parts:
            describe = pose_moments if part == "pose" else hand_moments
            blocks.append(np.stack([describe(clip[f"{prefix}/{part}"], clip[f"{prefix}/times"]) for clip in features]))
            weights.append(self.settings.keypoint_weight if self.settings is not None else 1.0)
        sizes = [block.shape[1] for block in blocks]
        units = unit_blocks(np.concatenate(blocks, axis=1), sizes)
        fusion = self.settings.keypoint_fusion if self.settings is not None else "shared"
        shared = [False] * (len(blocks) - len(self.keypoint_parts)) + [fusion == "shared"] * len(self.keypoint_parts)
        return fused_cosines(units, units, weights, sizes, shared)

    def vector(self, features: dict[str, np.ndarray]) -> np.ndarray:
        """The method's embedding of one clip from its cached features (see features.py)."""
        if self.baseline or self.settings is None:
            return blockwise(self.baseline, features[f"{self.extractor()}/{self.baseline}"])
        settings = self.settings
        config = settings.config
        cached = "paper-std" if settings.convention == "paper" and settings.standardized else settings.convention
        prefix = f"{self.extractor()}/{settings.granularity}/{cached}"
        moments = {order: torch.from_numpy(features[f"{prefix}/{order}"]).double() for order in settings.orders}
        flow = {cells: torch.from_numpy(vector).double() for cells, vector in
                flow_from_cache(features, self.extractor(), settings.flow_grids, settings.flow_segments).items()
                } if settings.flow_weight > 0 else {}
        if self.candidate:  # one more flow level of the candidate descriptor, weighted as the flow
            flow.update({f"{self.candidate}{cells}": torch.from_numpy(vector).double() for cells, vector in
                         flow_from_cache(features, self.extractor(), self.candidate_grids, settings.flow_segments,
                                         self.candidate).items()})
        if float(features[f"{self.extractor()}/patch/motion_level"][0]) < settings.motion_floor:  # still: static
            moments = {order: value if order == 1 else torch.zeros_like(value) for order, value in moments.items()}
            flow = {cells: torch.zeros_like(value) for cells, value in flow.items()}
        return fuse_with_flow(moments, flow, config.alpha, settings.flow_weight, settings.fusion,
                              settings.convention).float().numpy()


def extractor_name(source: str, frames: int, min_rate: float | None) -> str:
    """The prefix of an extractor's cached features: ``"efficientnet-lite0:blocks.7@16"`` (and
    ``"@4/s"`` with a minimum sampling rate)."""
    return f"{source}@{frames}" + (f"@{min_rate:g}/s" if min_rate else "")


MAIN_NAME = "SemanticMoments + token flow (default)"
PREVIOUS_NAME = "keypoints: none (the flow preset)"  # the default before keypoints joined it
SLOW_NAME = "sampling: T=16 over the whole clip (the slow preset)"
PREVIOUS_SAMPLING = (16, None)
# where the T frames go, the alternatives weighed (T, at least so many per second; None: over the whole clip);
# those the default, the previous default or the T sweep (at the default's rate) already run are left out.
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
    default = Settings.preset()
    main_frames = main_frames or default.frames
    rate = default.min_rate
    name, _, layer = backbones[0].partition(":")
    if not layer:
        layer = default.layer if name == default.backbone else None
    primary = default.replace(backbone=name, layer=layer or None, frames=main_frames)

    def variant(label: str, group: str, backbone: str | None = None, convention: str | None = None,
                candidate: str | None = None, candidate_grids: tuple[int, ...] = (4,), **changes) -> Method:
        """``primary`` with ``changes`` (Settings fields); ``backbone`` "name[:layer]"; convention
        ``paper-std`` is the paper's, standardized."""
        if backbone is not None:
            other, _, other_layer = backbone.partition(":")
            changes.update(backbone=other, layer=other_layer or None)
        if convention is not None:
            changes.update(convention="paper" if convention == "paper-std" else convention,
                           standardized=convention == "paper-std")
        return Method(label, group, primary.replace(**changes), candidate=candidate, candidate_grids=candidate_grids)

    main = variant(MAIN_NAME, "main")
    methods = [main, variant("mean pooling (appearance)", "baseline", orders=(1,), alpha=(1.0,), flow_weight=0.0,
                             keypoints=())]
    for label, baseline in (("optical flow (Farneback HOF)", "optical-flow"), ("HOF+MBH (Farneback)", "hof-mbh"),
                            ("pixel difference", "pixel-difference")):
        methods.append(Method(label, "baseline", baseline=baseline))
        if (main_frames, rate) != (BASELINE_FRAMES, None):
            methods.append(Method(f"{label}, the default's sampling", "baseline", baseline=baseline,
                                  baseline_sampling=(main_frames, rate)))
    if name == Settings.preset("paper").backbone:
        methods.append(Method(PAPER_NAME, "paper", Settings.preset("paper")))
    methods += [
        variant(SLOW_NAME, "sampling", frames=PREVIOUS_SAMPLING[0], min_rate=PREVIOUS_SAMPLING[1]),
        *(variant(f"sampling: T={frames}, {f'at least {per_second:g}/s' if per_second else 'over the whole clip'}",
                  "sampling", frames=frames, min_rate=per_second)
          for frames, per_second in SAMPLING_CANDIDATES
          if (frames, per_second) != PREVIOUS_SAMPLING
          and not (per_second == rate and (frames == main_frames or frames in frames_sweep))),
        variant("moments only (1,8,4), no flow", "ablation", flow_weight=0.0, keypoints=()),
        variant("token flow only", "ablation", alpha=(0.0, 0.0, 0.0), flow_weight=1.0, keypoints=()),
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
        variant("moments: frame-level", "ablation", granularity="frame", flow_weight=0.0, keypoints=()),
        variant("moments: additive fusion", "ablation", fusion="add", flow_weight=0.0, keypoints=()),
        variant("moments: paper convention (raw)", "ablation", convention="paper", flow_weight=0.0, keypoints=()),
        variant("moments: paper convention, standardized", "ablation", convention="paper-std", flow_weight=0.0, keypoints=()),
    ]
    for orders, alpha in (((2,), (8.0,)), ((1, 2), (1.0, 8.0)), ((2, 3), (8.0, 4.0)), ((1, 2, 3, 4), (1.0, 8.0, 4.0, 4.0))):
        label = ",".join(str(order) for order in orders)
        methods.append(variant(f"moments: orders {label}", "ablation", orders=orders, alpha=alpha, flow_weight=0.0,
                               keypoints=()))
    # moments of keypoints (keypoints/): the default without them, alone, and other weights, parts and rules
    # for a part that saw nothing in one clip: the candidates the protocol weighed
    only = (KEYPOINT_FRAMES, None)
    methods += [
        variant(PREVIOUS_NAME, "keypoints", keypoints=()),
        Method("keypoints only: body", "keypoints", keypoints_alone=("pose",), baseline_sampling=only),
        Method("keypoints only: body + hands", "keypoints", keypoints_alone=("pose", "hands"), baseline_sampling=only),
        Method("keypoints only: hands", "keypoints", keypoints_alone=("hands",), baseline_sampling=only),
    ]
    for parts in (("pose",), ("pose", "hands")):
        label = " + ".join("body" if part == "pose" else part for part in parts)
        for weight in (8.0, 16.0, 24.0, 32.0):
            if (parts, weight) != (primary.keypoints, primary.keypoint_weight):
                methods.append(variant(f"keypoints: {label}, weight {weight:g}", "keypoints", keypoints=parts,
                                       keypoint_weight=weight))
        methods.append(variant(f"keypoints: {label}, weight {primary.keypoint_weight:g}, missing = zeros", "keypoints",
                               keypoints=parts, keypoint_fusion="zero"))
    for frames in frames_sweep:
        if frames != main_frames:
            methods.append(variant(main.name, "frames", frames=frames))
    for backbone in backbones[1:]:
        methods.append(variant(main.name, "backbone", backbone=backbone))
        methods.append(variant("moments only (1,8,4), no flow", "backbone", backbone=backbone, flow_weight=0.0,
                               keypoints=()))
        methods.append(variant("mean pooling (appearance)", "backbone", backbone=backbone, orders=(1,), alpha=(1.0,),
                               flow_weight=0.0, keypoints=()))
    return methods
