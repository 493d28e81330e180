"""Where converted and downloaded model files live (one place for every family)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """``$SEMANTIC_MOMENTS_CACHE``, else ``$XDG_CACHE_HOME`` or ``~/.cache``, then ``semantic-moments``."""
    if os.environ.get("SEMANTIC_MOMENTS_CACHE"):
        return Path(os.environ["SEMANTIC_MOMENTS_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "semantic-moments"
