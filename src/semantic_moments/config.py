"""The moment settings every embedding records (``MomentsConfig``).

``MomentsConfig`` is derived from the one settings object (``settings.py``: ``Settings.config``) and
read back from files and indexes; its field defaults are what a file written before a field existed
means (so ``num_frames`` defaults to the 32 frames of the first release), not the current default,
which is ``Settings.preset()``'s. They are saved with every embedding, so any number can be traced back to the settings that made it,
and two embeddings are only compared (or indexed together) when their settings agree.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from .errors import ConfigError

Convention = Literal["reference", "paper"]
Granularity = Literal["patch", "frame"]
Fusion = Literal["concat", "add"]

SUPPORTED_ORDERS = (1, 2, 3, 4)
KEYPOINT_SOURCES = ("pose", "hands")  # in fusion order
PAPER_ALPHA = {1: 1.0, 2: 8.0, 3: 4.0, 4: 4.0}


@dataclass(frozen=True)
class MomentsConfig:
    """How temporal moments are computed and fused into one vector.

    Attributes:
        orders: moment orders to compute, a subset of 1..4 in increasing order. 1 = temporal mean,
            2 = spread (variance or std), 3 = asymmetry (third central moment or skewness),
            4 = tailedness (fourth central moment or kurtosis).
        alpha: one weight per order, used when fusing (paper: 1, 8, 4).
        convention: ``"reference"`` (the authors' released code, which produced the published
            numbers: unbiased std, standardized skewness/kurtosis, each M(k) L2-normalised after patch
            averaging and the fused vector L2-normalised again) or ``"paper"`` (the equations: raw
            central moments, no normalisation).
        standardized: ``paper`` convention only: orders 3 and 4 as standardized skewness/kurtosis
            instead of raw central moments. The reference convention is always standardized.
        granularity: ``"patch"`` (moments of every patch token, then averaged over patches) or
            ``"frame"`` (moments of one pooled/CLS token per frame).
        fusion: ``"concat"`` (R^{len(orders) * d}) or ``"add"`` (weighted sum, R^d).
        num_frames: T, frames sampled uniformly from each clip.
        min_rate: samples per second at least (``video/sample.py``): a clip longer than
            T / min_rate seconds is sampled over its central T / min_rate seconds, so that
            consecutive samples stay close enough for the token flow; None samples the whole clip
            however long it is (the paper's rule).
        flow_weight: weight of the token flow (``flow.py``: which way the features move, per cell of
            a spatial pyramid, per stretch of the clip) beside the moments; 0 leaves it out of the
            fused vector (it is still computed and stored for patch granularity, so it can be
            weighted in later, as alpha can). Needs ``fusion="concat"``.
        flow_grids: the pyramid's grid sizes g (g x g cells each).
        flow_segments: equal stretches of the clip whose flows are kept apart (temporal order).
        keypoints: keypoint sources whose moments join the embedding (``keypoints/``): ``"pose"``
            (the body), ``"hands"`` (needs ``"pose"``: its wrists place the hand crops); empty: none.
        keypoint_weight: weight of each keypoint part beside the moments and the flow (query-time,
            like alpha).
        keypoint_frames: frames the keypoints are found on, spread over the whole clip (or segment).
        keypoint_fusion: ``"shared"``: a keypoint part counts in a pair only where both clips hold it
            (a clip without a person says nothing about the body); ``"zero"``: a missing part is zeros.
        motion_floor: a clip whose motion level (the patch tokens' temporal spread relative to their
            mean, ``ClipStatistics.motion_level``) is below this embeds as static: M(k >= 2) and the
            flow are zero, as for exact duplicates. 0.025 sits between still H.264 clips (codec noise,
            0.017) and the least-moving clip of the benchmark sets (0.034); 0 turns it off.
    """

    orders: tuple[int, ...] = (1, 2, 3)
    alpha: tuple[float, ...] = (1.0, 8.0, 4.0)
    convention: Convention = "reference"
    standardized: bool = False
    granularity: Granularity = "patch"
    fusion: Fusion = "concat"
    num_frames: int = 32
    min_rate: float | None = None
    flow_weight: float = 0.0
    flow_grids: tuple[int, ...] = (2, 4)
    flow_segments: int = 2
    motion_floor: float = 0.025
    keypoints: tuple[str, ...] = ()
    keypoint_weight: float = 16.0
    keypoint_frames: int = 16
    keypoint_fusion: str = "shared"

    def __post_init__(self) -> None:
        orders = tuple(int(order) for order in self.orders)
        object.__setattr__(self, "orders", orders)
        object.__setattr__(self, "alpha", tuple(float(weight) for weight in self.alpha))
        if not orders or any(order not in SUPPORTED_ORDERS for order in orders):
            raise ConfigError(f"orders must be a non-empty subset of {SUPPORTED_ORDERS}, got {orders}")
        if list(orders) != sorted(set(orders)):
            raise ConfigError(f"orders must be increasing and unique, got {orders}")
        object.__setattr__(self, "flow_weight", validate_flow_weight(self.flow_weight))
        validate_alpha(self.alpha, orders, flow_only=self.flow_weight > 0)
        if self.convention not in ("reference", "paper"):
            raise ConfigError(f"convention must be 'reference' or 'paper', got {self.convention!r}")
        if self.granularity not in ("patch", "frame"):
            raise ConfigError(f"granularity must be 'patch' or 'frame', got {self.granularity!r}")
        if self.fusion not in ("concat", "add"):
            raise ConfigError(f"fusion must be 'concat' or 'add', got {self.fusion!r}")
        if int(self.num_frames) < 2:
            raise ConfigError(f"num_frames must be at least 2 (motion needs two frames), got {self.num_frames}")
        object.__setattr__(self, "num_frames", int(self.num_frames))
        if self.min_rate is not None:
            try:
                rate = float(self.min_rate)
            except (TypeError, ValueError):
                raise ConfigError(f"min_rate must be a number of samples per second, got {self.min_rate!r}") from None
            if not 0.0 < rate < float("inf"):
                raise ConfigError(f"min_rate must be positive and finite (samples per second), got {self.min_rate!r}")
            object.__setattr__(self, "min_rate", rate)
        grids = tuple(int(size) for size in self.flow_grids)
        if not grids or any(size < 1 for size in grids) or list(grids) != sorted(set(grids)):
            raise ConfigError(f"flow_grids must be increasing positive grid sizes like (2, 4), got {self.flow_grids}")
        object.__setattr__(self, "flow_grids", grids)
        if int(self.flow_segments) < 1:
            raise ConfigError(f"flow_segments must be at least 1, got {self.flow_segments}")
        object.__setattr__(self, "flow_segments", int(self.flow_segments))
        if not 0.0 <= float(self.motion_floor) < 1.0:
            raise ConfigError(f"motion_floor must be in [0, 1), got {self.motion_floor}")
        object.__setattr__(self, "motion_floor", float(self.motion_floor))
        keypoints = tuple(str(name) for name in self.keypoints)
        object.__setattr__(self, "keypoints", keypoints)
        if any(name not in KEYPOINT_SOURCES for name in keypoints) or len(set(keypoints)) != len(keypoints):
            raise ConfigError(f"keypoints must be distinct names among {', '.join(KEYPOINT_SOURCES)}, got {keypoints}")
        if "hands" in keypoints and "pose" not in keypoints:
            raise ConfigError("keypoints 'hands' needs 'pose' too: the body's wrists place the hand crops")
        object.__setattr__(self, "keypoints", tuple(name for name in KEYPOINT_SOURCES if name in keypoints))
        object.__setattr__(self, "keypoint_weight", validate_flow_weight(self.keypoint_weight, "keypoint_weight"))
        if int(self.keypoint_frames) < 3:
            raise ConfigError(f"keypoint_frames must be at least 3, got {self.keypoint_frames}")
        object.__setattr__(self, "keypoint_frames", int(self.keypoint_frames))
        if self.keypoint_fusion not in ("shared", "zero"):
            raise ConfigError(f"keypoint_fusion must be 'shared' or 'zero', got {self.keypoint_fusion!r}")
        if keypoints and self.fusion != "concat":
            raise ConfigError("keypoints need fusion='concat': their dimension differs from the moments'")
        if self.flow_weight > 0 and self.fusion != "concat":
            raise ConfigError("token flow (flow_weight > 0) needs fusion='concat': its dimension differs from the moments'")
        if self.flow_weight > 0 and self.granularity != "patch":
            raise ConfigError("token flow (flow_weight > 0) needs granularity='patch': it moves over the patch grid")

    @classmethod
    def for_orders(cls, orders: tuple[int, ...], **options: Any) -> MomentsConfig:
        """A config for ``orders`` with the paper's weight for each order unless ``alpha`` is given."""
        unknown = [order for order in orders if order not in PAPER_ALPHA]
        if unknown:
            raise ConfigError(f"orders must be a non-empty subset of {SUPPORTED_ORDERS}, got {tuple(orders)}")
        alpha = options.pop("alpha", None) or tuple(PAPER_ALPHA[order] for order in orders)
        return cls(orders=tuple(orders), alpha=tuple(alpha), **options)

    def alpha_for(self, orders: tuple[int, ...]) -> tuple[float, ...]:
        """This config's weight for each of ``orders``; the paper's for orders it does not hold."""
        configured = dict(zip(self.orders, self.alpha))
        return tuple(configured.get(order, PAPER_ALPHA[order]) for order in orders)

    def replace(self, **changes: Any) -> MomentsConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "orders": list(self.orders),
            "alpha": list(self.alpha),
            "convention": self.convention,
            "standardized": self.standardized,
            "granularity": self.granularity,
            "fusion": self.fusion,
            "num_frames": self.num_frames,
            "min_rate": self.min_rate,
            "flow_weight": self.flow_weight,
            "flow_grids": list(self.flow_grids),
            "flow_segments": self.flow_segments,
            "motion_floor": self.motion_floor,
            # absent without keypoints, as in files made before them
            **({"keypoints": list(self.keypoints), "keypoint_weight": self.keypoint_weight,
                "keypoint_frames": self.keypoint_frames, "keypoint_fusion": self.keypoint_fusion}
               if self.keypoints else {}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MomentsConfig:
        """The config saved by ``to_dict``; raises ConfigError for anything that is not one."""
        if not isinstance(data, dict):
            raise ConfigError(f"a config must be a JSON object, got {type(data).__name__}")
        known = {field.name for field in dataclasses.fields(cls)}
        try:
            return cls(**{key: value for key, value in data.items() if key in known})
        except (TypeError, ValueError) as error:
            raise ConfigError(f"invalid config ({error})") from None

    def sampled_seconds(self) -> float | None:
        """The longest stretch T samples cover (T / min_rate), or None when they cover any clip."""
        return self.num_frames / self.min_rate if self.min_rate else None

    def keypoint_parts(self) -> tuple[str, ...]:
        """Names of the stored keypoint parts: ``keypoints.pose``, ``keypoints.hands``."""
        return tuple(f"keypoints.{name}" for name in self.keypoints)

    def flow_parts(self) -> tuple[str, ...]:
        """Names of the stored token-flow parts, one per pyramid level (``flow.G``)."""
        return tuple(f"flow.{size}" for size in self.flow_grids) if self.granularity == "patch" else ()


def validate_alpha(alpha: tuple[float, ...], orders: tuple[int, ...], flow_only: bool = False) -> None:
    """Raise ConfigError unless ``alpha`` holds one finite, non-negative weight per order, one of them
    positive (all zero only where ``flow_only``: the token flow carries the embedding alone)."""
    if len(alpha) != len(orders):
        raise ConfigError(f"alpha needs one weight per order: {len(orders)} orders {orders}, got {len(alpha)} weights {alpha}")
    if any(not (weight >= 0.0 and weight < float("inf")) for weight in alpha):
        raise ConfigError(f"alpha weights must be finite and non-negative, got {alpha}")
    if not flow_only and not any(weight > 0 for weight in alpha):
        raise ConfigError(f"at least one alpha weight must be positive, got {alpha}")


def validate_flow_weight(weight: float, name: str = "flow_weight") -> float:
    """The weight as a float; raise ConfigError (naming ``name``) unless it is finite and non-negative."""
    try:
        value = float(weight)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {weight!r}") from None
    if not (0.0 <= value < float("inf")):
        raise ConfigError(f"{name} must be finite and non-negative, got {weight!r}")
    return value


def parse_number_list(text: str, what: str) -> tuple[float, ...]:
    """Parse ``"1,8,4"`` into ``(1.0, 8.0, 4.0)``; raise ConfigError naming ``what`` otherwise."""
    try:
        values = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ConfigError(f"{what} must be comma-separated numbers like '1,8,4', got {text!r}") from None
    if not values:
        raise ConfigError(f"{what} must not be empty")
    return values
