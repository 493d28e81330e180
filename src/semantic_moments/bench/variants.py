"""Stress variants of a benchmark set, made at read time from its own clips: the same labels and
actors, the clip's time changed. They test what real collections do to a method and a small set of
short clips cannot: long clips, repetitions, motion amid stillness, slow motion.

A clip path of a manifest may carry one suffix:

* ``#hflip``: the clip mirrored left-right (``make-real --mirror``);
* ``#loopN``: the clip played N times in a row (an exercise repeated, a hand-washing step rubbed on);
* ``#holdN``: the clip in the middle of a shot N times its length, its first and last frame held
  still before and after it (an action amid stillness);
* ``#slowN``: the clip played N times slower (a slow action spanning a long clip).

``virtual_timeline`` maps the clip's frame times to the variant's (pure, no files); ``read_variant``
samples the variant by the model's own sampling rule (``video/sample.py``) and decodes only the
source frames that rule picks. Nothing is written to disk.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..video import SampledClip, VideoReader, hash_file, require_motion, sample_frame_indices

VARIANT = re.compile(r"#(loop\d+|hold\d+|slow\d+)$")
MIRROR = "#hflip"


def split_variant(path: str) -> tuple[str, str | None]:
    """``"a/x.mp4#loop4"`` -> (``"a/x.mp4"``, ``"loop4"``); a path without a time variant -> (path, None)."""
    match = VARIANT.search(path)
    return (path[: match.start()], match.group(1)) if match else (path, None)


def clip_source(path: str) -> tuple[str, bool, str | None]:
    """(the file's path, mirrored?, time variant or None) of a manifest path such as
    ``"a/x.mp4#hflip#loop4"`` (a mirrored twin, looped)."""
    path, variant = split_variant(path)
    mirrored = path.endswith(MIRROR)
    return (path[: -len(MIRROR)] if mirrored else path), mirrored, variant


def with_variant(manifest, variant: str):
    """The manifest with every clip in its time ``variant`` (``"-" + variant`` added to its name)."""
    import dataclasses

    parse_variant(variant)
    suffix = f"#{variant}"
    triplets = tuple(dataclasses.replace(
        triplet, reference=triplet.reference + suffix, positive=triplet.positive + suffix,
        negative=triplet.negative + suffix, distractors=tuple(p + suffix for p in triplet.distractors),
        ignore=tuple(p + suffix for p in triplet.ignore)) for triplet in manifest.triplets)
    return dataclasses.replace(
        manifest, name=f"{manifest.name}-{variant}", triplets=triplets,
        distractors=tuple(p + suffix for p in manifest.distractors),
        clips=tuple(dataclasses.replace(clip, path=clip.path + suffix) for clip in manifest.clips))


def parse_variant(name: str) -> tuple[str, int]:
    """``"loop4"`` -> (``"loop"``, 4); ConfigError for anything else."""
    match = re.fullmatch(r"(loop|hold|slow)(\d+)", name)
    if not match or not 2 <= int(match.group(2)) <= 16:
        raise ConfigError(f"a variant is loopN, holdN or slowN with N in 2..16, got {name!r}")
    return match.group(1), int(match.group(2))


def virtual_timeline(times: np.ndarray, duration: float, variant: str) -> tuple[np.ndarray, float, np.ndarray]:
    """(frame times of the variant, its duration, the source frame shown at each) for a clip whose
    frames are shown at ``times`` (seconds from 0, sorted) over ``duration`` seconds."""
    kind, count = parse_variant(variant)
    times = np.asarray(times, dtype=np.float64)
    frames = np.arange(len(times))
    if kind == "loop":
        return (np.concatenate([times + copy * duration for copy in range(count)]), duration * count,
                np.tile(frames, count))
    if kind == "slow":
        return times * count, duration * count, frames
    held = duration * (count - 1) / 2  # seconds of stillness before and after
    step = float(np.median(np.diff(times))) if len(times) > 1 else duration
    pad = np.arange(int(round(held / step))) * step
    return (np.concatenate([pad, times + held, held + duration + pad]), duration * count,
            np.concatenate([np.zeros(len(pad), np.int64), frames, np.full(len(pad), len(times) - 1)]))


def read_variant(path: str | Path, variant: str, num_frames: int, size: tuple[int, int] | None,
                 min_rate: float | None = None, decode_threads: int = 1) -> SampledClip:
    """``num_frames`` frames of a time variant of a video file, sampled as ``read_clip`` samples a
    file (the same rule over the variant's timeline), decoding only the source frames used."""
    with VideoReader(path, threads=decode_threads) as reader:
        times = reader.frame_times - reader.frame_times[0]
        virtual, duration, source = virtual_timeline(times, reader.duration_seconds, variant)
        indices = sample_frame_indices(virtual, num_frames, None, duration, min_rate)
        wanted = source[indices]
        require_motion(wanted, str(path), reader.num_frames)
        frames, used = reader.decode_frames(wanted, size)
        return SampledClip(frames=frames, pts_seconds=virtual[indices], frame_indices=used,
                           num_source_frames=reader.num_frames, duration_seconds=duration, fps=reader.fps,
                           source=f"{path}#{variant}", content_hash=hash_file(path))
