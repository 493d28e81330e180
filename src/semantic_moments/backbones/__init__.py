"""Backbone registry: ``create_backbone(name, ...)``, ``list_backbones()``.

Families: ``efficientnet`` (default, offline), ``hf`` (DINOv2, CLIP, SigLIP, VideoMAE, V-JEPA 2 via
transformers) and ``tiny`` (deterministic test backbone). Importing this package loads no model.
"""

from .base import Backbone, Preprocessing, TokenOutput
from .registry import BackboneEntry, create_backbone, get_entry, list_backbones, register_backbone

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
