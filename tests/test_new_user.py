"""What a new user hit (#31, items 1-4, 6, 19): one line for a mistake, the real problem named, a
warning said once, an empty answer explained."""

from __future__ import annotations

import re

import pytest

from conftest import moving_square, write_video
from semantic_moments.cli import main


@pytest.fixture
def small_index(tmp_path, capsys):
    folder = tmp_path / "clips"
    folder.mkdir()
    for number, direction in enumerate(("right", "down", "left")):
        write_video(folder / f"clip{number}.mp4", moving_square(24, 64, (200, 60 + 40 * number, 40), direction))
    index_path = tmp_path / "x.index"
    assert main(["index", "build", str(folder), "--index", str(index_path), "--backbone", "test-tiny", "--frames", "8",
                 "--quiet"]) == 0
    capsys.readouterr()
    return folder, index_path


def test_a_mistake_on_the_command_line_is_one_line_naming_the_fix(capsys):
    with pytest.raises(SystemExit) as raised:
        main(["search", "x.mp4"])
    err = capsys.readouterr().err.strip()
    assert raised.value.code == 2 and len(err.splitlines()) == 1
    assert "required: --index" in err and "semantic-moments search --help" in err
    with pytest.raises(SystemExit):
        main(["embed", "x.mp4", "-o", "out", "--preset", "fast"])
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "invalid choice: 'fast' (choose from 'motion'" in err


def test_an_index_path_that_is_a_file_is_named_as_such(tmp_path, capsys):
    file = tmp_path / "notes.txt"
    file.write_text("x")
    assert main(["search", "x.mp4", "--index", str(file)]) == 1
    assert "is a file, not an index folder" in capsys.readouterr().err


def test_a_clamped_segment_is_said_once_without_a_raw_warning(small_index, capsys):
    folder, index_path = small_index
    assert main(["search", str(folder / "clip0.mp4"), "--index", str(index_path), "--segment", "0.5-9",
                 "--include-own"]) == 0
    err = capsys.readouterr().err
    assert err.count("ends after") == 1 and "SegmentClamped" not in err and "embedder.py" not in err


def test_an_empty_answer_says_the_own_video_was_left_out(small_index, tmp_path, capsys):
    from semantic_moments import Index

    _, index_path = small_index
    with Index.open(index_path) as index:
        assert main(["search", "1", "--index", str(index_path), "--where", "path=*clip0*"]) == 0
    captured = capsys.readouterr()
    assert "the query's own video was left out (--include-own keeps it)" in captured.err
    assert main(["search", "1", "--index", str(index_path), "--not", "1"]) == 0
    assert "given both as an example and as --not" in capsys.readouterr().err


def test_a_huge_negative_weight_is_refused(small_index, capsys):
    _, index_path = small_index
    with pytest.raises(SystemExit):
        main(["search", "1", "--index", str(index_path), "--not", "2", "--negative-weight", "1e308"])
    assert "must be between 0 and 10" in capsys.readouterr().err


def test_the_backbones_table_is_aligned(capsys):
    assert main(["backbones"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    header = lines[0]
    offline = header.index("offline")
    rows = [line for line in lines[1:] if not line.startswith("keypoints")]
    assert all(re.match(r"\S", line[offline]) and line[offline - 2:offline] == "  " for line in rows)


def test_compare_plot_names_the_file_it_wrote_and_a_bad_path_is_one_line(tmp_path, capsys):
    clips = []
    for number, direction in enumerate(("right", "down", "left")):
        clips.append(str(write_video(tmp_path / f"c{number}.mp4", moving_square(16, 64, (200, 60, 40), direction))))
    plot = tmp_path / "matrix"
    assert main(["compare", *clips, "--backbone", "test-tiny", "--frames", "8", "--plot", str(plot)]) == 0
    assert f"wrote {plot}.png" in capsys.readouterr().err and (tmp_path / "matrix.png").is_file()
    assert main(["compare", *clips, "--backbone", "test-tiny", "--frames", "8", "--plot",
                 str(tmp_path / "missing" / "m.png")]) == 1
    err = capsys.readouterr().err
    assert "no such folder" in err and "Traceback" not in err


def test_a_labels_file_that_is_not_utf8_is_one_line(small_index, tmp_path, capsys):
    _, index_path = small_index
    labels = tmp_path / "labels.csv"
    labels.write_bytes("path,class\nclip\xe9.mp4,a\n".encode("latin-1"))
    assert main(["index", "clusters", "--index", str(index_path), "--k", "2", "--labels", str(labels)]) == 2
    assert "not UTF-8 text" in capsys.readouterr().err


def test_where_terms_all_hold_and_hostile_ones_are_refused(small_index, capsys):
    import json

    folder, index_path = small_index
    assert main(["search", str(folder / "clip0.mp4"), "--index", str(index_path), "--include-own", "--json",
                 "--where", "path=*clip*", "--where", "path=*1.mp4"]) == 0
    assert [hit["path"] for hit in json.loads(capsys.readouterr().out)] == [str(folder / "clip1.mp4")]
    assert main(["search", "1", "--index", str(index_path), "--where", "path=" + "*a" * 30_000]) == 2
    err = capsys.readouterr().err
    assert "at most 1000 characters" in err and "damaged" not in err


def test_the_server_refuses_bad_where_filters_with_422(small_index, tmp_path):
    from conftest import api_client

    _, index_path = small_index
    with api_client(index_path, tmp_path / "up") as client:
        query = {"query": {"id": 1}}
        assert client.post("/api/search", json={**query, "where": {"min_duration": 5, "max_duration": 1}}).status_code == 422
        assert client.post("/api/search", json={**query, "where": {"colour": "red"}}).status_code == 422
        found = client.post("/api/search", json={**query, "where": {"folder": "/nowhere"}})
        assert found.status_code == 200 and found.json()["results"] == []


def test_an_interrupted_embed_continues_where_it_stopped(tmp_path, capsys):
    import json

    clips = [str(write_video(tmp_path / f"c{number}.mp4", moving_square(16, 64, (200, 60, 40), direction)))
             for number, direction in enumerate(("right", "down", "left"))]
    out = tmp_path / "out"
    options = ["--backbone", "test-tiny", "--frames", "8", "--quiet", "--json"]
    assert main(["embed", *clips[:2], "-o", str(out), *options]) == 0  # as if stopped after two
    capsys.readouterr()
    first = (out / "c0.moments.safetensors").stat().st_mtime_ns
    assert main(["embed", *clips, "-o", str(out), *options]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["embedded"] == 3 and "2 already there" in captured.err
    assert (out / "c0.moments.safetensors").stat().st_mtime_ns == first  # not embedded again
    assert main(["embed", *clips, "-o", str(out), *options, "--frames", "16"]) == 0  # other settings: again
    assert "already there" not in capsys.readouterr().err
    assert main(["embed", *clips, "-o", str(out), *options, "--overwrite"]) == 0
    assert "already there" not in capsys.readouterr().err


def test_ctrl_c_in_bench_run_says_the_cache_resumes(monkeypatch, tmp_path, capsys):
    import semantic_moments.cli as cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setitem(cli.COMMANDS, "bench", interrupted)
    assert main(["bench", "run", str(tmp_path / "m.json"), "--report", str(tmp_path / "r")]) == 130
    assert "features computed so far are cached; run again to continue" in capsys.readouterr().err
