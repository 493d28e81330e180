"""Keeping an index in step with folders of videos: incremental, resumable builds.

``build_index`` scans folders (recursively, every video suffix FFmpeg commonly reads, or ``glob``),
and embeds only what is new or changed: a file whose size and mtime match the index is unchanged;
otherwise its content hash decides (a touched but identical file only has its mtime updated).
Each embedded clip is committed on its own, so an interrupted build keeps everything done so far
and the next run continues where it stopped. ``prune`` drops indexed clips whose files vanished.
Bad files are reported with their cause and skipped; the build goes on.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .index import Index
from .video import hash_file

VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".wmv", ".flv",
                            ".ts", ".mts", ".m2ts", ".3gp", ".ogv", ".gif"})


@dataclass
class BuildSummary:
    """What a build did; ``failed`` maps each bad file to its one-line reason."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return {name: len(getattr(self, name)) for name in ("added", "updated", "unchanged", "removed", "failed")}


def model_for_index(index: Index, **options: Any):
    """A SemanticMoments model with the settings the index was built with; ``options`` override them
    (and are then checked against the index when the model is used). A new index gives the defaults."""
    from .backbones import get_entry
    from .embedder import SemanticMoments

    config, features = index.config, index.feature_settings
    stored: dict[str, Any] = {}
    if config is not None and features is not None:
        backbone = features["backbone"]
        weights = backbone["weights"]
        default = get_entry(backbone["name"]).default_weights
        stored = {"backbone": backbone["name"], "layer": backbone["layer"], "frames": config.num_frames,
                  "orders": config.orders, "alpha": config.alpha, "convention": config.convention,
                  "standardized": config.standardized, "granularity": config.granularity, "fusion": config.fusion,
                  "flow_weight": config.flow_weight, "flow_grids": config.flow_grids,
                  "flow_segments": config.flow_segments, "motion_floor": config.motion_floor,
                  "pretrained": weights != "random",
                  "weights": None if weights in ("random", default, f"pypi:{default}") else weights}
    merged = {**stored, **options}
    return SemanticMoments(merged.pop("backbone", None), **merged)


def find_videos(folders: Sequence[str | os.PathLike[str]], glob: str | None = None) -> list[Path]:
    """Video files under ``folders`` (recursive), sorted, as absolute paths. Raises ConfigError for a
    folder that does not exist."""
    found: set[Path] = set()
    for folder in folders:
        folder = Path(folder)
        if folder.is_file():
            found.add(folder.resolve())
            continue
        if not folder.is_dir():
            raise ConfigError(f"{folder}: no such folder")
        candidates = folder.rglob(glob) if glob else folder.rglob("*")
        found.update(path.resolve() for path in candidates
                     if path.is_file() and (glob or path.suffix.lower() in VIDEO_SUFFIXES))
    return sorted(found)


def build_index(
    index: Index,
    folders: Sequence[str | os.PathLike[str]],
    model,
    glob: str | None = None,
    prune: bool = False,
    show_progress: bool = False,
    ann: str = "auto",
) -> BuildSummary:
    """Bring ``index`` up to date with ``folders`` using ``model`` (a SemanticMoments); see module doc."""
    index.require_settings(model.feature_settings(), "the model")  # refuse before any work
    summary = BuildSummary()
    files = find_videos(folders, glob)
    known = index.files()
    to_embed: list[tuple[Path, bool]] = []
    for path in files:
        key = str(path)
        stat = path.stat()
        if key in known:
            digest, size, mtime = known[key]
            if size == stat.st_size and mtime == stat.st_mtime:
                summary.unchanged.append(key)
                continue
            if hash_file(path) == digest:
                index.touch(key, stat.st_size, stat.st_mtime)
                summary.unchanged.append(key)
                continue
            to_embed.append((path, True))
        else:
            to_embed.append((path, False))
    results = model.iter_embed([path for path, _ in to_embed], show_progress=show_progress)
    for (path, replacing), result in zip(to_embed, results):
        if result.error is not None:
            summary.failed[str(path)] = str(result.error)
            continue
        stat = path.stat()
        index.add(result.embedding, path=str(path), size_bytes=stat.st_size, mtime=stat.st_mtime)
        (summary.updated if replacing else summary.added).append(str(path))
    if prune:
        present = {str(path) for path in files}
        vanished = [path for path in known if path not in present]
        index.remove(vanished)
        summary.removed = vanished
    if summary.added or summary.updated or summary.removed or index.ann is None:
        index.write_ann(ann)
    return summary
