"""The motion index: exact query-time alpha, incremental and resumable builds, concurrency, the CLI."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import moving_square, need, write_video

from semantic_moments import SemanticMoments, similarity
from semantic_moments.cli import main
from semantic_moments.collection import build_index
from semantic_moments.errors import ConfigError, IndexStoreError
from semantic_moments.index import Index, motion_alpha

COLOURS = [(230, 40, 40), (40, 200, 60), (40, 60, 230), (220, 220, 40), (200, 40, 200), (40, 200, 200)]


def make_collection(folder: Path, count: int = 6) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        direction = "right" if index % 2 else "down"
        frames = moving_square(12 + index, 64, COLOURS[index % len(COLOURS)], direction, background=30 + 20 * index)
        paths.append(write_video(folder / f"clip{index}.mp4", frames))
    return paths


@pytest.fixture
def collection(tmp_path):
    return make_collection(tmp_path / "videos")


@pytest.fixture
def model():
    return SemanticMoments("test-tiny", frames=8)


def test_query_time_alpha_equals_re_embedding_with_that_alpha(tmp_path, collection, model):
    embeddings = model.embed(collection)
    with Index.open(tmp_path / "idx", create=True) as index:
        for path, embedding in zip(collection, embeddings):
            index.add(embedding, path=str(path))
        for alpha in ((1, 8, 4), (1, 0, 0), (0, 1, 1), (2, 1, 0.5)):
            query = SemanticMoments("test-tiny", frames=8, alpha=alpha).embed(collection[0])
            hits = index.search(query, k=len(collection), alpha=alpha)
            expected = sorted(((similarity(query, e), str(p)) for p, e in zip(collection, embeddings)), reverse=True)
            assert [hit.path for hit in hits] == [path for _, path in expected]
            np.testing.assert_allclose([hit.score for hit in hits], [score for score, _ in expected], atol=1e-5)


def test_search_by_indexed_clip_excludes_itself_and_is_deterministic(tmp_path, collection, model):
    with Index.open(tmp_path / "idx", create=True) as index:
        summary = build_index(index, [collection[0].parent], model)
        assert len(summary.added) == 6
        first = index.search(str(collection[2]), k=3)
        assert str(collection[2]) not in [hit.path for hit in first]
        assert index.search(str(collection[2]), k=3) == first
        by_id = index.lookup(str(collection[2]))[0]
        assert index.search(by_id, k=3) == first
        assert set(first[0].per_part) == {1, 2, 3, "flow"}
        with pytest.raises(IndexStoreError, match="not in the index"):
            index.search("nowhere.mp4")


def test_incremental_build_touches_only_changed_files(tmp_path, collection, model, monkeypatch):
    folder = collection[0].parent
    with Index.open(tmp_path / "idx", create=True) as index:
        build_index(index, [folder], model)
        embedded: list[str] = []
        original = model.iter_embed
        monkeypatch.setattr(model, "iter_embed", lambda sources, **kw: (embedded.extend(map(str, sources)), original(sources, **kw))[1])
        assert build_index(index, [folder], model).counts()["unchanged"] == 6 and embedded == []
        os.utime(collection[1], (time.time() + 100, time.time() + 100))  # touched, same content
        write_video(collection[2], moving_square(20, 64, (255, 255, 255), "right"))  # changed content
        write_video(folder / "new.mp4", moving_square(10, 64, (90, 90, 250), "down"))
        collection[3].unlink()
        summary = build_index(index, [folder], model, prune=True)
        assert summary.counts() == {"added": 1, "updated": 1, "unchanged": 4, "removed": 1, "failed": 0, "skipped": 0}
        assert sorted(embedded) == sorted([str(collection[2]), str(folder / "new.mp4")])
        assert len(index) == 6 and index.lookup(str(collection[3])) is None


def test_bad_files_are_skipped_and_reported(tmp_path, collection, model, videos):
    with Index.open(tmp_path / "idx", create=True) as index:
        # a folder scan picks video suffixes only; the audio file is named explicitly
        summary = build_index(index, [collection[0].parent, videos, videos / "audio_only.m4a"], model)
    assert "no video stream" in summary.failed[str((videos / "audio_only.m4a").resolve())]
    assert {Path(p).name for p in summary.failed} == {"text.mp4", "empty.mp4", "truncated.mp4", "one_frame.mp4",
                                                      "audio_only.m4a"}
    assert "not a readable video" in summary.failed[str((videos / "text.mp4").resolve())]
    assert len(summary.added) == 8


def test_mismatched_settings_are_refused(tmp_path, collection, model):
    with Index.open(tmp_path / "idx", create=True) as index:
        build_index(index, [collection[0].parent], model)
        other = SemanticMoments("test-tiny", frames=16)
        with pytest.raises(ConfigError, match=r"other settings than the index .*num_frames: index has 8, the model has 16"):
            build_index(index, [collection[0].parent], other)
        with pytest.raises(ConfigError, match="num_frames: index has 8"):
            index.add(other.embed(collection[0]))
        with pytest.raises(ConfigError, match="one weight per order"):
            index.search(str(collection[0]), alpha=(1, 2))


def test_settings_of_a_rolled_back_first_add_are_not_kept(tmp_path, collection, model):
    first, other = model.embed(collection[0]), SemanticMoments("test-tiny", frames=16).embed(collection[1])
    with Index.open(tmp_path / "idx", create=True) as index:
        with pytest.raises(ConfigError, match="num_frames: index has 8"):
            index.add_many([(first, None, 0, 0.0), (other, None, 0, 0.0)])  # one transaction: rolled back whole
        assert len(index) == 0 and index.feature_settings is None and index.orders == ()
        index.add(other)  # the index takes the settings of its first committed clip
        assert index.config.num_frames == 16
        with pytest.raises(ConfigError, match="num_frames: index has 16"):
            index.add(first)
    with Index.open(tmp_path / "idx", create=True) as reopened:
        assert reopened.config.num_frames == 16 and len(reopened) == 1


def test_hnsw_index_finds_new_clips_and_forgets_removed_ones(tmp_path, collection, model):
    with Index.open(tmp_path / "idx", create=True) as index:
        build_index(index, [collection[0].parent], model, ann="hnsw")
        assert index.ann["kind"] == "hnsw"
        exact = Index.open(tmp_path / "idx", create=True)
        exact.approximate = False  # the same rows, searched exactly
        query = str(collection[0])
        assert [h.path for h in index.search(query, k=5)] == [h.path for h in exact.search(query, k=5)]
        late = write_video(tmp_path / "late.mp4", moving_square(12, 64, COLOURS[0], "down", background=30))
        index.add(model.embed(late), path=str(late))  # after the ANN file was written
        assert str(late) in [hit.path for hit in index.search(query, k=6)]
        index.remove([str(collection[4])])
        assert str(collection[4]) not in [hit.path for hit in index.search(query, k=10)]
        exact.close()


def test_hnsw_updates_append_and_rebuild_when_stale(tmp_path, collection, model):
    with Index.open(tmp_path / "idx", create=True) as index:
        build_index(index, [collection[0].parent], model, ann="hnsw")
        first = index.ann
        (tmp_path / "extra").mkdir()
        extra = write_video(tmp_path / "extra" / "e.mp4", moving_square(12, 64, (1, 2, 3), "right"))
        build_index(index, [collection[0].parent, extra.parent], model, ann="hnsw")
        appended = index.ann
        assert appended["entries"] == 7 and appended["file"] != first["file"]
        assert not (index.path / first["file"]).exists(), "the superseded ANN file is deleted"
        index.remove([str(p) for p in collection[:3]])  # 3 of 7 entries stale: above 20%, rebuild
        index.write_ann("hnsw")
        assert index.ann["entries"] == 4
        assert str(extra.resolve()) in [hit.path for hit in index.search(str(collection[4]), k=3)]


def test_motion_knob():
    assert motion_alpha(0.5) == (1.0, 8.0, 4.0)
    assert motion_alpha(0.0) == (2.0, 0.0, 0.0) and motion_alpha(1.0) == (0.0, 16.0, 8.0)
    with pytest.raises(ConfigError, match="between 0"):
        motion_alpha(1.5)


def test_opening_a_missing_or_damaged_index(tmp_path):
    with pytest.raises(IndexStoreError, match="no index here"):
        Index.open(tmp_path / "none", create=False)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "index.sqlite").write_bytes(b"not a database at all" * 100)
    with pytest.raises(IndexStoreError, match="not a readable index"):
        Index.open(tmp_path / "broken", create=True)


BUILD_SCRIPT = """
import sys, time
import semantic_moments.embedder as embedder
from semantic_moments import SemanticMoments
from semantic_moments.collection import build_index
from semantic_moments.index import Index
slow = embedder.SemanticMoments._finish
def finish(self, work, segment):
    time.sleep(0.4)  # each clip takes a while, so the kill lands mid-build
    return slow(self, work, segment)
embedder.SemanticMoments._finish = finish
with Index.open(sys.argv[1], create=True) as index:
    build_index(index, [sys.argv[2]], SemanticMoments("test-tiny", frames=8, batch_size=8, decode_workers=1))
"""


def test_a_build_killed_mid_way_leaves_a_valid_index_and_the_rerun_completes(tmp_path, model):
    folder = tmp_path / "many"
    make_collection(folder, count=12)
    index_path = tmp_path / "idx"
    process = subprocess.Popen([sys.executable, "-c", BUILD_SCRIPT, str(index_path), str(folder)])
    deadline = time.time() + 60
    while time.time() < deadline:
        if (index_path / "index.sqlite").exists():
            with Index.open(index_path, create=True) as probe:
                if len(probe) >= 3:
                    break
        time.sleep(0.1)
    process.send_signal(signal.SIGKILL)
    process.wait()
    with Index.open(index_path, create=True) as index:
        committed = len(index)
        assert 3 <= committed < 12
        assert len(index.search(index.lookup(1)[0], k=2)) == 2
        summary = build_index(index, [folder], model)
        assert len(summary.added) == 12 - committed and len(summary.unchanged) == committed
        assert len(index) == 12


SEARCH_SCRIPT = """
import sys, time
from semantic_moments.index import Index
deadline = time.time() + 20
searches = 0
with Index.open(sys.argv[1], create=False) as index:
    while time.time() < deadline and searches < 60:
        hits = index.search(1, k=3)
        assert hits and all(-1.0001 <= hit.score <= 1.0001 for hit in hits)
        searches += 1
print(searches)
"""


def test_several_processes_search_while_one_builds(tmp_path, model):
    folder = tmp_path / "more"
    paths = make_collection(folder, count=10)
    with Index.open(tmp_path / "idx", create=True) as index:
        build_index(index, [paths[0]], model)
        readers = [subprocess.Popen([sys.executable, "-c", SEARCH_SCRIPT, str(tmp_path / "idx")],
                                    stdout=subprocess.PIPE, text=True) for _ in range(2)]
        build_index(index, [folder], model)
        outputs = [reader.communicate(timeout=60) for reader in readers]
    assert all(reader.returncode == 0 for reader in readers)
    assert all(int(out) > 0 for out, _ in outputs)


def test_cli_build_and_search(tmp_path, collection, capsys):
    index_path = str(tmp_path / "idx")
    folder = str(collection[0].parent)
    assert main(["index", "build", folder, "--index", index_path, "--backbone", "test-tiny", "--frames", "8",
                 "--quiet", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["added"] == 6
    assert main(["index", "build", folder, "--index", index_path, "--quiet"]) == 0  # reuses the index's settings
    assert "6 unchanged" in capsys.readouterr().err
    assert main(["index", "build", folder, "--index", index_path, "--frames", "16", "--quiet"]) == 2
    assert "frames: index has 8, the options given give 16" in capsys.readouterr().err
    assert main(["search", str(collection[1]), "--index", index_path, "-k", "3", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert len(hits) == 3 and [hit["rank"] for hit in hits] == [1, 2, 3]
    fresh = write_video(tmp_path / "query.mp4", moving_square(16, 64, (10, 10, 10), "right"))
    assert main(["search", str(fresh), "--index", index_path, "--motion", "1", "--segment", "0-0.5"]) == 0
    captured = capsys.readouterr()
    table = captured.out
    assert table.splitlines()[0].split()[:5] == ["rank", "id", "score", "pct", "M1"] and len(table.splitlines()) == 7
    assert table.splitlines()[0].split()[-2:] == ["flow", "path"] and f"query: {fresh}" in captured.err
    assert main(["search", "2", "--index", index_path, "-k", "2", "--format", "paths"]) == 0
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 2 and all(Path(line).is_file() for line in captured.out.splitlines())
    assert "query: clip 2 (" in captured.err
    assert main(["search", "2", "--index", index_path, "-k", "2", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 2 and {"rank", "id", "path", "score", "percentile", "M1", "flow"} <= set(rows[0])
    assert main(["index", "list", "--index", index_path, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["total"] == 6 and {clip["id"] for clip in listed["clips"]} == set(range(1, 7))
    assert main(["index", "remove", "3", "--index", index_path]) == 0
    assert "removed 1 clip" in capsys.readouterr().err
    assert main(["index", "list", "--index", index_path, "--filter", "right"]) == 0
    assert all("right" in line for line in capsys.readouterr().out.splitlines())
    assert main(["index", "info", "--index", index_path]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["clips"] == 5 and info["features"]["num_frames"] == 8 and info["ann"] is None
    assert main(["search", "x.mp4", "--index", str(tmp_path / "nope")]) == 1
    assert "no index here" in capsys.readouterr().err


def test_percentile_reads_a_score_against_the_collection(tmp_path, collection, model):
    with Index.open(tmp_path / "idx", create=True) as index:
        build_index(index, [collection[0].parent], model)
        hits = index.search(1, k=5)
        percentiles = index.percentile([hit.score for hit in hits])
        embeddings = [index.row_of(clip_id) for clip_id in range(1, 7)]
        fused = index.layout.fused(np.stack(embeddings), index.weights())
        pairs = np.sort((fused @ fused.T)[np.triu_indices(6, 1)])
        expected = [100.0 * np.searchsorted(pairs, hit.score, side="left") / len(pairs) for hit in hits]
        np.testing.assert_allclose(percentiles, expected)
        assert percentiles == sorted(percentiles, reverse=True) and 0 <= min(percentiles) <= max(percentiles) <= 100
        assert index.percentile([-1.0, 2.0]) == [0.0, 100.0]


def test_failed_files_are_not_retried_until_they_change(tmp_path, collection, model):
    folder = collection[0].parent
    bad = folder / "broken.mp4"
    bad.write_bytes(b"not a video at all")
    with Index.open(tmp_path / "idx", create=True) as index:
        first = build_index(index, [folder], model)
        assert list(first.failed) == [str(bad.resolve())]
        second = build_index(index, [folder], model)
        assert not second.failed and "failed before, unchanged" in second.skipped[str(bad.resolve())]
        assert build_index(index, [folder], model, retry_failed=True).failed  # asked to: tried again
        write_video(bad, moving_square(10, 64, (9, 9, 9), "down"))  # fixed: a new version is tried
        fixed = build_index(index, [folder], model)
        assert fixed.added == [str(bad.resolve())] and index.builds.failures() == {}


def test_the_motion_knob_moves_the_spread_share_over_its_whole_range(tmp_path, collection, model):
    with Index.open(tmp_path / "idx", create=True) as index:
        build_index(index, [collection[0].parent], model)
        spreads = index.part_spreads(1000)
        names = [name for name, _ in index.parts]

        def motion_share(motion):
            alpha, flow = index.motion_weights(motion)
            weights = dict(zip(names, index.weights(alpha, flow)))
            energy = {name: weights[name] ** 2 * spreads[name] for name in names}
            return sum(v for name, v in energy.items() if name != "moment.1") / sum(energy.values())

        default = motion_share(0.5)
        assert 0 < default < 1
        expected = {0.0: 0.0, 0.25: default / 2, 0.5: default, 0.75: (1 + default) / 2, 1.0: 1.0}
        for motion, share in expected.items():
            assert motion_share(motion) == pytest.approx(share, abs=1e-6), motion
        # 0.5 is the index's own weights (up to scale): the same ranking
        alpha, flow = index.motion_weights(0.5)
        assert [h.id for h in index.search(1, k=5, alpha=alpha, flow_weight=flow)] == [h.id for h in index.search(1, k=5)]
        assert index.motion_weights(0.0)[1] == 0.0 and index.motion_weights(1.0)[0][0] == 0.0


def test_export_parquet_holds_ids_paths_settings_and_vectors(tmp_path, collection, model, capsys):
    pyarrow_parquet = need("pyarrow.parquet")
    with Index.open(tmp_path / "idx", create=True) as index:
        build_index(index, [collection[0].parent], model)
        parts = index.parts
        expected = {clip_id: index.row_of(clip_id) for clip_id in range(1, 7)}
    assert main(["index", "export", "--index", str(tmp_path / "idx"), "--parquet", str(tmp_path / "clips.parquet")]) == 0
    table = pyarrow_parquet.read_table(tmp_path / "clips.parquet")
    assert table.num_rows == 6 and {"id", "path", "content_hash", "moment_1", "flow_4"} <= set(table.column_names)
    metadata = {key.decode(): json.loads(value) for key, value in table.schema.metadata.items()}
    assert metadata["semantic_moments.parts"] == parts and metadata["semantic_moments.features"]["num_frames"] == 8
    row = table.slice(2, 1).to_pylist()[0]
    joined = np.concatenate([np.asarray(row[name.replace(".", "_")], dtype=np.float32) for name, _ in parts])
    np.testing.assert_array_equal(joined, expected[row["id"]])
    model_info = metadata["semantic_moments.model"]
    assert model_info["backbone"] == "test-tiny" and model_info["num_frames"] == 8 and model_info["package_version"]
    assert {row["kind"] for row in table.to_pylist()} == {"clip"} and len(row["vector"]) > 0


def test_the_exported_vectors_load_into_lancedb_and_find_what_search_finds(tmp_path, collection, model):
    """The docs' recipe (docs/index-and-search.md, "Export"), run: LanceDB over the exported vectors
    returns the same top 10 as ``search``."""
    lancedb = need("lancedb")
    import pyarrow.parquet as pq

    more = make_collection(tmp_path / "more", count=12)
    with Index.open(tmp_path / "idx", create=True) as index:
        build_index(index, [collection[0].parent, more[0].parent], model)
        expected = [hit.id for hit in index.search(3, k=10)]
        index.export_parquet(tmp_path / "clips.parquet")
    # -- the recipe --
    table = pq.read_table(tmp_path / "clips.parquet")
    for _ in range(2):  # the recipe runs twice: a second run replaces the table (#31, item 7)
        clips = lancedb.connect(str(tmp_path / "lance")).create_table("clips", table, mode="overwrite")
        query = table.filter(table["id"].to_numpy() == 3)["vector"][0].as_py()
        found = clips.search(query).distance_type("dot").limit(11).to_list()
        top = [row["id"] for row in found if row["id"] != 3][:10]
        # -- --
        assert top == expected

def test_paths_stay_as_the_user_reaches_them_through_links(tmp_path, collection, model):
    link = tmp_path / "my-videos"
    link.symlink_to(collection[0].parent)
    with Index.open(tmp_path / "idx", create=True) as index:
        summary = build_index(index, [link], model)
        assert all(path.startswith(str(link) + "/") for path in summary.added)
        assert all(hit.path.startswith(str(link) + "/") for hit in index.search(1, k=3))
        assert index.lookup(str(link / collection[2].name)) is not None
        # an index from before (keys resolved through the link) is renamed, not embedded again
        for path in list(index.builds.files()):
            index.builds.rename(path, str(Path(path).resolve()))
        again = build_index(index, [link], model, prune=True)
        assert len(again.unchanged) == 6 and not again.added and not again.removed
        assert all(path.startswith(str(link)) for path in index.builds.files())


def test_an_index_from_before_token_flow_searches_and_says_why_it_cannot_grow(tmp_path, collection, model):
    import dataclasses

    from semantic_moments.errors import ConfigError

    old = [dataclasses.replace(embedding, flow={}, keypoints={}, config=embedding.config.replace(keypoints=()))
           for embedding in model.embed(collection)]  # files from before token flow (and keypoints)
    with Index.open(tmp_path / "idx", create=True) as index:
        for path, embedding in zip(collection, old):
            index.add(embedding, path=str(path))
        assert index.parts == [["moment.1", 24], ["moment.2", 24], ["moment.3", 24]]
        assert len(index.search(1, k=3, flow_weight=0)) == 3
        with pytest.raises(ConfigError, match="flow: index has None, the model has"):
            build_index(index, [collection[0].parent], model)


def test_a_still_query_finds_still_clips_among_many_moving_ones(tmp_path, model):
    import dataclasses

    moving = model.embed(moving_square(16, 64, (200, 40, 40), "right"))
    still = dataclasses.replace(moving, moments={1: moving.moments[1], 2: 0 * moving.moments[2], 3: 0 * moving.moments[3]},
                                flow={size: 0 * vector for size, vector in moving.flow.items()})
    rng = np.random.default_rng(0)
    with Index.open(tmp_path / "idx", create=True) as index:
        for number in range(60):  # moving clips whose appearance is closer to the query than the still one's
            jitter = {order: value + 0.01 * rng.normal(size=value.shape).astype(np.float32)
                      for order, value in moving.moments.items()}
            index.add(dataclasses.replace(moving, moments=jitter), path=f"moving{number}.mp4")
        far_still = dataclasses.replace(still, moments={**still.moments, 1: still.moments[1] + 0.3})
        index.add(far_still, path="still.mp4")
        hits = index.search(still, k=1)
        assert hits[0].path == "still.mp4"  # exact cosine 1-ish vs ~0.04 for any moving clip


def test_raw_query_arrays_are_checked_against_the_layout(tmp_path, collection, model):
    from semantic_moments.errors import ConfigError

    with Index.open(tmp_path / "idx", create=True) as index:
        build_index(index, [collection[0].parent], model)
        row = index.row_of(2)
        assert [hit.id for hit in index.search(row, k=2)] == [hit.id for hit in index.search(row.reshape(1, -1), k=2)]
        with pytest.raises(ConfigError, match="a raw query needs"):
            index.search(row[:-1], k=2)


def test_several_examples_and_negatives_follow_the_documented_rule(tmp_path, collection, model):
    from semantic_moments.embedding import similarity
    from semantic_moments.index.rows import combined_scores

    embeddings = dict(zip(map(str, collection), model.embed(collection)))
    with Index.open(tmp_path / "idx", create=True) as index:
        for path, embedding in embeddings.items():
            index.add(embedding, path=path)
        a, b, c = (str(path) for path in collection[:3])
        single = index.search(a, k=5)
        assert [hit.score for hit in index.search([a], k=5)] == [hit.score for hit in single]  # one example: as before
        hits = index.search([a, b], k=10, negatives=[c], negative_weight=0.5)
        assert {a, b, c}.isdisjoint(hit.path for hit in hits)  # examples and negatives are left out
        for hit in hits:  # the score is the rule, exactly
            expected = combined_scores([np.array([similarity(embeddings[a], embeddings[hit.path])]),
                                        np.array([similarity(embeddings[b], embeddings[hit.path])])],
                                       [np.array([similarity(embeddings[c], embeddings[hit.path])])], 0.5)[0]
            assert hit.score == pytest.approx(expected, abs=1e-5)
        with pytest.raises(ConfigError, match="negative_weight"):
            index.search(a, negatives=[c], negative_weight=-1)
        with pytest.raises(ConfigError, match="at least one example"):
            index.search([], k=3)
        own = index.search(a, k=10, include_own=True)
        assert own[0].path == a and own[0].score == pytest.approx(1.0, abs=1e-5)


def test_where_restricts_results_by_path_folder_duration_and_windows(tmp_path, collection, model):
    from semantic_moments.index import Where

    with Index.open(tmp_path / "idx", create=True) as index:
        build_index(index, [collection[0].parent], model)
        everything = {hit.path for hit in index.search(str(collection[0]), k=10)}
        only = index.search(str(collection[0]), k=10, where=Where(path=f"*{collection[1].name}"))
        assert [hit.path for hit in only] == [str(collection[1])]
        assert {hit.path for hit in index.search(str(collection[0]), k=10, where=Where(folder=str(collection[0].parent)))} == everything
        assert index.search(str(collection[0]), k=10, where=Where(min_duration=1e6)) == []
        assert index.search(str(collection[0]), k=10, where=Where(windowed=True)) == []
        assert {hit.path for hit in index.search(str(collection[0]), k=10, where=Where(windowed=False))} == everything
    assert Where.parse(["duration=2-", "windowed=no", "path=*.mp4"]) == Where(path="*.mp4", min_duration=2.0,
                                                                                windowed=False)
    for bad in (["duration=x"], ["size=3"], ["path"], ["windowed=maybe"], ["duration=9-2"]):
        with pytest.raises(ConfigError):
            Where.parse(bad)


def test_a_query_file_with_an_indexed_clips_content_leaves_that_clip_out(tmp_path, collection, capsys):
    import shutil

    index_path = str(tmp_path / "idx")
    assert main(["index", "build", str(collection[0].parent), "--index", index_path, "--backbone", "test-tiny",
                 "--frames", "8", "--quiet"]) == 0
    copy = tmp_path / "copy.mp4"
    shutil.copy(collection[2], copy)  # the same clip, elsewhere: not an indexed path
    capsys.readouterr()
    assert main(["search", str(copy), "--index", index_path, "--format", "paths", "-k", "10"]) == 0
    assert str(collection[2]) not in capsys.readouterr().out.split()
    assert main(["search", str(copy), "--index", index_path, "--format", "paths", "-k", "10", "--include-own"]) == 0
    assert capsys.readouterr().out.split()[0] == str(collection[2])
    assert main(["search", str(collection[0]), str(collection[1]), "--not", str(collection[3]), "--index", index_path,
                 "--format", "paths", "--where", f"path=*{collection[4].name}"]) == 0
    assert capsys.readouterr().out.split() == [str(collection[4])]


def _as_first_version(folder: Path) -> None:
    """Rewrite an index as the first versions wrote it: its rows in a column named ``moments``, no
    windows, failures.windows or removed, and no recorded schema version."""
    import sqlite3

    connection = sqlite3.connect(str(folder / "index.sqlite"))
    connection.executescript("DROP TRIGGER clip_windows_go_with_it; DROP TABLE windows; DROP TABLE removed;"
                             "ALTER TABLE failures DROP COLUMN windows; ALTER TABLE clips RENAME COLUMN parts TO moments;"
                             "PRAGMA user_version = 0;")
    connection.execute("INSERT INTO failures (path, size_bytes, mtime, reason) VALUES ('bad.mp4', 1, 2.0, 'broken')")
    connection.commit()
    connection.close()


def test_an_index_from_an_older_schema_reads_as_it_is_and_is_upgraded_when_written(tmp_path, collection, model,
                                                                                  monkeypatch):
    import sqlite3

    from semantic_moments.index.store import SCHEMA_VERSION

    folder = tmp_path / "index"
    with Index.open(folder, create=True) as index:
        build_index(index, [collection[0].parent], model)
        before = [(hit.path, round(hit.score, 6)) for hit in index.search(1, k=3)]
    _as_first_version(folder)
    real_access = os.access
    with monkeypatch.context() as patch:  # read-only: nothing may be written, and it reads as the current schema
        patch.setattr(os, "access", lambda path, mode, **kw: False if mode == os.W_OK and "index" in str(path)
                      else real_access(path, mode, **kw))
        with Index.open(folder) as index:
            assert index.read_only
            assert [(hit.path, round(hit.score, 6)) for hit in index.search(1, k=3)] == before
            assert index.window_count() == 0 and index.windowed() == {} and index.builds.removed_paths() == set()
            assert index.builds.failures()["bad.mp4"].reason == "broken" and index.builds.failures()["bad.mp4"].windows is None
            assert index.check() == []
    connection = sqlite3.connect(str(folder / "index.sqlite"))
    assert connection.execute("PRAGMA user_version").fetchone()[0] == 0  # untouched
    connection.close()
    with Index.open(folder) as index:  # writable: upgraded in place, nothing lost
        assert not index.read_only and index.builds.failures()["bad.mp4"].reason == "broken"
        assert [(hit.path, round(hit.score, 6)) for hit in index.search(1, k=3)] == before
        removed = index.remove_ids([1])  # the table this version added is there
        assert len(removed) == 1 and index.builds.removed_paths() == set(removed)
    connection = sqlite3.connect(str(folder / "index.sqlite"))
    assert connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert "parts" in {row[1] for row in connection.execute("PRAGMA table_info(clips)")}
    connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    connection.commit()
    connection.close()
    with pytest.raises(IndexStoreError, match=rf"made by a newer semantic-moments \(index schema {SCHEMA_VERSION + 1}"):
        Index.open(folder)
