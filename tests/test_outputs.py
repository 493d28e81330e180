"""Outputs never replace what they must not, and a failed write leaves nothing behind (#31: export)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from semantic_moments.cli import main
from semantic_moments.errors import OutputError
from semantic_moments.files import write_atomically


@pytest.fixture
def index_path(tmp_path, tiny_model) -> Path:
    from conftest import moving_square

    from semantic_moments import Index

    path = tmp_path / "x.index"
    with Index.open(path, create=True) as index:
        for number, direction in enumerate(("right", "down")):
            index.add(tiny_model.embed(moving_square(24, 64, (200, 60, 40), direction)), path=f"/clips/{number}.mp4")
    return path


def test_export_never_replaces_an_index_file_a_device_a_link_or_a_foreign_file(index_path, tmp_path, capsys):
    database = index_path / "index.sqlite"
    before = database.read_bytes()
    assert main(["index", "export", "--index", str(index_path), "--parquet", str(database)]) == 2
    assert "inside an index folder" in capsys.readouterr().err and database.read_bytes() == before
    assert main(["index", "export", "--index", str(index_path), "--parquet", str(index_path / "x.parquet")]) == 2
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    link = tmp_path / "link.parquet"
    link.symlink_to(tmp_path / "elsewhere.parquet")
    for target in (fifo, link, tmp_path, Path("/dev/null")):
        assert main(["index", "export", "--index", str(index_path), "--parquet", str(target)]) == 2
        assert "not a regular file" in capsys.readouterr().err
    assert fifo.exists() and not Path(fifo).is_file() and link.is_symlink()
    notes = tmp_path / "notes.parquet"
    notes.write_text("mine")
    assert main(["index", "export", "--index", str(index_path), "--parquet", str(notes)]) == 2
    assert "not an earlier export" in capsys.readouterr().err and notes.read_text() == "mine"
    assert main(["index", "export", "--index", str(index_path), "--parquet", str(notes), "--overwrite"]) == 0


def test_an_earlier_export_is_replaced_and_failures_are_one_line_leaving_nothing(index_path, tmp_path, capsys):
    target = tmp_path / "clips.parquet"
    assert main(["index", "export", "--index", str(index_path), "--parquet", str(target)]) == 0
    assert main(["index", "export", "--index", str(index_path), "--parquet", str(target)]) == 0  # ours: replaced
    capsys.readouterr()
    assert main(["index", "export", "--index", str(index_path), "--parquet", str(tmp_path / "no" / "x.parquet")]) == 2
    assert "no such folder" in capsys.readouterr().err
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")

    def full_disk(temporary: str) -> None:
        Path(temporary).write_bytes(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OutputError, match="out.bin: cannot write \\(No space left on device\\)"):
        write_atomically(target, full_disk)
    assert target.read_bytes() == b"old" and sorted(os.listdir(tmp_path)) == ["out.bin"]


def test_export_then_ingest_gives_the_same_index(tmp_path, tiny_model, capsys):
    """#31 item 13: an exported file ingests back into a new index with the same search results,
    windows included."""
    from conftest import moving_square, write_video

    from semantic_moments import Index
    from semantic_moments.collection import build_index

    folder = tmp_path / "clips"
    folder.mkdir()
    for number, direction in enumerate(("right", "down", "left", "up")):
        write_video(folder / f"c{number}.mp4", moving_square(24, 64, (200, 40 + 50 * number, 40), direction))
    frames = np.concatenate([moving_square(40, 64, (220, 90, 30), direction) for direction in ("right", "down", "left")])
    write_video(folder / "long.mp4", frames, fps=10)  # 12 s: windowed
    with Index.open(tmp_path / "a.index", create=True) as index:
        build_index(index, [folder], tiny_model, windows="2:1")
        assert index.window_count() > 0
    assert main(["index", "export", "--index", str(tmp_path / "a.index"), "--parquet", str(tmp_path / "a.parquet")]) == 0
    assert main(["index", "ingest", str(tmp_path / "a.parquet"), "--index", str(tmp_path / "b.index"), "--quiet"]) == 0
    capsys.readouterr()
    with Index.open(tmp_path / "a.index") as first, Index.open(tmp_path / "b.index") as second:
        assert len(first) == len(second) == 5 and first.window_count() == second.window_count()
        for clip in ("c0.mp4", "long.mp4"):
            ours, theirs = first.lookup(str(folder / clip))[0], second.lookup(str(folder / clip))[0]
            expected = [(Path(hit.path).name, round(hit.score, 5)) for hit in first.search(ours, k=4)]
            assert [(Path(hit.path).name, round(hit.score, 5)) for hit in second.search(theirs, k=4)] == expected
        segments = [(Path(hit.path).name, hit.start, round(hit.score, 5))
                    for hit in first.search_segments([first.lookup(str(folder / "c1.mp4"))[0]], k=3)]
        assert [(Path(hit.path).name, hit.start, round(hit.score, 5))
                for hit in second.search_segments([second.lookup(str(folder / "c1.mp4"))[0]], k=3)] == segments


def test_ingest_refuses_hostile_rows_one_by_one_and_leaves_no_empty_index(tmp_path, tiny_model, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq
    from conftest import moving_square

    good = tiny_model.embed(moving_square(24, 64, (200, 60, 40), "right"))
    other = type(tiny_model)("test-tiny", frames=16).embed(moving_square(24, 64, (200, 60, 40), "down"))
    def forged(**changes) -> bytes:
        from dataclasses import replace

        return replace(good, **changes).to_bytes()

    rows = [("/v/good.mp4", good.to_bytes()), ("/v/t16.mp4", other.to_bytes()),  # other settings than the first row
            ("/etc/shadow", good.to_bytes()), ("/x/../../etc/passwd.mp4", good.to_bytes()),
            ("/v/long.mp4", forged(duration_seconds=1e300)), ("/v/many.mp4", forged(num_source_frames=10**30)),
            ("/v/fps.mp4", forged(fps=True)), ("/v/big.mp4", forged(source="x" * 10_000_000)),
            ("/v/times.mp4", forged(pts_seconds=np.zeros(1_000_000), frame_indices=np.zeros(1_000_000, np.int64)))]
    table = pa.table({"path": [path for path, _ in rows], "size_bytes": [1] * len(rows), "mtime": [1.0] * len(rows),
                      "embedding": [data for _, data in rows]})
    pq.write_table(table, tmp_path / "rows.parquet")
    assert main(["index", "ingest", str(tmp_path / "rows.parquet"), "--index", str(tmp_path / "i.index"),
                 "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "1 ingested" in err and "8 failed" in err and "Traceback" not in err
    assert main(["index", "check", "--index", str(tmp_path / "i.index")]) == 0
    pq.write_table(table.slice(2, 1), tmp_path / "bad.parquet")  # nothing good: no index is made
    assert main(["index", "ingest", str(tmp_path / "bad.parquet"), "--index", str(tmp_path / "new.index"),
                 "--quiet"]) == 1
    assert not (tmp_path / "new.index").exists()
