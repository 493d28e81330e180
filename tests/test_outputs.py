"""Outputs never replace what they must not, and a failed write leaves nothing behind (#31: export)."""

from __future__ import annotations

import os
from pathlib import Path

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
