"""Stress variants of benchmark sets: pure timelines, and reads that follow the sampling rule."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import decoded_index, numbered_frames, write_video
from semantic_moments.bench.variants import parse_variant, read_variant, split_variant, virtual_timeline
from semantic_moments.errors import ConfigError


def test_timelines_loop_hold_and_slow_a_clip():
    times = np.arange(10) / 10.0  # 1 s at 10 fps
    looped, duration, source = virtual_timeline(times, 1.0, "loop3")
    assert duration == 3.0 and np.allclose(looped, np.arange(30) / 10.0) and source.tolist() == list(range(10)) * 3
    slowed, duration, source = virtual_timeline(times, 1.0, "slow4")
    assert duration == 4.0 and np.allclose(slowed, times * 4) and source.tolist() == list(range(10))
    held, duration, source = virtual_timeline(times, 1.0, "hold3")  # 1 s still, the clip, 1 s still
    assert duration == 3.0 and source[:10].tolist() == [0] * 10 and source[10:20].tolist() == list(range(10))
    assert source[20:].tolist() == [9] * 10 and np.all(np.diff(held) > 0)
    assert split_variant("a/x.mp4#loop4") == ("a/x.mp4", "loop4") and split_variant("a/x.mp4") == ("a/x.mp4", None)
    for bad in ("loop1", "loop99", "spin4", "loop"):
        with pytest.raises(ConfigError):
            parse_variant(bad)


def test_a_variant_is_sampled_by_the_same_rule_as_a_file(tmp_path):
    from semantic_moments.video import read_clip

    path = write_video(tmp_path / "clip.mp4", numbered_frames(40), fps=10)  # 4 s
    for variant, check in (("slow2", lambda clip: read_clip(path, 8).frame_indices),):
        clip = read_variant(path, variant, 8, None)
        assert clip.frame_indices.tolist() == check(clip).tolist()  # slowed: the same frames, later times
        assert [decoded_index(frame) for frame in clip.frames] == clip.frame_indices.tolist()
    looped = read_variant(path, "loop4", 16, None, min_rate=4.0)  # 16 s: the central 4 s = one pass, shifted
    # the central 4 s of 16 s start half-way through a pass: the second half of the clip, then its first half
    assert [decoded_index(frame) for frame in looped.frames] == looped.frame_indices.tolist() == \
        [21, 23, 26, 28, 31, 33, 36, 38, 1, 3, 6, 8, 11, 13, 16, 18]
    assert np.allclose(np.diff(looped.pts_seconds), 0.25, atol=0.11)
    held = read_variant(path, "hold3", 12, None)  # 12 s: the outer thirds are the held end frames
    assert held.frame_indices[:3].tolist() == [0, 0, 0] and held.frame_indices[-3:].tolist() == [39, 39, 39]
