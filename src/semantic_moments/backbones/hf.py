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

from ..errors import BackboneError
from .base import Backbone, Preprocessing, TokenOutput, require_layer
from .registry import BackboneEntry, register_backbone

IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
CLIP_STATS = ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))
HALF = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))


class HuggingFaceBackbone(Backbone):
    def __init__(self, entry: BackboneEntry, *, weights: str | None, pretrained: bool, layer: str,
                 device: str = "cpu", dtype: str = "float32", config_overrides: dict[str, Any] | None = None,
                 clip_length: int | None = None, **options: Any) -> None:
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
            try:
                model = model_class.from_pretrained(source, **(config_overrides or {}))
            except (OSError, ValueError, EnvironmentError) as error:
                first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                raise BackboneError(
                    f"{entry.name}: could not load weights {source!r} ({first_line}). Without internet, download "
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

    def forward_tokens(self, pixels: torch.Tensor) -> TokenOutput:
        rows, columns = (side // self._patch_size for side in pixels.shape[-2:])
        want_hidden = self.layer != "final"
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


def _register(name: str, hub_id: str, description: str, **spec: Any) -> None:
    register_backbone(BackboneEntry(name, HuggingFaceBackbone, description, hub_id, "final", spec))


_VIT = {"small": (384, 12, 6), "base": (768, 12, 12), "large": (1024, 24, 16), "giant": (1536, 40, 24)}
for _size, (_width, _depth, _heads) in _VIT.items():
    _mlp = 4096 if _size == "giant" else 4 * _width
    for _registers in (False, True):
        _suffix, _hub = ("-reg", f"facebook/dinov2-with-registers-{_size}") if _registers else ("", f"facebook/dinov2-{_size}")
        _register(
            f"dinov2-{_size}{_suffix}", _hub,
            f"DINOv2 ViT-{_size[0].upper()}/14{' with registers' if _registers else ''}, 224px, 256 patches"
            + (" (the paper's backbone)" if _size == "large" and _registers else ""),
            model_class="Dinov2WithRegistersModel" if _registers else "Dinov2Model",
            config_class="Dinov2WithRegistersConfig" if _registers else "Dinov2Config",
            architecture={"hidden_size": _width, "num_hidden_layers": _depth, "num_attention_heads": _heads,
                          "intermediate_size": _mlp, "patch_size": 14, "image_size": 518,
                          "use_swiglu_ffn": _size == "giant"},
            cls_token=True, video=False, image_size=224, stats=IMAGENET,
        )

for _name, _hub, _arch in (
    ("clip-vit-b-16", "openai/clip-vit-base-patch16", (768, 12, 12, 16)),
    ("clip-vit-l-14", "openai/clip-vit-large-patch14", (1024, 24, 16, 14)),
):
    _register(_name, _hub, f"CLIP image tower {_hub.split('/')[1]}, 224px",
              model_class="CLIPVisionModel", config_class="CLIPVisionConfig",
              architecture={"hidden_size": _arch[0], "num_hidden_layers": _arch[1], "num_attention_heads": _arch[2],
                            "intermediate_size": 4 * _arch[0], "patch_size": _arch[3], "image_size": 224},
              cls_token=True, video=False, stats=CLIP_STATS)

_register("siglip-base", "google/siglip-base-patch16-224", "SigLIP image tower ViT-B/16, 224px",
          model_class="SiglipVisionModel", config_class="SiglipVisionConfig",
          architecture={"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
                        "intermediate_size": 3072, "patch_size": 16, "image_size": 224},
          cls_token=False, video=False, stats=HALF)

_register("videomae-base", "MCG-NJU/videomae-base", "VideoMAE ViT-B video model: 16-frame clips, tubelets of 2",
          model_class="VideoMAEModel", config_class="VideoMAEConfig",
          architecture={"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
                        "intermediate_size": 3072, "patch_size": 16, "image_size": 224, "num_frames": 16},
          cls_token=False, video=True, stats=IMAGENET)

_register("vjepa2-large", "facebook/vjepa2-vitl-fpc64-256", "V-JEPA 2 ViT-L video model, 256px, tubelets of 2",
          model_class="VJEPA2Model", config_class="VJEPA2Config",
          architecture={"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16, "crop_size": 256,
                        "frames_per_clip": 64},
          cls_token=False, video=True, stats=IMAGENET, clip_length=16)
