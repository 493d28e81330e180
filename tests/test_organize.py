"""Organising a collection by motion: near-duplicates (planted among real clips), groups, the map."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from conftest import SHARED, moving_square, need, need_data, write_video
from semantic_moments.video import write_video as encode
from semantic_moments.cli import main
from semantic_moments.errors import ConfigError, IndexStoreError

need("faiss")
DATA = SHARED / "data"


def _frames(path):
    import av

    with av.open(str(path)) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """Real clips of different actions and people, two retakes of one (the same person and action), and
    planted copies: one re-encoded at half the size and a lower bitrate, one trimmed by 10%, one cropped
    by 10%, and a mirrored one (not a copy for ``copies``: documented)."""
    arm = DATA / "ud810_arm_actions"
    sources = [arm / "A1_both_arms_side_raise" / "PS7A1P1T1.avi",
               arm / "A2_one_arm_raise" / "PS7A2P2T1.avi",
               arm / "A3_both_arms_front_raise" / "PS7A3P1T2.avi",
               arm / "A1_both_arms_side_raise" / "PS7A1P1T2.avi",  # retakes of the first
               arm / "A1_both_arms_side_raise" / "PS7A1P1T3.avi",
               *sorted((DATA / "kth_partial").rglob("*.*"))[:5]]
    for path in sources:
        need_data(path)
    folder = tmp_path_factory.mktemp("planted") / "videos"
    folder.mkdir()
    for path in sources:
        shutil.copy(path, folder / path.name)
    resized = _frames(sources[0])
    encode(folder / "copy_resized.mp4", resized[:, ::2, ::2], fps=29.97, crf=35)
    trimmed = _frames(sources[2])
    encode(folder / "copy_trimmed.mp4", trimmed[: int(len(trimmed) * 0.9)], fps=29.97, crf=23)
    cropped = _frames(sources[1])
    height, width = cropped.shape[1:3]
    encode(folder / "copy_cropped.mp4", cropped[:, height // 20:height - height // 20, width // 20:width - width // 20],
           fps=29.97, crf=23)
    encode(folder / "copy_mirrored.mp4", np.ascontiguousarray(_frames(sources[3])[:, :, ::-1]), fps=29.97, crf=23)
    index = folder.parent / "index"
    assert main(["index", "build", str(folder), "--index", str(index), "--quiet"]) == 0
    return folder, index, {frozenset({sources[0].name, "copy_resized.mp4"}), frozenset({sources[2].name, "copy_trimmed.mp4"}),
                           frozenset({sources[1].name, "copy_cropped.mp4"})}


def test_copies_come_first_and_no_retake_is_a_copy(planted, capsys):
    """#29: the re-encoded, trimmed and cropped copies, and nothing else, at the default threshold; a
    retake (the same person doing the same action again) and a mirrored copy are not copies."""
    import json
    from pathlib import Path

    folder, index, expected = planted
    capsys.readouterr()
    assert main(["index", "duplicates", "--index", str(index), "--groups", "--format", "json"]) == 0
    found = json.loads(capsys.readouterr().out)
    pairs = [frozenset({Path(pair["path_a"]).name, Path(pair["path_b"]).name}) for pair in found["pairs"]]
    assert set(pairs) == expected and len(pairs) == 3
    assert all(pair["kind"] == "copy" and pair["score"] > 0.95 for pair in found["pairs"])
    trim = next(pair for pair in found["pairs"] if "copy_trimmed.mp4" in (pair["path_a"] + pair["path_b"]))
    assert abs(trim["offset_seconds"]) < 0.1  # trimmed at the end: aligned from the start
    assert sorted(len(group) for group in found["groups"]) == [2, 2, 2]
    # the same motion: the retakes are there too (and score as high as copies by motion alone)
    assert main(["index", "duplicates", "--index", str(index), "--same-motion", "--format", "json"]) == 0
    motion = {frozenset({Path(pair["path_a"]).name, Path(pair["path_b"]).name})
              for pair in json.loads(capsys.readouterr().out)["pairs"]}
    assert frozenset({"PS7A1P1T1.avi", "PS7A1P1T2.avi"}) in motion or frozenset({"PS7A1P1T2.avi", "PS7A1P1T3.avi"}) in motion
    assert main(["index", "duplicates", "--index", str(index), "--min-score", "0.999999", "--format", "csv"]) == 0
    assert capsys.readouterr().out.strip().splitlines() == ["score,a,b"]  # none that close: a header, no rows


def test_groups_are_named_and_scored_against_labels(planted, capsys):
    import json

    folder, index, _ = planted
    labels = folder.parent / "labels.csv"
    labels.write_text("path,class\n" + "".join(f"videos/{path.name},{path.stem.split('_')[1] if '_' in path.stem else path.stem[:5]}\n"
                                                for path in sorted(folder.iterdir())))
    assert main(["index", "clusters", "--index", str(index), "--k", "3", "--labels", str(labels), "--format", "json"]) == 0
    captured = capsys.readouterr()
    rows = json.loads(captured.out)
    assert len(rows) == 14 and {row["cluster"] for row in rows} == {0, 1, 2} and all(row["path"] for row in rows)
    assert "3 group(s) by kmeans; purity" in captured.err
    assert main(["index", "clusters", "--index", str(index), "--auto"]) == 0
    assert "most central:" in capsys.readouterr().out
    from semantic_moments.organize import purity

    assert purity([0, 0, 1, 1], ["a", "a", "b", "b"]) == 1.0 and purity([0, 0, 0, 0], ["a", "a", "b", "b"]) == 0.5


def test_hdbscan_keeps_groups_apart_and_one_group_whole():
    """HDBSCAN allowed a single group from the start lumps three groups into one (seen on the arm
    actions: 6 groups -> 1); a collection that is one group is still one group, not noise."""
    need("sklearn")
    from semantic_moments.organize import hdbscan_labels, purity

    rng = np.random.default_rng(1)  # three groups of 9 that allow_single_cluster=True lumps into one
    centres = rng.normal(size=(3, 16))
    vectors = np.concatenate([centre + 0.6 * rng.normal(size=(9, 16)) for centre in centres])
    labels = hdbscan_labels(vectors)
    assert len(set(labels.tolist()) - {-1}) == 3 and purity(labels, np.repeat(["a", "b", "c"], 9)) == 1.0
    same = np.repeat(rng.normal(size=(1, 16)), 6, axis=0)  # six copies of one clip
    assert set(hdbscan_labels(same).tolist()) == {0}
    assert purity([-1, -1, 0, 0], ["a", "a", "b", "b"]) == 0.5  # no group counts as wrong


def test_map_places_every_clip(planted):
    from semantic_moments import organize
    from semantic_moments.index import Index

    _, index_path, _ = planted
    with Index.open(index_path) as index:
        for method in ("pca", "auto"):
            ids, points, used, seconds = organize.map_2d(index, method=method)
            assert len(ids) == len(index) == len(points) and points.min() >= 0 and points.max() <= 1
            assert used == ("pca" if method == "pca" or len(ids) < 20 else "umap") and 0 < seconds < 60
        with pytest.raises(ConfigError, match="map method"):
            organize.map_2d(index, method="tsne")


def test_repeats_inside_long_videos_are_reported_as_duplicate_segments(tmp_path):
    from semantic_moments import SemanticMoments, organize
    from semantic_moments.collection import build_index
    from semantic_moments.index import Index

    right = moving_square(20, 64, (220, 60, 60), "right")
    down = moving_square(20, 64, (60, 220, 60), "down")
    folder = tmp_path / "videos"
    folder.mkdir()
    write_video(folder / "twice.mp4", np.concatenate([right, down, right]), fps=10)  # 6 s: right, down, right
    with Index.open(tmp_path / "index", create=True) as index:
        build_index(index, [folder], SemanticMoments("test-tiny", frames=8), windows="2:0.5")
        pairs = organize.duplicate_segments(index, min_score=None, top=3)
        assert pairs and pairs[0].a == pairs[0].b  # the same motion at two places of one video
        a, b = sorted([pairs[0].span_a, pairs[0].span_b])
        assert a[1] <= b[0] and a == (0.0, 2.0) and b == (4.0, 6.0)  # the two "right" stretches


def test_bad_requests_are_one_line_errors(tmp_path, capsys):
    from semantic_moments import organize
    from semantic_moments.index import Index

    with Index.open(tmp_path / "empty", create=True) as index:
        with pytest.raises(IndexStoreError, match="empty"):
            organize.duplicates(index)
        with pytest.raises(IndexStoreError, match="at least 2 clips"):
            organize.clusters(index)
    assert main(["index", "duplicates", "--index", str(tmp_path / "nope")]) == 1
    assert "no index here" in capsys.readouterr().err


def test_identical_clips_are_one_group_said_once_and_k_with_hdbscan_is_refused(tmp_path, tiny_model, capsys):
    """#31 item 18: six copies of a clip are one group for HDBSCAN and --auto (no raw scikit-learn
    warning, the count what is listed); --k with HDBSCAN is refused; two clips on the map are apart."""
    import warnings

    from conftest import moving_square

    from semantic_moments import Index, organize
    from semantic_moments.cli import main

    embedding = tiny_model.embed(moving_square(24, 64, (200, 60, 40), "right"))
    with Index.open(tmp_path / "same.index", create=True) as index:
        for number in range(6):
            index.add(embedding, path=f"/clips/copy{number}.mp4")
        assert len(organize.duplicates(index)) == 15
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no raw library warning
            grouped = organize.clusters(index, method="hdbscan")
            auto = organize.clusters(index)
        assert set(grouped.labels.tolist()) == {0} and grouped.k == 1
        assert set(auto.labels.tolist()) == {0} and auto.k == 1
        with pytest.raises(ConfigError, match="k applies to k-means"):
            organize.clusters(index, k=3, method="hdbscan")
    assert main(["index", "clusters", "--index", str(tmp_path / "same.index"), "--auto"]) == 0
    captured = capsys.readouterr()
    assert "1 group(s)" in captured.err and captured.out.count("group 0") == 1 and "group 1" not in captured.out
    with Index.open(tmp_path / "two.index", create=True) as index:
        index.add(embedding, path="/clips/a.mp4")
        index.add(tiny_model.embed(moving_square(24, 64, (40, 60, 200), "down")), path="/clips/b.mp4")
        _, points, _, _ = organize.map_2d(index)
        assert not np.allclose(points[0], points[1])


def test_a_clip_that_is_part_of_a_long_video_is_found_with_its_span(tmp_path, capsys):
    """#29: a clip cut from a longer windowed video (re-encoded at half size) is reported as a part of
    it, with the span it covers; frame signatures are kept in the index and serve the next run."""
    import json
    import sqlite3
    from pathlib import Path

    arm = DATA / "ud810_arm_actions"
    pieces = [arm / "A1_both_arms_side_raise" / "PS7A1P1T1.avi", arm / "A2_one_arm_raise" / "PS7A2P2T1.avi",
              arm / "A3_both_arms_front_raise" / "PS7A3P1T2.avi"]
    for path in pieces:
        need_data(path)
    folder = tmp_path / "videos"
    folder.mkdir()
    frames = [_frames(path) for path in pieces]
    encode(folder / "long.mp4", np.concatenate(frames), fps=29.97, crf=23)
    encode(folder / "part.mp4", frames[1][:, ::2, ::2], fps=29.97, crf=30)
    shutil.copy(arm / "A2_one_arm_raise" / "PS7A2P2T2.avi", folder)  # a retake of the part: not a copy
    index = tmp_path / "index"
    assert main(["index", "build", str(folder), "--index", str(index), "--windows", "4:1", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["index", "duplicates", "--index", str(index), "--format", "json"]) == 0
    pairs = json.loads(capsys.readouterr().out)["pairs"]
    assert [(pair["kind"], Path(pair["path_a"]).name, Path(pair["path_b"]).name) for pair in pairs] == \
        [("part", "long.mp4", "part.mp4")]
    start = len(frames[0]) / 29.97
    span = pairs[0]["span_a"]
    assert span[0] == pytest.approx(start, abs=0.1) and span[1] == pytest.approx(start + len(frames[1]) / 29.97, abs=0.1)
    assert pairs[0]["score"] > 0.95
    with sqlite3.connect(str(index / "index.sqlite")) as connection:
        kept = connection.execute("SELECT COUNT(*) FROM signatures").fetchone()[0]
    assert kept >= 1
    (folder / "part.mp4").unlink()  # its signature is kept: the next run still finds it without the file
    assert main(["index", "duplicates", "--index", str(index), "--format", "json"]) == 0
    captured = capsys.readouterr()
    assert [pair["kind"] for pair in json.loads(captured.out)["pairs"]] == ["part"] and "skipped" not in captured.err


def test_the_page_lists_copies_and_same_motion_pairs_by_kind(planted, tmp_path):
    """#29: the page shows which a pair is: the API names each pair's kind, and the page's Duplicates
    panel lists the copies (and, asked, the pairs of the same motion) labelled so; a click searches."""
    from conftest import api_client, served_page
    from semantic_moments.server import create_app

    folder, index, expected = planted
    with api_client(index, tmp_path / "up") as client:
        copies = client.get("/api/duplicates").json()
        assert {frozenset({pair["a"]["name"], pair["b"]["name"]}) for pair in copies["pairs"]} == expected
        assert {pair["kind"] for pair in copies["pairs"]} == {"copy"} and copies["total"] == 3
        motion = client.get("/api/duplicates", params={"kind": "same-motion"}).json()
        assert motion["total"] >= 3 and {pair["kind"] for pair in motion["pairs"]} == {"same motion"}
        assert client.get("/api/duplicates", params={"kind": "everything"}).status_code == 422
    with served_page(create_app(index, upload_dir=tmp_path / "up2")) as (page, base):
        page.goto(base)
        page.click("#show-duplicates")
        page.wait_for_function("document.querySelectorAll('#duplicates .pair').length === 3")
        assert page.locator("#duplicates .pair .pair-kind").all_text_contents() == ["copy"] * 3
        page.check("input[name=duplicates-kind][value=same-motion]")
        page.wait_for_function("[...document.querySelectorAll('#duplicates .pair')].every(p => p.dataset.kind === "
                               "'same motion') && document.querySelectorAll('#duplicates .pair').length >= 3")
        name = page.locator("#duplicates .pair .pair-side span").first.text_content()
        page.locator("#duplicates .pair .pair-side").first.click()
        page.wait_for_function(f"document.querySelector('#query').textContent.includes({name!r})")
