"""Where converted and downloaded model files live (one place for every family)."""

from __future__ import annotations

import os
from pathlib import Path


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The SHA-256 (hex) of a file's bytes, read in 1 MiB blocks."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_root() -> Path:
    """``$SEMANTIC_MOMENTS_CACHE``, else ``$XDG_CACHE_HOME`` or ``~/.cache``, then ``semantic-moments``."""
    if os.environ.get("SEMANTIC_MOMENTS_CACHE"):
        return Path(os.environ["SEMANTIC_MOMENTS_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "semantic-moments"
