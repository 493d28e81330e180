"""Motion search inside long videos: window plans, exact sliding-window statistics, window
embeddings equal to segment embeddings, segment search with NMS, CLI and API."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import moving_square, numbered_frames, write_video
from semantic_moments.accumulators import ClipStatistics, SlidingWindows
from semantic_moments.backbones.base import TokenOutput
from semantic_moments.errors import ConfigError
from semantic_moments.flow import flow_vectors
from semantic_moments.moments import TemporalMoments
from semantic_moments.windows import WindowPlan, best_first, non_maximum_suppression, temporal_iou


def test_window_plans_parse_round_and_count():
    plan = WindowPlan.parse("4:1", frames=16)
    assert (plan.rate, plan.stride_frames, plan.min_duration) == (4.0, 4, 5.0)
    assert WindowPlan.parse("4", frames=16).stride == 1.0  # LEN / 4 by default
    assert WindowPlan.parse("4:0.3", frames=16).stride == 0.25  # whole samples: rounded to 1 sample
    assert WindowPlan.parse("4:1", 16, min_duration=60).min_duration == 60
    assert plan.count(4.9) == 0 and plan.count(5.0) == 2 and plan.count(12.0) == 9
    assert plan.bounds(8) == (2.0, 6.0)
    assert WindowPlan.parse(plan.to_dict(), 16) == plan
    for bad in ("", "x", "4:", "-4", "0:1", "4:1:1", "nan", "4:8"):
        with pytest.raises(ConfigError):
            WindowPlan.parse(bad, frames=16)


def test_temporal_iou_and_non_maximum_suppression():
    assert temporal_iou((0, 4), (2, 6)) == pytest.approx(2 / 6)
    assert temporal_iou((0, 4), (4, 8)) == 0.0 and temporal_iou((1, 2), (1, 2)) == 1.0
    segments = [(0, 4, 0.5), (1, 5, 0.9), (2, 6, 0.8), (8, 12, 0.7), (9, 13, 0.2)]
    spans, order = [(a, b) for a, b, _ in segments], best_first([c for *_, c in segments], [a for a, *_ in segments])
    assert non_maximum_suppression(spans, order, keep=3) == [1, 3]  # 2 and 0 overlap 1; 4 overlaps 3
    assert non_maximum_suppression(spans, order, keep=1) == [1]
    assert non_maximum_suppression(spans, order, keep=5, threshold=0.9) == [1, 2, 3, 0, 4]
    # groups (videos) are suppressed apart; the limit stops after that many kept
    assert non_maximum_suppression(spans, order, keep=1, groups=[0, 0, 1, 1, 1]) == [1, 2]
    assert non_maximum_suppression(spans, order, keep=3, groups=[0, 0, 1, 1, 1], limit=2) == [1, 2]


def _output(tokens: torch.Tensor, grid: tuple[int, int]) -> TokenOutput:
    return TokenOutput(patch=tokens, pooled=tokens.mean(dim=1), grid=grid)


def _clip_statistics(tokens: torch.Tensor, grid, segments: int = 2) -> ClipStatistics:
    statistics = ClipStatistics(TemporalMoments(3), TemporalMoments(3), tokens.shape[0] - 1, segments)
    statistics.update(_output(tokens, grid))
    return statistics


def _same_statistics(a: ClipStatistics, b: ClipStatistics) -> None:
    for granularity in ("patch", "frame"):
        for order in (1, 2, 3):
            torch.testing.assert_close(getattr(a, granularity).central_moment(order),
                                       getattr(b, granularity).central_moment(order), rtol=1e-9, atol=1e-10)
    for cells, vector in flow_vectors(a.flow, (1, 2)).items():
        torch.testing.assert_close(vector, flow_vectors(b.flow, (1, 2))[cells], rtol=1e-9, atol=1e-12)
    assert a.motion_level() == pytest.approx(b.motion_level(), rel=1e-9)


@pytest.mark.parametrize("window, stride, batches", [(8, 2, [5, 7, 3, 11, 4]), (8, 3, [1] * 30), (6, 6, [30])])
def test_sliding_windows_equal_each_window_accumulated_on_its_own(window, stride, batches):
    """Every window is the exact merge of its chunks, whatever the batching: equal to the statistics
    of its frames as a clip (moments of both granularities, token flow, motion level); ``whole``
    equals all frames as one clip. The stride need not divide the window (chunks of gcd)."""
    generator = torch.Generator().manual_seed(0)
    total, grid = sum(batches), (3, 4)
    tokens = torch.randn(total, 12, 5, generator=generator, dtype=torch.float64).cumsum(0) * 0.3 + 2.0
    sliding = SlidingWindows(window, stride, total, max_order=3, segments=2)
    found, position = [], 0
    for size in batches:
        found += sliding.update(_output(tokens[position:position + size], grid))
        position += size
    starts = [first for first, _ in found]
    assert starts == list(range(0, total - window + 1, stride))
    for first, statistics in found:
        _same_statistics(statistics, _clip_statistics(tokens[first:first + window], grid))
    _same_statistics(sliding.whole(), _clip_statistics(tokens, grid))
    assert len(sliding._steps) <= window + max(batches)  # flow maps kept: bounded, not the video's length


def test_sliding_windows_refuse_bad_shapes():
    with pytest.raises(ConfigError):
        SlidingWindows(1, 1, 10)
    with pytest.raises(ConfigError):
        SlidingWindows(8, 2, 4)
    sliding = SlidingWindows(4, 2, 6)
    with pytest.raises(ConfigError):
        sliding.update(_output(torch.randn(7, 4, 3), (2, 2)))
    sliding.update(_output(torch.randn(5, 4, 3), (2, 2)))
    with pytest.raises(ConfigError):
        sliding.whole()  # one frame still missing


def test_iter_frames_at_streams_what_get_frames_at_returns(tmp_path):
    from semantic_moments.video import VideoReader

    path = write_video(tmp_path / "numbered.mp4", numbered_frames(120), gop=10)
    indices = [0, 0, 3, 17, 18, 40, 41, 41, 90, 119]
    with VideoReader(path) as reader:
        expected = reader.get_frames_at(indices)
        chunks = list(reader.iter_frames_at(indices, chunk=3))
    assert [len(chunk) for chunk in chunks] == [3, 3, 3, 1]
    np.testing.assert_array_equal(np.concatenate(chunks), expected)
    with VideoReader(path) as reader, pytest.raises(ConfigError):
        list(reader.iter_frames_at([5, 2]))


def _long_video(path, seconds: float = 12, fps: int = 16, size: int = 64):
    """A square going right, then down, then right again: different motions along one video."""
    count = int(seconds * fps)
    third = count // 3
    frames = np.concatenate([moving_square(third, size, (230, 60, 40), "right"),
                             moving_square(third, size, (230, 60, 40), "down"),
                             moving_square(count - 2 * third, size, (230, 60, 40), "right")])
    return write_video(path, frames, fps=fps)


def test_window_embeddings_equal_embedding_each_segment_as_a_clip(tmp_path, tiny_model):
    path = _long_video(tmp_path / "long.mp4")
    whole, windows = tiny_model.embed_windows(path, "2:0.5")  # T = 8 frames per 2 s: 4 samples/s
    assert [w.segment for w in windows[:3]] == [(0.0, 2.0), (0.5, 2.5), (1.0, 3.0)]
    assert len(windows) == WindowPlan.parse("2:0.5", 8).count(whole.duration_seconds) == 21
    for window in (windows[0], windows[7], windows[-1]):
        clip = tiny_model.embed(path, segment=window.segment)
        np.testing.assert_array_equal(window.frame_indices, clip.frame_indices)
        np.testing.assert_allclose(window.vector(), clip.vector(), atol=2e-6)
    assert whole.segment is None and len(whole.frame_indices) == 48  # every sample of the video
    short = write_video(tmp_path / "short.mp4", moving_square(32, 64, (40, 200, 90), "down"))
    embeddings = list(tiny_model.iter_windows(short, "2:0.5"))  # 2 s: fewer than two windows
    assert len(embeddings) == 1 and embeddings[0].segment is None
    np.testing.assert_allclose(embeddings[0].vector(), tiny_model.embed(short).vector(), atol=1e-6)
    with pytest.raises(Exception, match="not a readable video|no such file"):
        list(tiny_model.iter_windows(tmp_path / "missing.mp4", "2:0.5"))


@pytest.fixture
def windowed_index(tmp_path, tiny_model):
    from semantic_moments.collection import build_index
    from semantic_moments.index import Index

    folder = tmp_path / "videos"
    folder.mkdir()
    _long_video(folder / "long.mp4")
    write_video(folder / "short.mp4", moving_square(24, 64, (40, 200, 90), "down"))
    index = Index.open(tmp_path / "index", create=True)
    summary = build_index(index, [folder], tiny_model, windows="2:0.5")
    assert sorted(summary.added) == sorted(str(p) for p in folder.iterdir())
    yield index, folder
    index.close()


def test_segment_search_finds_the_segment_and_merges_overlapping_windows(windowed_index, tiny_model):
    index, folder = windowed_index
    long_id = index.lookup(str(folder / "long.mp4"))[0]
    assert index.windowed() == {str(folder / "long.mp4"): 21} and index.window_count() == 21 and index.has_windows()
    query = tiny_model.embed(folder / "long.mp4", segment=(5.0, 7.0))  # exactly the window at 5 s
    hits = index.search_segments(query, k=10, per_video=3)
    assert (hits[0].id, hits[0].start, hits[0].end) == (long_id, 5.0, 7.0)
    assert hits[0].score == pytest.approx(1.0, abs=1e-5) and hits[0].window is not None
    mine = [hit for hit in hits if hit.id == long_id]
    assert len(mine) == 3  # per_video
    assert all(temporal_iou((a.start, a.end), (b.start, b.end)) <= 0.3 for a in mine for b in mine if a is not b)
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)
    short = [hit for hit in hits if hit.path.endswith("short.mp4")]
    assert short and short[0].window is None and short[0].start == 0.0  # a clip is one whole segment
    assert len({hit.id for hit in index.search_segments(query, k=10)}) == 2  # per_video=1: one per video
    # a query cut from an indexed video leaves out its own overlapping windows, not the rest of it
    rest = index.search_segments(query, k=5, per_video=5, exclude={long_id: (5.0, 7.0)})
    assert all(hit.id != long_id or hit.end <= 5.0 or hit.start >= 7.0 for hit in rest)
    # the whole-video row still serves clip search; the timeline scores every window in order
    line = index.timeline(query, long_id)
    assert len(line) == 21 and [w[0] for w in line] == sorted(w[0] for w in line)
    best = max(line, key=lambda w: w[2])
    assert best[:2] == (5.0, 7.0) and best[2] == pytest.approx(hits[0].score, abs=1e-6)
    assert index.search(query, k=2)[0].id in (long_id, index.lookup(str(folder / "short.mp4"))[0])
    # weights at query time work for segments as for clips
    appearance = index.search_segments(query, k=3, alpha=(1, 0, 0), flow_weight=0)
    assert appearance[0].per_part[1] == pytest.approx(appearance[0].score, abs=1e-5)


def test_windows_go_with_their_video_and_rebuilds_keep_them(windowed_index, tiny_model):
    from semantic_moments.collection import build_index

    index, folder = windowed_index
    summary = build_index(index, [folder], tiny_model)  # the index keeps its windows setting
    assert summary.counts()["unchanged"] == 2 and index.window_count() == 21
    with pytest.raises(ConfigError, match="windows"):
        build_index(index, [folder], tiny_model, windows="3:1")
    index.remove([str(folder / "long.mp4")])
    assert index.window_count() == 0 and not index.has_windows()  # removed with the clip (a trigger)
    build_index(index, [folder], tiny_model)
    assert index.window_count() == 21
    assert index.check() == []


def test_adding_windows_to_an_index_embeds_its_long_videos_again(tmp_path, tiny_model):
    from semantic_moments.collection import build_index
    from semantic_moments.index import Index

    folder = tmp_path / "videos"
    folder.mkdir()
    _long_video(folder / "long.mp4")
    with Index.open(tmp_path / "index", create=True) as index:
        build_index(index, [folder], tiny_model)
        assert index.window_count() == 0
        summary = build_index(index, [folder], tiny_model, windows="2:0.5")
        assert summary.updated == [str(folder / "long.mp4")] and index.window_count() == 21


def test_cli_builds_windows_and_prints_segments(tmp_path, capsys):
    from semantic_moments.cli import main

    folder = tmp_path / "videos"
    folder.mkdir()
    _long_video(folder / "long.mp4")
    index = str(tmp_path / "index")
    options = ["--backbone", "test-tiny", "--frames", "8"]
    assert main(["index", "build", str(folder), "--index", index, "--windows", "2:0.5", "--quiet", *options]) == 0
    assert "windows: 2 s windows every 0.5 s" in capsys.readouterr().err
    assert main(["search", "1", "--segment", "5-7", "--index", index, "--format", "json", "-k", "3",
                 "--per-video", "3"]) == 0
    assert json.loads(capsys.readouterr().out) == []  # the query's own video is left out (the only one here)
    assert main(["search", "1", "--segment", "5-7", "--index", index, "--format", "json", "-k", "3",
                 "--per-video", "3", "--include-own"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert all(r["end"] <= 5 or r["start"] >= 7 for r in results)  # kept: only its own segment left out
    assert len(results) == 3 and {"start", "end", "score"} <= set(results[0])
    assert main(["search", str(folder / "long.mp4"), "--segment", "5-7", "--index", index, "-k", "1",
                 "--include-own"]) == 0
    table = capsys.readouterr().out.splitlines()  # an indexed file's segment: its own windows left out too
    assert table[0].split()[:5] == ["rank", "id", "start", "end", "score"] and "0:0" in table[1]
    assert "0:05.0" not in table[1]
    assert main(["search", "1", "--index", index, "--segments", "no", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []  # one clip, itself excluded
    assert main(["search", "1", "--segment", "5-7", "--index", index, "--format", "segments", "-k", "2",
                 "--per-video", "2", "--include-own"]) == 0
    lines = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 2 and lines[0][0] == str(folder / "long.mp4") and float(lines[0][1]) < float(lines[0][2])
    assert main(["search", "1", "--segment", "5-60", "--index", index, "-k", "1", "--include-own"]) == 0
    err = capsys.readouterr().err  # said once, as a note; no raw warning (#31, item 1)
    assert "note: the segment 5-60 s ends after the video; searched with 5-" in err and "warning" not in err
    assert main(["index", "build", str(folder), "--index", index, "--windows-from", "3", *options]) == 2
    assert "--windows-from needs --windows" in capsys.readouterr().err
    assert main(["index", "info", "--index", index]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["windows"]["length"] == 2.0 and info["window_rows"] == 21


def test_api_searches_segments_and_draws_a_timeline(windowed_index):
    from fastapi.testclient import TestClient

    from semantic_moments.server.app import create_app

    index, folder = windowed_index
    long_id = index.lookup(str(folder / "long.mp4"))[0]
    client = TestClient(create_app(index.path), base_url="http://127.0.0.1")
    response = client.post("/api/search", json={"query": {"id": long_id, "segment": [5, 7]}, "k": 4, "per_video": 4})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["segments"] is True
    assert all(hit["end"] <= 5 or hit["start"] >= 7 for hit in body["results"] if hit["id"] == long_id)
    assert all("start" in hit and "end" in hit for hit in body["results"])
    clips = client.post("/api/search", json={"query": {"id": long_id}, "segments": False}).json()
    assert all("start" not in hit for hit in clips["results"]) and all(h["id"] != long_id for h in clips["results"])
    line = client.get(f"/api/timeline?a={long_id}&start=5&end=7&b={long_id}").json()
    assert len(line["windows"]) == 21 and line["duration_seconds"] == pytest.approx(12.0)
    best = max(line["windows"], key=lambda w: w["score"])
    assert (best["start"], best["end"]) == (5.0, 7.0)
    assert client.post("/api/search", json={"query": {"id": long_id, "segment": [7, 5]}}).status_code == 422
    assert client.post("/api/search", json={"query": {"upload": "x", "segment": [1, 2]}}).status_code == 422
    assert client.get("/api/info").json()["window_rows"] == 21


def test_check_finds_a_damaged_window_and_repair_drops_its_video(windowed_index):
    index, folder = windowed_index
    index.store.execute("UPDATE windows SET parts = ? WHERE id = (SELECT MIN(id) FROM windows)", (b"\x00" * 8,))
    problems = index.check()
    assert len(problems) == 1 and "window" in problems[0] and "long.mp4" in problems[0]
    assert index.repair() == [str(folder / "long.mp4")]
    assert index.check() == [] and index.window_count() == 0


def test_average_precision_matches_hand_counts():
    from semantic_moments.bench.localization import average_precision

    truths = [(0, 10.0, 14.0), (1, 2.0, 6.0)]
    perfect = [(0.9, 0, 10.0, 14.0), (0.8, 1, 2.0, 6.0), (0.1, 0, 20.0, 24.0)]
    assert average_precision(perfect, truths, 0.5) == pytest.approx(1.0)
    # one miss ranked first: precisions 0, 1/2, 2/3 at recalls 0, .5, 1 -> interpolated (2/3 + 2/3) / 2
    late = [(0.95, 0, 20.0, 24.0), (0.9, 0, 10.0, 14.0), (0.8, 1, 2.0, 6.0)]
    assert average_precision(late, truths, 0.5) == pytest.approx(2 / 3)
    # a duplicate of a matched segment counts as a false positive; a loose window fails a strict tIoU
    assert average_precision([(0.9, 0, 10.0, 14.0), (0.8, 0, 10.5, 14.0)], truths, 0.5) == pytest.approx(0.5)
    assert average_precision([(0.9, 0, 11.0, 15.0)], truths, 0.7) == 0.0


def test_localization_benchmark_runs_end_to_end_on_a_small_synthetic_set(tmp_path, tiny_model):
    from semantic_moments.bench import localization

    manifest = localization.load(localization.make_synthetic(tmp_path / "set", scenes=3, size=64, seconds=2.0))
    assert len(manifest.videos) == 3 and len(manifest.queries) == 10
    for video in manifest.videos:  # the recorded spans are where the clips are: 3 clips with stills between
        spans = video["segments"]
        assert len(spans) == 3 and all(a[1] < b[0] for a, b in zip(spans, spans[1:]))
    plan = WindowPlan.parse("2:0.5", tiny_model.config.num_frames)
    features = localization.extract(manifest, tiny_model, plan)
    results = localization.evaluate(manifest, features, resamples=50)
    assert set(results) == set(localization.METHODS)
    for method, metrics in results.items():
        for mean, low, high in metrics.values():
            assert 0.0 <= low <= mean <= high <= 1.0
    assert results["whole-video embedding"]["segment R@1 (tIoU 0.5)"][0] == 0.0  # it cannot localise
    assert localization.plot_timeline(manifest, features, tmp_path / "line.png").stat().st_size > 1000


@pytest.mark.browser
def test_page_plays_found_segments_with_a_timeline(tmp_path, tiny_model):
    from conftest import served_page

    from semantic_moments.collection import build_index
    from semantic_moments.index import Index
    from semantic_moments.server.app import create_app

    folder = tmp_path / "videos"
    folder.mkdir()
    _long_video(folder / "first.mp4")
    _long_video(folder / "second.mp4", seconds=10)
    with Index.open(tmp_path / "index", create=True) as index:
        build_index(index, [folder], tiny_model, windows="2:0.5")
    with served_page(create_app(tmp_path / "index", upload_dir=tmp_path / "up")) as (page, base):
        page.goto(f"{base}/")
        page.wait_for_function("document.querySelector('#info').textContent.includes('windows of long videos')")
        page.locator("#clips .card", has_text="second").click()
        page.wait_for_selector("#results .card canvas.timeline")
        caption = page.text_content("#results .card .caption")
        assert "first.mp4" in caption and "–" in caption  # start–end of the segment, then the name
        first = page.locator("#results .card").first
        start, end = float(first.get_attribute("data-start")), float(first.get_attribute("data-end"))
        poster = page.get_attribute("#results .card video", "poster")
        assert f"?t={(start + end) / 2:.1f}" in poster  # the segment's own frame, not the video's middle
        page.wait_for_selector("#results canvas.timeline")
        assert page.evaluate("document.querySelector('#results canvas.timeline').toDataURL().length") > 1000
        # a found segment plays inside itself: pushed past its end, it comes back to its start
        page.wait_for_function("document.querySelector('#results .card video').readyState >= 1")
        page.evaluate(f"document.querySelector('#results .card video').currentTime = {end + 0.2}")
        page.wait_for_function(f"(() => {{ const v = document.querySelector('#results .card video'); "
                               f"return !v.seeking && v.currentTime >= {start - 0.3} && v.currentTime <= {end + 0.05}; }})()")
        # a click on the timeline plays from that time, mapped through the canvas's real (CSS) size
        timeline = page.locator("#results canvas.timeline").first
        box = timeline.bounding_box()
        timeline.click(position={"x": box["width"] * 0.75, "y": box["height"] / 2})
        duration = float(timeline.get_attribute("data-duration"))
        assert abs(float(timeline.get_attribute("data-clicked")) - 0.75 * duration) < 0.05 * duration
        # "why" explains the segment that was found, with its own score
        score = float(page.text_content("#results .card .score").split()[0])
        first.locator(".caption").click()
        page.wait_for_selector("#explain:not([hidden]) .barrow")
        title = page.text_content("#explain-title")
        assert "–" in title and f"({score:.3f})" in title
        # a segment result becomes the query
        first.get_by_role("button", name="Search with this segment").click()
        page.wait_for_function("document.querySelector('#query').textContent.includes('first.mp4 0:')")


def test_signer_localization_set_keeps_each_actor_in_their_own_videos(tmp_path):
    from conftest import SHARED, need_data

    from semantic_moments.bench import localization
    from semantic_moments.video import probe_duration

    labels = need_data(SHARED / "data" / "labels.csv")
    manifest = localization.load(localization.make_real_signers(labels, tmp_path / "set", prefix="kth_partial/",
                                                                clips_per_video=2, size=(60, 80)))
    assert [video["actor"] for video in manifest.videos] == ["person01", "person01"]  # the only one with 2+ clips
    assert sorted(query["actor"] for query in manifest.queries) == ["person03", "person04"]
    assert {query["class"] for query in manifest.queries} == {"boxing"}
    for video in manifest.videos:
        spans = video["segments"]
        assert len(spans) == 2 and spans[0][1] < spans[1][0]
        assert probe_duration(manifest.root / video["path"]) == pytest.approx(spans[1][1] + localization.STILL_SECONDS,
                                                                             abs=0.1)


def test_windows_read_through_the_clip_path_packed_b_frames_and_undecodable_frames(tmp_path, tiny_model):
    from test_video import packed_b_frames_avi

    avi = packed_b_frames_avi(tmp_path / "packed.avi", count=100)  # 4 s at 25 fps
    whole, windows = tiny_model.embed_windows(avi, "1:0.5")
    assert len(windows) == 7 and whole.segment is None
    frames = np.random.default_rng(1).integers(0, 32, (120, 48, 64, 3), dtype=np.uint8) + numbered_frames(120)
    mkv = write_video(tmp_path / "damaged.mkv", frames, fps=30, gop=10)
    import av

    with av.open(str(mkv)) as container:
        last = max((packet for packet in container.demux(video=0) if packet.size), key=lambda packet: packet.pos)
    data = bytearray(mkv.read_bytes())
    data[last.pos + 8: last.pos + last.size - 4] = bytes(last.size - 12)  # the last frame never decodes
    mkv.write_bytes(bytes(data))
    whole, windows = tiny_model.embed_windows(mkv, "1:0.5")
    assert len(windows) == 7


def test_window_plans_that_would_take_the_machine_are_refused():
    with pytest.raises(ConfigError, match="a window needs at least"):
        WindowPlan.parse("1e-9", frames=16)
    with pytest.raises(ConfigError, match="a window needs at least"):
        WindowPlan.parse("1e-5:1e-5", frames=16)
    plan = WindowPlan.parse("1:0.0625", frames=16)  # 16 frames a second, one window per frame
    with pytest.raises(ConfigError, match="at most 100000 per video"):
        plan.require_count(3 * 3600.0, "long.mp4")


def test_a_window_plan_is_kept_only_once_a_file_succeeds_and_a_failed_one_can_be_replaced(tmp_path, tiny_model, capsys):
    from semantic_moments.cli import main
    from semantic_moments.collection import build_index
    from semantic_moments.index import Index

    folder = tmp_path / "videos"
    folder.mkdir()
    (folder / "broken.mp4").write_bytes(b"not a video")
    with Index.open(tmp_path / "idx", create=True) as index:
        summary = build_index(index, [folder], tiny_model, windows="2:1")
        assert summary.failed and index.builds.window_plan is None  # nothing succeeded: no plan kept
        write_video(folder / "long.mp4", moving_square(60, 64, (200, 30, 30), "right"), fps=10)
        summary = build_index(index, [folder], tiny_model, windows="1:0.5")  # another plan: allowed, none kept
        assert index.builds.window_plan["length"] == 1.0 and summary.added == [str(folder / "long.mp4")]
        with pytest.raises(ConfigError, match="cannot also hold windows"):
            build_index(index, [folder], tiny_model, windows="2:1")  # windows are stored now
    # a file that failed under a plan is tried again by a build without that plan
    with Index.open(tmp_path / "plain", create=True) as index:
        build_index(index, [folder], tiny_model, windows="2:1")
        assert str(folder / "broken.mp4") in index.builds.failures()
    with Index.open(tmp_path / "other", create=True) as index:
        index.builds.record_failure(str(folder / "long.mp4"), (folder / "long.mp4").stat().st_size,
                             (folder / "long.mp4").stat().st_mtime, "failed under windows", {"length": 1e-9})
        summary = build_index(index, [folder], tiny_model)
        assert summary.added == [str(folder / "long.mp4")]


@pytest.mark.parametrize("argv, message", [
    (["--windows", "1e-9"], "a window needs at least"),
    (["--windows", "2:1", "--engine", "ray"], "local engine only"),
    (["--windows-from", "5"], "--windows-from needs --windows"),
])
def test_a_refused_build_creates_no_index_folder(argv, message, tmp_path, capsys):
    from semantic_moments.cli import main

    folder = tmp_path / "videos"
    folder.mkdir()
    assert main(["index", "build", str(folder), "--index", str(tmp_path / "idx"), *argv]) != 0
    assert message in capsys.readouterr().err and not (tmp_path / "idx").exists()
    assert main(["index", "build", str(tmp_path / "missing"), "--index", str(tmp_path / "idx")]) != 0
    assert not (tmp_path / "idx").exists()
    assert main(["index", "ingest", str(tmp_path / "missing.parquet"), "--index", str(tmp_path / "idx")]) != 0
    assert "no such Parquet" in capsys.readouterr().err and not (tmp_path / "idx").exists()


def test_segment_percentiles_are_read_against_window_pairs(windowed_index, tiny_model):
    index, folder = windowed_index
    query = tiny_model.embed(folder / "long.mp4", segment=(5.0, 7.0))
    hits = index.search_segments(query, k=3, per_video=3, include_own=True)
    segments = index.percentile([hit.score for hit in hits], kind="segments")
    assert all(0 < value <= 100 for value in segments) and segments[0] >= 90  # the best hit: near the top
    entries = index.segment_entries()  # by hand: every pair of windows and whole clips, under the same weights
    fused = index.layout.fused(entries.raw, index.weights())
    pairs = np.sort((fused @ fused.T)[np.triu_indices(len(fused), 1)])
    expected = [100.0 * np.searchsorted(pairs, hit.score, side="left") / len(pairs) for hit in hits]
    np.testing.assert_allclose(segments, expected)
    with pytest.raises(ConfigError, match="kind"):
        index.percentile([0.5], kind="frames")


def test_the_knob_says_where_rankings_stop_moving(windowed_index):
    index, _ = windowed_index
    acts = index.motion_knob_range()
    assert 0.5 <= acts <= 1.0
    from semantic_moments.index.calibration import knob_range

    # a ranking that moves until 0.8 and not after: the knob acts up to 0.8
    assert knob_range([1], lambda m, q: {1, 2} if m < 0.8 else {3, 4}) == 0.8
    assert knob_range([1], lambda m, q: {int(m * 100)}) == 1.0  # moves everywhere: the whole range acts


def test_concurrent_segment_queries_all_get_answers_and_embed_once(windowed_index, monkeypatch):
    """#31 item 11: the page asks a timeline per result after "Search with this segment", six at a
    time; every one is answered, and the segment is embedded once, through the server's line."""
    from concurrent.futures import ThreadPoolExecutor

    from fastapi.testclient import TestClient

    from semantic_moments import SemanticMoments
    from semantic_moments.server.app import create_app

    index, folder = windowed_index
    long_id = index.lookup(str(folder / "long.mp4"))[0]
    embedded = []
    original = SemanticMoments.embed

    def counted(self, *args, **kwargs):
        embedded.append(kwargs.get("segment"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SemanticMoments, "embed", counted)
    client = TestClient(create_app(index.path), base_url="http://127.0.0.1")
    ids = [hit["id"] for hit in client.post("/api/search", json={"query": {"id": long_id}, "segments": False,
                                                                 "k": 12}).json()["results"]] + [long_id]
    urls = [f"/api/timeline?a={long_id}&start=5&end=7&b={clip}" for clip in ids for _ in range(2)]
    urls += [f"/api/explain?a={long_id}&start=5&end=7&b={clip}" for clip in ids]
    with ThreadPoolExecutor(6) as pool:
        statuses = list(pool.map(lambda url: client.get(url).status_code, urls))
    assert statuses == [200] * len(urls)
    assert embedded == [(5.0, 7.0)]
