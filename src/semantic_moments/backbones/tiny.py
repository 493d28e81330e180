"""``test-tiny``: a deterministic, untrained backbone for fast tests. Not meaningful for search.

A 8 x 8 patchify convolution with fixed pseudo-random weights (seed 0) and a tanh, on 64 x 64
frames: 64 patches x 24 channels. The same on every machine, needs no weights and runs in
microseconds, so tests exercise the whole pipeline without a real model.
"""

from __future__ import annotations

from typing import Any

import torch

from ..errors import BackboneError
from .base import Backbone, Preprocessing, TokenOutput, require_layer
from .registry import BackboneEntry


class TinyTestBackbone(Backbone):
    def __init__(self, entry: BackboneEntry, *, weights: str | None, pretrained: bool, layer: str,
                 device: str = "cpu", dtype: str = "float32", **options: Any) -> None:
        super().__init__(device, dtype)
        if weights is not None or options:
            raise BackboneError(f"{entry.name} has fixed weights; it takes no weights or options")
        self.name, self.layer, self.weights = entry.name, require_layer(layer, ["patchify"], entry.name), "seed:0"
        self.dim = 24
        self.preprocessing = Preprocessing((64, 64), (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
        generator = torch.Generator().manual_seed(0)
        conv = torch.nn.Conv2d(3, self.dim, kernel_size=8, stride=8)
        with torch.no_grad():
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator) * 0.05)
            conv.bias.copy_(torch.randn(conv.bias.shape, generator=generator) * 0.1)
        self.model = conv.eval().requires_grad_(False).to(device=self.device, dtype=self.dtype)

    def forward_tokens(self, pixels: torch.Tensor) -> TokenOutput:
        features = torch.tanh(self.model(pixels))
        rows, columns = features.shape[-2:]
        patch = features.flatten(2).transpose(1, 2)
        return TokenOutput(patch=patch, pooled=patch.mean(dim=1), grid=(rows, columns))
