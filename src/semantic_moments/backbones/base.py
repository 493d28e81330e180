"""What every backbone adapter provides: its preprocessing and its tokens."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import BackboneError, ConfigError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in DTYPES:
        raise ConfigError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    return DTYPES[dtype]


def resolve_device(device: str | torch.device) -> torch.device:
    try:
        resolved = torch.device(device)
    except RuntimeError as error:
        raise ConfigError(f"invalid device {device!r}: {error}") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available; use --device cpu")
    return resolved


@dataclass(frozen=True)
class Preprocessing:
    """Input contract of a backbone: RGB frames resized to ``image_size`` (height, width), scaled to
    [0, 1], then (x - mean) / std per channel."""

    image_size: tuple[int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


@dataclass(frozen=True)
class TokenOutput:
    """Tokens of a batch of frames (image backbones) or temporal steps (video backbones).

    Attributes:
        patch: (N, P, d) patch tokens, P = grid[0] * grid[1].
        pooled: (N, d) one token per frame (CLS, or the mean of ``patch`` where a model has none).
        grid: (rows, columns) of the patches in the frame.
    """

    patch: torch.Tensor
    pooled: torch.Tensor
    grid: tuple[int, int]


class Backbone(abc.ABC):
    """A frozen model that turns frames into patch tokens.

    Subclasses set ``name``, ``layer``, ``dim``, ``preprocessing`` and ``weights`` (where the weights
    came from), and implement ``forward_tokens``. Video backbones consume ``clip_length`` frames per
    forward pass and emit one temporal step per ``frames_per_step`` frames (their tubelet size).
    The model is moved to ``device`` once, at construction.
    """

    name: str
    layer: str
    dim: int
    preprocessing: Preprocessing
    weights: str
    clip_length: int = 1
    frames_per_step: int = 1

    def __init__(self, device: str | torch.device = "cpu", dtype: str | torch.dtype = "float32") -> None:
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype)
        if self.device.type == "cpu" and self.dtype == torch.float16:
            raise ConfigError("float16 is not supported on CPU; use float32 or bfloat16")

    def preprocess(self, frames: torch.Tensor) -> torch.Tensor:
        """(N, H, W, 3) uint8 frames -> (N, 3, height, width) normalised pixels on the model's device.

        Frames not already at ``preprocessing.image_size`` are resized (bilinear, antialiased).
        """
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise ConfigError(f"frames must have shape (N, H, W, 3), got {tuple(frames.shape)}")
        if self.device.type == "cuda" and not frames.is_cuda:
            frames = frames.pin_memory()  # page-locked, so the copy below runs asynchronously
        pixels = frames.to(self.device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255.0)
        if tuple(pixels.shape[-2:]) != self.preprocessing.image_size:
            pixels = torch.nn.functional.interpolate(
                pixels, size=self.preprocessing.image_size, mode="bilinear", antialias=True, align_corners=False
            )
        mean = torch.tensor(self.preprocessing.mean, device=self.device).view(1, 3, 1, 1)
        std = torch.tensor(self.preprocessing.std, device=self.device).view(1, 3, 1, 1)
        return ((pixels - mean) / std).to(self.dtype)

    @abc.abstractmethod
    def forward_tokens(self, pixels: torch.Tensor) -> TokenOutput:
        """Tokens of preprocessed pixels (N, 3, height, width); N a multiple of ``clip_length``."""

    def info(self) -> dict[str, Any]:
        """What identifies this backbone's features; saved with every embedding."""
        return {
            "name": self.name,
            "layer": self.layer,
            "dim": self.dim,
            "weights": self.weights,
            "image_size": list(self.preprocessing.image_size),
            "frames_per_step": self.frames_per_step,
            "clip_length": self.clip_length,
        }


def require_layer(layer: str, available: list[str], backbone: str) -> str:
    if layer not in available:
        shown = ", ".join(available if len(available) <= 12 else available[:6] + ["..."] + available[-3:])
        raise BackboneError(f"backbone {backbone!r} has no layer {layer!r}; choose one of: {shown}")
    return layer
