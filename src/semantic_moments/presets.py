"""Named settings: the measured default and the paper's method, each one word.

Every preset is a complete choice of backbone, layer, T and weights; any single option given beside
a preset overrides that option only. The numbers behind each choice are in the README's "Quality"
section and docs/benchmarks.md (``bench run`` on six sets and their stress variants, with intervals).

* ``motion`` (the default): EfficientNet-Lite0 ``blocks.7`` (stride 16, 80 channels), T = 16 frames
  at least 4 per second (a clip longer than 4 s is sampled over its central 4 s, so consecutive
  frames stay at most 0.25 s apart and the token flow between them measures motion), the moments with
  alpha = (1, 8, 4) plus token flow (``flow.py``) with weight 16. On the real sets the flow carries
  the ranking; the moments keep the appearance end of the motion slider meaningful. The sampling was
  chosen by leaving one family of sets out at a time (README, "Quality").
* ``slow``: the ``motion`` preset with its T = 16 frames spread over the whole clip however long
  (the previous default), for clips that are one slow motion from start to end (a slow-motion
  replay, a tai chi form): on the sets played four times slower it keeps R@1 where ``motion`` loses
  a third of it, and on repeated motions or motions amid stillness it loses to ``motion``
  (README, "Quality").
* ``paper``: the paper's method as the authors' code runs it: EfficientNet-Lite0 ``blocks.10``
  (the layer measured best for the moments alone), T = 32, alpha = (1, 8, 4), no token flow.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from .errors import ConfigError

PRESETS: MappingProxyType[str, MappingProxyType[str, Any]] = MappingProxyType({
    "motion": MappingProxyType({"backbone": "efficientnet-lite0", "layer": "blocks.7", "frames": 16,
                                "min_rate": 4.0, "flow_weight": 16.0}),
    "slow": MappingProxyType({"backbone": "efficientnet-lite0", "layer": "blocks.7", "frames": 16,
                              "min_rate": None, "flow_weight": 16.0}),
    "paper": MappingProxyType({"backbone": "efficientnet-lite0", "layer": "blocks.10", "frames": 32,
                               "min_rate": None, "flow_weight": 0.0}),
})
DEFAULT_PRESET = "motion"


def preset_settings(name: str | None) -> dict[str, Any]:
    """The settings of preset ``name`` (None: the default). Raises ConfigError for an unknown name."""
    name = name or DEFAULT_PRESET
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
    return dict(PRESETS[name])
