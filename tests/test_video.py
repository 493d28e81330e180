"""Opening and sampling real video files, image folders and arrays."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from conftest import decoded_index, numbered_frames, write_video
from PIL import Image

from semantic_moments.errors import ConfigError, VideoError
from semantic_moments.video import (VideoReader, hash_file_version, hash_file, read_ahead, read_array, read_clip,
                                    read_image_folder, sample_frame_indices)


def test_sampling_takes_the_frame_displayed_at_each_interval_centre():
    times = np.arange(100) / 10.0  # 10 s at 10 fps
    indices = sample_frame_indices(times, 4, duration=10.0)
    np.testing.assert_array_equal(indices, [12, 37, 62, 87])  # centres 1.25, 3.75, 6.25, 8.75 s


def test_a_clip_shorter_than_t_repeats_frames_and_never_returns_fewer():
    times = np.arange(5) / 5.0
    indices = sample_frame_indices(times, 32, duration=1.0)
    assert len(indices) == 32
    assert sorted(set(indices.tolist())) == [0, 1, 2, 3, 4]
    assert np.all(np.diff(indices) >= 0)


def test_a_segment_samples_only_inside_it():
    times = np.arange(100) / 10.0
    indices = sample_frame_indices(times, 8, segment=(2.0, 4.0), duration=10.0)
    assert times[indices].min() >= 2.0 and times[indices].max() < 4.0
    with pytest.raises(VideoError, match="after the clip ends"):
        sample_frame_indices(times, 8, segment=(20.0, 30.0), duration=10.0)
    with pytest.raises(VideoError, match="start < end"):
        sample_frame_indices(times, 8, segment=(4.0, 2.0), duration=10.0)


def test_reader_counts_frames_and_returns_the_sampled_ones(tmp_path):
    path = write_video(tmp_path / "numbered.mp4", numbered_frames(30), fps=10)
    clip = read_clip(path, 6)
    assert clip.num_source_frames == 30
    assert clip.fps == pytest.approx(10.0)
    assert clip.duration_seconds == pytest.approx(3.0, abs=0.11)
    assert [decoded_index(frame) for frame in clip.frames] == clip.frame_indices.tolist() == [2, 7, 12, 17, 22, 27]
    np.testing.assert_allclose(clip.pts_seconds, clip.frame_indices / 10.0, atol=1e-6)
    assert len(clip.content_hash) == 32


@pytest.mark.parametrize("gop", [4, 250])
def test_seeking_decoder_returns_exactly_what_sequential_decoding_does(tmp_path, gop):
    path = write_video(tmp_path / f"gop{gop}.mp4", numbered_frames(120), fps=24, gop=gop)
    with VideoReader(path) as reader:
        wanted = [3, 4, 50, 51, 52, 90, 119]
        frames = reader.get_frames_at(wanted)
    assert [decoded_index(frame) for frame in frames] == wanted


def test_b_frames_are_returned_in_presentation_order(tmp_path):
    import av

    path = tmp_path / "bframes.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.options = {"preset": "medium", "bf": "3", "crf": "10"}
        for frame in numbered_frames(40):
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    clip = read_clip(path, 8)
    assert [decoded_index(frame) for frame in clip.frames] == clip.frame_indices.tolist()


def test_rotation_metadata_is_honoured(tmp_path):
    frames = np.zeros((6, 48, 64, 3), dtype=np.uint8)
    frames[:, :12, :16] = 255  # a white corner at the top left of the stored picture
    path = write_video(tmp_path / "rotated.mp4", frames, rotation=90)
    with VideoReader(path) as reader:
        picture = reader.get_frames_at([2])[0]
    assert picture.shape == (64, 48, 3), "a 90-degree display rotation swaps width and height"
    expected = np.rot90(frames[2], k=1)  # FFmpeg's display angle is counter-clockwise
    assert np.abs(picture.astype(int) - expected.astype(int)).mean() < 8


def test_variable_frame_rate_is_sampled_uniformly_in_time(tmp_path):
    # 40 frames 10 ms apart, then 20 frames 200 ms apart: uniform in *time* must put most samples late
    pts = [i * 10 for i in range(40)] + [400 + i * 200 for i in range(20)]
    path = write_video(tmp_path / "vfr.mkv", numbered_frames(60), fps=25, pts=pts, time_base=Fraction(1, 1000))
    clip = read_clip(path, 8)
    assert clip.num_source_frames == 60
    assert (clip.frame_indices >= 40).sum() >= 6
    gaps = np.diff(clip.pts_seconds)
    assert gaps.max() < 0.8, f"samples should be spread over time, got times {clip.pts_seconds}"


def test_odd_sized_frames_are_read_and_resized(tmp_path):
    import av

    path = tmp_path / "odd.mkv"
    frames = numbered_frames(10, height=47, width=63)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=10)
        stream.width, stream.height, stream.pix_fmt = 63, 47, "yuv444p"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    native = read_clip(path, 4)
    assert native.frames.shape == (4, 47, 63, 3)
    resized = read_clip(path, 4, size=(32, 32))
    assert resized.frames.shape == (4, 32, 32, 3)
    assert [decoded_index(frame) for frame in resized.frames] == resized.frame_indices.tolist()


def test_truncated_streamable_file_uses_the_frames_that_really_decode(tmp_path):
    full = write_video(tmp_path / "full.mkv", numbered_frames(90), fps=30, gop=10)
    data = full.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: int(len(data) * 0.5)])
    clip = read_clip(cut, 8)
    assert 2 <= clip.num_source_frames < 90
    assert [decoded_index(frame) for frame in clip.frames] == clip.frame_indices.tolist()


def test_image_folder_and_array_sources(tmp_path):
    frames = numbered_frames(12, height=40, width=40)
    folder = tmp_path / "frames"
    folder.mkdir()
    for index, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"{index:04d}.png")
    (folder / "notes.txt").write_text("ignored: not an image")
    from_folder = read_image_folder(folder, 4, size=(32, 32))
    from_array = read_array(frames, 4, size=(32, 32))
    assert from_folder.frame_indices.tolist() == from_array.frame_indices.tolist() == [1, 4, 7, 10]
    np.testing.assert_array_equal(from_folder.frames, from_array.frames)
    floats = read_array(frames.astype(np.float32) / 255.0, 4)
    np.testing.assert_array_equal(floats.frames, frames[[1, 4, 7, 10]])
    assert read_clip(folder, 4).source == str(folder)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("missing.mp4", "no such file"),
        ("text.mp4", "not a readable video"),
        ("empty.mp4", "empty file"),
        ("truncated.mp4", "not a readable video"),
        ("audio_only.m4a", "no video stream"),
        ("one_frame.mp4", "at least 2 distinct frames"),
    ],
)
def test_bad_inputs_raise_one_line_errors_naming_the_file(videos: Path, name, message):
    with pytest.raises(VideoError) as raised:
        read_clip(videos / name, 8)
    text = str(raised.value)
    assert name in text and message in text and "\n" not in text


def test_bad_folder_and_array_inputs(tmp_path):
    (tmp_path / "empty_folder").mkdir()
    with pytest.raises(VideoError, match="holds no images"):
        read_clip(tmp_path / "empty_folder", 4)
    broken = tmp_path / "broken"
    broken.mkdir()
    for index in range(3):
        (broken / f"{index}.png").write_bytes(b"not a png")
    with pytest.raises(VideoError, match=r"0\.png: not a readable image"):
        read_clip(broken, 4)
    with pytest.raises(VideoError, match=r"shape \(T, H, W, 3\)"):
        read_array(np.zeros((4, 8, 8)), 4)
    with pytest.raises(VideoError, match="at least 2 distinct frames"):
        read_array(np.zeros((1, 8, 8, 3), dtype=np.uint8), 4)


def test_frames_larger_than_supported_are_refused(tmp_path, monkeypatch):
    import semantic_moments.video.decode as video

    path = write_video(tmp_path / "big.mp4", numbered_frames(4, height=64, width=96))
    monkeypatch.setattr(video, "MAX_FRAME_PIXELS", 64 * 64)
    with pytest.raises(VideoError, match=r"big.mp4: frame size 96x64 is larger than supported"):
        read_clip(path, 2)


def test_skipping_unreferenced_frames_returns_pixel_identical_frames(tmp_path):
    import av

    rng = np.random.default_rng(0)
    frames = np.clip(numbered_frames(60, 64, 96).astype(int) + rng.integers(-20, 20, (60, 64, 96, 3)), 0, 255).astype(np.uint8)
    path = tmp_path / "bframes.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        stream.options = {"preset": "medium", "bf": "3", "b-pyramid": "normal", "crf": "20"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    with av.open(str(path)) as container:
        everything = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    wanted = [1, 2, 7, 13, 14, 30, 45, 59]
    for threads in (0, 1, 3):  # FFmpeg's choice, single-threaded, frame+slice threads
        with VideoReader(path, threads=threads) as reader:
            sampled = reader.get_frames_at(wanted)
        for index, frame in zip(wanted, sampled):
            np.testing.assert_array_equal(frame, everything[index])


def test_decoder_thread_count_is_checked_before_opening(tmp_path):
    with pytest.raises(ConfigError, match="decoder threads must be 0"):
        VideoReader(tmp_path / "missing.mp4", threads=-1)


def test_file_hashes_are_remembered_per_version_of_the_file(tmp_path):
    import os
    import time

    path = tmp_path / "clip.bin"
    path.write_bytes(b"first")
    first = hash_file(path)
    hits = hash_file_version.cache_info().hits
    assert hash_file(path) == first and hash_file_version.cache_info().hits == hits + 1  # not read again
    stat = path.stat()
    time.sleep(0.05)  # beyond the file system's timestamp granularity
    path.write_bytes(b"other")  # same size...
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # ...and same mtime: the ctime still tells
    assert hash_file(path) != first


def test_read_ahead_keeps_order_hands_back_errors_and_bounds_the_reads_in_flight():
    started = []

    def read(number: int) -> int:
        started.append(number)
        if number == 2:
            raise ValueError("bad clip")
        return number * 10

    ahead = read_ahead(list(range(6)), read, workers=2, ahead=2)
    assert next(ahead) == (0, 0)
    assert set(started) <= {0, 1, 2}  # the one handed out plus two ahead, no more
    rest = list(ahead)
    assert [source for source, _ in rest] == [1, 2, 3, 4, 5]
    assert isinstance(rest[1][1], ValueError) and [result for _, result in rest if _ != 2] == [10, 30, 40, 50]


def test_a_long_single_threaded_read_decodes_two_halves_at_once_with_the_same_frames(tmp_path, monkeypatch):
    import semantic_moments.video.clips as video

    path = write_video(tmp_path / "long.mp4", numbered_frames(200), gop=10)  # 20 keyframe intervals
    halves = []
    original = video._frames_in_two_halves
    monkeypatch.setattr(video, "_frames_in_two_halves",
                        lambda *args: halves.append(original(*args)) or halves[-1])
    split = read_clip(path, 16, decode_threads=1)
    assert halves and halves[0] is not None  # it was split
    monkeypatch.setattr(video, "SPLIT_FROM_GOPS", 10**6)
    whole = read_clip(path, 16, decode_threads=1)
    assert halves[-1] is None  # not split
    np.testing.assert_array_equal(split.frames, whole.frames)
    np.testing.assert_array_equal(split.frame_indices, whole.frame_indices)
    assert [decoded_index(frame) for frame in split.frames] == list(split.frame_indices)
    with VideoReader(path) as first, monkeypatch.context() as patch:  # the second half's reader reuses the scan
        patch.setattr(VideoReader, "_scan_packets", lambda self: pytest.fail("scanned twice"))
        with VideoReader(path, threads=1, scanned=first) as second:
            np.testing.assert_array_equal(second.get_frames_at([5, 150]), first.get_frames_at([5, 150]))
    short = write_video(tmp_path / "short.mp4", numbered_frames(30), gop=10)  # 3 intervals: one pass
    monkeypatch.setattr(video, "SPLIT_FROM_GOPS", 4)
    read_clip(short, 8, decode_threads=1)
    assert halves[-1] is None


# -- files that take the reader off its usual path ---------------------------------------------------


class _EarlyLanding(VideoReader):
    """A container whose seeks land one keyframe before the one asked for (seen in YouTube-made MP4s:
    B-frames, a negative first dts, a seek to a sync sample landing on the previous one)."""

    seeks: list[int] = []

    def _seek(self, pts: int) -> None:
        earlier = self.keyframe_pts[self.keyframe_pts < pts]
        type(self).seeks.append(pts)
        super()._seek(int(earlier[-1]) if len(earlier) else pts)


class _LandsAtTheStart(VideoReader):
    """A container whose every seek lands on the first keyframe."""

    def _seek(self, pts: int) -> None:
        super()._seek(int(self.keyframe_pts[0]))


def test_a_seek_that_lands_a_keyframe_early_does_not_loop(tmp_path):
    path = write_video(tmp_path / "gops.mp4", numbered_frames(120), gop=10)
    wanted = [5, 17, 33, 58, 71, 99, 118]
    _EarlyLanding.seeks = []
    with _EarlyLanding(path) as reader:
        frames = reader.get_frames_at(wanted)
    assert [decoded_index(frame) for frame in frames] == wanted
    assert len(_EarlyLanding.seeks) <= 2 * len(wanted)  # each seek got past the last one, or was not repeated


def test_a_read_that_keeps_seeking_back_falls_back_to_one_pass_and_says_so(tmp_path, monkeypatch):
    import semantic_moments.video.decode as decode

    path = write_video(tmp_path / "gops.mp4", numbered_frames(120), gop=10)
    monkeypatch.setattr(decode, "DECODE_BUDGET", 0)  # any seeking exceeds the budget at once
    with _LandsAtTheStart(path) as reader, pytest.warns(RuntimeWarning, match="gops.mp4: seeking cost more"):
        frames = reader.get_frames_at([15, 65, 115])
    assert [decoded_index(frame) for frame in frames] == [15, 65, 115]


def packed_b_frames_avi(path: Path, count: int = 40) -> Path:
    """An MPEG-4 Part 2 AVI with DivX/XviD-style packed B-frames: each B-frame rides in the packet of
    the frame before it, and a 7-byte placeholder packet follows (as in the arm-action AVIs)."""
    import av

    encoder = av.CodecContext.create("mpeg4", "w")
    encoder.width, encoder.height, encoder.pix_fmt = 64, 48, "yuv420p"
    encoder.time_base, encoder.framerate = Fraction(1, 25), Fraction(25)
    encoder.max_b_frames, encoder.gop_size = 1, 12
    encoder.open()
    packets = []
    for index, image in enumerate(numbered_frames(count)):
        frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
        frame.pts, frame.pict_type = index, av.video.frame.PictureType.NONE
        packets += [bytes(packet) for packet in encoder.encode(frame)]
    packets += [bytes(packet) for packet in encoder.encode(None)]
    kinds = ["IPBS"[data[data.find(b"\x00\x00\x01\xb6") + 4] >> 6] for data in packets]
    start = packets[0].find(b"\x00\x00\x01\xb6")  # user data that marks the stream as packed
    packets[0] = packets[0][:start] + b"\x00\x00\x01\xb2DivX503b1393p" + packets[0][start:]
    packed, position = [], 0
    while position < len(packets):
        if position + 1 < len(packets) and kinds[position] in "IP" and kinds[position + 1] == "B":
            packed += [(packets[position] + packets[position + 1], kinds[position]), (b"\x00\x00\x01\xb6\x50\x00\x00", "P")]
            position += 2
        else:
            packed.append((packets[position], kinds[position]))
            position += 1
    with av.open(str(path), "w", format="avi") as output:
        stream = output.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for number, (data, kind) in enumerate(packed):
            packet = av.Packet(data)
            packet.stream, packet.dts, packet.pts, packet.time_base = stream, number, number, Fraction(1, 25)
            packet.is_keyframe = kind == "I"
            output.mux(packet)
    return path


def test_packed_b_frames_come_out_in_display_order(tmp_path):
    import av

    path = packed_b_frames_avi(tmp_path / "packed.avi")
    with av.open(str(path)) as container:  # the demuxer's timestamps are swapped for these files
        stamps = [frame.pts for frame in container.decode(video=0)]
    assert stamps != sorted(stamps)
    with VideoReader(path) as reader:
        assert reader.num_frames == 40
        frames, used = reader.decode_frames([1, 2, 3, 10, 21, 39])
    assert [decoded_index(frame) for frame in frames] == [1, 2, 3, 10, 21, 39] == used.tolist()
    clip = read_clip(path, 8)
    assert [decoded_index(frame) for frame in clip.frames] == clip.frame_indices.tolist()


def test_a_frame_that_never_decodes_is_the_frame_displayed_at_its_time(tmp_path):
    import av

    frames = np.random.default_rng(0).integers(0, 255, (60, 48, 64, 3), dtype=np.uint8)  # large packets
    frames[:, :, :32], frames[:, :, 32:] = frames[:, :, :32] // 4, frames[:, :, 32:] // 4
    frames[:] = numbered_frames(60) + frames // 8
    full = write_video(tmp_path / "full.mkv", frames, fps=30, gop=10)
    with av.open(str(full)) as container:
        packets = [packet for packet in container.demux(video=0) if packet.size]
    last = max(packets, key=lambda packet: packet.pos)
    cut = tmp_path / "cut.mkv"
    data = bytearray(full.read_bytes())
    data[last.pos + 8: last.pos + last.size - 4] = bytes(last.size - 12)  # listed, but its data gives no picture
    cut.write_bytes(bytes(data))
    with VideoReader(cut) as reader:
        last = reader.num_frames - 1
        frames, used = reader.decode_frames([0, last])
        streamed = np.concatenate(list(reader.iter_frames_at([0, last])))
    assert used[0] == 0 and used[1] < last and decoded_index(frames[1]) == used[1]
    np.testing.assert_array_equal(streamed, frames)


def test_a_minimum_rate_samples_the_centre_of_a_long_clip_and_leaves_short_ones_alone():
    from semantic_moments.video import sample_frame_indices

    times = np.arange(300) / 30.0  # 10 s at 30 fps
    whole = sample_frame_indices(times, 16, duration=10.0)
    assert np.array_equal(sample_frame_indices(times, 16, duration=10.0, min_rate=1.0), whole)  # 16 s >= 10 s
    central = sample_frame_indices(times, 16, duration=10.0, min_rate=4.0)  # 4 s: 3 s to 7 s
    seconds = times[central]
    assert 3.0 <= seconds[0] < seconds[-1] < 7.0 and np.allclose(np.diff(seconds), 0.25, atol=1 / 30)
    segment = sample_frame_indices(times, 16, segment=(1.0, 9.0), duration=10.0, min_rate=4.0)  # 3-7 s again
    assert np.array_equal(segment, central)


def test_a_central_excerpt_decodes_from_the_keyframe_before_it_not_from_the_start(tmp_path):
    from semantic_moments.video import sample_frame_indices
    from semantic_moments.video.decode import VideoReader

    # 20 s at 12 fps, a keyframe every 24 frames (2 s): the central 4 s (8 s to 12 s) start on a keyframe
    path = write_video(tmp_path / "long.mp4", numbered_frames(240), fps=12, gop=24)
    with VideoReader(path, threads=1) as reader:
        assert len(reader.keyframe_pts) == 10 and reader.frames_decoded == 0  # opening only demuxes
        central = sample_frame_indices(reader.frame_times, 16, duration=reader.duration_seconds, min_rate=4.0)
        frames, used = reader.decode_frames(central, None)
        assert [decoded_index(frame) for frame in frames] == central.tolist() == used.tolist()
        assert 96 <= central[0] < 99  # the keyframe at 8 s is the one before the first sample
        assert central[-1] - central[0] + 1 <= reader.frames_decoded <= central[-1] - 96 + 1  # nothing before it
    with VideoReader(path, threads=1) as reader:
        whole = sample_frame_indices(reader.frame_times, 16, duration=reader.duration_seconds)
        reader.decode_frames(whole, None)
        assert reader.frames_decoded > 150  # spread over the clip: every keyframe interval is entered


def test_the_minimum_rate_is_recorded_validated_and_refuses_windows_it_would_change(tmp_path):
    from semantic_moments import MomentsConfig
    from semantic_moments.embedder import SemanticMoments
    from semantic_moments.windows import WindowPlan

    config = MomentsConfig(num_frames=16, min_rate=4.0)
    assert MomentsConfig.from_dict(config.to_dict()) == config and config.sampled_seconds() == 4.0
    assert MomentsConfig.from_dict({k: v for k, v in config.to_dict().items() if k != "min_rate"}).min_rate is None
    for bad in (0.0, -1.0, float("inf"), "x"):
        with pytest.raises(ConfigError, match="min_rate"):
            MomentsConfig(min_rate=bad)
    assert WindowPlan.parse("4:1", 16).require_rate(4.0).length == 4.0
    with pytest.raises(ConfigError, match="windows of at most 4 s"):
        WindowPlan.parse("8:1", 16).require_rate(4.0)
    model = SemanticMoments("test-tiny", frames=8, min_rate=4.0)
    long = write_video(tmp_path / "long.mp4", numbered_frames(100), fps=10)  # 10 s
    clip = model.read(long)
    assert 3.0 <= clip.pts_seconds[0] and clip.pts_seconds[-1] < 7.0  # the central 2 s
    assert SemanticMoments("test-tiny", frames=8, min_rate=0).config.min_rate is None  # 0: the whole clip
    embedding = model.embed(long)
    assert embedding.config.min_rate == 4.0 and embedding.feature_settings()["min_rate"] == 4.0


def test_a_truncated_file_is_read_as_far_as_it_goes_and_said(tmp_path):
    """#31 item 20: a cut-short MP4 embeds what decodes, with a warning naming both lengths."""
    import warnings

    from semantic_moments.video.clips import VideoTruncated

    path = write_video(tmp_path / "whole.mkv", numbered_frames(120), fps=12, gop=12)  # 10 s
    data = path.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) * 4 // 10])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clip = read_clip(cut, 8)
        whole = read_clip(path, 8)
    notes = [str(warning.message) for warning in caught if issubclass(warning.category, VideoTruncated)]
    assert len(notes) == 1 and "cut.mkv: truncated? the container says 10.0 s" in notes[0]
    assert clip.duration_seconds < 6 and whole.duration_seconds == pytest.approx(10.0, abs=0.1)
