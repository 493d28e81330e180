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
from itertools import chain
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .index import Index
from .video import VIDEO_SUFFIXES, hash_file
from .windows import WindowPlan



@dataclass
class BuildSummary:
    """What a build did; ``failed`` maps each bad file to its one-line reason."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # not scanned: unreadable folders, broken links, loops
    workers: dict[str, int] = field(default_factory=dict)  # clips embedded per Ray node (an engine's build)

    def counts(self) -> dict[str, int]:
        return {name: len(getattr(self, name))
                for name in ("added", "updated", "unchanged", "removed", "failed", "skipped")}


def model_for_index(index: Index | None, preset: str | None = None, execution: dict[str, Any] | None = None,
                    **overrides: Any):
    """A SemanticMoments model with the settings ``index`` was built with (a new, empty or absent
    index: ``preset``'s, the default's without one). A ``preset`` or an override (``Settings``
    fields; None: not given) that disagrees with the index's settings is refused with a ConfigError
    naming both values: an index holds one kind of embedding. ``execution``: how the model runs
    (device, dtype, batch_size, decode_workers, decode_threads, runtime)."""
    from .embedder import SemanticMoments
    from .settings import Settings

    config, features = (index.config, index.feature_settings) if index is not None else (None, None)
    stored = Settings.of_embedding(features["backbone"], config) if config is not None and features else None
    settings = Settings.resolve(preset if preset is not None or stored is None else stored, **overrides)
    if stored is not None:
        differences = stored.differences(settings)
        if differences:
            asked = f"--preset {preset}" if preset is not None else "the options given"
            details = "; ".join(f"{name}: index has {theirs!r}, {asked} {'give' if preset is None else 'gives'} {mine!r}"
                                for name, (theirs, mine) in differences.items())
            raise ConfigError(f"{index.path}: the index was built with other settings ({details}); build another "
                              "index for these settings, or leave the options out to use the index's")
    return SemanticMoments(settings=settings, **(execution or {}))


def find_videos(folders: Sequence[str | os.PathLike[str]], glob: str | None = None,
                skipped: dict[str, str] | None = None) -> list[Path]:
    """Video files under ``folders`` (recursive, following folder links once), sorted, as absolute
    paths the way the user reaches them (not resolved through links). What cannot be scanned
    (unreadable folders, broken links, link loops) is recorded in ``skipped`` {path: reason}.
    Raises ConfigError for a folder that does not exist."""
    import fnmatch

    skipped = {} if skipped is None else skipped
    found: set[Path] = set()
    for folder in folders:
        folder = Path(folder)
        if folder.is_file():
            found.add(Path(os.path.abspath(folder)))
            continue
        if not folder.is_dir():
            raise ConfigError(f"{folder}: no such folder")
        visited: set[tuple[int, int]] = set()

        def unreadable(error: OSError) -> None:
            skipped[str(error.filename)] = f"unreadable folder ({error.strerror})"

        for directory, subfolders, names in os.walk(folder, onerror=unreadable, followlinks=True):
            status = os.stat(directory)
            if (status.st_dev, status.st_ino) in visited:  # a link back to a folder already scanned
                skipped[directory] = "folder link loop (already scanned)"
                subfolders[:] = []
                continue
            visited.add((status.st_dev, status.st_ino))
            for name in names:  # os.walk lists a broken link among the files
                path = Path(directory) / name
                if not path.exists():
                    skipped[str(path)] = "broken link" if path.is_symlink() else "vanished while scanning"
                    continue
                if not path.is_file():
                    continue
                if glob and not fnmatch.fnmatch(name, glob):
                    continue
                if glob or path.suffix.lower() in VIDEO_SUFFIXES:
                    found.add(Path(os.path.abspath(path)))  # the path as the user reaches it, links kept
    return sorted(found)


def expand_sources(sources: Sequence[str | os.PathLike[str]]) -> list[str]:
    """What ``embed`` embeds: files as given; a folder holding images directly is one clip (an image
    sequence); any other folder stands for every video under it (recursive, sorted). A folder with
    neither stays as given, so it is reported as a bad item with its cause."""
    from .video import IMAGE_SUFFIXES

    expanded: list[str] = []
    for source in sources:
        path = Path(source)
        if not path.is_dir():
            expanded.append(str(source))
            continue
        if any(child.suffix.lower() in IMAGE_SUFFIXES and child.is_file() for child in path.iterdir()):
            expanded.append(str(source))
            continue
        videos = [str(video) for video in find_videos([path])]
        expanded.extend(videos or [str(source)])
    return expanded


def is_within(path: str, roots: Sequence[str | os.PathLike[str]]) -> bool:
    """True when ``path`` is one of ``roots`` or lies under one of them (paths compared as text)."""
    return any(path == str(root) or path.startswith(str(root) + os.sep) for root in roots)


def build_index(
    index: Index,
    folders: Sequence[str | os.PathLike[str]],
    model,
    glob: str | None = None,
    prune: bool = False,
    show_progress: bool = False,
    ann: str = "auto",
    retry_failed: bool = False,
    windows: str | WindowPlan | None = None,
    engine=None,
    include_removed: bool = False,
) -> BuildSummary:
    """Bring ``index`` up to date with ``folders`` using ``model`` (a SemanticMoments); see module doc.

    A file that failed to embed is remembered by version (size, mtime) and not tried again until it
    changes, or ``retry_failed``; it is listed in ``skipped`` with the earlier reason.

    ``windows`` (``"LEN[:STRIDE]"`` seconds or a WindowPlan; default: the index's own, if it has
    one) also indexes every window of the videos long enough to hold two (``segments.py``); it is
    recorded in the index, and videos indexed before without windows are embedded again.

    ``engine`` (e.g. ``engines.ray_data.RayEngine``) embeds the files elsewhere; results are
    committed here one by one as they arrive, in the order they finish.

    Files taken out with ``index remove`` (``Index.remove_ids``) stay out (listed in ``skipped``)
    unless ``include_removed``, which indexes them again and forgets that they were removed."""
    index.require_settings(model.feature_settings(), "the model")  # refuse before any work
    plan = None
    if windows is not None:
        plan = WindowPlan.parse(windows, model.config.num_frames)
    elif index.builds.window_plan is not None:
        plan = WindowPlan.parse(index.builds.window_plan, model.config.num_frames)
    if plan is not None:
        plan.require_rate(model.config.min_rate)
    if plan is not None and plan.frames != model.config.num_frames:
        raise ConfigError(f"the index's windows hold {plan.frames} frames, the model samples {model.config.num_frames}")
    if plan is not None and engine is not None:
        raise ConfigError("windows of long videos are embedded by the local engine only (not --engine ray)")
    with index.builds.lock():
        if plan is not None:
            index.builds.require_window_plan(plan.to_dict())  # recorded with the first file that succeeds
        if include_removed:
            index.builds.forget_removed()
        return _build(index, folders, model, glob, prune, show_progress, ann, retry_failed, plan, engine)


def _build(index: Index, folders, model, glob, prune, show_progress, ann, retry_failed=False,
           plan: WindowPlan | None = None, engine=None) -> BuildSummary:
    summary = BuildSummary()
    plan_record = plan.to_dict() if plan is not None else None
    files = find_videos(folders, glob, summary.skipped)
    known = index.builds.files()
    unwindowed: set[str] = set()  # long videos indexed before windows were asked for: embedded again
    if plan is not None:
        windowed = index.windowed()
        unwindowed = {path for path, duration in index.durations().items()
                      if path not in windowed and duration >= plan.min_duration and plan.count(duration) >= 2}
    failed_before = index.builds.failures()
    removed = index.builds.removed_paths()
    present = {str(path) for path in files}
    to_embed: list[tuple[Path, bool]] = []
    for path in files:
        key = str(path)
        if key in removed:
            summary.skipped[key] = "removed with `index remove`; `index build --include-removed` indexes it again"
            continue
        try:
            stat = path.stat()
        except OSError as error:  # vanished (or became unreadable) since the scan
            summary.failed[key] = f"{key}: {error.strerror or 'gone'} (changed during the build)"
            continue
        earlier = failed_before.get(key)
        if (earlier and not retry_failed and (earlier.size_bytes, earlier.mtime) == (stat.st_size, stat.st_mtime)
                and earlier.windows == plan_record):  # a failure under other windows is tried again
            summary.skipped[key] = f"failed before, unchanged since ({earlier.reason}); --retry-failed tries again"
            continue
        if key not in known:
            resolved = str(path.resolve())
            if resolved in known and resolved not in present:
                # indexed before under its resolved path (older versions resolved links): same file, new name
                index.builds.rename(resolved, key)
                known[key] = known.pop(resolved)
        if key in unwindowed:
            to_embed.append((path, True))
            continue
        if key in known:
            digest, size, mtime = known[key].content_hash, known[key].size_bytes, known[key].mtime
            if size == stat.st_size and mtime == stat.st_mtime:
                summary.unchanged.append(key)
                continue
            if hash_file(path) == digest:
                index.builds.touch(key, stat.st_size, stat.st_mtime)
                summary.unchanged.append(key)
                continue
            to_embed.append((path, True))
        else:
            to_embed.append((path, False))
    to_embed, long_videos = _split_long(to_embed, plan)
    if engine is None:
        results = zip(to_embed, model.iter_embed([path for path, _ in to_embed], show_progress=show_progress))
    else:
        results = _engine_results(engine, to_embed, summary, show_progress)
    def window_row(window) -> tuple[float, float, Any]:
        return (*window.segment, index.raw_of(window))

    for (path, replacing), result in chain(results, _embed_long(long_videos, model, plan, show_progress, window_row)):
        if result.error is not None:
            summary.failed[str(path)] = str(result.error)
            try:
                stat = path.stat()
                index.builds.record_failure(str(path), stat.st_size, stat.st_mtime, str(result.error), plan_record)
            except OSError:
                pass  # gone: nothing to remember
            continue
        if str(path) in failed_before:
            index.builds.record_failure(str(path), 0, 0.0, None)
        try:
            stat = path.stat()
        except OSError as error:
            summary.failed[str(path)] = f"{path}: {error.strerror or 'gone'} (vanished after it was embedded)"
            continue
        if isinstance(result, _Windowed):
            index.add_video(result.embedding, result.windows, path=str(path), size_bytes=stat.st_size,
                            mtime=stat.st_mtime, window_plan=plan_record)
        else:
            index.add(result.embedding, path=str(path), size_bytes=stat.st_size, mtime=stat.st_mtime,
                      window_plan=plan_record)
        (summary.updated if replacing else summary.added).append(str(path))
    if prune:
        # only clips under the folders this run scanned whose files are really gone: a folder left
        # out of this run, a --glob that skipped a file or a momentary error never deletes anything
        roots = [Path(os.path.abspath(folder)) for folder in folders]
        vanished = [path for path in known if is_within(path, roots) and not os.path.lexists(path)]
        index.remove(vanished)
        summary.removed = vanished
    if summary.added or summary.updated or summary.removed or index.ann is None:
        index.write_ann(ann)
    return summary


@dataclass(frozen=True)
class _Windowed:
    """A long video's result in a build: its whole-video embedding and its windows' rows (start,
    end, raw row), or its error."""

    source: str
    embedding: Any
    error: Any
    windows: list = field(default_factory=list)


def _engine_results(engine, to_embed: list[tuple[Path, bool]], summary: BuildSummary, show_progress: bool):
    """((path, replacing), EmbedResult) from an engine, in the order they finish; counts the nodes."""
    if not to_embed:
        return
    items = {str(path): (path, replacing) for path, replacing in to_embed}
    progress = None
    if show_progress:
        from tqdm.auto import tqdm

        progress = tqdm(total=len(items), unit="clip", desc="embedding (ray)", dynamic_ncols=True)
    try:
        for result, node in engine.iter_results(list(items)):
            summary.workers[node] = summary.workers.get(node, 0) + 1
            if progress is not None:
                progress.update(1)
            yield items[result.source], result
    finally:
        if progress is not None:
            progress.close()


def _split_long(to_embed: list[tuple[Path, bool]], plan: WindowPlan | None):
    """(clips, long videos): which files to embed get windows (their duration from the packets)."""
    if plan is None:
        return to_embed, []
    from .video import probe_duration

    clips, long_videos = [], []
    for path, replacing in to_embed:
        try:
            duration = probe_duration(path)
        except Exception:  # noqa: BLE001 - a bad file: the clip path reports it
            duration = 0.0
        (long_videos if duration >= plan.min_duration and plan.count(duration) >= 2 else clips).append((path, replacing))
    return clips, long_videos


def _embed_long(long_videos: list[tuple[Path, bool]], model, plan: WindowPlan | None, show_progress: bool,
                window_row):
    """((path, replacing), _Windowed) for each long video, embedded one after another; each window is
    kept as its stored row (``window_row``: about 3 KB) until the video is committed whole."""
    from .errors import SemanticMomentsError

    for path, replacing in long_videos:
        try:
            rows, whole = [], None
            for embedding in model.iter_windows(path, plan, show_progress=show_progress):
                if embedding.segment is None:  # the whole video, last
                    whole = embedding
                else:
                    rows.append(window_row(embedding))
            yield (path, replacing), _Windowed(str(path), whole, None, rows)
        except SemanticMomentsError as error:
            yield (path, replacing), _Windowed(str(path), None, error)
