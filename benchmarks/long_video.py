"""Long-video speed: indexing every window of a long video, against embedding the same frames once.

    python benchmarks/long_video.py                   # 5- and 30-minute 720p files, windows 4:1
    python benchmarks/long_video.py --minutes 5 --windows 4:1

Files: 720p H.264 at 30 fps of moving textured content, made once in --folder (x264 "veryfast",
keyframes every 250 frames). Each case runs in its own process (peak RSS is its own), the cases
taking turns:

* windows: ``SemanticMoments.iter_windows`` (decode at T / LEN frames per second, backbone once per
  frame, every window merged from per-stride accumulators, one embedding per window);
* once: the same decoding and backbone passes over the same sampled frames, accumulated as one clip
  (no windows): the work windowing cannot avoid.

Prints, per file: seconds, speed as a multiple of real time, the windows/once ratio (goal <= 1.1x:
the merges must be negligible), CPU seconds and peak RSS (goal: flat from 5 to 30 minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

FPS = 30
SIZE = (720, 1280)


def make_video(path: Path, minutes: float) -> Path:
    """A 720p H.264 file of ``minutes``: a static texture with squares moving over it."""
    if path.exists():
        return path
    import av

    rng = np.random.default_rng(0)
    texture = (rng.random((SIZE[0] // 8, SIZE[1] // 8, 3)) * 200 + 30).astype(np.uint8).repeat(8, 0).repeat(8, 1)
    temporary = path.with_suffix(".tmp.mp4")
    with av.open(str(temporary), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = SIZE[1], SIZE[0], "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "28"}
        for index in range(int(minutes * 60 * FPS)):
            frame = texture.copy()
            for square in range(3):
                phase = index / FPS * (0.3 + 0.2 * square)
                y = int((SIZE[0] - 160) * (0.5 + 0.5 * np.sin(phase + square)))
                x = int((SIZE[1] - 160) * (0.5 + 0.5 * np.cos(1.3 * phase + 2 * square)))
                frame[y:y + 160, x:x + 160] = (255 - 60 * square, 80 * square, 120)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    os.replace(temporary, path)
    return path


def run_case(case: str, path: Path, windows: str) -> dict:
    """One case in this process (see the module doc)."""
    import torch

    from semantic_moments import SemanticMoments
    from semantic_moments.accumulators import ClipStatistics
    from semantic_moments.moments import TemporalMoments
    from semantic_moments.video import sample_video
    from semantic_moments.windows import WindowPlan

    model = SemanticMoments()
    plan = WindowPlan.parse(windows, model.config.num_frames)
    start, usage = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    count = 0
    if case == "windows":
        for _ in model.iter_windows(path, plan):
            count += 1
        count -= 1  # the whole-video embedding
    else:
        size = model.backbone.preprocessing.image_size
        with sample_video(path, plan.rate, size) as video:
            statistics = ClipStatistics(TemporalMoments(3), TemporalMoments(3), len(video.frame_indices) - 1,
                                        model.config.flow_segments)
            for frames in video.chunks_ahead(model.batch_size):
                with torch.inference_mode():
                    statistics.update(model._forward(frames))
            model._embedding(video.clip(0, len(video.frame_indices)), statistics, None)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    return {"seconds": seconds, "windows": count,
            "cpu_seconds": after.ru_utime - usage.ru_utime + after.ru_stime - usage.ru_stime,
            "peak_rss_mb": after.ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description="Long-video windowing speed (see the module docstring).")
    parser.add_argument("--folder", type=Path, default=Path("/tmp/semantic-moments-long-videos"))
    parser.add_argument("--minutes", default="5,30", help="lengths of the test files; default: %(default)s")
    parser.add_argument("--windows", default="4:1", help="window plan; default: %(default)s")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, Path(args.path), args.windows)))
        return
    args.folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
    sys.path.insert(0, str(Path(__file__).parent))
    from speed import machine

    print(f"machine: {machine()}; windows {args.windows}; 720p H.264 {FPS} fps\n")
    print("| video | case | seconds | x real time | CPU s | windows | windows / once | peak RSS (MB) |")
    print("|---|---|---|---|---|---|---|---|")
    for minutes in (float(value) for value in args.minutes.split(",")):
        path = make_video(args.folder / f"720p-{minutes:g}min.mp4", minutes)
        rows = {}
        for case in ("once", "windows"):
            output = subprocess.run([sys.executable, __file__, "--case", case, "--path", str(path), "--windows",
                                     args.windows], capture_output=True, text=True, check=True, env=env)
            rows[case] = json.loads(output.stdout.strip().splitlines()[-1])
        for case, row in rows.items():
            ratio = f"{row['seconds'] / rows['once']['seconds']:.2f}x" if case == "windows" else ""
            print(f"| {minutes:g} min | {case} | {row['seconds']:.1f} | {minutes * 60 / row['seconds']:.1f}x | "
                  f"{row['cpu_seconds']:.1f} | {row['windows'] if case == 'windows' else ''} | {ratio} | "
                  f"{row['peak_rss_mb']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
