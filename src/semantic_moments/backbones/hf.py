"""Hugging Face ``transformers`` backbones: DINOv2 (the paper's), CLIP and SigLIP image towers, and the
video models VideoMAE and V-JEPA 2. Needs the ``hf`` extra (``pip install semantic-moments[hf]``).

Weights come from a hub id (downloaded by ``transformers`` when online) or a local directory holding
``config.json`` and the weights (``weights=PATH``). ``pretrained=False`` builds the architecture with
random weights from the entry's own config, which needs no download (speed benchmarks, tests).

Tokens: the final layer's output (``layer="final"``; normalised for DINOv2 and SigLIP) or the raw
hidden state after block N (``layer="blocks.N"``). CLS and register tokens are never patches; the
CLS token (or the patch mean where a model has none) is the frame-level token.

Video models consume ``clip_length`` frames per forward pass and emit one temporal step per tubelet
(``frames_per_step`` = 2 frames): T sampled frames give T / 2 temporal samples of P patch tokens,
and T must be a multiple of ``clip_length`` (16).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..errors import BackboneError, first_line
from . import runtime as runtime_module
from .base import Backbone, Preprocessing, TokenOutput, require_layer
from .registry import BackboneEntry



HUB_HOST = ("huggingface.co", 443)
HUB_PROBE_SECONDS = 1.5


def hub_reachable(timeout: float = HUB_PROBE_SECONDS) -> bool:
    """False when the hub is off (HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE) or does not answer a TCP
    connection within ``timeout`` seconds (``HF_ENDPOINT`` is honoured)."""
    import os
    import socket
    from urllib.parse import urlsplit

    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes") or \
            os.environ.get("TRANSFORMERS_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False
    endpoint = urlsplit(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host, port = endpoint.hostname or HUB_HOST[0], endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
        return True
    except OSError:
        return False


def _hub_cached(repo_id: str) -> bool:
    """True when the hub model's config is in the local cache (it may load without a network)."""
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
    except Exception:  # noqa: BLE001 - no hub library or an odd cache: let from_pretrained decide
        return False


class _HiddenState(torch.nn.Module):
    """The model up to the chosen layer: pixels -> that layer's hidden state (N, tokens, d)."""

    def __init__(self, model: torch.nn.Module, index: int | None) -> None:
        super().__init__()
        self.model, self.index = model, index

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        output = self.model(pixel_values=pixels, output_hidden_states=self.index is not None)
        return output.last_hidden_state if self.index is None else output.hidden_states[self.index]


class HuggingFaceBackbone(Backbone):
    def __init__(self, entry: BackboneEntry, *, weights: str | None, pretrained: bool, layer: str,
                 device: str = "cpu", dtype: str = "float32", config_overrides: dict[str, Any] | None = None,
                 clip_length: int | None = None, runtime: str = "auto", **options: Any) -> None:
        super().__init__(device, dtype)
        if options:
            raise BackboneError(f"{entry.name}: unknown options {sorted(options)}")
        try:
            import transformers
        except ImportError:
            raise BackboneError(f"{entry.name} needs `pip install 'semantic-moments[hf]'` (transformers)") from None
        spec = entry.options
        model_class = getattr(transformers, spec["model_class"])
        if pretrained:
            source = weights or entry.default_weights
            if weights and not Path(weights).exists() and ("/" not in weights or weights.startswith((".", "/"))):
                raise BackboneError(f"{entry.name}: weights path {weights} does not exist")
            transformers.utils.logging.disable_progress_bar()  # no "Loading weights" bar in our output
            if not Path(source).exists() and not _hub_cached(source) and not hub_reachable():
                # the hub's own client would retry for about half a minute before saying the same
                raise BackboneError(
                    f"{entry.name}: weights {source!r} are not in the local cache and the model hub cannot be "
                    f"reached (offline, or HF_HUB_OFFLINE=1). Download the model where there is internet "
                    f"(huggingface-cli download {entry.default_weights}) and pass weights=DIR (--weights DIR)")
            try:
                model = model_class.from_pretrained(source, **(config_overrides or {}))
            except (OSError, ValueError, EnvironmentError) as error:
                first = first_line(error)
                raise BackboneError(
                    f"{entry.name}: could not load weights {source!r} ({first}). Without internet, download "
                    f"the model elsewhere (huggingface-cli download {entry.default_weights}) and pass weights=DIR"
                ) from None
            self.weights = str(source)
        else:
            config_class = getattr(transformers, spec["config_class"])
            model = model_class(config_class(**{**spec["architecture"], **(config_overrides or {})}))
            self.weights = "random"
        config = model.config
        layers = [f"blocks.{index}" for index in range(config.num_hidden_layers)] + ["final"]
        self.name, self.layer = entry.name, require_layer(layer, layers, entry.name)
        self.dim = config.hidden_size
        self._prefix_tokens = (1 if spec["cls_token"] else 0) + int(getattr(config, "num_register_tokens", 0) or 0)
        self._has_cls = spec["cls_token"]
        self._video = spec["video"]
        # DINOv2 interpolates its position embeddings, so it runs at the paper's 224 px; the others
        # need the size their position embeddings were trained for.
        size = int(spec.get("image_size") or getattr(config, "crop_size", None) or config.image_size)
        self._patch_size = int(config.patch_size)
        if self._video:
            self.frames_per_step = int(config.tubelet_size)
            fixed_length = getattr(config, "num_frames", None)  # VideoMAE: fixed; V-JEPA 2 (RoPE): any
            self.clip_length = int(clip_length or fixed_length or spec["clip_length"])
            if fixed_length and self.clip_length != fixed_length:
                raise BackboneError(f"{entry.name} takes clips of exactly {fixed_length} frames, not {self.clip_length}")
            if self.clip_length % self.frames_per_step:
                raise BackboneError(f"{entry.name}: clip_length must be a multiple of the tubelet size {self.frames_per_step}")
        self.preprocessing = Preprocessing((size, size), *spec["stats"])
        self.model = model.eval().requires_grad_(False).to(device=self.device, dtype=self.dtype)
        # ONNX Runtime / OpenVINO on the CPU for image models whose pooled token is the CLS (the hidden
        # state is all that comes out of the exported network); torch for the rest
        exportable = self.dtype == torch.float32 and not self._video and self._has_cls
        index = None if self.layer == "final" else int(self.layer.split(".")[1]) + 1
        self.runtime, run = runtime_module.prepare(_HiddenState(self.model, index), torch.zeros(2, 3, size, size),
                                                   f"{entry.name}-{self.layer}", runtime, self.device, exportable)
        self._run = None if self.runtime == "torch" else run

    def forward_tokens(self, pixels: torch.Tensor) -> TokenOutput:
        rows, columns = (side // self._patch_size for side in pixels.shape[-2:])
        want_hidden = self.layer != "final"
        if self._run is not None:  # image model with a CLS token, run by ONNX Runtime or OpenVINO
            hidden = self._run(pixels)
            return TokenOutput(patch=hidden[:, self._prefix_tokens:], pooled=hidden[:, 0], grid=(rows, columns))
        if self._video:
            clips = pixels.reshape(-1, self.clip_length, *pixels.shape[1:])
            key = "pixel_values_videos" if "VJEPA" in type(self.model).__name__ else "pixel_values"
            extra = {"skip_predictor": True} if key == "pixel_values_videos" else {}
            output = self.model(**{key: clips}, output_hidden_states=want_hidden, **extra)
        else:
            output = self.model(pixel_values=pixels, output_hidden_states=want_hidden)
        hidden = output.hidden_states[int(self.layer.split(".")[1]) + 1] if want_hidden else output.last_hidden_state
        patch = hidden[:, self._prefix_tokens:]
        if self._video:  # (clips, steps * P, d) -> (clips * steps, P, d)
            patch = patch.reshape(-1, rows * columns, patch.shape[-1])
        if self._has_cls:
            pooled = hidden[:, 0]
        elif not want_hidden and getattr(output, "pooler_output", None) is not None and not self._video:
            pooled = output.pooler_output
        else:
            pooled = patch.mean(dim=1)
        return TokenOutput(patch=patch, pooled=pooled, grid=(rows, columns))
