"""semantic-moments: find videos by what moves and how.

SemanticMoments (Huberman et al., 2026): temporal moments (mean, spread, asymmetry) of a frozen
backbone's patch tokens, fused with weights alpha = (1, 8, 4). Training-free.

    from semantic_moments import SemanticMoments, similarity
    model = SemanticMoments()
    a, b = model.embed(["a.mp4", "b.mp4"])
    similarity(a, b)

Importing the package loads no model, probes nothing and imports no heavy dependency; the names
below are resolved on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "SemanticMoments": "embedder",
    "EmbedResult": "embedder",
    "Embedding": "embedding",
    "similarity": "embedding",
    "moment_similarities": "embedding",
    "similarity_matrix": "embedding",
    "MomentsConfig": "config",
    "Settings": "settings",
    "TemporalMoments": "moments",
    "fuse": "moments",
    "Index": "index",
    "SearchHit": "index",
    "build_index": "collection",
    "read_clip": "video",
    "VideoReader": "video",
    "create_backbone": "backbones",
    "list_backbones": "backbones",
    "register_backbone": "backbones",
    "SemanticMomentsError": "errors",
    "VideoError": "errors",
    "BackboneError": "errors",
    "ConfigError": "errors",
    "EmbeddingFileError": "errors",
    "IndexStoreError": "errors",
}

__all__ = sorted(_EXPORTS) + ["__version__"]

if TYPE_CHECKING:
    from .backbones import create_backbone, list_backbones, register_backbone
    from .collection import build_index
    from .config import MomentsConfig
    from .embedder import EmbedResult, SemanticMoments
    from .embedding import Embedding, moment_similarities, similarity, similarity_matrix
    from .errors import (BackboneError, ConfigError, EmbeddingFileError, IndexStoreError, SemanticMomentsError,
                         VideoError)
    from .index import Index, SearchHit
    from .moments import TemporalMoments, fuse
    from .settings import Settings
    from .video import VideoReader, read_clip


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'semantic_moments' has no attribute {name!r}")
